"""STORE output-stage numerics (sim/requant.py) against hand-checked vectors and exact references."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from tpegen.errors import ConfigError
from tpegen.sim.requant import (
    INT32_MAX,
    INT32_MIN,
    fp32_bits_to_bf16_bits,
    pack_qparams,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    unpack_qparams,
)

# -- independent scalar reference (Python ints and exact rationals) -----------------------------


def _floor_half_up(v: Fraction) -> int:
    return math.floor(v + Fraction(1, 2))


def _half_away(v: Fraction) -> int:
    r = math.floor(abs(v) + Fraction(1, 2))
    return r if v >= 0 else -r


def ref_high_mul(x: int, m: int) -> int:
    """x * m * 2 / 2^32 rounded to nearest, ties toward +inf; INT32_MIN^2 saturates."""
    if x == m == INT32_MIN:
        return INT32_MAX
    return _floor_half_up(Fraction(x * m, 1 << 31))


def ref_divide(y: int, shift: int) -> int:
    return _half_away(Fraction(y, 1 << shift))


def ref_requantize(x: int, m: int, shift: int, zp: int, relu: bool) -> int:
    y = ref_divide(ref_high_mul(x, m), shift) + zp
    lo = max(zp, -128) if relu else -128
    return min(max(y, lo), 127)


# -- hand-checked vectors from the gemmlowp definitions -----------------------------------------


@pytest.mark.parametrize(
    ("x", "m", "want"),
    [
        (1, 1 << 30, 1),  # +0.5 -> 1 (nudge 2^30: (2^30 + 2^30) / 2^31 = 1)
        (-1, 1 << 30, 0),  # -0.5 -> 0 ((-2^30 + 1 - 2^30) / 2^31 truncates to 0)
        (3, 1 << 30, 2),  # +1.5 -> 2
        (-3, 1 << 30, -1),  # -1.5 -> -1
        (-3, -(1 << 30), 2),
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the saturating case
        (INT32_MIN, INT32_MAX, -INT32_MAX),  # -2^31 (2^31 - 1) / 2^31 = -(2^31 - 1) exactly
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),  # (2^31-1)^2 / 2^31 = 2^31 - 2 + 2^-31
        (12345, 0, 0),
        (1000, INT32_MAX, 1000),  # 1000 (1 - 2^-31) rounds to 1000
    ],
)
def test_high_mul_vectors(x, m, want):
    assert int(saturating_rounding_doubling_high_mul(x, m)) == want
    assert ref_high_mul(x, m) == want


@pytest.mark.parametrize(
    ("y", "shift", "want"),
    [
        (5, 1, 3),  # 2.5 -> 3 (ties away from zero)
        (-5, 1, -3),  # -2.5 -> -3
        (7, 2, 2),  # 1.75
        (-6, 2, -2),  # -1.5 -> -2
        (-5, 2, -1),  # -1.25
        (6, 2, 2),  # 1.5 -> 2
        (-7, 0, -7),  # shift 0 is the identity
        (INT32_MAX, 0, INT32_MAX),
        (INT32_MIN, 31, -1),
        (INT32_MAX, 31, 1),  # 1 - 2^-31
        (INT32_MIN, 32, -1),  # exactly -1/2: a tie, away from zero
        (INT32_MIN + 1, 32, 0),
        (INT32_MAX, 32, 0),
        (INT32_MIN, 63, 0),  # large shifts in 64-bit arithmetic
        (-1, 63, 0),
        (INT32_MAX, 63, 0),
    ],
)
def test_divide_by_pot_vectors(y, shift, want):
    assert int(rounding_divide_by_pot(y, shift)) == want
    assert ref_divide(y, shift) == want


def test_requantize_vectors():
    half = 1 << 30  # multiplier 2^30 = scale 0.5
    acc = np.array([100, -100, 1000, -1000, 0, 3, -3])
    # 3 * 0.5 = 1.5 -> 2 (tie up), / 2 = 1 -> 4;
    # -3 * 0.5 = -1.5 -> -1 (tie toward +inf), / 2 = -0.5 -> -1 (tie away) -> 2
    assert requantize(acc, half, 1, 3).tolist() == [28, -22, 127, -128, 3, 4, 2]
    assert requantize(acc, half, 1, 3, relu=True).tolist() == [28, 3, 127, 3, 3, 4, 3]
    assert requantize(acc, half, 1, -128, relu=True).tolist() == [-103, -128, 122, -128, -128, -127, -128]
    # per-lane broadcasting of parameter rows
    lanes = np.array([[10, 10, 10, 10]])
    got = requantize(
        lanes, np.array([half, 1 << 29, INT32_MAX, 0]), np.array([0, 0, 1, 0]), np.array([0, 1, 2, -5])
    )
    assert got.tolist() == [[5, 4, 7, -5]]


def test_requantize_rejects_out_of_range():
    with pytest.raises(ConfigError, match="acc"):
        requantize(np.array([1 << 31]), 1, 0, 0)
    with pytest.raises(ConfigError, match="shift"):
        requantize(np.array([1]), 1, 64, 0)
    with pytest.raises(ConfigError, match="zero_point"):
        requantize(np.array([1]), 1, 0, 128)


def test_requantize_random_against_exact_reference():
    rng = np.random.default_rng(7)
    n = 3000
    x = np.concatenate(
        [rng.integers(INT32_MIN, INT32_MAX + 1, n // 3), rng.integers(-(1 << 20), 1 << 20, n - n // 3)]
    )
    m = np.concatenate(
        [rng.integers(1 << 30, 1 << 31, n // 2), rng.integers(INT32_MIN, INT32_MAX + 1, n - n // 2)]
    )
    s = np.concatenate([rng.integers(0, 24, n // 2), rng.integers(0, 64, n - n // 2)])
    zp = rng.integers(-128, 128, n)
    # edge values mixed in
    x[:60] = rng.choice([INT32_MIN, INT32_MAX, -1, 0, 1, -(1 << 30), 1 << 30], 60)
    m[:60] = rng.choice([INT32_MIN, INT32_MAX, 1 << 30, -(1 << 30), 1, -1], 60)
    rng.shuffle(s)
    for relu in (False, True):
        got = requantize(x, m, s, zp, relu)
        want = [
            ref_requantize(int(a), int(b), int(c), int(d), relu)
            for a, b, c, d in zip(x, m, s, zp, strict=True)
        ]
        assert got.tolist() == want
    # exact ties of both steps, both signs
    xs = np.arange(-64, 65)
    for shift in (0, 1, 2, 5):
        got = requantize(xs, 1 << 30, shift, 0)
        assert got.tolist() == [ref_requantize(int(v), 1 << 30, shift, 0, False) for v in xs]


# -- fp32 -> bf16 -------------------------------------------------------------------------------


def _ml_dtypes_bf16(bits: np.ndarray) -> np.ndarray:
    return bits.astype(np.uint32).view(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.int64)


def test_bf16_matches_ml_dtypes_on_every_non_nan_class():
    rng = np.random.default_rng(3)
    sign = rng.integers(0, 2, 4000).astype(np.uint32) << np.uint32(31)
    normals = (
        sign
        | (rng.integers(1, 255, 4000).astype(np.uint32) << np.uint32(23))
        | rng.integers(0, 1 << 23, 4000).astype(np.uint32)
    )
    subnormals = sign | rng.integers(0, 1 << 23, 4000).astype(np.uint32)
    hi16 = rng.integers(0, 0x7F80, 2000).astype(np.uint32)
    ties = (hi16 << np.uint32(16)) | np.uint32(0x8000)  # exactly half way, both parities of bit 16
    near = (hi16 << np.uint32(16)) | rng.choice(
        np.array([0x7FFF, 0x8001, 0, 1, 0xFFFF], dtype=np.uint32), 2000
    )
    specials = np.array(
        [
            0,
            0x80000000,
            0x7F800000,
            0xFF800000,
            0x7F7FFFFF,
            0xFF7FFFFF,
            0x7F7F8000,
            0x7F7F7FFF,
            1,
            0x8000,
            0x807F8000,
        ],
        dtype=np.uint32,
    )
    every = rng.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
    every = every[(every & np.uint32(0x7FFFFFFF)) <= np.uint32(0x7F800000)]
    for bits in (normals, subnormals, ties, ties | np.uint32(1 << 31), near, specials, every):
        np.testing.assert_array_equal(fp32_bits_to_bf16_bits(bits), _ml_dtypes_bf16(bits))
    assert fp32_bits_to_bf16_bits(np.array([0x7F7FFFFF, 0x3F808000, 0x3F818000])).tolist() == [
        0x7F80,
        0x3F80,
        0x3F82,
    ]


def test_bf16_nan_is_quiet_and_keeps_sign():
    nans = np.array([0x7F800001, 0xFF800001, 0x7FC12345, 0xFFFFFFFF, 0x7FBFFFFF])
    assert fp32_bits_to_bf16_bits(nans).tolist() == [0x7FC0, 0xFFC0, 0x7FC1, 0xFFFF, 0x7FFF]


# -- Q entries and multipliers ------------------------------------------------------------------


def test_pack_qparams_layout_and_round_trip():
    e = pack_qparams(-1, 5, -2)
    assert int(e) == 0xFFFFFFFF | 5 << 32 | 0xFE << 40
    assert int(pack_qparams(1 << 30, 63, 127)) == (1 << 30) | 63 << 32 | 127 << 40
    rng = np.random.default_rng(5)
    m = rng.integers(INT32_MIN, INT32_MAX + 1, 500)
    s = rng.integers(0, 64, 500)
    zp = rng.integers(-128, 128, 500)
    packed = pack_qparams(m, s, zp)
    assert packed.dtype == np.uint64 and not np.any(packed >> np.uint64(48))
    for got, want in zip(unpack_qparams(packed), (m, s, zp), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError, match="shift"):
        pack_qparams(1, 64, 0)


def test_quantize_multiplier():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.25) == (1 << 30, 1)
    assert quantize_multiplier(0.75) == (3 << 29, 0)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1 - 2.0**-40) == (INT32_MAX, 0)
    assert quantize_multiplier(2.0**-70) == (0, 0)
    for bad in (1.0, 1.5, -0.1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="scale"):
            quantize_multiplier(bad)
    rng = np.random.default_rng(9)
    for scale in np.exp2(rng.uniform(-40, -1e-9, 300)):
        m, s = quantize_multiplier(float(scale))
        assert 1 << 30 <= m <= INT32_MAX and 0 <= s <= 63
        assert abs(Fraction(m, 1 << (31 + s)) - Fraction(float(scale))) <= Fraction(1, 1 << (32 + s))
    # used end to end: requantize approximates round(acc * scale)
    m, s = quantize_multiplier(0.0123)
    acc = np.arange(-10000, 10000, 37)
    want = np.clip(np.round(acc * 0.0123), -128, 127)
    assert np.abs(requantize(acc, m, s, 0) - want).max() <= 1
