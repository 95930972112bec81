"""README.md's "Measured results" quote exactly what the benches stored in ``bench/results/*.json``.

Each check renders the sentence fragment or Markdown table row the README must contain from a
stored result (same formatting as the README) and looks for it verbatim, so editing a number in
the README or regenerating a result that changes it fails here. A final check lists every number
left in the section outside those fragments and outside code spans; only literature figures,
named in :data:`LITERATURE`, may stand there unchecked. No simulation: JSON, YAML and Markdown.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from tpegen.config import config_from_dict, load_config
from tpegen.sim.topology import load_topology

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"

# Published figures the README cites for comparison (not produced by this repository).
LITERATURE = [
    "(Horowitz 45 nm)",
    "Alexandridis et al. (`arXiv 2408.11997`) report -16% area and -13% power for bfloat16.",
    "LUT Tensor Core reports 61.8 vs 17.7 TOPS/mm² (3.5x) at W2A8 in 28 nm.",
    "LUT Tensor Core reports 4-6x lower area and power at W1 against its MAC tensor core.",
    "the paper reports its design at 1.317x, 1.351x and 1.44x over its baseline after the same three steps",
    "FreePDK45 library `gscl45nm.lib` (1.1 V)",
    "published 45 nm figures",
    "Wu et al. (HPCA 2025) report area efficiency 1.27x / 1.28x / 1.56x / 1.44x and energy efficiency "
    "1.04x / 1.56x / 1.49x / 1.20x on the systolic array, 3D-Cube, multiplier-adder tree and 2D-Matrix "
    "(INT8, SMIC 28 nm), and EN-T (ICCD 2024) +8.7% to +12.2% area efficiency and +13.0% to +17.5% "
    "energy efficiency from shared encoders; both papers quote 2.41 (Booth) and 2.22 (EN-T) non-zero "
    "digits per operand on normally distributed data.",
]

ENGINES = {"opensta": "OpenSTA", "tpegen": "built-in STA"}  # synth/timing.py's engine names


@cache
def result(bench: str) -> dict:
    """The ``result`` part of ``bench/results/<bench>.json``."""
    return json.loads((RESULTS / f"{bench}.json").read_text())["result"]


@cache
def record(bench: str) -> dict:
    return json.loads((RESULTS / f"{bench}.json").read_text())


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@cache
def measured() -> str:
    """The section with every run of whitespace folded to one space (prose wraps anywhere)."""
    return re.sub(r"\s+", " ", section(README.read_text(), "Measured results"))


def pct(x: float) -> str:
    return f"{x:+.1f}%"


# ------------------------------------------------------------------------------------------------
# the expected fragments, one group per stored result
# ------------------------------------------------------------------------------------------------


def demo_fragments() -> list[str]:
    d = result("demo")
    cfg = load_config(REPO / "configs" / f"{d['hw']}.yaml")
    (checked,) = [x for x in d["layers"] if x["name"] == d["rtl_check_layer"]]
    assert checked["rtl_check"] is True, "the RTL re-run must equal the simulator"
    assert d["backend"] == "cycle" and all(x["rtl_check"] is None for x in d["layers"] if x is not checked)
    acc = d["accuracy"]
    return [
        f"the built-in `{d['model']}` mapped at {d['quant']} onto the {cfg.array.rows}x{cfg.array.cols} "
        f"INT8 {cfg.pe.dataflow.upper()} array (`{d['hw']}`) on the cycle-level simulator",
        f"{len(d['layers'])} layers, {d['total_macs']:,} MACs in {d['total_cycles']:,} cycles "
        f"({100 * d['utilization']:.1f}% PE utilization) over {d['samples']} test images",
        f"top-1 accuracy {100 * acc['mapped']:.1f}% (float model {100 * acc['float']:.1f}%)",
        f"layer `{checked['name']}` re-run on the RTL (Verilator) equals the simulator bit for bit and "
        f"cycle for cycle ({checked['cycles']:,} cycles)",
    ]


def sim_speed_fragments() -> list[str]:
    s = result("sim_speed")
    assert s["scalesim"].startswith("scalesim==3.0.0")
    out = [
        "SCALE-Sim 3.0.0",
        f", {s['array']} array, exact INT8 outputs",
        "| dataflow | GEMMs (" + ", ".join("x".join(map(str, g)) for g in s["gemms"]) + ") |",
    ]
    for df, v in s["dataflows"].items():
        for t in v["scalesim"]:
            assert t["formula"] == t["total"], "the README says SCALE-Sim's closed forms hold row by row"
        tot = v["total"]
        out.append(
            f"| {df.upper()} | total | {tot['cycles_tpegen']:,} | {tot['cycles_scalesim']:,} | "
            f"{tot['seconds_tpegen'] * 1e3:.2f} ms | {tot['seconds_scalesim']:.2f} s | {tot['speedup']:.0f}x |"
        )
    enc = {e["config"]: e for e in s["encoder"]}
    os_, ws = enc["int8_os_32x32"], enc["int8_ws_32x32"]
    assert os_["exact"] and ws["exact"]
    assert os_["macs"] == ws["macs"] and os_["gemms"] == ws["gemms"]
    layers = load_topology(REPO / "configs" / "topologies" / "bert_encoder_6x384.csv")
    assert len(layers) == os_["gemms"] and sum(x.macs for x in layers) == os_["macs"]
    (tokens,) = {x.m for x in layers}
    out += [
        f"The {os_['gemms']} weight GEMMs of a {len(layers) // 6}-layer BERT-style encoder (hidden "
        f"{min(x.k for x in layers)}, FFN {max(x.n for x in layers)}, {tokens} tokens; "
        f"{os_['macs'] / 1e9:.2f} GMAC) take {os_['cycles']:,} cycles on the 32x32 OS array and "
        f"{ws['cycles']:,} on the WS array",
        f"in {os_['median_s']:.2f} s (OS, median) and {ws['median_s']:.2f} s (WS)",
    ]
    cli = s["topology_cli"]
    gemms = ", ".join("x".join(map(str, g)) for g in cli["gemms"])
    out.append(f"| {cli['array']}, GEMMs ({gemms}) |")
    out.append(f"median of {cli['repeats']} after")
    for df, v in cli["dataflows"].items():
        assert all(t["formula"] == t["total"] for t in v["scalesim"])
        t = v["tpegen"]
        out.append(
            f"| {df.upper()} (`{v['config']}`) | {v['cycles_tpegen']:,} | {v['cycles_scalesim']:,} | "
            f"{t['timing_only']['median_wall_s']:.3f} s | {t['trace']['median_wall_s']:.2f} s | "
            f"{v['seconds_scalesim']:.1f} s | {v['speedup']['timing_only']:.0f}x | {v['speedup']['trace']:.0f}x |"
        )
    sizes = [v["trace_bytes"] for v in cli["dataflows"].values()]
    out.append(f"({sizes[0] / 1e6:.0f} MB and {sizes[1] / 1e9:.1f} GB here)")
    return out


def fp_dse_rows() -> list[str]:
    """The rows of README's table of bench/fp_dse.py (same formatting)."""
    f = result("fp_dse")
    out = []
    for r in f["rows"]:
        base = r["name"] == r["baseline"]
        mm = r["minilm"]
        assert r["energy_checked_against"] in ("rtl", "golden")
        out.append(
            f"| `{r['name']}` | {r['what']} | {'-' if base else '`' + r['baseline'] + '`'} | "
            f"{r['area_per_fma_um2']:,.0f}{'' if base else ' (' + pct(r['area_pct']) + ')'} | "
            f"{r['array_pj_per_fma']:.2f}{'' if base else ' (' + pct(r['energy_pct']) + ')'} | "
            f"{r['slack_ns']:+.2f} | {100 * r['digits_top1']:.1f}% | {mm['cos_mean']:.6f} | "
            f"{100 * mm['para_acc']:.0f}% |"
        )
    return out


