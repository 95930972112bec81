"""Energy of a workload from a synthesized PPA record (``tpegen synth --json`` / ``-o DIR/ppa.json``).

The gate-level simulation splits energy per MAC into combinational, sequential, clock and leakage
parts, measured on the record's own workload (``ops`` MACs in ``cycles`` cycles). Combinational and
sequential energy follow the data and are charged per useful MAC; clock and leakage energy are paid
every cycle the array runs and are charged per cycle at the measured rate::

    E = (comb + seq) * MACs + (clock + leakage) * ops_ppa / cycles_ppa * cycles

So an array that idles (low utilization) still pays its clock. Both ``tpegen map --ppa`` and
``tpegen sim --ppa`` use this model. For a record synthesized with clock gating
(``tpegen synth --clock-gating``) the clock rate is the one measured on the record's own workload,
whose enables set how often the gated clocks ran; an idler array pays less than that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tpegen.errors import ConfigError, TpegenError


def energy_model(
    ppa: dict | str | Path | None, hw_name: str
) -> tuple[Callable[[int, int], float] | None, str | None]:
    """``(energy(macs, cycles) -> pJ, note)`` from a ``tpegen synth`` record (see the module docstring);
    ``(None, None)`` without one. The note says when the record was made for another design."""
    if ppa is None:
        return None, None
    if not isinstance(ppa, dict):
        from tpegen._io import read_text_file

        text = read_text_file(ppa, "--ppa file", limit=16 << 20)
        try:
            ppa = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TpegenError(f"{ppa}: --ppa file is not JSON (line {exc.lineno}: {exc.msg})") from None
    parts = ppa.get("energy_breakdown_pj_per_op") if isinstance(ppa, dict) else None
    ops, cycles = (ppa.get("ops"), ppa.get("cycles")) if isinstance(ppa, dict) else (None, None)
    keys = ("combinational", "sequential", "clock", "leakage")
    if (
        not isinstance(parts, dict)
        or not all(isinstance(parts.get(k), (int, float)) for k in keys)
        or not isinstance(ops, int)
        or not isinstance(cycles, int)
        or ops <= 0
        or cycles <= 0
    ):
        raise ConfigError(
            "--ppa", "a 'tpegen synth -o DIR' ppa.json with energy (energy_breakdown_pj_per_op, ops, cycles)"
        )
    per_mac = parts["combinational"] + parts["sequential"]
    per_cycle = (parts["clock"] + parts["leakage"]) * ops / cycles
    top = str(ppa.get("top", ""))
    note = None
    if top and not top.endswith(hw_name.replace("-", "_")):
        note = f"the PPA record was synthesized for {top}, not for {hw_name}"
    return (lambda macs, cyc: per_mac * macs + per_cycle * cyc), note
