"""Executors: where the batches of a sweep run. One interface, three implementations.

- ``serial``: in this process, one batch after another (debugging, tiny sweeps, profiling).
- ``process`` (the default): a pool of local worker processes (``concurrent.futures.ProcessPoolExecutor``; new
  workers are forked from a clean server process, ``forkserver``, where the platform has it, else spawned).
- ``dask``: ``dask.distributed``: with a scheduler address it submits to that cluster (every worker must have
  collabsim installed); without one it starts a ``LocalCluster`` of worker processes bound to 127.0.0.1 and stops it
  afterwards. An optional extra: ``pip install "collabsim[dask]"``.

An executor maps a function over tasks and yields the results *as they finish* (any order), keeping only a few tasks
in flight (twice the number of workers), so neither tasks nor results pile up in memory. Results never depend on the
executor: a run's numbers depend only on its scenario, seed and key.

Each run uses ``numba_threads`` numba threads (default 1): a sweep's parallelism comes from runs side by side, and
the engine's parallel kernels on small populations are many times slower when their threads compete for the CPUs
with other workers (measured: 25 ms per 8-organisation run on one thread, 1 s on two threads of a busy 2-CPU host).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from collabsim.errors import CollabsimInputError

__all__ = [
    "EXECUTORS",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "available_cpus",
    "make",
    "numba_threads",
]

EXECUTORS = ("serial", "process", "dask")


def available_cpus() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Executor(abc.ABC):
    """Runs ``fn(task)`` for each task and yields the results as they finish."""

    name: str = "executor"
    #: parallel slots (worker processes or threads)
    workers: int = 1
    #: numba threads each run should use (None: leave the worker's setting alone)
    numba_threads: int | None = 1
    #: whether the workers see this machine's files (then they write bulky outputs themselves)
    shares_files: bool = True

    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        """Yield ``fn(task)`` for every task, in the order they finish. An exception in a task is raised here."""

    def close(self, cancel: bool = False) -> None:  # noqa: B027 - optional for subclasses
        """Release the workers; with ``cancel``, stop the tasks in flight at once (Ctrl-C)."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers, "numba_threads": self.numba_threads}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(cancel=exc_type is not None)


class SerialExecutor(Executor):
    """Everything in this process, in task order."""

    name = "serial"

    def __init__(self, numba_threads: int | None = 1) -> None:
        self.numba_threads = numba_threads

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        for task in tasks:
            yield fn(task)


