"""L-Mul PE (``pe.multiplier: lmul``): the numeric model against the paper's formula on exact rationals.

Reference written from Luo & Sun, "Addition is All You Need for Energy-efficient Language Models"
(arXiv:2410.00907, Sec. 2.2), not from the model's code: for normal ``x = (1 + x_m) 2**x_e`` and
``y = (1 + y_m) 2**y_e``, ``L-Mul(x, y) = (1 + x_m + y_m + 2**-l(m)) 2**(x_e + y_e)`` with the sign
XOR, ``l(m) = m`` (m <= 3), ``3`` (m = 4), ``4`` (m > 4); plus the documented policy for what the
paper leaves open (zeros and subnormals read as signed zeros; the exact sum ``c + L-Mul(a, w)`` is
rounded once to the accumulator format). The RTL modes (10k Verilator triples each) are in
``tests/test_fma_datapath.py``; here also the ``lmul_bf16`` config through ``tpegen gemm``/``verify``.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import yaml
from conftest import CONFIGS
from fp_reference import round_ieee

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FloatFormat, FmaConfig
from tpegen.sw.verify import verify

L_OF_M = {2: 2, 3: 3, 4: 3, 7: 4, 10: 4, 23: 4}  # the paper's l(m) for the mantissa widths in use


def paper_lmul(a: int, w: int, fa: FloatFormat, fw: FloatFormat) -> Fraction | None:
    """L-Mul of two codes from the paper's formula; 0 (signless) for zero/subnormal; None for inf/NaN."""
    parts = []
    for bits, f in ((a, fa), (w, fw)):
        m, e_bits = f.man_bits, f.exp_bits
        e, frac = (bits >> m) & ((1 << e_bits) - 1), bits & ((1 << m) - 1)
        all_ones = e == (1 << e_bits) - 1
        if all_ones and (not f.finite_only or frac == (1 << m) - 1):
            return None
        parts.append(None if e == 0 else (Fraction(frac, 1 << m), e - ((1 << (e_bits - 1)) - 1)))
    if parts[0] is None or parts[1] is None:
        return Fraction(0)
    (xm, xe), (ym, ye) = parts
    sign = -1 if ((a >> (fa.width - 1)) ^ (w >> (fw.width - 1))) & 1 else 1
    l_m = L_OF_M[max(fa.man_bits, fw.man_bits)]
    return sign * (1 + xm + ym + Fraction(1, 2**l_m)) * Fraction(2) ** (xe + ye)


def acc_value(bits: int, fmt: FloatFormat) -> Fraction:
    return Fraction(float(fp.decode(np.int64(bits), fmt)))


def expected_fma(a: int, w: int, c: int, cfg: FmaConfig) -> Fraction | str:
    """``fl(c + L-Mul(a, w))`` for finite operands: a Fraction, or ``'+inf'``/``'-inf'``/``'+max'``/..."""
    exact = acc_value(c, cfg.acc_fmt) + paper_lmul(a, w, cfg.a_fmt, cfg.w_fmt)
    r = round_ieee(exact, cfg.acc_fmt, cfg.rounding)
    if abs(r) > acc_value(cfg.acc_fmt.max_finite_bits, cfg.acc_fmt):
        return ("-" if exact < 0 else "+") + ("inf" if cfg.rounding == "rne" else "max")
    return r


def check_against_paper(a, w, c, cfg: FmaConfig) -> None:
    got = fp.fma(a, w, c, cfg)
    acc = cfg.acc_fmt
    maxv = float(fp.decode(acc.max_finite_bits, acc))
    for i in range(len(a)):
        want = expected_fma(int(a[i]), int(w[i]), int(c[i]), cfg)
        g = float(fp.decode(got[i], acc))
        where = (i, hex(a[i]), hex(w[i]), hex(c[i]), hex(got[i]))
        if isinstance(want, str):
            big = np.inf if want[1:] == "inf" else maxv
            assert g == (-big if want[0] == "-" else big), where
        else:
            assert g == float(want), (*where, float(want))


def normal_codes(fmt: FloatFormat, rng, n: int, spread: int | None = None) -> np.ndarray:
    """Random normal codes of ``fmt`` (exponent within ``bias ± spread`` if given), both signs."""
    m = fmt.man_bits
    top = (1 << fmt.exp_bits) - 1 if fmt.finite_only else (1 << fmt.exp_bits) - 2
    lo, hi = (1, top) if spread is None else (fmt.bias - spread, fmt.bias + spread)
    codes = (
        (rng.integers(lo, hi + 1, n) << m)
        | rng.integers(0, 1 << m, n)
        | (rng.integers(0, 2, n) << (m + fmt.exp_bits))
    )
    return np.where(((codes & ~fmt.sign_bit) == fmt.nan_bits) & fmt.finite_only, codes ^ 1, codes)


MODES = {
    "bf16_fp32": FmaConfig(BF16, BF16, FP32, multiplier="lmul"),
    "bf16_fp32_trunc": FmaConfig(BF16, BF16, FP32, "trunc", multiplier="lmul"),
    "e4m3fn_fp16": FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16, multiplier="lmul"),
    "e5m2_fp16": FmaConfig(FP8_E5M2, FP8_E5M2, FP16, multiplier="lmul"),
    "e5m2_e4m3fn_bf16": FmaConfig(FP8_E5M2, FP8_E4M3FN, BF16, multiplier="lmul"),
}


