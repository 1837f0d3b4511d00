"""The structure-of-arrays State: one 2-D float64 array per level (variables x entities) plus topology.

Collaborations, memberships and dyads are appended when collaborations form (rarely: at the start, at a mandate,
at voluntary search rounds); nothing is ever removed, so ids are stable and dissolved entities keep their final
values. The members of collaboration k are memberships ``col_mem_ptr[k]:col_mem_ptr[k+1]`` and the dyads of
membership m are ``mem_dyad_ptr[m]:mem_dyad_ptr[m+1]`` (CSR, because each collaboration is created whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collabsim.population import Population
from collabsim.rules import STAGES
from collabsim.variables import COLUMN, N_VARS, Level

CONNECTING = STAGES.index("connecting")


@dataclass
class CollabDesign:
    """Design of a batch of new collaborations (one value per new collaboration unless scalar)."""

    groups: list[np.ndarray]  # organisation indices of each new collaboration
    type_code: int
    values: dict[str, float | np.ndarray]  # collaboration-level context variables


def _grow(a: np.ndarray, extra: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.concatenate([a, extra], axis=axis)


@dataclass
class State:
    pop: Population
    S: np.ndarray
    O: np.ndarray
    K: np.ndarray = field(default_factory=lambda: np.zeros((N_VARS[Level.COLLAB], 0)))
    M: np.ndarray = field(default_factory=lambda: np.zeros((N_VARS[Level.MEMBER], 0)))
    D: np.ndarray = field(default_factory=lambda: np.zeros((N_VARS[Level.DYAD], 0)))
    K_design: np.ndarray = field(default_factory=lambda: np.zeros((N_VARS[Level.COLLAB], 0)))
    # collaborations
    col_type: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    col_stage: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    col_formed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    col_stage_since: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    col_synergy_month: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    col_quick_win_done: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    col_mem_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    # memberships
    mem_org: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    mem_col: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    mem_active: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    mem_stall: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    mem_dyad_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    # dyads (i -> j within k): source and destination memberships
    dyad_src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    dyad_dst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    dyad_it_base: np.ndarray = field(default_factory=lambda: np.zeros(0))
    org_workforce_base: np.ndarray = field(default_factory=lambda: np.zeros(0))
    month: int = 0

    @classmethod
    def from_population(cls, pop: Population, S: np.ndarray) -> State:
        return cls(pop=pop, S=S, O=pop.O.copy(), org_workforce_base=pop.O[COLUMN["workforce_instability"]].copy())

    @property
    def n_org(self) -> int:
        return self.O.shape[1]

    @property
    def n_col(self) -> int:
        return self.K.shape[1]

    @property
    def n_mem(self) -> int:
        return self.M.shape[1]

    @property
    def n_dyad(self) -> int:
        return self.D.shape[1]

    def add_collaborations(self, design: CollabDesign, dyad_context) -> tuple[slice, slice, slice]:
        """Append collaborations with all their memberships and dyads; returns the new (collab, member, dyad) slices.

        ``dyad_context(i, j) -> dict[var, array]`` fills the dyad context variables of new pairs.
        """
        groups = [np.asarray(g, dtype=np.int32) for g in design.groups if len(g) >= 2]
        nk = len(groups)
        c0, m0, d0 = self.n_col, self.n_mem, self.n_dyad
        if nk == 0:
            return slice(c0, c0), slice(m0, m0), slice(d0, d0)
        sizes = np.array([len(g) for g in groups])
        mem_org = np.concatenate(groups)
        mem_col = np.repeat(np.arange(c0, c0 + nk, dtype=np.int32), sizes)
        nm = len(mem_org)
        # ordered pairs within each group, grouped by source membership: the dyads of member m are m -> each other
        # member of its group in membership order (k-th partner: the k-th member, skipping m itself)
        per_mem = np.repeat(sizes - 1, sizes)
        first = np.repeat(np.cumsum(sizes) - sizes, sizes)  # position of each member's group in the new members
        nd = int(per_mem.sum())
        k = np.arange(nd) - np.repeat(np.cumsum(per_mem) - per_mem, per_mem)
        own = np.repeat(np.arange(nm) - first, per_mem)
        src_a = np.repeat(np.arange(m0, m0 + nm, dtype=np.int32), per_mem)
        dst_a = (m0 + np.repeat(first, per_mem) + k + (k >= own)).astype(np.int32)

        K_new = np.zeros((N_VARS[Level.COLLAB], nk))
        for name, value in design.values.items():
            K_new[COLUMN[name]] = value
        self.K = _grow(self.K, K_new)
        self.K_design = _grow(self.K_design, K_new.copy())
        self.col_type = _grow(self.col_type, np.full(nk, design.type_code, np.int8))
        self.col_stage = _grow(self.col_stage, np.full(nk, CONNECTING, np.int8))
        self.col_formed = _grow(self.col_formed, np.full(nk, self.month, np.int32))
        self.col_stage_since = _grow(self.col_stage_since, np.full(nk, self.month, np.int32))
        self.col_synergy_month = _grow(self.col_synergy_month, np.full(nk, -1, np.int32))
        self.col_quick_win_done = _grow(self.col_quick_win_done, np.zeros(nk, np.bool_))
        self.col_mem_ptr = _grow(self.col_mem_ptr, self.col_mem_ptr[-1] + np.cumsum(sizes))

        self.M = _grow(self.M, np.zeros((N_VARS[Level.MEMBER], nm)))
        self.mem_org = _grow(self.mem_org, mem_org)
        self.mem_col = _grow(self.mem_col, mem_col)
        self.mem_active = _grow(self.mem_active, np.ones(nm, np.bool_))
        self.mem_stall = _grow(self.mem_stall, np.zeros(nm, np.int32))
        self.mem_dyad_ptr = _grow(self.mem_dyad_ptr, self.mem_dyad_ptr[-1] + np.cumsum(per_mem))

        D_new = np.zeros((N_VARS[Level.DYAD], nd))
        for name, value in dyad_context(self.mem_org[src_a], self.mem_org[dst_a]).items():
            D_new[COLUMN[name]] = value
        self.D = _grow(self.D, D_new)
        self.dyad_src = _grow(self.dyad_src, src_a)
        self.dyad_dst = _grow(self.dyad_dst, dst_a)
        self.dyad_it_base = _grow(self.dyad_it_base, D_new[COLUMN["it_interoperability"]].copy())
        return slice(c0, c0 + nk), slice(m0, m0 + nm), slice(d0, d0 + nd)

    # -- topology helpers used by the engine, the reference and the recorder --------------------------------------
    def dyad_active(self) -> np.ndarray:
        return self.mem_active[self.dyad_src] & self.mem_active[self.dyad_dst]
