"""Bit-serial tile: data-dependent timing model (GEMM order ``(M, K, N)``).

Hardware: :class:`~tpegen.hw.arrays.bitserial.BitSerialTile`, parameters
:class:`~tpegen.hw.arrays.bitserial_params.BitSerialParams`.

* **Numeric model.** Every digit's partial product is exact and the accumulator wraps modulo
  ``2^acc_bits``, so the tile computes ``C = (A @ W) mod 2^acc_bits``: the dot-product tile's model
  (:func:`tpegen.sim.dot_tile.dot_gemm`), as are the stream plan and the result decoder
  (:mod:`tpegen.sim.dot_tile` with ``tile_k = 1``: N-tile outer, M-tile, K step inner).
* **Timing model** (cycle-exact for the RTL with inputs always valid and the output always ready,
  first input to last output handshake inclusive). Activation beat ``j`` (output tile ``(i, n)``,
  K step ``k``) occupies the PEs ``c_j = max(1, max over the tile's columns of the non-zero
  digits of W[k, column])`` cycles (:func:`step_cycles`; padded columns hold zero weights). Beat
  0 is accepted at cycle 1 (after weight beat 0), beat ``j + 1`` at ``c_j`` cycles after beat
  ``j``, and the last beat's result is handed over the cycle after its last digit cycle: a GEMM
  takes ``3 + sum_j c_j`` cycles (:func:`bitserial_cycles`). Without the operands only a bound is
  known: every K step at the most non-zero digits a weight of the format can have
  (:func:`max_nonzero_digits`; 4 at int8 for both encodings, the dense bit-serial design).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from tpegen.hw.arrays.bitserial_params import BitSerialParams
from tpegen.sim.cycle import TileSchedule, TileTiming, stream_tile_schedule
from tpegen.sim.dot_tile import dot_tile_counts
from tpegen.sim.intgemm import operand_range
from tpegen.sim.radix4 import encode, nonzero_digits
from tpegen.sim.systolic_timing import Timeline

__all__ = [
    "BitSerialTiming",
    "beat_cycles",
    "bitserial_cycles",
    "bitserial_schedule",
    "max_nonzero_digits",
    "step_cycles",
]


@cache
def max_nonzero_digits(encoding: str, bits: int, signed: bool) -> int:
    """The most non-zero digits any ``bits``-wide weight has in ``encoding`` (at least 1)."""
    lo, hi = operand_range(bits, signed)
    return max(1, int(nonzero_digits(encode(np.arange(lo, hi + 1), encoding, bits, signed)).max()))


def step_cycles(params: BitSerialParams, W: np.ndarray) -> np.ndarray:
    """``(K, N tiles)`` int64: cycles of each K step of each N-tile, the slowest column's non-zero
    digit count, at least 1 (the column synchronization of the tile's activation beat)."""
    p = params
    w = np.asarray(W, dtype=np.int64)
    K, N = w.shape
    nt = max(1, -(-N // p.tile_n))
    w = np.pad(w, ((0, 0), (0, nt * p.tile_n - N)))
    nz = nonzero_digits(encode(w, p.encoding, p.weight_bits, p.weight_signed))
    return np.maximum(1, nz.reshape(K, nt, p.tile_n).max(axis=2)).astype(np.int64)


def beat_cycles(params: BitSerialParams, M: int, W: np.ndarray) -> np.ndarray:
    """Cycles ``c_j`` of every activation beat in the driver's order (N-tile, M-tile, K step)."""
    steps = step_cycles(params, W)  # (K, nt)
    mt = dot_tile_counts(params, M, steps.shape[0], W.shape[1])[0]
    return np.repeat(steps.T[:, None, :], mt, axis=1).ravel()


def bitserial_cycles(params: BitSerialParams, M: int, W: np.ndarray) -> int:
    """Cycles of ``A @ W`` (A has M rows) as the RTL counts them: ``3 + sum_j c_j``."""
    return 3 + int(beat_cycles(params, M, W).sum())


@dataclass(frozen=True)
class BitSerialTiming(TileTiming):
    """Timing of the bit-serial tile for the cycle-level simulator; a tile is one activation beat.

    Beat ``j`` (``c[j]`` digit cycles) is accepted at ``1 + sum_{i<j} c[i]``; its timeline runs
    from the cycle before (when its weights may stream in) to its result handshake, accepted
    cycle + ``c[j] + 1``, so the total is :func:`bitserial_cycles`. With operands arriving late,
    beat ``j`` is accepted at the earliest one cycle after ``ready_j`` and ``c[j-1]`` cycles after
    beat ``j - 1``.
    """

    c: np.ndarray

    def timeline(self) -> Timeline:
        accept = 1 + np.concatenate(([0], np.cumsum(self.c)[:-1])).astype(np.int64)
        return Timeline(start=accept - 1, end=accept + self.c + 1)

    def last_input(self, timeline: Timeline) -> np.ndarray:
        return timeline.start + 1

    def step(self, state, t, ready):
        accept = ready + 1 if state is None else max(state, ready + 1)
        c = int(self.c[t])
        return accept + c, accept - 1, accept, accept + c + 1


def bitserial_schedule(params: BitSerialParams, M: int, K: int, N: int, c: np.ndarray) -> TileSchedule:
    """Tiles (activation beats) of an M x K x N GEMM with beat cycles ``c`` (:func:`beat_cycles`,
    or a bound), MACs and buffer traffic as the dot-product tile's (``tile_k = 1``)."""
    p = params
    return stream_tile_schedule(
        BitSerialTiming(c=np.asarray(c, dtype=np.int64)),
        (p.tile_m, 1, p.tile_n),
        M,
        K,
        N,
        bits={"A": p.act_bits, "W": p.weight_bits, "C": p.acc_bits},
        pes=p.pes,
    )
