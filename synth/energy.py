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
including the load of the design's input ports), ``leakage`` = Σ cell leakage × simulated time,
with time = traced clock cycles × the clock period (the given period, else the critical-path delay
from the synthesis report, i.e. running at Fmax), and, for black-boxed memories, ``memory``: their
reads and writes counted in the simulation times the SRAM model's energy per access
(:mod:`tpegen.synth.memories`; their leakage goes to ``leakage``). Energy is also split by top-level
submodule instance (``by_module_pj``) and, for a hierarchical netlist, by the module that defines
the cells (``by_class_pj``: e.g. all 1,024 cell instances of a 32x32 array in one line).

Energy at scale: a hierarchical netlist (one mapped module per distinct module, each instantiated as
often as the design uses it) is flattened into numpy arrays by :mod:`tpegen.synth.gates`, so every
cell instance is simulated with the port activity it sees in the workload and charged like a cell
of a flat netlist; nothing is extrapolated from a sample. On the 8x8 array the hierarchical figure
is within 3% of the flat synthesis' (the two mappings differ slightly: ABC buffers fan-out across
module boundaries in one and not in the other; ``tests/test_energy_hierarchical.py``).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import TpegenError, check_int
from tpegen.sim.verilator import StreamProgram, StreamResult, build
from tpegen.synth.clock_gating import clock_gate
from tpegen.synth.gates import GateNetlist, MemoryCells, load_gates
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
    by_class_pj: dict[str, float] = field(default_factory=dict)  # per defining module (hierarchical)
    checked_against: str | None = None  # "rtl", "golden" (outputs and cycles) or None
    memory_accesses: dict[str, tuple[int, int]] = field(default_factory=dict)  # type: (reads, writes)
    instances: dict[str, int] = field(default_factory=dict)  # instances of each module

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
            "energy_by_class_pj_per_op": {k: v / self.ops for k, v in self.by_class_pj.items()}
            if self.ops
            else {},
            "instances": self.instances,
            "power_mw": self.power_mw,
            "toggles": self.toggles,
            "nets": self.nets,
            "checked_against_rtl": self.checked_against_rtl,
            "checked_against": self.checked_against,
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
    out: np.ndarray | slice  # (n,) net indices (a slice once numbered consecutively)
    weights: np.ndarray  # (k,) uint8 powers of two
    enable: np.ndarray | None = None  # flops: (n,) net that must be 1 for a capture (None: always)


def _level(out: np.ndarray, ins: np.ndarray, table: np.ndarray, enable: np.ndarray | None = None) -> _Level:
    if ins.shape[1] == 0:
        ins = np.zeros((len(out), 1), dtype=np.int64)  # reads net 0 (constant 0)
    k = ins.shape[1]
    gated = enable is not None and bool(np.any(enable != 1))  # net 1 is the constant 1
    return _Level(ins, table, out, (1 << np.arange(k)).astype(np.uint8), enable if gated else None)


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    """Rows of ``parts`` (each ``(n_i, k_i)``) padded with net 0 to ``width`` columns."""
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in parts])


def _group_flops(flops: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]]) -> _Level:
    k = max(1, max(ins.shape[1] for _, ins, _, _ in flops))
    return _level(
        np.concatenate([s for s, _, _, _ in flops]),
        _stack([ins for _, ins, _, _ in flops], k),
        np.concatenate([np.full(len(s), t, dtype=np.uint64) for s, _, t, _ in flops]),
        np.concatenate([e for _, _, _, e in flops]),
    )


