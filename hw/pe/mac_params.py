"""Parameters of the integer MAC PE (the ``pe:`` section of a ``mac`` config), importable without
Amaranth: a config loads and the timing model runs on these numbers alone; the Amaranth shapes and
the datapath (:class:`tpegen.hw.pe.mac.MacDatapath`) are built on demand."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

if TYPE_CHECKING:
    from amaranth import Shape

    from tpegen.hw.pe.mac import MacDatapath

DATAFLOWS = ("os", "ws")
MULTIPLIERS = ("array", "booth_r4", "en_t")


@dataclass(frozen=True, repr=False)
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
    multiplier : how the PE forms ``a * w`` (:mod:`tpegen.hw.pe.radix4`); the product is exact in
        every case, so the numeric and timing models do not depend on it. ``"array"`` (default): the
        ``*`` operator, left to synthesis. ``"booth_r4"``: the weight recoded into modified (radix-4)
        Booth digits in {-2..2}. ``"en_t"``: the weight in EN-T digits (sign and magnitude, magnitude
        digits in {-1, 0, 1, 2}; Wu et al., ICCD 2024). Both select partial products +-a, +-2a per
        digit and sum them with the accumulator in an adder tree; the encoder sits in each PE.
    """

    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    weight_signed: bool = True
    acc_bits: int = 32
    dataflow: str = "os"
    multiplier: str = "array"

    kind = "mac"

    def __repr__(self) -> str:
        """The dataclass repr without ``multiplier`` when it is the default ``"array"``: the repr
        names the shared Verilog modules of an array (:func:`tpegen.hw.hierarchy.shared_module_name`),
        so designs that predate the field keep byte-identical Verilog."""
        shown = [f for f in dataclasses.fields(self) if f.name != "multiplier" or self.multiplier != "array"]
        return f"{type(self).__qualname__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

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
        check_choice("pe.multiplier", self.multiplier, MULTIPLIERS)

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


def radix4_digits(bits: int, signed: bool) -> int:
    """Radix-4 digits that represent every ``bits``-wide operand, in modified Booth or EN-T
    encoding: ``ceil(bits / 2)`` for a signed operand, ``bits // 2 + 1`` for an unsigned one (its
    top digit takes the carry out of the highest bit pair, e.g. 255 = 4**4 - 1)."""
    return (bits + 1) // 2 if signed else bits // 2 + 1


def _shape(bits: int, is_signed: bool) -> Shape:
    from amaranth import signed, unsigned

    return signed(bits) if is_signed else unsigned(bits)
