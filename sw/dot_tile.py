"""Driver for the dot-product tile (:class:`~tpegen.hw.arrays.dot_tile.DotTile`), family ``dot``.

The 2D-Matrix (``matrix2d``), multiplier-adder-tree (``addertree``) and 3D-Cube (``cube3d``)
organizations share this driver: same streams, tiling, numeric model and timing model
(:mod:`tpegen.sim.dot_tile`). The stream interface and the tiling are the LUT tensor core's with
plain integer weights, so the same beat sequences drive both cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.sim import dot_tile as dot
from tpegen.sim.intgemm import operand_range
from tpegen.sw.accelerator import Accelerator, Program, check_shapes

if TYPE_CHECKING:
    from tpegen.hw.arrays.dot_tile import DotTile


class DotTileAccelerator(Accelerator):
    """Dot-product tile behind the driver interface (numeric model, timing model, stream mapping)."""

    family = "dot"

    @property
    def params(self) -> DotTileParams:
        return self.config.pe

    def component(self) -> DotTile:
        from tpegen.hw.arrays.dot_tile import DotTile

        return DotTile(self.params)

    @property
    def macs_per_cycle(self) -> int:
        return self.params.multipliers

    def latency(self) -> dict[str, Any]:
        p = self.params
        return {
            "organization": p.organization,
            "tile": [p.tile_m, p.tile_k, p.tile_n],
            "tree_stages": p.stages,
            "result_after_activation_beat": f"{p.latency} cycles",
            "activation_beats_per_cycle": 1,
            "single_tile_cycles": 4 + p.stages,
            "gemm_cycles": f"J + {3 + p.stages}, J = activation beats",
        }

    # -- numerics ---------------------------------------------------------------------------
    def check_operands(self, a, w):
        a, w = np.asarray(a), np.asarray(w)
        check_shapes(a, w)
        return dot.check_operands(self.params, a, w)

    def golden(self, a, w):
        return dot.dot_gemm(self.params, a, w)

    def workload_shape(self):
        """``(4 tile_m, 8 tile_k, 4 tile_n)``: 128 activation beats back to back (J + 3 + stages
        cycles), utilization above 90% for up to 11 tree stages (97-98% on the shipped configs)."""
        p = self.params
        return 4 * p.tile_m, 8 * p.tile_k, 4 * p.tile_n

    def _ranges(self) -> tuple[tuple[int, int], tuple[int, int]]:
        p = self.params
        return operand_range(p.act_bits, p.act_signed), operand_range(p.weight_bits, p.weight_signed)

    def random_operands(self, rng, m, k, n):
        (a_lo, a_hi), (w_lo, w_hi) = self._ranges()
        return rng.integers(a_lo, a_hi + 1, (m, k)), rng.integers(w_lo, w_hi + 1, (k, n))

    def verification_cases(self, rng, n_random):
        p = self.params
        (a_lo, a_hi), (w_lo, w_hi) = self._ranges()
        tm, tn, tk = p.tile_m, p.tile_n, p.tile_k

        def rand(m, k, n):
            return self.random_operands(rng, m, k, n)

        def full(m, k, n, a, w):
            return np.full((m, k), a, dtype=np.int64), np.full((k, n), w, dtype=np.int64)

        cases = [
            ("one tile", *rand(tm, tk, tn)),
            ("1x1x1", *rand(1, 1, 1)),
            ("zero activations", *full(tm + 1, tk + 1, 3, 0, w_hi)),
            ("max x max", *full(tm, 3 * tk, tn, a_hi, w_hi)),
            ("min x min", *full(tm, 2 * tk + 1, tn + 1, a_lo, w_lo)),
            ("min x max", *full(tm + 1, tk, tn, a_lo, w_hi)),
            ("K >> tile", *rand(tm, 8 * tk + 3, 3)),
            ("not a multiple of the tile", *rand(2 * tm + 1, tk + 3, tn + 5)),
        ]
        # Accumulator wrap-around: enough extreme products to overflow acc_bits (if affordable).
        a_ext, w_ext = max(
            ((x, y) for x in (a_lo, a_hi) for y in (w_lo, w_hi)), key=lambda q: abs(q[0] * q[1])
        )
        k_wrap = (1 << (p.acc_bits - 1)) // max(1, abs(a_ext * w_ext)) + 2
        if k_wrap <= 4096:
            cases.append(("accumulator wrap-around", *full(tm, k_wrap, tn, a_ext, w_ext)))
        for i in range(n_random):
            m, k, n = (int(rng.integers(1, 2 * d + 3)) for d in (tm, 3 * tk, tn))
            cases.append((f"random #{i}", *rand(m, k, n)))
        return cases

    # -- timing and streams -----------------------------------------------------------------
    def cycles(self, m: int, k: int, n: int) -> int:
        return dot.dot_gemm_cycles(self.params, m, k, n)

    def schedule(self, m: int, k: int, n: int):
        return dot.dot_schedule(self.params, m, k, n)

    def program(self, a, w) -> Program:
        p = self.params
        plan = dot.dot_gemm_plan(p, a, w)
        m, _, n = plan.shape
        return Program(
            stream=plan.stream_program(),
            decode=lambda outputs: dot.dot_decode_results(p, outputs["results"], m, n),
            tiles=int(np.prod(plan.tiles)),
        )