def fp_dse_fragments() -> list[str]:
    f = result("fp_dse")
    rows = {r["name"]: r for r in f["rows"]}
    engines = {r["timing_engine"] for r in rows.values()}
    assert len(engines) == 1, "slack compared across timing engines"
    ref = f["minilm_reference"]
    out = [re.sub(r"\s+", " ", row) for row in fp_dse_rows()]
    out += [
        f"{f['array']}x{f['array']} output-stationary FP engine",
        f"toward one clock of {f['period_ns']} ns and timed there by {ENGINES[engines.pop()]}",
        f"on a real layer: {f['workload']}",
        f"all-MiniLM-L6-v2 on the {ref['sentences']} built-in sentences",
        f"| pJ/FMA | slack at {f['period_ns']} ns |",
        f"at most {f['target']['accuracy_points']} points of task accuracy lost, at least "
        f"{-f['target']['area_pct']:.0f}% less PE area and {-f['target']['energy_pct']:.0f}% less energy per FMA",
    ]
    macs = {r["minilm"]["macs"] for r in rows.values()}
    assert len(macs) == 1, "every point runs the same MiniLM MACs"
    out.append(f"bit-exact numerics ({macs.pop() / 1e9:.1f} G MACs per point")
    met = [r for r in rows.values() if r["meets_target"]]
    if met:
        assert len(met) == 1, [r["name"] for r in met]
        m = met[0]
        out.append(
            f"is met by one point, `{m['name']}`: {pct(m['area_pct'])} PE area, {pct(m['energy_pct'])} energy per FMA"
        )
        # "... and it is dominated: <d> ... is smaller, uses less energy and is more accurate"
        d = rows["bf16_approx_relaxed_w8"]
        assert d["timing_met"] and d["area_per_fma_um2"] < m["area_per_fma_um2"]
        assert (
            d["array_pj_per_fma"] < m["array_pj_per_fma"]
            and d["minilm"]["cos_mean"] > m["minilm"]["cos_mean"]
        )
        out.append(
            f"`{d['name']}` ({d['pe']['acc_format']} out, {d['pe']['acc_format']} + "
            f"{d['pe']['relaxed_guard_bits']} guard bits = {load_config('bf16_approx_relaxed_w8').pe.fma.relaxed.man_bits}-bit "
            f"partial sums) is smaller, uses less energy and is more accurate"
        )
    top1 = [100 * r["digits_top1"] for r in rows.values()]
    assert all(r["minilm"]["para_acc"] == 1.0 for r in rows.values())
    out.append(
        f"digits_cnn top-1 stays between {min(top1):.1f}% and {max(top1):.1f}% and paraphrase retrieval at 100%"
    )
    approx = [r for r in rows.values() if r["pe"]["norm_window"] is not None and r["pe"]["normalize_in_pe"]]
    out.append(
        f"saves at most {-min(r['area_pct'] for r in approx):.1f}% PE area and "
        f"{-min(r['energy_pct'] for r in approx):.1f}% energy per FMA"
    )
    dot = rows["tc_fp16_dot4"]
    assert not dot["timing_met"]
    ex = rows["bf16_exact"]
    out.append(
        f"In the exact bf16 PE the datapath is {100 * ex['datapath_um2'] / ex['cell_um2']:.0f}% of the cell "
        f"({ex['datapath_um2']:,.0f} of {ex['cell_um2']:,.0f} µm²) and the cell holds {ex['flops_per_cell']} flip-flops"
    )
    return out


