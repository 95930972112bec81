"""The FMA numeric model (tpegen.sim.fp) against an independent exact-integer reference."""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from fp_reference import fma_step, ieee_top

from tpegen.errors import ConfigError
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3_IEEE, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FmaConfig

# ------------------------------------------------------------------------------------------------
# independent reference: exact rationals (Python ints / Fraction), IEEE rounding written from scratch
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 18)
def ref_decode(bits: int, fmt: fp.FloatFormat):
    """-> ('nan', 0) | ('inf', sign) | (Fraction magnitude, sign)."""
    sign = (bits >> (fmt.exp_bits + fmt.man_bits)) & 1
    e = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    f = bits & ((1 << fmt.man_bits) - 1)
    if fmt.finite_only:  # OCP "fn": only S.11..1.11..1 is special (NaN); no infinities
        if e == (1 << fmt.exp_bits) - 1 and f == (1 << fmt.man_bits) - 1:
            return ("nan", 0)
    elif e == (1 << fmt.exp_bits) - 1:
        return ("nan", 0) if f else ("inf", sign)
    bias = (1 << (fmt.exp_bits - 1)) - 1
    if e == 0:
        return Fraction(f) * Fraction(2) ** (1 - bias - fmt.man_bits), sign
    return Fraction(f + (1 << fmt.man_bits)) * Fraction(2) ** (e - bias - fmt.man_bits), sign


def ref_round(x: Fraction, zero_sign: int, fmt: fp.FloatFormat, rounding: str) -> int:
    """Correctly round the exact rational ``x`` into ``fmt`` bits (IEEE rules)."""
    bias = (1 << (fmt.exp_bits - 1)) - 1
    emin, m = 1 - bias, fmt.man_bits
    if x == 0:
        return zero_sign << (fmt.width - 1)
    sign = int(x < 0)
    x = abs(x)
    lead = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** lead > x:
        lead -= 1
    e = max(lead, emin)
    scaled = x / Fraction(2) ** (e - m)
    q = scaled.numerator // scaled.denominator
    rem = scaled - q
    if rounding == "rne" and (rem > Fraction(1, 2) or (rem == Fraction(1, 2) and q & 1)):
        q += 1
    if q == 1 << (m + 1):
        q >>= 1
        e += 1
    biased = e + bias if q >> m else 0
    if biased >= (1 << fmt.exp_bits) - 1:
        body = fmt.inf_bits if rounding == "rne" else fmt.max_finite_bits
    else:
        body = (biased << m) | (q & ((1 << m) - 1))
    return (sign << (fmt.width - 1)) | body


def ref_fma(a: int, w: int, c: int, afmt, wfmt, cfmt, rounding: str) -> int:
    va, sa = ref_decode(a, afmt)
    vw, sw = ref_decode(w, wfmt)
    vc, sc = ref_decode(c, cfmt)
    nan = cfmt.nan_bits
    if "nan" in (va, vw, vc):
        return nan
    sp = sa ^ sw
    if va == "inf" or vw == "inf":
        if vw == 0 or va == 0:
            return nan
        if vc == "inf" and sc != sp:
            return nan
        return (sp << (cfmt.width - 1)) | cfmt.inf_bits
    if vc == "inf":
        return (sc << (cfmt.width - 1)) | cfmt.inf_bits
    exact = (-1) ** sp * va * vw + (-1) ** sc * vc
    return ref_round(exact, sp & sc, cfmt, rounding)


def check_exact(cfg: FmaConfig, a, w, c):
    a, w, c = (np.asarray(x, dtype=np.int64).ravel() for x in np.broadcast_arrays(a, w, c))
    got = fp.fma(a, w, c, cfg)
    want = np.array(
        [
            ref_fma(int(x), int(y), int(z), cfg.a_fmt, cfg.w_fmt, cfg.acc_fmt, cfg.rounding)
            for x, y, z in zip(a, w, c, strict=True)
        ],
        dtype=np.int64,
    )
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{bad.size} mismatches, first: a={a[bad[0]]:#x} w={w[bad[0]]:#x} "
        f"c={c[bad[0]]:#x} got={got[bad[0]]:#x} want={want[bad[0]]:#x}"
    )


