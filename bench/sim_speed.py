"""Cycle-level simulator speed and cycle counts next to SCALE-Sim (a peer systolic-array simulator).

    python bench/sim_speed.py [--rows 8 --cols 8] [--gemms 64x64x64,...] [--skip-scalesim] [--out F]
                              [--cli-gemms 64x64x64,...] [--cli-array 32] [--repeats 7]

Runs the same GEMM list on the same array size (OS and WS) through :func:`tpegen.sim.cycle.simulate`
(exact outputs from random INT8 operands) and through SCALE-Sim 3.0.0, and prints both cycle
counts and both wall times with their ratio, then our time on the 36 weight GEMMs of a 6-layer
BERT-style encoder (hidden 384, FFN 1536, 128 tokens) on the 32x32 configs.

SCALE-Sim 3.0.0 needs ``numpy<2.4``, so it runs in its own virtual environment, created on first
use under ``$TPEGEN_SCALESIM_VENV`` (default ``~/.cache/tpegen/scalesim-venv``) with
``pip install scalesim==3.0.0 'numpy<2.4'``, through a subprocess. Its wall time is measured inside
that subprocess around ``scalesim.run_scale`` only (no interpreter start-up or imports), one
GEMM per run, trace files off. Our wall time is ``time.perf_counter`` around ``simulate`` with
the operands already generated, after one warm-up call, on one core (``OPENBLAS_NUM_THREADS=1``
and friends are set before numpy is imported). Nothing is extrapolated: every number is measured.
All numbers are stored in ``bench/results/sim_speed.json`` (``--out``), with the command, tool
versions and date.

**Whole process** (``topology_cli`` in the result): ``tpegen sim`` as a user runs it, a fresh
process per run (interpreter start-up, imports, config and topology parsing, simulation, the printed
table), on six transformer-sized GEMMs (``--cli-gemms``, M x K x N) written as a SCALE-Sim GEMM
topology, on the shipped 32x32 INT8 configs (``int8_os_32x32``, ``int8_ws_32x32``): timing only
(the default; also with ``--json``), and with ``--trace DIR`` (SCALE-Sim-format SRAM traces of every
layer; DIR on a RAM file system when ``/dev/shm`` exists, so that the disk's speed is not what is
measured -- the file system is stored). Wall time (``time.perf_counter`` around the process) and
CPU time (the child's user + system time), best and median of ``--repeats`` runs after a warm-up
run, with bytecode cached (:func:`whole_process`). SCALE-Sim runs
the same GEMMs on the same array and dataflow as above (its ``run_scale`` wall and CPU time only,
without interpreter start-up or imports, and with trace files off), and the ratios divide its total
by our median.
"""

from __future__ import annotations

import os

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CALLER_ENV = dict(os.environ)  # what a user's `tpegen` process gets (see whole_process)
for _var in THREAD_VARS:
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from provenance import write_result  # noqa: E402

from tpegen.config import config_from_dict, load_config  # noqa: E402
from tpegen.sim.cycle import simulate  # noqa: E402
from tpegen.sim.topology import load_topology  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCALESIM_SPEC = ("scalesim==3.0.0", "numpy<2.4")

# Runs inside the SCALE-Sim venv: one scalesim run per GEMM, prints one JSON object.
SCALESIM_RUNNER = r"""
import contextlib, io, json, os, sys, time
from scalesim.scale_sim import scalesim

job = json.loads(sys.argv[1])
work = job["workdir"]
cfg = os.path.join(work, "scale.cfg")
with open(cfg, "w") as f:
    f.write(f'''[general]
run_name = tpegen_bench

[architecture_presets]
ArrayHeight : {job["rows"]}
ArrayWidth : {job["cols"]}
IfmapSramSzkB : 1024
FilterSramSzkB : 1024
OfmapSramSzkB : 1024
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : {job["dataflow"]}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
''')
rows = []
for n, (m, k, nn) in enumerate(job["gemms"]):
    topo = os.path.join(work, f"gemm{n}.csv")
    with open(topo, "w") as f:
        f.write("Layer, M, N, K,\n" + f"g{n}, {m}, {nn}, {k},\n")
    layout = os.path.join(work, f"layout{n}.csv")
    with open(layout, "w") as f:
        f.write("Layer name," + ",".join(f"c{i}" for i in range(20)) + ",\n")
        f.write(f"g{n}," + ",".join(["1"] * 20) + ",\n")
    out = os.path.join(work, f"run{n}")
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                       layout=layout, input_type_gemm=True)
        t0, c0 = time.perf_counter(), time.process_time()
        sim.run_scale(top_path=out)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(os.path.join(out, "tpegen_bench", "COMPUTE_REPORT.csv")) as f:
        rep = [x.strip() for x in f.read().splitlines()[1].split(",")]
    rows.append({"total_incl_prefetch": int(float(rep[1])), "total": int(float(rep[2])),
                 "stall": int(float(rep[3])), "seconds": wall, "cpu_seconds": cpu})
print(json.dumps(rows))
"""


