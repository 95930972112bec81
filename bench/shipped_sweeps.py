"""The shipped design-space sweeps (``configs/sweeps/``) run through ``tpegen sweep``'s engine, their
tables stored for the README.

Each sweep runs with :func:`tpegen.sweep.run_sweep` on a local Dask cluster (``--workers``, default
one per core) into ``<tpegen cache>/bench_sweeps/<name>/`` (its task cache lives there, so a re-run
computes nothing new), and its rows, Pareto fronts and counts are stored in
``bench/results/sweep_<name>.json`` with the plots beside it (``sweep_<name>_*.png``).

Usage::

    python bench/shipped_sweeps.py                  # array_size (about 12 minutes on 2 cores, once)
    python bench/shipped_sweeps.py lut_vs_mac array_size
    python bench/shipped_sweeps.py --show           # the stored tables
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from provenance import RESULTS, load_result, write_result

DEFAULT = ["array_size"]


def run(name: str, workers: int | None) -> dict:
    """Run shipped sweep ``name`` and store its result; returns the stored ``result`` part."""
    from tpegen.sim.verilator import cache_root
    from tpegen.sweep import run_sweep
    from tpegen.sweep_report import header

    out = cache_root() / "bench_sweeps" / name
    t0 = time.perf_counter()
    res = run_sweep(name, out, workers=workers, force=True)
    failed = [r for r in res.rows if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"{name}: point {failed[0]['point']} failed: {failed[0]['error']}")
    plots = []
    for file in res.files:
        if file.endswith(".png"):
            target = RESULTS / f"sweep_{name}_{file}"
            shutil.copyfile(out / file, target)
            plots.append(target.name)
    spec = res.spec
    result = {
        "spec": name,
        "description": spec.description,
        "period_ns": spec.period_ns,
        "liberty": spec.liberty[0] if spec.liberty else "built-in",
        "workloads": [w.label for w in spec.workloads],
        "columns": header(spec),
        "rows": res.rows,
        "fronts": [{k: f[k] for k in ("columns", "senses", "workload", "front")} for f in res.fronts],
        "stats": res.stats(),
        "plots": plots,
    }
    write_result(f"sweep_{name}", result, script=__file__, argv=[name], seconds=time.perf_counter() - t0)
    return result


def show(name: str) -> None:
    r = load_result(f"sweep_{name}")["result"]
    cols = [c for c in r["columns"] if c not in ("status", "error")]
    print(
        f"{name}: {r['description']}  ({r['stats']['points']} points, workloads {', '.join(r['workloads'])})"
    )
    print(" | ".join(cols))
    for row in r["rows"]:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        print(" | ".join(cells))
    for f in r["fronts"]:
        pair = " ".join(f"{c}:{s}" for c, s in zip(f["columns"], f["senses"], strict=True))
        print(f"Pareto front {pair} ({f['workload']}): points {', '.join(map(str, f['front']))}")


def main(argv: list[str] | None = None) -> int:
    from tpegen.sweep import shipped_sweeps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "names", nargs="*", default=DEFAULT, help=f"shipped sweeps (default: {' '.join(DEFAULT)})"
    )
    ap.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    ap.add_argument("--show", action="store_true", help="print the stored tables and exit")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.names) - set(shipped_sweeps()))
    if unknown:
        ap.error(f"{unknown[0]}: not a shipped sweep (one of {', '.join(shipped_sweeps())})")
    for name in args.names:
        if not args.show:
            run(name, args.workers)
        show(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
