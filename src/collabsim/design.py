"""Experiment designs: the design points of a scenario's ``sweep:`` block.

Four designs over any scenario keys (dotted, as in ``--set``), each a list of *points*, a point being a mapping
``{dotted key: value}`` of overrides applied over the scenario:

- ``grid``: the full factorial product of each parameter's values (the first parameter varies slowest);
- ``lhs``: a Latin hypercube of ``samples`` points (SALib ``latin``);
- ``sobol``: Saltelli's extension of the Sobol sequence for Sobol indices, ``samples * (D + 2)`` points, or
  ``samples * (2D + 2)`` with ``second_order`` (SALib ``sobol``);
- ``morris``: ``samples`` one-at-a-time trajectories on a ``levels`` grid, ``samples * (D + 1)`` points (SALib
  ``morris``).

With ``groups`` (sobol and morris), D is the number of SALib groups: the parameters of a group move together and
share one index (the problem gets SALib's ``groups`` list).

The sampling designs draw from a seed (``sweep.seed``, else the scenario's seed), so a design is reproducible from its
scenario. How a sample in [0, 1) becomes a value: a numeric range from ``low`` to ``high`` linearly or, with
``scale: log``, log-uniformly; an integer key uniformly over the integers ``low`` ... ``high``; a list of ``values``
uniformly over the list. The SALib ``problem`` (names and the bounds sampled, in that transformed space) and the
raw sample are kept with the design, so the sweep's results can be analysed with ``SALib.analyze``.

Ranges and values are checked against the scenario schema when the scenario is loaded (``Scenario._check_sweep``);
:func:`build_design` only expands them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collabsim.errors import CollabsimInputError
from collabsim.scenario import Scenario, SweepSpec

__all__ = ["Design", "Parameter", "build_design", "design_size"]


@dataclass(frozen=True)
class Parameter:
    """One swept key, as declared, with the type of value the scenario key holds."""

    key: str
    kind: str  # integer, number, boolean, choice, other (Scenario.sweep_key_kind)
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    num: int | None = None
    scale: str = "linear"

    @property
    def is_range(self) -> bool:
        return self.values is None

    def grid_values(self) -> list[Any]:
        """The values a grid tries: the list, or ``num`` evenly spaced values from ``low`` to ``high``."""
        if self.values is not None:
            return [self._cast(v) for v in self.values]
        assert self.low is not None and self.high is not None and self.num is not None
        raw = (
            np.geomspace(self.low, self.high, self.num)
            if self.scale == "log"
            else np.linspace(self.low, self.high, self.num)
        )
        raw[0], raw[-1] = self.low, self.high  # the ends exactly as written
        if self.kind != "integer":
            return [float(x) for x in raw]
        values = [int(round(float(x))) for x in raw]
        if len(set(values)) < len(values):
            span = int(self.high) - int(self.low) + 1
            raise CollabsimInputError(
                None,
                f"sweep.parameters.{self.key}.num",
                self.num,
                f"an integer from 2 to {span} (the integers from {int(self.low)} to {int(self.high)})",
                problem=f"{self.num} values from {_fmt(self.low)} to {_fmt(self.high)} repeat once rounded to integers",
            )
        return values

    def bounds(self) -> list[float]:
        """The interval a sampling design samples for this parameter (SALib ``bounds``; see :meth:`from_unit`)."""
        if self.values is not None:
            return [0.0, float(len(self.values))]
        assert self.low is not None and self.high is not None
        high = self.high + 1.0 if self.kind == "integer" else self.high
        if self.scale == "log":
            return [math.log(self.low), math.log(high)]
        return [float(self.low), float(high)]

    def from_sample(self, x: float) -> Any:
        """The value for one coordinate ``x`` of a SALib sample (drawn from :meth:`bounds`)."""
        if self.values is not None:
            i = min(max(int(math.floor(x)), 0), len(self.values) - 1)
            return self._cast(self.values[i])
        assert self.low is not None and self.high is not None
        v = math.exp(x) if self.scale == "log" else float(x)
        if self.kind == "integer":
            return int(min(max(math.floor(v), int(self.low)), int(self.high)))
        return float(min(max(v, self.low), self.high))

    def _cast(self, value: Any) -> Any:
        if self.kind == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        if self.kind == "number" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


@dataclass(frozen=True)
class Design:
    """The points of a sweep design, in their fixed order (point ``i`` is ``points[i]``)."""

    kind: str
    parameters: tuple[Parameter, ...]
    points: tuple[dict[str, Any], ...]
    seed: int | None = None  # the sampling seed (None for a grid)
    problem: dict[str, Any] | None = None  # SALib problem: num_vars, names, bounds (transformed space)
    sample: np.ndarray | None = field(default=None, repr=False)  # raw SALib sample, one row per point
    options: dict[str, Any] = field(default_factory=dict)  # samples, levels, second_order

    def __len__(self) -> int:
        return len(self.points)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parameters)

    def frame(self) -> pd.DataFrame:
        """One row per point: ``point`` and a column per parameter."""
        df = pd.DataFrame({"point": np.arange(len(self.points), dtype=np.int64)})
        for key in self.keys:
            df[key] = [p[key] for p in self.points]
        return df

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for the results manifest)."""
        return {
            "design": self.kind,
            "n_points": len(self.points),
            "parameters": [
                {
                    k: v
                    for k, v in {
                        "key": p.key,
                        "kind": p.kind,
                        "values": list(p.values) if p.values is not None else None,
                        "low": p.low,
                        "high": p.high,
                        "num": p.num,
                        "scale": p.scale if p.values is None else None,
                    }.items()
                    if v is not None
                }
                for p in self.parameters
            ],
            "seed": self.seed,
            "options": dict(self.options),
            "salib_problem": self.problem,
            "sample": self.sample.tolist() if self.sample is not None else None,
            "points": [dict(p) for p in self.points],
        }


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _parameters(scenario: Scenario, spec: SweepSpec) -> tuple[Parameter, ...]:
    out = []
    for key, p in spec.parameters.items():
        out.append(
            Parameter(
                key=key,
                kind=scenario.sweep_key_kind(key),
                values=tuple(p.values) if p.values is not None else None,
                low=p.low,
                high=p.high,
                num=p.num,
                scale=p.scale,
            )
        )
    return tuple(out)


