"""``python -m collabsim``: the command line (see :mod:`collabsim.cli`)."""

from collabsim.cli import main

raise SystemExit(main())
