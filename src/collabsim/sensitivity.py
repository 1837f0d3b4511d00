"""Global sensitivity analysis: which rule weights and scenario parameters move the main metrics?

    collabsim sensitivity scenarios/mandated_vs_voluntary.yaml --method morris      # screening: minutes on 2 cores
    collabsim sensitivity scenarios/mandated_vs_voluntary.yaml --method sobol       # variance shares: longer

This module only *chooses the factors* and *analyses*: the runs are an ordinary sweep (``collabsim.sweeps``) of the
scenario with a ``morris`` or ``sobol`` design over the factors, so arms, replications, common random numbers, the
results store, resuming, executors and the progress bar are the sweep's.

**Factors.** Without ``--parameters``, a scenario whose own ``sweep:`` block is a morris or sobol design is analysed
over its own parameters (and ``groups``); any other scenario over the default factors:

- every active rule's weight, as a multiplier ``rules.weights.<row id>`` from 0.5x to 2x the scenario's own
  multiplier (log scale), the rows grouped (SALib groups) by the mechanism they move: :data:`RULE_FAMILIES`, e.g.
  ``rules:trust`` holds every row that moves trust. A group moves together and gets one index, so the cost grows with
  the number of groups, not of rows;
- the main scenario parameters (:data:`SCENARIO_PARAMETERS`), each a factor of its own, from its scenario value
  minus to plus :data:`SCENARIO_SPAN` (clipped to [0, 1]).

Keys an arm sets are left out (a key is either swept or set by arms).

**Outputs.** For each metric of :data:`METRICS` and each arm, and, with two arms, their paired gap (second arm minus
first, per replicate: the pairs share their random numbers): the replicate mean at each design point is analysed by
SALib (morris: ``mu_star`` with its bootstrap 95% confidence half-width, also ``mu`` and ``sigma``; sobol: total
``ST`` and first-order ``S1`` with confidence half-widths). ``OUT/sensitivity.csv`` has one row per (output,
factor), ranked; ``OUT/sensitivity.png`` one ranked bar chart per output, with the confidence half-widths as error
bars.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from collabsim.errors import NO_VALUE, CollabsimInputError
from collabsim.scenario import Scenario

__all__ = [
    "DEFAULTS",
    "METHODS",
    "METRICS",
    "RULE_FAMILIES",
    "SCENARIO_PARAMETERS",
    "Factor",
    "analyse",
    "default_factors",
    "format_ranking",
    "parse_parameters",
    "plot",
    "sensitivity_scenario",
]

METHODS: tuple[str, ...] = ("morris", "sobol")
#: The metrics analysed (per arm, and their gap between two arms).
METRICS: tuple[str, ...] = ("share_synergy", "task_achievement")
#: Defaults by method: morris trajectories or sobol base sample N (a power of 2), and replicates per design point.
DEFAULTS: dict[str, dict[str, int]] = {
    "morris": {"samples": 20, "replications": 5},
    "sobol": {"samples": 64, "replications": 2},
}
#: Range of a rule-weight multiplier, relative to the scenario's own multiplier (sampled on a log scale).
RULE_MULTIPLIER_RANGE: tuple[float, float] = (0.5, 2.0)
#: Half-width of the range of a scenario parameter around its value in the scenario.
SCENARIO_SPAN = 0.25

#: Mechanism families: the rule rows that move these variables form one factor (SALib group) ``rules:<family>``.
#: A variable not listed here (say, one added later) forms ``rules:performance`` if it is an organisation outcome,
#: else a group of its own named after it.
RULE_FAMILIES: dict[str, tuple[str, ...]] = {
    "formation": ("initial_trust", "initial_faith"),
    "context": ("power_imbalance", "perceived_legitimacy", "perceived_task_complexity"),
    "communication": ("interpersonal_communication", "cultural_assimilation", "vision_sharedness", "vision_clarity"),
    "conflict": ("conflict", "intraorganisational_conflict"),
    "trust": ("trust",),
    "confidence": ("confidence",),
    "risk_tolerance": ("risk_tolerance",),
    "faith": ("faith",),
    "progress": ("perception_of_progress", "momentum", "functioning_workload"),
    "behaviour": ("collaborative_behaviour",),
    "task": ("task_achievement",),
}

#: The main scenario parameters (all in [0, 1]): the design of a collaboration, the economy, the policy environment
#: and the modelling parameters of the dynamics (thresholds, starting values: not calibrated).
SCENARIO_PARAMETERS: tuple[str, ...] = (
    "partnering.ambition",
    "partnering.vision_clarity",
    "partnering.role_clarity",
    "partnering.accountability",
    "partnering.conflict_resolution",
    "partnering.relationship_building",
    "partnering.stakeholder_involvement",
    "partnering.funding",
    "population.history_of_competition",
    "population.leadership_quality.mean",
    "population.implementation_capacity.mean",
    "environment.regulatory_favourability",
    "environment.financial_constraints",
    "dynamics.synergy_threshold_risk",
    "dynamics.synergy_threshold_faith",
    "dynamics.threshold_hysteresis",
    "dynamics.baseline_trust",
    "dynamics.baseline_faith",
)


@dataclass
class Factor:
    """One factor of the analysis: a SALib group of scenario keys, each with its range, that move together."""

    name: str
    ranges: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {low, high[, scale]}

    @property
    def n_keys(self) -> int:
        return len(self.ranges)


def rule_family(mechanism: str) -> str:
    """The factor name ``rules:<family>`` of the rows that move ``mechanism``."""
    for family, variables in RULE_FAMILIES.items():
        if mechanism in variables:
            return f"rules:{family}"
    from collabsim.variables import VARIABLES, Level, Phase  # noqa: PLC0415

    var = VARIABLES.get(mechanism)
    if var is not None and var.level == Level.ORG and var.phase == Phase.OUTCOMES:
        return "rules:performance"
    return f"rules:{mechanism}"


def _keys_overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and long[len(short)] in ".["


def _arm_keys(scenario: Scenario) -> list[str]:
    return [str(k) for overrides in (scenario.arms or {}).values() for k in overrides]


def _value_at(scenario: Scenario, key: str) -> Any:
    node: Any = scenario.resolved_dict()
    for part in key.split("."):
        node = node[part]
    return node


def default_factors(scenario: Scenario) -> list[Factor]:
    """The default factors of ``scenario``: rule-weight multipliers grouped by mechanism family, then the main
    scenario parameters (one factor each). Keys set by an arm are left out."""
    from collabsim.rules import load_rule_table  # noqa: PLC0415

    arm_keys = _arm_keys(scenario)
    free = lambda key: not any(_keys_overlap(key, k) for k in arm_keys)  # noqa: E731
    weights = dict(scenario.rules.weights)
    disabled = set(scenario.rules.disable)
    low, high = RULE_MULTIPLIER_RANGE
    families: dict[str, Factor] = {}
    for row in load_rule_table().rows:
        if row.weight <= 0 or row.id in disabled or (row.cmoc is not None and row.cmoc in disabled):
            continue
        multiplier = 1.0
        for name in (row.cmoc, row.id):  # as RuleTable.with_overrides: a row id's multiplier wins over its CMOC id's
            if name in weights:
                multiplier = float(weights[name])
        key = f"rules.weights.{row.id}"
        if multiplier <= 0 or not free(key):
            continue
        name = rule_family(row.mechanism)
        families.setdefault(name, Factor(name)).ranges[key] = {
            "low": low * multiplier,
            "high": high * multiplier,
            "scale": "log",
        }
    factors = list(families.values())
    for key in SCENARIO_PARAMETERS:
        if free(key):
            factors.append(_scenario_factor(scenario, key))
    return factors


def _scenario_factor(scenario: Scenario, key: str) -> Factor:
    value = float(_value_at(scenario, key))
    return Factor(key, {key: {"low": max(0.0, value - SCENARIO_SPAN), "high": min(1.0, value + SCENARIO_SPAN)}})


def _own_factors(scenario: Scenario) -> list[Factor] | None:
    """The factors of the scenario's own morris or sobol design (None when it has none)."""
    spec = scenario.sweep_spec
    if spec is None or spec.design not in METHODS:
        return None
    groups = spec.groups or {}
    factors: dict[str, Factor] = {}
    for key, param in spec.parameters.items():
        data = param.model_dump(exclude_none=True)
        data.pop("num", None)
        name = groups.get(key, key)
        factors.setdefault(name, Factor(name)).ranges[key] = data
    return list(factors.values())


