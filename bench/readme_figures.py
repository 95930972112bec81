"""The README figures that come from ``tpegen`` commands, run through :mod:`tpegen.api` and stored.

    python bench/readme_figures.py demo         # tpegen demo --json            -> bench/results/demo.json
    python bench/readme_figures.py ppa_16x16    # tpegen synth int8_os_16x16    -> bench/results/ppa_16x16.json

``demo`` is :func:`tpegen.api.demo` (the default job: the built-in digits CNN mapped onto the
16x16 INT8 array, one layer re-run on the RTL). ``ppa_16x16`` synthesizes the default
16x16 INT8 OS array on the built-in library and on ``--liberty`` (default
``../shared/tech/gscl45nm.lib``) with the default random workload (the array's steady-state GEMM,
64x64x64: 16 tiles back to back, utilization above 90%; each record's ``workload`` states it), as
``tpegen synth configs/int8_os_16x16.yaml [--liberty L] --json``. Synthesis results are cached (the first 16x16
run takes minutes). Each figure group is written atomically to ``bench/results/<name>.json`` with
the command, tool versions and date (:mod:`provenance`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from provenance import REPO, write_result

from tpegen.api import DEMO_RTL_LAYER, demo, synthesize_design
from tpegen.config import load_config
from tpegen.synth import ppa_json

GSCL45 = REPO.parent / "shared" / "tech" / "gscl45nm.lib"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _synth_record(config: Path, **kwargs: Any) -> dict[str, Any]:
    """``tpegen synth CONFIG --json`` through the API, plus the design's peak MACs per cycle."""
    t0 = time.perf_counter()
    synth, energy = synthesize_design(config, progress=_say, **kwargs)
    record = ppa_json(synth, energy)
    record.pop("energy_by_module_pj_per_op", None)  # one entry per PE instance: not a README figure
    acc = load_config(config).accelerator()
    a, w = kwargs.get("workload", (None, None))
    record["config"] = config.relative_to(REPO).as_posix()
    record["workload_shape"] = list(acc.workload_shape()) if a is None else [*a.shape, w.shape[1]]
    record["peak_macs_per_cycle"] = acc.macs_per_cycle
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def figure_demo() -> dict[str, Any]:
    """The default job, the record ``tpegen demo --json`` prints."""
    report = demo(progress=_say)
    return {**report.to_dict(), "rtl_check_layer": DEMO_RTL_LAYER}


def figure_ppa_16x16(liberty: Path) -> dict[str, Any]:
    """The default 16x16 array on the built-in library and on ``liberty``, default random workload."""
    config = REPO / "configs" / "int8_os_16x16.yaml"
    return {
        "tpegen45": _synth_record(config),
        liberty.stem: _synth_record(config, liberty=liberty),
    }


def main(argv: list[str] | None = None) -> int:
    """Run one figure group and store it in ``bench/results/<figure>.json``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure", choices=["demo", "ppa_16x16"])
    ap.add_argument("--liberty", type=Path, default=GSCL45, help="second library for ppa_16x16")
    ap.add_argument("--out", type=Path, help="result file (default: bench/results/<figure>.json)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result = figure_demo() if args.figure == "demo" else figure_ppa_16x16(args.liberty.resolve())
    path = write_result(
        args.figure,
        result,
        script=__file__,
        argv=argv,
        seconds=time.perf_counter() - t0,
        path=args.out,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
