"""Systolic cell: the registers and forwarding around one PE datapath, for either dataflow.

A *datapath* is any combinational component with the signature
``{"a": In(a_shape), "w": In(w_shape), "acc_in": In(acc_shape), "acc_out": Out(acc_shape)}``
computing ``acc_out = acc_in (+) a (x) w`` (integer MAC, floating-point FMA, ...). Its parameters
object provides ``a_shape``, ``w_shape``, ``acc_shape``, ``dataflow`` and ``datapath()``. The
all-zero bit pattern of ``acc_shape`` is the empty accumulator (integer 0, floating-point +0).
The cell adds what the dataflow needs, so every datapath serves both dataflows unchanged.
"""

from __future__ import annotations

from typing import Protocol

from amaranth import Module, Mux, ShapeLike, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

# Control token that travels with each operand through the array.
Token = data.StructLayout({"valid": 1, "first": 1, "last": 1})


class DatapathParams(Protocol):
    a_shape: ShapeLike
    w_shape: ShapeLike
    acc_shape: ShapeLike
    dataflow: str

    def datapath(self) -> wiring.Component: ...


class OutputStationaryCell(wiring.Component):
    """Output-stationary PE cell: accumulates ``a (x) w`` in place; results drain up the column.

    Ports (all registered outputs, one cycle per hop):

    * ``a_in/a_out`` (to the right), ``w_in/w_out`` (downwards), ``tok_in/tok_out`` (control
      token ``valid/first/last``, travelling with ``a``).
    * ``drain_in`` (from the cell below), ``drain_out`` (to the cell above), ``capture``.

    Timing: on a valid token the accumulator becomes ``datapath(first ? 0 : acc, a, w)``; on a
    ``last`` token that value is also held in ``result``. When ``capture`` is high the drain
    register loads ``result``; otherwise it shifts ``drain_in`` up. Three ``acc`` registers per
    cell (accumulator, result hold, drain) let the next tile accumulate while the last one drains.
    """

    def __init__(self, params: DatapathParams):
        self.params = params
        super().__init__(
            {
                "a_in": In(params.a_shape),
                "a_out": Out(params.a_shape),
                "w_in": In(params.w_shape),
                "w_out": Out(params.w_shape),
                "tok_in": In(Token),
                "tok_out": Out(Token),
                "drain_in": In(params.acc_shape),
                "drain_out": Out(params.acc_shape),
                "capture": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = self.params.datapath()
        acc = Signal(self.params.acc_shape)
        result = Signal(self.params.acc_shape)
        m.d.sync += [self.a_out.eq(self.a_in), self.w_out.eq(self.w_in), self.tok_out.eq(self.tok_in)]
        m.d.comb += [
            dp.a.eq(self.a_in),
            dp.w.eq(self.w_in),
            dp.acc_in.eq(Mux(self.tok_in.first, 0, Value.cast(acc))),
        ]
        with m.If(self.tok_in.valid):
            m.d.sync += acc.eq(dp.acc_out)
            with m.If(self.tok_in.last):
                m.d.sync += result.eq(dp.acc_out)
        m.d.sync += self.drain_out.eq(Mux(self.capture, Value.cast(result), Value.cast(self.drain_in)))
        return m


class WeightStationaryCell(wiring.Component):
    """Weight-stationary PE cell: holds a weight; partial sums flow down through it.

    Ports (registered outputs, one cycle per hop):

    * ``a_in/a_out`` and ``tok_in/tok_out`` travel to the right.
    * ``psum_in`` (from above), ``psum_out`` (downwards): ``datapath(psum_in, a, weight)``.
    * ``load_in/load_out``: the weight shadow register chain (downwards), shifted when ``load``.

    Timing: a token with ``first`` set uses (and commits to ``active``) the shadow weight, so the
    next tile's weights can be shifted into the shadow chain while the current tile computes.
    """

    def __init__(self, params: DatapathParams):
        self.params = params
        super().__init__(
            {
                "a_in": In(params.a_shape),
                "a_out": Out(params.a_shape),
                "tok_in": In(Token),
                "tok_out": Out(Token),
                "psum_in": In(params.acc_shape),
                "psum_out": Out(params.acc_shape),
                "load_in": In(params.w_shape),
                "load_out": Out(params.w_shape),
                "load": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = self.params.datapath()
        active = Signal(self.params.w_shape)
        weight = Mux(self.tok_in.first, Value.cast(self.load_out), Value.cast(active))
        m.d.sync += [self.a_out.eq(self.a_in), self.tok_out.eq(self.tok_in)]
        with m.If(self.load):
            m.d.sync += self.load_out.eq(self.load_in)
        m.d.comb += [dp.a.eq(self.a_in), dp.w.eq(weight), dp.acc_in.eq(self.psum_in)]
        with m.If(self.tok_in.valid):
            m.d.sync += self.psum_out.eq(dp.acc_out)
            with m.If(self.tok_in.first):
                m.d.sync += active.eq(self.load_out)
        return m