def parse_parameters(scenario: Scenario, specs: Sequence[str]) -> list[Factor]:
    """Factors from ``--parameters`` items: ``rules`` (every rule family), ``scenario`` (every default scenario
    parameter), a default factor by name (``rules:trust``, ``partnering.ambition``), or ``KEY=LOW:HIGH`` /
    ``KEY=LOW:HIGH:log`` for any numeric scenario key (a factor of its own)."""
    defaults = default_factors(scenario)
    by_name = {f.name: f for f in defaults}
    chosen: dict[str, Factor] = {}
    families = [n.removeprefix("rules:") for n in by_name if n.startswith("rules:")]
    allowed = (
        "rules, scenario, rules:<family> (" + ", ".join(families) + "), a main scenario parameter such as "
        "partnering.ambition (docs/sensitivity.md), or KEY=LOW:HIGH[:log] for a numeric scenario key"
    )
    for spec in specs:
        text = spec.strip()
        if text == "rules":
            chosen.update({f.name: f for f in defaults if f.name.startswith("rules:")})
        elif text == "scenario":
            chosen.update({f.name: f for f in defaults if not f.name.startswith("rules:")})
        elif text in by_name:
            chosen[text] = by_name[text]
        elif "=" in text:
            key, _, rng = text.partition("=")
            parts = rng.split(":")
            try:
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")):
                    raise ValueError
                entry: dict[str, Any] = {"low": float(parts[0]), "high": float(parts[1])}
            except ValueError:
                raise CollabsimInputError(
                    None, "--parameters", text, "KEY=LOW:HIGH or KEY=LOW:HIGH:log", problem="not a range"
                ) from None
            if len(parts) == 3:
                entry["scale"] = parts[2]
            chosen[key.strip()] = Factor(key.strip(), {key.strip(): entry})
        else:
            from collabsim.errors import suggest  # noqa: PLC0415

            hint = suggest(text, [*by_name, "rules", "scenario"])
            raise CollabsimInputError(
                None,
                "--parameters",
                text,
                allowed,
                problem="not a factor",
                hint=f"did you mean {hint}?" if hint else None,
            )
    return list(chosen.values())


