"""Dot-product tile: numeric model, timing model and stream driver (GEMM order ``(M, K, N)``).

Hardware: :class:`~tpegen.hw.arrays.dot_tile.DotTile`, parameters
:class:`~tpegen.hw.arrays.dot_params.DotTileParams`.

* **Numeric model.** Products are exact, the adder trees are wide enough never to overflow, and
  the accumulator wraps modulo ``2^acc_bits``; wrapping is associative, so the tile computes
  exactly ``C = (A @ W) mod 2^acc_bits`` (two's complement) whatever the tiling:
  :func:`dot_gemm` is :func:`tpegen.sim.intgemm.int_gemm`.
* **Tiling** (the LUT core's driver order, :func:`tpegen.sim.lut.lut_gemm_plan`, with plain weights
  and one weight beat per tile): N-tile outer, M-tile, K-tile inner; one activation beat per
  (M-tile, K-tile) block (``last`` on the final K-tile); when K fits one tile one weight tile per
  N-tile is reused by every M-tile (``wlast`` on the last M-tile), otherwise every activation beat
  brings its own weight tile (``wlast`` always 1).
* **Timing model** (cycle-exact for the RTL with inputs always valid and the output always
  ready, counted from the first input handshake to the last output handshake inclusive): weight
  beat 0 at cycle 0, activation beat ``j`` at ``j + 1``, its result at ``j + 3 + stages``; a GEMM
  of ``J = mt * nt * kt`` activation beats takes ``J + 3 + stages`` cycles (:func:`dot_gemm_cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.sim.cycle import TileSchedule, TileTiming, stream_tile_schedule
from tpegen.sim.intgemm import check_operand, int_gemm
from tpegen.sim.packing import pack_fields, unpack_result_tiles
from tpegen.sim.systolic_timing import Timeline

__all__ = [
    "DotGemmPlan",
    "DotTiming",
    "check_operands",
    "dot_act_beats",
    "dot_decode_results",
    "dot_gemm",
    "dot_gemm_cycles",
    "dot_gemm_plan",
    "dot_schedule",
    "dot_tile_counts",
    "dot_weight_beats",
]


# ---------------------------------------------------------------------------------------------
# Numeric model
# ---------------------------------------------------------------------------------------------


def check_operands(params: DotTileParams, A: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (M, K) and W (K, N) as int64 after range, dtype and shape checks (ConfigError naming A or W)."""
    from tpegen.errors import ConfigError

    a = check_operand("A", A, params.act_bits, params.act_signed)
    w = check_operand("W", W, params.weight_bits, params.weight_signed)
    if a.shape[1] != w.shape[0]:
        raise ConfigError("A/W", "shapes M x K and K x N with the same K", f"{a.shape} and {w.shape}")
    return a, w


