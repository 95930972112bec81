"""Parameters of the LUT tensor core (:class:`~tpegen.hw.arrays.lut_core.LutCore`).

A pure, validated dataclass with the derived widths the generator, the numeric and timing models
(:mod:`tpegen.sim.lut`) and the driver (:mod:`tpegen.sw.lut`) share. It lives in ``hw/`` because
the generator needs it and ``hw/`` imports nothing from ``sim/``; :mod:`tpegen.sim.lut`
re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

__all__ = [
    "ACT_BITS_CHOICES",
    "INDEX_COMPLEMENT_CHOICES",
    "MAX_ACC_BITS",
    "MAX_GROUP_SIZE",
    "MAX_TABLE_BITS",
    "PRECOMPUTE_CHOICES",
    "TABLE_CHOICES",
    "VARIANT_FIELDS",
    "LutCoreParams",
]

ACT_BITS_CHOICES = (8, 16)
MAX_GROUP_SIZE = 6
MAX_ACC_BITS = 60
MAX_TABLE_BITS = 32
# Table design choices (LUT Tensor Core's ablation); the first of each is the default.
TABLE_CHOICES = ("half", "full")
INDEX_COMPLEMENT_CHOICES = ("offline", "in_core")
PRECOMPUTE_CHOICES = ("in_core", "external")
VARIANT_FIELDS = ("table", "index_complement", "precompute")


def _signed_bits(magnitude: int) -> int:
    """Smallest two's-complement width holding every integer in ``[-magnitude, magnitude]``."""
    return max(1, int(magnitude).bit_length() + 1)