def sensitivity_scenario(
    scenario: Scenario,
    method: str,
    factors: Sequence[Factor] | None = None,
    samples: int | None = None,
    replications: int | None = None,
) -> Scenario:
    """``scenario`` with its ``sweep:`` block replaced by a ``method`` design over ``factors`` (default: its own
    morris/sobol parameters, else :func:`default_factors`). The arms are kept."""
    if method not in METHODS:
        raise CollabsimInputError(None, "--method", method, "one of: " + ", ".join(METHODS))
    own = scenario.sweep_spec
    if factors is None:
        factors = _own_factors(scenario) or default_factors(scenario)
    if not factors:
        raise CollabsimInputError(
            None, "--parameters", NO_VALUE, "at least one factor", problem="no factors to analyse"
        )
    own_sampled = own is not None and own.design in METHODS
    given = {"sweep.samples": ("--samples", samples), "sweep.replications": ("--replications", replications)}
    if samples is None:
        samples = own.samples if own_sampled and own.design == method and own.samples else DEFAULTS[method]["samples"]
    if replications is None:
        replications = own.replications if own_sampled else DEFAULTS[method]["replications"]
    parameters = {key: rng for f in factors for key, rng in f.ranges.items()}
    block: dict[str, Any] = {
        "design": method,
        "parameters": parameters,
        "samples": int(samples),
        "replications": int(replications),
    }
    if any(f.n_keys > 1 or f.name not in f.ranges for f in factors):
        block["groups"] = {key: f.name for f in factors for key in f.ranges}
    if own is not None and own.seed is not None:
        block["seed"] = own.seed
    data = scenario.resolved_dict()
    data["sweep"] = block
    try:
        result = Scenario.from_dict(data, scenario.source_file)
    except CollabsimInputError as exc:
        option, value = given.get(exc.key or "", (None, None))
        if option is None or value is None:  # the scenario's own value: the file is at fault
            raise
        # the user typed the option, not the file's sweep block: name the option
        raise CollabsimInputError(None, option, exc.value, exc.allowed, problem=exc.problem, hint=exc.hint) from None
    result._source_file = scenario.source_file
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------------------------------