# ------------------------------------------------------------------------------------------------
# the product
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", [FP8_E4M3FN, FP8_E5M2], ids=["e4m3fn", "e5m2"])
def test_every_fp8_product_equals_the_paper_formula(fmt):
    """All 256 x 256 code pairs, ``+0 + L-Mul(a, w)`` into fp32 (the product is exact there)."""
    cfg = FmaConfig(fmt, fmt, FP32, multiplier="lmul")
    a, w = (x.ravel() for x in np.meshgrid(np.arange(256), np.arange(256)))
    got = fp.fma(a, w, 0, cfg)
    for i in range(a.size):
        want = paper_lmul(int(a[i]), int(w[i]), fmt, fmt)
        if want is None:  # inf/NaN operand: the exact multiplier's rules (checked below)
            continue
        g = fp.decode(got[i], FP32)
        assert g == float(want), (hex(a[i]), hex(w[i]), float(g), float(want))


def test_bf16_products_equal_the_paper_formula():
    """Random normal bf16 pairs over the whole exponent range (fp32 overflow and underflow included)."""
    rng = np.random.default_rng(31)
    cfg = MODES["bf16_fp32"]
    n = 3000
    a, w = normal_codes(BF16, rng, n), normal_codes(BF16, rng, n)
    check_against_paper(a, w, np.where(rng.random(n) < 0.5, 0, FP32.sign_bit), cfg)


@pytest.mark.parametrize("mode", list(MODES))
def test_fma_rounds_c_plus_lmul_once(mode):
    """Random normal operands, addends near ``-L-Mul(a, w)`` (cancellation) or anywhere finite."""
    cfg = MODES[mode]
    rng = np.random.default_rng(50 + list(MODES).index(mode))
    n = 2000
    a, w = normal_codes(cfg.a_fmt, rng, n, spread=6), normal_codes(cfg.w_fmt, rng, n, spread=6)
    prod = np.array(
        [float(paper_lmul(int(x), int(y), cfg.a_fmt, cfg.w_fmt)) for x, y in zip(a, w, strict=True)]
    )
    near = fp.quantize(-prod * (1 + rng.standard_normal(n) * 2.0 ** -rng.integers(1, 20, n)), cfg.acc_fmt)
    far = fp.quantize(rng.standard_normal(n) * np.exp2(rng.integers(-12, 12, n)), cfg.acc_fmt)
    c = np.where(rng.random(n) < 0.6, near, far)
    c = np.where(np.isfinite(fp.decode(c, cfg.acc_fmt)), c, 0)
    check_against_paper(a, w, c, cfg)


# ------------------------------------------------------------------------------------------------
# edge cases: what the paper leaves open (zeros, subnormals, inf, NaN, overflow)
# ------------------------------------------------------------------------------------------------
def test_edge_cases_bf16():
    cfg = MODES["bf16_fp32"]
    q = lambda x: int(fp.quantize(np.float64(x), BF16))  # noqa: E731
    one, two, sub, nsub = q(1.0), q(2.0), 0x0001, 0x8001  # bf16 subnormals
    inf, ninf, nan, big = 0x7F80, 0xFF80, 0x7FC0, BF16.max_finite_bits
    f = lambda a, w, c=0, cfg=cfg: int(fp.fma(a, w, c, cfg))  # noqa: E731
    assert fp.decode(f(one, one), FP32) == 1.0625  # 1 + 0 + 0 + 2**-4
    assert fp.decode(f(q(1.5), q(1.5)), FP32) == 2.0625  # not 2.25
    assert f(one, two, FP32.sign_bit) == fp.quantize(2.125, FP32)
    # zeros and subnormals are signed zeros: the product sign is sign(a) ^ sign(w)
    assert f(sub, two, FP32.sign_bit) == 0  # (+0) + (-0) = +0
    assert f(nsub, two, FP32.sign_bit) == FP32.sign_bit  # (-0) + (-0) = -0
    assert f(0x8000, 0x0000, FP32.sign_bit) == FP32.sign_bit
    assert f(sub, sub, fp.quantize(3.0, FP32)) == fp.quantize(3.0, FP32)  # 3 + 0, not 3 + 2**-266
    # inf and NaN as the exact multiplier: inf * subnormal is inf * 0 = NaN
    assert f(inf, two) == FP32.inf_bits and f(ninf, two) == FP32.inf_bits | FP32.sign_bit
    assert f(inf, sub) == FP32.nan_bits and f(inf, 0) == FP32.nan_bits and f(nan, one) == FP32.nan_bits
    assert f(inf, one, FP32.inf_bits | FP32.sign_bit) == FP32.nan_bits
    # overflow: inf (rne) or max finite (trunc); the exact multiplier gives the same here
    assert f(big, big) == FP32.inf_bits and f(big | 0x8000, big) == FP32.inf_bits | FP32.sign_bit
    assert f(big, big, 0, MODES["bf16_fp32_trunc"]) == FP32.max_finite_bits
    # underflow: smallest normal squared (2**-252) into fp32 rounds to +0; 2**-70 * 2**-70 is subnormal
    assert f(0x0080, 0x0080) == 0 and f(0x8080, 0x0080) == FP32.sign_bit
    tiny = q(2.0**-70)
    assert fp.decode(f(tiny, tiny), FP32) == 1.0625 * 2.0**-140


