"""What each tool costs as the array grows: square INT8 output-stationary arrays of 8 .. 128.

    python bench/scale.py [--sizes 8,16,32,64,128] [--rtl-max 32] [--cocotb-max 16]
                          [--synth-max 64] [--energy-max 64] [--seed 0] [--out F]

For each size N (the shipped ``int8_os_8x8`` config with ``rows = cols = N``):

* ``tpegen gen``: wall time and peak memory (the largest resident set of the process and of the
  Yosys it starts) of a fresh ``tpegen gen`` process; the Verilog's size (bytes, lines, module
  definitions).
* RTL (N <= ``--rtl-max``): the Verilator build time of the replay harness (cold, C++ at -O2) and its speed in
  simulated cycles per second on an (8N, 256, 8N) GEMM (64 tiles of 256 cycles), start-up excluded
  (:attr:`~tpegen.sim.verilator.StreamResult.seconds`); the per-beat cocotb testbench's build and
  speed too while N <= ``--cocotb-max`` (both paths must return the same outputs and cycles).
* ``tpegen synth`` (N <= ``--synth-max``): wall time (cold cache) of synthesis with timing, area,
  critical path (OpenSTA when installed) and, while N <= ``--energy-max``, energy per MAC of the
  gate-level simulation on the array's steady-state workload and its wall time. Designs of more
  than 2,000 module instances (N >= 32) are synthesized hierarchically; their energy simulates
  every cell instance of the hierarchical netlist flattened into arrays (:mod:`tpegen.synth.gates`)
  and checks the outputs and cycles against the golden and timing models (smaller arrays: against
  the RTL on Verilator, whose build is part of the energy time). 128x128 is not synthesized by
  default: OpenSTA holds the whole hierarchy in memory (1.7 GB at 32x32, growing with the cells,
  past this machine's 23 GB at 128x128) and the exact gate-level simulation costs cells x cycles.

Every cache (Verilator builds, synthesis) is a fresh temporary folder, so each build and synthesis
is cold. The last row of the table is the exponent of each cost's growth (the slope of log cost
over log N, least squares over the sizes measured). Results go to ``bench/results/scale.json``
(``--out``) with the command, tool versions and date.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["TPEGEN_CACHE"] = tempfile.mkdtemp(prefix="tpegen-scale-cache-")  # every build cold

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from provenance import write_result  # noqa: E402

from tpegen.config import load_config  # noqa: E402

# Peak resident set of a child process tree: the wrapper waits for `tpegen gen` and reports the
# largest resident set among the processes it waited for (tpegen and, through it, Yosys).
_PEAK = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(r.returncode)\n"
)


_TPEGEN = "import sys; from tpegen.cli import main; sys.exit(main(sys.argv[1:]))"  # the `tpegen` command


def design(n: int):
    cfg = load_config("int8_os_8x8")
    return dataclasses.replace(
        cfg, name=f"int8_os_{n}x{n}", array=dataclasses.replace(cfg.array, rows=n, cols=n)
    )


def measure_gen(cfg, work: Path) -> dict[str, Any]:
    """Fresh ``tpegen gen`` process: wall time, peak memory, the Verilog's size."""
    raw = work / f"{cfg.name}.yaml"
    raw.write_text(yaml.safe_dump(cfg.to_dict()))
    out = work / f"{cfg.name}_v"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, sys.executable, "-c", _TPEGEN, "gen", str(raw), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"tpegen gen {raw} failed: {proc.stderr[-2000:]}")
    (verilog,) = out.glob("*.v")
    text = verilog.read_text()
    return {
        "gen_s": round(wall, 2),
        "gen_peak_mb": round(int(proc.stderr.strip().splitlines()[-1]) / 1024, 1),
        "verilog_bytes": len(text.encode()),
        "verilog_lines": text.count("\n"),
        "verilog_modules": len(re.findall(r"^module ", text, re.MULTILINE)),
    }


def measure_rtl(cfg, n: int, seed: int, cocotb: bool) -> dict[str, Any]:
    """Cold Verilator builds and simulation speed of an (8N, 256, 8N) GEMM (64 tiles) on each RTL path."""
    from tpegen.sim.replay import replay_depth

    acc = cfg.accelerator()
    rng = np.random.default_rng(seed)
    a, w = acc.check_operands(*acc.random_operands(rng, 8 * n, 256, 8 * n))
    program = acc.program(a, w)
    stream = program.stream
    row: dict[str, Any] = {}
    paths = {"replay": lambda: acc.replay_model(replay_depth([stream]))}
    if cocotb:
        paths["cocotb"] = acc.rtl_model
    outputs = {}
    for path, build in paths.items():
        t0 = time.perf_counter()
        model = build()
        row[f"{path}_build_s"] = round(time.perf_counter() - t0, 1)
        (res,) = model.run([stream])
        outputs[path] = (program.decode(res.outputs), res.cycles)
        row[f"{path}_cycles_per_s"] = round(res.cycles / res.seconds)
        row["cycles"] = res.cycles
    for path, (out, cycles) in outputs.items():
        if not np.array_equal(out, a.astype(np.int64) @ w) or cycles != acc.cycles(8 * n, 256, 8 * n):
            raise SystemExit(f"{cfg.name}: the {path} RTL run disagrees with A @ W or the timing model")
    return row