@contextlib.contextmanager
def numba_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` numba threads meanwhile (None: as they are): what a task sets in its worker."""
    if not n:
        yield
        return
    import numba  # noqa: PLC0415

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _process_worker_init(parent: int) -> None:
    # Ctrl-C is the parent's business: it cancels the pool and keeps what has finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker outlives a parent killed with SIGKILL (it waits for tasks forever): leave when the parent is gone.
    threading.Thread(target=_exit_with_parent, args=(parent,), name="collabsim-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    while True:
        time.sleep(interval)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # pragma: no cover - the pid now belongs to someone else's process
            os._exit(1)


def _mp_context() -> multiprocessing.context.BaseContext:
    # fork is unsafe once numba's thread pool has run in the parent; forkserver forks workers from a clean server
    # that has imported collabsim (numba included) but run nothing, so workers start fast.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["collabsim.api", "collabsim.sweeps"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


class _Window:
    """Keeps at most ``limit`` tasks in flight: submit more as results are taken."""

    def __init__(self, tasks: Iterable[Any], limit: int) -> None:
        self.tasks = iter(tasks)
        self.limit = max(1, limit)
        self.exhausted = False

    def take(self, room: int) -> list[Any]:
        out = []
        while not self.exhausted and len(out) < room:
            try:
                out.append(next(self.tasks))
            except StopIteration:
                self.exhausted = True
        return out


class ProcessExecutor(Executor):
    """A pool of local worker processes."""

    name = "process"

    def __init__(self, workers: int | None = None, numba_threads: int | None = 1) -> None:
        self.workers = int(workers) if workers else available_cpus()
        self.numba_threads = numba_threads
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_mp_context(),
                initializer=_process_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        pool = self._get_pool()
        window = _Window(tasks, 2 * self.workers)
        pending: set[Future[Any]] = {pool.submit(fn, t) for t in window.take(window.limit)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                pending |= {pool.submit(fn, t) for t in window.take(window.limit - len(pending))}
        finally:
            for fut in pending:
                fut.cancel()

    def close(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not cancel:
            pool.shutdown(wait=True)
            return
        pool.shutdown(wait=False, cancel_futures=True)
        kill = getattr(pool, "kill_workers", None)  # Python 3.14
        if kill is not None:
            kill()
        else:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        with contextlib.suppress(Exception):
            pool.shutdown(wait=True)


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Processes started meanwhile ignore SIGINT (the disposition survives exec), so Ctrl-C in a terminal reaches only
    this process, which stops the cluster itself, and the workers do not print tracebacks."""
    try:
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield  # (a Ctrl-C meanwhile is lost: press it again)
    finally:
        signal.signal(signal.SIGINT, before)


class DaskExecutor(Executor):
    """dask.distributed: an existing cluster (``scheduler``) or a LocalCluster on 127.0.0.1 with ``workers``
    single-threaded worker processes."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, numba_threads: int | None = 1) -> None:
        self.numba_threads = numba_threads
        try:
            import distributed  # noqa: PLC0415 - an optional extra
        except ImportError:
            raise CollabsimInputError(
                "--executor",
                None,
                "dask",
                problem="the dask executor needs dask.distributed, which is not installed",
                hint="pip install 'collabsim[dask]'",
            ) from None
        self._distributed = distributed
        self._cluster: Any = None
        self.scheduler = scheduler
        if scheduler:
            try:
                self._client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise CollabsimInputError(
                    "--scheduler", None, scheduler, problem=f"cannot connect to the Dask scheduler: {exc}"
                ) from None
            self.workers = max(1, sum(self._client.nthreads().values()))
            self.shares_files = False  # workers elsewhere: results come back through the scheduler
        else:
            self.workers = int(workers) if workers else available_cpus()
            with _sigint_ignored_by_children():
                self._cluster = distributed.LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster)

    @property
    def address(self) -> str:
        return str(self._client.scheduler.address)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scheduler": self.scheduler or f"LocalCluster at {self.address}"}

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        client = self._client
        window = _Window(tasks, 2 * self.workers)
        running = self._distributed.as_completed()
        in_flight = 0
        for t in window.take(window.limit):
            running.add(client.submit(fn, t, pure=False))
            in_flight += 1
        try:
            for fut in running:
                in_flight -= 1
                result = fut.result()
                fut.release()
                yield result
                for t in window.take(window.limit - in_flight):
                    running.add(client.submit(fn, t, pure=False))
                    in_flight += 1
        finally:
            with contextlib.suppress(Exception):
                client.cancel(list(running.futures))

    def close(self, cancel: bool = False) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None


def make(
    name: str = "process", workers: int | None = None, scheduler: str | None = None, numba_threads: int | None = 1
) -> Executor:
    """The executor called ``name`` (serial, process or dask); each run uses ``numba_threads`` numba threads."""
    if name not in EXECUTORS:
        raise CollabsimInputError("--executor", None, name, "one of: " + ", ".join(EXECUTORS))
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise CollabsimInputError("--workers", None, workers, "an integer >= 1")
    if scheduler and name != "dask":
        raise CollabsimInputError(
            "--scheduler", None, scheduler, problem=f"a scheduler address needs --executor dask, not {name}"
        )
    if name == "serial":
        if workers not in (None, 1):
            raise CollabsimInputError(
                "--workers", None, workers, problem="the serial executor runs one worker", hint="use --executor process"
            )
        return SerialExecutor(numba_threads)
    if name == "process":
        return ProcessExecutor(workers, numba_threads)
    if scheduler and workers is not None:
        print("collabsim: note: --workers is ignored with --scheduler (the cluster has its workers)", file=sys.stderr)
    return DaskExecutor(workers, scheduler, numba_threads)
