"""Systolic floating-point matrix engine: :class:`~tpegen.hw.arrays.systolic.SystolicArray` of FMA PEs.

The engine is the generic output-stationary array with :class:`~tpegen.hw.pe.fma.FmaDatapath` in
every cell; nothing in the array is FP-specific except the optional edge normalizer.

Accumulation order (what the golden model :func:`tpegen.sim.fp.gemm_chain` reproduces bit for bit)
----------------------------------------------------------------------------------------------------
Output-stationary: PE (i, j) owns ``C[i, j]`` of its tile and sees operand beats ``k = 0 .. K-1``
strictly in order. The first beat of a tile (token ``first``) replaces the accumulator by the
all-zero word, i.e. ``+0``; every beat then performs *one* fused multiply-add with a *single*
rounding::

    acc_0 = +0
    acc_{k+1} = fl(acc_k + A[i, k] * W[k, j])          k = 0 .. K-1
    C[i, j] = acc_K                       (normalize_in_pe: true)
    C[i, j] = normalize(acc_K)            (normalize_in_pe: false: relaxed partial sums, one
                                           correctly rounded conversion per column at the edge)

A multi-term dot-product PE (``pe.terms`` T > 1 or ``pe.align_bits`` set,
:class:`~tpegen.hw.pe.fp_dot.DotDatapath`) takes T values of K per beat (each ``a``/``w`` lane is
an array of T operands) and performs one step ``acc = fl(acc + sum of T products)`` per beat, with
the numerics of :mod:`tpegen.sim.fp_dot` (golden :func:`tpegen.sim.fp_dot.gemm_dot`): a tile is
``ceil(K / T)`` beats, K padded with ``+0`` at its end, and every formula below holds with K read
as the tile's beats.

The whole K dimension of a tile streams through the array, so no partial sum is ever split
across tiles or re-associated. Weight-stationary would compute each K tile's partial sums
separately and add them in a different order (unless the partial sum were fed back in), so the
FP engine supports ``dataflow: os`` only.

Latency and throughput (same formulas as :mod:`tpegen.sim.systolic_timing`; the edge normalizer
is combinational and adds no cycle): for an R x C engine, row q of a tile whose ``last`` beat was
accepted at cycle L leaves at ``L + R + C + q``; tiles are accepted every ``max(K, R)`` cycles; a
single tile takes ``K + 2R + C - 1`` cycles from its first input beat to its last result beat.
With ``array.os_cell: two_register`` (see :class:`~tpegen.hw.arrays.systolic_params.SystolicParams`):
``L + R + C - 1 + q``, every ``max(K, 2R - 1)`` cycles, ``K + 2R + C - 2``. With
``pe.pipeline_stages: 2`` (the product registered in every PE) results leave one cycle later:
latency and single-tile cycles + 1, tile interval unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpegen.errors import ConfigError
from tpegen.hw.arrays.systolic import SystolicArray
from tpegen.hw.arrays.systolic_params import SystolicParams
from tpegen.hw.pe.fma import FmaPEParams

__all__ = ["FpEngineParams", "FpSystolicEngine"]


@dataclass(frozen=True)
class FpEngineParams(SystolicParams):
    """Shape of a floating-point systolic engine: ``rows`` x ``cols`` (1..128 each) FMA PEs, ``os``."""

    pe: FmaPEParams

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.pe, FmaPEParams):
            raise ConfigError("pe", "FMA PE parameters (pe.type: fma)", type(self.pe).__name__)


class FpSystolicEngine(SystolicArray):
    """R x C output-stationary systolic array of floating-point FMA PEs (a :class:`SystolicArray`).

    Ports (``amaranth.lib.stream``, clock ``clk``, synchronous reset ``rst``):

    * ``operands`` in: ``a`` (R lanes of ``pe.input_format``), ``w`` (C lanes of the weight
      format), ``last`` (marks ``k = K-1`` of a tile); with ``pe.terms`` T > 1 each lane holds T
      values of K, the first at its LSB end, and ``last`` marks the tile's last beat.
    * ``results`` out: ``data`` (C lanes of ``pe.acc_format``, IEEE bit patterns), ``last`` on the
      tile's final row; R beats per tile, row 0 first.

    Numerics and timing: see the module docstring (in-order single-rounding FMA chain from ``+0``;
    ``K + 2R + C - 1`` cycles for one tile, one tile per ``max(K, R)`` cycles when streaming).
    """

    def __init__(self, params: FpEngineParams):
        if params.dataflow != "os":  # FmaPEParams already rejects it; keep the engine self-checking
            raise ConfigError("pe.dataflow", "'os'", params.dataflow)
        super().__init__(params)
