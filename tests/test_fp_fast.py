"""The compiled FP GEMM (tpegen.sim.fp_fast, numba) against the vectorized numpy models.

The numpy models (:func:`tpegen.sim.fp.gemm_chain`, :func:`tpegen.sim.fp_dot.gemm_dot`) and the
kernels are written independently (vectorized int64 array code vs a scalar transcription), so every
comparison below can fail; one test checks that a wrong kernel is caught.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("numba")

from tpegen.config import load_config, shipped_configs  # noqa: E402
from tpegen.errors import TpegenError  # noqa: E402
from tpegen.sim import fp, fp_fast  # noqa: E402
from tpegen.sim.fp import BF16, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FmaConfig  # noqa: E402
from tpegen.sim.fp_fast import check_cases, fast_gemm, self_check  # noqa: E402

SHIPPED = {name: getattr(load_config(path).pe, "fma", None) for name, path in shipped_configs().items()}
SHIPPED = {name: cfg for name, cfg in SHIPPED.items() if cfg is not None}  # the FP PEs
NAMED = [  # the FP configs this module must cover (a failing glob would make the tests vacuous)
    "bf16_exact",
    "bf16_exact_bf16acc",
    "bf16_approx_w4_g4",
    "bf16_approx_w8",
    "bf16_approx_w16_g4",
    "bf16_approx_relaxed_w2_g2",
    "bf16_approx_relaxed_w8",
    "lmul_bf16",
    "tc_fp16_dot4",
    "fp8_e4m3fn_exact",
]
EXTRA = {  # knob combinations no shipped config has
    "dot2_bf16_b30_rne": FmaConfig(BF16, BF16, FP32, terms=2, align_bits=30),
    "dot2_fp16_b23_trunc": FmaConfig(FP16, FP16, FP32, rounding="trunc", terms=2, align_bits=23),
    "dot8_bf16_bf16acc_b12_trunc": FmaConfig(BF16, BF16, BF16, rounding="trunc", terms=8, align_bits=12),
    "dot8_e5m2_e4m3fn_fp16acc_b6_rne": FmaConfig(FP8_E5M2, FP8_E4M3FN, FP16, terms=8, align_bits=6),
    "lmul_e5m2_e4m3fn_bf16acc_trunc_relaxed_w4_g2": FmaConfig(
        FP8_E5M2,
        FP8_E4M3FN,
        BF16,
        rounding="trunc",
        multiplier="lmul",
        norm_window=4,
        shift_granularity=2,
        normalize_in_pe=False,
    ),
    "lmul_fp16_fp32acc_w8": FmaConfig(FP16, FP16, FP32, multiplier="lmul", norm_window=8),
    "relaxed_m12_fp32acc": FmaConfig(BF16, BF16, FP32, normalize_in_pe=False, relaxed_man_bits=12),
    "relaxed_m6_bf16acc_trunc_w4_g4": FmaConfig(
        BF16,
        BF16,
        BF16,
        rounding="trunc",
        norm_window=4,
        shift_granularity=4,
        normalize_in_pe=False,
        relaxed_man_bits=6,
    ),
    "relaxed_m30_fp16_fp32acc_w8": FmaConfig(
        FP16, FP16, FP32, norm_window=8, normalize_in_pe=False, relaxed_man_bits=30
    ),
    "relaxed_guard0_fp8_fp16acc": FmaConfig(
        FP8_E4M3FN, FP8_E5M2, FP16, normalize_in_pe=False, relaxed_guard_bits=0
    ),
}
CONFIGS = {**SHIPPED, **EXTRA}


def test_every_named_fp_config_is_shipped_and_checked():
    assert set(NAMED) <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_self_check(name):
    """Random and special-value GEMMs (check_cases), two seeds."""
    self_check({name: CONFIGS[name]}, seed=11)
    self_check({name: CONFIGS[name]}, seed=12)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_long_chain_of_realistic_values(name):
    """K = 384 with activation/weight-like values (what the accuracy study runs)."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(5)
    a = fp.quantize(rng.standard_normal((8, 384)), cfg.a_fmt)
    w = fp.quantize(rng.standard_normal((384, 9)) * 0.05, cfg.w_fmt)
    np.testing.assert_array_equal(fast_gemm(a, w, cfg), fp.gemm_chain(a, w, cfg))


@pytest.mark.parametrize("name", ["bf16_exact", "bf16_exact_bf16acc", "dot8_bf16_bf16acc_b12_trunc"])
def test_check_cases_reach_every_kind_of_output(name):
    """The self-check's GEMMs produce NaN, both infinities, both zeros, subnormal and normal outputs
    (and the largest finite value under truncation), so the comparison covers those paths."""
    cfg = CONFIGS[name]
    f = cfg.acc_fmt
    out = np.concatenate([fp.gemm_chain(a, w, cfg).ravel() for a, w in check_cases(cfg, 0)])
    mag, e = out & (f.sign_bit - 1), (out >> f.man_bits) & f.exp_all_ones
    kinds = {
        "nan": mag > f.inf_bits,
        "+inf": out == f.inf_bits,
        "-inf": out == f.inf_bits | f.sign_bit,
        "+0": out == 0,
        "-0": out == f.sign_bit,
        "subnormal": (e == 0) & (mag != 0),
        "normal": (e != 0) & (mag < f.inf_bits),
    }
    if cfg.rounding == "trunc":
        kinds["max finite"] = mag == f.max_finite_bits
    assert not [k for k, hit in kinds.items() if not hit.any()]


def test_parallel_kernels(monkeypatch):
    """Rows of C on numba's threads (every GEMM here is below the threshold otherwise)."""
    monkeypatch.setattr(fp_fast, "_PARALLEL_MACS", 0)
    self_check(
        {n: CONFIGS[n] for n in ["bf16_exact", "lmul_bf16", "bf16_approx_relaxed_w2_g2", "tc_fp16_dot4"]}
    )


def test_a_wrong_kernel_is_caught(monkeypatch):
    """self_check raises when the kernel computes something else (here: the other rounding mode)."""
    params = fp_fast._params
    monkeypatch.setattr(fp_fast, "_params", lambda cfg: params(replace(cfg, rounding="trunc")))
    self_check({"bf16_exact_trunc": replace(SHIPPED["bf16_exact"], rounding="trunc")})
    with pytest.raises(TpegenError, match="for bf16_exact on .* outputs differ"):
        self_check({"bf16_exact": SHIPPED["bf16_exact"]})


@pytest.mark.parametrize("name", ["bf16_exact", "bf16_approx_relaxed_w8", "tc_fp16_dot4"])
def test_empty_and_odd_shapes(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(1)
    shapes = [(3, 0, 4), (1, 1, 1), (2, 7, 3)] + [(0, 5, 2)] * (not cfg.dot)  # gemm_dot cannot take M = 0
    for m, k, n in shapes:
        a = fp.quantize(rng.standard_normal((m, k)), cfg.a_fmt)
        w = fp.quantize(rng.standard_normal((k, n)), cfg.w_fmt)
        np.testing.assert_array_equal(fast_gemm(a, w, cfg), fp.gemm_chain(a, w, cfg))
    with pytest.raises(ValueError, match="incompatible shapes"):
        fast_gemm(np.zeros((2, 3)), np.zeros((4, 2)), cfg)


def test_without_numba_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.setattr(fp_fast, "_KERNELS", None)
    with pytest.raises(TpegenError, match="pip install numba"):
        fast_gemm(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), SHIPPED["bf16_exact"])
