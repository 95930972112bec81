"""Cycle count of one EXEC command of the accelerator top (the execute unit's timing contract).

An EXEC started in cycle t presents the first beat of every array input port in cycle
``t + F`` (``F = ExecuteUnit.FEED_LATENCY``), keeps every port valid until its beats are exhausted
and takes every result at once, so the array runs exactly as in its stand-alone timing model:
its last result is accepted in ``t + F + T - 1`` and written to the accumulator in
``e = t + F + T``, the completion cycle. The EXEC therefore lasts ``dur = F + T + 1`` cycles.

``T`` (first input handshake to last result handshake, inclusive) in closed form, equal to the
totals of :func:`tpegen.sim.systolic_timing.os_timeline` / ``ws_timeline`` and
:func:`tpegen.sim.lut.lut_gemm_cycles` for the EXEC's beat sequence (R x C array):

* os: ``n = mt * nt`` tiles of ``kt`` beats: ``T = kt + (n - 1) max(kt, G) + D + R - 1`` with the
  cell's drain interval G and result latency D (:func:`tpegen.sim.systolic_timing.os_cell_timing`):
  ``three_register`` (default) ``G = R``, ``D = R + C``, i.e. ``T = kt + (n - 1) max(kt, R) + 2R +
  C - 1``; ``two_register`` ``G = 2R - 1``, ``D = R + C - 1``, i.e. ``T = kt + (n - 1) max(kt, 2R -
  1) + 2R + C - 2``.
* ws: ``n = nt * kt`` tiles of ``mb`` rows: ``T = mb + (n - 1) max(mb, 2R + C - 1) + 2R + C - 1``.
* lut: the EXEC's beats are the bare array's GEMM of ``mt x kt x nt`` tiles (same order, same
  weight-tile reuse), so ``T`` is the family's own timing model, the design's driver
  (``geometry.design.accelerator().cycles``) on ``M, K, N = mt tile_m, kt k_tile, nt tile_n``:
  LUT core ``T = b (J + 1) + 2`` (:func:`tpegen.sim.lut.lut_gemm_cycles`), dot-product tile
  ``T = J + 3 + stages`` (:func:`tpegen.sim.dot_tile.dot_gemm_cycles`), ``J = nt mt kt``
  activation beats, ``b`` planes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tpegen.hw.system.execute import ExecuteUnit
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.systolic_timing import os_cell_timing

__all__ = ["array_cycles", "exec_cycles"]


def array_cycles(geometry: SystemGeometry, fields: dict[str, int]) -> int:
    """``T``: the array's cycles for the beat sequence of an EXEC with ``fields`` (see module docstring)."""
    mt, nt, kt, mb = (int(fields[k]) for k in ("mt", "nt", "kt", "mb"))
    R, C = geometry.rows, geometry.cols
    if geometry.kind == "os":
        gap, latency = os_cell_timing(R, C, geometry.os_cell)
        return kt + (mt * nt - 1) * max(kt, gap) + latency + R - 1
    if geometry.kind == "ws":
        return mb + (nt * kt - 1) * max(mb, 2 * R + C - 1) + 2 * R + C - 1
    return _driver(geometry.design).cycles(mt * R, kt * geometry.k_tile, nt * C)


@lru_cache(maxsize=64)
def _driver(design: Any) -> Any:
    """The design's driver (:class:`tpegen.sw.accelerator.Accelerator`), whose ``cycles`` is its timing model."""
    if design is None:
        raise ValueError("a LUT-kind SystemGeometry without its design (build it with SystemGeometry.of)")
    return design.accelerator()


def exec_cycles(geometry: SystemGeometry, config: Any, fields: dict[str, int]) -> int:
    """``dur = F + T + 1``: cycles an EXEC with ``fields`` keeps the execute unit busy (start cycle t
    to completion cycle ``t + dur - 1`` inclusive). ``config`` is the design (unused: the geometry
    carries everything the formula needs; kept so that a family may need it)."""
    return ExecuteUnit.FEED_LATENCY + array_cycles(geometry, fields) + 1