def bitweight_rows() -> list[str]:
    """README's tables of bench/bitweight.py: one row per design, then the digit statistics."""
    b = result("bitweight")
    names = b["orgs"]
    rows, best = b["summary"]["rows"], b["summary"]["best_combination"]
    out = []
    for key, d in b["designs"].items():
        assert d["checked_against"] == "rtl" and d["timing_met"], key
        knobs = d["knobs"]
        label = "+".join(v for k, v in knobs.items()) or "plain"
        if best.get(d["org"]) == key:
            label += " (best combination)"
        x = rows[key]["ratio"]
        pes = f"{x['mac_per_cycle_per_mm2_pes']:.2f}" if "mac_per_cycle_per_mm2_pes" in x else "-"
        out.append(
            f"| {names[d['org']]} | {label} | {d['counted']} | {d['area_um2']:,.0f} | {d['slack_ns']:.3f} | "
            f"{d['real']['energy_pj_per_op']:.2f} / {d['random']['energy_pj_per_op']:.2f} | "
            f"{x['mac_per_cycle_per_mm2']:.2f} / {pes} / {x['mac_per_ns_per_mm2_own_clock']:.2f} | "
            f"{x['mac_per_nj_real']:.2f} / {x['mac_per_nj_random']:.2f} |"
        )
    for operands, v in b["digits"].items():
        out.append(f"| {operands.replace('|x|', 'abs(x)')} | {v['booth_r4']:.2f} | {v['en_t']:.2f} |")
    return out


def bitweight_fragments() -> list[str]:
    b = result("bitweight")
    out = [re.sub(r"\s+", " ", row) for row in bitweight_rows()]
    out += [re.sub(r"\s+", " ", t) for t in b["summary"]["differences_from_papers"]]
    out.append(
        f"{b['size']}x{b['size']} INT8 engines at one clock, {b['period_ns']} ns (the minimum period of the slowest "
        f"design, `{b['period_source']}`, all mapped toward an ABC target of {b['abc_target_ns']} ns)"
    )
    shape = b["workloads"]["shape"]
    out.append(f"on a {shape['M']}x{shape['K']}x{shape['N']} GEMM: {b['workloads']['real']}")
    return out


def _delay(d: dict) -> str:
    """A critical path as the README prints it: ns and the timing engine that measured it."""
    return f"{d['delay_ns']:.2f} ({ENGINES[d['timing']['engine']]})"


def _tops(rec: dict) -> float:
    """TOPS/mm² at the record's (common) period: 2 ops per MAC, peak MACs per cycle, logic area."""
    return 2 * rec["peak_macs_per_cycle"] / rec["period_ns"] * 1e-3 / (rec["area_um2"] * 1e-6)


def lut_vs_mac_row(label: str, rec: dict, gated: dict | None) -> str:
    """One README row of the LUT-vs-MAC tables (bench/lut_vs_mac.py's records)."""
    b = rec["energy_breakdown_pj_per_op"]
    row = (
        f"| {label} | {rec['peak_macs_per_cycle']:.0f} | {rec['area_um2']:,.0f} | {rec['sequential_area_um2']:,.0f} | "
        f"{_tops(rec):.2f} | {rec['energy_pj_per_op']:.2f} | {b['combinational']:.2f} | {b['clock']:.2f} |"
    )
    if gated is not None:
        g = gated["energy_breakdown_pj_per_op"]
        row += f" {gated['area_um2']:,.0f} | {_tops(gated):.2f} | {gated['energy_pj_per_op']:.2f} | {g['clock']:.2f} |"
    return row


