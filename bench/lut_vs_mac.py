"""LUT tensor core vs same-shape dot-product MAC tiles, at one common clock (issue #13, item 5).

    python bench/lut_vs_mac.py            # all designs, both clock-gating settings -> bench/results/lut_vs_mac.json
    python bench/lut_vs_mac.py --jobs 2   # two syntheses at a time
    python bench/lut_vs_mac.py --show     # print the stored result's tables

What is compared (all on the built-in ``tpegen45`` library, every design synthesized from its
generated Verilog with ``tpegen synth`` through :mod:`tpegen.api`, energy from the gate-level
netlist's toggles on a GEMM, the netlist checked against the RTL):

* **Shape**: the LUT Tensor Core paper's tile, M2 N64 K4 with K = the group size 4 (LUT core
  ``tile_m 2, tile_n 64, tile_k 1, group_size 4``; bit-serial, one weight bit plane per cycle, so
  ``512 / W`` MACs per cycle), against 2D-Matrix dot-product tiles of the same M x N x K (``tile_m 2,
  tile_n 64, tile_k 4``: 512 MACs per cycle). Plus today's default LUT tile (K = 16) at W2A8
  against the same-shape dot tile.
* **Baselines**: mixed-precision MAC tiles (INT8 x INT2 multipliers for W1 and W2 -- the smallest
  signed multiplier that holds +-1 -- and INT8 x INT4 for W4) and the dequantization baseline the
  paper uses (INT8 x INT8, at A8 only, which keeps a cold run of the whole bench near 50 minutes
  on two cores; it is the largest design here). Same accumulator width (32 bits), same weight
  buffering (a two-bank weight store in both: the LUT core's and the dot tile's are the same
  :class:`~tpegen.hw.arrays.weight_store.WeightStore`), one result register per output in both.
* **Clock**: every design is mapped toward one stated delay target (``ABC_TARGET_NS``, ABC's
  ``-D``; ABC's target covers logic only, not clock-to-output or setup), timed by OpenSTA, and
  then all are quoted at one common period: the slowest design's minimum period, which every
  design meets (slack and leakage energy restated at that period). Throughput per area is quoted
  at that clock only. Designs are synthesized flat (``flatten=True``), so that the LUT core's
  submodules do not hide their fan-out from ABC.
* **Clock gating**: the A8 rows and the dequantization baseline twice, without and with clock
  gating (``--clock-gating 8``: Yosys ``clockgate`` puts groups of at least 8 enable flops behind
  one ICG); area and energy both ways. The ablation, A16 and K16 rows without.
* **Ablation** (W2A8, paper shape): full table -> half table by symmetrization (index complement
  in the core) -> offline index complement (today's default) -> table precompute outside the core
  (tables arrive on the input port; the paper's split precompute).
* **Workload**: per (W, A), one random GEMM shared by every design of that row
  (``default_rng(seed)``; A uniform over the activation range, W over the W-bit range), large
  enough that both tile kinds run above 90% utilization.

Output: a table per activation width, the ablation, the term-by-term split (sequential /
combinational area, energy by category) of the W2A8 pair, the paper's ratios next to ours, and the
weight width from which the MAC tile wins. Stored atomically in ``bench/results/lut_vs_mac.json``
with the command, tool versions and date (:mod:`provenance`). Synthesis results are cached
(``TPEGEN_CACHE``), so a rerun only re-measures energy.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from provenance import RESULTS, write_result

GATING_GROUP = 8  # --clock-gating N: minimum flops per ICG
ABC_TARGET_NS = 3.0  # the stated delay target every design is mapped toward (ABC -D, logic only)
VARIANTS = ("ungated", "gated")
ACT_WIDTHS = (8, 16)
WEIGHT_WIDTHS = (1, 2, 4)
ACC_BITS = 32

# The LUT Tensor Core paper (Mo et al., ISCA 2025), as quoted in issue #13: the table ablation's
# speedups over its baseline, and its W1 claim against the MAC tensor core.
PAPER = {
    "ablation_speedup": {"half table": 1.317, "offline index complement": 1.351, "external precompute": 1.44},
    "w1_area_power_vs_mac": "4-6x lower area and power",
    "w2a8_tops_per_mm2": "61.8 vs 17.7 TOPS/mm^2 (3.5x) against the MAC tensor core, 28 nm",
}


@dataclass(frozen=True)
class Design:
    """One synthesized design of the comparison: a config (as the YAML mapping) and its role."""

    key: str
    label: str
    config: dict[str, Any]
    act_bits: int
    weight_bits: int  # the weight width of the workload it runs
    role: str  # "lut", "mac" (mixed precision), "dequant", "ablation", "k16"
    gated: bool = False  # also synthesized and measured with clock gating


def lut_config(
    name: str, w: int, a: int, *, tile_k: int = 1, table="half", complement="offline", precompute="in_core"
) -> dict[str, Any]:
    pe = {"type": "lut", "group_size": 4, "act_bits": a, "weight_bits": w, "acc_bits": ACC_BITS}
    if (table, complement, precompute) != ("half", "offline", "in_core"):
        pe.update({"table": table, "index_complement": complement, "precompute": precompute})
    return {"name": name, "pe": pe, "array": {"tile_m": 2, "tile_n": 64, "tile_k": tile_k}}


def dot_config(name: str, wbits: int, a: int, *, tile_k: int = 4) -> dict[str, Any]:
    pe = {
        "type": "dot",
        "organization": "matrix2d",
        "act_bits": a,
        "weight_bits": wbits,
        "act_signed": True,
        "weight_signed": True,
        "acc_bits": ACC_BITS,
    }
    return {"name": name, "pe": pe, "array": {"tile_m": 2, "tile_n": 64, "tile_k": tile_k, "stages": 0}}


def designs() -> list[Design]:
    """The comparison, most important first: the A8 rows (with and without clock gating), the
    ablation, the A16 rows, today's default tile (K16)."""

    def row(a: int, gated: bool) -> list[Design]:
        out = []
        for w in WEIGHT_WIDTHS:
            mw = max(w, 2)  # the smallest signed multiplier that holds the W-bit weights (W1: +-1)
            out.append(
                Design(
                    f"lut_w{w}a{a}", f"LUT W{w}A{a}", lut_config(f"lut_w{w}a{a}", w, a), a, w, "lut", gated
                )
            )
            mac = dot_config(f"dot_i{a}xi{mw}", mw, a)
            out.append(Design(f"dot_w{w}a{a}", f"MAC INT{a}xINT{mw}", mac, a, w, "mac", gated))
        return out

    steps = (
        ("full", "full table (index complement in core)", dict(table="full")),
        ("half_incore", "half table (index complement in core)", dict(complement="in_core")),
        ("external", "offline complement + table precompute outside the core", dict(precompute="external")),
    )
    return [
        *row(8, True),
        Design("dequant_a8", "MAC INT8xINT8", dot_config("dot_i8xi8", 8, 8), 8, 2, "dequant", True),
        *(
            Design(f"lut_w2a8_{k}", label, lut_config(f"lut_w2a8_{k}", 2, 8, **kw), 8, 2, "ablation")
            for k, label, kw in steps
        ),
        *row(16, False),
        Design("lut_w2a8_k16", "LUT W2A8, K16", lut_config("lut_w2a8_k16", 2, 8, tile_k=4), 8, 2, "k16"),
        Design(
            "dot_w2a8_k16", "MAC INT8xINT2, K16", dot_config("dot_i8xi2_k16", 2, 8, tile_k=16), 8, 2, "k16"
        ),
    ]