def edge_values(fmt: fp.FloatFormat) -> np.ndarray:
    m, e = fmt.man_bits, fmt.exp_bits
    vals = [
        0,
        1,
        2,
        (1 << m) - 1,
        1 << m,
        (1 << m) + 1,
        fmt.bias << m,
        (fmt.bias << m) | 1,
        ((fmt.bias - 1) << m) | ((1 << m) - 1),
        fmt.max_finite_bits,
        fmt.max_finite_bits - 1,
        fmt.inf_bits,
        fmt.nan_bits,
        fmt.inf_bits | 1,
        ((1 << e) - 2) << m,
        3 << (m - 1),
    ]
    vals = sorted(set(vals))
    return np.array(vals + [v | fmt.sign_bit for v in vals], dtype=np.int64)


def random_bits(rng, fmt, n, *, specials=0.02):
    bits = rng.integers(0, 1 << fmt.width, n, dtype=np.int64)
    # bias toward the interesting exponent range, keep some extremes
    keep = rng.random(n) < 0.3
    exps = rng.integers(fmt.bias - 12, fmt.bias + 12, n)
    mid = (bits & ((1 << fmt.man_bits) - 1)) | (exps << fmt.man_bits) | (bits & fmt.sign_bit)
    bits = np.where(keep, bits, mid)
    sp = rng.random(n) < specials
    return np.where(sp, fmt.inf_bits | (bits & fmt.sign_bit), bits)