def lut_vs_mac_fragments() -> list[str]:
    r = result("lut_vs_mac")
    d, s = r["designs"], r["summary"]
    for e in d.values():
        for v in ("ungated", "gated"):
            if v in e:
                rec = e[v]
                assert rec["checked_against_rtl"] and rec["timing_met"], (e["label"], v)
                assert rec["period_ns"] == r["period_ns"]
                assert rec["utilization"] > 0.9
    w = r["workload"]
    lut_cfg = d["lut_w2a8"]["config"]
    tm, tn, tk = (lut_cfg["array"][x] for x in ("tile_m", "tile_n", "tile_k"))
    g = lut_cfg["pe"]["group_size"]
    ports = [
        config_from_dict(d[k]["config"]).pe.input_payload_bits for k in ("lut_w2a8", "lut_w2a8_external")
    ]
    util = min(e[v]["utilization"] for e in d.values() for v in ("ungated", "gated") if v in e)
    out = [
        f"tile, M{tm} N{tn} K{tk * g} with K = the group size {g} (`compare/lut_w2a8_m2n64k4`: `tile_k` {tk}, g {g};",
        f"with the same {lut_cfg['pe']['acc_bits']}-bit accumulators",
        f"above {int(util * 100)}% utilization on every design",
        f"its input port widens from {ports[0]} to {ports[1]} bits",
        f"mapped toward a {r['abc_target_ns']:.1f} ns delay target",
        f"({r['period_ns']:.3f} ns, set by `{r['period_source'].split(' ')[0]}`)",
        f"one random {w['M']}x{w['K']}x{w['N']} GEMM per weight width",
        f"(`--clock-gating {r['gating_group']}`)",
    ]
    for key, e in d.items():
        label = README_LUT_LABELS.get(key)
        if label is not None:
            out.append(lut_vs_mac_row(label, e["ungated"], e.get("gated")))
    rows = s["rows"]

    def x(row: str, vs: str, what: str) -> str:
        return f"{rows[row][vs][what]:.2f}x"

    out.append(
        f"At W1 the LUT core wins: against the INT8 x INT2 tile it has {x('W1A8', 'mac_ungated', 'tops_per_mm2')} "
        f"the TOPS/mm² and uses {x('W1A8', 'mac_ungated', 'energy')} less energy per MAC "
        f"({x('W1A8', 'mac_gated', 'tops_per_mm2')} and {x('W1A8', 'mac_gated', 'energy')} with clock gating), "
        f"against the INT8 x INT8 dequantization baseline {x('W1A8', 'dequant_ungated', 'tops_per_mm2')} and "
        f"{x('W1A8', 'dequant_ungated', 'energy')} ({x('W1A8', 'dequant_gated', 'tops_per_mm2')} and "
        f"{x('W1A8', 'dequant_gated', 'energy')})"
    )
    lut, mac = d["lut_w2a8"]["ungated"], d["dot_w2a8"]["ungated"]
    out.append(
        f"the LUT core is {x('W2A8', 'mac_ungated', 'area')} smaller than the INT8 x INT2 tile, but it is "
        f"bit-serial: {lut['peak_macs_per_cycle']:.0f} MACs per cycle to the tile's {mac['peak_macs_per_cycle']:.0f}, "
        f"so it has {x('W2A8', 'mac_ungated', 'tops_per_mm2')} the tile's TOPS/mm² and "
        f"{1 / rows['W2A8']['mac_ungated']['energy']:.2f}x its energy per MAC"
    )
    out.append(
        f"Against the dequantization baseline it has {x('W2A8', 'dequant_ungated', 'tops_per_mm2')} the TOPS/mm² "
        f"and uses {x('W2A8', 'dequant_ungated', 'energy')} less energy per MAC "
        f"({x('W2A8', 'dequant_gated', 'tops_per_mm2')} and {x('W2A8', 'dequant_gated', 'energy')} with gating)"
    )
    lb, mb = lut["energy_breakdown_pj_per_op"], mac["energy_breakdown_pj_per_op"]
    out.append(
        f"Per cycle the LUT core spends less ({lut['energy_pj_per_op'] * lut['ops_per_cycle']:.0f} pJ against "
        f"{mac['energy_pj_per_op'] * mac['ops_per_cycle']:.0f})"
    )
    out.append(
        f"(sequential area {lut['sequential_area_um2']:,.0f} vs {mac['sequential_area_um2']:,.0f} µm²)"
    )
    out.append(f"its clock energy per MAC is {lb['clock']:.2f} pJ against {mb['clock']:.2f}")
    out.append(
        f"{lb['combinational']:.2f} pJ/MAC of combinational energy against the multipliers' {mb['combinational']:.2f}"
    )
    cross = s["mac_wins_from_weight_bits"]
    assert cross["A8"] == cross["A16"] == 2, cross
    out.append("The MAC tile has more TOPS/mm² from W2 up, at A8 and at A16")
    for key, v in s["ablation"].items():
        out.append(
            f"| {README_ABLATION_LABELS[key]} | {v['area_um2']:,.0f} | {v['tops_per_mm2']:.2f}x | {v['energy']:.2f}x |"
        )
    k = s["k16"]
    out.append(
        f"the LUT core has {k['tops_per_mm2']:.2f}x the MAC tile's TOPS/mm² and {1 / k['energy']:.2f}x its energy per MAC"
    )
    return out


# bench/lut_vs_mac.py design keys -> the README's row labels
README_LUT_LABELS = {
    "lut_w1a8": "LUT core W1A8",
    "lut_w2a8": "LUT core W2A8",
    "lut_w4a8": "LUT core W4A8",
    "dot_w1a8": "MAC tile INT8 x INT2, ±1 weights",
    "dot_w2a8": "MAC tile INT8 x INT2",
    "dot_w4a8": "MAC tile INT8 x INT4",
    "dequant_a8": "MAC tile INT8 x INT8 (dequantization)",
    "lut_w1a16": "LUT core W1A16",
    "lut_w2a16": "LUT core W2A16",
    "lut_w4a16": "LUT core W4A16",
    "dot_w1a16": "MAC tile INT16 x INT2, ±1 weights",
    "dot_w2a16": "MAC tile INT16 x INT2",
    "dot_w4a16": "MAC tile INT16 x INT4",
    "lut_w2a8_k16": "LUT core W2A8, M2 N64 K16",
    "dot_w2a8_k16": "MAC tile INT8 x INT2, M2 N64 K16",
}
README_ABLATION_LABELS = {
    "lut_w2a8_full": "full table (2^g entries, no negation)",
    "lut_w2a8_half_incore": "half table, index complement in the core",
    "lut_w2a8": "half table, offline index complement (default)",
    "lut_w2a8_external": "+ table precompute outside the core",
}


