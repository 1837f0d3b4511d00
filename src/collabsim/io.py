"""The results store of a sweep: Parquet tables and a JSON manifest, written atomically as runs finish.

Layout of an output directory ``OUT``::

    OUT/manifest.json         the sweep: scenario as resolved and its content hash, design, arms, replications,
                              seeds, batch size, package versions; written before the first run
    OUT/summary.parquet       one row per finished run, sorted by run_id: run_id, arm, point, replicate, seed,
                              the parameter values, every summary metric
    OUT/timeseries/arm=A/point=P/batch-000012.parquet
                              the time series of the runs of batch 12 that belong to arm A and design point P
                              (hive partitioning: load one arm or one point by path or with a filter)
    OUT/_pending/summary-000012.parquet
                              finished batches not yet merged into summary.parquet (merged at the end of a sweep,
                              on Ctrl-C, when many pile up, and when a sweep resumes)

Runs are grouped in fixed *batches* (batch ``b`` is runs ``b * batch_size`` ... ``(b + 1) * batch_size - 1``; the
batch size is fixed when the directory is created). A batch is finished when its summary part exists: its time series
files are written first, then the part, each to a hidden temporary name and renamed into place (``os.replace``, after
``fsync``), so a file is either complete or absent. A sweep killed at any moment therefore loses only the batches in
flight; the next run into the same directory deletes the leftover temporaries, overwrites the time series of
unfinished batches (same names, same contents) and completes the rest. Merging rewrites ``summary.parquet`` the same
way, streaming row groups, so memory stays flat however many runs there are.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from collabsim.errors import CollabsimInputError

__all__ = ["FORMAT", "SweepResults", "SweepStore", "atomic_write", "load_results"]

FORMAT = "collabsim-sweep/1"
MANIFEST = "manifest.json"
SUMMARY = "summary.parquet"
PENDING = "_pending"
TIMESERIES = "timeseries"
LOCK = ".lock"
_PART = re.compile(r"summary-(\d+)\.parquet")
_TS_PART = re.compile(r"batch-(\d+)\.parquet")
_TEMP = re.compile(r"\..+\.tmp-\d+-[0-9a-f]+")
_ROW_GROUP = 65_536


# ---------------------------------------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Create or replace ``path`` all at once: ``write(tmp)`` writes a hidden temporary file beside it, which is
    flushed to disk and renamed over ``path``. Readers (and a process killed at any moment) see the old file or the
    new one, never a part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
            fh.write("\n")

    atomic_write(path, write)


def _write_table(path: Path, table: pa.Table) -> None:
    # dictionary-encode all but the floating-point columns: measured values hardly repeat, and building their
    # dictionaries only to drop them made writing a batch's time series 2-3 times slower (same data read back)
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary))


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, non-finite floats as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------------------------


class SweepStore:
    """One output directory. Create with :meth:`open`; write finished batches with :meth:`write_batch`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self.manifest: dict[str, Any] = {}

    # -- paths ----------------------------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def pending_dir(self) -> Path:
        return self.path / PENDING

    def part_path(self, batch: int) -> Path:
        return self.pending_dir / f"summary-{batch:06d}.parquet"

    def timeseries_path(self, arm: str, point: int, batch: int) -> Path:
        return self.path / TIMESERIES / f"arm={arm}" / f"point={point}" / f"batch-{batch:06d}.parquet"

    # -- opening ----------------------------------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CollabsimInputError(
                str(self.manifest_path), problem=f"cannot be read: {exc.strerror or exc}"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise CollabsimInputError(str(self.manifest_path), problem="is not valid JSON") from None
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[SweepStore]:
        """Hold an exclusive lock on the directory (released when the process ends, however it ends)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CollabsimInputError(
                "--out", None, str(self.path), problem=f"cannot create the directory: {exc.strerror or exc}"
            ) from None
        try:
            import fcntl  # noqa: PLC0415 - POSIX only
        except ImportError:  # pragma: no cover - Windows: no lock
            yield self
            return
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CollabsimInputError(
                    "--out",
                    None,
                    str(self.path),
                    problem="another sweep is writing into this directory right now",
                ) from None
            self._lock_fd = fd
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the lock

    def open(self, manifest: dict[str, Any], *, resume: bool = False) -> bool:
        """Start a new sweep in this directory, or resume the one it holds. Returns True when resuming.

        A directory holding another sweep (a different scenario or design), the output of ``collabsim run`` or other
        files is refused with a :class:`CollabsimInputError`. With ``resume=True`` the directory must hold this sweep.
        """
        existing = self.check(manifest, resume=resume)
        if existing is None:
            self.clean_temporaries()
            _write_json(self.manifest_path, manifest)
            self.manifest = manifest
            return False
        self.clean_temporaries()
        self.manifest = existing
        return True

    def check(self, manifest: dict[str, Any], *, resume: bool = False) -> dict[str, Any] | None:
        """Refuse (CollabsimInputError) a directory :meth:`open` would refuse; return the manifest it holds, if
        any. Touches nothing."""
        existing = self.read_manifest()
        shown = str(self.path)
        if existing is None:
            others = [p.name for p in self.path.iterdir() if not p.name.startswith(".")] if self.path.is_dir() else []
            if others:
                raise CollabsimInputError(
                    "--out",
                    None,
                    shown,
                    "a new or empty directory, or the directory of an earlier run of this sweep",
                    problem=f"{shown} is not empty and holds no sweep (found {', '.join(sorted(others)[:3])})",
                )
            if resume:
                raise CollabsimInputError(
                    "--out", None, shown, problem=f"nothing to resume: {shown} holds no sweep", hint="drop --resume"
                )
            return None
        if existing.get("format") != FORMAT:
            what = "the output of `collabsim run`" if "seed" in existing else "another manifest"
            raise CollabsimInputError(
                "--out", None, shown, problem=f"{shown} holds {what}, not a collabsim sweep; choose another --out"
            )
        if existing.get("scenario_hash") != manifest.get("scenario_hash"):
            raise CollabsimInputError(
                "--out",
                None,
                shown,
                problem=(
                    f"{shown} holds a sweep of a different scenario (content hash "
                    f"{str(existing.get('scenario_hash'))[:12]}, this one {str(manifest.get('scenario_hash'))[:12]}); "
                    "choose another --out, or remove that directory to start again"
                ),
            )
        if existing.get("sweep_id") != manifest.get("sweep_id"):
            raise CollabsimInputError(
                "--out",
                None,
                shown,
                problem=(
                    f"{shown} holds a sweep of this scenario with different design points (parameter order, or a "
                    "SALib version that samples differently); choose another --out"
                ),
            )
        return existing

    def update_manifest(self, **changes: Any) -> None:
        self.manifest = {**self.manifest, **changes}
        _write_json(self.manifest_path, jsonable(self.manifest))

    def clean_temporaries(self) -> None:
        """Delete the hidden temporary files a killed writer left behind."""
        if not self.path.is_dir():
            return
        for p in self.path.rglob(".*.tmp-*"):
            if _TEMP.fullmatch(p.name):
                with contextlib.suppress(OSError):
                    p.unlink()

    # -- what is done -----------------------------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return int(self.manifest["batch_size"])

    def pending_batches(self, repair: bool = False) -> dict[int, Path]:
        """Finished batches whose summary part awaits merging. A part that cannot be read or is not this sweep's
        was never finished: it is skipped, and with ``repair`` (the writer, holding the lock) deleted."""
        out: dict[int, Path] = {}
        if not self.pending_dir.is_dir():
            return out
        n_batches = self.manifest.get("n_batches")
        columns = self.manifest.get("columns") or {}
        expected = (
            ["run_id", "arm", "point", "replicate", "seed", *columns["parameters"], *columns["metrics"]]
            if columns
            else None
        )
        for p in self.pending_dir.iterdir():
            m = _PART.fullmatch(p.name)
            if not m:
                continue
            batch = int(m.group(1))
            try:
                names = pq.read_schema(p).names
                valid = (expected is None or names == expected) and (n_batches is None or batch < n_batches)
            except (OSError, pa.ArrowException):
                valid = False
            if not valid:
                if repair:
                    with contextlib.suppress(OSError):
                        p.unlink()
                continue
            out[batch] = p
        return out

    def merged_batches(self) -> set[int]:
        if not self.summary_path.exists():
            return set()
        ids = pq.read_table(self.summary_path, columns=["run_id"]).column("run_id").to_numpy()
        return set(np.unique(ids // self.batch_size).tolist())

    def done_batches(self) -> set[int]:
        return self.merged_batches() | set(self.pending_batches(repair=True))

    # -- writing ----------------------------------------------------------------------------------------------------

    def write_timeseries(self, batch: int, timeseries: list[tuple[str, int, pa.Table]]) -> None:
        """Write the time series files of one batch, one per (arm, point) (a worker may do this itself)."""
        for arm, point, table in timeseries:
            _write_table(self.timeseries_path(arm, point, batch), table)

    def write_batch(self, batch: int, summary: pa.Table, timeseries: list[tuple[str, int, pa.Table]]) -> None:
        """Store one finished batch: its time series files first, then its summary part (the commit)."""
        self.write_timeseries(batch, timeseries)
        _write_table(self.part_path(batch), summary)

    def merge_pending(self) -> int:
        """Merge the pending summary parts into summary.parquet (sorted by run_id, streamed); returns how many."""
        pending = self.pending_batches(repair=True)
        if not pending:
            return 0
        size = self.batch_size
        order = sorted(pending)
        old = pq.ParquetFile(self.summary_path) if self.summary_path.exists() else None
        schema = old.schema_arrow if old is not None else pq.read_schema(pending[order[0]])

        def write(tmp: Path) -> None:
            buffer: list[pa.Table] = []
            rows = 0
            with pq.ParquetWriter(tmp, schema) as writer:

                def emit(table: pa.Table) -> None:
                    nonlocal rows
                    if table.num_rows:
                        buffer.append(table.cast(schema))
                        rows += table.num_rows
                    if rows >= _ROW_GROUP:
                        flush()

                def flush() -> None:
                    nonlocal rows
                    if buffer:
                        writer.write_table(pa.concat_tables(buffer), row_group_size=max(rows, 1))
                        buffer.clear()
                        rows = 0

                i = 0
                if old is not None:
                    for g in range(old.num_row_groups):
                        table = old.read_row_group(g)
                        ids = table.column("run_id").to_numpy()
                        start = 0
                        while i < len(order) and len(ids) and order[i] * size <= ids[-1]:
                            first = order[i] * size
                            pos = int(np.searchsorted(ids, first))
                            if not (pos < len(ids) and ids[pos] == first):  # else merged already (killed mid-merge)
                                emit(table.slice(start, pos - start))
                                start = pos
                                emit(pq.read_table(pending[order[i]]))
                            i += 1
                        emit(table.slice(start))
                for b in order[i:]:
                    emit(pq.read_table(pending[b]))
                flush()

        atomic_write(self.summary_path, write)
        for p in pending.values():
            with contextlib.suppress(OSError):
                p.unlink()
        return len(pending)


# ---------------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class SweepResults:
    """A sweep's results: ``summary`` (one row per finished run), ``design`` (one row per design point), the
    ``manifest``, and :meth:`timeseries` to load the time series of some runs."""

    path: Path
    manifest: dict[str, Any]
    summary: pd.DataFrame
    design: pd.DataFrame
    _done: set[int] = field(default_factory=set, repr=False)

    @property
    def n_runs(self) -> int:
        """Runs in the sweep (finished or not)."""
        return int(self.manifest["n_runs"])

    @property
    def complete(self) -> bool:
        return len(self.summary) == self.n_runs

    @property
    def arms(self) -> list[str]:
        return list(self.manifest["arms"])

    @property
    def parameters(self) -> list[str]:
        return [p["key"] for p in self.manifest["design"]["parameters"]]

    @property
    def metrics(self) -> list[str]:
        return list(self.manifest["columns"]["metrics"])

    def timeseries(
        self,
        arm: str | None = None,
        point: int | None = None,
        *,
        replicate: int | None = None,
        run_id: int | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """The time series of the finished runs of one arm and/or one design point (all when both are None), with
        ``arm`` and ``point`` columns added. Reads only the files of the partitions asked for."""
        root = self.path / TIMESERIES
        arms = [arm] if arm is not None else [p.name.removeprefix("arm=") for p in sorted(root.glob("arm=*"))]
        frames = []
        for a in arms:
            pattern = f"point={point}" if point is not None else "point=*"
            for pdir in sorted((root / f"arm={a}").glob(pattern), key=lambda p: int(p.name.split("=")[1])):
                pt = int(pdir.name.split("=")[1])
                for f in sorted(pdir.glob("batch-*.parquet")):
                    m = _TS_PART.fullmatch(f.name)
                    if not m or int(m.group(1)) not in self._done:
                        continue  # an unfinished batch (the sweep was killed): not part of the results
                    df = pd.read_parquet(f, columns=None if columns is None else ["run_id", "replicate", *columns])
                    if replicate is not None:
                        df = df[df["replicate"] == replicate]
                    if run_id is not None:
                        df = df[df["run_id"] == run_id]
                    df.insert(1, "arm", a)
                    df.insert(2, "point", np.int64(pt))
                    frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["run_id", "arm", "point", "replicate", *(columns or [])])
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["run_id", "month"] if "month" in out else ["run_id"], kind="stable").reset_index(
            drop=True
        )

    def table(self, metrics: list[str] | None = None) -> pd.DataFrame:
        """Mean of ``metrics`` over replicates (and the half-width of a normal 95% interval) by arm and point."""
        from collabsim.sweeps import MAIN_METRICS  # noqa: PLC0415

        metrics = list(metrics or [m for m in MAIN_METRICS if m in self.summary])
        by = [c for c in ("arm", "point") if c in self.summary]
        g = self.summary.groupby(by, sort=True, observed=True)
        mean = g[metrics].mean()
        half = 1.96 * g[metrics].std(ddof=1) / np.sqrt(g[metrics].count())
        out = mean.copy()
        for m in metrics:
            out[m + " ±"] = half[m]
        out.insert(0, "n", g.size())
        return out.reset_index()


def _read_summary(store: SweepStore) -> tuple[pd.DataFrame, set[int]]:
    tables = []
    merged: set[int] = set()
    if store.summary_path.exists():
        t = pq.read_table(store.summary_path)
        tables.append(t)
        merged = set(np.unique(t.column("run_id").to_numpy() // store.batch_size).tolist())
    pending = store.pending_batches() if store.pending_dir.is_dir() else {}
    for b in sorted(pending):
        if b not in merged:
            tables.append(pq.read_table(pending[b]))
    done = merged | set(pending)
    if not tables:
        return pd.DataFrame(), done
    schema = tables[0].schema
    df = pa.concat_tables([t.cast(schema) for t in tables]).to_pandas()
    return df.sort_values("run_id", kind="stable").reset_index(drop=True), done


def load_results(out: str | os.PathLike[str]) -> SweepResults:
    """The results stored in the sweep directory ``out`` (finished runs only; a sweep still running, interrupted or
    killed can be loaded too)."""
    store = SweepStore(out)
    manifest = store.read_manifest()
    if manifest is None or manifest.get("format") != FORMAT:
        raise CollabsimInputError(str(out), problem="not a collabsim sweep directory (no sweep manifest.json)")
    store.manifest = manifest
    summary, done = _read_summary(store)
    if summary.empty:
        columns = ["run_id", "arm", "point", "replicate", "seed", *manifest["columns"]["parameters"]]
        summary = pd.DataFrame(columns=[*columns, *manifest["columns"]["metrics"]])
    points = manifest["design"]["points"]
    keys = [p["key"] for p in manifest["design"]["parameters"]]
    # one frame from all columns at once (inserting hundreds one by one fragments it: pandas warns)
    design = pd.DataFrame(
        {"point": np.arange(len(points), dtype=np.int64), **{k: [p[k] for p in points] for k in keys}}
    )
    return SweepResults(Path(out), manifest, summary, design, done)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
