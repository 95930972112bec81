"""Parameters of the bit-serial tile (:class:`~tpegen.hw.arrays.bitserial.BitSerialTile`), family ``bitserial``.

The tile is the "bit-slice" tensor engine of Wu et al., "Exploring the Performance Improvement of
Tensor Processing Engines through Transformation in the Bit-weight Dimension of MACs" (HPCA 2025,
arXiv 2503.06342, OPT3/OPT4): each weight is recoded into radix-4 digits (EN-T or modified Booth,
:mod:`tpegen.hw.pe.radix4`) and a PE adds one non-zero digit's partial product per cycle, skipping
the zero digits. Its operands and accumulator reuse the integer MAC PE's rules
(:class:`~tpegen.hw.pe.mac_params.MacPEParams`: widths 2..16, signedness, ``acc_bits`` >=
``act_bits + weight_bits``, two's-complement wrap); its streams are the dot-product tile's with
``tile_k = 1`` (one K step per activation beat), so the same driver tiling applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tpegen.errors import check_choice, check_int
from tpegen.hw.pe.mac_params import IntegerOperands, radix4_digits

if TYPE_CHECKING:
    pass

__all__ = ["ENCODINGS", "BitSerialParams"]

ENCODINGS = ("en_t", "booth_r4")  # the first is the default


@dataclass(frozen=True)
class BitSerialParams(IntegerOperands):
    """Parameters of a bit-serial tile (YAML names in brackets; ``pe:`` and ``array:`` sections).

    * ``act_bits``, ``weight_bits`` [``pe.*``]: operand widths 2..16; ``act_signed``,
      ``weight_signed`` [``pe.*``]: two's complement (True) or unsigned; ``acc_bits`` [``pe.*``]:
      accumulator and result width, ``act_bits + weight_bits``..64, wraps in two's complement.
    * ``encoding`` [``pe.encoding``]: the weight's radix-4 digits, ``en_t`` (EN-T, Wu et al.
      ICCD 2024; default) or ``booth_r4`` (modified Booth); :attr:`digits` digits per weight.
    * ``tile_m`` [``array.tile_m``] 1..64 activation rows, ``tile_n`` [``array.tile_n``] 1..64
      weight columns: ``tile_m x tile_n`` PEs, one output each.
    """

    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    weight_signed: bool = True
    acc_bits: int = 32
    encoding: str = ENCODINGS[0]
    tile_m: int = field(default=4, metadata={"section": "array"})
    tile_n: int = field(default=4, metadata={"section": "array"})

    def __post_init__(self) -> None:
        self.mac  # noqa: B018 -- validates the operand and accumulator fields (MacPEParams' rules)
        check_choice("pe.encoding", self.encoding, ENCODINGS)
        check_int("array.tile_m", self.tile_m, 1, 64)
        check_int("array.tile_n", self.tile_n, 1, 64)

    @property
    def digits(self) -> int:
        """Radix-4 digits per weight (:func:`~tpegen.hw.pe.mac_params.radix4_digits`; 4 at int8)."""
        return radix4_digits(self.weight_bits, self.weight_signed)

    @property
    def pes(self) -> int:
        """PEs in the tile, ``tile_m * tile_n`` (one MAC per PE per K step)."""
        return self.tile_m * self.tile_n

    # -- the dot-product tile's stream geometry (sim/dot_tile.py's plan and decoder read these) --
    @property
    def tile_k(self) -> int:
        """K elements per activation beat: 1 (one K step per beat)."""
        return 1

    @property
    def weight_payload_bits(self) -> int:
        """Width of a ``weights`` beat: ``tile_n`` weights of ``weight_bits`` (one K row)."""
        return self.tile_n * self.weight_bits

    @property
    def act_payload_bits(self) -> int:
        """Width of an ``acts`` beat: ``tile_m`` activations, then ``last``, ``wlast``."""
        return self.tile_m * self.act_bits + 2

    @property
    def result_payload_bits(self) -> int:
        """Width of a ``results`` beat: ``tile_m * tile_n`` accumulators of ``acc_bits``."""
        return self.pes * self.acc_bits
