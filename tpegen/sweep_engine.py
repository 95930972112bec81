"""Run the tasks of a sweep: content-addressed result cache, serial or Dask execution, progress.

:class:`ResultCache` files every finished task under its key (:func:`tpegen.sweep_tasks.task_key`)
in ``DIR/cache/<2 hex>/<key>.json`` as soon as it finishes, written atomically, so an interrupted
sweep resumes where it stopped and a re-run computes nothing. Results come back to the client, which
alone writes the cache: workers need no shared file system.

:func:`execute` runs the tasks not in the cache, serially in this process or on Dask
(``dask.distributed``): a :class:`~distributed.LocalCluster` of ``workers`` processes with one
thread each (default: one per core), or an existing cluster at ``scheduler`` (``tcp://HOST:PORT``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpegen.errors import ConfigError, TpegenError
from tpegen.sweep_tasks import run_task

MAX_WORKERS = 1024


@dataclass
class Progress:
    """Where a sweep stands: tasks ``done`` of ``total`` (``cached`` of them from the cache,
    ``failed`` of them failed), seconds since execution started, and
    the ``points_done`` of the ``points`` (groups of tasks) that :func:`execute` was given."""

    total: int
    done: int = 0
    cached: int = 0
    failed: int = 0
    started: float = 0.0
    points: int = 0  # the points given to execute(), and those whose every task is done
    points_done: int = 0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate of the tasks computed so far (None before the first)."""
        computed = self.done - self.cached
        if computed <= 0:
            return None
        return (time.perf_counter() - self.started) / computed * (self.total - self.done)

    def describe(self) -> str:
        """One line for a progress bar: points done, tasks cached and failed, the ETA."""
        eta = "-" if self.eta_seconds is None else f"{self.eta_seconds:.0f} s"
        return (
            f"points {self.points_done}/{self.points}, cached {self.cached}, failed {self.failed}, ETA {eta}"
        )


class ResultCache:
    """Task results on disk by key (see the module docstring); a damaged entry is a miss."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        return entry.get("result") if isinstance(entry, dict) else None

    def put(self, key: str, task: dict[str, Any], result: dict[str, Any]) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{key[:16]}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the user's umask applies
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"task": task, "result": result}, fh)
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def check_execution(serial: bool, workers: Any, scheduler: Any) -> None:
    """Reject a bad ``--workers`` (an integer in 1..1024) or a contradictory combination."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS
    ):
        raise ConfigError("--workers", f"an integer in 1..{MAX_WORKERS}", workers)
    if serial and (workers is not None or scheduler is not None):
        raise ConfigError("--serial", "given without --workers and --scheduler")
    if scheduler is not None and workers is not None:
        raise ConfigError("--workers", "omitted with --scheduler (the cluster has its workers)", workers)
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ConfigError("--scheduler", "a scheduler address such as tcp://HOST:8786", scheduler)
    if not serial:
        _require_dask()


def _require_dask() -> None:
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise TpegenError("Dask is not installed: pip install 'tpegen[sweep]' (or run with --serial)")


@contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: on the cluster at ``scheduler``, or on a new local cluster of
    ``workers`` single-threaded processes (default: one per core), closed on exit."""
    import logging

    _require_dask()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=20)
        except (OSError, TimeoutError, ValueError) as exc:
            raise TpegenError(
                f"--scheduler {scheduler}: cannot connect ({str(exc).splitlines()[0][:200]})"
            ) from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # any free port: the scheduler serves HTTP even without a dashboard
        silence_logs=logging.ERROR,
        memory_limit=0,  # synthesis runs in the worker's process; let the OS judge its memory
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def execute(
    tasks: dict[str, dict[str, Any]],
    cache: ResultCache,
    *,
    serial: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    runner: Callable[[dict[str, Any]], dict[str, Any]] = run_task,
    points: Mapping[Hashable, Iterable[str]] | None = None,
) -> tuple[dict[str, dict[str, Any]], Progress]:
    """Results of ``tasks`` (by key): from ``cache`` or computed, each new one filed at once.

    ``runner(task)`` computes one task and returns a result in :func:`~tpegen.sweep_tasks.run_task`'s
    format (``status`` ok with ``values``, or failed with ``error`` and ``cacheable``); a bench with
    task kinds of its own passes its function (it must pickle for Dask: a module-level function of
    an importable module or of the ``__main__`` script). ``points`` groups the task keys (a point's
    tasks over its workloads) for :attr:`Progress.points_done`, counted as tasks finish. Returns the
    results and the final :class:`Progress` (its ``cached`` counts the hits)."""
    check_execution(serial, workers, scheduler)
    waiting = {point: set(keys) for point, keys in (points or {}).items()}
    owners: dict[str, list[Hashable]] = {}
    for point, keys in waiting.items():
        for key in keys:
            owners.setdefault(key, []).append(point)
    state = Progress(total=len(tasks), started=time.perf_counter(), points=len(waiting))
    state.points_done = sum(not keys for keys in waiting.values())

    def mark(key: str) -> None:
        state.done += 1
        for point in owners.get(key, ()):
            waiting[point].discard(key)
            state.points_done += not waiting[point]

    results: dict[str, dict[str, Any]] = {}
    for key in tasks:
        hit = cache.get(key)
        if hit is not None:
            results[key] = hit
            mark(key)
            state.cached += 1
            state.failed += hit.get("status") != "ok"
    todo = [key for key in tasks if key not in results]
    state.started = time.perf_counter()
    report = progress or (lambda _state: None)
    report(state)

    def finished(key: str, result: dict[str, Any]) -> None:
        results[key] = result
        if result["status"] == "ok" or result.get("cacheable"):
            cache.put(key, tasks[key], result)
        mark(key)
        state.failed += result["status"] != "ok"
        report(state)

    if not todo:
        return results, state
    if serial:
        for key in todo:
            finished(key, runner(tasks[key]))
        return results, state
    from distributed import as_completed

    local = min(workers or os.cpu_count() or 1, len(todo))  # no idle workers to start
    with dask_client(scheduler, None if scheduler else local) as client:
        futures = {
            client.submit(runner, tasks[key], key=f"tpegen-sweep-{key}", retries=0): key for key in todo
        }
        for future in as_completed(futures):
            key = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not import tpegen
                text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                result = {
                    "status": "failed",
                    "error": f"worker error: {type(exc).__name__}: {text}",
                    "cacheable": False,
                }
            finished(key, result)
    return results, state
