"""Numerics of the STORE output stage: int8 requantization, fp32 -> bf16, requantization parameters.

* :func:`requantize` is TFLite's ``MultiplyByQuantizedMultiplier`` for right shifts, exactly as
  gemmlowp defines its two steps, then ``+ zero_point`` and a clamp to int8:

  - ``SaturatingRoundingDoublingHighMul(x, M)``: ``ab = x * M`` (int64); ``nudge = 2^30`` if
    ``ab >= 0`` else ``1 - 2^30``; ``(ab + nudge) / 2^31`` truncated toward zero; the single
    overflow case ``x == M == INT32_MIN`` gives ``INT32_MAX``. This is ``floor(x M / 2^31 + 1/2)``:
    ties round toward +infinity (``-0.5 -> 0``, ``+0.5 -> 1``).
  - ``RoundingDivideByPOT(y, shift)``: ``mask = 2^shift - 1``, ``remainder = y & mask``,
    ``threshold = (mask >> 1) + (y < 0)``, ``(y >> shift) + (remainder > threshold)``
    (arithmetic shift): ``y / 2^shift`` rounded to nearest, ties away from zero.

  The hardware evaluates the divide in 64-bit arithmetic for ``shift`` in 0..63 (6-bit field), so
  a shift of 32 or more is well defined: ``|y| <= 2^31`` gives 0, except ``y = -2^31`` with
  ``shift = 32`` (exactly -1/2, a tie) which gives -1. The result is ``zero_point`` clamped.
* :func:`fp32_bits_to_bf16_bits`: round to nearest, ties to even (overflow to +-inf as IEEE);
  a NaN keeps its sign and top payload bits and is made quiet: ``(bits >> 16) | 0x40``.
* :func:`pack_qparams` / :func:`unpack_qparams`: the 64-bit Q-memory entry (bits 0..31 multiplier,
  32..37 shift, 40..47 zero point, two's complement; other bits zero).
* :func:`quantize_multiplier`: a real scale in [0, 1) -> ``(multiplier, shift)`` like TFLite's
  ``QuantizeMultiplier`` restricted to right shifts.
"""

from __future__ import annotations

import math

import numpy as np

from tpegen.errors import ConfigError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
MAX_SHIFT = 63
_I64 = np.int64


def _int_array(name: str, x, lo: int, hi: int) -> np.ndarray:
    v = np.asarray(x)
    if v.dtype.kind not in "iu":
        raise ConfigError(name, f"integers in {lo}..{hi}", f"dtype {v.dtype}")
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        bad = int(v.min()) if int(v.min()) < lo else int(v.max())
        raise ConfigError(name, f"integers in {lo}..{hi}", bad)
    return v.astype(_I64)


