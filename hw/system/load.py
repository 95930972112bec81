"""Load unit of the accelerator top: DMA read from host memory (AXI4 AR/R) into the A, W or Q memory."""

from __future__ import annotations

import enum

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2, exact_log2

from tpegen.hw.system.axi import BURST_INCR, MAX_BURST_BEATS, PAGE_BYTES, AXI4Signature
from tpegen.hw.system.dispatch import unit_signature
from tpegen.hw.system.isa import Opcode, Target
from tpegen.hw.system.params import MAX_ROWS, SystemGeometry


class _State(enum.Enum):
    IDLE = 0
    AR = 1
    R = 2


__all__ = ["LoadUnit"]

TARGETS = ((Target.A, "A"), (Target.W, "W"), (Target.Q, "Q"))


class LoadUnit(wiring.Component):
    """DMA read: a LOAD command's ``rows x seg`` memory rows from host memory into A, W or Q.

    Ports
    -----
    start, command, idle, done : the unit interface (:func:`tpegen.hw.system.dispatch.unit_signature`).
    axi : ``Out(AXI4Signature(32, D, 1, "r"))`` -- AR and R channels (``rready`` is always 1).
    waddr : row written (shared by the three memories).
    a_wdata/a_wen, w_wdata/w_wen, q_wdata/q_wen : write data and enable of the A, W and Q
        memories (rows of ``geometry.row_bits(target)`` bits).

    Behaviour and timing (start in cycle t): segment ``s`` is ``seg * P / D`` beats at
    ``host_addr + s * stride`` (``P`` the target's host pitch, ``D`` the AXI data bytes), split
    into INCR bursts of at most 256 beats that never cross a 4 KiB boundary, issued one at a time
    in address order. The first AR is valid in cycle t + 1, each next one in the cycle after the
    previous burst's last R beat. A memory row is assembled from ``P / D`` consecutive beats
    (beat ``k`` is bytes ``k D ..`` of the row; beats past the row's bytes are padding) and
    written in the cycle its last beat arrives; ``done`` is high in the cycle of the final R beat
    (so ``dur = 1 + sum_b (Lr + len_b)`` with read latency ``Lr``).
    Area: one row-assembly shift register of ``max_T ceil(row_bytes_T / D)`` beats when some row
    is wider than a beat (none otherwise).
    """

    def __init__(self, geometry: SystemGeometry):
        self.geometry = g = geometry
        D = g.axi_bytes
        members = dict(unit_signature(Opcode.LOAD).members.items())
        members["axi"] = Out(AXI4Signature(32, D, 1, "r"))
        members["waddr"] = Out(ceil_log2(MAX_ROWS + 1))
        for _, name in TARGETS:
            members[f"{name.lower()}_wdata"] = Out(g.row_bits(name))
            members[f"{name.lower()}_wen"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geometry
        D = g.axi_bytes
        beat_bits = 8 * D
        log_d = exact_log2(D)
        cmd, axi = self.command, self.axi
        beats = {name: g.load_pitch(name) // D for _, name in TARGETS}  # beats per row, power of 2
        slots = {name: -(-g.row_bits(name) // beat_bits) for _, name in TARGETS}  # beats holding data
        n_slots = max(slots.values())
        max_beats = max(beats.values())

        target = Signal(2)
        row = Signal(16)
        seg_addr = Signal(32)
        addr = Signal(32)
        seg_beats = Signal(16 + exact_log2(max_beats))
        seg_left = Signal.like(seg_beats)  # beats of the current segment not yet requested
        segs_left = Signal(16)
        stride = Signal(24)
        burst_left = Signal(range(MAX_BURST_BEATS + 1))
        k = Signal(range(max(max_beats, 2)))  # beat within the current row

        def per_target(values: dict[str, int | object], sel=None):
            sel = target if sel is None else sel
            out = values["Q"]
            for t, name in ((Target.W, "W"), (Target.A, "A")):
                out = Mux(sel == t, values[name], out)
            return out

        page_beats = Signal(range(PAGE_BYTES // D + 1))
        m.d.comb += page_beats.eq((PAGE_BYTES // D) - addr[log_d : exact_log2(PAGE_BYTES)])
        length = Signal(range(MAX_BURST_BEATS + 1))
        shorter = Mux(seg_left < page_beats, seg_left, page_beats)
        m.d.comb += length.eq(Mux(shorter < MAX_BURST_BEATS, shorter, MAX_BURST_BEATS))

        m.d.comb += [
            axi.arid.eq(0),
            axi.araddr.eq(addr),
            axi.arlen.eq(length - 1),
            axi.arsize.eq(log_d),
            axi.arburst.eq(BURST_INCR),
            axi.rready.eq(1),
            self.waddr.eq(row),
        ]

        # ---- row assembly: a shift register of beats, newest on top
        rdata = axi.rdata
        if n_slots > 1:
            buf = Signal(n_slots * beat_bits)
            shifted = Cat(buf[beat_bits:], rdata)
        else:
            buf = shifted = rdata
        beat = Signal()  # an R beat arrives (while loading)
        last_in_row = Signal()
        m.d.comb += last_in_row.eq(k == per_target({n: b - 1 for n, b in beats.items()}))
        if n_slots > 1:
            with m.If(beat & (k < per_target(slots))):
                m.d.sync += buf.eq(shifted)
        for t, name in TARGETS:
            lo = (n_slots - slots[name]) * beat_bits
            source = shifted if slots[name] == beats[name] else buf
            m.d.comb += [
                getattr(self, f"{name.lower()}_wdata").eq(source[lo:][: g.row_bits(name)]),
                getattr(self, f"{name.lower()}_wen").eq(beat & last_in_row & (target == t)),
            ]

        state = Signal(_State)
        # one If per state (not a Switch/FSM): each is a plain Verilog if, so no incomplete case
        with m.If(state == _State.IDLE):
            m.d.comb += self.idle.eq(1)
            with m.If(self.start):
                first = Signal.like(seg_beats)
                m.d.comb += first.eq(
                    per_target({n: cmd.seg << exact_log2(b) for n, b in beats.items()}, cmd.target)
                )
                m.d.sync += [
                    target.eq(cmd.target),
                    row.eq(cmd.sp_addr),
                    seg_addr.eq(cmd.host_addr),
                    addr.eq(cmd.host_addr),
                    seg_beats.eq(first),
                    seg_left.eq(first),
                    segs_left.eq(cmd.rows),
                    stride.eq(cmd.stride),
                    k.eq(0),
                ]
                m.d.sync += state.eq(_State.AR)
        with m.If(state == _State.AR):
            m.d.comb += axi.arvalid.eq(1)
            with m.If(axi.arready):
                m.d.sync += [
                    addr.eq(addr + (length << log_d)),
                    seg_left.eq(seg_left - length),
                    burst_left.eq(length),
                ]
                m.d.sync += state.eq(_State.R)
        with m.If(state == _State.R):
            m.d.comb += beat.eq(axi.rvalid)
            with m.If(axi.rvalid):
                m.d.sync += [burst_left.eq(burst_left - 1), k.eq(Mux(last_in_row, 0, k + 1))]
                with m.If(last_in_row):
                    m.d.sync += row.eq(row + 1)
                with m.If(burst_left == 1):
                    with m.If(seg_left != 0):
                        m.d.sync += state.eq(_State.AR)
                    with m.Elif(segs_left == 1):
                        m.d.comb += self.done.eq(1)
                        m.d.sync += state.eq(_State.IDLE)
                    with m.Else():
                        m.d.sync += [
                            segs_left.eq(segs_left - 1),
                            seg_addr.eq(seg_addr + stride),
                            addr.eq(seg_addr + stride),
                            seg_left.eq(seg_beats),
                        ]
                        m.d.sync += state.eq(_State.AR)
        return m
