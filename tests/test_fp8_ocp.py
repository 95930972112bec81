"""OCP fp8 as PyTorch defines it (e4m3fn, e5m2): formats, model and engine against ml_dtypes.

The numeric model (:mod:`tpegen.sim.fp`) against ml_dtypes' ``float8_e4m3fn``/``float8_e5m2``
(every code, conversions with rounding, overflow) and exact rationals (products and sums); the
``fp8_e4m3fn_exact`` config through ``tpegen gemm`` (golden and, on Verilator, RTL) and
``tpegen verify``. The RTL datapath modes (10k triples each) are in ``tests/test_fma_datapath.py``.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import yaml
from conftest import CONFIGS
from fp_reference import chain, round_ieee

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp
from tpegen.sim.fp import FP8_E4M3_IEEE, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FmaConfig
from tpegen.sw.verify import verify

OCP = [(FP8_E4M3FN, ml_dtypes.float8_e4m3fn), (FP8_E5M2, ml_dtypes.float8_e5m2)]
CODES = np.arange(256, dtype=np.int64)


def ml_values(dtype) -> np.ndarray:
    """ml_dtypes' value of every one of the 256 codes, as float64."""
    return CODES.astype(np.uint8).view(dtype).astype(np.float64)


# ------------------------------------------------------------------------------------------------
# formats
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,dtype", OCP, ids=["e4m3fn", "e5m2"])
def test_every_code_decodes_as_ml_dtypes(fmt, dtype):
    got, want = fp.decode(CODES, fmt), ml_values(dtype)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.array_equal(np.signbit(got[~nan]), np.signbit(want[~nan]))  # signed zeros
    info = ml_dtypes.finfo(dtype)
    assert fp.decode(fmt.max_finite_bits, fmt) == float(info.max)
    assert fp.decode(1, fmt) == float(info.smallest_subnormal)
    assert fp.decode(1 << fmt.man_bits, fmt) == float(info.smallest_normal)
    assert np.isnan(fp.decode(fmt.nan_bits, fmt)) and fmt.emax == int(np.log2(float(info.max)))


def test_e4m3fn_code_points():
    f = FP8_E4M3FN
    assert (f.max_finite_bits, f.nan_bits, f.has_inf) == (0x7E, 0x7F, False)
    assert list(fp.decode([0x7E, 0xFE, 0x78, 0x79], f)) == [448.0, -448.0, 256.0, 288.0]
    assert np.isnan(fp.decode([0x7F, 0xFF], f)).all()  # the only NaN pattern, both signs
    with pytest.raises(ValueError, match="no infinity"):
        _ = f.inf_bits
    assert f.overflow_bits("rne") == 0x7F and f.overflow_bits("trunc") == 0x7E
    # the IEEE-like e4m3 keeps its own meaning: 0x78 is inf, max 240
    assert np.isinf(fp.decode(0x78, FP8_E4M3_IEEE)) and fp.decode(0x77, FP8_E4M3_IEEE) == 240.0


@pytest.mark.parametrize("fmt,dtype", OCP, ids=["e4m3fn", "e5m2"])
def test_quantize_equals_ml_dtypes_bit_for_bit(fmt, dtype):
    """Round to nearest even, subnormals, ties, overflow (NaN in e4m3fn, inf in e5m2), inf and -0."""
    rng = np.random.default_rng(4)
    top = float(ml_dtypes.finfo(dtype).max)
    mids = (ml_values(dtype)[:-1] + ml_values(dtype)[1:]) / 2  # ties between neighbouring codes
    x = np.concatenate(
        [
            rng.standard_normal(40_000) * np.exp2(rng.integers(-20, 18, 40_000)),
            mids[np.isfinite(mids)],
            np.nextafter(mids[np.isfinite(mids)], np.inf),
            [0.0, -0.0, np.inf, -np.inf, top, -top, top * 1.03, top * 1.07, -top * 1.2, 1e30, -1e30, 1e-30],
        ]
    )
    with np.errstate(all="ignore"):
        want = x.astype(dtype).view(np.uint8).astype(np.int64)
    assert np.array_equal(fp.quantize(x, fmt), want)
    assert fp.quantize(np.nan, fmt) == fmt.nan_bits


