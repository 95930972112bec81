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
``(-1)**neg * (one + 2 * two)``. :class:`Radix4Encoder` turns a weight into digits,
:class:`Radix4MultiplyAdd` selects the partial products, sums them in a balanced adder tree and adds
the accumulator. A negative partial product is the one's complement of the selected multiple plus
one; the ones go into the tree as one extra word (bit ``2 i`` for digit ``i``), as in a Booth
multiplier's array.

**Shared encoders** (``pe.encoder: per_column``, EN-T's encoder sharing): one :class:`SharedEncoder`
per column at the systolic array's edge encodes each weight once, and the weight travels through
the column's registers (and is held by a weight-stationary PE) in its *link* form
(:func:`link_layout`) instead of the raw bits; each PE only turns the link into digits
(:func:`link_digits`) and selects +-a, +-2a. Modified Booth's link is its digits (``D`` x 3 bits,
12 for int8: the Booth encoder is a few gates per digit, so sharing it buys little). EN-T's link is
compact (:data:`EN_T_LINK`): the magnitude digits' codes, 2 bits each (``(pair + carry) mod 4``, 3
meaning -1), and the weight's sign once, ``2 D + 1`` bits (9 for int8, one more than the raw
weight); the PE's decode is two gates per digit.
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


def link_layout(w_shape: ShapeLike, encoding: str) -> data.Layout:
    """What a shared encoder sends to the PEs for one weight of shape ``w_shape``: the digits
    (:func:`digits_layout`) for ``booth_r4``; for ``en_t`` a ``code`` per digit (2 bits, the
    magnitude digit ``code`` if at most 2, else -1) and the weight's ``sign`` (signed weights only)."""
    w_shape = Shape.cast(w_shape)
    if encoding == "booth_r4":
        return digits_layout(w_shape)
    fields = {"code": data.ArrayLayout(2, radix4_digits(w_shape.width, w_shape.signed))}
    return data.StructLayout(fields | ({"sign": 1} if w_shape.signed else {}))


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
        sign = _sign(self.w, self.w_shape)
        for digit, (code0, code1) in zip(self.digits, _en_t_codes(m, self.w, self.w_shape), strict=True):
            _en_t_digit(m, digit, code0, code1, sign)


def _sign(w: Value, w_shape: Shape) -> Value:
    """The sign bit of a weight (a constant 0 for an unsigned one)."""
    return w[w_shape.width - 1] if w_shape.signed else Const(0, 1)


def _en_t_codes(m: Module, w: Value, w_shape: Shape):
    """Per EN-T digit of ``w``, least significant first, its code bits ``(code0, code1)``:
    ``(pair + carry) mod 4`` of the magnitude's bit pair, 3 meaning -1. A generator: the carry into
    the next pair is assigned (signal ``carry<i>``) after the consumer has used digit ``i - 1``."""
    width = w_shape.width
    magnitude = Signal(width, name="magnitude")  # |w| <= 2**(width-1) fits in width bits
    m.d.comb += magnitude.eq(Mux(w[width - 1], -w, w) if w_shape.signed else w)
    count = radix4_digits(width, w_shape.signed)
    carry = Const(0, 1)
    for i in range(count):
        pair = magnitude[2 * i : 2 * i + 2]
        p0 = pair[0] if len(pair) > 0 else Const(0, 1)
        p1 = pair[1] if len(pair) > 1 else Const(0, 1)
        yield p0 ^ carry, p1 ^ (p0 & carry)
        if i + 1 < count:
            carry_out = Signal(name=f"carry{i + 1}")
            m.d.comb += carry_out.eq(p1 & (p0 | carry))  # pair + carry >= 3
            carry = carry_out


def _en_t_digit(m: Module, digit, code0: Value, code1: Value, sign: Value) -> None:
    """Drive ``digit`` (:data:`DIGIT`) from an EN-T code and the weight's sign."""
    m.d.comb += [
        digit.one.eq(code0),
        digit.two.eq(code1 & ~code0),
        digit.neg.eq((code1 & code0) ^ sign),
    ]


class SharedEncoder(wiring.Component):
    """Combinational shared weight encoder at the array's edge: ``w`` -> its ``link`` form.

    Ports: ``w`` (in, the PE's weight shape), ``link`` (out, :func:`link_layout`). Parameters:
    ``w_shape``, ``encoding`` (``"booth_r4"``: the :class:`Radix4Encoder` digits; ``"en_t"``: the
    EN-T codes and the sign). Latency: combinational. ``link_digits(link)`` equals the
    :class:`Radix4Encoder` digits of ``w``, so a PE fed the link computes what a PE with its own
    encoder computes from ``w``.
    """

    def __init__(self, w_shape: ShapeLike, encoding: str):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.w_shape = Shape.cast(w_shape)
        self.encoding = encoding
        super().__init__({"w": In(self.w_shape), "link": Out(link_layout(self.w_shape, encoding))})

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.encoding == "booth_r4":
            m.submodules.encoder = encoder = Radix4Encoder(self.w_shape, self.encoding)
            m.d.comb += [encoder.w.eq(self.w), self.link.eq(encoder.digits)]
            return m
        for code, (code0, code1) in zip(self.link.code, _en_t_codes(m, self.w, self.w_shape), strict=True):
            m.d.comb += code.eq(Cat(code0, code1))
        if self.w_shape.signed:
            m.d.comb += self.link.sign.eq(_sign(self.w, self.w_shape))
        return m


def link_digits(m: Module, link, w_shape: ShapeLike, encoding: str):
    """The digits (:func:`digits_layout`) of a weight that arrives as ``link`` (:func:`link_layout`,
    from a :class:`SharedEncoder`): the link itself for ``booth_r4``, two gates per digit
    (signal ``digits``) for ``en_t``."""
    w_shape = Shape.cast(w_shape)
    if encoding == "booth_r4":
        return link
    digits = Signal(digits_layout(w_shape), name="digits")
    sign = link.sign if w_shape.signed else Const(0, 1)
    for digit, code in zip(digits, link.code, strict=True):
        _en_t_digit(m, digit, code[0], code[1], sign)
    return digits


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
