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
    from amaranth.lib import data

    from tpegen.hw.pe.carry_save import CarryPropagateAdder
    from tpegen.hw.pe.datapath import Datapath
    from tpegen.hw.pe.radix4 import SharedEncoder

DATAFLOWS = ("os", "ws")
MULTIPLIERS = ("array", "booth_r4", "en_t")
ACCUMULATIONS = ("binary", "carry_save")
ENCODERS = ("per_pe", "per_row", "per_column")  # where a recoded multiplier's encoder sits (pe.encoder)
# Fields left out of the repr at their default (the first value): designs from before they existed
# keep the repr, which names their shared Verilog modules.
_REPR_DEFAULTS = {"multiplier": MULTIPLIERS[0], "accumulation": ACCUMULATIONS[0], "encoder": ENCODERS[0]}


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
        ``*`` operator, left to synthesis (an explicit AND array with carry-save accumulation).
        ``"booth_r4"``: the weight recoded into modified (radix-4) Booth digits in {-2..2}.
        ``"en_t"``: the weight in EN-T digits (sign and magnitude, magnitude digits in {-1, 0, 1, 2};
        Wu et al., ICCD 2024). Both select partial products +-a, +-2a per digit and sum them with
        the accumulator in an adder tree (a compressor tree with carry-save accumulation); where
        the encoder sits is ``encoder``.
    accumulation : how the PE keeps its running sum (:mod:`tpegen.hw.pe.carry_save`). ``"binary"``
        (default): one ``acc_bits`` word, a carry-propagate add in every PE every cycle.
        ``"carry_save"`` (compressed accumulation, Wu et al., HPCA 2025, OPT1): a (sum, carry) pair
        of ``acc_bits`` words (:attr:`acc_shape`) that a compressor tree of 3:2 carry-save adders
        updates with the multiplier's partial products, and one carry-propagate adder per column at
        the systolic array's edge (:meth:`normalizer`) turns into the result (:attr:`out_shape`),
        combinationally: same results and cycles. It applies to the systolic arrays (``pe.type
        mac``, both dataflows) only; the other families reject ``pe.accumulation`` at config load.
    encoder : where the weight encoder of ``booth_r4`` / ``en_t`` sits (EN-T's encoder sharing,
        :class:`~tpegen.hw.pe.radix4.SharedEncoder`). ``"per_pe"`` (default): in every PE, the
        weight travels as its raw bits. ``"per_column"``: one encoder per column at the systolic
        array's top edge, where the weight enters in both dataflows; the weight travels down the
        column (output-stationary: through the skew and forwarding registers; weight-stationary:
        through the load chain, and the PE holds it) in its link form (:attr:`w_link_shape`:
        Booth digits, ``3 D`` bits; EN-T codes and sign, ``2 D + 1`` bits) and each PE only decodes
        it and selects +-a, +-2a. The edge encoder is combinational and sits before the skew
        registers: results and cycles are unchanged. ``"per_row"`` (the encoded operand flowing
        along the rows) fits no shipped dataflow -- both send the weight down the columns -- and is
        rejected; a shared encoder needs ``booth_r4`` or ``en_t``.
    """

    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    weight_signed: bool = True
    acc_bits: int = 32
    dataflow: str = "os"
    multiplier: str = "array"
    accumulation: str = "binary"
    encoder: str = "per_pe"

    kind = "mac"

    def __repr__(self) -> str:
        """The dataclass repr without ``multiplier``, ``accumulation`` and ``encoder`` at their defaults: the repr
        names the shared Verilog modules of an array (:func:`tpegen.hw.hierarchy.shared_module_name`),
        so designs that predate the fields keep byte-identical Verilog."""
        shown = [
            f
            for f in dataclasses.fields(self)
            if f.name not in _REPR_DEFAULTS or getattr(self, f.name) != _REPR_DEFAULTS[f.name]
        ]
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
        check_choice("pe.accumulation", self.accumulation, ACCUMULATIONS)
        check_choice("pe.encoder", self.encoder, ENCODERS)
        if self.encoder != "per_pe" and self.multiplier == "array":
            raise ConfigError(
                "pe.encoder",
                "'per_pe' with pe.multiplier 'array' (a shared encoder needs pe.multiplier 'booth_r4' or 'en_t')",
                self.encoder,
            )
        if self.encoder == "per_row":
            raise ConfigError(
                "pe.encoder",
                f"'per_pe' or 'per_column' with pe.dataflow {self.dataflow!r} (the weight enters at the "
                "top edge and flows down the columns in every dataflow)",
                self.encoder,
            )

    @property
    def carry_save(self) -> bool:
        return self.accumulation == "carry_save"

    @property
    def shared_encoder(self) -> bool:
        """True when the weight is encoded at the array's edge (``encoder`` not ``per_pe``)."""
        return self.encoder != "per_pe"

    @property
    def w_link_shape(self) -> Shape | data.Layout:
        """The weight as it travels between PEs and enters the datapath: :attr:`w_shape`, or with a
        shared encoder its link form (:func:`~tpegen.hw.pe.radix4.link_layout`)."""
        if self.shared_encoder:
            from tpegen.hw.pe.radix4 import link_layout

            return link_layout(self.w_shape, self.multiplier)
        return self.w_shape

    def edge_encoder(self) -> SharedEncoder:
        """The array-edge encoder of a shared-encoder PE (weight -> :attr:`w_link_shape`)."""
        if not self.shared_encoder:
            raise ConfigError("pe.encoder", "'per_column' for an array-edge encoder", self.encoder)
        from tpegen.hw.pe.radix4 import SharedEncoder

        return SharedEncoder(self.w_shape, self.multiplier)

    @property
    def a_shape(self) -> Shape:
        return _shape(self.act_bits, self.act_signed)

    @property
    def w_shape(self) -> Shape:
        return _shape(self.weight_bits, self.weight_signed)

    @property
    def acc_shape(self) -> Shape | data.StructLayout:
        """What a PE keeps and passes on: the signed ``acc_bits`` accumulator, or with carry-save
        accumulation its (``sum``, ``carry``) pair (:func:`~tpegen.hw.pe.carry_save.pair_layout`)."""
        if self.carry_save:
            from tpegen.hw.pe.carry_save import pair_layout

            return pair_layout(self.acc_bits)
        return self.out_shape

    @property
    def out_shape(self) -> Shape:
        """One result: the signed ``acc_bits`` accumulator (what the array's edge emits)."""
        return _shape(self.acc_bits, True)

    def datapath(self) -> Datapath:
        """:class:`~tpegen.hw.pe.mac.MacDatapath`, or with carry-save accumulation
        :class:`~tpegen.hw.pe.carry_save.CarrySaveMacDatapath`."""
        if self.carry_save:
            from tpegen.hw.pe.carry_save import CarrySaveMacDatapath

            return CarrySaveMacDatapath(self)
        from tpegen.hw.pe.mac import MacDatapath

        return MacDatapath(self)

    def normalizer(self) -> CarryPropagateAdder:
        """The array-edge carry-propagate adder of a carry-save PE (pair -> result)."""
        if not self.carry_save:
            raise ConfigError("pe.accumulation", "'carry_save' for an array-edge adder", self.accumulation)
        from tpegen.hw.pe.carry_save import CarryPropagateAdder

        return CarryPropagateAdder(self.acc_bits)