def measure_synth(cfg, energy: bool) -> dict[str, Any]:
    from tpegen.api import synthesize_design

    t0 = time.perf_counter()
    marks = []  # when the gate-level simulation started

    def progress(msg: str) -> None:
        if msg.startswith("simulating the gate-level netlist"):
            marks.append(time.perf_counter())

    rep, en = synthesize_design(cfg, energy=energy, progress=progress)
    t1 = time.perf_counter()
    return {
        "synth_s": round((marks[0] if marks else t1) - t0, 1),
        "energy_s": round(t1 - marks[0], 1) if marks else None,
        "area_um2": round(rep.area_um2),
        "delay_ns": rep.delay_ns,
        "timing_engine": rep.timing.engine if rep.timing is not None else None,
        "hierarchical": bool(rep.flow.get("hierarchical")),
        "pj_per_mac": None if en is None else round(en.energy_pj_per_op, 4),
    }


COSTS = (
    "gen_s",
    "gen_peak_mb",
    "verilog_bytes",
    "replay_build_s",
    "replay_cycles_per_s",
    "cocotb_cycles_per_s",
    "synth_s",
    "energy_s",
    "area_um2",
)


def growth(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares slope of log(cost) over log(N) for each cost measured at two sizes or more."""
    out = {}
    for key in COSTS:
        pts = [(r["n"], r[key]) for r in rows if r.get(key)]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            out[key] = round(float(np.polyfit(x, y, 1)[0]), 2)
    return out


def print_table(rows: list[dict[str, Any]], slopes: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = [
        ("N", "n", "{}"),
        ("gen s", "gen_s", "{:.1f}"),
        ("gen MB", "gen_peak_mb", "{:.0f}"),
        ("Verilog kB", "verilog_bytes", "{:.0f}"),
        ("modules", "verilog_modules", "{}"),
        ("build s (replay)", "replay_build_s", "{:.0f}"),
        ("cycles/s replay", "replay_cycles_per_s", "{:,.0f}"),
        ("cycles/s cocotb", "cocotb_cycles_per_s", "{:,.0f}"),
        ("synth s", "synth_s", "{:.0f}"),
        ("area mm2", "area_um2", "{:.3f}"),
        ("delay ns", "delay_ns", "{:.2f}"),
        ("energy s", "energy_s", "{:.0f}"),
        ("pJ/MAC", "pj_per_mac", "{:.3f}"),
    ]
    table = Table(title="INT8 OS arrays: cost of each tool as N x N grows (cold caches)")
    for head, _, _ in cols:
        table.add_column(head, justify="right")
    for r in rows:
        cells = []
        for _, key, fmt in cols:
            v = r.get(key)
            if v is not None and key == "verilog_bytes":
                v = v / 1000
            if v is not None and key == "area_um2":
                v = v / 1e6
            cells.append("-" if v is None else fmt.format(v))
        table.add_row(*cells)
    table.add_row(*["growth N^k"] + [f"{slopes[k]:.2f}" if k in slopes else "" for _, k, _ in cols[1:]])
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="8,16,32,64,128", help="array sizes N (N x N), comma-separated")
    ap.add_argument("--rtl-max", type=int, default=32, help="largest N built and simulated with Verilator")
    ap.add_argument("--cocotb-max", type=int, default=16, help="largest N also run on the per-beat testbench")
    ap.add_argument("--synth-max", type=int, default=64, help="largest N synthesized")
    ap.add_argument("--energy-max", type=int, default=64, help="largest N with gate-level energy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="result file (default bench/results/scale.json)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    t_start = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)  # other work on the machine slows every figure
    rows = []
    with tempfile.TemporaryDirectory(prefix="tpegen-scale-") as tmp:
        for n in sizes:
            cfg = design(n)
            row: dict[str, Any] = {"n": n, **measure_gen(cfg, Path(tmp))}
            print(f"N={n}: gen {row['gen_s']} s, {row['gen_peak_mb']} MB", flush=True)
            if n <= args.rtl_max:
                row |= measure_rtl(cfg, n, args.seed, cocotb=n <= args.cocotb_max)
                print(f"N={n}: RTL {row}", flush=True)
            if n <= args.synth_max:
                row |= measure_synth(cfg, energy=n <= args.energy_max)
                print(f"N={n}: synth {row['synth_s']} s", flush=True)
            rows.append(row)
    slopes = growth(rows)
    print_table(rows, slopes)
    write_result(
        "scale",
        {
            "rows": rows,
            "growth_exponents": slopes,
            "rtl_gemm": "8N x 256 x 8N",
            "load_average_1min": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        },
        script="bench/scale.py",
        argv=sys.argv[1:] if argv is None else argv,
        seconds=time.perf_counter() - t_start,
        path=args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