def _levelize(
    comb: list[tuple[np.ndarray, np.ndarray, int]], reads: list[tuple[np.ndarray, np.ndarray]], nets: int
) -> tuple[list[_Level | None], list[list[int]]]:
    """Longest-path levels of the combinational nodes ``comb`` (``(outs, ins, table)`` per chunk)
    and of the memories' asynchronous reads (``(data nets, address nets)`` per memory), by Kahn's
    algorithm on numpy arrays: per level, the gates (None if none) and the memories to read."""
    kinds = [np.full(len(o), -1, dtype=np.int64) for o, _, _ in comb]
    kinds += [np.full(len(d), m, dtype=np.int64) for m, (d, _) in enumerate(reads)]
    parts = [ins for _, ins, _ in comb] + [a for _, a in reads]
    outs = np.concatenate([o for o, _, _ in comb] + [d for d, _ in reads] + [np.zeros(0, np.int64)])
    n = len(outs)
    if n == 0:
        return [], []
    width = max(p.shape[1] for p in parts)
    ins = _stack(parts, width)
    k_of = np.concatenate([np.full(len(p), p.shape[1], dtype=np.int64) for p in parts])
    kind = np.concatenate(kinds)
    tables = np.concatenate(
        [np.full(len(o), t, dtype=np.uint64) for o, _, t in comb]
        + [np.zeros(len(d), np.uint64) for d, _ in reads]
    )
    if len(np.unique(outs)) != n:
        raise _Unsupported("a net has several drivers")
    driver = np.full(nets, -1, dtype=np.int64)
    driver[outs] = np.arange(n)
    src = driver[ins].ravel()
    dst = np.repeat(np.arange(n), width)
    real = (src >= 0) & (np.tile(np.arange(width), n) < np.repeat(k_of, width))
    src, dst = src[real], dst[real]
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    start = np.searchsorted(src, np.arange(n))
    count = np.searchsorted(src, np.arange(n), side="right") - start
    indeg = np.bincount(dst, minlength=n)
    level = np.zeros(n, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    depth = done = 0
    while frontier.size:
        level[frontier] = depth
        done += frontier.size
        c = count[frontier]
        offs = np.repeat(start[frontier] - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
        targets = dst[offs]
        np.subtract.at(indeg, targets, 1)
        cand = np.unique(targets)
        frontier = cand[indeg[cand] == 0]
        depth += 1
    if done < n:
        raise _Unsupported("combinational loop")
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(depth + 1))
    levels: list[_Level | None] = []
    read_levels: list[list[int]] = []
    for lv in range(depth):
        idx = order[bounds[lv] : bounds[lv + 1]]
        gates = idx[kind[idx] < 0]
        read_levels.append(sorted(set(kind[idx][kind[idx] >= 0].tolist())))
        if gates.size:
            k = max(1, int(k_of[gates].max()))
            levels.append(_level(outs[gates], ins[gates, :k], tables[gates]))
        else:
            levels.append(None)
    return levels, read_levels


def _word(v: np.ndarray, nets: np.ndarray) -> np.ndarray:
    """The unsigned value of each row of little-endian bit nets ``nets`` (instances, bits)."""
    return (v[nets].astype(np.int64) << np.arange(nets.shape[1], dtype=np.int64)).sum(axis=1)


class _Memory:
    """The words of every instance of one black-boxed memory type (see :class:`GateSim`)."""

    def __init__(self, mc: MemoryCells, kind: dict) -> None:
        self.ctype = mc.ctype
        self.depth = int(kind["depth"])
        self.asynchronous = bool(kind.get("async_read_ports"))
        p = mc.ports
        for name in ("RD_ADDR", "RD_DATA", "WR_EN", "WR_ADDR", "WR_DATA"):
            if name not in p or np.any(p[name] < 0):
                raise _Unsupported(f"memory {mc.ctype}: port {name} not connected")
        self.rd_addr, self.rd_data = p["RD_ADDR"], p["RD_DATA"]
        self.rd_en = np.maximum(p["RD_EN"][:, 0], 0) if "RD_EN" in p and p["RD_EN"].shape[1] else None
        self.wr_en, self.wr_addr, self.wr_data = p["WR_EN"], p["WR_ADDR"], p["WR_DATA"]
        self.words = np.zeros((len(mc), self.depth, self.rd_data.shape[1]), dtype=np.uint8)
        self.inst = np.arange(len(mc))
        self.reads = self.writes = 0
        self._last_addr = np.full(len(mc), -1, dtype=np.int64)
        self._pending: tuple | None = None

    def renumber(self, new_of: np.ndarray) -> None:
        self.rd_addr, self.rd_data = new_of[self.rd_addr], new_of[self.rd_data]
        self.rd_en = None if self.rd_en is None else new_of[self.rd_en]
        self.wr_en, self.wr_addr, self.wr_data = (
            new_of[self.wr_en],
            new_of[self.wr_addr],
            new_of[self.wr_data],
        )

    def _fetch(self, v: np.ndarray) -> np.ndarray:
        addr = _word(v, self.rd_addr)
        ok = addr < self.depth
        return np.where(ok[:, None], self.words[self.inst, np.where(ok, addr, 0)], 0).astype(np.uint8)

    def read(self, v: np.ndarray) -> None:
        v[self.rd_data] = self._fetch(v)

    def clock(self, v: np.ndarray) -> None:
        """A rising edge: take the write (and a synchronous read) from the settled values."""
        en = np.ones(len(self.inst), dtype=bool) if self.rd_en is None else v[self.rd_en].astype(bool)
        if self.asynchronous:  # costed as a synchronous SRAM: one read per new address
            addr = _word(v, self.rd_addr)
            self.reads += int((addr != self._last_addr).sum())
            self._last_addr = addr
        else:
            self.reads += int(en.sum())
        data = None if self.asynchronous else (en, self._fetch(v))
        we = v[self.wr_en].astype(bool)
        self.writes += int(we.any(axis=1).sum())
        self._pending = (we, _word(v, self.wr_addr), v[self.wr_data].copy(), data)

    def commit(self, v: np.ndarray) -> None:
        we, addr, wdata, data = self._pending
        rows = we.any(axis=1) & (addr < self.depth)
        i, a = self.inst[rows], addr[rows]
        self.words[i, a] = np.where(we[rows], wdata[rows], self.words[i, a])
        if data is not None:
            en, q = data
            v[self.rd_data[en]] = q[en]


class GateSim:
    """Zero-delay, cycle-based two-state simulation of a mapped netlist, vectorized with numpy.

    The netlist is a :class:`~tpegen.synth.gates.GateNetlist` (flat, or a hierarchical one flattened
    into arrays). Every net is one byte of ``v`` (0 and 1 hold the constants; 'x'/'z' drivers read
    as 0, like Verilator's two-state model). Combinational cell outputs are evaluated level by level
    from truth tables of their Liberty functions; each flop keeps its state in an extra net that its
    outputs read. Flops must be edge-triggered on the ``clk`` port, or on the rising edge of a gated
    clock, with inactive (tied) asynchronous clear/preset; anything else raises ``_Unsupported``.

    Integrated clock-gating cells (:mod:`tpegen.synth.clock_gating`, on the ``clk`` port, test pins
    tied low) keep their latch ``IQ`` in an extra net: it takes the enable at every falling edge
    (the latch is open while ``clk`` is low, when the testbench changes nothing), so a flop on the
    gated clock captures at a rising edge iff the enable settled before that edge was 1, and the
    gated clock net is ``IQ`` in the high phase and 0 in the low phase: it toggles twice per enabled
    cycle only. Gated clock nets may only feed flop clock pins.

    Black-boxed memories (``memories``: the synthesis report's plan entries by cell type) hold their
    words in numpy: a write port writes the enabled bits at a rising edge, an asynchronous read port
    is a combinational node from the address to the data (levelized with the gates), a synchronous
    one a register loaded at a rising edge while enabled (old data: transparent ports raise
    ``_Unsupported``). ``reads``/``writes`` count the accesses per memory type at the rising edges:
    a write when any bit is enabled, a synchronous read when enabled, an asynchronous read (which the
    SRAM model costs as a synchronous one) when its address differs from the previous edge's.
    """

    def __init__(self, netlist: GateNetlist, lib: Library, memories: dict[str, dict] | None = None):
        self.netlist = netlist
        ports = netlist.ports
        if "clk" not in ports or len(ports["clk"][1]) != 1:
            raise _Unsupported("no single-bit clk port")
        self.clk = clk = int(ports["clk"][1][0])
        top = netlist.n_nets
        tables: dict[tuple, int] = {}

        def table(key, expr, pins, subst=None) -> int:
            if key not in tables:
                tables[key] = truth_table(expr, pins, subst)
            return tables[key]

        def extra(n: int) -> np.ndarray:
            nonlocal top
            top += n
            return np.arange(top - n, top, dtype=np.int64)

        # clock-gating cells: gated clock net -> (IQ net, enable net)
        gclk, iq, gate_en = [], [], []
        for g in netlist.groups.values():
            cell = lib.cell(g.ctype)
            if cell.clock_gating is None:
                continue
            try:
                icg = clock_gate(cell)
            except ValueError as exc:
                raise _Unsupported(f"clock-gating cell {g.ctype}: {exc}") from None
            out = g.pin(icg.out)
            if np.any(np.maximum(g.pin(icg.clock), 0) != clk) or np.any(out < 2):
                raise _Unsupported(f"a {g.ctype} clock-gating cell is not between the clk port and a net")
            if any(np.any(np.maximum(g.pin(t), 0) != 0) for t in icg.tests):
                raise _Unsupported(f"a {g.ctype} clock-gating cell has a test pin that is not tied low")
            gclk.append(out)
            iq.append(extra(len(g)))
            gate_en.append(np.maximum(g.pin(icg.enable), 0))
        self.gclk = np.concatenate(gclk) if gclk else np.zeros(0, np.int64)
        self.iq = np.concatenate(iq) if iq else np.zeros(0, np.int64)
        self.gate_en = np.concatenate(gate_en) if gate_en else np.zeros(0, np.int64)
        iq_of = np.zeros(top, dtype=np.int64)  # per net: its ICG's IQ net if it is a gated clock, else 0
        iq_of[self.gclk] = self.iq

        comb: list[tuple[np.ndarray, np.ndarray, int]] = []  # (outs, ins (n, k), truth table)
        flops: dict[bool, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {True: [], False: []}

        def add_comb(outs: np.ndarray, ins: np.ndarray, t: int) -> None:
            keep = outs >= 0
            if keep.any():
                comb.append((outs[keep], ins[keep], t))

        for g in netlist.groups.values():
            cell = lib.cell(g.ctype)
            if cell.clock_gating is not None:
                continue
            if cell.latch or cell.statetable is not None or any(p.three_state for p in cell.outputs):
                raise _Unsupported(f"cell {g.ctype} is a latch, a statetable cell or tri-state")
            inputs = [p.name for p in cell.inputs]
            ins = (
                np.stack([np.maximum(g.pin(p), 0) for p in inputs], axis=1)
                if inputs
                else np.zeros((len(g), 0), np.int64)
            )
            if cell.ff is None:
                for p in cell.outputs:
                    if not p.function:
                        if np.any(g.pin(p.name) >= 0):
                            raise _Unsupported(f"output {g.ctype}.{p.name} has no function")
                        continue
                    add_comb(g.pin(p.name), ins, table((g.ctype, p.name), p.function, inputs))
                continue
            ff = cell.ff
            # clock: exactly one input pin, on the clk port or a gated clock, positive or negative edge
            clk_t = table((g.ctype, "clk"), ff.clocked_on, inputs)
            k = len(inputs)
            posedge = negedge = None
            for j, _ in enumerate(inputs):
                ident = sum(1 << i for i in range(1 << k) if (i >> j) & 1)
                if clk_t == ident:
                    posedge = j
                elif clk_t == ((1 << (1 << k)) - 1) ^ ident:
                    negedge = j
            j = posedge if posedge is not None else negedge
            if j is None:
                raise _Unsupported(f"flop {g.ctype} is not clocked by one pin")
            cnet = ins[:, j]
            gated = iq_of[cnet] != 0
            if np.any((cnet != clk) & ~gated) or (posedge is None and gated.any()):
                raise _Unsupported(f"a {g.ctype} flop is not clocked by the clk port or a gated clock")
            for attr in ("clear", "preset"):
                expr = getattr(ff, attr)
                if not expr:
                    continue
                t = table((g.ctype, attr), expr, inputs)
                # pins tied to a constant read net 0 or 1; the others may take any value
                for tie in np.unique(np.where(ins <= 1, ins, 2), axis=0):
                    if any(
                        (t >> i) & 1 and all(((i >> q) & 1) == n for q, n in enumerate(tie) if n <= 1)
                        for i in range(1 << k)
                    ):
                        raise _Unsupported(f"a {g.ctype} flop has an active asynchronous {attr}")
            state = extra(len(g))
            enable = np.where(gated, iq_of[cnet], 1)
            flops[posedge is not None].append(
                (state, ins, table((g.ctype, "next"), ff.next_state, inputs), enable)
            )
            for p in cell.outputs:
                t = table((g.ctype, p.name), p.function or ff.iq, [ff.iq], {ff.iqn: f"~{ff.iq}"})
                add_comb(g.pin(p.name), state[:, None], t)

        # memories: an asynchronous read is a combinational node from the address to the data
        self.mems: list[_Memory] = []
        reads: list[tuple[np.ndarray, np.ndarray]] = []
        for ctype, mc in netlist.memories.items():
            kind = (memories or {}).get(ctype)
            if kind is None:
                raise _Unsupported(f"black-box cell {ctype} is not a known memory")
            if (
                kind.get("read_ports") != 1
                or kind.get("write_ports") != 1
                or kind.get("transparent_read_ports")
            ):
                raise _Unsupported(f"memory {ctype}: only one read and one write port, not transparent")
            mem = _Memory(mc, kind)
            self.mems.append(mem)
            width = mem.rd_data.shape[1]
            reads.append(
                (mem.rd_data.reshape(-1), np.repeat(mem.rd_addr, width, axis=0))
                if mem.asynchronous
                else (np.zeros(0, np.int64), np.zeros((0, mem.rd_addr.shape[1]), np.int64))
            )
        self.levels, self.read_levels = _levelize(comb, reads, top)
        self.flops = {edge: _group_flops(f) if f else None for edge, f in flops.items()}
        # does any combinational logic see the clock (then falling edges need an evaluation)?
        self.comb_sees_clk = any(np.any(ins == clk) for _, ins, _ in comb)
        if len(self.gclk) and any(np.isin(ins, self.gclk).any() for _, ins, _ in comb):
            raise _Unsupported("a gated clock feeds logic other than flop clock pins")
        self._renumber(top)
        self.v = np.zeros(top, dtype=np.uint8)
        self.v[1] = 1
        self.prev: np.ndarray | None = None
        self._toggles = np.zeros(top, dtype=np.int64)
        self._recent = np.zeros(top, dtype=np.uint8)
        self._changed = np.zeros(top, dtype=np.uint8)
        self._steps = 0
        self.edges = 0

    def _renumber(self, top: int) -> None:
        """Number the nets so that each level's outputs are consecutive (the level then writes a
        slice, and reads of the nets it feeds are closer together): ``new_of[net]``, ``ports``."""
        head = np.concatenate([np.arange(2)] + [lv.out for lv in self.levels if lv is not None])
        rest = np.ones(top, dtype=bool)
        rest[head] = False
        if np.any(head[2:] < 2):
            raise _Unsupported("a cell drives a constant net")
        new_of = np.empty(top, dtype=np.int64)
        new_of[np.concatenate([head, np.flatnonzero(rest)])] = np.arange(top)
        start = 2
        for lv in self.levels:
            if lv is not None:
                lv.ins = new_of[lv.ins]
                lv.out, start = slice(start, start + len(lv.out)), start + len(lv.out)
        for f in self.flops.values():
            if f is not None:
                f.ins, f.out = new_of[f.ins], new_of[f.out]
                f.enable = None if f.enable is None else new_of[f.enable]
        self.clk = int(new_of[self.clk])
        self.gclk, self.iq, self.gate_en = new_of[self.gclk], new_of[self.iq], new_of[self.gate_en]
        for mem in self.mems:
            mem.renumber(new_of)
        self.ports = {p: (d, [int(new_of[b]) for b in bits]) for p, (d, bits) in self.netlist.ports.items()}
        self.new_of = new_of

    def net_toggles(self) -> np.ndarray:
        """Toggles of every net of the :class:`GateNetlist`, in its numbering."""
        return self.toggles[self.new_of[: self.netlist.n_nets]]

    @staticmethod
    def _eval(lv: _Level, v: np.ndarray) -> np.ndarray:
        addr = v[lv.ins] @ lv.weights
        return ((lv.table >> addr.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)

    def settle(self) -> None:
        v = self.v
        for lv, reads in zip(self.levels, self.read_levels, strict=True):
            if lv is not None:
                v[lv.out] = self._eval(lv, v)
            for m in reads:
                self.mems[m].read(v)

    def _capture(self, posedge: bool) -> None:
        f = self.flops[posedge]
        if posedge:
            for mem in self.mems:
                mem.clock(self.v)  # from the values settled before the edge, like the flops
        if f is not None:
            new = self._eval(f, self.v)
            self.v[f.out] = new if f.enable is None else np.where(self.v[f.enable], new, self.v[f.out])
        if posedge:
            for mem in self.mems:
                mem.commit(self.v)

    def sample(self) -> None:
        """End of a time step: count the nets that changed since the previous one."""
        if self.prev is None:
            self.prev = self.v.copy()
            return
        np.bitwise_xor(self.v, self.prev, out=self._changed)
        self._recent += self._changed  # one byte per net: flushed every 255 time steps
        self._steps += 1
        if self._steps == 255:
            self._flush()
        np.copyto(self.prev, self.v)

    def _flush(self) -> None:
        self._toggles += self._recent
        self._recent[:] = 0
        self._steps = 0

    @property
    def toggles(self) -> np.ndarray:
        """Toggles of every net so far (the extra state nets too)."""
        self._flush()
        return self._toggles

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
    sim: GateSim, programs: list[StreamProgram], *, valid_every: int = 1, ready_every: int = 1
) -> list[StreamResult]:
    """Play ``programs`` on ``sim`` exactly as :mod:`tpegen.sim.stream_tb` plays them on a Verilator
    model (no stalls): same reset sequence, same per-cycle drive and handshake rules, same time
    steps (rising edge, then the testbench's writes; falling edge), so that the toggle counts are
    those of the VCD of a cocotb/Verilator run of the netlist. ``valid_every=n`` offers input beats
    only on every ``n``-th cycle (an input-starved, idle-heavy workload; 1: back to back)."""
    ports = sim.ports
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
            taken = cycle % ready_every == 0
            for _, _, ready in outs.values():
                v[ready] = int(taken)
            sim.settle()  # read-only phase
            progress = False
            for p, (_, _, ready) in ins.items():
                if offered[p] and v[ready[0]]:
                    in_cyc[p].append(cycle)
                    pos[p] += 1
                    progress = True
            for p, (valid, payload, _) in outs.items():
                if taken and v[valid[0]]:
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
    check: bool | Callable[[list[StreamResult]], None] = True,
    keep_vcd: Path | None = None,
    method: str = "auto",
    timings: dict[str, float] | None = None,
    valid_every: int = 1,
    ready_every: int = 1,
) -> EnergyReport:
    """Simulate ``programs`` on the gate-level netlist of ``report`` and return the energy per op.

    ``ops`` is the number of operations the programs perform (e.g. MACs). With ``check`` the same
    programs are run on the RTL first and the outputs must match exactly (else TpegenError); a
    callable ``check`` is given the gate-level results instead (e.g. to compare them with a golden
    model without a Verilator build of a large design) and raises on a mismatch.
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
    an idle-heavy workload (e.g. input bandwidth-bound), and ``ready_every=n`` takes output beats
    only on every ``n``-th cycle (a slow consumer: results back up into the array or its result
    queue); the RTL check plays the programs back to back, which gives the same outputs on stream
    ports (a callable ``check`` sees the throttled cycle counts).
    """
    if ops <= 0:
        raise TpegenError(f"ops must be a positive number of operations, got {ops}")
    if getattr(report, "memories", None) and not report.flow.get("hierarchical"):
        raise TpegenError(
            f"{report.top}: gate-level energy of black-boxed memories needs the hierarchical netlist (the "
            "flat one has their pins as extra ports): synthesize with hierarchical=True"
        )
    period_ns = check_period(period_ns)
    if method not in ("auto", "levelized", "verilator"):
        raise TpegenError(f"unknown energy simulation method {method!r}")
    valid_every = check_int("valid_every", valid_every, 1, 1 << 20)
    ready_every = check_int("ready_every", ready_every, 1, 1 << 20)
    times = timings if timings is not None else {}
    t0 = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        times[step] = times.get(step, 0.0) + now - t0
        t0 = now

    lib = report.library()
    period = period_ns or report.period_ns or report.delay_ns or 10.0
    gn = load_gates(report.netlist_json_path, report.top, lib)
    lap("load")
    kinds = _memory_kinds(report)
    sim = None
    accesses: dict[str, tuple[int, int]] = {}
    if method == "levelized" or (method == "auto" and keep_vcd is None):
        try:
            sim = GateSim(gn, lib, kinds)
        except _Unsupported as exc:
            if method == "levelized" or gn.memories or len(gn.modules) > 1:
                raise TpegenError(
                    f"{report.top}: the levelized gate simulator cannot run it: {exc}"
                ) from None
        lap("levelize")
    if sim is not None:
        net_results = simulate_stream_programs(
            sim, programs, valid_every=valid_every, ready_every=ready_every
        )
        toggles = sim.net_toggles()
        clk_edges = sim.edges
        accesses = {m.ctype: (m.reads, m.writes) for m in sim.mems}
        lap("gate_sim")
    else:
        if valid_every != 1 or ready_every != 1:
            raise TpegenError(
                f"{report.top}: valid_every and ready_every need the levelized gate simulator (method 'levelized')"
            )
        if gn.memories or len(gn.modules) > 1:
            raise TpegenError(
                f"{report.top}: the Verilator gate-level path needs a flat netlist without memories"
            )
        netlist = Netlist.load(report.netlist_json_path, report.top)
        model = build(gate_level_verilog(report, lib), report.top, trace=True)
        lap("gate_build")
        with tempfile.TemporaryDirectory(prefix="tpegen-energy-") as tmp:
            vcd = Path(keep_vcd) if keep_vcd is not None else Path(tmp) / "trace.vcd"
            net_results = model.run(programs, vcd_path=vcd)
            if not vcd.exists():
                raise TpegenError(f"{report.top}: the gate-level simulation wrote no VCD trace")
            lap("gate_sim")
            vcd_counts, clk_edges = vcd_toggles(vcd, report.top)
            lap("vcd_parse")
        toggles = np.zeros(gn.n_nets, dtype=np.int64)  # per net (a net's names all count the same)
        for name, bits in netlist.netnames.items():
            counts = vcd_counts.get(name)
            if counts is None:
                continue
            for i, b in enumerate(bits):
                if isinstance(b, int) and i < len(counts):
                    n = gn.top_nets[b]
                    toggles[n] = max(toggles[n], int(counts[i]))
    checked = None
    if callable(check):
        check(net_results)
        checked = "golden"
    elif check:
        rtl = build((report.work_dir / "design.v").read_text(), report.top)
        lap("rtl_build")
        _compare(rtl.run(programs), net_results, report.top)
        lap("rtl_sim")
        checked = "rtl"
    out = _energy(report, lib, gn, toggles, clk_edges, period, ops, net_results, checked == "rtl", accesses)
    out.instances = _instances(report)
    out.checked_against = checked
    out.memory_accesses = accesses
    lap("energy_sum")
    return out


def _memory_kinds(report: SynthReport) -> dict[str, dict[str, Any]]:
    """The synthesis plan's entry (ports, depth, read kind) of each black-boxed memory type."""
    import json

    if not report.memories:
        return {}
    plan = json.loads((report.work_dir / "memories.json").read_text())
    return {e["cell_type"]: e for e in plan if e.get("blackbox")}


def _instances(report: SynthReport) -> dict[str, int]:
    return {name: m.instances for name, m in (report.modules or {}).items()}


def _category(cell: Cell, pin: Pin) -> str:
    """Energy category of a pin's toggles: clock pins and clock-gating cells (their gated clock
    nets included) are ``clock``, other pins of sequential cells ``sequential``."""
    if pin.clock or cell.clock_gating is not None:
        return "clock"
    return "sequential" if cell.sequential else "combinational"


def _energy(
    report: SynthReport,
    lib: Library,
    gn: GateNetlist,
    toggles: np.ndarray,
    clk_edges: int,
    period: float,
    ops: int,
    net_results: list[StreamResult],
    checked: bool,
    accesses: dict[str, tuple[int, int]],
) -> EnergyReport:
    """Charge the toggles (see the module docstring), vectorized over the nets of ``gn``;
    ``accesses[memory type] = (reads, writes)`` of its black-boxed memories."""
    nets = gn.n_nets
    scopes, n_scopes = gn.scopes, len(gn.scopes)
    cat_ix = {c: i for i, c in enumerate(CATEGORIES)}
    e_pj = lib.energy_pj
    slew0 = _min_slew(lib)
    cap = np.zeros(nets)
    has_load = np.zeros(nets, dtype=bool)
    for g in gn.groups.values():
        cell = lib.cells[g.ctype]
        for j, pin in enumerate(g.pins):
            p = cell.pins[pin]
            if p.direction == "input":
                col = g.nets[:, j]
                col = col[col >= 0]
                np.add.at(cap, col, p.capacitance)
                has_load[col] = True
    for direction, bits in gn.ports.values():
        if direction == "output":
            cap[bits] += _out_load(report, lib)
            has_load[bits] = True
    if lib.default_wire_cap:
        cap[has_load] += lib.default_wire_cap
    clk = np.array(gn.ports.get("clk", ("", []))[1], dtype=np.int64)
    # who pays for each net's toggles: its driving pin's category, scope and module
    cat = np.full(nets, cat_ix["combinational"])
    scope = np.zeros(nets, dtype=np.int64)
    module = np.zeros(nets, dtype=np.int64)
    internal = np.zeros(nets)  # internal energy of the driving pin per toggle (pJ)
    load_terms = []  # (nets, energy per toggle, category, scope, module) of input pins' own energy
    leak_scope = np.zeros(n_scopes)
    leak_module = np.zeros(len(gn.modules))
    for g in gn.groups.values():
        cell = lib.cells[g.ctype]
        np.add.at(leak_scope, g.scope, cell.leakage * lib.leak_nw)
        np.add.at(leak_module, g.module, cell.leakage * lib.leak_nw)
        for j, pin in enumerate(g.pins):
            p = cell.pins[pin]
            col = g.nets[:, j]
            ok = col >= 0
            if p.direction == "input":
                arcs = [a for a in p.power if not a.related_pin]
                if arcs and ok.any():
                    e1 = float(np.mean([a.energy(0.0, slew0) for a in arcs])) * e_pj
                    c = np.where(np.isin(col[ok], clk), cat_ix["clock"], cat_ix[_category(cell, p)])
                    load_terms.append((col[ok], e1, c, g.scope[ok], g.module[ok]))
                continue
            out = col[ok]
            cat[out] = cat_ix[_category(cell, p)]
            scope[out], module[out] = g.scope[ok], g.module[ok]
            arcs = [a for a in p.power if a.related_pin]
            if arcs:
                loads, back = np.unique(cap[out], return_inverse=True)
                per = np.array([np.mean([a.energy(load, slew0) for a in arcs]) for load in loads])
                internal[out] = per[back] * e_pj
    cat[clk] = cat_ix["clock"]
    t = toggles[:nets].astype(np.float64)
    if len(clk) and not t[clk].any():
        raise TpegenError(f"{report.top}: no clock toggles in the simulation")
    e_net = t * (0.5 * cap * lib.cap_pf * lib.voltage**2 + internal)
    by_cat = np.bincount(cat, e_net, minlength=len(CATEGORIES))
    by_scope = np.bincount(scope, e_net, minlength=n_scopes)
    by_module = np.bincount(module, e_net, minlength=len(gn.modules))
    for col, e1, c, s, m in load_terms:
        e = t[col] * e1
        by_cat += np.bincount(c, e, minlength=len(CATEGORIES))
        by_scope += np.bincount(s, e, minlength=n_scopes)
        by_module += np.bincount(m, e, minlength=len(gn.modules))
    sim_ns = clk_edges * period  # nW x ns = 1e-18 J = 1e-6 pJ
    by_cat[cat_ix["leakage"]] = leak_scope.sum() * sim_ns * 1e-6
    by_scope += leak_scope * sim_ns * 1e-6
    by_module += leak_module * sim_ns * 1e-6
    breakdown = {c: float(by_cat[i]) for c, i in cat_ix.items()}
    by_mod: dict[str, float] = defaultdict(float)
    for s, e in zip(scopes, by_scope, strict=True):
        by_mod[s] += float(e)
    by_class: dict[str, float] = defaultdict(float)
    for m, e in zip(gn.modules, by_module, strict=True):
        by_class[m] += float(e)
    for mem in report.memories:
        reads, writes = accesses.get(mem.cell_type, (0, 0))
        n = max(1, sum(1 for m in report.memories if m.cell_type == mem.cell_type))  # split by instance
        e = (reads * mem.cost.read_energy_pj + writes * mem.cost.write_energy_pj) / n
        leak = mem.cost.leakage_uw * mem.instances * sim_ns * 1e-3  # uW x ns = 1e-15 J
        breakdown["memory"] = breakdown.get("memory", 0.0) + e
        breakdown["leakage"] += leak
        by_mod[mem.name] += e + leak
        by_class[mem.module] += e + leak
    return EnergyReport(
        top=report.top,
        liberty=report.liberty,
        ops=ops,
        cycles=clk_edges,
        stream_cycles=sum(r.cycles for r in net_results),
        period_ns=period,
        energy_pj=float(sum(breakdown.values())),
        breakdown_pj=breakdown,
        by_module_pj=dict(by_mod),
        by_class_pj=dict(by_class) if len(gn.modules) > 1 else {},
        toggles=int(toggles[:nets].sum()),
        nets=nets,
        area_um2=report.area_um2,
        delay_ns=report.delay_ns,
        cells=report.cells,
        checked_against_rtl=checked,
    )
