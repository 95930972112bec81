"""``pe.relaxed_man_bits``: the relaxed partial sum's significand width, independent of the output format.

* The model's relaxed chains (narrow: 4, 6, 9, 12, 14 bits; wide: 30, 40 bits; fp32, bf16 and fp16
  outputs; rne and trunc; exact and windowed normalization) equal the independent exact-rational
  reference (``fp_reference.chain``: every step the exact sum rounded to ``relaxed_man_bits`` bits on
  the normalizer's grid, one correct rounding at the edge), and the edge normalizer equals a correct
  rounding of the relaxed value (subnormal and overflow results included).
* The RTL datapath and edge normalizer equal the model in Amaranth's simulator and on Verilator
  (10k random, near-cancelling and edge-case vectors per mode, relaxed words around the output's
  subnormal and overflow boundaries among them; four modes by default, all under -m slow); the 2x2
  array ``bf16_relaxed_m12_fp32acc`` equals the golden model through ``tpegen gemm --backend rtl``
  and ``verify``, and the exact-rational reference.
* ``relaxed_man_bits`` at the default rule's width is the same hardware; the default (None) keeps
  the parameters' repr (shared Verilog module names); bad values give one-line errors.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
import yaml
from amaranth.back import verilog
from conftest import CONFIGS
from fp_reference import chain
from test_fma_datapath import _amaranth_run, _verilator_check, make_inputs
from test_fp_model import ref_round

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.hierarchy import shared_module_name
from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3FN, FP16, FP32, FmaConfig
from tpegen.sw.verify import verify


def _relaxed(a_fmt, acc_fmt, man_bits, rounding="rne", **knobs) -> FmaConfig:
    return FmaConfig(
        a_fmt, a_fmt, acc_fmt, rounding, normalize_in_pe=False, relaxed_man_bits=man_bits, **knobs
    )


MODES = {
    "m12_bf16_fp32": _relaxed(BF16, FP32, 12),  # 12 of fp32's 24 significand bits between PEs
    "m12_w8_bf16_fp32_trunc": _relaxed(BF16, FP32, 12, "trunc", norm_window=8),
    "m9_w8_bf16_bf16": _relaxed(BF16, BF16, 9, norm_window=8),  # one bit above bf16's significand
    "m6_bf16_bf16": _relaxed(BF16, BF16, 6),  # narrower than bf16's 8-bit significand
    "m14_bf16_fp16": _relaxed(BF16, FP16, 14),
    "m4_w4_g2_e4m3fn_fp16_trunc": _relaxed(FP8_E4M3FN, FP16, 4, "trunc", norm_window=4, shift_granularity=2),
    "m40_bf16_fp32": _relaxed(BF16, FP32, 40),  # the widest (a 59-bit sum)
    "m30_w16_g4_fp16_fp16_trunc": _relaxed(FP16, FP16, 30, "trunc", norm_window=16, shift_granularity=4),
}
# on Verilator by default (one build); every mode under -m slow
RTL_DEFAULT = ["m12_bf16_fp32", "m12_w8_bf16_fp32_trunc", "m9_w8_bf16_bf16", "m14_bf16_fp16"]
ARRAY = "bf16_relaxed_m12_fp32acc"


def relaxed_words(cfg: FmaConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite relaxed words: edge cases around the output format's subnormal range and overflow
    threshold (mantissas with a tie, a carry or a lone bit below the output's precision, leading
    zeros), the relaxed exponent range's ends, then random canonical words up to ``n`` in all."""
    rf, fmt = cfg.relaxed, cfg.acc_fmt
    R, p = rf.man_bits, fmt.man_bits + 1
    top = 1 << (R - 1)
    patterns = {1, top, top | 1, (1 << R) - 1, top | (top >> 1)}
    if p < R:  # a tie and one past it at the output's rounding position
        patterns |= {top | (1 << (R - 1 - p)), top | (1 << (R - 1 - p)) | 1}
    mans = sorted({x >> k for x in patterns for k in (0, 1, 2, R - 1)} - {0})
    tops = [*range(fmt.emin - fmt.man_bits - 3, fmt.emin + 3), *range(fmt.emax - 1, fmt.emax + 3)]
    exps = sorted(
        {min(max(t + rf.bias, 0), (1 << rf.exp_bits) - 1) for t in tops} | {0, 1, (1 << rf.exp_bits) - 1}
    )
    grid = np.array([(m, e) for m in mans for e in exps], dtype=np.int64)
    man = rng.integers(0, 1 << R, n) >> rng.integers(0, R, n)
    exp = rng.integers(0, 1 << rf.exp_bits, n)
    k = min(n, len(grid))
    man[:k], exp[:k] = grid[:k, 0], grid[:k, 1]
    exp = np.where(man == 0, 0, exp)
    return man | (exp << rf.exp_offset) | (rng.integers(0, 2, n) << rf.sign_offset)


