"""Integer multiply-accumulate datapath: the PE arithmetic of the TPU/Gemmini-style baseline."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

DATAFLOWS = ("os", "ws")


@dataclass(frozen=True)
class MacPEParams:
    """Parameters of an integer MAC processing element.

    Parameters
    ----------
    act_bits, weight_bits : operand widths, 2..16 bits each.
    act_signed, weight_signed : two's-complement (True) or unsigned (False) operands.
    acc_bits : accumulator width, ``act_bits + weight_bits``..64. Sums wrap modulo ``2**acc_bits``
        (two's complement); the product itself is always exact.
    dataflow : ``"os"`` (output-stationary: the PE keeps its accumulator) or ``"ws"``
        (weight-stationary: the PE keeps a weight, partial sums flow through it).
    """

    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    weight_signed: bool = True
    acc_bits: int = 32
    dataflow: str = "os"

    kind = "mac"

    def __post_init__(self) -> None:
        check_int("pe.act_bits", self.act_bits, 2, 16)
        check_int("pe.weight_bits", self.weight_bits, 2, 16)
        check_bool("pe.act_signed", self.act_signed)
        check_bool("pe.weight_signed", self.weight_signed)
        check_int("pe.acc_bits", self.acc_bits, 2, 64)
        if self.acc_bits < self.act_bits + self.weight_bits:
            raise ConfigError(
                "pe.acc_bits",
                f"an integer in {self.act_bits + self.weight_bits}..64 "
                "(at least act_bits + weight_bits, so one product fits)",
                self.acc_bits,
            )
        check_choice("pe.dataflow", self.dataflow, DATAFLOWS)

    @property
    def a_shape(self) -> Shape:
        return signed(self.act_bits) if self.act_signed else unsigned(self.act_bits)

    @property
    def w_shape(self) -> Shape:
        return signed(self.weight_bits) if self.weight_signed else unsigned(self.weight_bits)

    @property
    def acc_shape(self) -> Shape:
        return signed(self.acc_bits)

    def datapath(self) -> MacDatapath:
        return MacDatapath(self)


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
