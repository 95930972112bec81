"""Energy per operation from measured switching activity of the mapped gate-level netlist.

:func:`measure_energy` plays caller-supplied :class:`~tpegen.sim.verilator.StreamProgram` s through

1. the RTL (the Verilog that was synthesized) and
2. the gate-level netlist (cell models generated from the Liberty ``function``/``ff`` attributes by
   :func:`tpegen.synth.liberty.cell_models_verilog`), built with ``--trace``,

checks that both give identical outputs, and counts the toggles of every net in the VCD trace of the
netlist run. Each toggle of net ``n`` driven by output pin ``p`` of cell ``c`` is charged

* the internal energy of ``p`` (mean over its ``internal_power`` arcs of rise/fall energy, looked up
  at the net load and the library's smallest table slew), plus
* ``½·C·V²`` with ``C`` = the sum of the fan-out input-pin capacitances (+ output-port load from the
  synthesis constraints). No wire-load model is added: net capacitance is pin capacitance only, so
  the switching term is a lower bound (45 nm wires are of the same order as pin loads);
* ``internal_power`` groups of input pins without ``related_pin`` (e.g. a flop's ``D`` and ``CLK``
  pins) per toggle of that input.

Categories: ``sequential`` (flop output and data-pin energy), ``clock`` (clock-pin internal energy
plus ½CV² of the clock net, two transitions per cycle), ``combinational`` (everything else,
including the load of the design's input ports), and ``leakage`` = Σ cell leakage × simulated time,
with time = traced clock cycles × the clock period (the given period, else the critical-path delay
from the synthesis report, i.e. running at Fmax). Energy is also split by submodule instance (from
the ``scopename``/``hdlname`` attributes that ``flatten -scopename`` leaves on cells).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import TpegenError
from tpegen.sim.verilator import StreamProgram, StreamResult, build
from tpegen.synth.liberty import Library, cell_models_verilog
from tpegen.synth.timing import Netlist, _min_slew, _out_load
from tpegen.synth.yosys import SynthReport

CATEGORIES = ("combinational", "sequential", "clock", "leakage")


@dataclass
class EnergyReport:
    """Energy of a simulated workload: totals (pJ), per-op figure, breakdowns and activity."""

    top: str
    liberty: str
    ops: int
    cycles: int
    stream_cycles: int
    period_ns: float
    energy_pj: float
    breakdown_pj: dict[str, float]
    by_module_pj: dict[str, float]
    toggles: int
    nets: int
    area_um2: float = 0.0
    delay_ns: float | None = None
    cells: dict[str, int] = field(default_factory=dict)
    checked_against_rtl: bool = False

    @property
    def energy_pj_per_op(self) -> float:
        return self.energy_pj / self.ops if self.ops else float("nan")

    @property
    def ops_per_cycle(self) -> float:
        return self.ops / self.stream_cycles if self.stream_cycles else float("nan")

    @property
    def power_mw(self) -> float:
        return self.energy_pj / (self.cycles * self.period_ns) if self.cycles else 0.0  # pJ/ns = mW

    def to_json(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "liberty": self.liberty,
            "area_um2": self.area_um2,
            "cells": self.cells,
            "delay_ns": self.delay_ns,
            "period_ns": self.period_ns,
            "ops": self.ops,
            "cycles": self.cycles,
            "stream_cycles": self.stream_cycles,
            "ops_per_cycle": self.ops_per_cycle,
            "energy_pj": self.energy_pj,
            "energy_pj_per_op": self.energy_pj_per_op,
            "energy_breakdown_pj_per_op": {k: v / self.ops for k, v in self.breakdown_pj.items()}
            if self.ops
            else {},
            "energy_by_module_pj_per_op": {k: v / self.ops for k, v in self.by_module_pj.items()}
            if self.ops
            else {},
            "power_mw": self.power_mw,
            "toggles": self.toggles,
            "nets": self.nets,
            "checked_against_rtl": self.checked_against_rtl,
        }

    def print(self, console=None) -> None:
        """Print the energy breakdown as a rich table."""
        from tpegen.synth.report import print_energy

        print_energy(self, console)


# ------------------------------------------------------------------------------------------ VCD


def vcd_toggles(path: Path, scope: str) -> tuple[dict[str, np.ndarray], int]:
    """Per-bit toggle counts of the variables declared directly in module scope ``scope``.

    Returns ``{name: counts[width]}`` (index 0 = LSB) and the number of rising edges of ``clk``.
    0<->1 changes count; changes from or to x/z do not.
    """
    codes: dict[str, list[tuple[str, int]]] = defaultdict(list)
    stack: list[str] = []
    target_depth = None
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("$scope"):
                parts = line.split()
                stack.append(parts[2])
                if target_depth is None and parts[2] == scope:
                    target_depth = len(stack)
            elif line.startswith("$upscope"):
                stack.pop()
            elif line.startswith("$var"):
                parts = line.split()
                if target_depth is not None and len(stack) == target_depth and stack[-1] == scope:
                    width, code, name = int(parts[2]), parts[3], parts[4]
                    codes[code].append((name, width))
            elif line.startswith("$enddefinitions"):
                break
        if target_depth is None:
            raise TpegenError(f"{path}: no scope {scope} in the VCD trace")
        width_of = {c: v[0][1] for c, v in codes.items()}
        counts = {c: np.zeros(w, dtype=np.int64) for c, w in width_of.items()}
        prev: dict[str, int | None] = dict.fromkeys(codes)
        clk_codes = {c for c, v in codes.items() if any(n == "clk" for n, _ in v)}
        clk_edges = 0
        for raw in fh:
            c0 = raw[:1]
            if c0 in (b"0", b"1", b"x", b"z", b"X", b"Z"):
                code = raw[1:].strip().decode()
                if code not in counts:
                    continue
                new = int(c0) if c0 in (b"0", b"1") else None
                old = prev[code]
                if old is not None and new is not None and old != new:
                    counts[code][0] += 1
                    if code in clk_codes and new == 1:
                        clk_edges += 1
                prev[code] = new
            elif c0 in (b"b", b"B"):
                val, code = raw[1:].split()
                code = code.decode()
                if code not in counts:
                    continue
                if any(ch in val for ch in b"xXzZ"):
                    prev[code] = None
                    continue
                new = int(val, 2)
                old = prev[code]
                if old is not None:
                    diff = old ^ new
                    while diff:
                        low = diff & -diff
                        counts[code][low.bit_length() - 1] += 1
                        diff ^= low
                prev[code] = new
    out: dict[str, np.ndarray] = {}
    for code, names in codes.items():
        for name, _ in names:
            out[name] = counts[code]
    return out, clk_edges


# --------------------------------------------------------------------------------------- energy


def gate_level_verilog(report: SynthReport, lib: Library | None = None) -> str:
    """The mapped netlist plus behavioural models of its cells, ready for Verilator."""
    lib = lib or report.library()
    header = "/* verilator lint_off UNOPTFLAT */\n/* verilator lint_off PINCONNECTEMPTY */\n"
    return header + report.netlist_verilog + "\n" + cell_models_verilog(lib, set(report.cells))


def _scope(attrs: dict[str, Any]) -> str:
    name = attrs.get("scopename") or attrs.get("hdlname") or ""
    if attrs.get("hdlname") and not attrs.get("scopename"):
        name = " ".join(str(name).split(" ")[:-1])
    parts = str(name).split(" ")
    return parts[0] if parts and parts[0] else ""


def _compare(rtl: list[StreamResult], net: list[StreamResult], top: str) -> None:
    for n, (a, b) in enumerate(zip(rtl, net, strict=True)):
        for port, va in a.outputs.items():
            vb = b.outputs[port]
            if va.shape != vb.shape or not np.array_equal(va, vb):
                bad = int(np.argmax(np.any(va != vb, axis=1))) if va.shape == vb.shape else -1
                raise TpegenError(
                    f"{top}: gate-level netlist differs from the RTL on program {n}, port {port}"
                    + (f", beat {bad}" if bad >= 0 else " (beat count)")
                )


def measure_energy(
    report: SynthReport,
    programs: list[StreamProgram],
    ops: int,
    *,
    period_ns: float | None = None,
    check: bool = True,
    keep_vcd: Path | None = None,
) -> EnergyReport:
    """Simulate ``programs`` on the gate-level netlist of ``report`` and return the energy per op.

    ``ops`` is the number of operations the programs perform (e.g. MACs). With ``check`` the same
    programs are run on the RTL first and the outputs must match exactly (else TpegenError).
    ``period_ns`` sets the time base for leakage (default: the synthesis period, else the
    critical-path delay).
    """
    if ops <= 0:
        raise TpegenError(f"ops must be a positive number of operations, got {ops}")
    lib = report.library()
    period = period_ns or report.period_ns or report.delay_ns or 10.0
    netlist = Netlist.load(report.netlist_json_path, report.top)
    model = build(gate_level_verilog(report, lib), report.top, trace=True)
    with tempfile.TemporaryDirectory(prefix="tpegen-energy-") as tmp:
        vcd = Path(keep_vcd) if keep_vcd is not None else Path(tmp) / "trace.vcd"
        net_results = model.run(programs, vcd_path=vcd)
        if not vcd.exists():
            raise TpegenError(f"{report.top}: the gate-level simulation wrote no VCD trace")
        toggles, clk_edges = vcd_toggles(vcd, report.top)
    checked = False
    if check:
        rtl = build((report.work_dir / "design.v").read_text(), report.top).run(programs)
        _compare(rtl, net_results, report.top)
        checked = True

    # toggles per bit id
    bit_toggles: dict[int, int] = {}
    for name, bits in netlist.netnames.items():
        counts = toggles.get(name)
        if counts is None:
            continue
        for i, b in enumerate(bits):
            if isinstance(b, int) and i < len(counts):
                bit_toggles[b] = max(bit_toggles.get(b, 0), int(counts[i]))
    driver, loads = netlist.graph(lib)
    caps = netlist.net_caps(lib, _out_load(report, lib))
    import json

    cell_attrs = {
        n: c.get("attributes", {})
        for n, c in json.loads(report.netlist_json_path.read_text())["modules"][report.top]["cells"].items()
    }
    scope_of = {n: _scope(a) for n, a in cell_attrs.items()}
    v2 = lib.voltage**2
    slew0 = _min_slew(lib)
    cat: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    by_mod: dict[str, float] = defaultdict(float)
    clk_bits = {b for b in netlist.ports.get("clk", ("", []))[1] if isinstance(b, int)}
    for b, t in bit_toggles.items():
        if t == 0:
            continue
        load = caps.get(b, 0.0)
        e_sw = 0.5 * load * lib.cap_pf * v2 * t
        drv = driver.get(b)
        if b in clk_bits:
            cat["clock"] += e_sw
            by_mod[""] += e_sw
        elif drv is None or drv[0] == "":
            cat["combinational"] += e_sw
            by_mod[""] += e_sw
        else:
            cname, pin = drv
            cell = lib.cells[netlist.cells[cname][0]]
            p = cell.pins[pin]
            arcs = [a for a in p.power if a.related_pin]
            e_int = t * float(np.mean([a.energy(load, slew0) for a in arcs])) * lib.energy_pj if arcs else 0.0
            cat["sequential" if cell.sequential else "combinational"] += e_sw + e_int
            by_mod[scope_of.get(cname, "")] += e_sw + e_int
        for cname, pin in loads.get(b, []):
            cell = lib.cells[netlist.cells[cname][0]]
            p = cell.pins[pin]
            arcs = [a for a in p.power if not a.related_pin]
            if not arcs:
                continue
            e_in = t * float(np.mean([a.energy(0.0, slew0) for a in arcs])) * lib.energy_pj
            cat[
                "clock"
                if p.clock or b in clk_bits
                else ("sequential" if cell.sequential else "combinational")
            ] += e_in
            by_mod[scope_of.get(cname, "")] += e_in
    if clk_bits and not any(bit_toggles.get(b, 0) for b in clk_bits):
        raise TpegenError(f"{report.top}: no clock toggles in the VCD trace")
    leak_nw_by_mod: dict[str, float] = defaultdict(float)
    for cname, (ctype, _) in netlist.cells.items():
        leak_nw_by_mod[scope_of.get(cname, "")] += lib.cells[ctype].leakage * lib.leak_nw
    sim_ns = clk_edges * period
    for mod, p_nw in leak_nw_by_mod.items():
        e = p_nw * sim_ns * 1e-6  # nW x ns = 1e-18 J = 1e-6 pJ
        cat["leakage"] += e
        by_mod[mod] += e
    total = sum(cat.values())
    return EnergyReport(
        top=report.top,
        liberty=report.liberty,
        ops=ops,
        cycles=clk_edges,
        stream_cycles=sum(r.cycles for r in net_results),
        period_ns=period,
        energy_pj=total,
        breakdown_pj=cat,
        by_module_pj=dict(by_mod),
        toggles=int(sum(bit_toggles.values())),
        nets=len(bit_toggles),
        area_um2=report.area_um2,
        delay_ns=report.delay_ns,
        cells=report.cells,
        checked_against_rtl=checked,
    )
