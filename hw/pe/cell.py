"""Systolic cell: the registers and forwarding around one PE datapath, for either dataflow.

A *datapath* is any combinational component with the signature
``{"a": In(a_shape), "w": In(w_shape), "acc_in": In(acc_shape), "acc_out": Out(acc_shape)}``
computing ``acc_out = acc_in (+) a (x) w`` (integer MAC, floating-point FMA, ...). Its parameters
object provides ``a_shape``, ``w_shape``, ``acc_shape``, ``dataflow`` and ``datapath()`` (and
``w_link_shape`` if weights travel encoded, :func:`~tpegen.hw.pe.datapath.w_link_shape`). The
all-zero bit pattern of ``acc_shape`` is the empty accumulator (integer 0, floating-point +0).
The cell adds what the dataflow needs, so every datapath serves both dataflows unchanged.

Output-stationary cells come in two register budgets (the array's ``os_cell`` option):
:class:`OutputStationaryCell` (``three_register``: accumulator, result hold, drain) and
:class:`TwoRegisterOutputStationaryCell` (``two_register``: accumulator and drain, the drain
register double-buffering the accumulator as in Gemmini). Every cell also takes two lean options:

* ``reset_less``: the datapath registers (forwarded operands, accumulator, result, drain, partial
  sum, weights) have no reset; only the control token keeps one. Their contents are don't-care
  until a valid token writes them, so a reset value never reaches a result.
* ``operand_gating``: the forwarded operands (``a_out``, and ``w_out`` of an output-stationary
  cell) load only when the cell's token is valid and hold otherwise, so idle cycles do not toggle
  the operand wires (the consumer reads them only with the same beat's valid token).

A pipelined datapath (``pipeline_latency`` d > 0, e.g. an FMA PE with ``pipeline_stages: 2``)
accumulates a beat d cycles after its operands arrive: an output-stationary cell then acts on its
token delayed by d registers (``tok_pipe<n>``), while operands and token still move one cell per
cycle, so every accumulator, result and drain event of the cell happens d cycles later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth import Module, Mux, Signal, Value, ValueLike
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.arrays.systolic_params import pe_latency
from tpegen.hw.pe.datapath import w_link_shape

if TYPE_CHECKING:
    from tpegen.hw.arrays.systolic_params import DatapathParams

# Control token that travels with each operand through the array.
Token = data.StructLayout({"valid": 1, "first": 1, "last": 1})


def register_of(m: Module, port, *, reset_less: bool, name: str):
    """The register that drives output ``port``: ``port`` itself (with reset), or with
    ``reset_less`` a ``Signal(reset_less=True)`` named ``name`` driving ``port`` combinationally (a
    port cannot itself be reset-less)."""
    if not reset_less:
        return port
    reg = Signal(port.shape(), reset_less=True, name=name)
    m.d.comb += port.eq(reg)
    return reg


def _forward(m: Module, pairs, *, gate: ValueLike | None) -> None:
    """``reg <= value`` for each (reg, value) pair: every cycle, or only while ``gate`` if given."""
    if gate is None:
        m.d.sync += [reg.eq(value) for reg, value in pairs]
    else:
        with m.If(gate):
            m.d.sync += [reg.eq(value) for reg, value in pairs]


class OutputStationaryCell(wiring.Component):
    """Output-stationary PE cell (three ``acc`` registers): accumulates ``a (x) w`` in place; results
    drain up the column.

    Ports (all registered outputs, one cycle per hop):

    * ``a_in/a_out`` (to the right), ``w_in/w_out`` (downwards), ``tok_in/tok_out`` (control
      token ``valid/first/last``, travelling with ``a``).
    * ``drain_in`` (from the cell below), ``drain_out`` (to the cell above), ``capture``.

    Timing: on a valid token the accumulator becomes ``datapath(first ? 0 : acc, a, w)``; on a
    ``last`` token that value is also held in ``result``. When ``capture`` is high the drain
    register loads ``result``; otherwise it shifts ``drain_in`` up. Three ``acc`` registers per
    cell (accumulator, result hold, drain) let the next tile accumulate while the last one drains.

    Options (keyword, default off = the original cell): ``reset_less`` (datapath registers without
    reset) and ``operand_gating`` (``a_out``/``w_out`` hold unless the token is valid); see the
    module docstring.
    """

    def __init__(self, params: DatapathParams, *, reset_less: bool = False, operand_gating: bool = False):
        self.params = params
        self.reset_less = reset_less
        self.operand_gating = operand_gating
        super().__init__(self._ports(params) | {"capture": In(1)})

    @staticmethod
    def _ports(params: DatapathParams) -> dict:
        return {
            "a_in": In(params.a_shape),
            "a_out": Out(params.a_shape),
            "w_in": In(w_link_shape(params)),
            "w_out": Out(w_link_shape(params)),
            "tok_in": In(Token),
            "tok_out": Out(Token),
            "drain_in": In(params.acc_shape),
            "drain_out": Out(params.acc_shape),
        }

    def _operands(self, m: Module) -> None:
        """Register the forwarded operands (gated by the token with ``operand_gating``) and the token."""
        rl = self.reset_less
        a_out = register_of(m, self.a_out, reset_less=rl, name="a_reg")
        w_out = register_of(m, self.w_out, reset_less=rl, name="w_reg")
        pairs = [(a_out, self.a_in), (w_out, self.w_in)]
        if self.operand_gating:
            _forward(m, pairs, gate=self.tok_in.valid)
            m.d.sync += self.tok_out.eq(self.tok_in)
        else:  # the original cell's statement order (its Verilog is unchanged)
            m.d.sync += [*(reg.eq(value) for reg, value in pairs), self.tok_out.eq(self.tok_in)]

    def _accumulate_token(self, m: Module):
        """The token of the beat the datapath accumulates this cycle: ``tok_in`` delayed by the
        datapath's pipeline latency (``tok_in`` itself for a combinational datapath)."""
        tok = self.tok_in
        for n in range(pe_latency(self.params)):
            reg = Signal(Token, name=f"tok_pipe{n}")
            m.d.sync += reg.eq(tok)
            tok = reg
        return tok

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = self.params.datapath()
        acc = Signal(self.params.acc_shape, reset_less=self.reset_less)
        result = Signal(self.params.acc_shape, reset_less=self.reset_less)
        self._operands(m)
        tok = self._accumulate_token(m)
        m.d.comb += [
            dp.a.eq(self.a_in),
            dp.w.eq(self.w_in),
            dp.acc_in.eq(Mux(tok.first, 0, Value.cast(acc))),
        ]
        with m.If(tok.valid):
            m.d.sync += acc.eq(dp.acc_out)
            with m.If(tok.last):
                m.d.sync += result.eq(dp.acc_out)
        drain = register_of(m, self.drain_out, reset_less=self.reset_less, name="drain_reg")
        m.d.sync += drain.eq(Mux(self.capture, Value.cast(result), Value.cast(self.drain_in)))
        return m


