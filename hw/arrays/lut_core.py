"""LUT tensor core: an elongated ``tile_m x tile_n x (tile_k groups)`` tile of LUT dot-product units.

Parameters live in :mod:`tpegen.hw.arrays.lut_params`; the numeric model, timing model and the
stream driver in :mod:`tpegen.sim.lut`.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.arrays.lut_params import LutCoreParams
from tpegen.hw.arrays.weight_store import ResultRegister, WeightStore
from tpegen.hw.pe.lut import LutDotProduct, LutTablePrecompute, table_layout

__all__ = ["LutCore", "act_layout", "lut_core_verilog", "result_layout", "tables_layout", "weight_layout"]


def weight_layout(p: LutCoreParams) -> data.ArrayLayout:
    """``weights`` beat: one bit plane of a weight tile, lane ``n * tile_k + k`` = g-bit index."""
    return data.ArrayLayout(unsigned(p.group_size), p.tile_n * p.tile_k)


def act_layout(p: LutCoreParams) -> data.StructLayout:
    """``acts`` beat: ``a`` lanes ``m * k_tile + k`` (signed act_bits), then ``last``, ``wlast``."""
    return data.StructLayout(
        {
            "a": data.ArrayLayout(signed(p.act_bits), p.tile_m * p.k_tile),
            "last": 1,
            "wlast": 1,
        }
    )


def tables_layout(p: LutCoreParams) -> data.StructLayout:
    """``tables`` beat (external precompute): ``tables`` lanes ``m * tile_k + k`` (one table of
    ``p.entries`` signed table_bits each), ``rowsum`` lanes ``m`` (signed, :attr:`~LutCoreParams.rowsum_bits`;
    only with the rowsum correction, ``weight_bits >= 2``), then ``last``, ``wlast``."""
    fields: dict = {
        "tables": data.ArrayLayout(
            table_layout(p.group_size, p.table_bits, full=p.full_table), p.tile_m * p.tile_k
        )
    }
    if p.corrected:
        fields["rowsum"] = data.ArrayLayout(signed(p.rowsum_bits), p.tile_m)
    return data.StructLayout({**fields, "last": 1, "wlast": 1})


def result_layout(p: LutCoreParams) -> data.ArrayLayout:
    """``results`` beat: lane ``m * tile_n + n`` = signed(acc_bits) element of the output tile."""
    return data.ArrayLayout(signed(p.acc_bits), p.tile_m * p.tile_n)


class LutCore(wiring.Component):
    """LUT tensor core: ``tile_m`` tables per group broadcast to ``tile_n`` LUT dot-product units.

    Ports (``amaranth.lib.stream``, Verilog ``<port>__payload/__valid/__ready``; clock ``clk``,
    synchronous active-high reset ``rst``):

    * ``weights`` In: one bit plane of a weight tile per beat (``b`` beats per tile, plane 0
      first); lane ``n * tile_k + k`` is the g-bit index of column ``n``, group ``k`` (default: sign
      bit on top, low bits complemented offline when the sign is 0; see the variants below). Tiles
      go into a two-bank (double-buffered) weight store; a bank is accepted when it is free.
    * ``acts`` In (``precompute == "in_core"``): ``a`` = one ``tile_m x (tile_k * g)`` activation
      block (lane ``m * k_tile + k``), ``last`` = final K-tile of the output tile (emit the results
      and clear the accumulators after it), ``wlast`` = last beat using the current weight tile
      (free its bank afterwards). A beat is accepted only when its weight tile is fully loaded.
    * ``tables`` In (``precompute == "external"``, instead of ``acts``): the same beat with the
      block's tables instead of its activations (:func:`tables_layout`): ``tables`` lane
      ``m * tile_k + k`` = the table of row ``m``, group ``k``; ``rowsum`` lane ``m`` = the sum of
      row ``m``'s ``tile_k * g`` activations (only when ``weight_bits >= 2``); ``last``, ``wlast``.
    * ``results`` Out: the ``tile_m x tile_n`` results (lane ``m * tile_n + n``, signed acc_bits,
      two's complement wrap), one beat per ``last`` activation beat.

    Table design choices (:class:`~tpegen.hw.arrays.lut_params.LutCoreParams`; defaults first):
    ``table`` half (``2^(g-1)`` entries, sign bit selects negation) or full (``2^g`` entries, raw
    index); ``index_complement`` offline (driver) or in_core (an XOR per lookup); ``precompute``
    in_core (``tile_m * tile_k`` precompute units on ``acts``) or external (``tables`` port, no
    precompute units, no row-sum adders). The pipeline, and so every latency below, is the same.

    Pipeline: an accepted beat's tables (computed by the precompute units, or taken from the
    ``tables`` port) and row sums are registered; the next ``b`` cycles process planes 0..b-1
    (``tile_m * tile_n`` dot-product units, ``tile_k`` lookups each), and the next beat is accepted
    in the cycle of plane ``b-1``. The result register is loaded at the end of plane ``b-1`` of a
    ``last`` beat.
    Timing (inputs always valid, output always ready): activation beat ``j`` is accepted at cycle
    ``b (j + 1)`` after the first weight beat (cycle 0); its result leaves ``b + 1`` cycles later.
    A single tile takes ``2 b + 2`` cycles, a GEMM of ``J`` activation beats ``b (J + 1) + 2``
    (first input to last output handshake inclusive): initiation interval ``b`` per tile,
    ``tile_m * tile_n * tile_k * g / b`` MACs per cycle. Backpressure: while ``results`` is valid and
    not ready the whole core stalls (global clock enable), so no beat is ever dropped.
    """

    def __init__(self, params: LutCoreParams):
        self.params = params
        inp = tables_layout(params) if params.external_tables else act_layout(params)
        super().__init__(
            {
                "weights": In(stream.Signature(weight_layout(params))),
                params.input_port: In(stream.Signature(inp)),
                "results": Out(stream.Signature(result_layout(params))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        b, g, tk = p.planes, p.group_size, p.tile_k
        wbits = p.weight_payload_bits
        inp = getattr(self, p.input_port)

        # ---- global stall: freeze everything while a result waits for the consumer
        out = ResultRegister(m, self.results)
        ce = out.ce

        # ---- compute-stage state
        busy = Signal()
        plane = Signal(range(max(b, 2)))  # at least 1 bit: Verilator rejects zero-width wires
        cur_bank = Signal()
        cur_last = Signal()
        cur_wlast = Signal()
        last_plane = Signal()
        releasing = Signal()
        m.d.comb += [
            last_plane.eq(busy & (plane == b - 1)),
            releasing.eq(last_plane & cur_wlast),
        ]

        # ---- double-buffered weight store (b planes per tile) and its loader
        store = WeightStore(wbits, b)

        # ---- table registers, loaded from the precompute units (combinational from the acts
        # payload) or from the tables payload
        row_layout = data.ArrayLayout(table_layout(g, p.table_bits, full=p.full_table), tk)
        tables = [Signal(row_layout, name=f"tables_m{i}") for i in range(p.tile_m)]
        rsum_w = p.rowsum_bits
        rowsums = [Signal(signed(rsum_w), name=f"rowsum_m{i}") for i in range(p.tile_m)]
        if p.external_tables:
            given = Value.cast(inp.payload.tables)
            row_w = row_layout.size
            new_tables = [given[i * row_w : (i + 1) * row_w] for i in range(p.tile_m)]
            new_rowsums = [inp.payload.rowsum[i] if p.corrected else 0 for i in range(p.tile_m)]
        else:
            new_tables, new_rowsums = self._precompute(m, inp.payload.a)

        m.d.comb += inp.ready.eq(ce & (~busy | last_plane) & store.loaded)
        accept = Signal()
        m.d.comb += accept.eq(inp.valid & inp.ready)

        # ---- dot-product units: tile_m x tile_n, reading the current plane of the current bank
        wread = Signal(wbits)
        m.d.comb += wread.eq(store.read(cur_bank, plane))
        emit = Signal()
        m.d.comb += emit.eq(last_plane & cur_last)
        results = []
        for i in range(p.tile_m):
            for n in range(p.tile_n):
                dpu = LutDotProduct(
                    group_size=g,
                    tile_k=tk,
                    planes=b,
                    table_bits=p.table_bits,
                    rowsum_bits=rsum_w,
                    acc_width=p.acc_width,
                    full_table=p.full_table,
                    complement_index=p.index_complement == "in_core",
                )
                m.submodules[f"dpu_m{i}_n{n}"] = dpu
                m.d.comb += [
                    dpu.tables.eq(tables[i]),
                    dpu.index.eq(wread[n * tk * g : (n + 1) * tk * g]),
                    dpu.shift.eq(plane),
                    dpu.rowsum.eq(rowsums[i]),
                    dpu.subtract.eq((plane == 0) if p.corrected else 0),
                    dpu.en.eq(busy & ce),
                    dpu.clear.eq(emit),
                ]
                results.append(dpu.next[1:] if p.corrected else dpu.next)

        # ---- sequential control, all under the global clock enable
        out.load(m, emit, Cat(*results))
        store.build(m, self.weights, ce, releasing, cur_bank, accept & inp.payload.wlast)
        with m.If(ce):
            # compute stage
            with m.If(accept):
                m.d.sync += [
                    busy.eq(1),
                    plane.eq(0),
                    cur_bank.eq(store.rd_bank),
                    cur_last.eq(inp.payload.last),
                    cur_wlast.eq(inp.payload.wlast),
                ]
                for i in range(p.tile_m):
                    m.d.sync += [tables[i].eq(new_tables[i]), rowsums[i].eq(new_rowsums[i])]
            with m.Elif(last_plane):
                m.d.sync += busy.eq(0)
            with m.Elif(busy):
                m.d.sync += plane.eq(plane + 1)
        return m

    def _precompute(self, m: Module, a) -> tuple[list[Value], list[Value]]:
        """Add the ``tile_m * tile_k`` table precompute units reading activation lanes ``a``; return
        each row's concatenated tables and its row sum (the sum of the groups' last entries)."""
        p = self.params
        g = p.group_size
        new_tables, new_rowsums = [], []
        for i in range(p.tile_m):
            units = []
            for k in range(p.tile_k):
                unit = LutTablePrecompute(g, p.act_bits, p.table_bits, full=p.full_table)
                m.submodules[f"pre_m{i}_k{k}"] = unit
                for j in range(g):
                    m.d.comb += unit.a[j].eq(a[i * p.k_tile + k * g + j])
                units.append(unit)
            new_tables.append(Cat(*(u.table.as_value() for u in units)))
            new_rowsums.append(sum(u.table[p.entries - 1] for u in units))
        return new_tables, new_rowsums


def lut_core_verilog(params: LutCoreParams, name: str = "lut_core") -> str:
    """Verilog text of :class:`LutCore` with top module ``name``."""
    from amaranth.back import verilog

    core = LutCore(params)
    return verilog.convert(core, name=name)