def relaxed_specials(cfg: FmaConfig) -> np.ndarray:
    """Words with the inf and/or nan flags set (both signs, with and without mantissa/exponent bits)."""
    rf = cfg.relaxed
    body = (1 << rf.exp_offset) | 5
    return np.array(
        [
            flags << rf.inf_offset | s << rf.sign_offset | b
            for flags in (1, 2, 3)
            for s in (0, 1)
            for b in (0, body)
        ],
        dtype=np.int64,
    )


def make_with_edges(cfg: FmaConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The FMA datapath tests' inputs with the tail's accumulator words replaced by relaxed edge
    cases (:func:`relaxed_words`, :func:`relaxed_specials`): they exercise the edge normalizer and,
    as ``acc_in``, the datapath."""
    a, w, c = make_inputs(cfg, n, seed)
    edges = np.concatenate([relaxed_specials(cfg), relaxed_words(cfg, np.random.default_rng(seed), n // 2)])
    k = min(len(edges), n // 2)
    c[n - k :] = edges[:k]
    return a, w, c


# ------------------------------------------------------------------------------------------------
# model vs the exact-rational reference
# ------------------------------------------------------------------------------------------------
def _cancelling_operands(cfg: FmaConfig, rng, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Operand bits whose chains cancel in half of the columns (deep cancellations test the narrow
    grids and the normalizer windows), finite in every partial sum."""
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-3, 4, (m, k)))
    a[:, 1::2] = -a[:, 0::2] * (1 + rng.standard_normal((m, k // 2)) * 2.0**-6)
    w = rng.standard_normal((k, n))
    w[1::2, : n // 2] = w[0::2, : n // 2]
    return fp.quantize(a, cfg.a_fmt), fp.quantize(w, cfg.w_fmt)


@pytest.mark.parametrize("mode", list(MODES))
def test_chain_equals_exact_rational_reference(mode):
    cfg = MODES[mode]
    rng = np.random.default_rng(21)
    a_bits, w_bits = _cancelling_operands(cfg, rng, 4, 40, 4)
    got = fp.decode(fp.gemm_chain(a_bits, w_bits, cfg), cfg.acc_fmt)
    av, wv = fp.decode(a_bits, cfg.a_fmt), fp.decode(w_bits, cfg.w_fmt)
    want = np.array([[float(chain(av[i], wv[:, j], cfg)) for j in range(4)] for i in range(4)])
    assert np.array_equal(got, want), np.argwhere(got != want)
    if cfg.relaxed_man_bits <= 16:  # a narrow width is really used: four bits more give other sums
        other = dataclasses.replace(cfg, relaxed_man_bits=cfg.relaxed_man_bits + 4)
        assert np.any(fp.gemm_chain(a_bits, w_bits, other) != fp.gemm_chain(a_bits, w_bits, cfg))


@pytest.mark.parametrize("mode", list(MODES))
def test_normalizer_rounds_the_relaxed_value_correctly(mode):
    cfg = MODES[mode]
    rf, fmt = cfg.relaxed, cfg.acc_fmt
    words = relaxed_words(cfg, np.random.default_rng(22), 1500)
    got = fp.normalize_relaxed(words, cfg)
    for word, g in zip(words.tolist(), got.tolist(), strict=True):
        sign = (word >> rf.sign_offset) & 1
        man = word & ((1 << rf.man_bits) - 1)
        exp = (word >> rf.exp_offset) & ((1 << rf.exp_bits) - 1)
        value = Fraction(man) * Fraction(2) ** (exp - rf.bias - rf.man_bits + 1)
        assert g == ref_round(-value if sign else value, sign, fmt, cfg.rounding), hex(word)
    specials = relaxed_specials(cfg)
    inf = (specials >> rf.inf_offset) & 3 == 1
    sign = (specials >> rf.sign_offset) & 1
    want = np.where(inf, sign << (fmt.width - 1) | fmt.inf_bits, fmt.nan_bits)
    assert np.array_equal(fp.normalize_relaxed(specials, cfg), want)


# ------------------------------------------------------------------------------------------------
# RTL vs the model
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(MODES))
def test_datapath_and_normalizer_amaranth_sim(mode):
    cfg = MODES[mode]
    a, w, c = make_with_edges(cfg, 300, seed=31)
    params = FmaPEParams(cfg)
    got = _amaranth_run(params.datapath(), {"a": a, "w": w, "acc_in": c}, ["acc_out"])["acc_out"]
    assert np.array_equal(got, fp.fma(a, w, c, cfg)), np.flatnonzero(got != fp.fma(a, w, c, cfg))[:5]
    got = _amaranth_run(params.normalizer(), {"acc_in": c}, ["acc_out"])["acc_out"]
    assert np.array_equal(got, fp.normalize_relaxed(c, cfg)), c[got != fp.normalize_relaxed(c, cfg)][:5]


@pytest.mark.rtl
@pytest.mark.parametrize(
    "names", [RTL_DEFAULT, pytest.param(list(MODES), marks=pytest.mark.slow)], ids=["default", "all"]
)
def test_datapath_and_normalizer_verilator_10k(names):
    _verilator_check(10_000, seed=300, modes={k: MODES[k] for k in names}, make=make_with_edges)


@pytest.mark.rtl
@pytest.mark.slow  # the relaxed widths stay on Verilator in the default run (datapath and normalizer, 10k x 4 modes)
def test_array_rtl_equals_golden_and_reference(gemm_cli):
    hw = CONFIGS / f"{ARRAY}.yaml"
    acc = load_config(hw).accelerator()
    rng = np.random.default_rng(23)
    m, k, n = 3, 9, 3  # 2 x 2 tiles of the 2 x 2 array, K not a multiple of the array
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-4, 5, (m, k)))
    w = rng.standard_normal((k, n)).astype(np.float32)
    a[2, :] = -a[1, :] * (1 + 2.0**-9)  # row 2 nearly cancels row 1 in column 2
    w[:, 2] = 1.0
    a[0, :2] = [np.inf, -0.0]
    gold, c_gold = gemm_cli(hw, a, w, "golden")
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    assert c_gold.tobytes() == c_rtl.tobytes() and rtl["cycles"] == gold["cycles"] == acc.cycles(m, k, n)
    a_bits, w_bits = acc.check_operands(a, w)
    av, wv = fp.decode(a_bits, BF16), fp.decode(w_bits, BF16)
    want = np.array([[float(chain(av[i], wv[:, j], acc.cfg)) for j in range(n)] for i in range(1, m)])
    assert np.array_equal(c_rtl[1:].astype(np.float64), want)
    assert np.isinf(c_rtl[0]).any()
    report = verify(acc, cases=2, seed=4)
    assert report.passed, [c for c in report.cases if not c.passed]


# ------------------------------------------------------------------------------------------------
# parameters and errors
# ------------------------------------------------------------------------------------------------
def test_default_rule_width_is_the_same_hardware():
    by_guard = FmaPEParams(acc_format="bf16", norm_window=8, normalize_in_pe=False, relaxed_guard_bits=2)
    by_width = FmaPEParams(acc_format="bf16", norm_window=8, normalize_in_pe=False, relaxed_man_bits=10)
    assert by_guard.fma.relaxed == by_width.fma.relaxed
    for make in (FmaPEParams.datapath, FmaPEParams.normalizer):
        assert verilog.convert(make(by_guard), name="t") == verilog.convert(make(by_width), name="t")
    assert "relaxed_man_bits" not in repr(FmaPEParams()) and "relaxed_man_bits=10" in repr(by_width)
    assert shared_module_name("cell", by_guard) != shared_module_name("cell", by_width)
    assert FmaPEParams(by_width.fma) == by_width  # an FmaConfig expands into the flat fields


def test_array_config_loads_and_round_trips():
    cfg = load_config(CONFIGS / f"{ARRAY}.yaml")
    pe = cfg.pe
    assert (pe.fma.acc_fmt, pe.fma.relaxed.man_bits, pe.fma.normalize_in_pe) == (FP32, 12, False)
    assert pe.acc_shape.size == 12 + 10 + 3 and (cfg.array.rows, cfg.array.cols) == (2, 2)
    assert config_from_dict(cfg.to_dict()).pe == pe


BAD = [
    ({"relaxed_man_bits": 3}, "pe.relaxed_man_bits", "an integer in 4..40"),
    ({"relaxed_man_bits": 41}, "pe.relaxed_man_bits", "an integer in 4..40"),
    ({"relaxed_man_bits": "12"}, "pe.relaxed_man_bits", "integer"),
    ({"relaxed_man_bits": True}, "pe.relaxed_man_bits", "integer"),
    ({"normalize_in_pe": True}, "pe.relaxed_man_bits", "null when pe.normalize_in_pe is true"),
    ({"relaxed_guard_bits": 2}, "pe.relaxed_man_bits", "null when pe.relaxed_guard_bits is given"),
    ({"input_format": "fp16", "relaxed_man_bits": 40}, "pe.relaxed_man_bits", "an integer in 4..36"),
]


@pytest.mark.parametrize("change,field,allowed", BAD, ids=[str(c) for c, _, _ in BAD])
def test_bad_relaxed_man_bits_one_line_error(bad_config, change, field, allowed):
    raw = yaml.safe_load((CONFIGS / f"{ARRAY}.yaml").read_text())
    raw["pe"].update(change)
    bad_config(raw, field, allowed)


def test_python_api_errors():
    with pytest.raises(ConfigError, match="pe.relaxed_man_bits: must be null when pe.normalize_in_pe"):
        FmaConfig(relaxed_man_bits=12)
    with pytest.raises(ConfigError, match="pe.relaxed_guard_bits"):
        FmaPEParams(normalize_in_pe=False, relaxed_guard_bits=0, relaxed_man_bits=12)
