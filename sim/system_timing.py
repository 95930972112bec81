"""Cycle-exact timing model of the accelerator system (``hw/system/top.py``) running a program.

This is the timing contract of the system spec, the same one the RTL implements (tests compare
the two cycle for cycle, ``tests/test_system_rtl.py``). It needs no numerics: every duration is a
closed form of a command's fields, so :func:`simulate_timing` walks the program once, in program
order, in O(commands) Python (about 10^5 commands per second).

Clock and end of run
    Cycle 0 is the cycle of the first command handshake. The run ends in the first cycle at or
    after the last handshake in which the top is idle (no queued command, no busy unit):
    ``cycles = max(last handshake, last completion + 1)``.

Dispatcher
    One command per cycle at most, in program order. A valid command is accepted only while its
    unit's queue (a ``SyncFIFO`` of ``queue_depth`` entries) is not full; with the level counting
    pushes minus pops of earlier cycles, the ``k``-th command of a unit can be accepted from
    ``start[k - queue_depth] + 1`` on (the cycle after the unit popped the command
    ``queue_depth`` places ahead). An invalid command (any rule of
    :func:`tpegen.hw.system.isa.check_instruction`) is accepted at once, queues nothing, sets the
    error and stops the dispatcher; the commands already queued still run. An entry pushed in
    cycle ``d`` is visible to its unit from ``d + 1``.

Units (LOAD, EXEC, STORE)
    Each runs its own commands in order, one at a time. Command ``i`` starts in the first cycle
    ``t`` in which its unit is idle (the cycle after its previous command's last busy cycle), the
    command is visible (``t >= dispatch + 1``) and every semaphore it waits on is non-zero. It is
    busy in ``t .. e = t + dur - 1`` and signals its tokens in ``e``, so a waiter can start in
    ``e + 1``. Semaphores are counters per ordered pair of units: the ``n``-th wait of unit ``u``
    on unit ``v`` takes the ``n``-th token ``v`` gives ``u``, so it can start from that token's
    ``e + 1`` on. Because a command may only wait for tokens that earlier commands signal
    (:func:`tpegen.hw.system.isa.check_dependencies`), walking the program in order sees every
    cycle a command depends on before it is needed; a program that breaks the rule is rejected.

Durations (``D`` = AXI bytes per beat, ``Lr``/``Lb`` = :class:`MemoryTiming`)
    A LOAD or STORE moves ``rows`` segments of ``seg`` rows at the format's host pitch ``P``;
    each segment is cut into bursts of at most 256 beats that do not cross a 4 KiB boundary
    (:func:`segment_bursts`), ``nb`` bursts in all.

    * LOAD: each burst costs its AR cycle wait (``Lr``) plus one cycle per beat, back to back
      (the next AR follows the last R beat): ``dur = 1 + nb * Lr + beats`` with
      ``beats = rows * seg * P / D``.
    * STORE: per burst, AW in cycle ``x``; each of its rows takes ``r_o + 2`` cycles
      (accumulator read, output-stage register, ``r_o = P / D`` W beats); B arrives ``Lb`` cycles
      after the last W beat and the next AW follows B by one cycle. The burst thus occupies
      ``rows_b (r_o + 2) + Lb`` cycles from its AW to the next AW, and
      ``dur = 1 + rows * seg * (r_o + 2) + nb * Lb`` (rows never straddle bursts: the pitch is a
      power of two no larger than the burst limit).
    * EXEC: ``dur = F + T + 1`` (:func:`tpegen.sim.system_exec_timing.exec_cycles`): the feeders need ``F`` cycles to
      present the first beats, the array takes its own ``T`` cycles from the first input to the
      last result handshake, and the accumulator write of the last result follows one cycle
      later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError, check_int
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.system_exec_timing import exec_cycles

PAGE_BYTES = 4096  # AXI bursts never cross a 4 KiB boundary
MAX_BURST_BEATS = 256  # AXI4 INCR burst length limit

# Smallest latencies cocotbext-axi's AxiRam can realise (measured by
# tpegen.sim.system_rtl.measure_axi_ram; tests/test_system_rtl.py keeps these in step): an AR
# handshake in cycle a gives the first R beat in a + 2, the last W beat in w gives B in w + 2.
MIN_READ_LATENCY = 2
MIN_WRITE_LATENCY = 2
MAX_LATENCY = 1 << 16

UNITS = ("LOAD", "EXEC", "STORE")


@dataclass(frozen=True)
class MemoryTiming:
    """Latencies of the host memory (the AXI slave) in clock cycles; bandwidth is one beat of
    ``axi_bytes`` per cycle.

    ``read_latency`` (``Lr``): an AR handshake in cycle ``a`` gives the first R beat in
    ``a + Lr``, the others on consecutive cycles. ``write_latency`` (``Lb``): the last W beat in
    cycle ``w`` gives the B response in ``w + Lb``. AR, AW and W are always accepted at once.
    Both are at least what the RTL testbench's memory can do (:data:`MIN_READ_LATENCY`,
    :data:`MIN_WRITE_LATENCY`).
    """

    read_latency: int = 8
    write_latency: int = 8

    def __post_init__(self) -> None:
        check_int("memory.read_latency", self.read_latency, MIN_READ_LATENCY, MAX_LATENCY)
        check_int("memory.write_latency", self.write_latency, MIN_WRITE_LATENCY, MAX_LATENCY)


@dataclass(frozen=True)
class SystemTiming:
    """Cycle-level outcome of a program (see the module docstring for the contract).

    ``dispatch[i]``, ``start[i]``, ``end[i]``: handshake cycle, first and last busy cycle of
    command ``i`` (``-1`` for a command that was never accepted, and ``start``/``end`` ``-1`` for
    the rejected one). ``unit[i]`` is its :class:`~tpegen.hw.system.isa.Unit` (``-1`` for an
    unknown opcode). ``busy[name]`` sums the busy cycles of unit ``name`` (``LOAD``, ``EXEC``,
    ``STORE``). ``error_code``/``error_index`` describe the first rejected command
    (:class:`~tpegen.hw.system.isa.ErrorCode` ``NONE`` and ``-1`` if none).
    """

    cycles: int
    dispatch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    unit: np.ndarray
    busy: dict[str, int] = field(default_factory=dict)
    error_code: int = 0
    error_index: int = -1

    @property
    def error(self) -> bool:
        return self.error_code != isa.ErrorCode.NONE

    def occupancy(self) -> dict[str, float]:
        """Fraction of the run each unit is busy."""
        return {u: (b / self.cycles if self.cycles else 0.0) for u, b in self.busy.items()}

    def utilization(self, macs: int, peak: float) -> float:
        """``macs / (cycles * peak)``: useful MACs against ``peak`` MACs per cycle."""
        if peak <= 0:
            raise ConfigError("peak", "a positive number of MACs per cycle", peak)
        return macs / (self.cycles * peak) if self.cycles else 0.0


# -- bursts ---------------------------------------------------------------------------------------


def max_burst_bytes(axi_bytes: int) -> int:
    """Bytes of the longest burst: 256 beats, at most one 4 KiB page."""
    return min(MAX_BURST_BEATS * axi_bytes, PAGE_BYTES)


def segment_bursts(addr: np.ndarray | int, nbytes: int, axi_bytes: int) -> np.ndarray | int:
    """Bursts of a segment of ``nbytes`` at byte address ``addr`` (``addr`` may be an array).

    The segment is cut at every 4 KiB boundary and each piece into bursts of at most 256 beats,
    as the load and store units issue them (greedy, in address order)."""
    limit = max_burst_bytes(axi_bytes)
    offset = addr % PAGE_BYTES
    if isinstance(offset, np.ndarray):
        first = np.minimum(nbytes, PAGE_BYTES - offset)
    else:
        first = min(nbytes, PAGE_BYTES - offset)
    rest = nbytes - first
    pages, tail = rest // PAGE_BYTES, rest % PAGE_BYTES
    return -(-first // limit) + pages * (PAGE_BYTES // limit) + -(-tail // limit)


@lru_cache(maxsize=4096)
def transfer_bursts(host_addr: int, stride: int, rows: int, nbytes: int, axi_bytes: int) -> int:
    """Bursts of a LOAD or STORE of ``rows`` segments of ``nbytes`` each, ``stride`` bytes apart.

    Only addresses modulo 4 KiB matter, and they repeat with period ``4096 / gcd(stride, 4096)``,
    so at most one period of segments is counted."""
    period = PAGE_BYTES // math.gcd(stride % PAGE_BYTES, PAGE_BYTES)
    n = min(rows, period)
    full, rem = divmod(rows, n)
    if n <= 32:
        counts = [segment_bursts(host_addr + stride * s, nbytes, axi_bytes) for s in range(n)]
        return int(sum(counts) * full + sum(counts[:rem]))
    addr = host_addr + stride * np.arange(n, dtype=np.int64)
    counts = np.asarray(segment_bursts(addr, nbytes, axi_bytes), dtype=np.int64)
    return int(counts.sum() * full + counts[:rem].sum())


# -- durations ------------------------------------------------------------------------------------


_ROW_TOO_WIDE = "STORE rows of {pitch} bytes exceed one AXI burst ({limit} bytes); the store unit moves whole rows per burst"


def load_duration(geometry: SystemGeometry, f: dict[str, int], memory: MemoryTiming) -> int:
    """Busy cycles of a LOAD: ``1 + nb * Lr + beats``."""
    pitch = geometry.load_pitch(isa.Target(f["target"]).name)
    d = geometry.axi_bytes
    nb = transfer_bursts(f["host_addr"], f["stride"], f["rows"], f["seg"] * pitch, d)
    return 1 + nb * memory.read_latency + f["rows"] * f["seg"] * pitch // d


def store_duration(geometry: SystemGeometry, f: dict[str, int], memory: MemoryTiming) -> int:
    """Busy cycles of a STORE: ``1 + rows * seg * (r_o + 2) + nb * Lb``."""
    pitch = geometry.store_pitch(isa.Format(f["format"]).name.lower())
    d = geometry.axi_bytes
    if pitch > max_burst_bytes(d):
        raise TpegenError(_ROW_TOO_WIDE.format(pitch=pitch, limit=max_burst_bytes(d)))
    nb = transfer_bursts(f["host_addr"], f["stride"], f["rows"], f["seg"] * pitch, d)
    return 1 + f["rows"] * f["seg"] * (pitch // d + 2) + nb * memory.write_latency


def command_duration(
    config: Any, geometry: SystemGeometry, ins: isa.Instruction, memory: MemoryTiming
) -> int:
    """Busy cycles of one (valid) command; EXEC: ``F + T + 1``
    (:func:`tpegen.sim.system_exec_timing.exec_cycles`)."""
    op = isa.Opcode(ins.opcode)
    f = {name.name: ins[name.name] for name in isa.FIELDS[op]}
    if op is isa.Opcode.LOAD:
        return load_duration(geometry, f, memory)
    if op is isa.Opcode.STORE:
        return store_duration(geometry, f, memory)
    return exec_cycles(geometry, config, f)


class _Durations:
    """Per-run memo of command durations and of command checks (compiled programs repeat the
    same few command shapes)."""

    def __init__(self, config: Any, geometry: SystemGeometry, memory: MemoryTiming):
        self.config, self.geometry, self.memory = config, geometry, memory
        self.checked: set[tuple] = set()
        self.durations: dict[tuple, int] = {}

    def check(self, ins: isa.Instruction, index: int, key: tuple) -> None:
        full = (ins.wait, ins.signal, key)
        if full not in self.checked:
            isa.check_instruction(ins, self.geometry, index)
            self.checked.add(full)

    def duration(self, ins: isa.Instruction, key: tuple) -> int:
        dur = self.durations.get(key)
        if dur is None:
            if ins.opcode == isa.Opcode.EXEC:
                dur = command_duration(self.config, self.geometry, ins, self.memory)
            else:  # load_duration / store_duration without the per-call field dictionary
                g, a = self.geometry, ins.args
                rows, seg, d = a.get("rows", 0), a.get("seg", 0), g.axi_bytes
                if ins.opcode == isa.Opcode.LOAD:
                    pitch = g.load_pitch(isa.Target(a.get("target", 0)).name)
                    per_row, latency = pitch // d, self.memory.read_latency
                else:
                    pitch = g.store_pitch(isa.Format(a.get("format", 0)).name.lower())
                    per_row, latency = pitch // d + 2, self.memory.write_latency
                    if pitch > max_burst_bytes(d):
                        raise TpegenError(_ROW_TOO_WIDE.format(pitch=pitch, limit=max_burst_bytes(d)))
                nb = transfer_bursts(a.get("host_addr", 0), a.get("stride", 0), rows, seg * pitch, d)
                dur = 1 + rows * seg * per_row + nb * latency
            self.durations[key] = dur
        return dur


# -- the simulator --------------------------------------------------------------------------------


def simulate_timing(
    config: Any,
    geometry: SystemGeometry,
    program: Sequence[isa.Instruction],
    memory: MemoryTiming,
) -> SystemTiming:
    """Cycle-exact timing of ``program`` on the accelerator of ``config`` with ``geometry``.

    ``memory`` sets the host memory latencies. Commands after the first invalid one are not
    accepted (as on the RTL); a program whose waits are not covered by earlier signals raises
    :class:`~tpegen.errors.TpegenError`.
    """
    if not isinstance(memory, MemoryTiming):
        raise ConfigError("memory", "a MemoryTiming", type(memory).__name__)
    n = len(program)
    dispatch = np.full(n, -1, dtype=np.int64)
    start = np.full(n, -1, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)
    unit = np.full(n, -1, dtype=np.int64)
    depth = geometry.system.queue_depth
    free = [0, 0, 0]  # first cycle each unit is idle
    starts: list[list[int]] = [[], [], []]  # start cycles per unit (queue pops)
    tokens: list[list[list[int]]] = [[[] for _ in range(3)] for _ in range(3)]  # [src][dst] -> ends
    taken = [[0] * 3 for _ in range(3)]  # [src][dst] waits served so far
    busy = [0, 0, 0]
    error_code, error_index = isa.ErrorCode.NONE, -1
    last_dispatch, last_end = -1, -1
    memo = _Durations(config, geometry, memory)
    units = {op.value: int(u) for op, u in isa.UNIT_OF.items()}
    for i, ins in enumerate(program):
        d = last_dispatch + 1
        u = units.get(ins.opcode, -1)
        unit[i] = u
        key = (ins.opcode, *sorted(ins.args.items()))
        try:
            memo.check(ins, i, key)
        except isa.ProgramError as exc:  # accepted at once (no queue), stops the dispatcher
            dispatch[i] = last_dispatch = d
            error_code, error_index = exc.code, i
            break
        k = len(starts[u])
        if k >= depth:
            d = max(d, starts[u][k - depth] + 1)
        dispatch[i] = last_dispatch = d
        t = max(d + 1, free[u])
        for src in range(3):
            if ins.wait >> src & 1:
                served = taken[src][u]
                if served >= len(tokens[src][u]):
                    raise TpegenError(
                        f"command {i}: waits for a token from {UNITS[src]} that no earlier command "
                        "signals (the program deadlocks)"
                    )
                t = max(t, tokens[src][u][served] + 1)
                taken[src][u] = served + 1
        dur = memo.duration(ins, key)
        e = t + dur - 1
        start[i], end[i] = t, e
        starts[u].append(t)
        free[u] = e + 1
        busy[u] += dur
        last_end = max(last_end, e)
        for dst in range(3):
            if ins.signal >> dst & 1:
                tokens[u][dst].append(e)
    cycles = max(last_dispatch, last_end + 1) if n else 0
    return SystemTiming(
        cycles=int(cycles),
        dispatch=dispatch,
        start=start,
        end=end,
        unit=unit,
        busy=dict(zip(UNITS, busy, strict=True)),
        error_code=int(error_code),
        error_index=error_index,
    )
