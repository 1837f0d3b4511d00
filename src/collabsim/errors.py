"""User-facing input errors.

Every problem with what a user gave collabsim (a scenario file, a ``--set`` override, a command-line value) is raised
as one :class:`CollabsimInputError`. The command-line interface prints its :attr:`~CollabsimInputError.message` on
one line and exits with status 2; it never shows a traceback for bad input.

A message names, where they are known: the file (or another origin such as ``--set``), the dotted key, the value
given and what is allowed, e.g.::

    scenarios/x.yaml: population.n_orgs = -3 is not allowed: an integer from 2 to 1000000
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable
from typing import Any

__all__ = ["CollabsimInputError", "NO_VALUE", "format_value", "suggest"]


class _NoValue:
    """Sentinel: no value was given (a missing key, or an error about a whole file)."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __reduce__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


def format_value(value: Any, limit: int = 80) -> str:
    """Render a value the way a user would write it in YAML, on one line, shortened to ``limit`` characters."""
    if value is NO_VALUE:
        return "(nothing)"
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else {"inf": ".inf", "-inf": "-.inf"}.get(repr(value), ".nan")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
        except (TypeError, ValueError):  # pragma: no cover - exotic values
            text = repr(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def suggest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (difflib), or None when nothing is close enough."""
    candidates = [c for c in candidates if isinstance(c, str)]
    exact = [c for c in candidates if c.lower() == str(word).lower()]
    if exact:
        return exact[0]
    matches = difflib.get_close_matches(str(word), candidates, n=1, cutoff=cutoff)
    return matches[0] if matches else None


class CollabsimInputError(Exception):
    """A problem with user input, explained on one line.

    Attributes:
        file: the file the input came from (a path), another origin such as ``"--set"``, or None.
        key: the dotted key at fault (``events.schedule[0].month``), or None for a whole-file problem.
        value: the value given (``NO_VALUE`` when there is none, e.g. a missing key).
        allowed: what is allowed, in words (``"an integer from 2 to 1000000"``); may be empty.
        problem: what is wrong, when it is not simply "this value is not allowed" (``"file not found"``,
            ``"unknown key"``, ``"malformed YAML at line 3, column 7: ..."``); None for the usual case.
        hint: an optional suggestion (``"did you mean population.n_orgs?"``).
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | None = None,
        key: str | None = None,
        value: Any = NO_VALUE,
        allowed: str = "",
        *,
        problem: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = os.fspath(file) if file is not None else None
        self.key = key
        self.value = value
        self.allowed = allowed
        self.problem = problem
        self.hint = hint
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default Exception pickling (multiprocessing sweeps).
        return (
            _rebuild,
            (self.file, self.key, self.value, self.allowed, self.problem, self.hint),
        )

    @property
    def message(self) -> str:
        """The one-line explanation shown to the user."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(f"{self.file}: ")
        if self.problem is None:
            if self.key is not None:
                parts.append(f"{self.key} = {format_value(self.value)} is not allowed")
            else:
                parts.append(f"{format_value(self.value)} is not allowed")
            if self.allowed:
                parts.append(f": {self.allowed}")
        else:
            if self.key is not None:
                if self.value is NO_VALUE:
                    parts.append(f"{self.key}: ")
                else:
                    parts.append(f"{self.key} = {format_value(self.value)}: ")
            parts.append(self.problem)
            if self.allowed:
                parts.append(f"; allowed: {self.allowed}")
        if self.hint:
            parts.append(f" ({self.hint})")
        return " ".join("".join(parts).splitlines())

    def with_file(self, file: str | os.PathLike[str] | None) -> CollabsimInputError:
        """A copy of this error attributed to ``file``."""
        return CollabsimInputError(file, self.key, self.value, self.allowed, problem=self.problem, hint=self.hint)

    def __str__(self) -> str:
        return self.message


def _rebuild(
    file: str | None, key: str | None, value: Any, allowed: str, problem: str | None, hint: str | None
) -> CollabsimInputError:
    return CollabsimInputError(file, key, value, allowed, problem=problem, hint=hint)