def _outputs(results: Any, metrics: Iterable[str]) -> list[tuple[str, str, str, np.ndarray]]:
    """(output name, metric, arm, one value per design point in point order) for every metric and arm, and the gap
    (second arm minus first, paired by replicate) when there are two arms."""
    summary = results.summary
    n_points = int(results.manifest["n_points"])
    arms = results.arms
    out = []
    for metric in metrics:
        per_arm = summary.pivot_table(index=["point", "replicate"], columns="arm", values=metric, dropna=False)
        for arm in arms:
            y = summary[summary["arm"] == arm].groupby("point")[metric].mean()  # pandas means skip NaN
            name = metric if arms == ["base"] else f"{metric} [{arm}]"
            out.append((name, metric, arm, y.reindex(range(n_points)).to_numpy(dtype=float)))
        if len(arms) == 2:
            gap = (per_arm[arms[1]] - per_arm[arms[0]]).groupby(level="point").mean()
            label = f"{arms[1]} - {arms[0]}"
            out.append((f"{metric} gap [{label}]", metric, label, gap.reindex(range(n_points)).to_numpy(dtype=float)))
    return out


def analyse(results: Any, metrics: Iterable[str] = METRICS, *, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """SALib indices of every output of a finished morris or sobol sweep; returns (ranked table, notes).

    The table has one row per (output, factor): ``output``, ``metric``, ``arm``, ``rank`` (1 = most influential),
    ``factor``, ``n_keys``, then ``mu_star``, ``mu_star_conf``, ``mu``, ``sigma`` (morris) or ``ST``, ``ST_conf``,
    ``S1``, ``S1_conf`` (sobol). Notes name outputs left out (undefined at some design point)."""
    design = results.manifest["design"]
    method = design["design"]
    if method not in METHODS:
        raise CollabsimInputError(
            None, "sweep.design", method, "morris or sobol", problem="not a sensitivity design (see docs/sweeps.md)"
        )
    if not results.complete:
        raise CollabsimInputError(
            "--out",
            None,
            str(results.path),
            problem=f"the sweep is not finished ({len(results.summary)} of {results.n_runs} runs)",
            hint="run the same command again to finish it",
        )
    problem = {k: v for k, v in design["salib_problem"].items() if k != "sample_scaled"}
    names = list(problem["names"])
    groups = problem.get("groups") or names
    factor_names = list(dict.fromkeys(groups))
    n_keys = {g: groups.count(g) for g in factor_names}
    sample = np.asarray(design["sample"], dtype=float)
    options = design.get("options", {})
    tables, notes = [], []
    for name, metric, arm, y in _outputs(results, metrics):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        if bad:
            notes.append(f"{name}: left out, undefined at {bad} of {len(y)} design points")
            continue
        if method == "morris":
            from SALib.analyze import morris  # noqa: PLC0415

            res = morris.analyze(
                dict(problem), sample, y, num_levels=int(options.get("levels", 4)), conf_level=0.95, seed=seed
            ).to_df()
            df = res[["mu_star", "mu_star_conf", "mu", "sigma"]].copy()
            key = "mu_star"
        else:
            from SALib.analyze import sobol  # noqa: PLC0415

            parts = sobol.analyze(
                dict(problem), y, calc_second_order=bool(options.get("second_order", False)), seed=seed
            ).to_df()
            df = pd.concat([parts[0], parts[1]], axis=1)[["ST", "ST_conf", "S1", "S1_conf"]].copy()
            key = "ST"
        df.index = [str(i) for i in df.index]
        df = df.reindex(factor_names)
        df.insert(0, "factor", factor_names)
        df.insert(1, "n_keys", [n_keys[f] for f in factor_names])
        df = df.sort_values(key, ascending=False, kind="stable", na_position="last").reset_index(drop=True)
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        df.insert(0, "arm", arm)
        df.insert(0, "metric", metric)
        df.insert(0, "output", name)
        tables.append(df)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return table, notes


def index_columns(table: pd.DataFrame) -> tuple[str, str]:
    """(ranking index, its confidence column) of a table from :func:`analyse`."""
    return ("mu_star", "mu_star_conf") if "mu_star" in table.columns else ("ST", "ST_conf")


def format_ranking(table: pd.DataFrame, top: int = 10) -> str:
    """The ranked factors of every output as plain text (the ``top`` first of each)."""
    if table.empty:
        return "no output could be analysed\n"
    value, conf = index_columns(table)
    lines = []
    for output, df in table.groupby("output", sort=False):
        lines.append(f"{output}: {value} (± 95% confidence half-width)")
        for row in df.head(top).itertuples(index=False):
            v, c = getattr(row, value), getattr(row, conf)
            keys = f" ({row.n_keys} keys)" if row.n_keys > 1 else ""
            lines.append(f"  {row.rank:>3}  {row.factor:<42} {v:9.4f} ± {c:.4f}{keys}")
        if len(df) > top:
            lines.append(f"  ... {len(df) - top} more in sensitivity.csv")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One ranked horizontal bar chart per output (index with its confidence half-width as error bar)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    value, conf = index_columns(table)
    outputs = list(dict.fromkeys(table["output"]))
    ncols = min(3, max(1, len(outputs)))
    nrows = math.ceil(len(outputs) / ncols)
    n_factors = int(table.groupby("output").size().max())
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.2 * ncols, 1.0 + 0.22 * n_factors * nrows), squeeze=False, layout="constrained"
    )
    for ax, output in zip(axes.flat, outputs, strict=False):
        df = table[table["output"] == output].iloc[::-1]
        y = np.arange(len(df))
        err = np.nan_to_num(df[conf].to_numpy(dtype=float))
        colours = ["tab:blue" if f.startswith("rules:") else "tab:orange" for f in df["factor"]]
        ax.barh(y, df[value].to_numpy(dtype=float), xerr=err, color=colours, ecolor="0.3", capsize=2)
        ax.set_yticks(y, list(df["factor"]), fontsize=7)
        ax.set_title(output, fontsize=9)
        ax.set_xlabel(f"{value} (bars: 95% CI half-width)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(outputs) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title + "   (blue: rule-weight groups, orange: scenario parameters)", fontsize=10)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    """The options of ``collabsim sensitivity`` (the scenario and --set are added by the CLI)."""
    parser.add_argument("--method", choices=METHODS, default="morris", help="morris (screening; default) or sobol")
    parser.add_argument(
        "--parameters",
        action="append",
        metavar="FACTOR",
        default=[],
        help="a factor to analyse (repeatable): rules, scenario, a default factor such as rules:trust or "
        "partnering.ambition, or KEY=LOW:HIGH[:log]. Default: the scenario's own morris/sobol parameters, else "
        "every rule family and the main scenario parameters",
    )
    parser.add_argument(
        "--samples", type=int, metavar="N", help="morris trajectories (default 20) or sobol base sample (default 64)"
    )
    parser.add_argument("--replications", type=int, metavar="N", help="runs per design point and arm (default 5/2)")
    parser.add_argument("--out", metavar="DIR", help="results directory (default: out/<scenario name>-<method>)")
    parser.add_argument("--executor", choices=("serial", "process", "dask"), default="process")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the CPUs available)")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="factors printed per output (default 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def _positive(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise CollabsimInputError(None, option, value, "an integer >= 1")


def run_command(args: Any, scenario: Scenario, log: TextIO = sys.stderr) -> int:
    """``collabsim sensitivity``: build the design, run the sweep (resumable), analyse, write and print."""
    for option in ("samples", "replications", "workers", "top"):
        _positive(f"--{option}", getattr(args, option))
    factors = parse_parameters(scenario, args.parameters) if args.parameters else None
    sc = sensitivity_scenario(scenario, args.method, factors, args.samples, args.replications)
    out = Path(args.out) if args.out else Path("out") / f"{scenario.name}-{args.method}"
    from collabsim.design import design_size  # noqa: PLC0415
    from collabsim.sweeps import sweep  # noqa: PLC0415

    spec = sc.sweep_spec
    assert spec is not None
    n_groups = len({(spec.groups or {}).get(k, k) for k in spec.parameters})
    n_runs = design_size(spec) * max(1, len(sc.arms or {})) * spec.replications
    if not args.quiet:
        print(
            f"{args.method}: {n_groups} factors ({len(spec.parameters)} keys), {spec.samples} "
            f"{'trajectories' if args.method == 'morris' else 'base samples'}, {spec.replications} replicates, "
            f"{len(sc.arms or {}) or 1} arm(s): {n_runs} runs into {out}",
            file=log,
        )
    results = sweep(
        sc,
        executor=args.executor,
        out=out,
        workers=args.workers,
        timeseries=False,
        progress=not args.quiet,
        log=None if args.quiet else log,
    )
    table, notes = analyse(results)
    table.to_csv(out / "sensitivity.csv", index=False)
    if not table.empty:
        plot(table, out / "sensitivity.png", title=f"{scenario.name}: {args.method}")
    for note in notes:
        print(f"collabsim: note: {note}", file=log)
    if not args.quiet:
        sys.stdout.write(format_ranking(table, top=args.top))
        print(f"wrote {out / 'sensitivity.csv'}" + (f" and {out / 'sensitivity.png'}" if not table.empty else ""))
    return 0
