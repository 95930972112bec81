"""Parameters of the integer MAC PE (the ``pe:`` section of a ``mac`` config), importable without
Amaranth: a config loads and the timing model runs on these numbers alone; the Amaranth shapes and
the datapath (:class:`tpegen.hw.pe.mac.MacDatapath`) are built on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

if TYPE_CHECKING:
    from amaranth import Shape

    from tpegen.hw.pe.mac import MacDatapath

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
        return _shape(self.act_bits, self.act_signed)

    @property
    def w_shape(self) -> Shape:
        return _shape(self.weight_bits, self.weight_signed)

    @property
    def acc_shape(self) -> Shape:
        return _shape(self.acc_bits, True)

    def datapath(self) -> MacDatapath:
        from tpegen.hw.pe.mac import MacDatapath

        return MacDatapath(self)


def _shape(bits: int, is_signed: bool) -> Shape:
    from amaranth import signed, unsigned

    return signed(bits) if is_signed else unsigned(bits)
