"""The floating-point systolic engine (family ``fma``): configs, golden model, CLI, RTL.

* The golden model equals an independent, exact-rational, correctly rounded fused chain
  (``fractions.Fraction``; inputs rounded by ``ml_dtypes``), and the approximate modes really
  differ from it where cancellation is deep.
* ``tpegen gemm --backend rtl --json`` (in-process) equals ``--backend golden`` byte for byte and
  its cycles equal the timing model, for bf16_exact and two approximate configs (4x4 copies of
  the shipped 8x8 configs to keep the Verilator builds short; one build per config, cached).
* ``tpegen.sw.verify.verify`` passes (FP edge cases, random GEMMs, random stalls), and fails on a
  golden model that is one ulp off.
* Malformed FP configs give one-line errors naming the field.
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import yaml
from conftest import CONFIGS
from fp_reference import chain

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp
from tpegen.sw.fp import FpAccelerator, to_float32
from tpegen.sw.verify import _same, verify

SHIPPED = [
    "bf16_exact",
    "bf16_exact_bf16acc",
    "bf16_approx_w8",
    "bf16_approx_w16_g4",
    "bf16_approx_relaxed_w8",
]
# The exact PE and the relaxed one (which adds the edge normalizers) on Verilator by default; every
# approximate mode is checked at the datapath level (tests/test_fma_datapath.py) and every shipped
# config under -m slow (test_shipped_configs_verify_slow).
RTL_DEFAULT = ["bf16_exact", "bf16_approx_relaxed_w8"]
RTL_SLOW = ["bf16_approx_w16_g4"]


def small(name: str, rows: int = 4, cols: int = 4) -> dict:
    """The shipped config ``name`` as a dict, shrunk to a ``rows`` x ``cols`` array."""
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    raw["name"] = f"{name}_{rows}x{cols}"
    raw["array"] = {"rows": rows, "cols": cols}
    return raw


def accel(name: str, rows: int = 4, cols: int = 4) -> FpAccelerator:
    return config_from_dict(small(name, rows, cols)).accelerator()


# ------------------------------------------------------------------------------------------------
# configs
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_and_round_trip(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.family == "fma" and (cfg.array.rows, cfg.array.cols) == (8, 8)
    assert isinstance(cfg.accelerator(), FpAccelerator)
    pe = cfg.to_dict()["pe"]
    assert all(not isinstance(v, dict) for v in pe.values()), "the pe section must stay flat"
    again = config_from_dict(cfg.to_dict())
    assert again.pe == cfg.pe and again.pe.fma == cfg.pe.fma
    assert cfg.pe.fma.exact == (pe["norm_window"] is None and pe["shift_granularity"] == 1)


def test_flat_params_build_the_fma_config():
    p = FmaPEParams(input_format="bf16", acc_format="fp32", norm_window=16, shift_granularity=4)
    assert p.fma == fp.FmaConfig(fp.BF16, fp.BF16, fp.FP32, norm_window=16, shift_granularity=4)
    q = FmaPEParams(
        input_format="fp8_e4m3_ieee", weight_format="fp8_e5m2", acc_format="fp16", rounding="trunc"
    )
    assert (q.fma.a_fmt, q.fma.w_fmt, q.fma.acc_fmt) == (fp.FP8_E4M3_IEEE, fp.FP8_E5M2, fp.FP16)
    assert q.a_shape.size == 8 and q.w_shape.size == 8 and q.acc_shape.size == 16
    assert FmaPEParams(p.fma) == p  # an FmaConfig expands into the same flat fields
    r = FmaPEParams(acc_format="bf16", norm_window=8, normalize_in_pe=False)
    assert r.acc_shape.size == r.fma.relaxed.width and r.out_shape.size == 16


BAD = [
    ({"input_format": "bf17"}, "pe.input_format: must be one of 'bf16', 'fp16', 'fp32'"),
    ({"weight_format": "int8"}, "pe.weight_format: must be one of"),
    ({"acc_format": "fp64"}, "pe.acc_format: must be one of"),
    ({"rounding": "up"}, "pe.rounding: must be one of 'rne', 'trunc'"),
    ({"norm_window": 64}, "pe.norm_window: must be an integer in 1..43"),
    ({"norm_window": 0}, "pe.norm_window: must be an integer in 1..43"),
    ({"norm_window": "8"}, "pe.norm_window: must be an integer"),
    ({"shift_granularity": 3}, "pe.shift_granularity: must be a power of two"),
    (
        {"norm_window": 10, "shift_granularity": 4},
        "pe.norm_window: must be a multiple of pe.shift_granularity",
    ),
    ({"normalize_in_pe": "yes"}, "pe.normalize_in_pe: must be true or false"),
    ({"dataflow": "ws"}, "pe.dataflow: must be 'os'"),
    ({"fma": {"rounding": "rne"}}, "pe.fma: must be one of the keys"),
]


@pytest.mark.parametrize(
    "change,message", BAD, ids=[next(iter(c)) + "=" + str(next(iter(c.values()))) for c, _ in BAD]
)
def test_malformed_fp_config_one_line_error(run_cli, tmp_path, change, message):
    raw = small("bf16_exact")
    raw["pe"].update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    np.save(tmp_path / "A.npy", np.ones((2, 2)))
    code, out, err = run_cli(
        "gemm", "--hw", path, "--a", tmp_path / "A.npy", "--w", tmp_path / "A.npy", "-o", tmp_path / "C.npy"
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"tpegen: error: {path}: ")
    assert message in err
    assert not (tmp_path / "C.npy").exists()


def test_bad_operands_are_rejected():
    acc = accel("bf16_exact")
    with pytest.raises(ConfigError, match="A: must be a matrix of real numbers"):
        acc.check_operands(np.array([["x"]]), np.ones((1, 1)))
    with pytest.raises(ConfigError, match="W: must be a non-empty 2-D matrix"):
        acc.check_operands(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ConfigError, match="shapes M x K and K x N"):
        acc.check_operands(np.ones((2, 3)), np.ones((2, 3)))


# ------------------------------------------------------------------------------------------------
# golden model vs an independent exact-rational reference
# ------------------------------------------------------------------------------------------------
def _round_rne(x: Fraction, exp_bits: int, man_bits: int) -> Fraction | float:
    """Correctly round the rational ``x`` to the IEEE format, ties to even; ``±inf`` on overflow."""
    if x == 0:
        return Fraction(0)
    bias = (1 << (exp_bits - 1)) - 1
    emin, emax = 1 - bias, bias
    mag = abs(x)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    while Fraction(2) ** e > mag:
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    quantum = Fraction(2) ** (max(e, emin) - man_bits)
    q, rem = divmod(mag, quantum)
    if rem * 2 > quantum or (rem * 2 == quantum and q % 2 == 1):
        q += 1
    r = q * quantum
    if r >= Fraction(2) ** (emax + 1):
        return float("inf") if x > 0 else float("-inf")
    return r if x > 0 else -r


def _reference_chain(a: np.ndarray, w: np.ndarray, exp_bits: int, man_bits: int) -> np.ndarray:
    out = np.zeros((a.shape[0], w.shape[1]))
    for i in range(a.shape[0]):
        for j in range(w.shape[1]):
            acc = Fraction(0)
            for k in range(a.shape[1]):
                acc = _round_rne(
                    acc + Fraction(float(a[i, k])) * Fraction(float(w[k, j])), exp_bits, man_bits
                )
                assert not isinstance(acc, float), "keep the reference data finite"
            out[i, j] = float(acc)
    return out


def _bf16_data(rng, shape, spread: int) -> np.ndarray:
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread + 1, shape))
    return x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


@pytest.mark.parametrize("name,exp_bits,man_bits", [("bf16_exact", 8, 23), ("bf16_exact_bf16acc", 8, 7)])
def test_golden_equals_exact_rational_fused_chain(name, exp_bits, man_bits):
    acc = accel(name)
    rng = np.random.default_rng(5)
    for spread in (0, 12):
        a, w = _bf16_data(rng, (3, 37), spread), _bf16_data(rng, (37, 4), spread)
        a[0, :4] = [3.0, -3.0, 2.0**-9, -(2.0**-9)]  # exact cancellation inside the chain
        got = acc.golden(*acc.check_operands(a, w))
        want = _reference_chain(a, w, exp_bits, man_bits)
        assert got.dtype == np.float32
        assert np.array_equal(got.astype(np.float64), want), np.argwhere(got != want)
        assert not np.array_equal(want, (a @ w).astype(np.float32)), "rounding must be visible"


def test_inputs_are_rounded_to_nearest_even():
    acc = accel("bf16_exact")
    x = np.random.default_rng(3).standard_normal((16, 64)).astype(np.float32)
    x[0, :4] = [1 + 2.0**-8, 1 + 3 * 2.0**-8, -(1 + 2.0**-8), 3.4e38]  # two ties, a negative tie, overflow
    bits, _ = acc.check_operands(x, np.ones((64, 1)))
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.int64)
    assert np.array_equal(bits, want)
    assert bits[0, 0] == 0x3F80 and bits[0, 1] == 0x3F82 and bits[0, 3] == 0x7F80


def test_output_float32_exact_and_canonical_nan():
    bits = np.array([0x7FC0, 0xFFC1, 0x7F81, 0x8000, 0x0001, 0x7F80])
    out = to_float32(bits, fp.BF16)
    assert out.dtype == np.float32
    assert list(out.view(np.uint32)) == [0x7FC00000] * 3 + [0x80000000, 0x00010000, 0x7F800000]


def test_approximate_modes_change_results_and_equal_the_coarse_grid_reference():
    """The approximate normalizers really change the chain where partial sums cancel (coarse
    shifts drop bits; relaxed partial sums keep guard bits), and every element equals the
    independent reference (``fp_reference.chain``): each step is the exact sum rounded on the grid
    the normalizer's shift gives, relaxed chains round once at the edge."""
    rng = np.random.default_rng(9)
    a = rng.standard_normal((8, 64))
    a[:, 1::2] = -a[:, 0::2] * (1 + rng.standard_normal((8, 32)) * 2.0**-6)  # near-cancelling pairs
    w = rng.standard_normal((64, 8))
    w[1::2, :4] = w[0::2, :4]  # in columns 0-3 each pair of steps cancels to ~2^-6 of its terms
    pairs = [("bf16_exact", "bf16_approx_w16_g4"), ("bf16_exact_bf16acc", "bf16_approx_relaxed_w8")]
    for exact_name, approx_name in pairs:
        ex, ap = accel(exact_name), accel(approx_name)
        a_bits, w_bits = ap.check_operands(a, w)
        c_ex = ex.golden(*ex.check_operands(a, w)).astype(np.float64)
        c_ap = ap.golden(a_bits, w_bits).astype(np.float64)
        assert np.mean(c_ex != c_ap) > 0.3, approx_name
        av, wv = fp.decode(a_bits, ap.cfg.a_fmt), fp.decode(w_bits, ap.cfg.w_fmt)
        want = np.array([[float(chain(av[i], wv[:, j], ap.cfg)) for j in range(8)] for i in range(8)])
        assert np.array_equal(c_ap, want), (approx_name, np.argwhere(c_ap != want))


