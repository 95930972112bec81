"""Parameters of the dot-product tile family (:class:`~tpegen.hw.arrays.dot_tile.DotTile`).

The family covers three of the four tensor processing engine (TPE) organizations that Wu et al.
classify in "Exploring the Performance Improvement of Tensor Processing Engines through
Transformation in the Bit-weight Dimension of MACs" (HPCA 2025) -- systolic array, 3D-Cube,
multiplier-adder tree and 2D-Matrix; the systolic array is :mod:`tpegen.hw.arrays.systolic`.
All three are the same hardware idea: ``tile_m x tile_n`` dot-product units, each multiplying
``tile_k`` operand pairs per cycle and reducing them with an adder tree into one accumulator.
What differs between them in hardware is the *shape*, and with it the operand fan-out:

* ``matrix2d`` -- **2D-Matrix / dot-product tile** (NVIDIA tensor core; the MAC baseline of the
  LUT Tensor Core paper, ISCA 2025): a ``tile_m x tile_n`` grid of outputs (both >= 2). Activation
  lane ``(m, k)`` is broadcast along N to ``tile_n`` multipliers, weight lane ``(n, k)`` along M to
  ``tile_m`` multipliers. ``tile_k = 1`` is the broadcast outer-product array.
* ``addertree`` -- **multiplier-adder tree** (NVDLA's CMAC, DianNao's NFU): ``tile_n`` dot-product
  units of length ``tile_k`` sharing one activation vector, so ``tile_m`` must be 1; weights have
  no fan-out (each weight lane feeds exactly one multiplier).
* ``cube3d`` -- **3D-Cube** (the Cube unit of Huawei's Ascend/DaVinci core): an ``M x N x K`` cube of
  multipliers with reduction trees over K, all three extents >= 2. For a given shape it generates
  *exactly the same RTL as* ``matrix2d``: tpegen broadcasts operands into the cube, and the only
  difference between the two names is the shape class (a 2-D output grid with any K, versus a
  genuine three-dimensional block). The reference RTL published with the HPCA paper instead skews
  its cube inputs and pipelines operands through the cube; tpegen does not model that variant.

Operands and accumulator reuse the integer MAC PE's parameters (:class:`~tpegen.hw.pe.mac_params.MacPEParams`:
widths 2..16, signedness, ``acc_bits`` >= ``act_bits + weight_bits``, two's-complement wrap), validated
by building one. ``stages`` is the number of pipeline registers in the reduction tree; the
generator places them as evenly as it can over the ``depth + 2`` logic blocks between the operand
register and the accumulator (multipliers, ``depth = ceil(log2 tile_k)`` adder levels, accumulator
adder), so ``0 <= stages <= depth + 1``. Each stage adds one cycle of latency and none of throughput.

**Reduce by bit-weight first** (``reduction: bitweight``; Wu et al., HPCA 2025, OPT2): instead of
``tile_k`` multipliers whose products an adder tree sums, each weight is split into ``D`` digits
(``multiplier: array``: its bits, radix 2, ``D = weight_bits``; ``booth_r4`` / ``en_t``: radix-4
digits, :mod:`tpegen.hw.pe.radix4`), and the tree sums the *unshifted* partial products of equal
bit-weight across K first, ``S_j = sum_k pp_{k,j}`` (``D`` narrow column trees of the same depth and
with the same ``stages`` register levels), after which the last block shifts and adds the few
``S_j`` with the accumulator. The result is the same exact dot product, so the numeric and timing
models do not depend on it. It applies to all three organizations (they share the tile RTL).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from tpegen.errors import ConfigError, check_choice, check_int
from tpegen.hw.pe.mac_params import MULTIPLIERS, IntegerOperands

if TYPE_CHECKING:
    pass

__all__ = ["MAX_MULTIPLIERS", "ORGANIZATIONS", "REDUCTIONS", "DotTileParams"]

ORGANIZATIONS = ("matrix2d", "addertree", "cube3d")
REDUCTIONS = ("products", "bitweight")
# Fields left out of the repr at their default: designs from before they existed keep their repr.
_REPR_DEFAULTS = {"multiplier": MULTIPLIERS[0], "reduction": REDUCTIONS[0]}

# Multipliers in one tile (tile_m * tile_n * tile_k): 2^16 already is a 16x16x256 or 64x64x16 tile,
# far beyond what elaborates, simulates or synthesises in reasonable time here.
MAX_MULTIPLIERS = 1 << 16


@dataclass(frozen=True, repr=False)
class DotTileParams(IntegerOperands):
    """Parameters of a dot-product tile (YAML names in brackets; ``pe:`` and ``array:`` sections).

    * ``act_bits``, ``weight_bits`` [``pe.*``]: operand widths 2..16; ``act_signed``,
      ``weight_signed`` [``pe.*``]: two's complement (True) or unsigned; ``acc_bits`` [``pe.*``]:
      accumulator and result width, ``act_bits + weight_bits``..64, wraps in two's complement.
    * ``organization`` [``pe.organization``, the registry's selector, as ``pe.dataflow`` is the MAC
      array's]: ``matrix2d``, ``addertree`` or ``cube3d`` (module docstring; ``addertree`` needs
      ``tile_m = 1``, ``matrix2d`` ``tile_m, tile_n >= 2``, ``cube3d`` all three extents >= 2).
    * ``tile_m`` [``array.tile_m``] 1..64 activation rows, ``tile_n`` [``array.tile_n``] 1..1024
      weight columns, ``tile_k`` [``array.tile_k``] 1..64 products per output per cycle (the
      adder tree's length); at most :data:`MAX_MULTIPLIERS` multipliers in all.
    * ``stages`` [``array.stages``]: pipeline registers in the reduction tree, ``0..tree_depth + 1``.
    * ``reduction`` [``pe.reduction``]: ``products`` (default: multiply, then sum the products over
      K) or ``bitweight`` (sum the partial products of equal bit-weight over K first, then shift and
      add the column sums; module docstring).
    * ``multiplier`` [``pe.multiplier``]: the weight digits of ``reduction: bitweight``: ``array``
      (default: the weight's bits), ``booth_r4`` or ``en_t`` (radix-4 digits); a recoded multiplier
      needs ``reduction: bitweight``.
    """

    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    weight_signed: bool = True
    acc_bits: int = 32
    organization: str = "matrix2d"
    tile_m: int = field(default=4, metadata={"section": "array"})
    tile_n: int = field(default=4, metadata={"section": "array"})
    tile_k: int = field(default=8, metadata={"section": "array"})
    stages: int = field(default=0, metadata={"section": "array"})
    multiplier: str = "array"
    reduction: str = "products"

    def __repr__(self) -> str:
        """The dataclass repr without ``multiplier`` and ``reduction`` at their defaults."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown = {k: v for k, v in shown.items() if _REPR_DEFAULTS.get(k, object()) != v}
        return f"{type(self).__qualname__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        self.mac  # noqa: B018 -- validates the operand and accumulator fields (MacPEParams' rules)
        check_choice("pe.organization", self.organization, ORGANIZATIONS)
        check_int("array.tile_m", self.tile_m, 1, 64)
        check_int("array.tile_n", self.tile_n, 1, 1024)
        check_int("array.tile_k", self.tile_k, 1, 64)
        if self.organization == "addertree" and self.tile_m != 1:
            raise ConfigError(
                "array.tile_m",
                "1 for organization addertree (tile_n dot-product units share one "
                "activation vector; use matrix2d for more rows)",
                self.tile_m,
            )
        if self.organization in ("matrix2d", "cube3d"):
            for name in ("tile_m", "tile_n"):
                if getattr(self, name) < 2:
                    raise ConfigError(
                        f"array.{name}",
                        f"at least 2 for organization {self.organization} (a 2-D grid of outputs; a "
                        "single row of dot-product units is the organization addertree)",
                        getattr(self, name),
                    )
        if self.organization == "cube3d" and self.tile_k < 2:
            raise ConfigError(
                "array.tile_k",
                "at least 2 for organization cube3d (a reduction tree over K; tile_k = 1 is the "
                "matrix2d outer-product array)",
                self.tile_k,
            )
        if self.multipliers > MAX_MULTIPLIERS:
            raise ConfigError(
                "array.tile_k",
                f"a shape with tile_m * tile_n * tile_k <= {MAX_MULTIPLIERS} multipliers",
                f"{self.tile_m} x {self.tile_n} x {self.tile_k} = {self.multipliers}",
            )
        check_int("array.stages", self.stages, 0, self.tree_depth + 1)
        check_choice("pe.reduction", self.reduction, REDUCTIONS)
        check_choice("pe.multiplier", self.multiplier, MULTIPLIERS)
        if self.multiplier != "array" and self.reduction != "bitweight":
            raise ConfigError(
                "pe.multiplier",
                "'array' with pe.reduction 'products' (recoded weight digits need pe.reduction 'bitweight')",
                self.multiplier,
            )

    # -- operands (the integer MAC PE's) ---------------------------------------------------------
    # -- derived sizes -----------------------------------------------------------------------------
    @property
    def multipliers(self) -> int:
        """Multipliers in the tile, ``tile_m * tile_n * tile_k`` (= peak MACs per cycle)."""
        return self.tile_m * self.tile_n * self.tile_k

    @property
    def tree_depth(self) -> int:
        """Adder levels of one output's reduction tree, ``ceil(log2 tile_k)``."""
        return (self.tile_k - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from an ``acts`` handshake to its result's earliest handshake: ``2 + stages``."""
        return 2 + self.stages

    @property
    def k_tile(self) -> int:
        """K elements per activation beat (``tile_k``; the LUT core's name, for shared drivers)."""
        return self.tile_k

    @property
    def planes(self) -> int:
        """Weight beats per weight tile: 1 (the LUT core sends ``weight_bits`` bit planes)."""
        return 1

    @property
    def weight_payload_bits(self) -> int:
        """Width of a ``weights`` beat: ``tile_n * tile_k`` weights of ``weight_bits``."""
        return self.tile_n * self.tile_k * self.weight_bits

    @property
    def act_payload_bits(self) -> int:
        """Width of an ``acts`` beat: ``tile_m * tile_k`` activations, then ``last``, ``wlast``."""
        return self.tile_m * self.tile_k * self.act_bits + 2

    @property
    def result_payload_bits(self) -> int:
        """Width of a ``results`` beat: ``tile_m * tile_n`` accumulators of ``acc_bits``."""
        return self.tile_m * self.tile_n * self.acc_bits

    @property
    def bitweight(self) -> bool:
        """True when the tree reduces by bit-weight first (``reduction: bitweight``)."""
        return self.reduction == "bitweight"

    def register_levels(self) -> tuple[int, ...]:
        """Tree levels followed by a pipeline register: 0 = after the multipliers, ``l`` = after
        adder level ``l`` (``l <= tree_depth``). ``stages`` registers split the ``tree_depth + 2``
        logic blocks (multipliers, adder levels, accumulator adder) as evenly as possible."""
        blocks = self.tree_depth + 2
        return tuple((i + 1) * blocks // (self.stages + 1) - 1 for i in range(self.stages))