def ppa_16x16_fragments() -> list[str]:
    r = result("ppa_16x16")
    names = {"tpegen45": "built-in `tpegen45`", "gscl45nm": "OSU FreePDK45 `gscl45nm`"}
    out = []
    # The default workload: the array's steady-state GEMM, stated with its utilization.
    workloads = {json.dumps(d["workload"], sort_keys=True) for d in r.values()}
    assert len(workloads) == 1
    w = json.loads(workloads.pop())
    m, k, n, cycles, util = w["M"], w["K"], w["N"], w["cycles"], w["utilization"]
    assert w["seed"] == 0 and util > 0.9, w
    array = load_config(REPO / "configs" / "int8_os_16x16.yaml").array
    assert util == m * k * n / (cycles * array.rows * array.cols)
    tiles = -(-m // array.rows) * -(-n // array.cols)
    out.append(
        f"a random {m}x{k}x{n} GEMM ({m * k * n:,} MACs in {tiles} output tiles back to back, {cycles:,} "
        f"cycles, {100 * util:.1f}% utilization)"
    )
    out.append(f"pJ/MAC ({m}x{k}x{n}, {100 * util:.1f}% utilization)")
    for lib, d in r.items():
        assert d["checked_against_rtl"] and d["workload_shape"] == [m, k, n]
        # the gate-level simulation took the timing model's cycles
        assert d["ops"] == m * k * n and round(d["ops"] / d["ops_per_cycle"]) == cycles
        b = d["energy_breakdown_pj_per_op"]
        assert max(b, key=b.get) == "clock", "the README says clock energy is the largest part"
        out.append(
            f"| {names[lib]} | {d['area_um2']:,.0f} | {d['n_cells']:,} | {_delay(d)} | "
            f"{d['energy_pj_per_op']:.2f} | {b['combinational']:.2f} | {b['sequential']:.2f} | "
            f"{b['clock']:.2f} | {b['leakage']:.2f} |"
        )
    return out


BLOCK_LABELS = {
    "add8": "8-bit add",
    "mul8": "8-bit multiply",
    "add32": "32-bit add",
    "bf16mul": "bf16 multiply",
}


def ppa_fragments() -> list[str]:
    from tpegen.synth import BUILTIN_LIBERTY, read_liberty

    r = result("ppa")
    assert {b["timing"]["engine"] for b in r["blocks"]} == {"opensta"}
    out = ["delays from OpenSTA"]
    for b in r["blocks"]:
        out.append(
            f"| {BLOCK_LABELS[b['block']]} | {b['op_area_um2']:.1f} ({b['published_um2']:g}) | "
            f"{b['op_area_um2'] / b['published_um2']:.1f}x | {b['op_energy_pj']:.3f} ({b['published_pj']:g}) | "
            f"{b['op_energy_pj'] / b['published_pj']:.1f}x | {b['area_um2']:.1f} | "
            f"{b['energy_pj_per_op']:.3f} | {b['delay_ns']:.2f} |"
        )
    nand2 = read_liberty(BUILTIN_LIBERTY).cells["NAND2_X1"].area
    out.append(f"These cells are large (NAND2 {nand2:.1f} µm²)")
    return out


def machine_fragments() -> list[str]:
    cpus = {record(b)["machine"]["cpus"] for b in BENCHES}
    assert len(cpus) == 1, f"results from machines with different core counts: {cpus}"
    return [f"run on one {cpus.pop()}-core machine"]


def map_models_fragments() -> list[str]:
    r = result("map_models")
    inp = r["minilm_inputs"]
    out = [
        f"{inp['sentences']} built-in sentences ({inp['tokens']} tokens, padded to {inp['padded_tokens']})",
    ]

    def weights(x: dict) -> str:
        if x["quant"] in ("BF16", "FP8"):
            return "-"
        g = (
            f"g{x['group']}"
            if x["group"]
            else ("per channel" if x["granularity"] == "channel" else x["granularity"])
        )
        g += "" if x["symmetric"] else ", asym."
        if x.get("weight_method") == "gptq":  # calibrated on the test data itself, or held out
            g += ", GPTQ (" + (
                "held-out calib.)" if "other" in x["calibration"] else "calib. on the test inputs)"
            )
        return g

    for model, rows in (("digits_cnn", r["digits"]), ("MiniLM", r["minilm"])):
        for x in rows:
            if x["accuracy"]:
                quality = (
                    f"top-1 {100 * x['accuracy']['mapped']:.1f}% (float {100 * x['accuracy']['float']:.1f}%)"
                )
            else:
                quality = f"cosine {x['cos']:.6f}"
            out.append(
                f"| {model} | `{x['hw']}` | {x['quant']} | {weights(x)} | {quality} | {x['total_cycles']:,} | "
                f"{100 * x['utilization']:.1f}% | {x['layers_on_host']} of {x['layers']} | {x['samples']} | "
                f"{x['seconds']:.1f} |"
            )
    return out


def system_fragments() -> list[str]:
    r = result("system")
    ov = r["overlap"]
    mem = r["memory"]
    (at16,) = [x for x in ov["rows"] if x["axi_bytes"] == 16]
    assert r["overlap_within_5_points"] and at16["points_below_array"] <= 5
    m, k, n = ov["shape"]
    out = [
        f"a ({m}, {k}, {n}) INT8 GEMM on `{ov['config']}` with host memory at 16 B/cycle and "
        f"{mem['read_latency']}-cycle latency runs in {at16['cycles']:,} cycles: "
        f"{100 * at16['utilization']:.1f}% PE utilization against {100 * at16['array_utilization']:.1f}% "
        f"for the bare array fed with every operand on time ({at16['array_cycles']:,} cycles), "
        f"{at16['points_below_array']:.1f} points below it (target: within 5)",
    ]
    for x in ov["rows"]:
        out.append(
            f"| {x['axi_bytes']} | {x['cycles']:,} | {100 * x['utilization']:.1f}% | "
            f"{x['points_below_array']:.1f} | {x['host_read_bytes']:,} | {x['commands']} |"
        )
    rm, rk, rn = r["rtl_vs_simulator"][0]["shape"]
    out.append(
        f"The RTL (Verilator, cocotbext-axi `AxiRam` host memory, {mem['read_latency']}-cycle latency) and "
        f"the system simulator run the same compiled program for ({rm} x {rk}) @ ({rk} x {rn}) random operands"
    )
    for x in r["rtl_vs_simulator"]:
        assert x["outputs_equal"] and x["rtl_cycles"] == x["sim_cycles"]
        out.append(
            f"| `{x['config']}` | {x['rtl_cycles']:,} | {x['sim_cycles']:,} | {x['array_cycles']:,} | "
            f"{x['commands']} | {x['host_bytes']:,} | {x['rtl_seconds']:.1f} | {x['sim_seconds']:.2f} | "
            f"{x['speedup']:.0f}x |"
        )
    pl = r["per_layer"]
    out.append(
        f"`{pl['topology']}` ({len(pl['layers'])} GEMMs) takes {pl['total_cycles']:,} cycles on the same top, "
        f"{100 * pl['utilization']:.1f}% utilization (bare array: {pl['array_cycles']:,} cycles, "
        f"{100 * pl['array_utilization']:.1f}%)"
    )
    return out


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def scale_rows() -> list[str]:
    """The rows of README's table of bench/scale.py (also what README is written from)."""
    s = result("scale")
    out = []
    for r in s["rows"]:
        kb = r["verilog_bytes"] / 1000
        area = None if r.get("area_um2") is None else r["area_um2"] / 1e6
        out.append(
            f"| {r['n']}x{r['n']} | {r['gen_s']:.1f} s | {r['gen_peak_mb']:.0f} MB | {kb:,.0f} kB | "
            f"{r['verilog_modules']} | {_cell(r.get('replay_build_s'), '{:.0f} s')} | "
            f"{_cell(r.get('replay_cycles_per_s'), '{:,.0f}')} | {_cell(r.get('cocotb_cycles_per_s'), '{:,.0f}')} | "
            f"{_cell(r.get('synth_s'), '{:.0f} s')} | {_cell(area, '{:.3f}')} | {_cell(r.get('delay_ns'), '{:.2f}')} | "
            f"{_cell(r.get('energy_s'), '{:.0f} s')} | {_cell(r.get('pj_per_mac'), '{:.3f}')} |"
        )
    g = s["growth_exponents"]
    keys = ["gen_s", "gen_peak_mb", "verilog_bytes", None, "replay_build_s", "replay_cycles_per_s"]
    keys += ["cocotb_cycles_per_s", "synth_s", "area_um2", None, "energy_s", None]
    out.append(
        "| growth N^k | " + " | ".join("" if k is None or k not in g else f"{g[k]:.2f}" for k in keys) + " |"
    )
    return out


def scale_fragments() -> list[str]:
    s = result("scale")
    assert s["rtl_gemm"] == "8N x 256 x 8N"
    out = [re.sub(r"\s+", " ", row) for row in scale_rows()]  # as measured() folds whitespace
    if "load_average_1min" in s:
        la = s["load_average_1min"]
        out.append(f"load average {la['start']:.2f} at the start and {la['end']:.2f} at the end")
    return out


def rtl_speed_rows() -> list[str]:
    """The rows of README's table of bench/rtl_speed.py."""
    out = []
    for r in result("rtl_speed")["rows"]:
        assert r["identical"], "the README says both paths gave the same outputs, cycles and stamps"
        c, p = r["cocotb"], r["replay"]
        out.append(
            f"| `{r['config']}` | {r['gemm']} | {r['cycles']:,} | {c['cycles_per_s']:,} / "
            f"{c['cycles_per_s_without_startup']:,} | {p['cycles_per_s']:,} / {p['cycles_per_s_without_startup']:,} | "
            f"{r['speedup_cycles_per_s']:.1f}x / {r['speedup_cycles_per_s_without_startup']:.1f}x |"
        )
    return out


def sweep_array_size_fragments() -> list[str]:
    """README's table of the shipped array_size sweep (bench/shipped_sweeps.py) and its fronts."""
    r = result("sweep_array_size")
    assert r["workloads"] == ["topology:bert_encoder_6x384"] and r["liberty"] == "built-in"
    assert all(row["status"] == "ok" for row in r["rows"])
    size = {row["point"]: f"{row['array.rows']}x{row['array.cols']}" for row in r["rows"]}
    out = [
        f"| {size[row['point']]} | {row['area'] / 1e6:.3f} | {row['memory_area'] / 1e6:.3f} | {row['delay']:.2f} | "
        f"{row['energy_per_op']:.3f} | {row['cycles']:,} | {100 * row['utilization']:.1f}% | {row['time']:.2f} | "
        f"{row['energy'] / 1000:.2f} |"
        for row in r["rows"]
    ]
    layers = load_topology("bert_encoder_6x384")
    (tokens,) = {layer.m for layer in layers}
    out.append(f"(`bert_encoder_6x384`: {len(layers)} GEMMs, {tokens} tokens)")
    for f in r["fronts"]:
        names = [size[r["rows"][i]["point"]] for i in f["front"]]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        out.append(f"{f['columns'][0]} and {f['columns'][1]}: {listed}")
    return out


FRAGMENTS = {
    "demo": demo_fragments,
    "rtl_speed": rtl_speed_rows,
    "scale": scale_fragments,
    "sim_speed": sim_speed_fragments,
    "fp_dse": fp_dse_fragments,
    "bitweight": bitweight_fragments,
    "lut_vs_mac": lut_vs_mac_fragments,
    "ppa_16x16": ppa_16x16_fragments,
    "ppa": ppa_fragments,
    "map_models": map_models_fragments,
    "system": system_fragments,
    "sweep_array_size": sweep_array_size_fragments,
}
BENCHES = list(FRAGMENTS)


def _closest(text: str, fragment: str) -> str:
    """The README text after the longest prefix of ``fragment`` it contains (for the failure message)."""
    for n in range(len(fragment), 0, -1):
        at = text.find(fragment[:n])
        if at != -1:
            return text[at : at + len(fragment) + 10]
    return "(nothing alike)"


# ------------------------------------------------------------------------------------------------
# the tests
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bench", [*BENCHES, "sweep"])
def test_stored_result_has_provenance(bench):
    rec = record(bench)
    assert rec["bench"] == bench
    assert rec["command"].startswith("python bench/")
    assert rec["date"] and rec["versions"]["tpegen"] and rec["versions"]["python"]


@pytest.mark.parametrize("bench", BENCHES)
def test_readme_quotes_the_stored_result(bench):
    text = measured()
    missing = [f for f in FRAGMENTS[bench]() if f not in text]
    diff = "\n".join(f"  expected: {f}\n  README:   {_closest(text, f)}" for f in missing)
    assert not missing, f"README.md differs from bench/results/{bench}.json:\n{diff}"


@pytest.mark.parametrize("bench", BENCHES)
def test_readme_names_the_command(bench):
    """The command that produced each stored result is printed next to its figures."""
    command = record(bench)["command"].removeprefix("python ")
    assert command in measured(), f"README does not name the command `{command}`"


def test_machine_is_stated():
    text = measured()
    for f in machine_fragments():
        assert f in text, f


NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?=x?(?!\w))")


