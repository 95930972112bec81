"""Reference arithmetic blocks for calibrating area and energy against published 45 nm figures.

Each block is a tiny Amaranth component with the tpegen top-level protocol: an input stream ``i``
whose payload packs the two operands (``a`` in the low bits, ``b`` above) and an output stream
``o`` carrying the registered result (one output register stage; the operands come straight from
the stream port, so the combinational operator sees exactly the operand activity).

``REFERENCE_BLOCKS`` maps a name to a :class:`ReferenceBlock` (builder, operand generator and the
published Horowitz ISSCC 2014 45 nm energy/area). New rows (an INT8 MAC PE, a LUT core, an FMA)
are added by appending to that dict; :mod:`bench.ppa` and the tests iterate over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from amaranth import Cat, Elaboratable, Module, Mux, Signal, Value
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from tpegen.sim.packing import pack_fields
from tpegen.sim.verilator import StreamProgram


class _Operator(Elaboratable):
    """The combinational operator alone, so that synthesis reports its area as submodule ``op``."""

    def __init__(self, width: int, out_width: int, fn: Callable[[Module, Value, Value], Value]):
        self.a = Signal(width)
        self.b = Signal(width)
        self.y = Signal(out_width)
        self.fn = fn

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.fn(m, self.a, self.b))
        return m


class BinaryOpBlock(wiring.Component):
    """``o = fn(a, b)`` with ``a = i.payload[:width]``, ``b = i.payload[width:]``, registered output."""

    def __init__(self, width: int, out_width: int, fn: Callable[[Module, Value, Value], Value]):
        self.width = width
        self.fn = fn
        self.out_width = out_width
        super().__init__({"i": In(stream.Signature(2 * width)), "o": Out(stream.Signature(out_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.op = op = _Operator(self.width, self.out_width, self.fn)
        m.d.comb += [op.a.eq(self.i.payload[: self.width]), op.b.eq(self.i.payload[self.width :])]
        result = op.y
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.i.ready):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(result)]
        return m


def bf16_mul(m: Module, a: Value, b: Value) -> Value:
    """bfloat16 product, round to nearest even, subnormal inputs and results flushed to (signed) zero,
    overflow to infinity, NaN (canonical 0x7fc0) for NaN operands or inf x 0."""
    sa, ea, ma = a[15], a[7:15], a[:7]
    sb, eb, mb = b[15], b[7:15], b[:7]
    sign = sa ^ sb
    a_zero, b_zero = ea == 0, eb == 0
    a_inf, b_inf = (ea == 255) & (ma == 0), (eb == 255) & (mb == 0)
    a_nan, b_nan = (ea == 255) & (ma != 0), (eb == 255) & (mb != 0)
    prod = Signal(16)
    m.d.comb += prod.eq(Cat(ma, 1) * Cat(mb, 1))  # 1.m x 1.m in [1, 4): 2.14 fixed point
    hi = prod[15]
    # normalise to 1.7 + guard + sticky
    mant = Signal(8)
    guard = Signal()
    sticky = Signal()
    m.d.comb += [
        mant.eq(Mux(hi, prod[8:16], prod[7:15])),
        guard.eq(Mux(hi, prod[7], prod[6])),
        sticky.eq(Mux(hi, prod[:7] != 0, prod[:6] != 0)),
    ]
    round_up = guard & (sticky | mant[0])
    rounded = Signal(9)
    m.d.comb += rounded.eq(mant + round_up)
    carry = rounded[8]
    exp = Signal(range(-256, 512))
    m.d.comb += exp.eq(ea + eb - 127 + hi + carry)
    frac = Mux(carry, rounded[1:8], rounded[:7])
    result = Signal(16)
    with m.If(a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)):
        m.d.comb += result.eq(0x7FC0)
    with m.Elif(a_inf | b_inf):
        m.d.comb += result.eq(Cat(Signal(7), Signal(8, init=255), sign))
    with m.Elif(a_zero | b_zero | (exp <= 0)):
        m.d.comb += result.eq(Cat(Signal(15), sign))
    with m.Elif(exp >= 255):
        m.d.comb += result.eq(Cat(Signal(7), Signal(8, init=255), sign))
    with m.Else():
        m.d.comb += result.eq(Cat(frac, exp[:8], sign))
    return result


def bf16_mul_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy golden model of :func:`bf16_mul` on raw uint16 bit patterns."""
    a = np.asarray(a, dtype=np.uint32)
    b = np.asarray(b, dtype=np.uint32)

    def to_f32(x):
        e = (x >> 7) & 0xFF
        x = np.where(e == 0, x & 0x8000, x)  # flush subnormal inputs
        return (x << 16).view(np.float32)

    with np.errstate(all="ignore"):
        p = (to_f32(a) * to_f32(b)).astype(np.float32)  # exact: 8x8-bit significands
    bits = p.view(np.uint32)
    lsb = (bits >> 16) & 1
    r = ((bits + 0x7FFF + lsb) >> 16).astype(np.uint32)  # RNE to bf16
    sign = ((a ^ b) >> 15) & 1
    e = (r >> 7) & 0xFF
    r = np.where(e == 0, sign << 15, r)  # flush subnormal / underflowed results
    r = np.where(np.isnan(p), 0x7FC0, r)
    return r.astype(np.uint16)


@dataclass(frozen=True)
class ReferenceBlock:
    """A reference block: builder, operand width, and published 45 nm energy (pJ) / area (µm²)."""

    name: str
    build: Callable[[], wiring.Component]
    width: int
    published_pj: float | None
    published_um2: float | None
    source: str = "Horowitz, ISSCC 2014, 45 nm"
    operands: str = "uniform"  # "uniform" random bit patterns, or "bf16" random normal bf16 values

    def verilog(self) -> str:
        return verilog.convert(self.build(), name=f"ref_{self.name}")

    @property
    def top(self) -> str:
        return f"ref_{self.name}"

    def random_operands(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.operands == "bf16":
            x = rng.standard_normal((2, n)).astype(np.float32)
            bits = (x.view(np.uint32) >> 16).astype(np.int64)
            return bits[0], bits[1]
        hi = 1 << self.width
        return rng.integers(0, hi, n), rng.integers(0, hi, n)

    def program(self, a: np.ndarray, b: np.ndarray) -> StreamProgram:
        payload = pack_fields([(np.asarray(a), self.width), (np.asarray(b), self.width)])
        return StreamProgram(inputs={"i": payload}, outputs={"o": len(a)})


REFERENCE_BLOCKS: dict[str, ReferenceBlock] = {
    "add8": ReferenceBlock("add8", lambda: BinaryOpBlock(8, 8, lambda m, a, b: a + b), 8, 0.03, 36.0),
    "mul8": ReferenceBlock("mul8", lambda: BinaryOpBlock(8, 16, lambda m, a, b: a * b), 8, 0.2, 282.0),
    "add32": ReferenceBlock("add32", lambda: BinaryOpBlock(32, 32, lambda m, a, b: a + b), 32, 0.1, 137.0),
    "bf16mul": ReferenceBlock(
        "bf16mul",
        lambda: BinaryOpBlock(16, 16, bf16_mul),
        16,
        1.1,
        1640.0,
        source="Horowitz, ISSCC 2014, 45 nm (16-bit FP multiply)",
        operands="bf16",
    ),
}
