"""Bit-serial tile over encoded weight digits with zero skipping (family ``bitserial``).

The "bit-slice" tensor engine of Wu et al. (HPCA 2025, OPT3/OPT4; parameters and references in
:mod:`tpegen.hw.arrays.bitserial_params`): a ``tile_m x tile_n`` output-stationary grid of PEs,
activations broadcast along a row, each weight recoded once per column into radix-4 digits and
consumed one non-zero digit per cycle. The streams, the result register and the double-buffered
weight store are the dot-product tile's (:mod:`tpegen.hw.arrays.dot_tile`, ``tile_k = 1``).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib import stream as lib_stream
from amaranth.lib.wiring import In, Out

from tpegen.hw.arrays.bitserial_params import BitSerialParams
from tpegen.hw.arrays.dot_tile import act_layout, result_layout, weight_layout
from tpegen.hw.arrays.weight_store import ResultRegister, WeightStore
from tpegen.hw.pe.radix4 import DIGIT, Radix4Encoder, digits_layout, partial_products

__all__ = ["BitSerialPE", "BitSerialTile"]


class BitSerialPE(wiring.Component):
    """Combinational digit step of one PE: ``acc_out = wrap(acc_in + d * a * 4**pos)``.

    Ports: ``a`` (in, activation shape), ``digit`` (in, :data:`~tpegen.hw.pe.radix4.DIGIT`: 0, +-1
    or +-2), ``pos`` (in, the digit's position, ``0..digits-1``), ``acc_in`` / ``acc_out`` (signed
    ``acc_bits``). The candidate product (0, +-a or +-2a, :func:`~tpegen.hw.pe.radix4.partial_products`)
    is shifted left by ``2 pos`` bits and added: one adder and a shifter, no multiplier.
    Latency: combinational. Parameters: ``params`` (:class:`BitSerialParams`).
    """

    def __init__(self, params: BitSerialParams):
        super().__init__(
            {
                "a": In(params.a_shape),
                "digit": In(DIGIT),
                "pos": In(range(max(params.digits, 2))),
                "acc_in": In(params.acc_shape),
                "acc_out": Out(params.acc_shape),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        ((pp, neg),) = partial_products(m, self.a, [self.digit])
        m.d.comb += self.acc_out.eq(self.acc_in + ((pp + neg) << Cat(Const(0, 1), self.pos)))
        return m


class BitSerialTile(wiring.Component):
    """Bit-serial tile: ``tile_m x tile_n`` PEs, one output each, weights as radix-4 digits.

    Ports (``amaranth.lib.stream``; clock ``clk``, synchronous active-high reset ``rst``) -- the
    dot-product tile's with ``tile_k = 1``:

    * ``weights`` In: one K row of the weight tile per beat, lane ``n`` = W[k, n] (plain integers;
      the tile encodes them). Double-buffered (:class:`~tpegen.hw.arrays.weight_store.WeightStore`).
    * ``acts`` In: ``a`` = the ``tile_m`` activations of one K step (lane ``m`` = A[m, k]), ``last``
      = final K step of the output tile, ``wlast`` = last beat using the current weight beat.
    * ``results`` Out: the ``tile_m x tile_n`` accumulators (lane ``m * tile_n + n``, signed
      ``acc_bits``, two's-complement wrap), one beat per ``last`` activation beat.

    Datapath. When an ``acts`` beat is accepted, one encoder per column (EN-T or Booth,
    :class:`~tpegen.hw.pe.radix4.Radix4Encoder`, shared by the column's ``tile_m`` PEs) recodes
    that column's weight; its digits and a mask of its non-zero digits are registered with the
    activations. Every following cycle each column selects its lowest pending non-zero digit (a
    priority encoder), clears it from the mask and broadcasts digit and position to its PEs; each
    PE adds ``digit * a * 4**pos`` to its accumulator (:class:`BitSerialPE`). Zero digits cost no
    cycle, and a column whose mask is empty adds nothing.

    Column synchronization. The ``tile_m`` PEs of a column share one weight, hence one digit
    sequence, and need no synchronization among themselves; the columns share the activation beat,
    so the tile takes the next beat only when every column has consumed its digits. A beat
    therefore occupies the PEs ``c = max(1, max_n nz(W[k, n]))`` cycles, ``nz`` the non-zero
    digits of the tile's weight in column ``n`` (``max(1, .)``: an all-zero K step still takes its
    cycle). The beat is accepted in the last digit cycle of the previous one (``acts.ready`` is
    high while no column has more than one digit pending), so digit cycles run back to back.

    Timing (inputs always valid, output always ready): weight beat 0 at cycle 0, activation beat
    0 at cycle 1, beat ``j + 1`` accepted ``c_j`` cycles after beat ``j``; a ``last`` beat's sum
    goes to the result register in its last digit cycle and is handed over the next cycle. A GEMM
    of activation beats ``j`` takes ``3 + sum_j c_j`` cycles, first input to last output handshake
    inclusive (the dot-product tile's ``J + 3`` when every ``c_j`` is 1). Backpressure: while
    ``results`` is valid and not ready the whole tile stalls (global clock enable).
    """

    def __init__(self, params: BitSerialParams):
        self.params = params
        super().__init__(
            {
                "weights": In(lib_stream.Signature(weight_layout(params))),
                "acts": In(lib_stream.Signature(act_layout(params))),
                "results": Out(lib_stream.Signature(result_layout(params))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        tm, tn, nd = p.tile_m, p.tile_n, p.digits

        out = ResultRegister(m, self.results)
        ce = out.ce
        store = WeightStore(weight_layout(p), 1)
        w_now = Signal(weight_layout(p))  # the weights of the beat being accepted (read bank)
        m.d.comb += w_now.eq(store.read(store.rd_bank))

        # ---- registered beat: activations, `last`, each column's digits and pending non-zero mask
        busy = Signal()
        a_reg = Signal(data.ArrayLayout(p.a_shape, tm))
        last_reg = Signal()
        col_digits = [Signal(digits_layout(p.w_shape), name=f"digits_n{n}") for n in range(tn)]
        pending = [Signal(nd, name=f"pending_n{n}") for n in range(tn)]

        # ---- per column: lowest pending digit, the mask without it, "at most one digit left"
        digit_now, pos_now, rest = [], [], []
        for n in range(tn):
            mask = pending[n]
            pos = Signal(range(max(nd, 2)), name=f"pos_n{n}")
            select = Const(0, 1)
            for i in reversed(range(nd)):
                select = Mux(mask[i], i, select)
            digit = Signal(DIGIT, name=f"digit_n{n}")
            chosen = col_digits[n][pos]
            rest_n = Signal(nd, name=f"rest_n{n}")
            m.d.comb += [
                pos.eq(select),
                digit.one.eq(chosen.one & mask.any()),
                digit.two.eq(chosen.two & mask.any()),
                digit.neg.eq(chosen.neg),
                rest_n.eq(mask & (mask - 1)[:nd]),
            ]
            digit_now.append(digit)
            pos_now.append(pos)
            rest.append(rest_n)
        done = Signal()  # the beat's last digit cycle: no column has a digit left after this one
        m.d.comb += done.eq(~Cat(*(r.any() for r in rest)).any())

        m.d.comb += self.acts.ready.eq(ce & store.loaded & (~busy | done))
        accept = Signal()
        m.d.comb += accept.eq(self.acts.valid & self.acts.ready)
        wlast = accept & self.acts.payload.wlast

        # ---- the PEs and their accumulators
        accs = [Signal(p.acc_shape, name=f"acc_m{o // tn}_n{o % tn}") for o in range(tm * tn)]
        totals = []
        for o, acc in enumerate(accs):
            r, n = divmod(o, tn)
            pe = m.submodules[f"pe_m{r}_n{n}"] = BitSerialPE(p)
            m.d.comb += [
                pe.a.eq(a_reg[r]),
                pe.digit.eq(digit_now[n]),
                pe.pos.eq(pos_now[n]),
                pe.acc_in.eq(acc),
            ]
            totals.append(pe.acc_out)
        out.load(m, busy & done & last_reg, Cat(*totals))

        # ---- sequential control, all under the global clock enable
        store.build(m, self.weights, ce, wlast, store.rd_bank, wlast)
        with m.If(ce):
            m.d.sync += busy.eq(accept | (busy & ~done))
            with m.If(busy):
                m.d.sync += [pend.eq(r) for pend, r in zip(pending, rest, strict=True)]
                m.d.sync += [acc.eq(Mux(done & last_reg, 0, t)) for acc, t in zip(accs, totals, strict=True)]
            with m.If(accept):  # after the digit step: a new beat's masks win
                m.d.sync += [a_reg.eq(self.acts.payload.a), last_reg.eq(self.acts.payload.last)]
                for n in range(tn):
                    enc = m.submodules[f"enc_n{n}"] = Radix4Encoder(p.w_shape, p.encoding)
                    m.d.comb += enc.w.eq(w_now[n])
                    m.d.sync += [
                        col_digits[n].eq(enc.digits),
                        pending[n].eq(Cat(*(d.one | d.two for d in enc.digits))),
                    ]
        return m
