"""Random streams: one ``numpy.random.SeedSequence`` tree per run, named streams, and counter-based pair draws.

run seed -> (design point, replicate) -> named streams. Streams are spawned by name, so adding a stream never shifts
another one's numbers, and two arms that share a replicate key share their population, partner-choice and event
streams (common random numbers).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from numba import njit

STREAMS = ("population", "partners", "events", "interventions")


@lru_cache(maxsize=1024)
def name_key(name: str) -> int:
    """A 32-bit key from a name: named streams and analysis steps depend on names, never on positions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


class Streams:
    """Named independent generators for one run; ``key`` identifies the run inside a sweep."""

    def __init__(self, seed: int, key: tuple[int, ...] = ()) -> None:
        self.seed = int(seed)
        self.key = tuple(int(k) for k in key)
        self._root = np.random.SeedSequence(self.seed, spawn_key=self.key)
        self._gens: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        if name not in self._gens:
            child = np.random.SeedSequence(self._root.entropy, spawn_key=(*self.key, name_key(name)))
            self._gens[name] = np.random.Generator(np.random.PCG64(child))
        return self._gens[name]

    def salt(self, name: str) -> np.uint64:
        """A 64-bit salt for counter-based draws (pair histories, monthly events): numbers indexed by entity and
        month rather than drawn in sequence, so they cannot depend on threads or on the order of work."""
        child = np.random.SeedSequence(self._root.entropy, spawn_key=(*self.key, name_key(name)))
        return np.uint64(child.generate_state(1, dtype=np.uint64)[0])


def pair_uniform(salt: np.uint64, i: np.ndarray, j: np.ndarray, channel: int = 0) -> np.ndarray:
    """Uniform [0, 1) draws that depend only on the unordered pair {i, j} (splitmix64 hash), so a pair's shared
    history is the same whoever proposes and needs no N x N storage."""
    # arrays (at least 1-d): numpy wraps uint64 array arithmetic silently (scalars would warn on overflow)
    lo = np.minimum(np.atleast_1d(i), np.atleast_1d(j)).astype(np.uint64)
    hi = np.maximum(np.atleast_1d(i), np.atleast_1d(j)).astype(np.uint64)
    return _splitmix_pairs(np.uint64(salt), lo, hi, np.uint64(channel))


_TWO_53 = float(1 << 53)  # 53 random bits -> a float in [0, 1), exactly


@njit(cache=True, inline="always")
def splitmix_pair(salt, lo, hi, channel):
    """The draw of pair_uniform for one pair lo <= hi (uint64 arguments): integer arithmetic modulo 2**64 and an
    exact conversion, so compiled callers (partner search) get the same numbers as pair_uniform."""
    z = salt + lo * np.uint64(0x9E3779B97F4A7C15) + hi * np.uint64(0xBF58476D1CE4E5B9) + channel
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) / _TWO_53


@njit(cache=True)
def _splitmix_pairs(salt, lo, hi, channel):
    """pair_uniform's hash over arrays, compiled (the numpy expressions it replaced cost more per call than the
    few pairs a call hashes)."""
    out = np.empty(len(lo))
    for n in range(len(lo)):
        out[n] = splitmix_pair(salt, lo[n], hi[n], channel)
    return out
