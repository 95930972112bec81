"""Parameters of the LUT tensor core (:class:`~tpegen.hw.arrays.lut_core.LutCore`).

A pure, validated dataclass with the derived widths the generator, the numeric and timing models
(:mod:`tpegen.sim.lut`) and the driver (:mod:`tpegen.sw.lut`) share. It lives in ``hw/`` because
the generator needs it and ``hw/`` imports nothing from ``sim/``; :mod:`tpegen.sim.lut`
re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

__all__ = ["ACT_BITS_CHOICES", "MAX_ACC_BITS", "MAX_GROUP_SIZE", "MAX_TABLE_BITS", "LutCoreParams"]

ACT_BITS_CHOICES = (8, 16)
MAX_GROUP_SIZE = 6
MAX_ACC_BITS = 60
MAX_TABLE_BITS = 32


def _signed_bits(magnitude: int) -> int:
    """Smallest two's-complement width holding every integer in ``[-magnitude, magnitude]``."""
    return max(1, int(magnitude).bit_length() + 1)


@dataclass(frozen=True)
class LutCoreParams:
    """Parameters of the LUT tensor core (YAML names in brackets).

    * ``group_size`` [``pe.group_size``] g in 1..6: activations per table; ``2^(g-1)`` stored entries.
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
    """

    group_size: int = 4
    act_bits: int = 8
    weight_bits: int = 4
    ternary: bool = False
    table_bits: int | None = None
    acc_bits: int = 32
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

    # derived quantities ---------------------------------------------------------------------
    @property
    def planes(self) -> int:
        """Bit planes processed per activation beat (one per cycle)."""
        return self.weight_bits

    @property
    def entries(self) -> int:
        """Stored table entries per group, ``2^(g-1)``."""
        return 1 << (self.group_size - 1)

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
    def result_payload_bits(self) -> int:
        """Width of a ``results`` beat: ``tile_m * tile_n`` results of ``acc_bits``."""
        return self.tile_m * self.tile_n * self.acc_bits

    def weight_range(self) -> tuple[int, int]:
        """Inclusive range of the integer weights (W1: the values are exactly -1 and +1)."""
        if self.ternary or self.weight_bits == 1:
            return -1, 1
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1