# ---- measurement ------------------------------------------------------------------------------
WORKLOAD_SHAPE = (8, 64, 256)  # (M, K, N): 256 LUT activation beats, >= 90% utilization on every design


def workload(a_bits: int, w_bits: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (W, A) row's GEMM operands: A uniform over signed a_bits, W over the W-bit weights
    (W1: -1 and +1, the LUT core's binary weights; else signed w_bits)."""
    m, k, n = WORKLOAD_SHAPE
    rng = np.random.default_rng([seed, a_bits, w_bits])
    a = rng.integers(-(1 << (a_bits - 1)), 1 << (a_bits - 1), (m, k))
    if w_bits == 1:
        w = 2 * rng.integers(0, 2, (k, n)) - 1
    else:
        w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (k, n))
    return a, w


def measure(
    design: Design, period_ns: float | None, gating: int | None, energy: bool, seed: int
) -> dict[str, Any]:
    """``tpegen synth`` of one design through the API: the PPA record plus what the tables need."""
    from tpegen.api import synthesize_design
    from tpegen.config import config_from_dict
    from tpegen.synth import ppa_json

    t0 = time.perf_counter()
    cfg = config_from_dict(design.config)
    acc = cfg.accelerator()
    kwargs: dict[str, Any] = {"period_ns": period_ns, "energy": energy, "flatten": True}
    if gating:
        kwargs["clock_gating"] = gating
    if energy:
        kwargs["workload"] = workload(design.act_bits, design.weight_bits, seed)
    synth, report = synthesize_design(cfg, **kwargs)
    rec = ppa_json(synth, report)
    rec.pop("energy_by_module_pj_per_op", None)
    rec.pop("cells", None)
    rec.pop("timing", None)
    rec["modules"] = {
        k: round(v["total_um2"], 1) for k, v in rec.get("modules", {}).items() if v["instances"]
    }
    rec["peak_macs_per_cycle"] = acc.macs_per_cycle
    if energy:
        m, k, n = WORKLOAD_SHAPE
        rec["utilization"] = acc.workload_utilization(m, k, n)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def _run_all(jobs: list[tuple], n_jobs: int, say: Callable[[str], None]) -> list[dict[str, Any]]:
    if n_jobs <= 1:
        out = []
        for i, job in enumerate(jobs):
            out.append(measure(*job))
            say(f"  [{i + 1}/{len(jobs)}] {job[0].key} gating={job[2]}: {out[-1]['seconds']} s")
        return out
    with ProcessPoolExecutor(n_jobs) as pool:
        futures = [pool.submit(measure, *job) for job in jobs]
        out = []
        for i, (job, fut) in enumerate(zip(jobs, futures, strict=True)):
            out.append(fut.result())
            say(f"  [{i + 1}/{len(jobs)}] {job[0].key} gating={job[2]}: {out[-1]['seconds']} s")
        return out


def run(n_jobs: int, seed: int, say: Callable[[str], None], only: set[str] | None = None) -> dict[str, Any]:
    """Every design mapped toward ABC_TARGET_NS, then each table's common period (its slowest design's
    minimum period), which every design of the table meets by construction."""
    todo = [d for d in designs() if only is None or d.key in only]
    jobs = [
        (d, ABC_TARGET_NS, g, True, seed) for d in todo for g in (None, GATING_GROUP) if g is None or d.gated
    ]
    say(f"{len(jobs)} syntheses with gate-level energy, {n_jobs} at a time")
    done = _run_all(jobs, n_jobs, say)
    records: dict[str, dict[str, Any]] = {}
    for (d, _p, g, _e, _s), rec in zip(jobs, done, strict=True):
        entry = records.setdefault(
            d.key,
            {
                "label": d.label,
                "role": d.role,
                "act_bits": d.act_bits,
                "weight_bits": d.weight_bits,
                "config": d.config,
            },
        )
        entry["gated" if g else "ungated"] = rec
    unchecked = [
        k for k, e in records.items() for v in VARIANTS if v in e and not e[v]["checked_against_rtl"]
    ]
    if unchecked:
        raise SystemExit(f"netlist not checked against the RTL: {', '.join(unchecked)}")
    # one clock for every design: the slowest design's minimum period (gated or not), which every
    # design therefore meets
    delay, source = max(
        (e[v]["delay_ns"], f"{k} ({v})") for k, e in records.items() for v in VARIANTS if v in e
    )
    period = ceil_ps(delay)
    for e in records.values():
        for v in VARIANTS:
            if v in e:
                at_period(e[v], period)
    return {
        "abc_target_ns": ABC_TARGET_NS,
        "period_ns": period,
        "period_source": source,
        "gating_group": GATING_GROUP,
        "workload": {"M": WORKLOAD_SHAPE[0], "K": WORKLOAD_SHAPE[1], "N": WORKLOAD_SHAPE[2], "seed": seed},
        "designs": records,
        "paper": PAPER,
    }


def ceil_ps(ns: float) -> float:
    """A period in ns rounded up to whole picoseconds."""
    return float(np.ceil(round(ns * 1000, 6)) / 1000)


def at_period(rec: dict[str, Any], period: float) -> None:
    """Restate a record at the table's common period: slack, and leakage energy (power x time, the
    only part of the energy that depends on the period; the netlist ran at ``energy_period_ns``)."""
    rec["period_ns"] = period
    rec["slack_ns"] = round(period - rec["delay_ns"], 6)
    rec["timing_met"] = rec["slack_ns"] >= 0
    parts = rec["energy_breakdown_pj_per_op"]
    leak = parts["leakage"] * (period / rec["energy_period_ns"] - 1)
    parts["leakage"] += leak
    rec["energy_pj_per_op"] += leak
    rec["energy_period_ns"] = period


# ---- derived figures --------------------------------------------------------------------------
def tops_per_mm2(rec: dict[str, Any]) -> float:
    """Peak MACs per cycle x 2 ops at the record's (common) clock, per mm^2 of logic: TOPS/mm^2."""
    return 2 * rec["peak_macs_per_cycle"] / rec["period_ns"] * 1e-3 / (rec["area_um2"] * 1e-6)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Ratios the README quotes: the LUT core over the same-row MAC tiles (> 1: the LUT core is
    better), the ablation steps over the full table, the weight width from which the MAC tile wins."""
    d = result["designs"]

    def ratios(lut: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
        return {
            "area": base["area_um2"] / lut["area_um2"],
            "tops_per_mm2": tops_per_mm2(lut) / tops_per_mm2(base),
            "energy": base["energy_pj_per_op"] / lut["energy_pj_per_op"],
        }

    rows: dict[str, dict[str, Any]] = {}
    for a in ACT_WIDTHS:
        for w in WEIGHT_WIDTHS:
            lut = d.get(f"lut_w{w}a{a}")
            if lut is None:
                continue
            row = rows.setdefault(f"W{w}A{a}", {})
            for name, base in (("mac", d.get(f"dot_w{w}a{a}")), ("dequant", d.get(f"dequant_a{a}"))):
                for v in VARIANTS:
                    if base is not None and v in lut and v in base:
                        row[f"{name}_{v}"] = ratios(lut[v], base[v])
    crossover = {}
    for a in ACT_WIDTHS:
        wins = [
            w
            for w in WEIGHT_WIDTHS
            if rows.get(f"W{w}A{a}", {}).get("mac_ungated", {}).get("tops_per_mm2", 2) < 1
        ]
        crossover[f"A{a}"] = min(wins) if wins else None
    ablation = {}
    full = d.get("lut_w2a8_full")
    for key in ("lut_w2a8_full", "lut_w2a8_half_incore", "lut_w2a8", "lut_w2a8_external"):
        if full is not None and key in d:
            r = ratios(d[key]["ungated"], full["ungated"])  # > 1: better than the full table
            ablation[key] = {"area_um2": d[key]["ungated"]["area_um2"], **r}
    k16 = {}
    if "lut_w2a8_k16" in d and "dot_w2a8_k16" in d:
        k16 = ratios(d["lut_w2a8_k16"]["ungated"], d["dot_w2a8_k16"]["ungated"])
    return {"rows": rows, "mac_wins_from_weight_bits": crossover, "ablation": ablation, "k16": k16}


# ---- printing ---------------------------------------------------------------------------------
def print_tables(result: dict[str, Any], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=150)
    d = result["designs"]
    for a in ACT_WIDTHS:
        period = result["period_ns"]
        t = Table(
            title=f"A{a}: every design at {period:.3f} ns (the minimum period of {result['period_source']})"
        )
        cols = (
            "design",
            "MAC/cycle",
            "area µm²",
            "seq. µm²",
            "TOPS/mm²",
            "pJ/MAC",
            "comb.",
            "clock",
            "util.",
        )
        for col in cols:
            t.add_column(col, justify="left" if col == "design" else "right")
        for e in d.values():
            if e["act_bits"] != a:
                continue
            for v in VARIANTS:
                if v not in e:
                    continue
                r, b = e[v], e[v]["energy_breakdown_pj_per_op"]
                t.add_row(
                    e["label"] + (", clock-gated" if v == "gated" else ""),
                    f"{r['peak_macs_per_cycle']:.0f}",
                    f"{r['area_um2']:,.0f}",
                    f"{r['sequential_area_um2']:,.0f}",
                    f"{tops_per_mm2(r):.2f}",
                    f"{r['energy_pj_per_op']:.3f}",
                    f"{b['combinational']:.3f}",
                    f"{b['clock']:.3f}",
                    f"{r['utilization']:.1%}",
                )
        console.print(t)
    s = summary(result)
    if s["ablation"]:
        t = Table(
            title="Ablation at W2A8, M2 N64 K4, over the full table (paper: its speedups over its baseline)"
        )
        for col in ("step", "area µm²", "TOPS/mm² x", "energy x", "paper"):
            t.add_column(col, justify="left" if col == "step" else "right")
        paper = [None, *PAPER["ablation_speedup"].values()]
        for (key, v), p in zip(s["ablation"].items(), paper, strict=False):
            label = d[key]["label"] if key != "lut_w2a8" else "half table, offline index complement (default)"
            t.add_row(
                label,
                f"{v['area_um2']:,.0f}",
                f"{v['tops_per_mm2']:.3f}",
                f"{v['energy']:.3f}",
                "-" if p is None else f"{p}x",
            )
        console.print(t)
    t = Table(
        title="LUT core over the same-shape MAC tiles at the common period (> 1: the LUT core is better)"
    )
    for col in ("row", "vs", "area", "TOPS/mm²", "energy/MAC"):
        t.add_column(col, justify="right")
    for row, r in s["rows"].items():
        for vs, x in r.items():
            t.add_row(row, vs, *(f"{x[k]:.2f}x" for k in ("area", "tops_per_mm2", "energy")))
    console.print(t)
    for a, w in s["mac_wins_from_weight_bits"].items():
        console.print(
            f"{a}: the mixed-precision MAC tile has more TOPS/mm² "
            + (f"from W{w} up" if w else "at no weight width measured")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="syntheses run in parallel (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    ap.add_argument(
        "--only", nargs="+", metavar="KEY", help="measure only these designs (plus the period setters)"
    )
    ap.add_argument("--out", type=Path, help="result file (default: bench/results/lut_vs_mac.json)")
    ap.add_argument("--show", action="store_true", help="print the stored result's tables and exit")
    args = ap.parse_args(argv)
    if args.show:
        import json

        stored = json.loads((args.out or RESULTS / "lut_vs_mac.json").read_text())["result"]
        print_tables(stored)
        return 0
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = run(max(1, args.jobs), args.seed, say, set(args.only) if args.only else None)
    result["summary"] = summary(result)
    print_tables(result)
    path = write_result(
        "lut_vs_mac", result, script=__file__, argv=argv, seconds=time.perf_counter() - t0, path=args.out
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