def loose_numbers(text: str, fragments: list[str]) -> list[str]:
    """The numbers in ``text`` outside every one of ``fragments`` and outside code spans."""
    covered = [False] * len(text)

    def cover(fragment: str) -> None:
        for m in re.finditer(re.escape(fragment), text):
            covered[m.start() : m.end()] = [True] * (m.end() - m.start())

    for f in fragments:
        cover(f)
    for m in re.finditer(r"`[^`\n]*`", text):  # commands, config names, code
        cover(m.group())
    return [
        f"{m.group()!r} in: ...{text[max(0, m.start() - 60) : m.end() + 30]}..."
        for m in NUMBER.finditer(text)
        if not all(covered[m.start() : m.end()])
    ]


def test_every_number_is_pinned():
    """No figure in "Measured results" stands outside a checked fragment, a code span or a citation."""
    fragments = [f for bench in BENCHES for f in FRAGMENTS[bench]()]
    fragments += [*machine_fragments(), *LITERATURE]
    fragments += [record(bench)["command"].removeprefix("python ") for bench in BENCHES]
    loose = loose_numbers(measured(), fragments)
    assert not loose, "numbers in README 'Measured results' that no stored result checks:\n" + "\n".join(
        loose
    )


# ------------------------------------------------------------------------------------------------
# "Design-space sweeps": the block on bench/sweep.py (cached re-run, 1 vs 2 workers)
# ------------------------------------------------------------------------------------------------

