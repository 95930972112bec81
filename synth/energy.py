"""Energy per operation from measured switching activity of the mapped gate-level netlist.

:func:`measure_energy` plays caller-supplied :class:`~tpegen.sim.verilator.StreamProgram` s through

1. the RTL (the Verilog that was synthesized), with Verilator and the cocotb stream testbench, and
2. the gate-level netlist, with :class:`GateSim`: a zero-delay, two-state, cycle-based simulator
   that evaluates the flat netlist level by level with numpy (one truth table per cell output,
   from the Liberty ``function``/``ff`` attributes) and counts the toggles of every net itself,

checks that both give identical outputs, and charges the toggles. :func:`simulate_stream_programs`
replays the testbench's protocol and time steps exactly (rising edge, then the testbench's writes;
falling edge), so the counts are bit-identical to those of the reference path ``method="verilator"``:
the netlist plus behavioural cell models (:func:`tpegen.synth.liberty.cell_models_verilog`) built
with Verilator ``--trace`` and the VCD parsed by :func:`vcd_toggles`. That path is exact too but does
not scale: a 4x4 INT8 array (23k cells) takes about 5 minutes of C++ compilation, an 8x8 one did not
finish in 17; the levelized simulator needs seconds for both. Each toggle of net ``n`` driven by
output pin ``p`` of cell ``c`` is charged

* the internal energy of ``p`` (mean over its ``internal_power`` arcs of rise/fall energy, looked up
  at the net load and the library's smallest table slew), plus
* ``½·C·V²`` with ``C`` = the sum of the fan-out input-pin capacitances (+ output-port load from the
  synthesis constraints). No wire-load model is added: net capacitance is pin capacitance only, so
  the switching term is a lower bound (45 nm wires are of the same order as pin loads);
* ``internal_power`` groups of input pins without ``related_pin`` (e.g. a flop's ``D`` and ``CLK``
  pins) per toggle of that input.

Categories: ``sequential`` (flop output and data-pin energy), ``clock`` (clock-pin internal energy
plus ½CV² of the clock net, two transitions per cycle; with clock gating also every energy term of
the clock-gating cells: their clock pins on every cycle, their gated clock nets, two transitions per
enabled cycle, and their enable pins), ``combinational`` (everything else,
including the load of the design's input ports), and ``leakage`` = Σ cell leakage × simulated time,
with time = traced clock cycles × the clock period (the given period, else the critical-path delay
from the synthesis report, i.e. running at Fmax). Energy is also split by submodule instance (from
the ``scopename``/``hdlname`` attributes that ``flatten -scopename`` leaves on cells).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import TpegenError, check_int
from tpegen.sim.verilator import StreamProgram, StreamResult, build
from tpegen.synth.clock_gating import clock_gate
from tpegen.synth.liberty import Cell, Library, Pin, cell_models_verilog, function_evaluator
from tpegen.synth.timing import Netlist, _min_slew, _out_load
from tpegen.synth.yosys import SynthReport, check_period

CATEGORIES = ("combinational", "sequential", "clock", "leakage")


@dataclass
class EnergyReport:
    """Energy of a simulated workload: totals (pJ), per-op figure, breakdowns and activity.

    ``workload`` (optional) describes the GEMM the energy was measured on: ``M``, ``K``, ``N``,
    ``cycles`` and ``utilization`` of the array's timing model, ``seed`` of random operands (None if
    given)."""

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
    workload: dict[str, Any] | None = None  # the GEMM simulated, set by tpegen.api.synthesize_design

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
            "workload": self.workload,
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


# ------------------------------------------------------------------------- levelized simulator


class _Unsupported(Exception):
    """The netlist uses something the levelized simulator does not model (then Verilator is used)."""


def truth_table(expr: str, pins: list[str], subst: dict[str, str] | None = None) -> int:
    """Truth table of a Liberty ``function`` over ``pins``: bit ``i`` of the result is the value for
    the input assignment ``pin[j] = (i >> j) & 1``. ``subst`` maps names to other expressions."""
    names, f = function_evaluator(expr, subst)
    unknown = [n for n in names if n not in pins]
    if unknown:
        raise _Unsupported(f"function {expr!r} uses {unknown}")
    table = 0
    for i in range(1 << len(pins)):
        if f({p: (i >> j) & 1 for j, p in enumerate(pins)}):
            table |= 1 << i
    return table


@dataclass
class _Level:
    ins: np.ndarray  # (n, k) net indices
    table: np.ndarray  # (n,) uint64 truth tables
    out: np.ndarray  # (n,) net indices
    weights: np.ndarray  # (k,) uint8 powers of two
    enable: np.ndarray | None = None  # flops: (n,) net that must be 1 for a capture (None: always)


def _group(nodes: list[tuple[int, list[int], int]], enables: list[int] | None = None) -> _Level:
    k = max(1, max(len(i) for _, i, _ in nodes))
    ins = np.zeros((len(nodes), k), dtype=np.int64)  # padding reads net 0 (constant 0)
    for r, (_, i, _) in enumerate(nodes):
        ins[r, : len(i)] = i
    gated = enables is not None and any(e != 1 for e in enables)  # net 1 is the constant 1
    return _Level(
        ins,
        np.array([t for _, _, t in nodes], dtype=np.uint64),
        np.array([o for o, _, _ in nodes], dtype=np.int64),
        (1 << np.arange(k)).astype(np.uint8),
        np.array(enables, dtype=np.int64) if gated else None,
    )


class GateSim:
    """Zero-delay, cycle-based two-state simulation of a flat mapped netlist, vectorized with numpy.

    Every net is one byte of ``v`` indexed by its yosys bit id (0 and 1 hold the constants; 'x'/'z'
    drivers read as 0, like Verilator's two-state model). Combinational cell outputs are evaluated
    level by level from truth tables of their Liberty functions; each flop keeps its state in an
    extra net that its outputs read. Flops must be edge-triggered on the ``clk`` port, or on the
    rising edge of a gated clock, with inactive (tied) asynchronous clear/preset; anything else
    raises ``_Unsupported``.

    Integrated clock-gating cells (:mod:`tpegen.synth.clock_gating`, on the ``clk`` port, test pins
    tied low) keep their latch ``IQ`` in an extra net: it takes the enable at every falling edge
    (the latch is open while ``clk`` is low, when the testbench changes nothing), so a flop on the
    gated clock captures at a rising edge iff the enable settled before that edge was 1, and the
    gated clock net is ``IQ`` in the high phase and 0 in the low phase: it toggles twice per enabled
    cycle only. Gated clock nets may only feed flop clock pins.
    """

    def __init__(self, netlist: Netlist, lib: Library):
        self.netlist = netlist
        ports = netlist.ports
        if "clk" not in ports or len(ports["clk"][1]) != 1 or not isinstance(ports["clk"][1][0], int):
            raise _Unsupported("no single-bit clk port")
        self.clk = int(ports["clk"][1][0])
        nbits = [b for _, (_, conns) in netlist.cells.items() for bits in conns.values() for b in bits]
        nbits += [b for _, bits in ports.values() for b in bits]
        nbits += [b for bits in netlist.netnames.values() for b in bits]
        top = max([b for b in nbits if isinstance(b, int)] + [1]) + 1
        const = {"0": 0, "1": 1, "x": 0, "z": 0}

        def net(b) -> int:
            return b if isinstance(b, int) else const[b]

        comb: list[tuple[int, list[int], int]] = []  # (out net, input nets, table)
        flops: dict[bool, list[tuple[int, list[int], int]]] = {True: [], False: []}  # posedge?
        enables: list[int] = []  # per posedge flop: net 1 (ungated) or its ICG's IQ net
        driven: set[int] = set()
        gates: dict[int, tuple[int, int]] = {}  # gated clock net -> (IQ net, enable net)
        for cname, (ctype, conns) in netlist.cells.items():
            cell = lib.cell(ctype)
            if cell.clock_gating is None:
                continue
            try:
                icg = clock_gate(cell)
            except ValueError as exc:
                raise _Unsupported(f"clock-gating cell {ctype}: {exc}") from None
            out = conns.get(icg.out, [None])[0]
            if net(conns.get(icg.clock, ["0"])[0]) != self.clk or not isinstance(out, int):
                raise _Unsupported(f"clock-gating cell {cname} is not between the clk port and a net")
            if any(net(conns.get(t, ["0"])[0]) != 0 for t in icg.tests):
                raise _Unsupported(f"clock-gating cell {cname} has a test pin that is not tied low")
            gates[out] = (top, net(conns.get(icg.enable, ["0"])[0]))
            driven.add(out)
            top += 1
        tables: dict[tuple, int] = {}

        def table(key, expr, pins, subst=None) -> int:
            if key not in tables:
                tables[key] = truth_table(expr, pins, subst)
            return tables[key]

        for cname, (ctype, conns) in netlist.cells.items():
            cell = lib.cell(ctype)
            if cell.clock_gating is not None:
                continue
            if cell.latch or cell.statetable is not None or any(p.three_state for p in cell.outputs):
                raise _Unsupported(f"cell {ctype} is a latch, a statetable cell or tri-state")
            inputs = [p.name for p in cell.inputs]
            in_nets = [net(conns[p][0]) if conns.get(p) else 0 for p in inputs]
            if cell.ff is None:
                for p in cell.outputs:
                    if not conns.get(p.name) or not isinstance(conns[p.name][0], int):
                        continue
                    if not p.function:
                        raise _Unsupported(f"output {ctype}.{p.name} has no function")
                    comb.append((conns[p.name][0], in_nets, table((ctype, p.name), p.function, inputs)))
                continue
            ff = cell.ff
            # clock: exactly one input pin, on the clk port, positive or negative edge
            clk_t = table((ctype, "clk"), ff.clocked_on, inputs)
            k = len(inputs)
            posedge = negedge = None
            for j, _ in enumerate(inputs):
                ident = sum(1 << i for i in range(1 << k) if (i >> j) & 1)
                if clk_t == ident:
                    posedge = j
                elif clk_t == ((1 << (1 << k)) - 1) ^ ident:
                    negedge = j
            j = posedge if posedge is not None else negedge
            gate = gates.get(in_nets[j]) if j is not None else None
            if j is None or (in_nets[j] != self.clk and (gate is None or posedge is None)):
                raise _Unsupported(f"flop {cname} ({ctype}) is not clocked by the clk port or a gated clock")
            for attr in ("clear", "preset"):
                expr = getattr(ff, attr)
                if not expr:
                    continue
                t = table((ctype, attr), expr, inputs)
                # pins tied to a constant read net 0 or 1; the others may take any value
                active = [
                    i
                    for i in range(1 << k)
                    if (t >> i) & 1 and all(((i >> q) & 1) == n for q, n in enumerate(in_nets) if n <= 1)
                ]
                if active:
                    raise _Unsupported(f"flop {cname} ({ctype}) has an active asynchronous {attr}")
            state = top
            top += 1
            flops[posedge is not None].append((state, in_nets, table((ctype, "next"), ff.next_state, inputs)))
            if posedge is not None:
                enables.append(gate[0] if gate is not None else 1)
            for p in cell.outputs:
                if not conns.get(p.name) or not isinstance(conns[p.name][0], int):
                    continue
                t = table((ctype, p.name), p.function or ff.iq, [ff.iq], {ff.iqn: f"~{ff.iq}"})
                comb.append((conns[p.name][0], [state], t))
        for o, _, _ in comb:
            if o in driven:
                raise _Unsupported(f"net {o} has several drivers")
            driven.add(o)
        # levelize
        drv = {o: n for n, (o, _, _) in enumerate(comb)}
        level = [-1] * len(comb)
        users: dict[int, list[int]] = defaultdict(list)
        deps = [0] * len(comb)
        for n, (_, ins, _) in enumerate(comb):
            for i in set(ins):
                if i in drv:
                    users[drv[i]].append(n)
                    deps[n] += 1
        ready = [n for n in range(len(comb)) if deps[n] == 0]
        for n in ready:
            level[n] = 0
        while ready:
            n = ready.pop()
            for u in users.get(n, []):
                level[u] = max(level[u], level[n] + 1)
                deps[u] -= 1
                if deps[u] == 0:
                    ready.append(u)
        if any(lv < 0 for lv in level):
            raise _Unsupported("combinational loop")
        by_level: dict[int, list] = defaultdict(list)
        for n, node in enumerate(comb):
            by_level[level[n]].append(node)
        self.levels = [_group(by_level[lv]) for lv in sorted(by_level)]
        self.flops = {edge: _group(f, enables if edge else None) if f else None for edge, f in flops.items()}
        # does any combinational logic see the clock (then falling edges need an evaluation)?
        self.comb_sees_clk = any(self.clk in ins for _, ins, _ in comb)
        if any(g in ins for _, ins, _ in comb for g in gates):
            raise _Unsupported("a gated clock feeds logic other than flop clock pins")
        self.gclk = np.array(list(gates), dtype=np.int64)
        self.iq = np.array([iq for iq, _ in gates.values()], dtype=np.int64)
        self.gate_en = np.array([en for _, en in gates.values()], dtype=np.int64)
        self.v = np.zeros(top, dtype=np.uint8)
        self.v[1] = 1
        self.prev: np.ndarray | None = None
        self.toggles = np.zeros(top, dtype=np.int64)
        self.edges = 0

    @staticmethod
    def _eval(lv: _Level, v: np.ndarray) -> np.ndarray:
        addr = v[lv.ins] @ lv.weights
        return ((lv.table >> addr.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)

    def settle(self) -> None:
        v = self.v
        for lv in self.levels:
            v[lv.out] = self._eval(lv, v)

    def _capture(self, posedge: bool) -> None:
        f = self.flops[posedge]
        if f is not None:
            new = self._eval(f, self.v)
            self.v[f.out] = new if f.enable is None else np.where(self.v[f.enable], new, self.v[f.out])

    def sample(self) -> None:
        """End of a time step: count the nets that changed since the previous one."""
        if self.prev is None:
            self.prev = self.v.copy()
            return
        changed = self.v != self.prev
        self.toggles += changed
        self.prev[changed] = self.v[changed]

    def falling_edge(self) -> None:
        self.v[self.clk] = 0
        self.v[self.gclk] = 0
        self._capture(False)
        if self.comb_sees_clk or self.flops[False] is not None:
            self.settle()
        self.v[self.iq] = self.v[self.gate_en]  # clock-gating latches open
        self.sample()

    def first_edge(self) -> None:
        """The clock's first rising edge, at time 0 (not counted in ``edges``): the clock was low
        before it, so the clock-gating latches hold the settled enables."""
        self.v[self.iq] = self.v[self.gate_en]
        self.rising_edge()
        self.edges -= 1

    def rising_edge(self) -> None:
        """Clock edge: flops take the values settled in the previous time step (gated flops only
        if their clock-gating latch holds 1; the latches close)."""
        self.v[self.clk] = 1
        self._capture(True)
        self.v[self.gclk] = self.v[self.iq]
        self.edges += 1


def _bits_of(port_bits: list, beats: np.ndarray) -> np.ndarray:
    """(beats, width) 0/1 array of little-endian packed payload bytes."""
    bits = np.unpackbits(np.ascontiguousarray(beats, dtype=np.uint8), axis=1, bitorder="little")
    width = len(port_bits)
    if bits.shape[1] < width:
        bits = np.pad(bits, ((0, 0), (0, width - bits.shape[1])))
    return bits[:, :width]


def simulate_stream_programs(
    sim: GateSim, programs: list[StreamProgram], *, valid_every: int = 1
) -> list[StreamResult]:
    """Play ``programs`` on ``sim`` exactly as :mod:`tpegen.sim.stream_tb` plays them on a Verilator
    model (no stalls): same reset sequence, same per-cycle drive and handshake rules, same time
    steps (rising edge, then the testbench's writes; falling edge), so that the toggle counts are
    those of the VCD of a cocotb/Verilator run of the netlist. ``valid_every=n`` offers input beats
    only on every ``n``-th cycle (an input-starved, idle-heavy workload; 1: back to back)."""
    ports = sim.netlist.ports
    v = sim.v

    def bits(name: str) -> np.ndarray:
        b = ports.get(name)
        if b is None:
            raise TpegenError(f"{sim.netlist.top}: no port {name}")
        return np.array([x if isinstance(x, int) else 0 for x in b[1]], dtype=np.int64)

    rst = bits("rst")
    first = True

    def await_rising() -> None:
        nonlocal first
        sim.settle()
        if first:  # the clock's first edge is at time 0, together with the initial writes
            sim.first_edge()
            first = False
            return
        sim.sample()
        sim.falling_edge()
        sim.rising_edge()

    results = []
    for prog in programs:
        ins = {p: (bits(f"{p}__valid"), bits(f"{p}__payload"), bits(f"{p}__ready")) for p in prog.inputs}
        outs = {p: (bits(f"{p}__valid"), bits(f"{p}__payload"), bits(f"{p}__ready")) for p in prog.outputs}
        v[rst] = 1
        for valid, _, _ in ins.values():
            v[valid] = 0
        for _, _, ready in outs.values():
            v[ready] = 0
        await_rising()
        await_rising()
        v[rst] = 0
        beats = {p: _bits_of(ins[p][1], b) for p, b in prog.inputs.items()}
        pos = dict.fromkeys(beats, 0)
        got: dict[str, list[np.ndarray]] = {p: [] for p in outs}
        in_cyc: dict[str, list[int]] = {p: [] for p in ins}
        out_cyc: dict[str, list[int]] = {p: [] for p in outs}
        cycle = idle = 0
        while any(len(got[p]) < n for p, n in prog.outputs.items()) or any(
            pos[p] < len(beats[p]) for p in beats
        ):
            offered = {}
            for p, (valid, payload, _) in ins.items():
                offered[p] = pos[p] < len(beats[p]) and cycle % valid_every == 0
                v[valid] = int(offered[p])
                if offered[p]:
                    v[payload] = beats[p][pos[p]]
            for _, _, ready in outs.values():
                v[ready] = 1
            sim.settle()  # read-only phase
            progress = False
            for p, (_, _, ready) in ins.items():
                if offered[p] and v[ready[0]]:
                    in_cyc[p].append(cycle)
                    pos[p] += 1
                    progress = True
            for p, (valid, payload, _) in outs.items():
                if v[valid[0]]:
                    got[p].append(v[payload].copy())
                    out_cyc[p].append(cycle)
                    progress = True
            idle = 0 if progress else idle + 1
            if idle > 10_000:
                raise TpegenError(f"{sim.netlist.top}: gate-level simulation stalled at cycle {cycle}")
            await_rising()
            cycle += 1
        for valid, _, _ in ins.values():
            v[valid] = 0
        await_rising()
        outputs = {}
        for p, (_, payload, _) in outs.items():
            nbytes = max(1, (len(payload) + 7) // 8)
            arr = np.array(got[p], dtype=np.uint8).reshape(-1, len(payload))
            outputs[p] = np.packbits(arr, axis=1, bitorder="little")[:, :nbytes].reshape(-1, nbytes)
        first_in = min((c[0] for c in in_cyc.values() if c), default=0)
        last_out = max((c[-1] for c in out_cyc.values() if c), default=0)
        results.append(
            StreamResult(
                outputs=outputs,
                cycles=last_out - first_in + 1,
                in_cycles={p: np.asarray(c, dtype=np.int64) for p, c in in_cyc.items()},
                out_cycles={p: np.asarray(c, dtype=np.int64) for p, c in out_cyc.items()},
            )
        )
    sim.settle()
    sim.sample()  # the last time step (the final rising edge) is in the trace too
    return results


# --------------------------------------------------------------------------------------- energy


def gate_level_verilog(report: SynthReport, lib: Library | None = None) -> str:
    """The mapped netlist plus behavioural models of its cells, ready for Verilator."""
    lib = lib or report.library()
    header = "/* verilator lint_off UNOPTFLAT */\n/* verilator lint_off PINCONNECTEMPTY */\n"
    if any(lib.cell(c).clock_gating is not None for c in report.cells):
        header += "/* verilator lint_off LATCH */\n"  # the clock-gating cells' latches
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
    method: str = "auto",
    timings: dict[str, float] | None = None,
    valid_every: int = 1,
) -> EnergyReport:
    """Simulate ``programs`` on the gate-level netlist of ``report`` and return the energy per op.

    ``ops`` is the number of operations the programs perform (e.g. MACs). With ``check`` the same
    programs are run on the RTL first and the outputs must match exactly (else TpegenError).
    ``period_ns`` sets the time base for leakage (default: the synthesis period, else the
    critical-path delay).

    ``method``: ``"levelized"`` simulates the netlist with :class:`GateSim` (toggles counted in the
    simulator, no C++ build, no VCD); ``"verilator"`` builds the netlist plus cell models with
    Verilator ``--trace`` and counts toggles in the VCD (slow for big designs, kept as the
    reference); ``"auto"`` (default) is levelized unless the netlist uses cells it does not model
    (latches, tri-states, asynchronous set/reset in use, flops clocked by neither ``clk`` nor a
    clock-gating cell on it) or
    ``keep_vcd`` asks for a trace. Both give the same toggle counts. ``timings``, if given, receives
    the seconds spent per step.

    ``valid_every=n`` (levelized simulator only) offers the input beats only on every ``n``-th cycle,
    an idle-heavy workload (e.g. input bandwidth-bound); the RTL check plays the programs back to
    back, which gives the same outputs on stream ports.
    """
    if ops <= 0:
        raise TpegenError(f"ops must be a positive number of operations, got {ops}")
    if getattr(report, "memories", None):
        raise TpegenError(
            f"{report.top}: gate-level energy is not supported with black-boxed memories (the netlist's "
            "memory pins are extra ports); the report gives memory energy per access from the SRAM model"
        )
    period_ns = check_period(period_ns)
    if method not in ("auto", "levelized", "verilator"):
        raise TpegenError(f"unknown energy simulation method {method!r}")
    valid_every = check_int("valid_every", valid_every, 1, 1 << 20)
    times = timings if timings is not None else {}
    t0 = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        times[step] = times.get(step, 0.0) + now - t0
        t0 = now

    lib = report.library()
    period = period_ns or report.period_ns or report.delay_ns or 10.0
    netlist = Netlist.load(report.netlist_json_path, report.top)
    lap("load")
    sim = None
    if method == "levelized" or (method == "auto" and keep_vcd is None):
        try:
            sim = GateSim(netlist, lib)
        except _Unsupported as exc:
            if method == "levelized":
                raise TpegenError(
                    f"{report.top}: the levelized gate simulator cannot run it: {exc}"
                ) from None
        lap("levelize")
    if sim is not None:
        net_results = simulate_stream_programs(sim, programs, valid_every=valid_every)
        bit_toggles = {
            b: int(sim.toggles[b]) for bits in netlist.netnames.values() for b in bits if isinstance(b, int)
        }
        clk_edges = sim.edges
        lap("gate_sim")
    else:
        if valid_every != 1:
            raise TpegenError(
                f"{report.top}: valid_every needs the levelized gate simulator (method 'levelized')"
            )
        model = build(gate_level_verilog(report, lib), report.top, trace=True)
        lap("gate_build")
        with tempfile.TemporaryDirectory(prefix="tpegen-energy-") as tmp:
            vcd = Path(keep_vcd) if keep_vcd is not None else Path(tmp) / "trace.vcd"
            net_results = model.run(programs, vcd_path=vcd)
            if not vcd.exists():
                raise TpegenError(f"{report.top}: the gate-level simulation wrote no VCD trace")
            lap("gate_sim")
            toggles, clk_edges = vcd_toggles(vcd, report.top)
            lap("vcd_parse")
        # toggles per bit id
        bit_toggles = {}
        for name, bits in netlist.netnames.items():
            counts = toggles.get(name)
            if counts is None:
                continue
            for i, b in enumerate(bits):
                if isinstance(b, int) and i < len(counts):
                    bit_toggles[b] = max(bit_toggles.get(b, 0), int(counts[i]))
    checked = False
    if check:
        rtl = build((report.work_dir / "design.v").read_text(), report.top)
        lap("rtl_build")
        _compare(rtl.run(programs), net_results, report.top)
        lap("rtl_sim")
        checked = True
    out = _energy(report, lib, netlist, bit_toggles, clk_edges, period, ops, net_results, checked)
    lap("energy_sum")
    return out


def _category(cell: Cell, pin: Pin) -> str:
    """Energy category of a pin's toggles: clock pins and clock-gating cells (their gated clock
    nets included) are ``clock``, other pins of sequential cells ``sequential``."""
    if pin.clock or cell.clock_gating is not None:
        return "clock"
    return "sequential" if cell.sequential else "combinational"


def _energy(
    report: SynthReport,
    lib: Library,
    netlist: Netlist,
    bit_toggles: dict[int, int],
    clk_edges: int,
    period: float,
    ops: int,
    net_results: list[StreamResult],
    checked: bool,
) -> EnergyReport:
    """Charge the toggles (see the module docstring)."""
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
    out_energy: dict[tuple[str, str, float], float] = {}
    in_energy: dict[tuple[str, str], float | None] = {}
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
            key = (cell.name, pin, load)
            e1 = out_energy.get(key)
            if e1 is None:  # per-toggle internal energy, memoized: few distinct (pin, load) pairs
                arcs = [a for a in p.power if a.related_pin]
                e1 = out_energy[key] = float(np.mean([a.energy(load, slew0) for a in arcs])) if arcs else 0.0
            e_int = t * e1 * lib.energy_pj if e1 else 0.0
            cat[_category(cell, p)] += e_sw + e_int
            by_mod[scope_of.get(cname, "")] += e_sw + e_int
        for cname, pin in loads.get(b, []):
            cell = lib.cells[netlist.cells[cname][0]]
            p = cell.pins[pin]
            key = (cell.name, pin)
            e1 = in_energy.get(key)
            if e1 is None:
                arcs = [a for a in p.power if not a.related_pin]
                e1 = in_energy[key] = float(np.mean([a.energy(0.0, slew0) for a in arcs])) if arcs else None
            if e1 is None:
                continue
            e_in = t * e1 * lib.energy_pj
            cat["clock" if b in clk_bits else _category(cell, p)] += e_in
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
