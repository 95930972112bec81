"""Driver for the bit-serial tile (:class:`~tpegen.hw.arrays.bitserial.BitSerialTile`), family ``bitserial``.

Streams, tiling, numeric model and result decoding are the dot-product tile's with ``tile_k = 1``
(:class:`~tpegen.sw.dot_tile.DotTileAccelerator`); what differs is the timing, which depends on
the weights' digits (:mod:`tpegen.sim.bitserial`): :meth:`BitSerialAccelerator.operand_cycles`
and :meth:`~BitSerialAccelerator.operand_schedule` count them from the operands, while the
shape-only :meth:`~BitSerialAccelerator.cycles` and :meth:`~BitSerialAccelerator.schedule` give
the bound with every K step at the format's most non-zero digits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.hw.arrays.bitserial_params import BitSerialParams
from tpegen.sim import bitserial as bs
from tpegen.sim.dot_tile import dot_act_beats
from tpegen.sim.radix4 import encode, nonzero_digits
from tpegen.sw.dot_tile import DotTileAccelerator

if TYPE_CHECKING:
    from tpegen.hw.arrays.bitserial import BitSerialTile


class BitSerialAccelerator(DotTileAccelerator):
    """Bit-serial tile behind the driver interface (numeric model, data-dependent timing model,
    stream mapping). ``macs_per_cycle`` is the peak, ``tile_m * tile_n`` (every K step one cycle);
    the shape-only bound runs at ``1 / dense_cycles_per_step`` of it."""

    family = "bitserial"

    @property
    def params(self) -> BitSerialParams:
        return self.config.pe

    def component(self) -> BitSerialTile:
        from tpegen.hw.arrays.bitserial import BitSerialTile

        return BitSerialTile(self.params)

    @property
    def dense_cycles_per_step(self) -> int:
        """Cycles of a K step in the shape-only bound: the most non-zero digits of a weight (4 at int8)."""
        p = self.params
        return bs.max_nonzero_digits(p.encoding, p.weight_bits, p.weight_signed)

    @property
    def macs_per_cycle(self) -> int:
        return self.params.pes

    def latency(self) -> dict[str, Any]:
        p = self.params
        return {
            "encoding": p.encoding,
            "tile": [p.tile_m, 1, p.tile_n],
            "digits_per_weight": p.digits,
            "cycles_per_activation_beat": "max(1, most non-zero digits among the tile's weights of the K step)",
            "max_cycles_per_activation_beat": self.dense_cycles_per_step,
            "gemm_cycles": "3 + sum of the activation beats' cycles",
        }

    def workload_shape(self):
        """``(4 tile_m, 8, 4 tile_n)``: 128 activation beats back to back; on the shape-only timing
        model above 90% of the bound's rate, ``macs_per_cycle / dense_cycles_per_step``."""
        p = self.params
        return 4 * p.tile_m, 8, 4 * p.tile_n

    def verification_cases(self, rng, n_random):
        """The dot-product tile's cases plus the digit extremes: all-zero weights (1 cycle per K
        step), every weight with the most non-zero digits, and weights of mixed digit counts."""
        p = self.params
        w_lo, w_hi = self._ranges()[1]
        values = np.arange(w_lo, w_hi + 1)
        nz = nonzero_digits(encode(values, p.encoding, p.weight_bits, p.weight_signed))
        densest = int(values[np.argmax(nz)])
        tm, tn = p.tile_m, p.tile_n
        a, _ = self.random_operands(rng, 2 * tm + 1, 9, 2 * tn + 1)
        mixed = rng.choice(values[nz <= 1], (9, 2 * tn + 1))  # at most one digit ...
        mixed[rng.random(mixed.shape) < 0.1] = densest  # ... and a few of the densest
        cases = super().verification_cases(rng, n_random)
        edges = len(cases) - n_random  # the dot-product tile's edge cases, then its random ones
        return [
            *cases[:edges],
            ("zero weights", a, np.zeros((9, 2 * tn + 1), dtype=np.int64)),
            ("densest weights", a, np.full((9, 2 * tn + 1), densest, dtype=np.int64)),
            ("mixed digit counts", a, mixed),
            *cases[edges:],
        ]

    # -- timing -----------------------------------------------------------------------------
    def cycles(self, m: int, k: int, n: int) -> int:
        """Bound without the operands: ``3 + J * max_nonzero_digits`` (J activation beats)."""
        return 3 + dot_act_beats(self.params, m, k, n) * self.dense_cycles_per_step

    def schedule(self, m: int, k: int, n: int):
        c = np.full(dot_act_beats(self.params, m, k, n), self.dense_cycles_per_step, dtype=np.int64)
        return bs.bitserial_schedule(self.params, m, k, n, c)

    def operand_cycles(self, a, w) -> int:
        a, w = self.check_operands(a, w)
        return bs.bitserial_cycles(self.params, a.shape[0], w)

    def operand_schedule(self, a, w):
        a, w = self.check_operands(a, w)
        (m, k), n = a.shape, w.shape[1]
        return bs.bitserial_schedule(self.params, m, k, n, bs.beat_cycles(self.params, m, w))