def radix4_digits(bits: int, signed: bool) -> int:
    """Radix-4 digits that represent every ``bits``-wide operand, in modified Booth or EN-T
    encoding: ``ceil(bits / 2)`` for a signed operand, ``bits // 2 + 1`` for an unsigned one (its
    top digit takes the carry out of the highest bit pair, e.g. 255 = 4**4 - 1)."""
    return (bits + 1) // 2 if signed else bits // 2 + 1


def _shape(bits: int, is_signed: bool) -> Shape:
    from amaranth import signed, unsigned

    return signed(bits) if is_signed else unsigned(bits)


class IntegerOperands:
    """Mixin for the parameters of designs whose operands and accumulator follow the integer MAC PE's
    rules (fields ``act_bits``, ``weight_bits``, ``act_signed``, ``weight_signed``, ``acc_bits``): the
    :class:`MacPEParams` of them (which validates them) and its Amaranth shapes."""

    @property
    def mac(self) -> MacPEParams:
        """The integer MAC PE parameters of the operands and accumulator (its rules validate them)."""
        return MacPEParams(
            act_bits=self.act_bits,
            weight_bits=self.weight_bits,
            act_signed=self.act_signed,
            weight_signed=self.weight_signed,
            acc_bits=self.acc_bits,
        )

    @property
    def a_shape(self) -> Shape:
        return self.mac.a_shape

    @property
    def w_shape(self) -> Shape:
        return self.mac.w_shape

    @property
    def acc_shape(self) -> Shape:
        return self.mac.acc_shape