@dataclass(frozen=True)
class LutCoreParams:
    """Parameters of the LUT tensor core (YAML names in brackets).

    * ``group_size`` [``pe.group_size``] g in 1..6: activations per table.
    * ``act_bits`` [``pe.act_bits``]: signed activation width, 8 or 16.
    * ``weight_bits`` [``pe.weight_bits``] b in 1..4: bit planes (= cycles per activation beat).
      b = 1 is binary {-1, +1}; b >= 2 is signed ``[-2^(b-1), 2^(b-1)-1]``.
    * ``ternary`` [``pe.ternary``]: weights in {-1, 0, +1}; requires ``weight_bits == 2``.
    * ``table_bits`` [``pe.table_bits``]: table-entry width; default (None) and minimum
      ``act_bits + floor(log2 g) + 1`` so that no entry overflows.
    * ``acc_bits`` [``pe.acc_bits``]: result width (default 32, at most 60); the minimum holds one
      K-tile's worst-case result, across K-tiles the accumulator wraps in two's complement.
    * ``tile_m`` / ``tile_n`` [``array.tile_m`` / ``array.tile_n``]: activation rows (tables) and
      weight columns of a tile; ``tile_k`` [``array.tile_k``]: groups per tile (K-tile =
      ``tile_k * g`` elements).

    Table design choices (the steps of LUT Tensor Core's ablation; the defaults are the optimized
    core, and any other value is a separate design with the same ports' timing):

    * ``table`` [``pe.table``]: ``"half"`` (default) stores ``2^(g-1)`` entries and the index's sign
      bit selects negation (symmetrization); ``"full"`` stores all ``2^g`` entries, indexed by the
      raw g-bit plane index, no negation.
    * ``index_complement`` [``pe.index_complement``]: with half tables, ``"offline"`` (default): the
      driver complements the low ``g-1`` index bits when the sign bit is 0; ``"in_core"``: the driver
      sends raw plane bits and every lookup XORs them with the inverted sign bit. With full tables
      only ``"offline"`` (nothing is complemented) is accepted.
    * ``precompute`` [``pe.precompute``]: ``"in_core"`` (default): table-precompute units build the
      tables from an ``acts`` stream; ``"external"``: the driver builds them in software and sends
      them (with the row sums) on a ``tables`` stream instead (:attr:`input_port`).
    """

    group_size: int = 4
    act_bits: int = 8
    weight_bits: int = 4
    ternary: bool = False
    table_bits: int | None = None
    acc_bits: int = 32
    table: str = "half"
    index_complement: str = "offline"
    precompute: str = "in_core"
    tile_m: int = field(default=2, metadata={"section": "array"})
    tile_n: int = field(default=64, metadata={"section": "array"})
    tile_k: int = field(default=4, metadata={"section": "array"})

    def __post_init__(self) -> None:
        check_int("pe.group_size", self.group_size, 1, MAX_GROUP_SIZE)
        check_choice("pe.act_bits", self.act_bits, ACT_BITS_CHOICES)
        check_int("pe.weight_bits", self.weight_bits, 1, 4)
        check_bool("pe.ternary", self.ternary)
        if self.ternary and self.weight_bits != 2:
            raise ConfigError(
                "pe.weight_bits", "2 when pe.ternary is true (two +-1 bit planes)", self.weight_bits
            )
        check_int("array.tile_m", self.tile_m, 1, 64)
        check_int("array.tile_n", self.tile_n, 1, 1024)
        check_int("array.tile_k", self.tile_k, 1, 64)
        if self.table_bits is None:
            object.__setattr__(self, "table_bits", self.min_table_bits)
        check_int("pe.table_bits", self.table_bits, self.min_table_bits, MAX_TABLE_BITS)
        check_int("pe.acc_bits", self.acc_bits, self.min_acc_bits, MAX_ACC_BITS)
        check_choice("pe.table", self.table, TABLE_CHOICES)
        check_choice("pe.index_complement", self.index_complement, INDEX_COMPLEMENT_CHOICES)
        if self.full_table and self.index_complement != "offline":
            raise ConfigError(
                "pe.index_complement",
                "'offline' when pe.table is 'full' (a full table is indexed by the raw bits)",
                self.index_complement,
            )
        check_choice("pe.precompute", self.precompute, PRECOMPUTE_CHOICES)

    # derived quantities ---------------------------------------------------------------------
    @property
    def planes(self) -> int:
        """Bit planes processed per activation beat (one per cycle)."""
        return self.weight_bits

    @property
    def full_table(self) -> bool:
        """True when the tables hold all ``2^g`` entries (``table == "full"``)."""
        return self.table == "full"

    @property
    def offline_complement(self) -> bool:
        """True when the driver complements the low index bits (half tables, ``"offline"``)."""
        return not self.full_table and self.index_complement == "offline"

    @property
    def external_tables(self) -> bool:
        """True when the driver precomputes the tables (``precompute == "external"``)."""
        return self.precompute == "external"

    @property
    def input_port(self) -> str:
        """Name of the activation-side input stream: ``"acts"``, or ``"tables"`` (external precompute)."""
        return "tables" if self.external_tables else "acts"

    def require_default_variant(self, where: str) -> None:
        """Raise a :class:`ConfigError` naming the first table design choice (``pe.table``,
        ``pe.index_complement``, ``pe.precompute``) that is not the default; ``where`` ends the
        allowed-values text (e.g. ``"on the accelerator top (system:)"``)."""
        for name in VARIANT_FIELDS:
            default = self.__dataclass_fields__[name].default
            if getattr(self, name) != default:
                raise ConfigError(f"pe.{name}", f"{default!r} {where}", getattr(self, name))

    @property
    def entries(self) -> int:
        """Stored table entries per group: ``2^(g-1)`` (half tables) or ``2^g`` (full tables)."""
        return 1 << (self.group_size - (0 if self.full_table else 1))

    @property
    def k_tile(self) -> int:
        """K elements per tile, ``tile_k * group_size``."""
        return self.tile_k * self.group_size

    @property
    def corrected(self) -> bool:
        """True when the rowsum correction (and the final halving) applies (``weight_bits >= 2``)."""
        return self.weight_bits >= 2

    @property
    def acc_width(self) -> int:
        """Internal accumulator width: ``acc_bits + 1`` (LSB dropped by the halving) or ``acc_bits`` (W1)."""
        return self.acc_bits + (1 if self.corrected else 0)

    @property
    def min_table_bits(self) -> int:
        return _signed_bits(self.group_size << (self.act_bits - 1))

    @property
    def min_acc_bits(self) -> int:
        wmax = 1 if self.weight_bits == 1 else 1 << (self.weight_bits - 1)
        return _signed_bits(self.k_tile * (1 << (self.act_bits - 1)) * wmax)

    @property
    def weight_payload_bits(self) -> int:
        """Width of a ``weights`` beat: ``tile_n * tile_k`` encoded indices of ``g`` bits."""
        return self.tile_n * self.tile_k * self.group_size

    @property
    def act_payload_bits(self) -> int:
        """Width of an ``acts`` beat: ``tile_m * k_tile`` activations, then ``last``, ``wlast``."""
        return self.tile_m * self.k_tile * self.act_bits + 2

    @property
    def rowsum_bits(self) -> int:
        """Width of a row's activation sum over one K-tile (``tile_k * g`` activations)."""
        from tpegen.hw.pe.lut import rowsum_bits

        return rowsum_bits(self.group_size, self.act_bits, self.tile_k)

    @property
    def tables_payload_bits(self) -> int:
        """Width of a ``tables`` beat (external precompute): ``tile_m * tile_k`` tables of
        :attr:`entries` x ``table_bits``, the ``tile_m`` row sums of :attr:`rowsum_bits` when
        :attr:`corrected`, then ``last``, ``wlast``."""
        rowsums = self.tile_m * self.rowsum_bits if self.corrected else 0
        return self.tile_m * self.tile_k * self.entries * self.table_bits + rowsums + 2

    @property
    def input_payload_bits(self) -> int:
        """Width of a beat of :attr:`input_port`."""
        return self.tables_payload_bits if self.external_tables else self.act_payload_bits

    @property
    def result_payload_bits(self) -> int:
        """Width of a ``results`` beat: ``tile_m * tile_n`` results of ``acc_bits``."""
        return self.tile_m * self.tile_n * self.acc_bits

    def weight_range(self) -> tuple[int, int]:
        """Inclusive range of the integer weights (W1: the values are exactly -1 and +1)."""
        if self.ternary or self.weight_bits == 1:
            return -1, 1
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1
