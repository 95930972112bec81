"""Delay lines for an array's skew and de-skew, built from shared power-of-two blocks.

Lane i of an R-lane skew is delayed i cycles, so the skews of an R x C array hold O(R^2 + C^2)
registers. Written register by register they dominate the Verilog of a large array; written
hierarchically (:mod:`tpegen.hw.hierarchy`) a delay of d cycles is a chain of the blocks of d's
binary digits, and a block of 2^k cycles is two blocks of 2^(k-1): O(log R) distinct modules and
O(R log R) instances per skew, for exactly the same registers.
"""

from __future__ import annotations

from amaranth import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.hierarchy import binary_blocks, shared_submodule


class DelayLine(wiring.Component):
    """``depth`` registers in a chain (``depth`` a power of two): ``o`` is ``i`` delayed ``depth``
    cycles.

    Ports: ``en`` (only if ``gated``: every register loads only while high, the array's advance),
    ``i``, ``o`` (of ``shape``). Latency ``depth`` cycles, one value per cycle.

    Parameters: ``shape`` of the value, ``depth`` (a power of two), ``reset_less`` (registers
    without reset), ``name`` of the registers (e.g. ``skew_a``), ``gated``.
    """

    def __init__(self, shape, depth: int, *, reset_less: bool, name: str, gated: bool):
        if depth < 1 or depth & (depth - 1):
            raise ValueError(f"DelayLine depth must be a power of two, not {depth}")
        self.shape, self.depth, self.reset_less, self.name, self.gated = shape, depth, reset_less, name, gated
        super().__init__({"i": In(shape), "o": Out(shape)} | ({"en": In(1)} if gated else {}))

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.depth == 1:
            reg = Signal.like(self.o, name=self.name, reset_less=self.reset_less)
            if self.gated:
                with m.If(self.en):
                    m.d.sync += reg.eq(self.i)
            else:
                m.d.sync += reg.eq(self.i)
            m.d.comb += self.o.eq(reg)
        else:  # two halves
            late = delayed(m, self.i, self.depth // 2, name="first", registers=self.name, **self._opts())
            m.d.comb += self.o.eq(
                delayed(m, late, self.depth // 2, name="second", registers=self.name, **self._opts())
            )
        return m

    def _opts(self) -> dict:
        return {"reset_less": self.reset_less, "enable": self.en if self.gated else None}


def delayed(
    m: Module, value, depth: int, *, name: str, registers: str, reset_less: bool, enable: Value | None
):
    """``value`` delayed ``depth`` cycles by :class:`DelayLine` blocks added to ``m`` as
    ``<name>_<k>`` (the block of 2^k cycles for each binary digit k of ``depth``, largest first);
    their registers are named ``registers`` and load while ``enable`` (every cycle if None)."""
    shape, gated = value.shape(), enable is not None
    for size in binary_blocks(depth):
        block = shared_submodule(
            m,
            f"{name}_{size.bit_length() - 1}",
            lambda size=size: DelayLine(shape, size, reset_less=reset_less, name=registers, gated=gated),
            kind=f"delay_{registers}",
            key=(repr(shape), size, reset_less, gated),
            enable=None,
        )
        m.d.comb += block.i.eq(value)
        if gated:
            m.d.comb += block.en.eq(enable)
        value = block.o
    return value
