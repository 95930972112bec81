"""RTL simulation speed: the replay harness against the per-beat cocotb testbench, in one run.

    python bench/rtl_speed.py [--configs int8_os_8x8,int8_os_16x16] [--gemm 64x256x64] [--seed 0]
                              [--out F]

For each config, the same random GEMM (M x K x N) runs on the Verilated RTL through both paths of
:meth:`tpegen.sw.accelerator.Accelerator.run_rtl`: ``cocotb`` (:mod:`tpegen.sim.stream_tb`, one
Python ``await`` per clock cycle, C++ built at -O0) and ``replay`` (:mod:`tpegen.sim.replay`, the
beats played from memories inside the simulation, C++ built with
:data:`tpegen.sim.verilator.MAKE_ENV_FAST`). Both must give the same outputs, cycle counts and
handshake stamps (checked here too). Per path it reports the build time (0 when the build was
cached), the wall time of :meth:`~tpegen.sim.verilator.VerilatedModel.run` (start-up included:
simulator process, cocotb, Python imports), the program's own time inside the simulator
(:attr:`~tpegen.sim.verilator.StreamResult.seconds`: reset, loading the beats, simulation, reading
back), cycles per second with start-up included (cycles / wall) and excluded (cycles / program
time), and the ratios replay / cocotb. Each time is the best of ``--repeats`` runs. Results go to
``bench/results/rtl_speed.json`` (``--out``) with the command, tool versions and date.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from provenance import write_result

from tpegen.config import load_config
from tpegen.sim.replay import replay_depth


def _shape(text: str) -> tuple[int, int, int]:
    m, k, n = (int(x) for x in text.lower().split("x"))
    return m, k, n


def _timed(model, program) -> tuple[float, Any]:
    """Wall time of one simulation run of ``program`` and its result."""
    t0 = time.perf_counter()
    (res,) = model.run([program])
    return time.perf_counter() - t0, res


def measure(name: str, shape: tuple[int, int, int], seed: int, repeats: int) -> dict[str, Any]:
    acc = load_config(name).accelerator()
    rng = np.random.default_rng(seed)
    gemm = acc.program(*acc.check_operands(*acc.random_operands(rng, *shape))).stream
    t0 = time.perf_counter()
    models = {"cocotb": acc.rtl_model()}
    builds = {"cocotb": time.perf_counter() - t0}
    t0 = time.perf_counter()
    models["replay"] = acc.replay_model(replay_depth([gemm]))
    builds["replay"] = time.perf_counter() - t0
    row: dict[str, Any] = {"config": name, "gemm": "x".join(map(str, shape))}
    results = {}
    for path, model in models.items():
        runs = [_timed(model, gemm) for _ in range(repeats)]
        wall = min(w for w, _ in runs)
        res = min((r for _, r in runs), key=lambda r: r.seconds)
        results[path] = res
        row[path] = {
            "build_s": round(builds[path], 2),
            "run_s": round(wall, 3),
            "program_s": round(res.seconds, 4),
            "cycles_per_s": round(res.cycles / wall),
            "cycles_per_s_without_startup": round(res.cycles / res.seconds),
        }
    fast, slow = results["replay"], results["cocotb"]
    row["cycles"] = slow.cycles
    row["identical"] = bool(
        fast.cycles == slow.cycles
        and all(
            np.array_equal(f[p], s[p])
            for f, s in ((fast.outputs, slow.outputs), (fast.in_cycles, slow.in_cycles))
            for p in s
        )
        and all(np.array_equal(fast.out_cycles[p], slow.out_cycles[p]) for p in slow.out_cycles)
    )
    for key in ("cycles_per_s", "cycles_per_s_without_startup"):
        row[f"speedup_{key}"] = round(row["replay"][key] / row["cocotb"][key], 1)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="int8_os_8x8,int8_os_16x16", help="comma-separated configs")
    ap.add_argument("--gemm", default="64x256x64", type=_shape, help="GEMM shape M x K x N")
    ap.add_argument("--seed", type=int, default=0, help="operand seed")
    ap.add_argument("--repeats", type=int, default=1, help="runs per wall time (the best is kept)")
    ap.add_argument("--out", help="result file (default bench/results/rtl_speed.json)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    rows = []
    for name in args.configs.split(","):
        row = measure(name, args.gemm, args.seed, args.repeats)
        rows.append(row)
        print(
            f"{name} {row['gemm']}: {row['cycles']} cycles, identical={row['identical']}; "
            + "; ".join(
                f"{p}: build {row[p]['build_s']} s, run {row[p]['run_s']} s (program {row[p]['program_s']} s), "
                f"{row[p]['cycles_per_s']} cycles/s ({row[p]['cycles_per_s_without_startup']} without start-up)"
                for p in ("cocotb", "replay")
            )
            + f"; replay/cocotb {row['speedup_cycles_per_s']}x "
            f"({row['speedup_cycles_per_s_without_startup']}x without start-up)",
            flush=True,
        )
    path = write_result(
        "rtl_speed",
        {"rows": rows},
        script=__file__,
        argv=argv,
        seconds=time.perf_counter() - start,
        path=args.out,
    )
    print(f"wrote {path}")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
