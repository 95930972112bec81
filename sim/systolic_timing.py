"""Cycle-exact timing model of :class:`tpegen.hw.arrays.systolic.SystolicArray`.

Cycles are counted as the RTL testbench counts them: from the first accepted input beat to the
last accepted result beat, both inclusive, with inputs always offered and results always taken.
Each tile's ``start`` is its first input handshake and its ``end`` its last result handshake.

Output-stationary, R x C array, tiles with K_t beats each. The ``last`` beat of tile t is
accepted at ``L_t = L_{t-1} + max(K_t, G)`` (``L_0 = K_0 - 1``) and its result row q leaves at
``L_t + D + q``; the GEMM ends at ``L_{T-1} + D + R - 1``. The drain interval G and the result
latency D depend on the cell (``array.os_cell``, :func:`os_cell_timing`):

* ``three_register`` (accumulator, result hold, drain): ``G = R``, ``D = R + C``. A column
  captures all its results at once when its bottom cell has finished and drains one row per
  cycle, so ``last`` beats are spaced by at least R cycles.
* ``two_register`` (accumulator, drain): ``G = 2R - 1``, ``D = R + C - 1``. Cell (i, j) copies
  its accumulator into its drain register as it finishes the ``last`` beat (cycle ``L + i + j``);
  column j shifts up in cycles ``L + R + j .. L + 2R + j - 2``, so its top cell shows row q in
  cycle ``L + R + j + q``. The next tile's copy into the top cell (cycle ``L' + j``) must come
  after row R - 1 has left it (cycle ``L + 2R + j - 1``): ``L' >= L + 2R - 1``.

A PE with a pipelined datapath (``pe.pipeline_stages``) accumulates every beat ``d = pe_latency``
cycles after it entered the cell; every cell event, and the array's capture/shift control, moves
by ``d``, so ``D`` grows by ``d`` and ``G`` is unchanged.

Weight-stationary: tile t loads R weight beats and streams M_t activation rows. Its first
activation is accepted at ``F_t = F_{t-1} + max(M_{t-1}, 2R + C - 1)`` (``F_0 = R``): the next
tile's weights may enter the shadow chain only after the current tile's first row has switched
every cell (``R + C - 1`` cycles), and then take R cycles. Row m leaves ``R + C - 1`` cycles
after it entered; the GEMM ends at ``F_{T-1} + M_{T-1} + R + C - 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tpegen.hw.arrays.systolic_params import OS_CELLS


@dataclass(frozen=True)
class Timeline:
    """Per-tile start/end cycles (inclusive) and the total cycle count of a stream of tiles."""

    start: np.ndarray
    end: np.ndarray

    @property
    def total(self) -> int:
        return int(self.end.max() - self.start.min() + 1) if len(self.end) else 0


def os_cell_timing(
    rows: int, cols: int, os_cell: str = "three_register", pe_latency: int = 0
) -> tuple[int, int]:
    """``(G, D)`` of an output-stationary array: minimum cycles between two ``last`` beats and
    cycles from a ``last`` beat to the tile's result row 0 (see the module docstring), ``D``
    including the PE's ``pe_latency`` (:attr:`~tpegen.hw.arrays.systolic_params.SystolicParams.pe_latency`)."""
    if os_cell == "three_register":
        return rows, rows + cols + pe_latency
    if os_cell == "two_register":
        return 2 * rows - 1, rows + cols - 1 + pe_latency
    raise ValueError(f"os_cell must be one of {OS_CELLS}, not {os_cell!r}")


def os_timeline(
    rows: int, cols: int, k_per_tile: np.ndarray, os_cell: str = "three_register", pe_latency: int = 0
) -> Timeline:
    """Timeline of output-stationary tiles streamed back to back (``k_per_tile[t]`` beats each)."""
    gap, latency = os_cell_timing(rows, cols, os_cell, pe_latency)
    k = np.asarray(k_per_tile, dtype=np.int64)
    step = np.maximum(k, gap)
    step[0] = k[0]
    last = np.cumsum(step) - 1
    # A tile's first beat follows the previous `last` at once -- unless it is itself the `last`
    # beat (K = 1), which waits for the drain spacing.
    start = np.where(k == 1, last, np.concatenate([[0], last[:-1] + 1]))
    end = last + latency + rows - 1
    return Timeline(start=start, end=end)


def ws_timeline(rows: int, cols: int, m_per_tile: np.ndarray) -> Timeline:
    """Timeline of weight-stationary tiles (``m_per_tile[t]`` activation rows each)."""
    m = np.asarray(m_per_tile, dtype=np.int64)
    gap = np.maximum(m[:-1], 2 * rows + cols - 1)
    first = rows + np.concatenate([[0], np.cumsum(gap)])
    start = np.concatenate([[0], first[:-1] + rows + cols - 1])
    end = first + m + rows + cols - 2
    return Timeline(start=start, end=end)
