"""Integer multiply-accumulate datapath: the PE arithmetic of the TPU/Gemmini-style baseline."""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.pe.mac_params import MacPEParams


class MacDatapath(wiring.Component):
    """Combinational integer multiply-add: ``acc_out = wrap(acc_in + a * w, acc_bits)``.

    Ports: ``a`` (act operand), ``w`` (weight operand), ``acc_in`` / ``acc_out`` (signed
    ``acc_bits``). Latency: combinational; the enclosing cell registers the result.
    The product ``a * w`` is exact (``act_bits + weight_bits`` wide); only the sum wraps.
    """

    def __init__(self, params: MacPEParams):
        self.params = params
        super().__init__(
            {
                "a": In(params.a_shape),
                "w": In(params.w_shape),
                "acc_in": In(params.acc_shape),
                "acc_out": Out(params.acc_shape),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.acc_out.eq(self.acc_in + self.a * self.w)
        return m
