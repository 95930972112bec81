"""PPA of reference arithmetic blocks next to published 45 nm figures (Horowitz, ISSCC 2014).

    python bench/ppa.py [--liberty PATH] [--ops N] [--blocks add8,mul8] [--out out.json]

Each block of :data:`tpegen.synth.reference.REFERENCE_BLOCKS` is synthesized (default: the built-in
tpegen45 library), its gate-level netlist is checked against the RTL and simulated on ``--ops``
random operand pairs, one operation per cycle. ``op`` columns are the operator submodule alone (its
own area, and the energy of its cells); ``total`` adds the stream output register, its enable
muxes and the clock. Ratios are op / published. To add a row (INT8 MAC PE, LUT core, FMA), append a
:class:`~tpegen.synth.reference.ReferenceBlock` to ``REFERENCE_BLOCKS`` or pass extra blocks to
:func:`run`. The rows are stored in ``bench/results/ppa.json`` (``--out``) with the command, tool
versions and date.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from provenance import write_result

from tpegen.synth import measure_energy, ppa_json, synthesize
from tpegen.synth.reference import REFERENCE_BLOCKS, ReferenceBlock


def run(blocks: list[ReferenceBlock], *, liberty: str | None, ops: int, seed: int = 0) -> list[dict]:
    """Synthesize and simulate every block; one JSON-able row each."""
    rows = []
    for blk in blocks:
        t0 = time.time()
        rep = synthesize(blk.verilog(), blk.top, liberty=liberty)
        a, b = blk.random_operands(ops, np.random.default_rng(seed))
        en = measure_energy(rep, [blk.program(a, b)], ops)
        op_mod = next((m for n, m in rep.modules.items() if n.endswith(".op")), None)
        row = ppa_json(rep, en)
        row.update(
            {
                "block": blk.name,
                "op_area_um2": op_mod.total_um2 if op_mod else None,
                "op_energy_pj": en.by_module_pj.get("op", 0.0) / ops,
                "published_pj": blk.published_pj,
                "published_um2": blk.published_um2,
                "source": blk.source,
                "seconds": round(time.time() - t0, 1),
            }
        )
        rows.append(row)
    return rows


def print_table(rows: list[dict], liberty: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Reference blocks vs Horowitz ISSCC'14 45 nm — {Path(liberty).name}")
    for col in (
        "block",
        "op µm²",
        "pub µm²",
        "area ×",
        "op pJ",
        "pub pJ",
        "energy ×",
        "total µm²",
        "total pJ/op",
        "delay ns",
    ):
        t.add_column(col, justify="left" if col == "block" else "right")

    def ratio(x, y):
        return f"{x / y:.2f}" if x is not None and y else "-"

    for r in rows:
        t.add_row(
            r["block"],
            f"{r['op_area_um2']:.1f}",
            f"{r['published_um2']:g}",
            ratio(r["op_area_um2"], r["published_um2"]),
            f"{r['op_energy_pj']:.4f}",
            f"{r['published_pj']:g}",
            ratio(r["op_energy_pj"], r["published_pj"]),
            f"{r['area_um2']:.1f}",
            f"{r['energy_pj_per_op']:.4f}",
            f"{r['delay_ns']:.3f}",
        )
    Console(width=160).print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--liberty", default=None, help="Liberty file (default: built-in tpegen45.lib)")
    ap.add_argument("--ops", type=int, default=2000, help="random operand pairs per block")
    ap.add_argument("--blocks", default=",".join(REFERENCE_BLOCKS), help="comma-separated block names")
    ap.add_argument("--out", default=None, help="result file (default: bench/results/ppa.json)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        blocks = [REFERENCE_BLOCKS[n] for n in args.blocks.split(",") if n]
    except KeyError as exc:
        ap.error(f"unknown block {exc}; choose from {', '.join(REFERENCE_BLOCKS)}")
    rows = run(blocks, liberty=args.liberty, ops=args.ops)
    print_table(rows, rows[0]["liberty"] if rows else "")
    result = {"liberty": args.liberty or "built-in tpegen45.lib", "ops": args.ops, "blocks": rows}
    path = write_result(
        "ppa", result, script=__file__, argv=argv, seconds=time.perf_counter() - t0, path=args.out
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