def test_e4m3fn_overflow_rules():
    got = fp.quantize(np.array([448.0, 464.0, 465.0, -465.0, np.inf, -np.inf]), FP8_E4M3FN)
    assert list(got) == [0x7E, 0x7E, 0x7F, 0xFF, 0x7F, 0xFF]  # 464 ties to even (448); beyond: NaN
    trunc = fp.quantize(np.array([470.0, -1e9, 447.0]), FP8_E4M3FN, "trunc")
    assert list(trunc) == [0x7E, 0xFE, 0x7D]  # truncation saturates at +-448


# ------------------------------------------------------------------------------------------------
# multiply-add model
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt,dtype", OCP, ids=["e4m3fn", "e5m2"])
def test_all_products_into_fp32_equal_ml_dtypes_products(fmt, dtype):
    """``+0 + a*w`` in fp32 for every pair of codes: the exact float64 product rounded once to fp32."""
    a, w = np.meshgrid(CODES, CODES, indexing="ij")
    got = fp.fma(a, w, 0, FmaConfig(fmt, fmt, FP32))
    v = ml_values(dtype)
    with np.errstate(all="ignore"):
        want = (v[a] * v[w]).astype(np.float32) + np.float32(0.0)  # (-0) + (+0) = +0
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(fp.decode(got, FP32)), nan)
    assert np.all(got[nan] == FP32.nan_bits)
    assert np.array_equal(got[~nan], want[~nan].view(np.uint32).astype(np.int64))


