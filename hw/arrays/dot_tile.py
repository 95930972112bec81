"""Dot-product tile: ``tile_m x tile_n`` adder-tree dot-product units of length ``tile_k``.

One generator for the 2D-Matrix, multiplier-adder-tree and 3D-Cube organizations (parameters and
the classification: :mod:`tpegen.hw.arrays.dot_params`). The stream interface, result register and
double-buffered weight store are the LUT tensor core's (shared: :mod:`tpegen.hw.arrays.weight_store`)
with one weight beat per tile, so both cores run the same beat sequences and compare on equal terms.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.arrays.bitweight import bitweight_columns, bitweight_total
from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.hw.arrays.weight_store import ResultRegister, WeightStore

__all__ = ["DotTile", "act_layout", "dot_tile_verilog", "result_layout", "weight_layout"]


def weight_layout(p: DotTileParams) -> data.ArrayLayout:
    """``weights`` beat: a whole weight tile, lane ``n * tile_k + k`` = W[k, n] (weight shape)."""
    return data.ArrayLayout(p.w_shape, p.tile_n * p.tile_k)


def act_layout(p: DotTileParams) -> data.StructLayout:
    """``acts`` beat: ``a`` lanes ``m * tile_k + k`` = A[m, k] (activation shape), ``last``, ``wlast``."""
    return data.StructLayout({"a": data.ArrayLayout(p.a_shape, p.tile_m * p.tile_k), "last": 1, "wlast": 1})


def result_layout(p: DotTileParams) -> data.ArrayLayout:
    """``results`` beat: lane ``m * tile_n + n`` = signed(acc_bits) element of the output tile."""
    return data.ArrayLayout(p.acc_shape, p.tile_m * p.tile_n)


def _tree_level(values: list[Value]) -> list[Value]:
    """One adder level: pairwise sums (an odd last value passes through)."""
    out = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
    if len(values) % 2:
        out.append(values[-1])
    return out


class DotTile(wiring.Component):
    """Dot-product tile: ``tile_m x tile_n`` dot-product units, ``tile_k`` multipliers and an adder
    tree each, one accumulator per output. A broadcast along N, W along M (organizations:
    :mod:`tpegen.hw.arrays.dot_params`).

    Ports (``amaranth.lib.stream``, Verilog ``<port>__payload/__valid/__ready``; clock ``clk``,
    synchronous active-high reset ``rst``) -- exactly the LUT core's, with ``b = 1``:

    * ``weights`` In: one whole ``tile_k x tile_n`` weight tile per beat, lane ``n * tile_k + k``
      (``weight_bits`` each, plain two's-complement or unsigned integers, no encoding). Tiles go
      into a two-bank (double-buffered) weight store; a beat is accepted when the bank it fills is
      free (its previous tile's ``wlast`` beat has read it).
    * ``acts`` In: ``a`` = one ``tile_m x tile_k`` activation block (lane ``m * tile_k + k``),
      ``last`` = final K-tile of the output tile (emit the accumulators and clear them after it),
      ``wlast`` = last beat using the current weight tile (free its bank afterwards). A beat is
      accepted only when its weight tile is loaded; one beat per cycle otherwise.
    * ``results`` Out: the ``tile_m x tile_n`` accumulators (lane ``m * tile_n + n``, signed
      ``acc_bits``, two's-complement wrap), one beat per ``last`` activation beat.

    Pipeline: an accepted ``acts`` beat is registered with the bank it uses (operand register);
    in the next cycle ``tile_m * tile_n * tile_k`` multipliers read it and the bank, the
    ``ceil(log2 tile_k)``-level adder trees reduce over K through ``stages`` pipeline registers
    (:meth:`DotTileParams.register_levels`), and the last stage adds into the accumulators; on a
    ``last`` beat the sum goes to the result register instead and the accumulators clear. With
    ``reduction: bitweight`` the multipliers and their tree are replaced by :mod:`tpegen.hw.arrays.bitweight`'s
    column trees of equal-weight partial products (same depth, registers and latency) and a shift-add
    of the column sums into the accumulator.

    Timing (inputs always valid, output always ready): the first weight beat is accepted at cycle
    0, activation beat ``j`` at cycle ``j + 1``, its result ``2 + stages`` cycles later. A GEMM of
    ``J`` activation beats takes ``J + 3 + stages`` cycles, first input to last output handshake
    inclusive (the LUT core's ``b (J + 1) + 2`` at ``b = 1``, plus the tree stages): initiation
    interval 1 beat per cycle, ``tile_m * tile_n * tile_k`` MACs per cycle. The double-buffered
    weight store hides every weight tile but the first, also when each beat brings its own tile.
    Backpressure: while ``results`` is valid and not ready the whole tile stalls (global clock
    enable), so no beat is ever dropped.
    """

    def __init__(self, params: DotTileParams):
        self.params = params
        super().__init__(
            {
                "weights": In(stream.Signature(weight_layout(params))),
                "acts": In(stream.Signature(act_layout(params))),
                "results": Out(stream.Signature(result_layout(params))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        tm, tn, tk = p.tile_m, p.tile_n, p.tile_k

        # ---- global stall: freeze everything while a result waits for the consumer
        out = ResultRegister(m, self.results)
        ce = out.ce

        # ---- operand register (stage 0): the accepted activation block and its weight bank
        op_valid = Signal()
        op_a = Signal(data.ArrayLayout(p.a_shape, tm * tk))
        op_bank = Signal()
        op_last = Signal()
        op_wlast = Signal()
        releasing = Signal()  # the operand stage reads its bank for the last time this cycle
        m.d.comb += releasing.eq(op_valid & op_wlast)

        # ---- double-buffered weight store and its loader (the LUT core's, one beat per tile)
        store = WeightStore(weight_layout(p), 1)
        m.d.comb += self.acts.ready.eq(ce & store.loaded)
        accept = Signal()
        m.d.comb += accept.eq(self.acts.valid & self.acts.ready)

        # ---- multipliers: A lane (m, k) broadcast to every n, W lane (n, k) to every m; per output one
        # column of tile_k products
        w_sel = Signal(weight_layout(p))
        m.d.comb += w_sel.eq(store.read(op_bank))
        # (or, reducing by bit-weight first, each output's columns of equal-weight partial products)
        if p.bitweight:
            trees = bitweight_columns(m, p, op_a, w_sel)
        else:
            trees = [
                [[op_a[i * tk + k] * w_sel[n * tk + k] for k in range(tk)]]
                for i in range(tm)
                for n in range(tn)
            ]

        # ---- reduction trees with pipeline registers after the levels register_levels() names
        valid, last = op_valid, op_last
        cuts = p.register_levels()
        for level in range(p.tree_depth + 1):
            if level > 0:
                trees = [[_tree_level(c) for c in t] for t in trees]
            for _ in range(cuts.count(level)):
                stage_valid = Signal(name=f"s{level}_valid")
                stage_last = Signal(name=f"s{level}_last")
                regs = [
                    [
                        [
                            Signal(v.shape(), name=f"s{level}_o{o}_{f'c{c}_' if p.bitweight else ''}{j}")
                            for j, v in enumerate(col)
                        ]
                        for c, col in enumerate(t)
                    ]
                    for o, t in enumerate(trees)
                ]
                with m.If(ce):
                    m.d.sync += [stage_valid.eq(valid), stage_last.eq(last)]
                    with m.If(valid):
                        m.d.sync += [
                            r.eq(v)
                            for rt, t in zip(regs, trees, strict=True)
                            for rc, col in zip(rt, t, strict=True)
                            for r, v in zip(rc, col, strict=True)
                        ]
                trees, valid, last = regs, stage_valid, stage_last

        # ---- accumulators (last stage): add, or emit the sum and clear on a `last` beat
        accs = [Signal(p.acc_shape, name=f"acc_m{o // tn}_n{o % tn}") for o in range(tm * tn)]
        if p.bitweight:
            totals = [
                bitweight_total(m, p, acc, [col[0] for col in t], acc.name)
                for acc, t in zip(accs, trees, strict=True)
            ]
        else:
            totals = [acc + t[0][0] for acc, t in zip(accs, trees, strict=True)]
        emit = Signal()
        m.d.comb += emit.eq(valid & last)

        # ---- sequential control, all under the global clock enable
        out.load(m, emit, Cat(*(t[: p.acc_bits] for t in totals)))
        store.build(m, self.weights, ce, releasing, op_bank, accept & self.acts.payload.wlast)
        with m.If(ce):
            with m.If(valid):
                m.d.sync += [acc.eq(Mux(last, 0, total)) for acc, total in zip(accs, totals, strict=True)]
            # operand register
            m.d.sync += op_valid.eq(accept)
            with m.If(accept):
                m.d.sync += [
                    op_a.eq(self.acts.payload.a),
                    op_bank.eq(store.rd_bank),
                    op_last.eq(self.acts.payload.last),
                    op_wlast.eq(self.acts.payload.wlast),
                ]
        return m


def dot_tile_verilog(params: DotTileParams, name: str = "dot_tile") -> str:
    """Verilog text of :class:`DotTile` with top module ``name``."""
    from amaranth.back import verilog

    return verilog.convert(DotTile(params), name=name, emit_src=False)