def test_edge_cases_e4m3fn():
    cfg = MODES["e4m3fn_fp16"]
    f = lambda a, w, c=0: int(fp.fma(a, w, c, cfg))  # noqa: E731
    one, top = 0x38, 0x7E  # 1.0, 448 = 1.75 * 2**8
    assert fp.decode(f(one, one), FP16) == 1.125  # l(3) = 3
    assert f(0x7F, one) == FP16.nan_bits and f(0xFF, 0) == FP16.nan_bits  # S.1111.111 is NaN
    assert fp.decode(f(0x78, one), FP16) == 1.125 * 256  # exponent 1111 is a normal binade
    assert f(top, top) == FP16.inf_bits  # (1 + 2 * 0.75 + 0.125) * 2**16 = 172032 overflows fp16
    assert f(0x01, top, FP16.sign_bit) == 0 and f(0x81, top, FP16.sign_bit) == FP16.sign_bit


# ------------------------------------------------------------------------------------------------
# configuration, and the shipped config through tpegen gemm / verify
# ------------------------------------------------------------------------------------------------
def test_params_and_errors():
    assert FmaPEParams().multiplier == "exact" and FmaPEParams().fma.multiplier == "exact"
    p = FmaPEParams(multiplier="lmul")
    assert p.fma.lmul_offset == 4 and FmaPEParams(p.fma).multiplier == "lmul"
    assert FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16).lmul_offset == 3
    assert FmaConfig(FP8_E5M2, FP8_E5M2, FP16).lmul_offset == 2
    assert FmaConfig(FP16, FP16, FP32).lmul_offset == 4
    with pytest.raises(ConfigError, match=r"pe.multiplier: .*'exact', 'lmul'"):
        FmaPEParams(multiplier="approx")


def _lmul_chain(a_row, w_col, cfg: FmaConfig) -> float:
    """In-order ``fl(fl(0 + L-Mul) + L-Mul ...)`` on exact rationals, for finite in-range values."""
    acc = Fraction(0)
    for a, w in zip(a_row, w_col, strict=True):
        acc = round_ieee(acc + paper_lmul(int(a), int(w), cfg.a_fmt, cfg.w_fmt), cfg.acc_fmt, cfg.rounding)
    return float(acc)


def test_shipped_config_golden_equals_paper_chain(gemm_cli):
    """``tpegen gemm`` on float matrices: bf16 rounding as ml_dtypes, then the L-Mul chain."""
    cfg = load_config(CONFIGS / "lmul_bf16.yaml")
    assert (cfg.array.rows, cfg.array.cols) == (2, 2) and cfg.pe.fma.multiplier == "lmul"
    assert cfg.pe.fma.a_fmt == BF16 and cfg.pe.fma.acc_fmt == FP32 and cfg.pe.fma.exact
    rng = np.random.default_rng(41)
    m, k, n = 5, 9, 4
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-8, 8, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-8, 8, (k, n)))
    a[1, :2] = [1e-39, -0.0]  # a subnormal (read as zero) and a negative zero
    _, c = gemm_cli(CONFIGS / "lmul_bf16.yaml", a, w, "golden")
    ab = fp.quantize(a.astype(ml_dtypes.bfloat16).astype(np.float64), BF16)
    wb = fp.quantize(w.astype(ml_dtypes.bfloat16).astype(np.float64), BF16)
    want = np.array([[_lmul_chain(ab[i], wb[:, j], cfg.pe.fma) for j in range(n)] for i in range(m)])
    assert c.dtype == np.float32 and np.array_equal(c.astype(np.float64), want)
    assert not np.array_equal(c, (a.astype(np.float32) @ w.astype(np.float32)))  # it is approximate


@pytest.mark.rtl
def test_shipped_config_rtl_equals_golden_and_verify(gemm_cli):
    hw = CONFIGS / "lmul_bf16.yaml"
    rng = np.random.default_rng(43)
    m, k, n = 5, 7, 3  # 3 x 2 tiles of the 2 x 2 array, K odd
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-10, 10, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-10, 10, (k, n)))
    a[0, :4] = [np.nan, 3e38, -0.0, 1e-39]  # NaN, overflow, -0, a subnormal
    w[:2, 1] = [3e38, -np.inf]
    gold, c_gold = gemm_cli(hw, a, w, "golden")
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    assert c_gold.tobytes() == c_rtl.tobytes() and rtl["cycles"] == gold["cycles"]
    assert np.isnan(c_rtl[0]).all()
    report = verify(config_from_dict(yaml.safe_load(hw.read_text())).accelerator(), cases=3, seed=5)
    bad = [c for c in report.cases if not c.passed]
    assert not bad and report.passed, bad
