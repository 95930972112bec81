"""Radix-4 recoded multipliers for the integer MAC PE: modified Booth and EN-T.

Both write the weight ``w`` as radix-4 digits, ``w = sum_i d_i 4**i``, at most one non-zero
digit per bit pair, so a product ``a * w`` is the sum of ``D`` partial products ``d_i * a`` shifted by
``2 i`` bits, each one of 0, +-a, +-2a: a shift and a conditional negation, no multiplier.

* **Modified Booth** (``booth_r4``, MacSorley 1961): digit ``i`` is read from the overlapping bit
  triplet ``(w[2i+1], w[2i], w[2i-1])`` of the two's-complement weight (``w[-1] = 0``) as
  ``-2 w[2i+1] + w[2i] + w[2i-1]``, in {-2..2}.
* **EN-T** (Wu et al., "EN-T: Optimizing Tensor Computing Engines Performance via Encoder-Based
  Methodology", ICCD 2024, arXiv 2404.11887): the weight as sign and magnitude; the magnitude's
  bit pairs ``p_i`` plus a carry ``c_i`` become digits in {-1, 0, 1, 2}: ``p_i + c_i`` itself if it is
  at most 2, else ``p_i + c_i - 4`` with a carry into the next pair (3 -> -1, 4 -> 0). The sign is
  folded into every digit (a negative weight negates them), so a digit is still one of 0, +-a, +-2a.

``D`` is :func:`~tpegen.hw.pe.mac_params.radix4_digits` for either encoding (an unsigned weight
needs one digit more than its pairs when its width is even). A digit travels as :data:`DIGIT`:
``(-1)**neg * (one + 2 * two)`` -- the form a shared encoder would send to the PEs in place of
the raw weight. :class:`Radix4Encoder` turns a weight into digits, :class:`Radix4MultiplyAdd`
selects the partial products, sums them in a balanced adder tree and adds the accumulator. A
negative partial product is the one's complement of the selected multiple plus one; the ones go
into the tree as one extra word (bit ``2 i`` for digit ``i``), as in a Booth multiplier's array.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Shape, ShapeLike, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.pe.mac_params import MULTIPLIERS, radix4_digits

ENCODINGS = tuple(m for m in MULTIPLIERS if m != "array")

DIGIT = data.StructLayout({"one": 1, "two": 1, "neg": 1})
"""One radix-4 digit, ``(-1)**neg * (one + 2 * two)``; ``one`` and ``two`` are never both set."""


def digits_layout(w_shape: ShapeLike) -> data.ArrayLayout:
    """The digits of one weight of shape ``w_shape``."""
    w_shape = Shape.cast(w_shape)
    return data.ArrayLayout(DIGIT, radix4_digits(w_shape.width, w_shape.signed))


class Radix4Encoder(wiring.Component):
    """Combinational weight encoder: ``w`` -> its radix-4 ``digits`` (:data:`DIGIT` each).

    Ports: ``w`` (in, the PE's weight shape), ``digits`` (out, :func:`digits_layout`).
    Parameters: ``w_shape``, ``encoding`` (``"booth_r4"`` or ``"en_t"``, see the module docstring).
    Latency: combinational. ``sum_i value(digits[i]) * 4**i == w`` for every ``w``.
    """

    def __init__(self, w_shape: ShapeLike, encoding: str):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.w_shape = Shape.cast(w_shape)
        self.encoding = encoding
        super().__init__({"w": In(self.w_shape), "digits": Out(digits_layout(self.w_shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.encoding == "booth_r4":
            self._booth(m)
        else:
            self._en_t(m)
        return m

    def _booth(self, m: Module) -> None:
        n = len(self.digits)
        bits = Signal(2 * n, name="w_ext")  # the weight sign- or zero-extended to whole bit pairs
        m.d.comb += bits.eq(self.w)
        bits = Cat(Const(0, 1), bits)  # w[-1] = 0 below the lowest pair
        for i, digit in enumerate(self.digits):
            low, mid, high = bits[2 * i], bits[2 * i + 1], bits[2 * i + 2]
            m.d.comb += [
                digit.one.eq(mid ^ low),
                digit.two.eq((high & ~mid & ~low) | (~high & mid & low)),
                digit.neg.eq(high),
            ]

    def _en_t(self, m: Module) -> None:
        width = self.w_shape.width
        magnitude = Signal(width, name="magnitude")  # |w| <= 2**(width-1) fits in width bits
        if self.w_shape.signed:
            sign = self.w[width - 1]
            m.d.comb += magnitude.eq(Mux(sign, -self.w, self.w))
        else:
            sign = Const(0, 1)
            m.d.comb += magnitude.eq(self.w)
        carry = Const(0, 1)
        for i, digit in enumerate(self.digits):
            pair = magnitude[2 * i : 2 * i + 2]
            p0 = pair[0] if len(pair) > 0 else Const(0, 1)
            p1 = pair[1] if len(pair) > 1 else Const(0, 1)
            code0, code1 = p0 ^ carry, p1 ^ (p0 & carry)  # (pair + carry) mod 4: 3 means -1
            m.d.comb += [
                digit.one.eq(code0),
                digit.two.eq(code1 & ~code0),
                digit.neg.eq((code1 & code0) ^ sign),
            ]
            if i + 1 < len(self.digits):
                carry_out = Signal(name=f"carry{i + 1}")
                m.d.comb += carry_out.eq(p1 & (p0 | carry))  # pair + carry >= 3
                carry = carry_out


class Radix4MultiplyAdd(wiring.Component):
    """Combinational multiply-add from a recoded weight: ``acc_out = wrap(acc_in + a * w)``.

    Ports: ``a`` (in, activation), ``digits`` (in, the weight's :func:`digits_layout`), ``acc_in``
    / ``acc_out`` (signed ``acc_shape``). Each digit selects 0, a or 2a (``sel_i``), its one's
    complement when the digit is negative (``pp_i``, ``act_bits + 2`` bits, exact for signed and
    unsigned ``a``); a tree adds ``pp_i << 2 i`` and the word of negation ones at the width of
    the product (``product``, wide enough for any ``a * w``), and one adder adds ``acc_in``.
    Latency: combinational.
    """

    def __init__(self, a_shape: ShapeLike, w_shape: ShapeLike, acc_shape: ShapeLike):
        super().__init__(
            {
                "a": In(a_shape),
                "digits": In(digits_layout(w_shape)),
                "acc_in": In(acc_shape),
                "acc_out": Out(acc_shape),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        terms: list[Value] = []
        ones = []
        for i, (pp, neg) in enumerate(partial_products(m, self.a, self.digits)):
            terms.append(pp.shift_left(2 * i))
            ones += [neg, Const(0, 1)]
        terms.append(Cat(*ones))
        product = Signal(signed(len(self.a) + len(self.digits) * 2 + 1), name="product")
        m.d.comb += [
            product.eq(_tree_sum(m, terms, len(product))),
            self.acc_out.eq(self.acc_in + product),
        ]
        return m


def partial_products(m: Module, a: Value, digits) -> list[tuple[Signal, Signal]]:
    """Per digit ``i`` of ``digits`` (:func:`digits_layout`), the pair (``pp_i``, ``neg_i``): ``pp_i``
    is 0, a or 2a (``sel_i``), one's-complemented when the digit is negative, signed ``len(a) + 2``
    bits (exact for signed and unsigned ``a``); ``neg_i`` is the one that completes the negation.
    ``digit_i * a == pp_i + neg_i``; the product is ``sum_i (pp_i + neg_i) * 4**i``."""
    width = len(a) + 2  # 2a for an unsigned a, and the one's complement of either
    a_ext = Signal(signed(width), name="a_ext")
    m.d.comb += a_ext.eq(a)
    out = []
    for i, digit in enumerate(digits):
        sel = Signal(signed(width), name=f"sel{i}")
        pp = Signal(signed(width), name=f"pp{i}")
        neg = Signal(name=f"neg{i}")
        m.d.comb += [
            sel.eq(Mux(digit.two, a_ext.shift_left(1), Mux(digit.one, a_ext, 0))),
            neg.eq(digit.neg & (digit.one | digit.two)),
            pp.eq(sel ^ neg.replicate(width).as_signed()),
        ]
        out.append((pp, neg))
    return out


def _tree_sum(m: Module, terms: list[Value], width: int) -> Value:
    """The sum of ``terms`` modulo ``2**width`` through a balanced tree of two-input adders, one
    named signal (``sum<level>_<n>``, ``width`` bits) per adder."""
    level = 0
    while len(terms) > 1:
        pairs = [terms[k : k + 2] for k in range(0, len(terms), 2)]
        terms = []
        for n, pair in enumerate(pairs):
            if len(pair) == 1:
                terms.append(pair[0])
                continue
            s = Signal(signed(width), name=f"sum{level}_{n}")
            m.d.comb += s.eq(pair[0] + pair[1])
            terms.append(s)
        level += 1
    return terms[0]