# ------------------------------------------------------------------------------------------------
# RTL (Verilator)
# ------------------------------------------------------------------------------------------------
@pytest.mark.rtl
@pytest.mark.parametrize("name", RTL_DEFAULT + [pytest.param(n, marks=pytest.mark.slow) for n in RTL_SLOW])
def test_cli_rtl_equals_golden_and_verify(gemm_cli, tmp_path, name):
    raw = small(name)
    hw = tmp_path / f"{name}.yaml"
    hw.write_text(yaml.safe_dump(raw))
    rng = np.random.default_rng(17)
    m, k, n = 6, 19, 7  # 2 x 2 tiles of a 4 x 4 array, K not a multiple of the array
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-4, 5, (m, k)))
    w = rng.standard_normal((k, n)).astype(np.float32)
    a[0, :3] = [np.nan, np.inf, -0.0]
    w[3, 2] = -np.inf
    a[5, :] = a[4, :] * (1 + 2.0**-8)  # row 5 cancels against row 4 in column 6
    w[:, 6] = 0.0
    w[::2, 6], w[1::2, 6] = 1.0, -1.0
    gold, c_gold = gemm_cli(hw, a, w, "golden")
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    assert c_rtl.dtype == np.float32 and c_rtl.shape == (m, n)
    assert c_gold.tobytes() == c_rtl.tobytes()
    assert np.isnan(c_rtl[0]).all() and not np.isnan(c_rtl[1:]).any()
    acc = config_from_dict(raw).accelerator()
    tiles, R, C = 4, 4, 4
    assert rtl["cycles"] == gold["cycles"] == acc.cycles(m, k, n) == tiles * k + 2 * R + C - 1
    finite = np.isfinite(c_rtl)
    ref = (a.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)) @ (
        w.astype(ml_dtypes.bfloat16).astype(np.float64)
    )
    assert np.allclose(c_rtl[finite], ref[finite], rtol=0.05, atol=1e-2)

    # The engine's own verification: FP edge cases + random GEMMs, bit-exact, cycle-exact, stalls.
    report = verify(acc, cases=3, seed=2)
    labels = {c.label for c in report.cases}
    assert {"zeros of both signs", "inf - inf and inf * 0", "subnormal operands", "K >> array"} <= labels
    bad = [c for c in report.cases if not c.passed]
    assert not bad and report.passed, bad


