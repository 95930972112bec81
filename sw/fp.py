"""Driver for the floating-point systolic engine (:mod:`tpegen.hw.arrays.fp_engine`), family ``fma``.

Reuses the output-stationary tiling of :class:`~tpegen.sw.systolic.SystolicAccelerator` (C cut
into ``rows x cols`` tiles, each streaming the whole K dimension, so every output is one in-order
FMA chain); only the operand conversion, the stream encoding and the golden model differ.

Operands and results (``tpegen gemm`` with an FP config):

* A (M x K) and W (K x N) are real-valued arrays (any float or integer dtype). Each value is
  converted to float64 (exact for float16/32/64 and integers below 2**53) and then rounded
  **to nearest, ties to even** into the PE's input format (``pe.input_format`` /
  ``pe.weight_format``) -- independent of ``pe.rounding``, which governs the accumulation.
  Values beyond the format's range become ``±inf`` (NaN for ``fp8_e4m3fn``, which has no
  infinities, as ml_dtypes and PyTorch convert), NaNs become the canonical NaN,
  subnormals are kept (no flush to zero), ``-0`` stays ``-0``.
* C is a float32 array holding the accumulator-format values *exactly* (every supported
  accumulator format -- fp32, bf16, fp16, fp8 -- is a subset of float32). Every NaN is written as
  the canonical float32 quiet NaN ``0x7FC00000``, so two results can be compared byte for byte.
* Golden model: :func:`tpegen.sim.fp.gemm_chain` (k = 0..K-1 in order, one rounding per FMA,
  from ``+0``), bit-identical with the RTL. A multi-term dot-product PE (``pe.terms``,
  ``pe.align_bits``) takes ``terms`` values of K per beat (K padded with ``+0``; ``ceil(K /
  terms)`` beats per tile) and one rounding per beat: :func:`tpegen.sim.fp_dot.gemm_dot`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.arrays.fp_engine import FpEngineParams, FpSystolicEngine
from tpegen.sim import fp
from tpegen.sim.packing import unpack_lanes
from tpegen.sw.accelerator import check_shapes
from tpegen.sw.systolic import SystolicAccelerator

__all__ = ["FpAccelerator", "to_float32", "round_operand"]

CANONICAL_NAN_F32 = np.uint32(0x7FC00000)


def round_operand(name: str, x: Any, fmt: fp.FloatFormat) -> np.ndarray:
    """Check that ``x`` is a non-empty real 2-D matrix; return its ``fmt`` bit patterns (RNE)."""
    x = np.asarray(x)
    if x.ndim != 2 or 0 in x.shape:
        raise ConfigError(name, "a non-empty 2-D matrix", f"array of shape {x.shape}")
    if x.dtype.kind not in "iuf":  # not bool, complex, timedelta (an integer subtype!) or objects
        raise ConfigError(name, "a matrix of real numbers (float or integer dtype)", f"dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.integer) and x.size and int(np.abs(x).max()) >= 1 << 53:
        raise ConfigError(name, "integers of magnitude below 2**53 (exactly convertible)", "larger values")
    with np.errstate(all="ignore"):
        return fp.quantize(x.astype(np.float64), fmt, "rne")


def to_float32(bits: np.ndarray, fmt: fp.FloatFormat) -> np.ndarray:
    """``fmt`` bit patterns -> float32, exactly; every NaN becomes the canonical ``0x7FC00000``."""
    if fmt.exp_bits > 8 or fmt.man_bits > 23:
        raise ConfigError("pe.acc_format", "a format that float32 holds exactly", fmt.name)
    v = fp.decode(bits, fmt).astype(np.float32)
    u = v.view(np.uint32)
    return np.where(np.isnan(v), CANONICAL_NAN_F32, u).view(np.float32)


class FpAccelerator(SystolicAccelerator):
    """Floating-point FMA systolic engine (output-stationary) behind the driver interface.

    ``check_operands`` returns the operands as input-format bit patterns (int64), ``golden``
    the accumulator-format results as float32 (see the module docstring); tiling, cycles and the
    timing model are those of the output-stationary integer array.
    """

    family = "fma"

    @property
    def params(self) -> FpEngineParams:
        return self.config.array

    @property
    def cfg(self) -> fp.FmaConfig:
        return self.params.pe.fma

    def component(self) -> FpSystolicEngine:
        return FpSystolicEngine(self.params)

    def lane_bits(self) -> tuple[int, int, int]:
        """Widths of one A lane, one W lane and one result lane: the FP formats' layouts."""
        from amaranth import Shape

        p = self.params
        return tuple(Shape.cast(shape).width for shape in (p.pe.a_shape, p.pe.w_shape, p.out_shape))

    @property
    def terms(self) -> int:
        """Values of K per beat: ``pe.terms`` (1 for the FMA PE)."""
        return self.cfg.terms

    def latency(self) -> dict[str, Any]:
        info = super().latency()
        cfg = self.cfg
        if cfg.dot:
            info["tile_beats"] = f"ceil(K / {cfg.terms}) (K = the tile's beats in the formulas above)"
            info["accumulation"] = (
                f"per output: acc = +0; for each beat b in order: acc = fl(acc + sum of the {cfg.terms} "
                f"products a[k] * w[k], k = {cfg.terms}b ..), every term truncated to {cfg.align_bits} "
                "bits below the beat's largest exponent, one rounding per beat; K padded with +0"
            )
            return info
        info["accumulation"] = (
            "per output: acc = +0; for k = 0..K-1 in order: acc = fl(acc + a[k] * w[k]) "
            "(one rounding per step"
            + ("" if cfg.normalize_in_pe else "; relaxed partial sums, one rounding at the edge")
            + ")"
        )
        return info

    # -- numerics ---------------------------------------------------------------------------
    def check_operands(self, a, w):
        a_bits = round_operand("A", a, self.cfg.a_fmt)
        w_bits = round_operand("W", w, self.cfg.w_fmt)
        check_shapes(a_bits, w_bits)
        return a_bits, w_bits

    def golden_bits(self, a_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
        """Accumulator-format bit patterns of C (the exact chain of the hardware)."""
        return fp.gemm_chain(a_bits, w_bits, self.cfg)

    def golden(self, a, w):
        return to_float32(self.golden_bits(a, w), self.cfg.acc_fmt)

    def random_operands(self, rng, m, k, n):
        """Normal values scaled by random powers of two in 2^-6..2^6 (many binades, few specials)."""

        def normal(shape):
            return rng.standard_normal(shape) * np.exp2(rng.integers(-6, 7, shape))

        return normal((m, k)), normal((k, n))

    def verification_cases(self, rng, n_random):
        R, C = self.params.rows, self.params.cols
        af, wf = self.cfg.a_fmt, self.cfg.w_fmt

        def val(fmt: fp.FloatFormat, bits) -> np.ndarray:
            return fp.decode(np.asarray(bits, dtype=np.int64), fmt)

        def normal(shape, lo=-6, hi=6) -> np.ndarray:
            return rng.standard_normal(shape) * np.exp2(rng.integers(lo, hi + 1, shape))

        def rand(m, k, n, lo=-6, hi=6):
            return normal((m, k), lo, hi), normal((k, n), lo, hi)

        def pick(values: np.ndarray, shape) -> np.ndarray:
            return rng.choice(np.asarray(values, dtype=np.float64), size=shape)

        def specials(fmt: fp.FloatFormat) -> np.ndarray:
            s = fmt.sign_bit
            infs = [fmt.inf_bits, fmt.inf_bits | s] if fmt.has_inf else []
            return val(fmt, [0, s, *infs, fmt.nan_bits, fmt.bias << fmt.man_bits])

        def extremes(fmt: fp.FloatFormat) -> np.ndarray:
            s, mf = fmt.sign_bit, fmt.max_finite_bits
            return val(fmt, [mf, mf | s, (mf - 1), (fmt.exp_all_ones - 2) << fmt.man_bits])

        def subnormals(fmt: fp.FloatFormat) -> np.ndarray:
            s, m = fmt.sign_bit, fmt.man_bits
            bits = [1, 1 | s, (1 << m) - 1, ((1 << m) - 1) | s, 1 << m, (1 << m) | s, 3, 5 | s]
            return val(fmt, bits)

        # Cancellation: sum of x_k * 1 over a sequence that cancels to a few low-order bits.
        k_c = 2 * R + 3
        big = normal((R, k_c), 4, 10)
        canc_a = np.concatenate([big, -big[:, ::-1], normal((R, 2), -12, -8)], axis=1)
        canc_w = np.ones((canc_a.shape[1], C))
        canc_w[:, 1::2] += np.exp2(-rng.integers(3, 7, (canc_a.shape[1], 1)))  # near-cancellation columns
        near_a = normal((R, 1), 0, 2) * np.ones((1, 4))
        near_a[:, 1::2] *= -(1 + np.exp2(-np.arange(1, 8, 3)))[: near_a[:, 1::2].shape[1]]
        near_w = np.ones((4, C + 1))

        zeros_a = pick(val(af, [0, af.sign_bit]), (R + 1, 3))
        zeros_w = pick(val(wf, [0, wf.sign_bit]), (3, C))
        spec_a = np.where(rng.random((R, 6)) < 0.5, pick(specials(af), (R, 6)), normal((R, 6)))
        spec_w = np.where(rng.random((6, C)) < 0.5, pick(specials(wf), (6, C)), normal((6, C)))
        inf_a = np.full((R, 3), np.inf)
        inf_a[:, 1] = -np.inf
        inf_w = np.array([[1.0] * C, [1.0] * C, [0.0] * C])  # inf - inf -> NaN; inf * 0 -> NaN
        huge_a = pick(extremes(af), (R, R + 2))
        huge_w = pick(extremes(wf), (R + 2, C))
        sub_a = pick(subnormals(af), (R, 5))
        sub_w = np.concatenate([pick(subnormals(wf), (2, C)), normal((3, C), 0, 4)])
        tiny_a, tiny_w = rand(R, 7, C, -70, -50)  # products deep in (or below) the accumulator's range
        cases = [
            ("K=1, one full tile", *rand(R, 1, C)),
            ("1x1x1", *rand(1, 1, 1)),
            ("zeros of both signs", zeros_a, zeros_w),
            ("inf, NaN and signed zeros mixed in", spec_a, spec_w),
            ("inf - inf and inf * 0", inf_a, inf_w),
            ("huge values (overflow)", huge_a, huge_w),
            ("subnormal operands", sub_a, sub_w),
            ("tiny products (underflow)", tiny_a, tiny_w),
            ("catastrophic cancellation", canc_a, canc_w),
            ("near-cancellation pairs", near_a, near_w),
            ("K >> array", *rand(R + 1, 8 * max(R, C) + 3, max(1, C - 1))),
            ("not a multiple of the array", *rand(2 * R + 3, R + 5, 2 * C + 1)),
            ("wide exponent range", *rand(R, 3 * R, C, -30, 30)),
        ]
        for n in range(n_random):
            m, k, nn = (int(rng.integers(1, 2 * d + 4)) for d in (R, 3 * R, C))
            cases.append((f"random #{n}", *rand(m, k, nn)))
        return cases

    # -- stream encoding --------------------------------------------------------------------
    def decode_lanes(self, payload: np.ndarray) -> np.ndarray:
        """Result beats -> (beats, cols) float32 values of the accumulator-format bit patterns."""
        bits = unpack_lanes(payload, self.cfg.acc_fmt.width, self.params.cols, signed=False)
        return to_float32(bits, self.cfg.acc_fmt)
