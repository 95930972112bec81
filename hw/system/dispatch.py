"""Dispatcher of the accelerator top: command check, three unit queues, six token semaphores, scheduler.

The unit interface every unit (load, execute, store) implements is :func:`unit_signature`; the
dispatcher holds the flipped side of it for each unit. Timing (the contract shared with the cycle
model): ``cmd.ready = ~error & (invalid | ~full(queue of the payload's opcode))``; a command accepted
in cycle d is visible to its unit from d + 1; a unit that is idle, sees its head command and finds
every semaphore it waits on non-zero starts in that cycle (pop, decrement effective next cycle);
in the unit's ``done`` cycle the signal mask latched at start increments the semaphores.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from tpegen.hw.system.isa import (
    FIELDS,
    HEADER,
    UNIT_OF,
    WORD_BITS,
    ErrorCode,
    Format,
    Opcode,
    Target,
    Unit,
    layout,
)
from tpegen.hw.system.params import SystemGeometry

__all__ = [
    "STATUS_LAYOUT",
    "SEMAPHORE_BITS",
    "CommandChecker",
    "Dispatcher",
    "command_bits",
    "unit_signature",
]

STATUS_LAYOUT = data.StructLayout({"busy": 1, "error": 1, "error_code": 4, "error_index": 32})
SEMAPHORE_BITS = 16
UNIT_NAMES = {Unit.LOAD: "load", Unit.EXEC: "exec", Unit.STORE: "store"}
OPCODE_OF = {u: op for op, u in UNIT_OF.items()}


def command_bits(opcode: Opcode) -> int:
    """Bits of a command word of ``opcode`` that carry fields (what a queue entry stores)."""
    return sum(f.bits for f in HEADER + FIELDS[opcode])


def unit_signature(opcode: Opcode) -> wiring.Signature:
    """The unit interface, seen from the unit: ``start`` (pulse in the start cycle t), ``command``
    (valid in cycle t only; the unit latches it), ``idle`` (1 when the unit may start; 0 in
    t + 1 .. e, 1 from e + 1) and ``done`` (1 exactly in the last busy cycle e)."""
    return wiring.Signature({"start": In(1), "command": In(layout(opcode)), "idle": Out(1), "done": Out(1)})


def _pow2_mask(value, pitch: int):
    """``value % pitch != 0`` for a power-of-two ``pitch``."""
    bits = pitch.bit_length() - 1
    return value[:bits].any() if bits else Const(0, 1)


class CommandChecker(wiring.Component):
    """Combinational command check: ``code`` is the :class:`~tpegen.hw.system.isa.ErrorCode` the
    dispatcher raises for ``word`` (0 for a valid command).

    Mirrors :func:`tpegen.hw.system.isa.check_instruction` rule by rule, with its priority: opcode,
    then fields (own-unit dependency bits, LOAD target, STORE format of this design, zero counts,
    ``mt``/``mb`` per array kind, FMA ``acc``), then memory ranges (``geometry.exec_footprint``
    for EXEC), then host alignment (row pitch of the LOAD target / STORE format). Arithmetic is
    wide enough never to wrap. Two 16 x 16 multipliers (shared between opcodes) and a few 8 x 16
    ones; no state.
    """

    def __init__(self, geometry: SystemGeometry):
        self.geometry = geometry
        super().__init__({"word": In(WORD_BITS), "code": Out(4)})

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geometry
        w = self.word
        ld = data.View(layout(Opcode.LOAD), w)
        ex = data.View(layout(Opcode.EXEC), w)
        st = data.View(layout(Opcode.STORE), w)
        op = ld.opcode
        is_ld, is_ex, is_st = (op == Opcode.LOAD), (op == Opcode.EXEC), (op == Opcode.STORE)
        bad_op = ~(is_ld | is_ex | is_st)

        own = Signal(3)
        m.d.comb += own.eq(
            Mux(is_ld, 1 << Unit.LOAD, 0) | Mux(is_ex, 1 << Unit.EXEC, 0) | Mux(is_st, 1 << Unit.STORE, 0)
        )
        own_bad = ((ld.wait | ld.signal) & own).any()

        # rows * seg of LOAD or STORE (one shared multiplier)
        rows = Mux(is_ld, ld.rows, st.rows)
        seg = Mux(is_ld, ld.seg, st.seg)
        rows_seg = Signal(32)
        m.d.comb += rows_seg.eq(rows * seg)

        # ---- LOAD
        ld_field = (ld.target == 3) | (ld.rows == 0) | (ld.seg == 0)
        ld_end = ld.sp_addr + rows_seg
        targets = [(Target.A, "A"), (Target.W, "W"), (Target.Q, "Q")]
        ld_range = Const(0, 1)
        ld_align = Const(0, 1)
        for t, name in targets:
            hit = ld.target == t
            ld_range = ld_range | (hit & (ld_end > g.depth(name)))
            pitch = g.load_pitch(name)
            ld_align = ld_align | (hit & (_pow2_mask(ld.host_addr, pitch) | _pow2_mask(ld.stride, pitch)))

        # ---- EXEC
        one_tile = (ex.mt != 1) if g.kind == "ws" else (ex.mb != 1)  # WS: mt must be 1; OS, LUT: mb
        ex_field = (ex.mt == 0) | (ex.nt == 0) | (ex.kt == 0) | (ex.mb == 0) | one_tile
        if g.fp:
            ex_field = ex_field | ex.acc
        nt_m1 = (ex.nt - 1)[:8]  # nt >= 1 whenever a range error can be reported
        c_base = ex.c_addr + nt_m1 * ex.c_stride
        if g.kind == "os":
            a_len, w_len, c_len = ex.mt * ex.kt, ex.nt * ex.kt, ex.mt * g.rows
        elif g.kind == "ws":
            a_len, w_len, c_len = ex.kt * ex.mb, ex.nt * ex.kt * g.rows, ex.mb
        else:
            a_len = ex.mt * ex.kt
            w_len = Mux(ex.kt == 1, ex.nt * g.planes, ex.nt * ex.kt * g.planes)
            c_len = ex.mt
        ex_range = (
            (ex.a_addr + a_len > g.a_depth) | (ex.w_addr + w_len > g.w_depth) | (c_base + c_len > g.acc_depth)
        )

        # ---- STORE
        formats = [(Format[f.upper()], f) for f in g.output_formats()]
        fmt_ok = Const(0, 1)
        for value, _ in formats:
            fmt_ok = fmt_ok | (st.format == value)
        st_field = ~fmt_ok | (st.rows == 0) | (st.seg == 0)
        st_range = st.c_addr + rows_seg > g.acc_depth
        if "int8" in g.output_formats():
            q_range = Mux(
                st.per_row, st.q_addr + st.seg > g.q_depth * g.acc_lanes, st.q_addr + st.rows > g.q_depth
            )
            st_range = st_range | ((st.format == Format.INT8) & q_range)
        st_align = Const(0, 1)
        for value, name in formats:
            pitch = g.store_pitch(name)
            st_align = st_align | (
                (st.format == value) & (_pow2_mask(st.host_addr, pitch) | _pow2_mask(st.stride, pitch))
            )

        field = own_bad | Mux(is_ld, ld_field, 0) | Mux(is_ex, ex_field, 0) | Mux(is_st, st_field, 0)
        out_of_range = Mux(is_ld, ld_range, 0) | Mux(is_ex, ex_range, 0) | Mux(is_st, st_range, 0)
        misaligned = Mux(is_ld, ld_align, 0) | Mux(is_st, st_align, 0)
        with m.If(bad_op):
            m.d.comb += self.code.eq(ErrorCode.BAD_OPCODE)
        with m.Elif(field):
            m.d.comb += self.code.eq(ErrorCode.BAD_FIELD)
        with m.Elif(out_of_range):
            m.d.comb += self.code.eq(ErrorCode.OUT_OF_RANGE)
        with m.Elif(misaligned):
            m.d.comb += self.code.eq(ErrorCode.MISALIGNED)
        with m.Else():
            m.d.comb += self.code.eq(ErrorCode.NONE)
        return m


class Dispatcher(wiring.Component):
    """Command intake, unit queues, token semaphores, scheduler and status of the accelerator.

    Ports
    -----
    cmd : ``In(stream.Signature(unsigned(128)))`` -- command words (:mod:`tpegen.hw.system.isa`).
        ``ready = ~error & (invalid | ~full(queue of the word's opcode))``, combinational on the
        payload through :class:`CommandChecker`.
    status : ``Out(STATUS_LAYOUT)`` -- ``busy`` (a command is being queued, a queue is non-empty or
        a unit is not idle), ``error`` (sticky until reset), ``error_code``, ``error_index`` (0-based
        position of the rejected command since reset).
    load, exec, store : ``In(unit_signature(opcode))`` -- the dispatcher drives ``start`` and
        ``command`` (the head of the unit's queue) and reads ``idle`` and ``done``.

    Behaviour: a valid command accepted in cycle d goes into its unit's ``SyncFIFO`` (depth
    ``system.queue_depth``), visible from d + 1. An invalid one is dropped and sets the error
    state; ``cmd.ready`` stays 0 afterwards while queued commands still run. A unit starts in a
    cycle where it is ``idle``, its queue is non-empty and every semaphore its head command waits
    on is non-zero: ``start`` pulses, the queue pops, the waited semaphores decrement (effective
    next cycle) and the command's signal mask is latched; in the unit's ``done`` cycle the latched
    mask increments the signalled semaphores. Semaphores are ``SEMAPHORE_BITS``-bit counters
    ``tokens[(src, dst)]`` (wrapping), one per ordered pair of distinct units.
    """

    def __init__(self, geometry: SystemGeometry):
        self.geometry = geometry
        members = {
            "cmd": In(stream.Signature(unsigned(WORD_BITS))),
            "status": Out(STATUS_LAYOUT),
        }
        for unit, name in UNIT_NAMES.items():
            members[name] = In(unit_signature(OPCODE_OF[unit]))
        super().__init__(members)
        self.tokens = {
            (src, dst): Signal(SEMAPHORE_BITS, name=f"tokens_{src.name.lower()}_{dst.name.lower()}")
            for src in Unit
            for dst in Unit
            if src != dst
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.checker = checker = CommandChecker(self.geometry)
        depth = self.geometry.system.queue_depth
        word = self.cmd.payload
        m.d.comb += checker.word.eq(word)
        opcode = word[:4]

        error = Signal()
        error_code = Signal(4)
        error_index = Signal(32)
        count = Signal(32)  # commands accepted since reset
        valid_cmd = checker.code == ErrorCode.NONE

        fifos = {}
        full = Const(0, 1)
        for unit, name in UNIT_NAMES.items():
            op = OPCODE_OF[unit]
            fifos[unit] = fifo = SyncFIFO(width=command_bits(op), depth=depth)
            m.submodules[f"queue_{name}"] = fifo
            full = full | ((opcode == op) & ~fifo.w_rdy)
        m.d.comb += self.cmd.ready.eq(~error & (~valid_cmd | ~full))
        accept = self.cmd.valid & self.cmd.ready
        with m.If(accept):
            m.d.sync += count.eq(count + 1)
            with m.If(~valid_cmd):
                m.d.sync += [error.eq(1), error_code.eq(checker.code), error_index.eq(count)]

        starts, dones, waits, signals = {}, {}, {}, {}
        busy = Const(0, 1)
        for unit, name in UNIT_NAMES.items():
            op = OPCODE_OF[unit]
            fifo = fifos[unit]
            port = getattr(self, name)
            m.d.comb += [
                fifo.w_data.eq(word[: command_bits(op)]),
                fifo.w_en.eq(accept & valid_cmd & (opcode == op)),
            ]
            head = data.View(layout(op), Cat(fifo.r_data, Const(0, WORD_BITS - command_bits(op))))
            waits[unit] = head.wait
            tokens_ok = Const(1, 1)
            for src in Unit:
                if src != unit:
                    tokens_ok = tokens_ok & (~head.wait[src] | (self.tokens[(src, unit)] != 0))
            start = Signal(name=f"start_{name}")
            m.d.comb += [
                start.eq(port.idle & fifo.r_rdy & tokens_ok),
                fifo.r_en.eq(start),
                port.start.eq(start),
                port.command.eq(head),
            ]
            latched = Signal(3, name=f"signal_{name}")
            with m.If(start):
                m.d.sync += latched.eq(head.signal)
            starts[unit], dones[unit], signals[unit] = start, port.done, latched
            busy = busy | fifo.w_en | fifo.r_rdy | ~port.idle

        for (src, dst), sem in self.tokens.items():
            inc = dones[src] & signals[src][dst]
            dec = starts[dst] & waits[dst][src]
            m.d.sync += sem.eq(sem + inc - dec)

        m.d.comb += [
            self.status.busy.eq(busy),
            self.status.error.eq(error),
            self.status.error_code.eq(error_code),
            self.status.error_index.eq(error_index),
        ]
        return m