SWEEP_COMMAND = "`python bench/sweep.py`"


def sweep_block() -> str:
    """The paragraph of the "Design-space sweeps" section that names bench/sweep.py and the table
    after it, whitespace folded; the section's other paragraphs are not part of it."""
    text = README.read_text()
    start = text.index("\n### Design-space sweeps (`tpegen sweep`)\n")
    end = re.compile(r"\n#{2,3} ").search(text, start + 1)
    body = text[start : end.start() if end else len(text)]
    at = body.index(SWEEP_COMMAND)
    first = body.rfind("\n\n", 0, at)
    table = body.index("\n|", at)
    last = body.find("\n\n", table)
    return re.sub(r"\s+", " ", body[first : last if last != -1 else len(body)])


def sweep_rows() -> list[str]:
    """The README's sentence and table on bench/sweep.py (also what README is written from)."""
    rec = record("sweep")
    r = rec["result"]
    assert all(r["checks"].values()), f"bench/sweep.py's checks failed: {r['checks']}"
    c, s = r["cache"], r["speedup"]
    cold, rerun, w1, w2 = c["cold"], c["rerun"], s["workers_1"], s["workers_2"]
    axis = c["spec"]["axes"]["array.rows"]
    assert c["spec"]["axes"]["array.cols"] == axis and c["spec"]["metrics"] == ["cycles", "utilization"]
    assert s["spec"]["metrics"] == ["area", "delay"] and w1["workers"] == 1 and w2["workers"] == 2
    la = r["load_average_1min"]
    pes = eval_shape(s["shapes"][0])
    gemms = " and ".join(c["spec"]["workloads"])

    def end(run: dict) -> str:
        load = run["load_1min"]
        return f"{run['computed']} / {run['cached']} | {load['before']:.2f} / {load['after']:.2f} |"

    return [
        f"{SWEEP_COMMAND} on a {rec['machine']['cpus']}-core machine (load average {la['start']:.2f} at "
        f"the start and {la['end']:.2f} at the end)",
        f"cached re-run of the {cold['points']}-point sweep takes {rerun['wall_s']:.1f} s "
        f"(target: under {c['target_rerun_s']:g} s)",
        f"| {cold['points']} points: rows x cols {axis['start']}..{axis['stop']} step {axis['step']}, "
        f"cycles and utilization on {gemms} | {cold['tasks']} timing-model | cold (a worker per core) | "
        f"{cold['wall_s']:.1f} s | {end(cold)}",
        f"| | | cached re-run | {rerun['wall_s']:.1f} s | {end(rerun)}",
        f"| {w1['points']} shapes of {pes} MACs ({s['shapes'][0]} .. {s['shapes'][-1]}): area and delay | "
        f"{w1['tasks']} syntheses | 1 worker | {w1['wall_s']:.1f} s | {end(w1)}",
        f"| | | 2 workers | {w2['wall_s']:.1f} s, speed-up {s['speedup']:.2f}x | {end(w2)}",
    ]