@pytest.mark.parametrize("acc", [FP32, FP16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("rounding", ["rne", "trunc"])
def test_e4m3fn_fma_equals_exact_rational_rounding(acc, rounding):
    """Random finite (a, w, c) with fn codes in the all-ones-exponent binade, against Fraction rounding."""
    rng = np.random.default_rng(9)
    n = 4000
    fin = CODES[~np.isnan(fp.decode(CODES, FP8_E4M3FN))]
    a, w = rng.choice(fin, n), rng.choice(fin, n)
    top = (a[: n // 4] & 0x87) | 0x78  # exponent 1111: normal numbers 256..448 (not the NaN 1111.111)
    a[: n // 4] = np.where((top & 0x7F) == 0x7F, top ^ 1, top)
    va, vw = fp.decode(a, FP8_E4M3FN), fp.decode(w, FP8_E4M3FN)
    c = fp.quantize(-va * vw * (1 + rng.standard_normal(n) * 2.0 ** -rng.integers(1, 12, n)), acc)
    c = np.where(rng.random(n) < 0.3, fp.quantize(rng.standard_normal(n) * 100, acc), c)
    c = np.where(np.isfinite(fp.decode(c, acc)), c, 0)  # finite addends (448**2 overflows fp16)
    got = fp.fma(a, w, c, FmaConfig(FP8_E4M3FN, FP8_E4M3FN, acc, rounding))
    vc = fp.decode(c, acc)
    for i in range(n):
        exact = Fraction(float(vc[i])) + Fraction(float(va[i])) * Fraction(float(vw[i]))
        r = round_ieee(exact, acc, rounding)
        want = float(r) if abs(r) <= Fraction(float(fp.decode(acc.max_finite_bits, acc))) else None
        g = float(fp.decode(got[i], acc))
        if want is None:  # overflow: inf when rounding to nearest, max finite when truncating
            big = np.inf if rounding == "rne" else float(fp.decode(acc.max_finite_bits, acc))
            assert abs(g) == big and (g < 0) == (exact < 0), i
        else:
            assert g == want, (i, hex(a[i]), hex(w[i]), hex(c[i]))
            if want == 0 and exact != 0:
                assert np.signbit(g) == (exact < 0)  # a nonzero sum rounding to zero keeps its sign


def test_e4m3fn_specials_in_the_fma():
    cfg = FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16)
    one, big = 0x38, 0x7E  # 1.0, 448
    assert fp.fma(0x7F, one, 0, cfg) == FP16.nan_bits and fp.fma(0xFF, 0, 0, cfg) == FP16.nan_bits
    assert fp.fma(0x78, one, 0, cfg) == fp.quantize(256.0, FP16)  # not inf
    assert fp.fma(big, big, 0, cfg) == FP16.inf_bits  # 200704 overflows fp16
    assert fp.fma(big, big | 0x80, 0, FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16, "trunc")) == (
        FP16.max_finite_bits | FP16.sign_bit
    )
    assert fp.fma(0x80, 0x00, FP16.sign_bit, cfg) == FP16.sign_bit  # (-0)(+0) + (-0) = -0
    assert fp.fma(0x80, 0x00, 0, cfg) == 0


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------
def test_format_names_and_errors():
    p = FmaPEParams(input_format="fp8_e4m3fn", weight_format="fp8_e5m2", acc_format="fp32")
    assert (p.fma.a_fmt, p.fma.w_fmt) == (FP8_E4M3FN, FP8_E5M2) and p.a_shape.size == 8
    with pytest.raises(ConfigError, match=r"pe.input_format: .*fp8_e4m3_ieee.*fp8_e4m3fn.*renamed"):
        FmaPEParams(input_format="fp8_e4m3")
    with pytest.raises(ConfigError, match=r"pe.weight_format: .*renamed"):
        FmaPEParams(weight_format="fp8_e4m3")
    with pytest.raises(ConfigError, match=r"pe.acc_format: must be a format with infinities"):
        FmaPEParams(input_format="fp8_e4m3fn", acc_format="fp8_e4m3fn")


def test_shipped_config_golden_equals_exact_chain(gemm_cli, tmp_path):
    """``tpegen gemm`` on float matrices: inputs rounded as ml_dtypes, then the exact in-order chain."""
    cfg = load_config(CONFIGS / "fp8_e4m3fn_exact.yaml")
    assert (cfg.array.rows, cfg.array.cols) == (2, 2) and cfg.pe.fma.a_fmt == FP8_E4M3FN
    assert cfg.pe.fma.acc_fmt == FP32 and cfg.pe.fma.exact
    rng = np.random.default_rng(21)
    m, k, n = 5, 11, 6
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-8, 7, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-8, 6, (k, n)))
    a[1, :3] = [464.0, -300.0, 2.0**-9]  # tie to 448, the 1111 binade, the smallest subnormal
    _, c = gemm_cli(CONFIGS / "fp8_e4m3fn_exact.yaml", a, w, "golden")
    aq = a.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    wq = w.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    want = np.array([[float(chain(aq[i], wq[:, j], cfg.pe.fma)) for j in range(n)] for i in range(m)])
    assert c.dtype == np.float32 and np.array_equal(c.astype(np.float64), want)
    # beyond 448 and inf are NaN in e4m3fn (as ml_dtypes converts): the whole output row is NaN
    a[2, 4], a[3, 0] = 1000.0, -np.inf
    _, c = gemm_cli(CONFIGS / "fp8_e4m3fn_exact.yaml", a, w, "golden")
    assert np.isnan(c[2:4]).all() and not np.isnan(c[[0, 1, 4]]).any()


# ------------------------------------------------------------------------------------------------
# RTL (Verilator)
# ------------------------------------------------------------------------------------------------
@pytest.mark.rtl
def test_shipped_config_rtl_equals_golden_and_verify(gemm_cli, tmp_path):
    hw = CONFIGS / "fp8_e4m3fn_exact.yaml"
    rng = np.random.default_rng(23)
    m, k, n = 6, 13, 7  # 3 x 4 tiles of the 2 x 2 array, K odd
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-10, 7, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-10, 6, (k, n)))
    a[0, :4] = [np.nan, 600.0, -0.0, 1e-5]  # NaN, overflow to NaN, -0, a subnormal
    a[1, :3] = [448.0, -256.0, 2.0**-9]
    w[:3, 1] = [448.0, 448.0, -0.0]  # 448 * 448 products, exponent 1111 times 1111
    gold, c_gold = gemm_cli(hw, a, w, "golden")
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    assert c_gold.tobytes() == c_rtl.tobytes() and rtl["cycles"] == gold["cycles"]
    assert np.isnan(c_rtl[0]).all() and not np.isnan(c_rtl[1:]).any()
    report = verify(config_from_dict(yaml.safe_load(hw.read_text())).accelerator(), cases=3, seed=5)
    bad = [c for c in report.cases if not c.passed]
    assert not bad and report.passed, bad


def test_map_takes_fp8_and_refuses_float_codes_the_inputs_cannot_hold(run_cli):
    """e5m2 or bf16 codes do not fit e4m3fn inputs (beyond 448 they would turn NaN): refused up front."""
    for quant in ("FP8_E5M2", "BF16"):
        code, _, err = run_cli("map", "digits_mlp", "--hw", "fp8_e4m3fn_exact", "--quant", quant)
        assert code != 0
        assert "pe.input_format: must be a format that holds every" in err and "fp8_e4m3fn" in err, err
    code, out, err = run_cli("map", "digits_mlp", "--hw", "fp8_e4m3fn_exact", "--quant", "FP8", "--json")
    assert code == 0, err  # OCP e4m3fn codes are the engine's own inputs
