"""Driver for the LUT tensor core (:class:`~tpegen.hw.arrays.lut_core.LutCore`).

Users hand it ordinary signed integer weights, exactly as for the MAC arrays: b-bit weights in
``[-2^(b-1), 2^(b-1)-1]``, ternary in {-1, 0, +1}, binary (W1) in {-1, +1}; the result is exactly
``A @ W`` (wrapped to ``acc_bits``). The +-1 re-encoding, the offline index complement and the
activation-sum correction are done by :mod:`tpegen.sim.lut` (encoding) and the hardware; with the
core's table design choices (``pe.table``, ``pe.index_complement``, ``pe.precompute``) the driver
sends what that variant reads (raw indices, or software-precomputed tables on the ``tables`` port).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.sim import lut
from tpegen.sw.accelerator import Accelerator, Program, check_shapes

if TYPE_CHECKING:
    from tpegen.hw.arrays.lut_core import LutCore


class LutAccelerator(Accelerator):
    """LUT tensor core behind the driver interface (numeric model, timing model, stream mapping)."""

    family = "lut"

    @property
    def params(self) -> lut.LutCoreParams:
        return self.config.pe

    def component(self) -> LutCore:
        from tpegen.hw.arrays.lut_core import LutCore  # the generator (Amaranth) only when building RTL

        return LutCore(self.params)

    @property
    def macs_per_cycle(self) -> float:
        return lut.lut_macs_per_cycle(self.params)

    def latency(self) -> dict[str, Any]:
        b = self.params.planes
        return {
            "tile": [self.params.tile_m, self.params.tile_n, self.params.k_tile],
            "cycles_per_activation_beat": b,
            "single_tile_cycles": 2 * b + 2,
            "gemm_cycles": f"{b} * (J + 1) + 2, J = activation beats",
            "macs_per_cycle_per_weight_bit": lut.lut_macs_per_cycle_per_weight_bit(self.params),
        }

    def check_operands(self, a, w):
        a, w = np.asarray(a), np.asarray(w)
        check_shapes(a, w)
        for name, x in (("A", a), ("W", w)):
            if 0 in x.shape or not np.issubdtype(x.dtype, np.integer):
                raise ConfigError(name, "a non-empty integer matrix", f"{x.dtype} array of shape {x.shape}")
        return lut.check_operands(self.params, a, w)

    def golden(self, a, w):
        return lut.lut_gemm(a, w, self.params)

    def program(self, a, w) -> Program:
        p = self.params
        plan = lut.lut_gemm_plan(p, a, w)
        m, _, n = plan.shape
        return Program(
            stream=plan.stream_program(),
            decode=lambda outputs: lut.lut_decode_results(p, outputs["results"], m, n),
            tiles=int(np.prod(plan.tiles)),
        )

    def cycles(self, m: int, k: int, n: int) -> int:
        return lut.lut_gemm_cycles(self.params, m, k, n)

    def schedule(self, m: int, k: int, n: int):
        return lut.lut_schedule(self.params, m, k, n)

    def weight_values(self) -> np.ndarray:
        """Every weight value the configuration accepts."""
        p = self.params
        if p.weight_bits == 1:
            return np.array([-1, 1])
        if p.ternary:
            return np.array([-1, 0, 1])
        return np.arange(-(1 << (p.weight_bits - 1)), 1 << (p.weight_bits - 1))

    def workload_shape(self):
        """``(4 tile_m, 8 k_tile, 4 tile_n)``: 128 activation beats back to back (b (J + 1) + 2
        cycles), utilization above 97% for any number of bit planes b."""
        p = self.params
        return 4 * p.tile_m, 8 * p.k_tile, 4 * p.tile_n

    def random_operands(self, rng, m, k, n):
        lo, hi = -(1 << (self.params.act_bits - 1)), (1 << (self.params.act_bits - 1)) - 1
        return rng.integers(lo, hi + 1, (m, k)), rng.choice(self.weight_values(), (k, n))

    def verification_cases(self, rng, n_random):
        p = self.params
        lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
        wv = self.weight_values()
        tm, tn, tk = p.tile_m, p.tile_n, p.k_tile

        def rand(m, k, n):
            return self.random_operands(rng, m, k, n)

        def full(m, k, n, a, w):
            return np.full((m, k), a, dtype=np.int64), np.full((k, n), w, dtype=np.int64)

        cases = [
            ("one tile", *rand(tm, tk, tn)),
            ("1x1x1", *rand(1, 1, 1)),
            ("zero activations", *full(tm + 1, tk + 1, 3, 0, wv[-1])),
            ("max x max", *full(tm, 3 * tk, tn, hi, wv.max())),
            ("min x min", *full(tm, 2 * tk + 1, 5, lo, wv.min())),
            ("min x max", *full(tm + 1, tk, tn + 1, lo, wv.max())),
            ("K >> tile", *rand(tm, 8 * tk + 3, 3)),
            ("not a multiple of the tile", *rand(2 * tm + 1, tk + 3, tn + 5)),
        ]
        for i in range(n_random):
            m, k, n = (int(rng.integers(1, 2 * d + 3)) for d in (tm, 2 * tk, tn))
            cases.append((f"random #{i}", *rand(m, k, n)))
        return cases