def dot_gemm(params: DotTileParams, A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Bit-exact model of the tile: ``C = A @ W`` (M, K) x (K, N) -> (M, N) int64, wrapped to ``acc_bits``."""
    a, w = check_operands(params, A, W)
    return int_gemm(a, w, params.acc_bits)


# ---------------------------------------------------------------------------------------------
# Timing model
# ---------------------------------------------------------------------------------------------


def dot_tile_counts(params: DotTileParams, M: int, K: int, N: int) -> tuple[int, int, int]:
    """(M tiles, K tiles, N tiles) of a GEMM; every dimension counts at least one tile."""
    p = params
    return max(1, -(-M // p.tile_m)), max(1, -(-K // p.tile_k)), max(1, -(-N // p.tile_n))


def dot_act_beats(params: DotTileParams, M: int, K: int, N: int) -> int:
    """Activation beats of a GEMM: one per M-tile, K-tile and N-tile."""
    mt, kt, nt = dot_tile_counts(params, M, K, N)
    return mt * kt * nt


def dot_weight_beats(params: DotTileParams, M: int, K: int, N: int) -> int:
    """Weight beats (= weight tiles): one per N-tile when K fits one tile, else one per activation beat."""
    mt, kt, nt = dot_tile_counts(params, M, K, N)
    return nt if kt == 1 else mt * kt * nt


def dot_gemm_cycles(params: DotTileParams, M: int, K: int, N: int) -> int:
    """Cycles of a GEMM as the RTL counts them: ``J + 3 + stages``, ``J`` = activation beats.

    Derivation: the first weight beat is accepted at cycle 0 and fills bank 0 (full from cycle 1),
    so activation beat 0 is accepted at cycle 1. Beats follow one per cycle -- a weight tile needed
    by beat ``j + 1`` is loaded at the latest in cycle ``j + 1`` into the bank that beat ``j - 1``
    releases in that same cycle (its operand stage), and is full in cycle ``j + 2`` when beat
    ``j + 1`` arrives. Beat ``j``'s operands are registered at the end of cycle ``j + 1``, pass the
    multipliers, ``stages`` tree registers and the accumulator adder, and land in the result register
    at the end of cycle ``j + 2 + stages``: the result handshake is at ``j + 3 + stages``. The last
    beat ``J - 1`` is a ``last`` beat, so the GEMM ends at ``J + 2 + stages``: ``J + 3 + stages``
    cycles from cycle 0 inclusive.
    """
    return dot_act_beats(params, M, K, N) + 3 + params.stages


@dataclass(frozen=True)
class DotTiming(TileTiming):
    """Timing of the dot-product tile for the cycle-level simulator; a tile is one activation beat.

    Beat ``j`` runs from ``j`` (the cycle its weights may stream in) to ``j + 3 + stages`` (its
    result handshake), so the totals are :func:`dot_gemm_cycles`. With operands arriving late,
    beat ``j`` is accepted at the earliest one cycle after ``ready_j`` (its weight tile first) and
    one cycle after beat ``j - 1``.
    """

    beats: int
    stages: int

    def timeline(self) -> Timeline:
        j = np.arange(self.beats, dtype=np.int64)
        return Timeline(start=j, end=j + 3 + self.stages)

    def last_input(self, timeline: Timeline) -> np.ndarray:
        return timeline.start + 1

    def step(self, state, t, ready):
        accept = ready + 1 if state is None else max(state + 1, ready + 1)
        return accept, accept - 1, accept, accept + 2 + self.stages


def dot_schedule(params: DotTileParams, M: int, K: int, N: int) -> TileSchedule:
    """Tiles (activation beats) of a GEMM in the driver's order with MACs and buffer traffic.

    N-tile outer, M-tile, K-tile inner (as :func:`dot_gemm_plan`). A reads the real ``m x k``
    block of each beat, W the real ``k x n`` weights whenever a weight tile is sent, C is written
    with ``m x n`` results after each output tile's last K-tile. Utilization is against
    ``tile_m * tile_n * tile_k`` MACs per cycle.
    """
    p = params
    return stream_tile_schedule(
        DotTiming(beats=dot_act_beats(p, M, K, N), stages=p.stages),
        (p.tile_m, p.tile_k, p.tile_n),
        M,
        K,
        N,
        bits={"A": p.act_bits, "W": p.weight_bits, "C": p.acc_bits},
        pes=p.multipliers,
    )


# ---------------------------------------------------------------------------------------------
# Stream driver: (A, W) -> input beats, output beats -> C
# ---------------------------------------------------------------------------------------------


@dataclass
class DotGemmPlan:
    """Beats of one GEMM on the tile plus what is needed to decode the results."""

    weights: np.ndarray  # (beats, nbytes) uint8
    acts: np.ndarray  # (beats, nbytes) uint8
    result_beats: int
    shape: tuple[int, int, int]  # M, K, N
    tiles: tuple[int, int, int] = field(default=(1, 1, 1))  # M, K, N tiles

    def stream_program(self):
        """These beats as a :class:`~tpegen.sim.verilator.StreamProgram`."""
        from tpegen.sim.verilator import StreamProgram

        return StreamProgram(
            inputs={"weights": self.weights, "acts": self.acts}, outputs={"results": self.result_beats}
        )


def dot_gemm_plan(params: DotTileParams, A: np.ndarray, W: np.ndarray) -> DotGemmPlan:
    """Tile an arbitrary (M, K) x (K, N) GEMM onto the tile (zero-padding partial tiles; the
    padded lanes multiply zeros and their results are dropped). Order: module docstring."""
    p = params
    a, w = check_operands(p, A, W)
    (M, K), N = a.shape, w.shape[1]
    mt, kt, nt = dot_tile_counts(p, M, K, N)
    a = np.pad(a, ((0, mt * p.tile_m - M), (0, kt * p.tile_k - K)))
    w = np.pad(w, ((0, kt * p.tile_k - K), (0, nt * p.tile_n - N)))
    # weight tile (k, n): tile_n * tile_k lanes, lane = n_local * tile_k + k_local
    wt = w.reshape(kt, p.tile_k, nt, p.tile_n).transpose(0, 2, 3, 1).reshape(kt, nt, -1)
    # activation block (m, k): tile_m * tile_k lanes, lane = m_local * tile_k + k_local
    ab = a.reshape(mt, p.tile_m, kt, p.tile_k).transpose(0, 2, 1, 3).reshape(mt, kt, -1)
    n_idx, m_idx, k_idx = (
        x.ravel() for x in np.meshgrid(np.arange(nt), np.arange(mt), np.arange(kt), indexing="ij")
    )
    last = (k_idx == kt - 1).astype(np.int64)
    if kt == 1:
        wlast = (m_idx == mt - 1).astype(np.int64)
        weights = wt[0]
    else:
        wlast = np.ones_like(last)
        weights = wt[k_idx, n_idx]
    return DotGemmPlan(
        weights=pack_fields([(weights, p.weight_bits)], p.weight_payload_bits),
        acts=pack_fields([(ab[m_idx, k_idx], p.act_bits), (last, 1), (wlast, 1)], p.act_payload_bits),
        result_beats=mt * nt,
        shape=(M, K, N),
        tiles=(mt, kt, nt),
    )


def dot_decode_results(params: DotTileParams, beats: np.ndarray, M: int, N: int) -> np.ndarray:
    """Assemble (M, N) int64 ``C`` from ``results`` beats in N-tile-outer, M-tile-inner order."""
    return unpack_result_tiles(beats, params.tile_m, params.tile_n, params.acc_bits, M, N)