class TwoRegisterOutputStationaryCell(OutputStationaryCell):
    """Output-stationary PE cell with two ``acc`` registers: accumulator and drain (double buffer).

    Ports: as :class:`OutputStationaryCell`, with ``shift`` instead of ``capture``.

    Timing: on a valid token the accumulator becomes ``datapath(first ? 0 : acc, a, w)``; on a
    valid ``last`` token that value is copied straight into the drain register (the cell's own end
    of the tile, one cycle later in each row below). Otherwise, while ``shift`` is high, the drain
    register loads ``drain_in`` (the column moves up one row), and else it holds. There is no
    result hold: the array must not let a cell copy its next tile in before its column has shifted
    the previous results out (:class:`~tpegen.hw.arrays.systolic.SystolicArray` spaces ``last``
    beats by ``2 rows - 1`` cycles for this cell).
    """

    def __init__(self, params: DatapathParams, *, reset_less: bool = False, operand_gating: bool = False):
        self.params = params
        self.reset_less = reset_less
        self.operand_gating = operand_gating
        wiring.Component.__init__(self, self._ports(params) | {"shift": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = self.params.datapath()
        acc = Signal(self.params.acc_shape, reset_less=self.reset_less)
        self._operands(m)
        tok = self._accumulate_token(m)
        m.d.comb += [
            dp.a.eq(self.a_in),
            dp.w.eq(self.w_in),
            dp.acc_in.eq(Mux(tok.first, 0, Value.cast(acc))),
        ]
        drain = register_of(m, self.drain_out, reset_less=self.reset_less, name="drain_reg")
        with m.If(tok.valid):
            m.d.sync += acc.eq(dp.acc_out)
        with m.If(tok.valid & tok.last):
            m.d.sync += drain.eq(dp.acc_out)
        with m.Elif(self.shift):
            m.d.sync += drain.eq(self.drain_in)
        return m


class WeightStationaryCell(wiring.Component):
    """Weight-stationary PE cell: holds a weight; partial sums flow down through it.

    Ports (registered outputs, one cycle per hop):

    * ``a_in/a_out`` and ``tok_in/tok_out`` travel to the right.
    * ``psum_in`` (from above), ``psum_out`` (downwards): ``datapath(psum_in, a, weight)``.
    * ``load_in/load_out``: the weight shadow register chain (downwards), shifted when ``load``.

    Timing: a token with ``first`` set uses (and commits to ``active``) the shadow weight, so the
    next tile's weights can be shifted into the shadow chain while the current tile computes.

    Options (keyword, default off): ``reset_less`` (``a_out``, ``psum_out``, the shadow and the
    active weight have no reset) and ``operand_gating`` (``a_out`` holds unless the token is
    valid); see the module docstring.
    """

    def __init__(self, params: DatapathParams, *, reset_less: bool = False, operand_gating: bool = False):
        self.params = params
        self.reset_less = reset_less
        self.operand_gating = operand_gating
        super().__init__(
            {
                "a_in": In(params.a_shape),
                "a_out": Out(params.a_shape),
                "tok_in": In(Token),
                "tok_out": Out(Token),
                "psum_in": In(params.acc_shape),
                "psum_out": Out(params.acc_shape),
                "load_in": In(w_link_shape(params)),
                "load_out": Out(w_link_shape(params)),
                "load": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.datapath = dp = self.params.datapath()
        rl = self.reset_less
        active = Signal(w_link_shape(self.params), reset_less=rl)
        load_out = register_of(m, self.load_out, reset_less=rl, name="load_reg")
        psum_out = register_of(m, self.psum_out, reset_less=rl, name="psum_reg")
        a_out = register_of(m, self.a_out, reset_less=rl, name="a_reg")
        weight = Mux(self.tok_in.first, Value.cast(self.load_out), Value.cast(active))
        if self.operand_gating:
            _forward(m, [(a_out, self.a_in)], gate=self.tok_in.valid)
            m.d.sync += self.tok_out.eq(self.tok_in)
        else:  # the original cell's statement order (its Verilog is unchanged)
            m.d.sync += [a_out.eq(self.a_in), self.tok_out.eq(self.tok_in)]
        with m.If(self.load):
            m.d.sync += load_out.eq(self.load_in)
        m.d.comb += [dp.a.eq(self.a_in), dp.w.eq(weight), dp.acc_in.eq(self.psum_in)]
        with m.If(self.tok_in.valid):
            m.d.sync += psum_out.eq(dp.acc_out)
            with m.If(self.tok_in.first):
                m.d.sync += active.eq(self.load_out)
        return m
