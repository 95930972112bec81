"""Design-space exploration of the FMA PE: area/delay vs numerical error of approximate normalization.

Sweeps a grid of bf16 x bf16 FMA PE configurations -- accumulator (fp32, bf16), ``norm_window``
(None = exact detector, or a small window), ``shift_granularity``, ``normalize_in_pe`` and rounding
-- and for each one

* synthesizes ONE combinational :class:`tpegen.hw.pe.fma.FmaDatapath` with
  :func:`tpegen.synth.synthesize` on the built-in library (same Amaranth -> Verilog -> synthesize
  call as ``bench/fp_accuracy.py --synth``, plus timing for the delay column). For
  ``normalize_in_pe=False`` the array-edge :class:`~tpegen.hw.pe.fma.FmaNormalizer` (one per column)
  is synthesized too and its area divided by ``--rows`` is added to give ``eff_um2``, the per-PE
  area the Pareto front is computed on (equal to ``pe_um2`` otherwise);
* runs the bit-exact in-order chain :func:`tpegen.sim.fp.gemm_chain` on random bf16 GEMMs
  (``--m x --k x --n``, standard-normal A and W rounded to bf16) and compares with the exact
  fp32-accumulation chain (``bf16_exact``) and with float64 ``A @ W`` of the same bf16 operands.

Error metrics (for reference ``R`` = float64 or exact chain, result ``C``):

* ``fro``: normwise relative error ``||C - R||_F / ||R||_F``;
* ``mean_rel``: mean of the elementwise ``|C - R| / |R|`` (elements with ``R != 0``);
* ``max_rel``: max of ``|C - R| / (|A| @ |W|)`` (elementwise error scaled by the magnitude of the
  dot product's terms, so near-zero results from cancellation do not dominate).

The table is sorted by ``eff_um2``; ``P`` marks the global Pareto front of (``eff_um2``, ``fro``
vs float64) and ``p`` the Pareto front within the same accumulator format of (``eff_um2``,
``fro`` vs the exact fp32 chain). Results go to ``bench/out/fp_dse.json``.

Usage::

    python bench/fp_dse.py                 # full grid (~180 configs, ~4 s synthesis each, cached)
    python bench/fp_dse.py --coarse        # coarse grid: windows {None, 4, 8, 16}, G in {1, 4}
    python bench/fp_dse.py --acc fp32 --windows none 4 8 --granularity 1 4 --jobs 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp

REPO = Path(__file__).resolve().parents[1]
WINDOWS = [None, 2, 4, 6, 8, 12, 16]
GRANULARITIES = [1, 2, 4, 8]


def config_name(p: FmaPEParams) -> str:
    w = "exact" if p.norm_window is None else f"w{p.norm_window}"
    return (
        f"{p.acc_format}_{w}_g{p.shift_granularity}_{'pe' if p.normalize_in_pe else 'relaxed'}_{p.rounding}"
    )


def grid(accs, windows, grans, nips, roundings) -> list[FmaPEParams]:
    out = []
    for acc, nw, g, nip, rnd in itertools.product(accs, windows, grans, nips, roundings):
        if nw is not None and nw % g:
            continue
        out.append(
            FmaPEParams(
                input_format="bf16",
                acc_format=acc,
                rounding=rnd,
                norm_window=nw,
                shift_granularity=g,
                normalize_in_pe=nip,
            )
        )
    return out


def _synth(component, top: str) -> dict:
    """Same flow as ``fp_accuracy.pe_area`` (Verilog of one combinational block -> synthesize)."""
    from amaranth.back import verilog

    from tpegen.synth import synthesize

    rep = synthesize(verilog.convert(component, name=top, emit_src=False), top)
    return {"area_um2": float(rep.area_um2), "delay_ns": rep.delay_ns}


def synth_pe(p: FmaPEParams) -> dict:
    return _synth(p.datapath(), "fma_pe_" + config_name(p))


def synth_edge(p: FmaPEParams) -> dict:
    """The array-edge normalizer depends only on acc format, rounding and the relaxed format."""
    return _synth(p.normalizer(), f"fma_norm_{p.acc_format}_{p.rounding}_gb{p.relaxed_guard_bits}")


def errors(c: np.ndarray, ref: np.ndarray, scale: np.ndarray) -> dict:
    d = np.abs(c - ref)
    nz = ref != 0
    return {
        "fro": float(np.linalg.norm(c - ref) / np.linalg.norm(ref)),
        "mean_rel": float(np.mean(d[nz] / np.abs(ref[nz]))),
        "max_rel": float(np.max(d / scale)),
    }


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """True where no other point is <= in both coordinates and < in one."""
    flags = []
    for i, (a, e) in enumerate(points):
        dom = any((a2 <= a and e2 <= e and (a2 < a or e2 < e)) for j, (a2, e2) in enumerate(points) if j != i)
        flags.append(not dom)
    return flags


def _parse_window(s: str):
    return None if s.lower() in ("none", "exact", "null") else int(s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--acc", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    ap.add_argument("--windows", nargs="+", type=_parse_window, default=WINDOWS, help="'none' = exact")
    ap.add_argument("--granularity", nargs="+", type=int, default=GRANULARITIES)
    ap.add_argument("--nip", nargs="+", default=["true", "false"], choices=["true", "false"])
    ap.add_argument("--rounding", nargs="+", default=["rne", "trunc"], choices=["rne", "trunc"])
    ap.add_argument("--coarse", action="store_true", help="windows {None,4,8,16}, granularity {1,4}")
    ap.add_argument("--m", type=int, default=64)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=8, help="PEs sharing one edge normalizer (array rows)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel synthesis runs")
    ap.add_argument("--no-synth", action="store_true", help="errors only")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "fp_dse.json"))
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 160))
    windows, grans = args.windows, args.granularity
    if args.coarse:
        windows, grans = [None, 4, 8, 16], [1, 4]
    nips = [s == "true" for s in args.nip]
    configs = grid(args.acc, windows, grans, nips, args.rounding)
    # the exact references of each accumulator are always included
    for acc in args.acc:
        ref = FmaPEParams(input_format="bf16", acc_format=acc)
        if ref not in configs:
            configs.insert(0, ref)
    console.print(f"{len(configs)} configurations")

    # ---- numerics ----------------------------------------------------------------------------
    rng = np.random.default_rng(args.seed)
    a_bits = fp.quantize(rng.standard_normal((args.m, args.k)), fp.BF16)
    w_bits = fp.quantize(rng.standard_normal((args.k, args.n)), fp.BF16)
    a, w = fp.decode(a_bits, fp.BF16), fp.decode(w_bits, fp.BF16)
    ref64 = a @ w
    scale = np.abs(a) @ np.abs(w)
    exact32 = fp.decode(fp.gemm_chain(a_bits, w_bits, FmaPEParams(input_format="bf16").fma), fp.FP32)
    rows = []
    t0 = time.perf_counter()
    for p in configs:
        c = fp.decode(fp.gemm_chain(a_bits, w_bits, p.fma), p.fma.acc_fmt)
        rows.append(
            {
                "config": config_name(p),
                "acc": p.acc_format,
                "norm_window": p.norm_window,
                "shift_granularity": p.shift_granularity,
                "normalize_in_pe": p.normalize_in_pe,
                "rounding": p.rounding,
                "err_vs_f64": errors(c, ref64, scale),
                "err_vs_exact_fp32": errors(c, exact32, scale),
            }
        )
    console.print(
        f"numerics: {len(configs)} chains of {args.m}x{args.k}x{args.n} in {time.perf_counter() - t0:.1f} s"
    )

    # ---- synthesis ---------------------------------------------------------------------------
    if not args.no_synth:
        t0 = time.perf_counter()
        edges = {}
        for p in configs:
            if not p.normalize_in_pe:
                edges.setdefault((p.acc_format, p.rounding, p.relaxed_guard_bits), p)
        with ThreadPoolExecutor(max(1, args.jobs)) as ex:
            pe_res = list(ex.map(synth_pe, configs))
            edge_res = dict(zip(edges, ex.map(synth_edge, edges.values()), strict=True))
        for p, r, s in zip(configs, rows, pe_res, strict=True):
            r["pe_um2"], r["delay_ns"] = s["area_um2"], s["delay_ns"]
            edge = None if p.normalize_in_pe else edge_res[(p.acc_format, p.rounding, p.relaxed_guard_bits)]
            r["edge_norm_um2"] = None if edge is None else edge["area_um2"]
            r["edge_norm_delay_ns"] = None if edge is None else edge["delay_ns"]
            r["eff_um2"] = s["area_um2"] + (0.0 if edge is None else edge["area_um2"] / args.rows)
        console.print(f"synthesis: {time.perf_counter() - t0:.1f} s")
        base = {r["acc"]: r["eff_um2"] for r in rows if r["config"].endswith("_exact_g1_pe_rne")}
        for r in rows:
            r["area_saved_pct"] = 100.0 * (1.0 - r["eff_um2"] / base[r["acc"]])
        glob = pareto([(r["eff_um2"], r["err_vs_f64"]["fro"]) for r in rows])
        for r, f in zip(rows, glob, strict=True):
            r["pareto"] = f
        for acc in args.acc:
            sub = [r for r in rows if r["acc"] == acc]
            for r, f in zip(
                sub, pareto([(r["eff_um2"], r["err_vs_exact_fp32"]["fro"]) for r in sub]), strict=True
            ):
                r["pareto_acc"] = f
        rows.sort(key=lambda r: r["eff_um2"])

    table = Table(
        title=f"FMA PE DSE: bf16 inputs, {args.m}x{args.k}x{args.n} N(0,1) GEMM, built-in library "
        f"(P = Pareto area vs fro-err vs f64, p = Pareto within accumulator vs exact chain)"
    )
    cols = ["P", "config", "pe_um2", "eff_um2", "saved%", "delay_ns"]
    cols += ["fro/f64", "mean_rel/f64", "max_rel/f64", "fro/ex32", "mean_rel/ex32", "max_rel/ex32"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("P", "config") else "right")
    for r in rows:
        e64, e32 = r["err_vs_f64"], r["err_vs_exact_fp32"]
        mark = ("P" if r.get("pareto") else "") + ("p" if r.get("pareto_acc") else "")
        syn = "pe_um2" in r
        table.add_row(
            mark,
            r["config"],
            f"{r['pe_um2']:.0f}" if syn else "-",
            f"{r['eff_um2']:.0f}" if syn else "-",
            f"{r['area_saved_pct']:+.1f}" if syn else "-",
            f"{r['delay_ns']:.2f}" if syn and r["delay_ns"] is not None else "-",
            *(f"{e[k]:.2e}" for e in (e64, e32) for k in ("fro", "mean_rel", "max_rel")),
            style="bold" if r.get("pareto") or r.get("pareto_acc") else None,
        )
    console.print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "gemm": {
            "m": args.m,
            "k": args.k,
            "n": args.n,
            "data": "standard normal, RNE to bf16",
            "seed": args.seed,
        },
        "library": "built-in tpegen45.lib",
        "rows_per_edge_normalizer": args.rows,
        "error_metrics": {
            "fro": "||C-R||_F/||R||_F",
            "mean_rel": "mean |C-R|/|R| over R != 0",
            "max_rel": "max |C-R| / (|A|@|W|)",
        },
        "rows": rows,
    }
    out.write_text(json.dumps(meta, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