def scalesim_python() -> Path:
    """The SCALE-Sim venv's interpreter, creating the venv on first use."""
    venv = Path(os.environ.get("TPEGEN_SCALESIM_VENV", Path.home() / ".cache" / "tpegen" / "scalesim-venv"))
    py = venv / "bin" / "python"
    ok = py.exists() and subprocess.run([py, "-c", "import scalesim"], capture_output=True).returncode == 0
    if not ok:
        print(f"creating the SCALE-Sim venv in {venv} (first use) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *SCALESIM_SPEC], check=True)
    return py


def run_scalesim(rows: int, cols: int, dataflow: str, gemms: list[tuple[int, int, int]]) -> list[dict]:
    py = scalesim_python()
    with tempfile.TemporaryDirectory(prefix="tpegen-scalesim-") as work:
        job = {"rows": rows, "cols": cols, "dataflow": dataflow, "gemms": gemms, "workdir": work}
        proc = subprocess.run(
            [py, "-c", SCALESIM_RUNNER, json.dumps(job)], capture_output=True, text=True, cwd=work
        )
    if proc.returncode != 0:
        raise RuntimeError(f"SCALE-Sim failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _operands(rng: np.random.Generator, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)


def run_ours(acc, gemms: list[tuple[int, int, int]], seed: int = 0) -> list[dict]:
    """Simulate every GEMM (exact outputs); wall time per GEMM after a warm-up call."""
    rng = np.random.default_rng(seed)
    ops = [_operands(rng, *g) for g in gemms]
    simulate(acc, *ops[0])  # warm-up (imports, BLAS initialisation)
    rows = []
    for (a, w), (m, k, n) in zip(ops, gemms, strict=True):
        t0 = time.perf_counter()
        r = simulate(acc, a, w)
        wall = time.perf_counter() - t0
        assert np.array_equal(r.output, a.astype(np.int64) @ w.astype(np.int64))
        rows.append({"M": m, "K": k, "N": n, "cycles": r.cycles, "tiles": r.tiles, "seconds": wall})
    return rows


def encoder_time(config: Path, repeats: int = 3) -> dict:
    """Wall time of the 36 BERT-encoder weight GEMMs on ``config`` (exact outputs, one core)."""
    acc = load_config(config).accelerator()
    layers = load_topology(REPO / "configs" / "topologies" / "bert_encoder_6x384.csv")
    rng = np.random.default_rng(0)
    ops = [_operands(rng, layer.m, layer.k, layer.n) for layer in layers]
    times, cold = [], None
    for rep in range(repeats + 1):
        t0 = time.perf_counter()
        results = [simulate(acc, a, w) for a, w in ops]
        dt = time.perf_counter() - t0
        if rep == 0:
            cold = dt
        else:
            times.append(dt)
    ok = all(np.array_equal(r.output, a.astype(np.int64) @ w.astype(np.int64)) for r, (a, w) in zip(results, ops, strict=True))  # fmt: skip
    return {
        "config": config.stem,
        "gemms": len(layers),
        "macs": sum(layer.macs for layer in layers),
        "cycles": sum(r.cycles for r in results),
        "exact": ok,
        "first_run_s": cold,
        "best_s": min(times),
        "median_s": float(np.median(times)),
    }


def scalesim_formula(df: str, rows: int, cols: int, m: int, k: int, n: int) -> int:
    """SCALE-Sim 3.0.0's compute cycles, reverse-engineered from its demand matrices (checked per row
    of the table): folds run back to back without overlap, minus one (0-based last cycle)."""
    R, C = rows, cols
    if df == "os":
        return -(-m // R) * -(-n // C) * (k + R + C - 2) - 1
    return -(-k // R) * -(-n // C) * (m + 2 * R + C - 2) - 1


def totals(ours: list[dict], theirs: list[dict] | None) -> dict:
    """Summed cycles and wall times over the GEMM list, and the wall-time ratio."""
    out = {"cycles_tpegen": sum(o["cycles"] for o in ours), "seconds_tpegen": sum(o["seconds"] for o in ours)}
    if theirs is not None:
        out["cycles_scalesim"] = sum(t["total"] for t in theirs)
        out["seconds_scalesim"] = sum(t["seconds"] for t in theirs)
        out["speedup"] = out["seconds_scalesim"] / out["seconds_tpegen"]
    return out


EXPLAIN = {
    "os": "ours (RTL-exact) = K + sum over the other T-1 tiles of max(K, R) + 2R + C - 1: the array "
    "accepts the next tile's operand beats while the previous tile still accumulates and drains "
    "(a `last` beat only waits R cycles, one per result row of the column), so tiles overlap, and "
    "the count runs to the last result row leaving the de-skewed output port (fill R + C, readout "
    "R rows). SCALE-Sim = folds x (K + R + C - 2) - 1: each fold is skewed in, computed and "
    "finished before the next starts (no overlap), and a result counts as done when its PE "
    "computes it (no readout). So for one tile SCALE-Sim is R + 2 cycles lower (readout), and "
    "per extra tile it charges K + R + C - 2 where we charge max(K, R).",
    "ws": "ours (RTL-exact) = R + sum over the first T-1 tiles of max(M, 2R + C - 1) + M + R + C - 1: "
    "the next tile's R weight rows shift into shadow registers while the current tile streams, "
    "so tiles overlap. SCALE-Sim = folds x (M + 2R + C - 2) - 1: a weight fill (R), the M-row "
    "stream and the skew drain (R + C - 2) per fold, folds back to back. One tile differs by 2 "
    "cycles (our inclusive count and de-skew register); each extra tile costs max(M, 2R + C - 1) "
    "here and M + 2R + C - 2 there.",
}


CLI_GEMMS = "64x64x64,128x768x768,128x768x3072,128x3072x768,1x4096x4096,512x512x512"  # M x K x N


def _tpegen_command() -> list[str]:
    """``tpegen`` as installed next to this interpreter (the console script a user runs)."""
    script = Path(sys.executable).with_name("tpegen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tpegen.cli"]


def whole_process(args: list[str], repeats: int, pycache: Path, fresh: Path | None = None) -> dict:
    """Wall and CPU seconds of ``tpegen ARGS`` as a new process, ``repeats`` times after one warm-up
    run (stdout read into a pipe and dropped), in the environment this bench was started in (not
    with the one-thread BLAS settings the bench gives itself). Bytecode is cached in ``pycache`` (as
    an installed package caches it after its first run, even where PYTHONDONTWRITEBYTECODE is set,
    as on the machine of the stored results). ``fresh`` is removed before every run (the --trace folder).
    Returns the runs, their best and median, and the last run's stdout."""
    env = {k: v for k, v in CALLER_ENV.items() if k != "PYTHONDONTWRITEBYTECODE"}  # not our 1-thread BLAS
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    walls, cpus, out = [], [], ""
    for run in range(repeats + 1):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([*_tpegen_command(), *args], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"tpegen {' '.join(args)} failed: {proc.stderr.strip()}")
        if run:  # run 0 is the warm-up (it also fills the bytecode cache)
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = proc.stdout
    return {
        "wall_s": walls,
        "cpu_s": cpus,
        "best_wall_s": min(walls),
        "median_wall_s": float(np.median(walls)),
        "best_cpu_s": min(cpus),
        "median_cpu_s": float(np.median(cpus)),
        "stdout": out,
    }


def _trace_root() -> tuple[Path, str]:
    """A scratch folder for traces: on /dev/shm (RAM) when it exists, else the system temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="tpegen-trace-", dir=shm)), "tmpfs (/dev/shm)"
    return Path(tempfile.mkdtemp(prefix="tpegen-trace-")), "system temp folder"


def _check_traces(folder: Path, cycles: list[int]) -> int:
    """Every layer's three files end in the layer's last cycle; returns their total size in bytes."""
    total = 0
    for i, c in enumerate(cycles):
        for name in ("IFMAP_SRAM_TRACE.csv", "FILTER_SRAM_TRACE.csv", "OFMAP_SRAM_TRACE.csv"):
            path = folder / f"layer{i}" / name
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - 4096))
                last = fh.read().splitlines()[-1]
            assert int(last.split(b",")[0]) == c - 1, (path, last[:40], c)
            total += path.stat().st_size
    return total


def topology_cli(gemms: list[tuple[int, int, int]], size: int, repeats: int, scalesim: bool) -> dict:
    """Whole-process ``tpegen sim`` on ``gemms`` (timing only, --json, --trace) on the shipped
    ``size`` x ``size`` INT8 configs, next to SCALE-Sim on the same GEMMs (module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="tpegen-bench-"))
    topo = work / "gemms.csv"
    topo.write_text(
        "Layer, M, N, K,\n" + "".join(f"g{i}, {m}, {n}, {k},\n" for i, (m, k, n) in enumerate(gemms))
    )
    trace_root, trace_fs = _trace_root()
    out: dict = {
        "array": f"{size}x{size}",
        "gemms": gemms,
        "repeats": repeats,
        "trace_fs": trace_fs,
        "thread_env": {v: CALLER_ENV.get(v) for v in THREAD_VARS},
        "dataflows": {},
    }
    try:
        for df in ("os", "ws"):
            config = f"int8_{df}_{size}x{size}"
            base = ["sim", config, "--topology", str(topo)]
            pyc = work / "pycache"
            runs = {
                "timing_only": whole_process(base, repeats, pyc),
                "json": whole_process([*base, "--json"], repeats, pyc),
                "trace": whole_process(
                    [*base, "--trace", str(trace_root / "t")], repeats, pyc, trace_root / "t"
                ),
            }
            report = json.loads(runs["json"].pop("stdout"))
            cycles = [layer["cycles"] for layer in report["layers"]]
            trace_bytes = _check_traces(trace_root / "t", cycles)
            shutil.rmtree(trace_root / "t")
            for r in runs.values():
                r.pop("stdout", None)
            row = {"config": config, "cycles_tpegen": report["total_cycles"], "cycles": cycles,
                   "trace_bytes": trace_bytes, "tpegen": runs}  # fmt: skip
            if scalesim:
                theirs = run_scalesim(size, size, df, gemms)
                for (m, k, n), t in zip(gemms, theirs, strict=True):
                    t["formula"] = scalesim_formula(df, size, size, m, k, n)
                row["scalesim"] = theirs
                row["cycles_scalesim"] = sum(t["total"] for t in theirs)
                row["seconds_scalesim"] = sum(t["seconds"] for t in theirs)
                row["cpu_seconds_scalesim"] = sum(t["cpu_seconds"] for t in theirs)
                row["speedup"] = {
                    mode: row["seconds_scalesim"] / r["median_wall_s"] for mode, r in runs.items()
                }
                row["speedup_best"] = {
                    mode: row["seconds_scalesim"] / r["best_wall_s"] for mode, r in runs.items()
                }
                row["speedup_cpu"] = {
                    mode: row["cpu_seconds_scalesim"] / r["median_cpu_s"] for mode, r in runs.items()
                }
            out["dataflows"][df] = row
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(trace_root, ignore_errors=True)
    return out


def print_topology_cli(res: dict) -> None:
    shapes = ", ".join("x".join(map(str, g)) for g in res["gemms"])
    print(f"\nWhole process: tpegen sim on {len(res['gemms'])} GEMMs ({shapes}), {res['array']} array, "
          f"median (best) of {res['repeats']} runs; traces on {res['trace_fs']}")  # fmt: skip
    for df, row in res["dataflows"].items():
        print(
            f"  {df.upper()} ({row['config']}): {row['cycles_tpegen']:,} cycles; traces {row['trace_bytes'] / 1e6:.0f} MB"
        )
        for mode, r in row["tpegen"].items():
            line = (f"    {mode:12s} wall {r['median_wall_s']:7.3f} s ({r['best_wall_s']:.3f}), "
                    f"CPU {r['median_cpu_s']:7.3f} s ({r['best_cpu_s']:.3f})")  # fmt: skip
            if "speedup" in row:
                line += (f"   vs SCALE-Sim: {row['speedup'][mode]:,.0f}x wall ({row['speedup_best'][mode]:,.0f}x best), "
                         f"{row['speedup_cpu'][mode]:,.0f}x CPU")  # fmt: skip
            print(line)
        if "scalesim" in row:
            print(f"    SCALE-Sim 3.0.0: {row['cycles_scalesim']:,} cycles, run_scale {row['seconds_scalesim']:.1f} s wall, "
                  f"{row['cpu_seconds_scalesim']:.1f} s CPU (no start-up, no trace files)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument(
        "--gemms",
        default="64x64x64,128x128x128,100x200x50,256x64x128",
        help="comma-separated MxKxN list (keep them small: SCALE-Sim steps Python per cycle)",
    )
    ap.add_argument("--skip-scalesim", action="store_true", help="only our simulator")
    ap.add_argument("--cli-gemms", default=CLI_GEMMS, help="MxKxN list for the whole-process tpegen sim runs")
    ap.add_argument(
        "--cli-array", type=int, default=32, help="array size of those runs (shipped int8 configs)"
    )
    ap.add_argument("--repeats", type=int, default=15, help="runs per whole-process measurement")
    ap.add_argument("--out", help="result file (default: bench/results/sim_speed.json)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    gemms = [tuple(int(x) for x in g.lower().split("x")) for g in args.gemms.split(",")]
    report: dict = {
        "array": f"{args.rows}x{args.cols}",
        "gemms": gemms,
        "scalesim": None if args.skip_scalesim else " ".join(SCALESIM_SPEC),
        "dataflows": {},
    }
    for df in ("os", "ws"):
        acc = config_from_dict(
            {
                "name": f"bench_{df}",
                "pe": {"type": "mac", "dataflow": df},
                "array": {"rows": args.rows, "cols": args.cols},
            }
        ).accelerator()
        ours = run_ours(acc, gemms)
        theirs = None if args.skip_scalesim else run_scalesim(args.rows, args.cols, df, gemms)
        report["dataflows"][df] = {"tpegen": ours, "scalesim": theirs, "total": totals(ours, theirs)}
        if theirs is not None:
            for o, t in zip(ours, theirs, strict=True):
                t["formula"] = scalesim_formula(df, args.rows, args.cols, o["M"], o["K"], o["N"])
        print(f"\n{df.upper()} dataflow, {args.rows}x{args.cols} array, INT8 GEMMs (exact outputs)")
        head = f"{'M x K x N':>14} {'tiles':>6} {'cycles tpegen':>14} {'cycles SCALE-Sim':>17} {'(incl. prefetch)':>17} {'diff':>8} {'wall tpegen':>12} {'wall SCALE-Sim':>15} {'speed-up':>9}"  # fmt: skip
        print(head)
        for n, o in enumerate(ours):
            shape = f"{o['M']}x{o['K']}x{o['N']}"
            if theirs is None:
                print(f"{shape:>14} {o['tiles']:>6} {o['cycles']:>14} {'-':>17} {'-':>17} {'-':>8} {o['seconds'] * 1e3:>10.2f}ms")  # fmt: skip
                continue
            t = theirs[n]
            formula = scalesim_formula(df, args.rows, args.cols, o["M"], o["K"], o["N"])
            print(
                f"{shape:>14} {o['tiles']:>6} {o['cycles']:>14} {t['total']:>17} {t['total_incl_prefetch']:>17} "
                f"{t['total'] - o['cycles']:>+8} {o['seconds'] * 1e3:>10.2f}ms {t['seconds']:>14.2f}s "
                f"{t['seconds'] / o['seconds']:>8.0f}x"
                f"  {'=' if formula == t['total'] else '!='} formula {formula}"
            )
        if theirs is not None:
            tot_o = sum(o["seconds"] for o in ours)
            tot_t = sum(t["seconds"] for t in theirs)
            print(f"{'total':>14} {'':>6} {sum(o['cycles'] for o in ours):>14} {sum(t['total'] for t in theirs):>17} "  # fmt: skip
                  f"{'':>17} {'':>8} {tot_o * 1e3:>10.2f}ms {tot_t:>14.2f}s {tot_t / tot_o:>8.0f}x")  # fmt: skip
            print("  accounting:", EXPLAIN[df])
            print(
                "  SCALE-Sim's 'incl. prefetch' column adds its DRAM->SRAM prefetch of the first "
                "operands, which our unlimited-bandwidth run does not model (tpegen sim --bandwidth "
                "models fetch stalls with double buffering instead)."
            )
    print(
        "\n36 weight GEMMs of a 6-layer BERT-style encoder (hidden 384, FFN 1536, 128 tokens), exact outputs"
    )
    report["encoder"] = []
    for cfg in ("int8_os_32x32", "int8_ws_32x32"):
        e = encoder_time(REPO / "configs" / f"{cfg}.yaml")
        report["encoder"].append(e)
        print(
            f"  {cfg}: {e['gemms']} GEMMs, {e['macs'] / 1e9:.2f} GMAC, {e['cycles']} cycles, exact={e['exact']}; "
            f"wall best {e['best_s']:.3f} s, median {e['median_s']:.3f} s, first run {e['first_run_s']:.3f} s"
        )
    cli_gemms = [tuple(int(x) for x in g.lower().split("x")) for g in args.cli_gemms.split(",")]
    report["topology_cli"] = topology_cli(cli_gemms, args.cli_array, args.repeats, not args.skip_scalesim)
    print_topology_cli(report["topology_cli"])
    path = write_result(
        "sim_speed", report, script=__file__, argv=argv, seconds=time.perf_counter() - t_start, path=args.out
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
