"""Store unit of the accelerator top: accumulator rows -> output stage -> DMA write (AXI4 AW/W/B)."""

from __future__ import annotations

import enum

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from tpegen.errors import ConfigError
from tpegen.hw.system.axi import BURST_INCR, MAX_BURST_BEATS, PAGE_BYTES, AXI4Signature
from tpegen.hw.system.dispatch import unit_signature
from tpegen.hw.system.isa import Format, Opcode
from tpegen.hw.system.params import SystemGeometry
from tpegen.hw.system.requant import OutputStage


class _State(enum.Enum):
    IDLE = 0
    READ = 1
    CONVERT = 2
    BEATS = 3
    B = 4


__all__ = ["StoreUnit"]


class StoreUnit(wiring.Component):
    """DMA write of a STORE command: ``rows x seg`` accumulator rows, converted, into host memory.

    Ports
    -----
    start, command, idle, done : the unit interface (:func:`tpegen.hw.system.dispatch.unit_signature`).
    axi : ``Out(AXI4Signature(32, D, 1, "w"))`` -- AW, W and B channels (``bready`` always 1,
        full strobes, id 0, INCR bursts).
    c_raddr, c_ren / c_rdata : synchronous accumulator read port (data in the cycle after).
    q_raddr, q_ren / q_rdata : synchronous Q read port.

    Behaviour and timing (start in cycle t; ``P`` the format's host pitch, ``r = P / D`` beats per
    row): segment ``s`` (``seg`` rows at ``host_addr + s * stride``) is split into bursts of whole
    rows, at most 256 beats, never crossing a 4 KiB boundary; one burst at a time. Burst b's AW is
    valid in cycle ``x_b`` (``x_0 = t + 1``); its row j is read (accumulator and Q) in cycle
    ``x_b + j (r + 2)``, converted by :class:`~tpegen.hw.system.requant.OutputStage` and
    registered in the next cycle, and sent as ``r`` W beats in the ``r`` cycles after that
    (``wlast`` on the burst's last beat). The unit then waits for B; the next burst's AW is valid
    in the cycle after B, and ``done`` is high in the cycle of the last burst's B:
    ``dur = 1 + sum_b (rows_b (r + 2) + Lb)``. Q rows: ``per_row = 0`` row ``q_addr + s``
    (entry l for lane l); ``per_row = 1`` channel ``q_addr + i`` (row ``(q_addr + i) // L``,
    entry ``(q_addr + i) % L``, all lanes). A row must fit one burst (``P <= min(256 D, 4096)``),
    checked at construction.

    Parameters
    ----------
    geometry : the system geometry.
    fp_format : ``(exp_bits, man_bits)`` of the FMA accumulator format (bf16 STOREs widen it to
        fp32 first); ``None`` for integer designs.
    """

    def __init__(self, geometry: SystemGeometry, fp_format: tuple[int, int] | None = None):
        self.geometry = g = geometry
        self.fp_format = fp_format
        D = g.axi_bytes
        self.max_burst_bytes = self.check_geometry(g)
        members = dict(unit_signature(Opcode.STORE).members.items())
        members |= {
            "axi": Out(AXI4Signature(32, D, 1, "w")),
            "c_raddr": Out(range(max(g.acc_depth, 2))),
            "c_ren": Out(1),
            "c_rdata": In(g.acc_row_bits),
            "q_raddr": Out(range(max(g.q_depth, 2))),
            "q_ren": Out(1),
            "q_rdata": In(g.q_row_bits),
        }
        super().__init__(members)

    @staticmethod
    def check_geometry(g: SystemGeometry) -> int:
        """Raise ConfigError unless every output row fits one AXI burst; return the burst limit."""
        limit = min(MAX_BURST_BEATS * g.axi_bytes, PAGE_BYTES)
        for f in g.output_formats():
            if g.store_pitch(f) > limit:
                raise ConfigError(
                    "array",
                    f"a shape whose {f} STORE row fits one AXI burst (at most {limit} bytes: 256 beats "
                    f"of system.axi_bytes = {g.axi_bytes}, never more than 4096)",
                    f"{g.store_pitch(f)} bytes per row",
                )
        return limit

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geometry
        D = g.axi_bytes
        beat_bits = 8 * D
        log_d = exact_log2(D)
        L = g.acc_lanes
        cmd, axi = self.command, self.axi
        formats = [(Format[f.upper()], f) for f in g.output_formats()]
        pitch_log = {v: exact_log2(g.store_pitch(f)) for v, f in formats}
        beats_log = {v: p - log_d for v, p in pitch_log.items()}
        max_beats = max(1 << b for b in beats_log.values())

        m.submodules.stage = stage = OutputStage(g, self.fp_format)
        out_slots = -(-stage.out_bits // beat_bits)
        out = Signal(out_slots * beat_bits)  # the converted row, shifted out one beat at a time

        fmt = Signal(2)
        relu = Signal()
        per_row = Signal()
        c_row = Signal(16)
        seg_addr = Signal(32)
        addr = Signal(32)
        stride = Signal(24)
        seg = Signal(16)
        rows_left = Signal(16)  # rows of the current segment not yet sent
        segs_left = Signal(16)
        burst_rows = Signal(range(MAX_BURST_BEATS + 1))  # rows of the current burst not yet sent
        new_burst = Signal()
        aw_pending = Signal()  # an AW refused in its burst's first cycle, held with its address and length
        aw_addr = Signal(32)
        aw_len = Signal(8)
        finished = Signal()
        k = Signal(range(max(max_beats, 2)))
        q_seg = Signal(11)  # per_row 0: Q row of the segment
        q0_row = Signal(11)  # per_row 1: Q row and entry of channel q_addr
        q0_entry = Signal(range(max(L, 2)))
        q_row = Signal(11)
        q_entry = Signal(range(max(L, 2)))

        def per_format(values: dict, sel=None):
            sel = fmt if sel is None else sel
            out_v = values[formats[-1][0]]
            for v, _ in formats[:-1]:
                out_v = Mux(sel == v, values[v], out_v)
            return out_v

        # burst size in rows: min(rows left, rows per maximal burst, rows to the 4 KiB boundary)
        page_rows = Signal(range(PAGE_BYTES + 1))
        m.d.comb += page_rows.eq(per_format({v: (PAGE_BYTES - addr[:12]) >> p for v, p in pitch_log.items()}))
        max_rows = per_format({v: self.max_burst_bytes >> p for v, p in pitch_log.items()})
        n_rows = Signal(range(MAX_BURST_BEATS + 1))
        a = Mux(rows_left < page_rows, rows_left, page_rows)
        m.d.comb += n_rows.eq(Mux(a < max_rows, a, max_rows))
        row_beats_m1 = per_format({v: (1 << b) - 1 for v, b in beats_log.items()})

        m.d.comb += [
            axi.awid.eq(0),
            axi.awaddr.eq(Mux(aw_pending, aw_addr, addr)),
            axi.awlen.eq(
                Mux(aw_pending, aw_len, per_format({v: (n_rows << b) - 1 for v, b in beats_log.items()}))
            ),
            axi.awsize.eq(log_d),
            axi.awburst.eq(BURST_INCR),
            axi.wstrb.eq((1 << D) - 1),
            axi.wdata.eq(out[:beat_bits]),
            axi.bready.eq(1),
            self.c_raddr.eq(c_row),
            self.q_raddr.eq(Mux(per_row, q_row, q_seg)),
            stage.acc_row.eq(self.c_rdata),
            stage.q_row.eq(self.q_rdata),
            stage.format.eq(fmt),
            stage.relu.eq(relu),
            stage.per_row.eq(per_row),
            stage.q_entry.eq(q_entry),
        ]
        with m.If(aw_pending & axi.awready):
            m.d.sync += aw_pending.eq(0)
        m.d.comb += axi.awvalid.eq(aw_pending)

        state = Signal(_State)
        # one If per state (not a Switch/FSM): each is a plain Verilog if, so no incomplete case
        with m.If(state == _State.IDLE):
            m.d.comb += self.idle.eq(1)
            with m.If(self.start):
                if L & (L - 1) == 0:
                    row0, entry0 = cmd.q_addr >> exact_log2(L), cmd.q_addr & (L - 1)
                else:
                    row0, entry0 = cmd.q_addr // L, cmd.q_addr % L
                m.d.sync += [
                    fmt.eq(cmd.format),
                    relu.eq(cmd.relu),
                    per_row.eq(cmd.per_row),
                    c_row.eq(cmd.c_addr),
                    seg_addr.eq(cmd.host_addr),
                    addr.eq(cmd.host_addr),
                    stride.eq(cmd.stride),
                    seg.eq(cmd.seg),
                    rows_left.eq(cmd.seg),
                    segs_left.eq(cmd.rows),
                    q_seg.eq(cmd.q_addr),
                    q0_row.eq(row0),
                    q0_entry.eq(entry0),
                    q_row.eq(row0),
                    q_entry.eq(entry0),
                    new_burst.eq(1),
                    finished.eq(0),
                ]
                m.d.sync += state.eq(_State.READ)
        with m.If(state == _State.READ):  # accumulator and Q read; a new burst's AW goes out now
            m.d.comb += [self.c_ren.eq(1), self.q_ren.eq(fmt == Format.INT8)]
            with m.If(new_burst):
                m.d.comb += axi.awvalid.eq(1)
                m.d.sync += [
                    aw_pending.eq(~axi.awready),
                    aw_addr.eq(axi.awaddr),
                    aw_len.eq(axi.awlen),
                    new_burst.eq(0),
                    burst_rows.eq(n_rows),
                    addr.eq(addr + per_format({v: n_rows << p for v, p in pitch_log.items()})),
                ]
            m.d.sync += state.eq(_State.CONVERT)
        with m.If(state == _State.CONVERT):  # output stage on the read data, registered
            m.d.sync += [out.eq(stage.out), k.eq(0), c_row.eq(c_row + 1)]
            with m.If(per_row):
                last_entry = q_entry == L - 1
                m.d.sync += [
                    q_entry.eq(Mux(last_entry, 0, q_entry + 1)),
                    q_row.eq(Mux(last_entry, q_row + 1, q_row)),
                ]
            m.d.sync += state.eq(_State.BEATS)
        with m.If(state == _State.BEATS):
            last_beat = k == row_beats_m1
            m.d.comb += [axi.wvalid.eq(1), axi.wlast.eq(last_beat & (burst_rows == 1))]
            with m.If(axi.wready):
                m.d.sync += [out.eq(out >> beat_bits), k.eq(k + 1)]
                with m.If(last_beat):
                    m.d.sync += [burst_rows.eq(burst_rows - 1), rows_left.eq(rows_left - 1)]
                    with m.If(rows_left == 1):  # segment done (it always ends a burst)
                        with m.If(segs_left == 1):
                            m.d.sync += finished.eq(1)
                        m.d.sync += [
                            segs_left.eq(segs_left - 1),
                            rows_left.eq(seg),
                            seg_addr.eq(seg_addr + stride),
                            addr.eq(seg_addr + stride),
                            q_seg.eq(q_seg + 1),
                            q_row.eq(q0_row),
                            q_entry.eq(q0_entry),
                        ]
                    with m.If(burst_rows == 1):
                        m.d.sync += state.eq(_State.B)
                    with m.Else():
                        m.d.sync += state.eq(_State.READ)
        with m.If(state == _State.B), m.If(axi.bvalid):
            with m.If(finished):
                m.d.comb += self.done.eq(1)
                m.d.sync += state.eq(_State.IDLE)
            with m.Else():
                m.d.sync += new_burst.eq(1)
                m.d.sync += state.eq(_State.READ)
        return m
