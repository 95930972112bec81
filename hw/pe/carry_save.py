"""Carry-save (compressed) accumulation of the integer MAC PE: Wu et al., "Exploring the Performance
Improvement of Tensor Processing Engines through Transformation in the Bit-weight Dimension of
MACs" (HPCA 2025, arXiv 2503.06342), OPT1.

A binary MAC PE adds its product to the accumulator with a carry-propagate adder in every PE every
cycle, the longest path of the PE. With ``pe.accumulation: carry_save`` the PE keeps its running
sum as two ``acc_bits`` words, ``sum`` and ``carry`` (:func:`pair_layout`, value ``sum + carry``
modulo ``2**acc_bits``), and each cycle a compressor tree of 3:2 carry-save adders (a full adder
per bit written as XOR and majority, no ``+``; two of them in a row are a 4:2 compressor) reduces
the multiplier's partial products together with the pair into a new pair. No carry in the loop
travels further than one bit. The one carry-propagate add per output happens where the pair
leaves the array: :class:`CarryPropagateAdder`, one per column at the systolic array's edge,
combinational on the output path, so results and cycles are those of the binary PE.

Partial products, for every ``pe.multiplier``:

* ``array``: the AND array, row ``j`` = ``a & w_j`` shifted by ``j`` (one row per weight bit); a
  signed weight's top bit weighs ``-2**(m-1)``, so its row enters negated, ``~(a & w_j)`` plus a
  one at bit ``j`` (the one's complement of an AND with ``w_j`` and the ``w_j`` that completes it).
  The multiplier knob keeps its meaning: ``m`` rows for the plain array, ``ceil(m / 2)`` for the
  recoded ones, so the three compare the trees they need.
* ``booth_r4`` / ``en_t``: the binary PE's encoder and +-a/+-2a selection
  (:func:`tpegen.hw.pe.radix4.partial_products`), row ``i`` shifted by ``2 i``, its negation one at
  bit ``2 i``.

A signed row would need sign extension up to ``acc_bits``; instead its sign bit ``s`` is inverted
and a constant ``-2**t`` (``t`` = the sign bit's weight) is added once per row, since
``-s 2**t == (1 - s) 2**t - 2**t``: all such constants form one constant word, exact modulo
``2**acc_bits``, and rows stay ``act_bits + 1`` or ``+ 2`` bits wide. The negation ones form one
more word. The tree therefore reduces ``rows + 4`` words (rows, ones, constant, the pair).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.pe.datapath import Datapath
from tpegen.hw.pe.radix4 import Radix4Encoder, link_digits, partial_products


def pair_layout(acc_bits: int) -> data.StructLayout:
    """A carry-save accumulator: ``sum`` and ``carry``, ``acc_bits`` each; its value is ``sum +
    carry`` modulo ``2**acc_bits`` (all zeros is 0, the empty accumulator)."""
    return data.StructLayout({"sum": unsigned(acc_bits), "carry": unsigned(acc_bits)})


def full_adders(m: Module, x: Value, y: Value, z: Value, name: str) -> tuple[Signal, Signal]:
    """A 3:2 carry-save adder over three words of one width ``n``: a full adder per bit, ``sum =
    x ^ y ^ z`` and ``carry = majority(x, y, z)`` shifted up one bit; ``sum + carry == x + y + z``
    modulo ``2**n`` (the carry out of the top bit is dropped). Signals ``<name>_s``, ``<name>_c``."""
    width = len(x)
    s = Signal(width, name=f"{name}_s")
    c = Signal(width, name=f"{name}_c")
    majority = (x & y) | (x & z) | (y & z)
    m.d.comb += [s.eq(x ^ y ^ z), c.eq(Cat(Const(0, 1), majority[: width - 1]))]
    return s, c


def compress(m: Module, words: list[Value], width: int) -> tuple[Value, Value]:
    """Reduce ``words`` (``width`` bits each, at least two) to a (sum, carry) pair with the same sum
    modulo ``2**width``: a Wallace tree of :func:`full_adders`, each level compressing every group
    of three words into two (signals ``csa<level>_<n>_s/_c``); the one or two words left over at a
    level (the last in ``words``: give the latest-arriving ones last) go straight to the next."""
    level = 0
    while len(words) > 2:
        full = len(words) // 3 * 3
        compressed: list[Value] = []
        for n in range(0, full, 3):
            compressed += full_adders(m, *words[n : n + 3], name=f"csa{level}_{n // 3}")
        words = compressed + words[full:]
        level += 1
    return words[0], words[1]


def _word(bits: Value, shift: int, width: int) -> Value:
    """``bits`` placed at bit ``shift`` of a ``width``-bit word (bits above it dropped)."""
    return Cat(Const(0, shift), bits, Const(0, width))[:width]


class CarrySaveMacDatapath(Datapath):
    """Combinational carry-save multiply-accumulate: ``acc_out.sum + acc_out.carry == acc_in.sum +
    acc_in.carry + a * w`` modulo ``2**acc_bits``.

    Ports (:class:`~tpegen.hw.pe.datapath.Datapath`): ``a``, ``w``, and ``acc_in`` / ``acc_out`` of
    :func:`pair_layout` (``params.acc_shape``). Latency: combinational (the cell registers the
    pair); one operation per cycle. The partial products of ``params.multiplier`` (module
    docstring; submodule ``encoder`` for the recoded ones, none with a shared encoder, whose ``w``
    is the weight's link form, :func:`~tpegen.hw.pe.radix4.link_digits`), the negation ones, the sign-extension
    constant and the incoming pair go through one :func:`compress` tree; no carry-propagate adder.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        width = p.acc_bits
        rows, ones = self._array_rows(m) if p.multiplier == "array" else self._radix4_rows(m)
        constant = 0
        row_words = []
        for row, is_signed, shift in rows:
            top = len(row) - 1
            if is_signed:  # -s 2**t == (1 - s) 2**t - 2**t: invert the sign bit, add -2**t once
                row = Cat(row[:top], ~row[top])
                constant -= 1 << (shift + top)
            row_words.append(_word(row, shift, width))
        ones_bits = [Const(0, 1)] * width
        for bit, position in ones:
            ones_bits[position] = bit
        words = [self.acc_in.sum, self.acc_in.carry, Cat(*ones_bits)]
        if constant % (1 << width):
            words.append(Const(constant % (1 << width), width))
        total_sum, total_carry = compress(m, [*words, *row_words], width)
        m.d.comb += [self.acc_out.sum.eq(total_sum), self.acc_out.carry.eq(total_carry)]
        return m

    def _array_rows(self, m: Module) -> tuple[list[tuple[Value, bool, int]], list[tuple[Value, int]]]:
        """The AND array: (row, signed, shift) per weight bit, and the negation one of a signed
        weight's top row as (bit, position)."""
        p = self.params
        n = p.act_bits
        a_ext = Signal(signed(n + 1), name="a_ext")  # ~a of any a fits in act_bits + 1 signed bits
        m.d.comb += a_ext.eq(self.a)
        rows, ones = [], []
        for j in range(p.weight_bits):
            bit = self.w[j]
            negative = p.weight_signed and j == p.weight_bits - 1
            is_signed = p.act_signed or negative
            row = Signal(signed(n + 1) if negative else self.a.shape(), name=f"row{j}")
            if negative:
                mask = bit.replicate(n + 1)
                m.d.comb += row.eq((a_ext & mask) ^ mask)
                ones.append((bit, j))
            else:
                m.d.comb += row.eq(self.a & bit.replicate(n))
            rows.append((row, is_signed, j))
        return rows, ones

    def _radix4_rows(self, m: Module) -> tuple[list[tuple[Value, bool, int]], list[tuple[Value, int]]]:
        """The recoded weight's rows: (pp_i, signed, 2 i) and the negation ones (neg_i, 2 i)."""
        p = self.params
        if p.shared_encoder:  # the weight arrives encoded from the array's edge
            digits = link_digits(m, self.w, p.w_shape, p.multiplier)
        else:
            m.submodules.encoder = encoder = Radix4Encoder(p.w_shape, p.multiplier)
            m.d.comb += encoder.w.eq(self.w)
            digits = encoder.digits
        pps = partial_products(m, self.a, digits)
        return [(pp, True, 2 * i) for i, (pp, _) in enumerate(pps)], [
            (neg, 2 * i) for i, (_, neg) in enumerate(pps)
        ]


class CarryPropagateAdder(wiring.Component):
    """The array-edge adder of carry-save PEs: ``acc_out = wrap(acc_in.sum + acc_in.carry)``.

    Ports: ``acc_in`` (:func:`pair_layout`), ``acc_out`` (signed ``acc_bits``, the binary PE's
    accumulator). Latency: combinational. One per column of a systolic array of carry-save PEs
    (the array's edge normalizer, :meth:`~tpegen.hw.pe.mac_params.MacPEParams.normalizer`), on the
    results' path, so it is a Kogge-Stone parallel-prefix adder: ``ceil(log2 acc_bits)`` levels of
    (generate, propagate) prefixes (signals ``g<level>``, ``p<level>``) instead of the ripple
    chain synthesis makes of ``+`` (a 32-bit ripple adder here is as slow as the PE's whole loop).
    """

    def __init__(self, acc_bits: int):
        super().__init__({"acc_in": In(pair_layout(acc_bits)), "acc_out": Out(signed(acc_bits))})

    def elaborate(self, platform) -> Module:
        m = Module()
        x, y = self.acc_in.sum, self.acc_in.carry
        width = len(x)
        half_sum = x ^ y
        generate, propagate = x & y, half_sum  # bit i generates / propagates a carry
        distance, level = 1, 0
        while distance < width:  # after this level: (g, p) of the span of 2 * distance bits ending at i
            g, p = Signal(width, name=f"g{level}"), Signal(width, name=f"p{level}")
            m.d.comb += [
                g.eq(generate | (propagate & (generate << distance)[:width])),
                p.eq(propagate & (propagate << distance)[:width]),
            ]
            generate, propagate, distance, level = g, p, 2 * distance, level + 1
        m.d.comb += self.acc_out.eq(half_sum ^ Cat(Const(0, 1), generate[: width - 1]))
        return m
