"""Two ideal parallel loops that show what the machine allows at the moment the model is timed (``bench --speedup``).

On a shared VM a thread's speed moves with the host's other tenants: the compute loop's speed-up on two threads
measured 0.95-2.39 call by call and 1.40-2.05 as a median of 7-10 calls at different moments of one session on
this project's machines (docs/performance.md, ninth round). The model's speed-up means
little without the machine's at the same moments, so ``bench.time_speedup`` times these beside each seed:

- ``compute``: independent work items of arithmetic on data that stays in each core's L1 cache (no memory traffic,
  no shared data): the upper bound for compute-bound code;
- ``stream``: one read and one write pass over arrays far larger than any cache: memory-bound code.

Both hand out their work items by ticket, as the model's kernels do, so a faster thread takes more of them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

from collabsim.kernels import _take_ticket, _ticket_counter

ITEMS = 64  # work items a loop: enough for an even split between a few threads
WIDTH = 512  # doubles a compute item updates: 4 KiB, in L1


@njit(cache=True, parallel=True)
def compute_loop(reps, out):
    """out[j] = the sum of WIDTH values, each iterated ``reps`` times through x <- x (1 - 1e-9 x) + 1e-7."""
    ticket = _ticket_counter()
    for _ in prange(ITEMS):
        j = _take_ticket(ticket)
        while j < ITEMS:
            x = np.empty(WIDTH)
            for i in range(WIDTH):
                x[i] = (j + i) * 1e-3
            for _r in range(reps):
                for i in range(WIDTH):
                    x[i] = x[i] * (1.0 - 1e-9 * x[i]) + 1e-7
            out[j] = x.sum()
            j = _take_ticket(ticket)


@njit(cache=True, parallel=True)
def stream_loop(src, dst):
    """dst = 1.0001 src + 0.5, in ITEMS contiguous blocks."""
    n = len(src)
    ticket = _ticket_counter()
    for _ in prange(ITEMS):
        j = _take_ticket(ticket)
        while j < ITEMS:
            for i in range(j * n // ITEMS, (j + 1) * n // ITEMS):
                dst[i] = 1.0001 * src[i] + 0.5
            j = _take_ticket(ticket)


def probes(compute_reps: int = 40_000, stream_values: int = 8_000_000, passes: int = 4) -> dict[str, Callable]:
    """The two loops as calls of about 0.1 s each on one thread of this project's machines (the stream's arrays:
    2 x 64 MB with the defaults)."""
    out = np.zeros(ITEMS)
    src = np.linspace(0.0, 1.0, stream_values)
    dst = np.empty_like(src)

    def stream() -> None:
        for _ in range(passes):
            stream_loop(src, dst)

    return {"compute": lambda: compute_loop(compute_reps, out), "stream": stream}