def design_size(spec: SweepSpec) -> int:
    """How many points the design of ``spec`` has (without building it)."""
    d = len(spec.parameters)
    if spec.groups:  # SALib groups: D is the number of groups (a parameter not listed is a group of its own)
        d = len({spec.groups.get(key, key) for key in spec.parameters})
    if spec.design == "grid":
        return math.prod(len(p.values) if p.values is not None else int(p.num or 0) for p in spec.parameters.values())
    n = int(spec.samples or 0)
    if spec.design == "lhs":
        return n
    if spec.design == "sobol":
        return n * (2 * d + 2 if spec.second_order else d + 2)
    return n * (d + 1)  # morris


def build_design(scenario: Scenario) -> Design:
    """The design of ``scenario.sweep`` (one point with no parameters when the scenario has no sweep block)."""
    spec = scenario.sweep_spec
    if spec is None:
        return Design("grid", (), ({},))
    params = _parameters(scenario, spec)
    if spec.design == "grid":
        axes = [p.grid_values() for p in params]
        points = tuple({p.key: v for p, v in zip(params, combo, strict=True)} for combo in itertools.product(*axes))
        return Design("grid", params, points)

    seed = scenario.seed if spec.seed is None else spec.seed
    problem: dict[str, Any] = {
        "num_vars": len(params),
        "names": [p.key for p in params],
        "bounds": [p.bounds() for p in params],
    }
    if spec.groups:
        problem["groups"] = [spec.groups.get(p.key, p.key) for p in params]
    n = int(spec.samples or 0)
    salib_seed = seed % 2**32  # SALib's samplers take 32-bit seeds (legacy RandomState in places)
    if spec.design == "lhs":
        from SALib.sample import latin  # noqa: PLC0415 - SALib is needed only by sampling designs

        sample = latin.sample(problem, n, seed=salib_seed)
        options: dict[str, Any] = {"samples": n}
    elif spec.design == "sobol":
        from SALib.sample import sobol  # noqa: PLC0415

        sample = sobol.sample(problem, n, calc_second_order=spec.second_order, scramble=True, seed=salib_seed)
        options = {"samples": n, "second_order": spec.second_order}
    elif spec.design == "morris":
        from SALib.sample import morris  # noqa: PLC0415

        sample = morris.sample(problem, n, num_levels=spec.levels, seed=salib_seed)
        options = {"samples": n, "levels": spec.levels}
    else:  # pragma: no cover - the schema allows only the four designs
        raise ValueError(f"unknown design {spec.design!r}")
    sample = np.asarray(sample, dtype=np.float64)
    points = tuple({p.key: p.from_sample(float(x)) for p, x in zip(params, row, strict=True)} for row in sample)
    return Design(spec.design, params, points, seed=seed, problem=problem, sample=sample, options=options)
