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

With ``--energy``, each point of ``--energy-configs`` (default: the five shipped FP configs; names
under ``configs/`` or DSE names such as ``fp32_w4_g4_pe_rne``) also gets an energy per FMA: the
datapath is wrapped in a registered stream top (:class:`StreamFmaTop`: input beat ``{a, w, acc_in}``
bit patterns, output ``acc_out`` through one register = the PE's accumulator register), synthesized,
and :func:`tpegen.synth.measure_energy` plays ``--energy-steps`` FMAs (whole dot-product chains of
length ``--k``, N(0,1) operands rounded to bf16, ``acc_in`` = the previous :func:`tpegen.sim.fp.fma`
result, ``+0`` at each chain start, i.e. exactly what an output-stationary PE sees) through the
gate-level netlist, checked bit for bit against the RTL. ``pJ/FMA`` = total energy / FMAs (columns
``comb``/``seq``/``clk``/``leak`` are the PE part), leakage at a common ``--energy-period`` (10 ns).
For ``normalize_in_pe=False`` the column's edge normalizer is measured in its own registered top on
the final relaxed sums of ``--energy-chains`` chains and charged per FMA as its dynamic energy per
normalization / k (one normalization per finished chain) + its leakage per cycle / ``--rows``
(column ``edge``, included in ``pJ/FMA``; the energy analogue of the area's 1/rows rule).
``dE%`` is relative to the exact point of the same accumulator.

The table is sorted by ``eff_um2``; ``P`` marks the global Pareto front of (``eff_um2``, ``fro``
vs float64) and ``p`` the Pareto front within the same accumulator format of (``eff_um2``,
``fro`` vs the exact fp32 chain). Results go to ``bench/results/fp_dse.json`` (``--out``), with the
command, tool versions and date.

Usage::

    python bench/fp_dse.py --energy        # full grid (176 configs, ~4 s synthesis each, cached) + pJ/FMA
    python bench/fp_dse.py                 # full grid without energy
    python bench/fp_dse.py --coarse        # coarse grid: windows {None, 4, 8, 16}, G in {1, 4}
    python bench/fp_dse.py --acc fp32 --windows none 4 8 --granularity 1 4 --jobs 2
    python bench/fp_dse.py --energy --energy-only   # the shipped points with pJ/FMA (~1 min)
    python bench/fp_dse.py --coarse --energy --energy-configs bf16_exact fp32_w8_g4_pe_rne
"""

from __future__ import annotations

import argparse
import itertools
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from provenance import write_result

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
    engine = rep.timing.engine if rep.timing is not None else None
    return {"area_um2": float(rep.area_um2), "delay_ns": rep.delay_ns, "timing_engine": engine}


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


# ------------------------------------------------------------------------------------------------
# energy per FMA (--energy): one registered stream top per config, gate-level energy vs RTL
# ------------------------------------------------------------------------------------------------
_LOCKS: dict[str, threading.Lock] = {}
SHIPPED = [
    "bf16_exact",
    "bf16_exact_bf16acc",
    "bf16_approx_w4_g4",
    "bf16_approx_relaxed_w2_g2",
    "bf16_approx_relaxed_w8",
]


def load_point(name: str) -> FmaPEParams:
    """A design point by name: a YAML under ``configs/`` (or a path), or a DSE name such as
    ``fp32_w4_g4_pe_rne`` (``<acc>_<exact|wS>_g<G>_<pe|relaxed>_<rne|trunc>``, bf16 inputs)."""
    path = Path(name)
    if not path.suffix:
        path = REPO / "configs" / f"{name}.yaml"
    if path.exists():
        from tpegen.config import load_config

        pe = load_config(path).pe
        if not isinstance(pe, FmaPEParams):
            raise SystemExit(f"{name}: not an FMA PE config")
        return pe
    try:
        acc, w, g, nip, rnd = name.split("_")
        return FmaPEParams(
            input_format="bf16",
            acc_format=acc,
            rounding=rnd,
            norm_window=None if w == "exact" else int(w.removeprefix("w")),
            shift_granularity=int(g.removeprefix("g")),
            normalize_in_pe={"pe": True, "relaxed": False}[nip],
        )
    except (ValueError, KeyError):
        raise SystemExit(f"{name}: neither configs/{name}.yaml nor a DSE config name") from None


class StreamFmaTop(wiring.Component):
    """Registered stream wrapper around one combinational block (an FMA datapath or edge normalizer).

    Input beat: the block's input ports concatenated LSB first (``a``, ``w``, ``acc_in`` for the
    datapath; ``acc_in`` for the normalizer), bit patterns as the PE sees them. Output beat: the
    block's ``acc_out``, registered (the PE's accumulator register; 1-cycle latency, one beat per
    cycle with backpressure), so the gate-level simulation has a clock and flops.
    """

    def __init__(self, block, in_ports: tuple[str, ...]):
        self.block, self.in_ports = block, in_ports
        self.widths = [len(getattr(block, n).as_value()) for n in in_ports]
        super().__init__(
            {
                "i": In(stream.Signature(sum(self.widths))),
                "o": Out(stream.Signature(len(block.acc_out.as_value()))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.dp = blk = self.block
        off = 0
        for name, width in zip(self.in_ports, self.widths, strict=True):
            m.d.comb += getattr(blk, name).as_value().eq(self.i.payload[off : off + width])
            off += width
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(blk.acc_out.as_value()), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def chain_workload(k: int, chains: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """bf16 bits of ``chains`` dot products of length ``k``, standard-normal operands: (chains, k)."""
    rng = np.random.default_rng(seed + 1)
    a = fp.quantize(rng.standard_normal((chains, k)), fp.BF16)
    w = fp.quantize(rng.standard_normal((chains, k)), fp.BF16)
    return a, w


def running_sums(a: np.ndarray, w: np.ndarray, p: FmaPEParams) -> np.ndarray:
    """acc_in of every step (chains, k+1): ``+0`` then the partial sums of :func:`fp.fma`, in order."""
    acc = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.int64)
    for j in range(a.shape[1]):
        acc[:, j + 1] = fp.fma(a[:, j], w[:, j], acc[:, j], p.fma)
    return acc


def _stream_energy(block, in_ports, fields, top: str, period_ns: float) -> dict:
    """Synthesize ``StreamFmaTop(block)``, play one beat per row of ``fields``, return energy JSON."""
    from amaranth.back import verilog

    from tpegen.sim.packing import pack_fields
    from tpegen.sim.verilator import StreamProgram
    from tpegen.synth import measure_energy, synthesize

    dut = StreamFmaTop(block, in_ports)
    n = len(fields[0][0])
    beats = pack_fields(fields, len(dut.i.payload))
    rep = synthesize(verilog.convert(dut, name=top, emit_src=False), top, timing=False)
    en = measure_energy(
        rep, [StreamProgram(inputs={"i": beats}, outputs={"o": n})], ops=n, period_ns=period_ns
    )
    if not en.checked_against_rtl:
        raise RuntimeError(f"{top}: energy not checked against the RTL")
    j = en.to_json()
    return {
        "top_um2": float(rep.area_um2),
        "pj_per_op": j["energy_pj_per_op"],
        "breakdown_pj_per_op": j["energy_breakdown_pj_per_op"],
        "ops": n,
        "cycles": j["cycles"],
        "checked_against_rtl": True,
    }


def energy_point(
    p: FmaPEParams, a: np.ndarray, w: np.ndarray, steps: int, period_ns: float, rows: int
) -> dict:
    """pJ per FMA of one PE on the accumulation chains ``a``/``w`` (first ``steps`` FMAs), and, for
    relaxed configs, the column's edge normalizer amortized per FMA (see the module docstring)."""
    k = a.shape[1]
    acc = running_sums(a, w, p)
    n_pe = -(-steps // k)  # whole chains fed to the PE
    fa, fw, fc = (x[:n_pe].ravel() for x in (a, w, acc[:, :-1]))
    name = config_name(p)
    sz = (p.a_shape.size, p.w_shape.size, p.acc_shape.size)
    out = {
        "chain_k": k,
        **_stream_energy(
            p.datapath(),
            ("a", "w", "acc_in"),
            list(zip((fa, fw, fc), sz, strict=True)),
            "fma_en_" + name,
            period_ns,
        ),
    }
    out["pe_pj_per_fma"] = out.pop("pj_per_op")
    out["edge_pj_per_fma"] = 0.0
    if not p.normalize_in_pe:  # one normalization per finished chain of k FMAs; leakage shared by rows PEs
        top = f"fma_en_norm_{p.acc_format}_{p.rounding}_gb{p.relaxed_guard_bits}"
        with _LOCKS.setdefault(top, threading.Lock()):  # same top -> same synthesis/Verilator cache dir
            e = _stream_energy(p.normalizer(), ("acc_in",), [(acc[:, -1], p.acc_shape.size)], top, period_ns)
        leak_cycle = e["breakdown_pj_per_op"]["leakage"] * e["ops"] / e["cycles"]
        dyn = e["pj_per_op"] - e["breakdown_pj_per_op"]["leakage"]
        out["edge"] = {**e, "pj_per_normalization_dynamic": dyn, "leakage_pj_per_cycle": leak_cycle}
        out["edge_pj_per_fma"] = dyn / k + leak_cycle / rows
    out["eff_pj_per_fma"] = out["pe_pj_per_fma"] + out["edge_pj_per_fma"]
    return out


def _energy_cells(r: dict) -> list[str]:
    e = r.get("energy")
    if e is None:
        return ["-"] * 7 + [" ".join(r.get("names", []))]
    b = e["breakdown_pj_per_op"]
    d = e.get("delta_pct_vs_exact")
    return [
        f"{e['eff_pj_per_fma']:.3f}",
        *(f"{b[k]:.3f}" for k in ("combinational", "sequential", "clock", "leakage")),
        f"{e['edge_pj_per_fma']:.3f}" if e["edge_pj_per_fma"] else "-",
        "-" if d is None else f"{d:+.1f}",
        " ".join(r.get("names", [])),
    ]


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
    ap.add_argument("--energy", action="store_true", help="add pJ/FMA (gate-level, checked vs RTL)")
    ap.add_argument(
        "--energy-configs",
        nargs="+",
        default=SHIPPED,
        metavar="NAME",
        help="points to measure: configs/<NAME>.yaml or DSE names like fp32_w4_g4_pe_rne "
        "(added to the sweep if missing; default: the shipped FP configs)",
    )
    ap.add_argument("--energy-only", action="store_true", help="sweep only the --energy-configs points")
    ap.add_argument("--energy-steps", type=int, default=2048, help="FMAs per PE simulation (whole chains)")
    ap.add_argument(
        "--energy-chains", type=int, default=256, help="chains normalized by the edge normalizer (relaxed)"
    )
    ap.add_argument("--energy-period", type=float, default=10.0, help="clock period (ns) for leakage")
    ap.add_argument("--out", help="result file (default: bench/results/fp_dse.json)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 250 if args.energy else 160))
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
    points = {}
    if args.energy:
        points = {n: load_point(n) for n in args.energy_configs}
        if args.energy_only:  # the points plus the exact reference of each of their accumulators
            configs = [
                FmaPEParams(input_format="bf16", acc_format=a)
                for a in {p.acc_format for p in points.values()}
            ]
        for p in points.values():
            if p not in configs:
                configs.append(p)
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
            r["pe_um2"], r["delay_ns"], r["timing_engine"] = s["area_um2"], s["delay_ns"], s["timing_engine"]
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
        for acc in {r["acc"] for r in rows}:
            sub = [r for r in rows if r["acc"] == acc]
            for r, f in zip(
                sub, pareto([(r["eff_um2"], r["err_vs_exact_fp32"]["fro"]) for r in sub]), strict=True
            ):
                r["pareto_acc"] = f
        rows.sort(key=lambda r: r["eff_um2"])

    # ---- energy ------------------------------------------------------------------------------
    if args.energy:
        t0 = time.perf_counter()
        a_ch, w_ch = chain_workload(
            args.k, max(args.energy_chains, -(-args.energy_steps // args.k)), args.seed
        )
        by_name = {r["config"]: r for r in rows}
        for n, p in points.items():
            by_name[config_name(p)].setdefault("names", []).append(n)
        uniq = list({config_name(p): p for p in points.values()}.values())
        with ThreadPoolExecutor(max(1, args.jobs)) as ex:
            res = list(
                ex.map(
                    lambda p: energy_point(p, a_ch, w_ch, args.energy_steps, args.energy_period, args.rows),
                    uniq,
                )
            )
        for p, e in zip(uniq, res, strict=True):
            by_name[config_name(p)]["energy"] = e
        base = {
            r["acc"]: r["energy"]["eff_pj_per_fma"]
            for r in rows
            if r["config"].endswith("_exact_g1_pe_rne") and "energy" in r
        }
        for r in rows:
            if "energy" in r and r["acc"] in base:
                r["energy"]["delta_pct_vs_exact"] = 100.0 * (
                    r["energy"]["eff_pj_per_fma"] / base[r["acc"]] - 1.0
                )
        console.print(f"energy: {len(uniq)} points in {time.perf_counter() - t0:.1f} s")

    table = Table(
        title=f"FMA PE DSE: bf16 inputs, {args.m}x{args.k}x{args.n} N(0,1) GEMM, built-in library "
        f"(P = Pareto area vs fro-err vs f64, p = Pareto within accumulator vs exact chain)"
    )
    cols = ["P", "config", "pe_um2", "eff_um2", "saved%", "delay_ns"]
    cols += ["fro/f64", "mean_rel/f64", "max_rel/f64", "fro/ex32", "mean_rel/ex32", "max_rel/ex32"]
    if args.energy:
        cols += ["pJ/FMA", "comb", "seq", "clk", "leak", "edge", "dE%", "name"]
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
            *(_energy_cells(r) if args.energy else ()),
            style="bold" if r.get("pareto") or r.get("pareto_acc") else None,
        )
    console.print(table)
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
        "energy": None
        if not args.energy
        else {
            "workload": f"{args.energy_steps} FMAs (whole chains of k={args.k}) of running dot-product sums "
            "of N(0,1) bf16 operands, acc_in = previous fp.fma result, +0 at each chain start",
            "period_ns": args.energy_period,
            "edge_normalizer": "relaxed configs: dynamic energy per normalization (measured on "
            f"{args.energy_chains} finished chains) / k + its leakage per cycle / rows",
            "pj_per_fma": "eff_pj_per_fma = PE top (datapath + acc register) + edge share",
        },
        "error_metrics": {
            "fro": "||C-R||_F/||R||_F",
            "mean_rel": "mean |C-R|/|R| over R != 0",
            "max_rel": "max |C-R| / (|A|@|W|)",
        },
        "rows": rows,
    }
    path = write_result(
        "fp_dse", meta, script=__file__, argv=argv, seconds=time.perf_counter() - t_start, path=args.out
    )
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
