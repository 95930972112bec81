"""Driver for :class:`~tpegen.hw.arrays.systolic.SystolicArray`: GEMM tiling and stream encoding.

Tiling (zero padding partial tiles, discarding padded outputs):

* output-stationary: C is cut into ``rows x cols`` tiles, row blocks outer, column blocks inner;
  each tile streams the whole K dimension, so the array accumulates it in place: K beats, or
  ``ceil(K / terms)`` beats for a PE that takes ``terms`` values of K per beat (:attr:`terms`; K
  padded with zeros at its end).
* weight-stationary: W is cut into ``rows x cols`` tiles (K blocks inner, N blocks outer); each
  tile streams all M rows of A's matching K slice and returns partial sums that the driver adds up
  with the same accumulator semantics (integer wrap is associative, so the result is unchanged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.sim.intgemm import check_operand, int_gemm, operand_range
from tpegen.sim.packing import pack_fields, unpack_lanes, wrap
from tpegen.sim.systolic_timing import Timeline, os_cell_timing, os_timeline, ws_timeline
from tpegen.sw.accelerator import Accelerator, Program, check_shapes

if TYPE_CHECKING:
    from tpegen.hw.arrays.systolic import SystolicArray
    from tpegen.hw.arrays.systolic_params import SystolicParams


def _blocks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


class SystolicAccelerator(Accelerator):
    """Integer MAC systolic array (output- or weight-stationary) behind the driver interface."""

    family = "mac"

    @property
    def params(self) -> SystolicParams:
        return self.config.array

    def component(self) -> SystolicArray:
        from tpegen.hw.arrays.systolic import SystolicArray

        return SystolicArray(self.params)

    @property
    def terms(self) -> int:
        """Values of K each PE consumes per beat (1 for the MAC PE; see :meth:`k_beats`)."""
        return 1

    def k_beats(self, k: int) -> int:
        """Beats that stream a K dimension of ``k`` values: ``ceil(k / terms)``."""
        return -(-k // self.terms)

    @property
    def macs_per_cycle(self) -> int:
        return self.params.rows * self.params.cols * self.terms

    def latency(self) -> dict[str, Any]:
        R, C = self.params.rows, self.params.cols
        if self.params.dataflow == "os":
            gap, latency = os_cell_timing(R, C, self.params.os_cell, self.params.pe_latency)
            return {
                "dataflow": "os",
                "result_row_q_after_last_beat": f"{latency} + q cycles",
                "tile_interval": f"max(K, {gap}) cycles",
                "single_tile_cycles": f"K + {latency + R - 1}",
            }
        return {
            "dataflow": "ws",
            "result_after_activation": f"{R + C - 1} cycles",
            "tile_interval": f"max(M, {2 * R + C - 1}) cycles",
            "single_tile_cycles": f"M + {2 * R + C - 1}",
        }

    # -- numerics ---------------------------------------------------------------------------
    def check_operands(self, a, w):
        pe = self.params.pe
        a = check_operand("A", a, pe.act_bits, pe.act_signed)
        w = check_operand("W", w, pe.weight_bits, pe.weight_signed)
        check_shapes(a, w)
        return a, w

    def golden(self, a, w):
        return int_gemm(a, w, self.params.pe.acc_bits)

    def workload_shape(self):
        """``(4 rows, 4 rows * terms, 4 cols)``: 16 tiles back to back, 4 array depths of beats each
        (output-stationary: 4 x 4 C tiles; weight-stationary: 4 K-blocks x 4 N-blocks of W, each
        streaming M = 4 rows beats), so the fill and drain are paid once: utilization 94-96% on the
        shipped configs (:meth:`cycles`), against 31-58% for a single tile."""
        R, C = self.params.rows, self.params.cols
        return 4 * R, 4 * R * self.terms, 4 * C

    def random_operands(self, rng, m, k, n):
        pe = self.params.pe
        a_lo, a_hi = operand_range(pe.act_bits, pe.act_signed)
        w_lo, w_hi = operand_range(pe.weight_bits, pe.weight_signed)
        return rng.integers(a_lo, a_hi + 1, (m, k)), rng.integers(w_lo, w_hi + 1, (k, n))

    def verification_cases(self, rng, n_random):
        pe, R, C = self.params.pe, self.params.rows, self.params.cols
        a_lo, a_hi = operand_range(pe.act_bits, pe.act_signed)
        w_lo, w_hi = operand_range(pe.weight_bits, pe.weight_signed)

        def rand(m, k, n):
            return self.random_operands(rng, m, k, n)

        def full(m, k, n, a, w):
            return np.full((m, k), a, dtype=np.int64), np.full((k, n), w, dtype=np.int64)

        cases = [
            ("K=1, one full tile", *rand(R, 1, C)),
            ("1x1x1", *rand(1, 1, 1)),
            ("all zeros", *full(2 * R, 3, C + 1, 0, 0)),
            ("max x max", *full(R, 2 * R + 3, C, a_hi, w_hi)),
            ("min x min", *full(R + 1, R + 2, C, a_lo, w_lo)),
            ("min x max", *full(R, R, C + 2, a_lo, w_hi)),
            ("K >> array", *rand(R + 1, 8 * max(R, C) + 3, max(1, C - 1))),
            ("not a multiple of the array", *rand(2 * R + 3, R + 5, 2 * C + 1)),
        ]
        # Accumulator wrap-around: enough extreme products to overflow acc_bits (if affordable).
        a_ext, w_ext = max(
            ((x, y) for x in (a_lo, a_hi) for y in (w_lo, w_hi)), key=lambda p: abs(p[0] * p[1])
        )
        k_wrap = (1 << (pe.acc_bits - 1)) // abs(a_ext * w_ext) + 2
        if k_wrap <= 4096:
            cases.append(("accumulator wrap-around", *full(R, k_wrap, C, a_ext, w_ext)))
        for n in range(n_random):
            m, k, nn = (int(rng.integers(1, 2 * d + 4)) for d in (R, 3 * R, C))
            cases.append((f"random #{n}", *rand(m, k, nn)))
        return cases

    # -- timing -----------------------------------------------------------------------------
    def timeline(self, m: int, k: int, n: int) -> Timeline:
        R, C = self.params.rows, self.params.cols
        mb, nb, kb = -(-m // R), -(-n // C), -(-k // R)
        if self.params.dataflow == "os":
            p = self.params
            return os_timeline(R, C, np.full(mb * nb, self.k_beats(k)), p.os_cell, p.pe_latency)
        return ws_timeline(R, C, np.full(kb * nb, m))

    def cycles(self, m: int, k: int, n: int) -> int:
        return self.timeline(m, k, n).total

    def schedule(self, m: int, k: int, n: int):
        """Tiles of an M x K x N GEMM as :meth:`program` streams them, for the cycle-level
        simulator (:func:`tpegen.sim.cycle.systolic_schedule`)."""
        from tpegen.sim.cycle import systolic_schedule

        return systolic_schedule(self, m, k, n)

    # -- stream encoding --------------------------------------------------------------------
    def program(self, a, w) -> Program:
        return self._program_os(a, w) if self.params.dataflow == "os" else self._program_ws(a, w)

    def _pad(self, x: np.ndarray, rows: int, cols: int) -> np.ndarray:
        return np.pad(x, ((0, rows - x.shape[0]), (0, cols - x.shape[1])))

    def _k_beats(self, x: np.ndarray, beats: int, lanes: int) -> np.ndarray:
        """(K, lanes) operand slice -> (beats, lanes * terms) elements, lane-major: lane l of beat b
        holds K values ``b*terms .. b*terms + terms - 1`` (zero-padded), the first at its LSB end."""
        T = self.terms
        x = self._pad(x, beats * T, lanes).reshape(beats, T, lanes)
        return x.transpose(0, 2, 1).reshape(beats, lanes * T)

    def lane_bits(self) -> tuple[int, int, int]:
        """Widths of one A lane, one W lane and one result lane in the stream payloads: the MAC
        PE's operand and accumulator widths (the widths of ``a_shape``, ``w_shape`` and
        ``out_shape``, read from the config so that the timing model needs no Amaranth)."""
        pe = self.params.pe
        return pe.act_bits, pe.weight_bits, pe.acc_bits

    def decode_lanes(self, payload: np.ndarray) -> np.ndarray:
        """Result beats -> (beats, cols) output values (integers: signed accumulators)."""
        return unpack_lanes(payload, self.lane_bits()[2], self.params.cols, signed=True)

    def _program_os(self, a, w) -> Program:
        R, C = self.params.rows, self.params.cols
        a_bits, w_bits, _ = self.lane_bits()
        (M, K), N = a.shape, w.shape[1]
        kb = self.k_beats(K)
        tiles = [(ms, ns) for ms in _blocks(M, R) for ns in _blocks(N, C)]
        # Padding lanes carry all-zero bits (integer 0, floating-point +0); their results are dropped.
        a_beats = np.concatenate([self._k_beats(a[ms].T, kb, R) for ms, _ in tiles])  # (tiles*kb, R*terms)
        w_beats = np.concatenate([self._k_beats(w[:, ns], kb, C) for _, ns in tiles])  # (tiles*kb, C*terms)
        last = np.tile(np.arange(kb) == kb - 1, len(tiles)).astype(np.int64)
        T = self.terms
        beats = pack_fields([(a_beats, a_bits // T), (w_beats, w_bits // T), (last, 1)])

        def decode(outputs: dict[str, np.ndarray]) -> np.ndarray:
            rows = self.decode_lanes(outputs["results"])
            c = np.zeros((M, N), dtype=rows.dtype)
            for t, (ms, ns) in enumerate(tiles):
                block = rows[t * R : (t + 1) * R]
                c[ms, ns] = block[: ms.stop - ms.start, : ns.stop - ns.start]
            return c

        from tpegen.sim.verilator import StreamProgram

        stream = StreamProgram(inputs={"operands": beats}, outputs={"results": len(tiles) * R})
        return Program(stream=stream, decode=decode, tiles=len(tiles))

    def _program_ws(self, a, w) -> Program:
        p, pe = self.params, self.params.pe
        R, C = p.rows, p.cols
        a_bits, w_bits, _ = self.lane_bits()
        (M, K), N = a.shape, w.shape[1]
        tiles = [(ks, ns) for ns in _blocks(N, C) for ks in _blocks(K, R)]
        # Weight rows enter bottom row first (the shadow chain shifts downwards).
        w_beats = np.concatenate([self._pad(w[ks, ns], R, C)[::-1] for ks, ns in tiles])
        a_beats = np.concatenate([self._pad(a[:, ks], M, R) for ks, _ in tiles])
        last = np.tile(np.arange(M) == M - 1, len(tiles)).astype(np.int64)
        weights = pack_fields([(w_beats, w_bits)])
        acts = pack_fields([(a_beats, a_bits), (last, 1)])

        def decode(outputs: dict[str, np.ndarray]) -> np.ndarray:
            rows = self.decode_lanes(outputs["results"])
            c = np.zeros((M, N), dtype=np.int64)
            for t, (_, ns) in enumerate(tiles):
                c[:, ns] += rows[t * M : (t + 1) * M, : ns.stop - ns.start]
            return wrap(c, pe.acc_bits)

        from tpegen.sim.verilator import StreamProgram

        stream = StreamProgram(
            inputs={"weights": weights, "activations": acts}, outputs={"results": len(tiles) * M}
        )
        return Program(stream=stream, decode=decode, tiles=len(tiles))