def saturating_rounding_doubling_high_mul(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` of int32 values (int64 arrays, broadcasting)."""
    x, m = np.broadcast_arrays(np.asarray(x, dtype=_I64), np.asarray(m, dtype=_I64))
    ab = x * m  # |ab| <= 2^62: exact in int64
    total = ab + np.where(ab >= 0, _I64(1 << 30), _I64(1 - (1 << 30)))
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # division truncating toward zero
    return np.where((x == INT32_MIN) & (m == INT32_MIN), _I64(INT32_MAX), high)


def rounding_divide_by_pot(y: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` in 64-bit arithmetic, ``shift`` in 0..63 (broadcasting)."""
    y, shift = np.broadcast_arrays(np.asarray(y, dtype=_I64), np.asarray(shift, dtype=_I64))
    mask = ((np.uint64(1) << shift.astype(np.uint64)) - np.uint64(1)).view(_I64)  # 2^s - 1 < 2^63
    remainder = y & mask
    threshold = (mask >> 1) + (y < 0)
    return (y >> shift) + (remainder > threshold)


def requantize(
    acc: np.ndarray,
    multiplier: np.ndarray | int,
    shift: np.ndarray | int,
    zero_point: np.ndarray | int,
    relu: bool = False,
) -> np.ndarray:
    """int8 values (as int64) of int32 accumulators ``acc`` (see the module docstring).

    ``multiplier`` (int32), ``shift`` (0..63, right shift) and ``zero_point`` (int8) broadcast
    against ``acc`` (e.g. per-lane rows of parameters). With ``relu`` the lower clamp is
    ``max(zero_point, -128)`` instead of -128."""
    x = _int_array("acc", acc, INT32_MIN, INT32_MAX)
    m = _int_array("multiplier", multiplier, INT32_MIN, INT32_MAX)
    s = _int_array("shift", shift, 0, MAX_SHIFT)
    zp = _int_array("zero_point", zero_point, -128, 127)
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), s) + zp
    lo = np.maximum(zp, -128) if relu else _I64(-128)
    return np.clip(y, lo, 127).astype(_I64)


def fp32_bits_to_bf16_bits(bits: np.ndarray) -> np.ndarray:
    """fp32 bit patterns (any integer dtype, low 32 bits used) -> bf16 bit patterns (int64).

    Round to nearest, ties to even; NaN -> ``(bits >> 16) | 0x40`` (sign kept, quiet)."""
    u = np.asarray(bits).astype(np.int64) & _I64(0xFFFFFFFF)
    rounded = (u + _I64(0x7FFF) + ((u >> 16) & 1)) >> 16
    nan = (u & _I64(0x7FFFFFFF)) > _I64(0x7F800000)
    return np.where(nan, (u >> 16) | _I64(0x40), rounded)


# -- Q entries ----------------------------------------------------------------------------------


def pack_qparams(
    multiplier: np.ndarray | int, shift: np.ndarray | int, zero_point: np.ndarray | int
) -> np.ndarray:
    """64-bit Q entries (uint64, broadcast shape): multiplier bits 0..31, shift 32..37, zero point 40..47."""
    m = _int_array("multiplier", multiplier, INT32_MIN, INT32_MAX)
    s = _int_array("shift", shift, 0, MAX_SHIFT)
    zp = _int_array("zero_point", zero_point, -128, 127)
    m, s, zp = np.broadcast_arrays(m, s, zp)
    u64 = np.uint64
    return (
        (m.astype(u64) & u64(0xFFFFFFFF))
        | (s.astype(u64) << u64(32))
        | ((zp.astype(u64) & u64(0xFF)) << u64(40))
    )


def unpack_qparams(entries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_qparams`: ``(multiplier, shift, zero_point)`` int64 arrays
    (bits 38..39 and 48..63 are ignored, as the hardware ignores them)."""
    e = np.asarray(entries).astype(np.uint64)
    m = (e & np.uint64(0xFFFFFFFF)).astype(_I64)
    m = np.where(m >= 1 << 31, m - (1 << 32), m)
    s = ((e >> np.uint64(32)) & np.uint64(0x3F)).astype(_I64)
    zp = ((e >> np.uint64(40)) & np.uint64(0xFF)).astype(_I64)
    zp = np.where(zp >= 128, zp - 256, zp)
    return m, s, zp


def quantize_multiplier(real_scale: float) -> tuple[int, int]:
    """``(multiplier, shift)`` with ``real_scale ~= multiplier * 2^-31 * 2^-shift``, ``shift`` in 0..63.

    TFLite's ``QuantizeMultiplier`` (``frexp``, ``multiplier = round(q * 2^31)`` half away from
    zero, a mantissa that rounds up to ``2^31`` is halved and the exponent incremented) restricted
    to right shifts: scales must be in [0, 1) (ConfigError otherwise). A scale just below 1 whose
    mantissa rounds up to 1.0 gives ``(INT32_MAX, 0)``; scales below ``2^-64`` (and 0) give
    ``(0, 0)``, as TFLite flushes tiny scales to zero."""
    scale = float(real_scale)
    if not math.isfinite(scale) or not 0.0 <= scale < 1.0:
        raise ConfigError("scale", "a requantization scale in [0, 1) (right shifts only)", real_scale)
    if scale == 0.0:
        return 0, 0
    q, exponent = math.frexp(scale)  # scale = q * 2^exponent, q in [0.5, 1), exponent <= 0
    fixed = int(math.floor(q * (1 << 31) + 0.5))  # q > 0: TfLiteRound = half away from zero
    if fixed == 1 << 31:
        fixed //= 2
        exponent += 1
    if exponent > 0:  # rounded up to exactly 1.0: the closest right-shift encoding
        return INT32_MAX, 0
    if -exponent > MAX_SHIFT:
        return 0, 0
    return fixed, -exponent
