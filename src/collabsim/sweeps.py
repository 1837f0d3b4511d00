"""Sweeps: a scenario's design × arms × replications, run by an executor into a results store.

    results = collabsim.sweep("scenarios/size_proximity.yaml", executor="process", out="out/")
    results.summary                       # one row per run: run_id, arm, point, replicate, seed, parameters, metrics
    results.timeseries(arm="mandated")    # the time series of one arm (or one point)
    collabsim.load_results("out/")        # the same, later, from the directory

**Runs.** A sweep is every (design point, arm, replicate): ``n_points * n_arms * replications`` runs, numbered
``run_id = (point * n_arms + arm_index) * replications + replicate``. A run is the scenario with the arm's overrides
and then the point's values applied (validated like a file), simulated with ``simulate(scenario, seed=scenario.seed,
key=(replicate,))``. Its random streams are therefore ``SeedSequence(seed, spawn_key=(replicate,))`` children: they
depend only on the replicate, never on the worker, executor or completion order, and runs of different arms and
design points with the same replicate share their population, partner-choice and event streams (common random
numbers, so differences between arms or points are paired). A scenario without arms has one arm, ``base``.

**Batches.** Runs are executed and stored in fixed batches of consecutive run ids (``batch_size``, fixed when the
output directory is created), one task per batch, so the cost of a task (sending the scenario, starting the work,
writing the files) is shared by several runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from collabsim import executors as executors_module
from collabsim.design import Design, build_design
from collabsim.errors import CollabsimInputError, format_value
from collabsim.io import FORMAT, SweepResults, SweepStore, jsonable, load_results, now
from collabsim.scenario import Scenario, load_scenario

__all__ = [
    "BASE_ARM",
    "MAIN_METRICS",
    "BatchResult",
    "BatchTask",
    "RunFailed",
    "RunSpec",
    "SweepPlan",
    "format_table",
    "run_batch",
    "sweep",
]

#: The arm of a scenario without arms.
BASE_ARM = "base"
#: Metrics of the closing table of ``collabsim sweep``.
MAIN_METRICS = ("share_synergy", "mean_trust", "task_achievement", "share_dissolved", "care_quality")
#: Merge the pending summary parts into summary.parquet when this many have piled up.
MERGE_EVERY = 500


def _metric_names() -> tuple[str, ...]:
    from collabsim.recorder import METRIC_DESCRIPTIONS  # noqa: PLC0415 - imports the engine's modules

    return tuple(METRIC_DESCRIPTIONS)


def _code_hash() -> str:
    """SHA-256 of collabsim's own source files and data: tells whether the code changed between two sessions."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted([*root.glob("*.py"), *root.glob("data/*")]):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    from collabsim.api import versions  # noqa: PLC0415

    out = dict(versions())
    for pkg in ("pyarrow", "SALib", "dask", "distributed"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The plan: which runs a sweep has
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep."""

    run_id: int
    arm: str
    point: int
    replicate: int

    @property
    def key(self) -> tuple[int, ...]:
        """The run's key: its random streams are ``SeedSequence(seed, spawn_key=key)`` children."""
        return (self.replicate,)


def _column_type(values: list[Any]) -> tuple[pa.DataType, Any]:
    """(arrow type, converter) for a parameter column holding ``values``."""
    if values and all(isinstance(v, bool) for v in values):
        return pa.bool_(), bool
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64(), int
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64(), float
    if values and all(isinstance(v, str) for v in values):
        return pa.string(), str
    return pa.string(), lambda v: json.dumps(v, sort_keys=True)  # lists, mappings, null, mixtures


class SweepPlan:
    """The runs of a scenario's sweep: design points × arms × replicates, in run-id order."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.design: Design = build_design(scenario)
        spec = scenario.sweep_spec
        self.replications = spec.replications if spec is not None else 1
        arms = scenario.arms or {}
        self.arm_overrides: dict[str, dict[str, Any]] = (
            {name: dict(ov) for name, ov in arms.items()} if arms else {BASE_ARM: {}}
        )
        self.arm_names: tuple[str, ...] = tuple(self.arm_overrides)
        self.seed = int(scenario.seed)
        data = scenario.model_dump(mode="json", exclude={"arms", "sweep"})
        self.base = Scenario.from_dict(data)  # what runs are made from: no sweep, no arms
        self.base._source_file = scenario.source_file
        self.n_points = len(self.design)
        self.n_arms = len(self.arm_names)
        self.n_runs = self.n_points * self.n_arms * self.replications
        self.parameters = list(self.design.keys)
        self._columns = {
            key: _column_type([p[key] for p in self.design.points]) for key in self.parameters
        }  # key -> (arrow type, converter)

    # -- runs -------------------------------------------------------------------------------------------------------

    def run(self, run_id: int) -> RunSpec:
        if not 0 <= run_id < self.n_runs:
            raise IndexError(run_id)
        rest, replicate = divmod(int(run_id), self.replications)
        point, arm_index = divmod(rest, self.n_arms)
        return RunSpec(int(run_id), self.arm_names[arm_index], point, replicate)

    def runs(self) -> Iterator[RunSpec]:
        for run_id in range(self.n_runs):
            yield self.run(run_id)

    def run_id(self, arm: str, point: int, replicate: int) -> int:
        return (point * self.n_arms + self.arm_names.index(arm)) * self.replications + replicate

    def overrides(self, arm: str, point: int) -> dict[str, Any]:
        """The overrides that make the scenario of (arm, point) from the base: the arm's, then the point's."""
        return {**self.arm_overrides[arm], **self.design.points[point]}

    def scenario_for(self, arm: str, point: int) -> Scenario:
        """The scenario of (arm, point), validated."""
        return _apply(self.base, self.overrides(arm, point))

    def describe_point(self, point: int) -> str:
        values = self.design.points[point]
        return ", ".join(f"{k} = {format_value(v, 40)}" for k, v in values.items()) or "no parameters"

    def validate(self) -> None:
        """Check that the scenario of every (arm, point) is valid; the first problem raises, naming the point."""
        for point in range(self.n_points):
            for arm in self.arm_names:
                try:
                    self.scenario_for(arm, point)
                except CollabsimInputError as exc:
                    where = f"sweep point {point} ({self.describe_point(point)})"
                    if self.arm_names != (BASE_ARM,):
                        where += f", arm {arm}"
                    raise CollabsimInputError(
                        self.scenario.source_file,
                        exc.key,
                        exc.value,
                        exc.allowed,
                        problem=f"{exc.problem + ' ' if exc.problem else ''}in {where}",
                        hint=exc.hint,
                    ) from None

    # -- batches ----------------------------------------------------------------------------------------------------

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(self.n_runs / batch_size)

    def batch_runs(self, batch: int, batch_size: int) -> range:
        return range(batch * batch_size, min((batch + 1) * batch_size, self.n_runs))

    def task(
        self,
        batch: int,
        batch_size: int,
        *,
        timeseries: bool = True,
        numba_threads: int | None = None,
        store: str | None = None,
    ) -> BatchTask:
        runs = []
        for run_id in self.batch_runs(batch, batch_size):
            r = self.run(run_id)
            runs.append((r.run_id, r.arm, r.point, r.replicate, self.overrides(r.arm, r.point)))
        return BatchTask(batch, self.base, self.seed, runs, timeseries, numba_threads, store)

    def default_batch_size(self, workers: int) -> int:
        """Enough runs per task to amortise its overhead, and enough tasks to keep ``workers`` busy."""
        return int(min(32, max(1, self.n_runs // (4 * max(1, workers)))))

    # -- identity and storage ---------------------------------------------------------------------------------------

    def identity(self) -> str:
        """Hash of what the results depend on: the scenario (content hash) and the design points in order."""
        payload = {
            "scenario_hash": self.scenario.content_hash(),
            "parameters": self.parameters,
            "points": jsonable(list(self.design.points)),
            "arms": list(self.arm_names),
            "replications": self.replications,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def summary_schema(self) -> pa.Schema:
        fields = [
            pa.field("run_id", pa.int64()),
            pa.field("arm", pa.string()),
            pa.field("point", pa.int64()),
            pa.field("replicate", pa.int64()),
            pa.field("seed", pa.int64()),
        ]
        fields += [pa.field(k, self._columns[k][0]) for k in self.parameters]
        fields += [pa.field(m, pa.float64()) for m in _metric_names()]
        return pa.schema(fields)

    def summary_table(self, result: BatchResult) -> pa.Table:
        """The summary rows of a finished batch, with the parameter values of each run's point."""
        rows = result.summaries
        cols: dict[str, list[Any]] = {
            "run_id": [r["run_id"] for r in rows],
            "arm": [r["arm"] for r in rows],
            "point": [r["point"] for r in rows],
            "replicate": [r["replicate"] for r in rows],
            "seed": [self.seed] * len(rows),
        }
        for key in self.parameters:
            convert = self._columns[key][1]
            cols[key] = [convert(self.design.points[r["point"]][key]) for r in rows]
        for m in _metric_names():
            cols[m] = [float(r["metrics"].get(m, math.nan)) for r in rows]
        return pa.table(cols, schema=self.summary_schema())

    def manifest(self, batch_size: int, timeseries: bool) -> dict[str, Any]:
        sc = self.scenario
        spec = sc.sweep_spec
        return jsonable(
            {
                "format": FORMAT,
                "created": now(),
                "scenario_name": sc.name,
                "scenario_file": str(sc.source_file) if sc.source_file else None,
                "scenario_hash": sc.content_hash(),
                "sweep_id": self.identity(),
                "scenario": sc.resolved_dict(),
                "design": self.design.to_dict(),
                "arms": {name: self.arm_overrides[name] for name in self.arm_names},
                "replications": self.replications,
                "n_points": self.n_points,
                "n_runs": self.n_runs,
                "run_order": "run_id = (point * n_arms + arm_index) * replications + replicate",
                "batch_size": batch_size,
                "n_batches": self.n_batches(batch_size),
                "timeseries": bool(timeseries),
                "seeds": {
                    "seed": self.seed,
                    "run_key": "(replicate,)",
                    "scheme": "each run: simulate(scenario of its arm and point, seed=seed, key=(replicate,)); "
                    "its streams are SeedSequence(seed, spawn_key=(replicate,)) children, shared by all arms "
                    "and points (common random numbers)",
                    "design_seed": self.design.seed,
                    "design_seed_source": "sweep.seed" if spec is not None and spec.seed is not None else "seed",
                },
                "columns": {"parameters": self.parameters, "metrics": list(_metric_names())},
                "versions": _versions(),
                "code_hash": _code_hash(),
                "sessions": [],
            }
        )


@functools.lru_cache(maxsize=256)
def _apply_cached(base_json: str, overrides_json: str) -> Scenario:
    base = Scenario.model_validate_json(base_json)
    return base.with_overrides(json.loads(overrides_json), source="sweep") if overrides_json != "{}" else base


def _apply(base: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    return base.with_overrides(dict(overrides), source="sweep") if overrides else base


# ---------------------------------------------------------------------------------------------------------------------
# The work: one batch of runs (in a worker)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BatchTask:
    """What a worker needs to run one batch: the base scenario, the seed, and each run's id, arm, point, replicate
    and overrides."""

    batch: int
    base: Scenario
    seed: int
    runs: list[tuple[int, str, int, int, dict[str, Any]]]
    timeseries: bool = True
    numba_threads: int | None = None
    #: the output directory, when the worker shares its file system: the worker writes the time series files itself
    #: (atomically) and returns only the summaries; None = return the time series to the caller
    store: str | None = None


@dataclass
class BatchResult:
    batch: int
    summaries: list[dict[str, Any]]  # run_id, arm, point, replicate, metrics
    timeseries: list[tuple[str, int, pa.Table]] = field(default_factory=list)  # (arm, point, table)
    seconds: float = 0.0
    worker: str = ""


class RunFailed(Exception):
    """A run raised an exception: which run, and the worker's traceback."""

    def __init__(self, run_id: int, arm: str, point: int, replicate: int, error: str, trace: str) -> None:
        super().__init__(run_id, arm, point, replicate, error, trace)
        self.run_id, self.arm, self.point, self.replicate = run_id, arm, point, replicate
        self.error, self.trace = error, trace

    def __str__(self) -> str:
        return (
            f"run {self.run_id} (arm {self.arm}, point {self.point}, replicate {self.replicate}) failed: {self.error}"
        )


def run_batch(task: BatchTask) -> BatchResult:
    """Run the runs of one batch and return their summaries and time series (this is what workers execute)."""
    t0 = time.perf_counter()
    with executors_module.numba_threads(task.numba_threads):
        result = _run_batch(task)
    result.seconds = time.perf_counter() - t0
    return result


def _run_batch(task: BatchTask) -> BatchResult:
    from collabsim.api import simulate, simulate_replicates  # noqa: PLC0415 - the engine loads in the worker
    from collabsim.engine import joined_replicates  # noqa: PLC0415
    from collabsim.recorder import timeseries_arrow, timeseries_columns  # noqa: PLC0415 - engine modules, in workers

    base_json = task.base.model_dump_json()

    def failed(run: tuple[int, str, int, int, dict[str, Any]], exc: Exception) -> RunFailed:
        run_id, arm, point, replicate, _ = run
        return RunFailed(run_id, arm, point, replicate, f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def alone(scenario: Scenario, run: tuple[int, str, int, int, dict[str, Any]]) -> Any:
        try:
            return simulate(scenario, seed=task.seed, key=(run[3],))
        except Exception as exc:
            raise failed(run, exc) from None

    def finished() -> Iterator[tuple[tuple[int, str, int, int, dict[str, Any]], Any]]:
        """(run, result) in run order; replicates of one arm and point are consecutive (replicate varies fastest)."""
        for overrides, same in itertools.groupby(task.runs, key=lambda run: json.dumps(run[4], sort_keys=True)):
            alike = list(same)
            try:
                scenario = _apply_cached(base_json, overrides)
            except Exception as exc:
                raise failed(alike[0], exc) from None
            step = joined_replicates(scenario)
            for lo in range(0, len(alike), step):
                group = alike[lo : lo + step]
                try:
                    results = simulate_replicates(scenario, task.seed, [(run[3],) for run in group])
                except Exception as exc:  # find the run that failed: each alone (the same numbers either way)
                    if len(group) > 1:
                        ids = f"{group[0][0]}..{group[-1][0]}"
                        warnings.warn(f"runs {ids} failed joined ({exc!r}); running them one by one", stacklevel=1)
                    results = [alone(scenario, run) for run in group]
                yield from zip(group, results, strict=True)

    summaries: list[dict[str, Any]] = []
    runs: dict[tuple[str, int], list[tuple[int, int, dict[str, np.ndarray]]]] = {}
    for (run_id, arm, point, replicate, _), result in finished():
        summaries.append(
            {"run_id": run_id, "arm": arm, "point": point, "replicate": replicate, "metrics": dict(result.summary)}
        )
        if task.timeseries:  # straight from the recorded arrays to Arrow (no DataFrame per run)
            columns = timeseries_columns(result.engine.records, result.engine.state)
            if len(columns["month"]):
                runs.setdefault((arm, point), []).append((run_id, replicate, columns))
    tables = [
        (
            arm,
            point,
            timeseries_arrow(
                [c for *_, c in group], {"run_id": [r[0] for r in group], "replicate": [r[1] for r in group]}
            ),
        )
        for (arm, point), group in runs.items()
    ]
    if task.store is not None:  # a batch is committed by its summary part, which the caller writes afterwards
        SweepStore(task.store).write_timeseries(task.batch, tables)
        tables = []
    return BatchResult(task.batch, summaries, tables, 0.0, f"{os.uname().nodename}:{os.getpid()}")


# ---------------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------------


def _as_scenario(scenario: Scenario | str | os.PathLike[str] | None, overrides: Mapping[str, Any] | None) -> Scenario:
    if scenario is None:
        scenario = "baseline"
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if overrides:
        sc = sc.with_overrides(dict(overrides))
    return sc


def sweep(
    scenario: Scenario | str | os.PathLike[str] | None,
    executor: str | executors_module.Executor = "process",
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    timeseries: bool = True,
    threads: int | None = 1,
    progress: bool = False,
    log: Any = None,
) -> SweepResults:
    """Run the sweep of ``scenario`` (its ``sweep:`` design × ``arms`` × replications) and return its results.

    Args:
        scenario: a Scenario, a scenario file, or a built-in scenario name.
        executor: ``"serial"``, ``"process"`` (a local process pool, the default) or ``"dask"``; or an Executor.
        out: the output directory (see :mod:`collabsim.io`); None = a new temporary directory (``results.path``).
            Running into a directory that holds this sweep resumes it: finished runs are skipped.
        workers: worker processes (process, or dask without a scheduler); default: the CPUs available.
        scheduler: address of a running Dask scheduler (``tcp://host:8786``), for ``executor="dask"``.
        resume: require that ``out`` already holds this sweep.
        overrides: ``{"dotted.key": value}`` applied to the scenario first (like ``--set``).
        batch_size: runs per task (fixed when ``out`` is created); default: from the number of runs and workers.
        timeseries: also store every run's time series (fixed when ``out`` is created).
        threads: numba threads per run (default 1: a sweep runs runs side by side; more helps only few, large
            runs; None leaves each worker's setting). Results do not depend on it.
        progress: show a progress bar on stderr.
        log: a file for notes (default: stderr when ``progress``, else none).

    Raises :class:`CollabsimInputError` for bad input (scenario, sweep block, an output directory holding something
    else), :class:`RunFailed` when a run raises, and KeyboardInterrupt on Ctrl-C, in every case after storing the
    runs that had finished.
    """
    sc = _as_scenario(scenario, overrides)
    plan = SweepPlan(sc)
    plan.validate()
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise CollabsimInputError("--batch-size", None, batch_size, "an integer >= 1")
    log = log if log is not None else (sys.stderr if progress else None)
    out_path = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="collabsim-sweep-"))
    store = SweepStore(out_path)
    if out_path.exists() and not out_path.is_dir():
        raise CollabsimInputError("--out", None, str(out_path), problem=f"{out_path} exists and is not a directory")
    exe = executor if isinstance(executor, executors_module.Executor) else None
    if exe is None and executor not in executors_module.EXECUTORS:
        raise CollabsimInputError("--executor", None, executor, "one of: " + ", ".join(executors_module.EXECUTORS))
    owned = exe is None  # close only an executor made here
    if owned:  # made (and, for Dask, connected) before anything is written: a failure leaves OUT untouched
        exe = executors_module.make(str(executor), workers, scheduler, threads)
    try:
        _sweep_into(plan, sc, store, exe, owned, out_path, batch_size, timeseries, resume, progress, log)
    finally:
        if owned:
            exe.close()
    return load_results(out_path)


def _sweep_into(plan, sc, store, exe, owned, out_path, batch_size, timeseries, resume, progress, log) -> None:
    """The body of ``sweep`` once its executor exists: the batch size follows the executor's real workers (a
    cluster's, with --scheduler)."""
    planned_workers = 1 if exe.name == "serial" else exe.workers
    manifest = plan.manifest(batch_size or plan.default_batch_size(planned_workers), timeseries)
    store.check(manifest, resume=resume)  # refuse a directory holding something else before touching it
    with store.locked():
        resumed = store.open(manifest, resume=resume)
        _warn_if_code_changed(store.manifest, manifest, log)
        size = store.batch_size
        store_ts = bool(store.manifest.get("timeseries", True))
        store.merge_pending()
        done = store.done_batches()
        todo = [b for b in range(plan.n_batches(size)) if b not in done]
        n_done = sum(len(plan.batch_runs(b, size)) for b in done if b < plan.n_batches(size))
        if log is not None:
            what = f"resuming: {n_done} of {plan.n_runs} runs already done" if resumed else f"{plan.n_runs} runs"
            print(
                f"sweep {sc.name}: {plan.n_points} design point(s) ({plan.design.kind}) x {plan.n_arms} arm(s) x "
                f"{plan.replications} replicate(s) = {what}; results in {out_path}",
                file=log,
            )
        if todo:
            session = {"started": now(), **exe.describe(), "runs_before": n_done}
            store.update_manifest(sessions=[*store.manifest.get("sessions", []), session])
            _execute(plan, store, exe, todo, size, store_ts, n_done, progress, False)
        store.merge_pending()
        with contextlib.suppress(OSError):
            store.pending_dir.rmdir()  # when empty
        results = load_results(out_path)
        store.update_manifest(finished_runs=len(results.summary), complete=results.complete, updated=now())
        results.manifest = store.manifest
    return results


def _warn_if_code_changed(stored: dict[str, Any], current: dict[str, Any], log: Any) -> None:
    if stored.get("code_hash") == current.get("code_hash"):
        return
    text = (
        "collabsim's code changed since this sweep started; the runs finished before come from the earlier code "
        "(see sessions and code_hash in manifest.json)"
    )
    if log is not None:
        print(f"collabsim: warning: {text}", file=log)
    else:
        warnings.warn(text, stacklevel=3)


def _execute(
    plan: SweepPlan,
    store: SweepStore,
    exe: executors_module.Executor,
    todo: list[int],
    size: int,
    timeseries: bool,
    n_done: int,
    progress: bool,
    owned: bool = True,
) -> None:
    from tqdm.auto import tqdm  # noqa: PLC0415

    shared = str(store.path.resolve()) if timeseries and exe.shares_files else None
    tasks = (plan.task(b, size, timeseries=timeseries, numba_threads=exe.numba_threads, store=shared) for b in todo)
    bar = tqdm(
        total=plan.n_runs,
        initial=n_done,
        unit="run",
        desc="sweep",
        disable=not progress,
        smoothing=0.05,
        mininterval=0.5,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    cancel = True
    pending = 0
    try:
        with bar:
            for result in exe.map_unordered(run_batch, tasks):
                store.write_batch(result.batch, plan.summary_table(result), result.timeseries if timeseries else [])
                bar.update(len(result.summaries))
                pending += 1
                if pending >= MERGE_EVERY:
                    store.merge_pending()
                    pending = 0
        cancel = False
    finally:
        if owned or cancel:
            exe.close(cancel=cancel)
        store.merge_pending()


# ---------------------------------------------------------------------------------------------------------------------
# The closing table
# ---------------------------------------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def _fmt_value(x: Any) -> str:
    """A parameter value as a user would write it (10000, not 1e+04)."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)) and math.isfinite(x):
        return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"
    return x if isinstance(x, str) else format_value(x, 30)


def format_table(results: SweepResults, metrics: list[str] | None = None, max_rows: int = 30) -> str:
    """The main metrics by arm and design point: mean over replicates ± the half-width of a normal 95% interval."""
    if results.summary.empty:
        return "no finished runs\n"
    table = results.table(metrics)
    metrics = [c for c in table.columns if c not in ("arm", "point", "n") and not c.endswith(" ±")]
    one_arm = len(results.arms) == 1
    one_point = len(results.design) == 1
    headers = [*([] if one_arm else ["arm"]), *([] if one_point else ["point", *results.parameters]), "n", *metrics]
    design = results.design.set_index("point")
    rows = []
    for _, r in table.head(max_rows).iterrows():
        cells = [] if one_arm else [str(r["arm"])]
        if not one_point:
            cells += [str(int(r["point"]))] + [_fmt_value(design.at[int(r["point"]), k]) for k in results.parameters]
        cells.append(str(int(r["n"])))
        for m in metrics:
            half = r[m + " ±"]
            cells.append(_fmt(r[m]) + ("" if pd.isna(half) else f" ±{half:.2g}"))
        rows.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() for cells in rows]
    if len(table) > max_rows:
        lines.append(
            f"... {len(table) - max_rows} more rows: load them with collabsim.load_results({str(results.path)!r})"
        )
    return "\n".join(lines) + "\n"