def eval_shape(shape: str) -> int:
    """MACs of an ``RxC`` shape."""
    rows, cols = (int(x) for x in shape.split("x"))
    return rows * cols


def test_sweep_section_quotes_bench_sweep():
    text = sweep_block()
    missing = [f for f in sweep_rows() if f not in text]
    diff = "\n".join(f"  expected: {f}\n  README:   {_closest(text, f)}" for f in missing)
    assert not missing, f"README.md's sweep section differs from bench/results/sweep.json:\n{diff}"
    assert record("sweep")["command"] == "python bench/sweep.py", "README quotes the default run"
    loose = loose_numbers(text, sweep_rows())
    assert not loose, "numbers in the bench/sweep.py block that no stored result checks:\n" + "\n".join(loose)


# ------------------------------------------------------------------------------------------------
# "What works": the verified sizes and modes are the ones the tests run
# ------------------------------------------------------------------------------------------------


@cache
def what_works() -> str:
    return re.sub(r"\s+", " ", section(README.read_text(), "What works"))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _params(test) -> list:
    """The argument values of ``test``'s ``@pytest.mark.parametrize``."""
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


def test_what_works_states_what_the_tests_check():
    import inspect

    import test_cli
    import test_cycle_sim
    import test_fma_datapath
    import test_formal
    import test_fp_engine
    import test_lut_rtl
    import test_systolic_rtl

    text = what_works()
    for path in re.findall(r"`(tests/\w+\.py)`", text):
        assert (REPO / path).exists(), path
    arrays = test_cycle_sim.ARRAYS
    assert {d for d, _, _ in arrays} == {"os", "ws"}
    sizes = sorted({(r, c) for _, r, c in arrays})
    stalls = _params(test_systolic_rtl.test_array_verify_random_and_edge_cases)
    gemm_rtl = _params(test_cli.test_gemm_rtl_matches_numpy_and_timing_model)
    assert gemm_rtl == ["int8_os_8x8", "int8_ws_8x8"]
    assert "int8_os_16x16" in inspect.getsource(test_cli.test_demo_runs_default_job)
    expected = [
        f"bit-exact and cycle-exact on Verilator at {_and([f'{r}x{c}' for r, c in sizes])} (both dataflows",
        f"{_and([f'{r}x{c} {d.upper()}' for d, r, c in stalls])} (also with random input bubbles and backpressure), "
        "8x8 (both dataflows) and 16x16 OS (one layer of the default job)",
    ]

    def slow(param) -> bool:
        return any(m.name == "slow" for m in param.marks)

    timing = test_cycle_sim.README_ARRAYS
    assert hasattr(test_cycle_sim, "test_ws_partial_sums_wrap_inside_the_array")
    expected.append(
        "the timing model against the RTL, every tile, at "
        + _and([f"`{p.values[0]}`" for p in timing if not slow(p)])
        + ", and with `-m slow` at "
        + _and([f"`{p.values[0]}`" for p in timing if slow(p)])
        + "; a WS tile whose partial sums wrap inside the array"
    )
    lut = []
    for p in test_lut_rtl.DEFAULT_DESIGNS.values():
        extra = ", also ternary" if p.weight_bits == 2 else ""
        lut.append(f"W{p.weight_bits}-A{p.act_bits} (g {p.group_size}{extra})")
    expected.append(f"bit-exact and cycle-exact on Verilator for {_and(lut)} in the default run")
    assert "10_000" in inspect.getsource(test_fma_datapath.test_datapath_verilator_10k)
    assert len(test_fma_datapath.MODES) == 14
    expected.append(
        "10k random and edge-case (a, w, acc) triples per mode per run equal the model for fourteen modes"
    )
    fp_rtl = [f"`{n}`" for n in test_fp_engine.RTL_DEFAULT]
    expected.append(f"on Verilator, 4x4 copies of {_and(fp_rtl)}: RTL == golden byte for byte")
    for name in ("mac_int8_config_is_proved_at_its_own_widths", "lut_config_is_proved"):
        assert hasattr(test_formal, f"test_{name}"), name
    assert hasattr(test_formal, "test_fma_bf16_gate_level_is_proved_at_full_size")
    expected.append("proved in `tests/test_formal.py`")
    missing = [f for f in expected if f not in text]
    assert not missing, "README 'What works' differs from the tests:\n" + "\n".join(
        f"  expected: {f}\n  README:   {_closest(text, f)}" for f in missing
    )