# ------------------------------------------------------------------------------------------------
# formats and conversions
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [BF16, FP16, FP32, FP8_E4M3_IEEE, FP8_E4M3FN, FP8_E5M2])
def test_decode_quantize_roundtrip_exhaustive_or_sampled(fmt):
    if fmt.width <= 16:
        bits = np.arange(1 << fmt.width, dtype=np.int64)
    else:
        bits = np.random.default_rng(0).integers(0, 1 << 32, 100_000, dtype=np.int64)
    vals = fp.decode(bits, fmt)
    back = fp.quantize(vals, fmt)
    nan = np.isnan(vals)
    assert np.array_equal(back[~nan], bits[~nan])
    assert np.all(back[nan] == fmt.nan_bits)
    ref = [ref_decode(int(b), fmt) for b in bits[:: max(1, bits.size // 3000)]]
    for (v, s), d in zip(ref, vals[:: max(1, bits.size // 3000)], strict=True):
        if v == "nan":
            assert np.isnan(d)
        elif v == "inf":
            assert d == (-np.inf if s else np.inf)
        else:
            assert d == (-1) ** s * float(v) and np.signbit(d) == bool(s)


def test_quantize_matches_ml_dtypes_rne():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.standard_normal(50_000) * 10.0 ** rng.integers(-45, 40, 50_000),
            [0.0, -0.0, np.inf, -np.inf, 3.5e38, 1e-40, -1e-45, 2.0**-134],
        ]
    )
    for fmt, dt in ((BF16, ml_dtypes.bfloat16), (FP16, np.float16), (FP32, np.float32)):
        with np.errstate(over="ignore"):
            want = x.astype(dt).view(np.uint16 if fmt.width == 16 else np.uint32).astype(np.int64)
        assert np.array_equal(fp.quantize(x, fmt), want), fmt.name
    with np.errstate(over="ignore"):
        e5 = x.astype(ml_dtypes.float8_e5m2).view(np.uint8).astype(np.int64)
    fin = np.abs(x) < 57344  # ml_dtypes e5m2 saturation differs only beyond max
    assert np.array_equal(fp.quantize(x, FP8_E5M2)[fin], e5[fin])


def test_quantize_trunc():
    x = np.array([1.0 + 2.0**-8 + 2.0**-9, -(1.0 + 2.0**-7 * 1.99), 1e39, -1e39])
    got = fp.quantize(x, BF16, "trunc")
    assert list(got) == [0x3F80, 0xBF81, BF16.max_finite_bits, BF16.max_finite_bits | 0x8000]


# ------------------------------------------------------------------------------------------------
# exact mode: correctly rounded
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "in_fmt,acc_fmt",
    [
        (FP8_E5M2, FP16),
        (FP8_E4M3_IEEE, FP16),
        (FP8_E4M3_IEEE, FP8_E4M3_IEEE),
        (FP8_E5M2, FP8_E5M2),
        (FP8_E4M3FN, FP16),  # into fp32: tests/test_fp8_ocp.py (every product against ml_dtypes)
        (FP8_E4M3FN, FP8_E5M2),
    ],
)
@pytest.mark.parametrize("rounding", ["rne", "trunc"])
def test_exhaustive_fp8_products(in_fmt, acc_fmt, rounding):
    cfg = FmaConfig(in_fmt, in_fmt, acc_fmt, rounding)
    ab = np.arange(256, dtype=np.int64)
    a, w = np.meshgrid(ab, ab, indexing="ij")
    one = acc_fmt.bias << acc_fmt.man_bits
    cs = [0, one | 5 | acc_fmt.sign_bit] if rounding == "rne" else [one + 3]
    for c in cs:
        check_exact(cfg, a, w, c)


@pytest.mark.parametrize("in_fmt,acc_fmt", [(FP8_E5M2, FP16), (FP8_E4M3_IEEE, FP8_E4M3_IEEE)])
def test_exhaustive_fp8_addends(in_fmt, acc_fmt):
    """Every accumulator value against a few products (exercises alignment both ways)."""
    cfg = FmaConfig(in_fmt, in_fmt, acc_fmt)
    c = np.arange(1 << acc_fmt.width, dtype=np.int64)
    rng = np.random.default_rng(2)
    for a, w in rng.integers(0, 256, (4, 2)):
        check_exact(cfg, a, w, c[:: 1 if acc_fmt.width == 8 else 7])


@pytest.mark.parametrize("acc_fmt", [FP32, BF16, FP16])
@pytest.mark.parametrize("rounding", ["rne", "trunc"])
def test_random_bf16(acc_fmt, rounding):
    n = 22_000 if rounding == "rne" and acc_fmt is not FP16 else 4_000
    rng = np.random.default_rng(hash((acc_fmt.name, rounding)) & 0xFFFF)
    cfg = FmaConfig(BF16, BF16, acc_fmt, rounding)
    a = random_bits(rng, BF16, n)
    w = random_bits(rng, BF16, n)
    # accumulators near the product (cancellation-prone) half the time
    prod = fp.quantize(
        fp.decode(a, BF16) * fp.decode(w, BF16) * (1 + rng.standard_normal(n) * 2.0**-6), acc_fmt
    )
    c = np.where(rng.random(n) < 0.5, random_bits(rng, acc_fmt, n), prod ^ acc_fmt.sign_bit)
    check_exact(cfg, a, w, c)


def test_random_fp16_inputs_fp32_acc():
    rng = np.random.default_rng(5)
    n = 5_000
    check_exact(
        FmaConfig(FP16, FP16, FP32),
        random_bits(rng, FP16, n),
        random_bits(rng, FP16, n),
        random_bits(rng, FP32, n),
    )


def test_edge_cases_cross_product():
    for acc in (FP32, BF16):
        for rounding in ("rne", "trunc"):
            cfg = FmaConfig(BF16, BF16, acc, rounding)
            ea, ec = edge_values(BF16), edge_values(acc)
            a, w, c = (x.ravel() for x in np.meshgrid(ea, ea, ec, indexing="ij"))
            check_exact(cfg, a, w, c)


def q(x, fmt=BF16):
    return fp.quantize(np.asarray(x, dtype=np.float64), fmt)


def test_named_edge_cases():
    cfg = FmaConfig(BF16, BF16, FP32)
    f32 = lambda x: int(q(x, FP32))  # noqa: E731
    one, mone = int(q(1.0)), int(q(-1.0))
    # total cancellation: +0 (RNE and trunc); -0 + -0 = -0; (+0)(-1) + (+0) = +0
    assert fp.fma(one, one, f32(-1.0), cfg) == 0
    assert fp.fma(one, one, f32(-1.0), FmaConfig(rounding="trunc")) == 0
    assert fp.fma(0, mone, FP32.sign_bit, cfg) == FP32.sign_bit
    assert fp.fma(0, mone, 0, cfg) == 0
    assert fp.fma(BF16.sign_bit, BF16.sign_bit, FP32.sign_bit, cfg) == 0
    # near cancellation: (1+2^-7)(1-2^-7) - 1 = -2^-14
    assert fp.decode(fp.fma(q(1 + 2**-7), q(1 - 2**-7), f32(-1.0), cfg), FP32) == -(2.0**-14)
    # infinities and NaN
    assert fp.fma(BF16.inf_bits, one, f32(5.0), cfg) == FP32.inf_bits
    assert fp.fma(BF16.inf_bits, 0, f32(5.0), cfg) == FP32.nan_bits
    assert fp.fma(BF16.inf_bits, one, FP32.inf_bits | FP32.sign_bit, cfg) == FP32.nan_bits
    assert fp.fma(one, one, FP32.inf_bits | FP32.sign_bit, cfg) == FP32.inf_bits | FP32.sign_bit
    assert fp.fma(BF16.nan_bits | BF16.sign_bit, one, 0, cfg) == FP32.nan_bits
    # overflow: rne -> inf, trunc -> max finite
    big = BF16.max_finite_bits
    assert fp.fma(big, big, 0, cfg) == FP32.inf_bits
    assert (
        fp.fma(big, big | BF16.sign_bit, 0, FmaConfig(rounding="trunc"))
        == FP32.max_finite_bits | FP32.sign_bit
    )
    # subnormal result and subnormal inputs
    tiny = 1  # smallest bf16 subnormal 2^-133
    assert fp.decode(fp.fma(tiny, q(2.0**10), 0, cfg), FP32) == 2.0**-123
    assert fp.fma(tiny, tiny, 0, cfg) == 0  # 2^-266 rounds to +0
    assert fp.fma(tiny, tiny | BF16.sign_bit, 0, cfg) == FP32.sign_bit  # keeps its sign
    assert fp.fma(tiny, q(2.0**-16), 0, cfg) == 1  # 2^-149 exactly: smallest fp32 subnormal
    assert fp.fma(tiny, q(2.0**-17), 0, cfg) == 0  # tie -> even (0)
    assert fp.fma(tiny, q(1.5 * 2.0**-17), 0, cfg) == 1


# ------------------------------------------------------------------------------------------------
# approximate modes
# ------------------------------------------------------------------------------------------------


def _exact_lz(a, w, c, cfg):
    """Leading-zero count of the exact sum below T = max(Tp, Tc) + 1, limited by the output's
    minimum exponent (10**6 for a zero sum), and T itself (independent of the model)."""
    out, tops_t = [], []
    for x, y, z in zip(a, w, c, strict=True):
        va, sa = ref_decode(int(x), cfg.a_fmt)
        vw, sw = ref_decode(int(y), cfg.w_fmt)
        vc, sc = ref_decode(int(z), cfg.acc_fmt)
        tops = []
        for v, f in ((va, cfg.a_fmt), (vw, cfg.w_fmt), (vc, cfg.acc_fmt)):
            e = (int(fp.quantize(float(v), f)) >> f.man_bits) & f.exp_all_ones
            tops.append(max(e, 1) - f.bias)
        tp = tops[0] + tops[1] + 1
        t = (tops[2] if va * vw == 0 else max(tp, tops[2])) + 1
        tops_t.append(t)
        s = (-1) ** (sa ^ sw) * va * vw + (-1) ** sc * vc
        if s == 0:
            out.append(10**6)
            continue
        s = abs(s)
        lead = s.numerator.bit_length() - s.denominator.bit_length()
        if Fraction(2) ** lead > s:
            lead -= 1
        out.append(min(t - lead, t - cfg.acc_fmt.emin))
    return np.array(out), np.array(tops_t)


def _near_cancel(rng, n, acc=BF16):
    a = fp.quantize(1 + rng.random(n), BF16)
    w = fp.quantize(-(1 + rng.random(n)) * 2.0 ** rng.integers(-3, 3, n), BF16)
    p = -fp.decode(a, BF16) * fp.decode(w, BF16)
    c = fp.quantize(p * (1 + rng.standard_normal(n) * 2.0 ** -rng.integers(3, 20, n)), acc)
    return a, w, c


@pytest.mark.parametrize("window,gran", [(4, 1), (8, 1), (8, 4), (None, 4), (12, 2)])
def test_approximate_equals_exact_iff_shift_fits(window, gran):
    rng = np.random.default_rng(window or 0)
    a, w, c = _near_cancel(rng, 3000)
    cfg = FmaConfig(BF16, BF16, BF16, norm_window=window, shift_granularity=gran)
    ex = fp.fma(a, w, c, FmaConfig(BF16, BF16, BF16))
    ap = fp.fma(a, w, c, cfg)
    lz, t = _exact_lz(a, w, c, FmaConfig(BF16, BF16, BF16))
    fits = (lz % gran == 0) & ((lz < window) if window else True) | (lz == 10**6)
    assert np.array_equal(ap[fits], ex[fits])
    assert np.any(ap[~fits] != ex[~fits])  # the approximation must show somewhere
    va, vw, vc, vap = (fp.decode(x, BF16) for x in (a, w, c, ap))
    p = BF16.man_bits + 1
    for i in np.flatnonzero(lz != 10**6):
        x, y, z, got = (Fraction(float(v[i])) for v in (va, vw, vc, vap))
        # Bit for bit: the exact sum rounded on the coarse grid that the normalizer's shift gives.
        want, _ = fma_step(z, ieee_top(z, BF16), x, y, cfg)
        assert got == want, (hex(a[i]), hex(w[i]), hex(c[i]), float(got), float(want))
        # A priori from S and G alone: the shift falls short of lz by at most max(lz - S, 0) + G - 1
        # bits, so the error is at most that power of two times the exact result's half-ulp
        # 2**(T - lz - p) (for lz < S and G = 1 this is correct rounding).
        short = max(int(lz[i]) - (window or 10**6), 0) + gran - 1
        assert abs(got - (x * y + z)) <= Fraction(2) ** (int(t[i]) - int(lz[i]) - p + short), i


def test_crafted_window_overflow():
    # 1.0 - (1+2^-7)(1-2^-7) = 2^-14: in bf16-acc, leading one 15 below T, beyond a 4-bit window
    a, w, c = q(1 + 2**-7), q(-(1 - 2**-7)), q(1.0)
    exact = FmaConfig(BF16, BF16, BF16)
    assert fp.decode(fp.fma(a, w, c, exact), BF16) == 2.0**-14
    assert fp.fma(a, w, c, FmaConfig(BF16, BF16, BF16, norm_window=4)) == 0  # grid 2^-10: rounds to 0
    assert fp.decode(fp.fma(a, w, c, FmaConfig(BF16, BF16, BF16, norm_window=16)), BF16) == 2.0**-14
    assert fp.decode(fp.fma(a, w, c, FmaConfig(BF16, BF16, BF16, shift_granularity=4)), BF16) == 2.0**-14


def test_trunc_vs_rne():
    a, w = q(1 + 2**-7), q(1 + 2**-7)  # 1 + 2^-6 + 2^-14
    rne = fp.fma(a, w, q(2**-8), FmaConfig(BF16, BF16, BF16))
    tr = fp.fma(a, w, q(2**-8), FmaConfig(BF16, BF16, BF16, rounding="trunc"))
    assert fp.decode(rne, BF16) == 1 + 2**-6 + 2**-7 and fp.decode(tr, BF16) == 1 + 2**-6
    rng = np.random.default_rng(3)
    a, w, c = (random_bits(rng, BF16, 5000, specials=0) for _ in range(3))
    cfg_r, cfg_t = FmaConfig(BF16, BF16, BF16), FmaConfig(BF16, BF16, BF16, rounding="trunc")
    vr, vt = fp.decode(fp.fma(a, w, c, cfg_r), BF16), fp.decode(fp.fma(a, w, c, cfg_t), BF16)
    exact = fp.decode(a, BF16) * fp.decode(w, BF16) + fp.decode(c, BF16)
    ok = np.isfinite(exact) & np.isfinite(vt) & np.isfinite(vr)
    assert np.all(np.abs(vt[ok]) <= np.abs(exact[ok]))  # truncation never increases magnitude
    assert np.any(vt[ok] != vr[ok])


# ------------------------------------------------------------------------------------------------
# relaxed format, normalizer, gemm chain
# ------------------------------------------------------------------------------------------------


def test_relaxed_exact_single_step_is_correctly_rounded():
    rng = np.random.default_rng(4)
    n = 3000
    cfg = FmaConfig(BF16, BF16, FP32, normalize_in_pe=False)
    a, w = random_bits(rng, BF16, n), random_bits(rng, BF16, n)
    # from +0 one relaxed step is exact (product fits), then the normalizer rounds once
    out = fp.normalize_relaxed(fp.fma(a, w, 0, cfg), cfg)
    check = np.array([ref_fma(int(x), int(y), 0, BF16, BF16, FP32, "rne") for x, y in zip(a, w, strict=True)])
    assert np.array_equal(out, check)


def test_normalizer_correct_rounding():
    cfg = FmaConfig(BF16, BF16, BF16, normalize_in_pe=False)
    rf = cfg.relaxed
    rng = np.random.default_rng(6)
    n = 4000
    man = rng.integers(0, 1 << rf.man_bits, n) >> rng.integers(0, rf.man_bits, n)
    ex = rng.integers(0, 1 << rf.exp_bits, n)
    bits = np.where(man == 0, 0, man | (ex << rf.exp_offset)) | (rng.integers(0, 2, n) << rf.sign_offset)
    got = fp.normalize_relaxed(bits, cfg)
    for b, g in zip(bits, got, strict=True):
        s = (int(b) >> rf.sign_offset) & 1
        m = int(b) & ((1 << rf.man_bits) - 1)
        e = (int(b) >> rf.exp_offset) & ((1 << rf.exp_bits) - 1)
        v = Fraction(m) * Fraction(2) ** (e - rf.bias - rf.man_bits + 1)
        assert g == ref_round(-v if s else v, s, BF16, "rne"), hex(int(b))


@pytest.mark.parametrize(
    "cfg",
    [
        FmaConfig(BF16, BF16, FP32),
        FmaConfig(BF16, BF16, BF16, norm_window=8, shift_granularity=4),
        FmaConfig(BF16, BF16, BF16, normalize_in_pe=False, norm_window=8),
        FmaConfig(FP8_E4M3_IEEE, FP8_E4M3_IEEE, FP16, rounding="trunc"),
    ],
)
def test_gemm_chain_equals_fma_loop(cfg):
    rng = np.random.default_rng(7)
    A = fp.quantize(rng.standard_normal((5, 17)), cfg.a_fmt)
    W = fp.quantize(rng.standard_normal((17, 6)), cfg.w_fmt)
    C = fp.gemm_chain(A, W, cfg)
    for i, j in itertools.product(range(5), range(6)):
        acc = 0
        for k in range(17):
            acc = int(fp.fma(A[i, k], W[k, j], acc, cfg))
        if not cfg.normalize_in_pe:
            acc = int(fp.normalize_relaxed(acc, cfg))
        assert C[i, j] == acc
    ref = fp.decode(A, cfg.a_fmt) @ fp.decode(W, cfg.w_fmt)
    assert np.allclose(fp.decode(C, cfg.acc_fmt), ref, rtol=0.05, atol=0.05)


def test_relaxed_chain_close_to_exact_chain():
    rng = np.random.default_rng(8)
    A = fp.quantize(rng.standard_normal((16, 64)), BF16)
    W = fp.quantize(rng.standard_normal((64, 16)), BF16)
    exact = fp.decode(fp.gemm_chain(A, W, FmaConfig(BF16, BF16, BF16)), BF16)
    relaxed = fp.decode(fp.gemm_chain(A, W, FmaConfig(BF16, BF16, BF16, normalize_in_pe=False)), BF16)
    ref = fp.decode(A, BF16) @ fp.decode(W, BF16)
    assert np.mean(np.abs(relaxed - ref)) <= np.mean(np.abs(exact - ref)) * 1.05


def test_config_validation():
    with pytest.raises(ConfigError, match="pe.norm_window"):
        FmaConfig(norm_window=0)
    with pytest.raises(ConfigError, match="pe.shift_granularity"):
        FmaConfig(shift_granularity=3)
    with pytest.raises(ConfigError, match="pe.norm_window"):
        FmaConfig(norm_window=6, shift_granularity=4)
    with pytest.raises(ConfigError, match="pe.rounding"):
        FmaConfig(rounding="rtz")
    with pytest.raises(ConfigError, match="pe.acc_fmt"):
        FmaConfig(FP32, FP32, FP32)
    cfg = FmaConfig()
    assert (cfg.prod_width, cfg.addend_width, cfg.window, cfg.sum_width) == (16, 24, 41, 43)
