"""STORE output stage datapath: one accumulator row -> raw, int8 (requantized) or bf16 lanes.

The numerics are those of :mod:`tpegen.sim.requant` (the reference the tests compare against):
``int8`` is gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT`` (shift
0..63 as in 64-bit arithmetic), plus the zero point, clamped to [-128, 127] (``relu``: [zero
point, 127]); ``bf16`` is fp32 -> bf16 round to nearest even, a NaN made quiet with
``(bits >> 16) | 0x40``. An accumulator format other than fp32 is first widened exactly to fp32.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError
from tpegen.hw.system.isa import Format
from tpegen.hw.system.params import QPARAM_ENTRY_BITS, SystemGeometry

__all__ = ["OutputStage", "QPARAM_LAYOUT", "bf16_from_fp32", "fp_to_fp32", "requantize"]

QPARAM_LAYOUT = data.StructLayout(
    {"multiplier": signed(32), "shift": 6, "_pad0": 2, "zero_point": signed(8), "_pad1": 16}
)
assert QPARAM_LAYOUT.size == QPARAM_ENTRY_BITS

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def requantize(m: Module, acc: Value, q: data.View, relu: Value) -> Value:
    """int8 lane (a ``signed(8)`` value) of the int32 accumulator ``acc`` with Q entry ``q``
    (a :data:`QPARAM_LAYOUT` view). Combinational."""
    x = acc.as_signed()
    mult = q.multiplier
    ab = Signal(signed(64))
    m.d.comb += ab.eq(x * mult)
    total = Signal(signed(65))
    m.d.comb += total.eq(ab + Mux(ab >= 0, 1 << 30, 1 - (1 << 30)))
    # (total / 2^31) truncated toward zero: bias a negative total by 2^31 - 1 before the floor shift
    high = Signal(signed(34))
    m.d.comb += high.eq((total + Mux(total < 0, (1 << 31) - 1, 0)) >> 31)
    y = Signal(signed(32))
    m.d.comb += y.eq(Mux((x == INT32_MIN) & (mult == INT32_MIN), INT32_MAX, high[:32]))
    # RoundingDivideByPOT in 64-bit arithmetic == in 34-bit arithmetic with the shift clamped to 33:
    # for |y| <= 2^31 every shift >= 33 gives floor = -1 or 0 and the same rounding decision.
    shift = Signal(range(34))
    m.d.comb += shift.eq(Mux(q.shift > 33, 33, q.shift))
    y34 = Signal(signed(34))
    m.d.comb += y34.eq(y)
    mask = Signal(34)
    m.d.comb += mask.eq((Const(1, 35) << shift) - 1)
    remainder = (y34.as_unsigned() & mask)[:34]
    threshold = (mask >> 1) + (y < 0)
    rounded = Signal(signed(34))
    m.d.comb += rounded.eq((y34 >> shift) + (remainder > threshold))
    v = Signal(signed(36))
    m.d.comb += v.eq(rounded + q.zero_point)
    lo = Mux(relu, q.zero_point, -128)
    out = Signal(signed(8))
    with m.If(v > 127):
        m.d.comb += out.eq(127)
    with m.Elif(v < lo):
        m.d.comb += out.eq(lo)
    with m.Else():
        m.d.comb += out.eq(v[:8])
    return out


def bf16_from_fp32(m: Module, bits: Value) -> Value:
    """bf16 bit pattern (16 bits) of the fp32 bit pattern ``bits``: round to nearest even,
    NaN -> ``(bits >> 16) | 0x40``. Combinational."""
    u = bits[:32]
    nan = u[:31] > 0x7F800000
    rounded = (u + 0x7FFF + u[16])[16:32]
    out = Signal(16)
    m.d.comb += out.eq(Mux(nan, u[16:32] | 0x40, rounded))
    return out


def fp_to_fp32(m: Module, bits: Value, exp_bits: int, man_bits: int) -> Value:
    """fp32 bit pattern of ``bits`` in an IEEE-like format (``exp_bits`` <= 8, ``man_bits`` <= 23):
    exact widening; inf and NaN keep sign and payload (shifted to the top of the fraction)."""
    if exp_bits > 8 or man_bits > 23:
        raise ConfigError(
            "pe.acc_format", "a format no wider than fp32 for a bf16 STORE", (exp_bits, man_bits)
        )
    if (exp_bits, man_bits) == (8, 23):
        return bits[:32]
    sign = bits[exp_bits + man_bits]
    exp = bits[man_bits : man_bits + exp_bits]
    man = bits[:man_bits]
    pad = 23 - man_bits
    if exp_bits == 8:  # same exponent range (bf16): subnormals stay subnormal
        return Cat(Const(0, pad), man, exp, sign)
    bias = (1 << (exp_bits - 1)) - 1
    out = Signal(32)
    ones = (1 << exp_bits) - 1
    with m.If(exp == ones):
        m.d.comb += out.eq(Cat(Const(0, pad), man, Const(0xFF, 8), sign))
    with m.Elif(exp != 0):
        m.d.comb += out.eq(Cat(Const(0, pad), man, (exp + (127 - bias))[:8], sign))
    with m.Elif(man == 0):
        m.d.comb += out.eq(Cat(Const(0, 31), sign))
    with m.Else():  # subnormal: value man * 2^(1 - bias - man_bits); top set bit p becomes the hidden bit
        for p in range(man_bits):  # last assignment wins: the highest set bit
            with m.If(man[p]):
                frac = (man << (man_bits - p))[:man_bits]
                m.d.comb += out.eq(Cat(Const(0, pad), frac, Const(1 - bias - man_bits + p + 127, 8), sign))
    return out


class OutputStage(wiring.Component):
    """Combinational STORE conversion of one accumulator row (``L = geometry.acc_lanes`` lanes).

    Ports
    -----
    acc_row : ``In(acc_row_bits)`` -- the accumulator row (lane l at bits ``l * acc_lane_bits``).
    q_row : ``In(q_row_bits)`` -- the Q row read for this row (``L`` :data:`QPARAM_LAYOUT` entries).
    format : ``In(2)`` -- :class:`~tpegen.hw.system.isa.Format` (only this design's formats).
    relu, per_row : ``In(1)`` -- int8 options; ``per_row = 1``: every lane uses entry ``q_entry``.
    q_entry : ``In(range(L))`` -- the entry used by all lanes when ``per_row = 1``.
    out : ``Out(out_bits)`` -- the converted row, lanes packed from bit 0 (``raw``: acc lanes,
        ``int8``: 8-bit lanes, ``bf16``: 16-bit lanes), zero above; ``out_bits`` is the widest
        format's row.

    One requantizer (32 x 32 multiplier, 34-bit rounding shifter, clamp) per lane for ``int8``
    designs, one fp32 -> bf16 rounder per lane for FMA designs; no state.
    """

    def __init__(self, geometry: SystemGeometry, fp_format=None):
        self.geometry = g = geometry
        self.fp_format = fp_format  # (exp_bits, man_bits) of the FMA accumulator format
        if g.fp and fp_format is None:
            self.fp_format = (8, 23) if g.acc_lane_bits == 32 else (8, 7)
        self.out_bits = max(g.acc_lanes * g.output_lane_bits(f) for f in g.output_formats())
        super().__init__(
            {
                "acc_row": In(g.acc_row_bits),
                "q_row": In(g.q_row_bits),
                "format": In(2),
                "relu": In(1),
                "per_row": In(1),
                "q_entry": In(range(max(g.acc_lanes, 2))),
                "out": Out(self.out_bits),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geometry
        L, bits = g.acc_lanes, g.acc_lane_bits
        formats = g.output_formats()
        lanes = [self.acc_row[i * bits : (i + 1) * bits] for i in range(L)]
        result = Signal(self.out_bits)
        m.d.comb += result.eq(self.acc_row)  # raw
        if "int8" in formats:
            entries = data.View(data.ArrayLayout(QPARAM_LAYOUT, L), self.q_row)
            shared = Signal(QPARAM_LAYOUT)
            m.d.comb += shared.eq(entries[self.q_entry])
            int8 = []
            for i, lane in enumerate(lanes):
                q = Signal(QPARAM_LAYOUT, name=f"q{i}")
                m.d.comb += q.eq(Mux(self.per_row, shared, entries[i]))
                int8.append(requantize(m, lane.as_signed(), q, self.relu))
            with m.If(self.format == Format.INT8):
                m.d.comb += result.eq(Cat(*int8))
        if "bf16" in formats:
            e, mb = self.fp_format
            bf16 = [bf16_from_fp32(m, fp_to_fp32(m, lane, e, mb)) for lane in lanes]
            with m.If(self.format == Format.BF16):
                m.d.comb += result.eq(Cat(*bf16))
        m.d.comb += self.out.eq(result)
        return m