@pytest.mark.rtl
def test_verify_detects_a_wrong_golden(monkeypatch):
    """``verify`` can fail: with a golden model whose first finite output is one float32 ulp off
    (or, if all are NaN/inf, whose first output is 0), the RTL unchanged, every case is reported
    as not bit-exact, and the report fails."""
    acc = accel("bf16_exact")
    real = FpAccelerator.golden

    def off_by_one_ulp(self, a, w):
        out = real(self, a, w).copy()
        finite = np.flatnonzero(np.isfinite(out))
        if finite.size:
            out.reshape(-1).view(np.uint32)[finite[0]] ^= 1
        else:
            out.reshape(-1)[0] = 0.0
        return out

    monkeypatch.setattr(FpAccelerator, "golden", off_by_one_ulp)
    report = verify(acc, cases=1, seed=3)
    assert len(report.cases) >= 5 and not report.passed
    for case in report.cases:
        assert not case.bit_exact and case.stall_bit_exact is False, case.label
        assert case.cycles_rtl == case.cycles_model, case.label  # only the numerics are wrong


def test_byte_comparison_is_strict():
    """verify compares floats by bit pattern: one flipped bit or another NaN payload differs."""
    x = np.array([[1.0, np.nan]], dtype=np.float32)
    y = x.copy()
    assert _same(x, y)
    y.view(np.uint32)[0, 1] = 0x7FC00001
    assert not _same(x, y)
    y = x.copy()
    y.view(np.uint32)[0, 0] ^= 1
    assert not _same(x, y)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_verify_slow(name):
    acc = load_config(CONFIGS / f"{name}.yaml").accelerator()
    report = verify(acc, cases=12, seed=5)
    assert report.passed, [c for c in report.cases if not c.passed]
