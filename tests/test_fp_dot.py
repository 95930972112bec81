"""Multi-term FP dot-product PE (``pe.terms``, ``pe.align_bits``; tensor-core numerics).

* The model (:mod:`tpegen.sim.fp_dot`) against the test cases of Fasi, Higham, Mikaitis & Pranesh
  ("Numerical behavior of NVIDIA tensor cores", PeerJ CS 2021, and their test suite
  north-numerical-computing/tensor-cores-numerical-behavior, V100 file): the values the V100/T4
  fp16 tensor cores return with fp32 accumulation (4 terms, 23 bits kept below the largest
  exponent, truncation) and in fp16 mode, with exact expected values.
* The model against an independent exact-rational reference written from the specification
  (products exact, anchor = largest exponent, truncation, one rounding), and order independence.
* The RTL datapath against the model on Verilator: 10k random vectors per mode plus the edge cases.
* ``configs/tc_fp16_dot4.yaml`` through ``tpegen gemm`` (golden, cycle, RTL) and ``tpegen verify``;
  the timing model (``ceil(K / terms)`` beats per tile); one-line ConfigErrors.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import yaml
from amaranth.back import verilog
from amaranth.hdl import Cat, Fragment, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from conftest import CONFIGS
from fp_reference import round_ieee

import tpegen
from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaDatapath, FmaPEParams
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FloatFormat, FmaConfig
from tpegen.sim.fp_dot import dot_step, gemm_dot
from tpegen.sim.systolic_timing import os_timeline
from tpegen.sw.verify import verify

TC = FmaConfig(FP16, FP16, FP32, "trunc", terms=4, align_bits=23)  # V100/T4, fp32 accumulation
MODES = {
    "tc_fp16_fp32_t4_b23_trunc": TC,
    "fp16_fp32_t4_b23_rne": FmaConfig(FP16, FP16, FP32, terms=4, align_bits=23),
    "bf16_fp32_t8_b30_rne": FmaConfig(BF16, BF16, FP32, terms=8, align_bits=30),
    "bf16_bf16_t2_b10_trunc": FmaConfig(BF16, BF16, BF16, "trunc", terms=2, align_bits=10),
    "e4m3fn_fp16_t4_b12_rne": FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16, terms=4, align_bits=12),
    "e5m2_e4m3fn_bf16_t8_b3_rne": FmaConfig(FP8_E5M2, FP8_E4M3FN, BF16, terms=8, align_bits=3),
    "fp16_fp32_t1_b23_trunc": FmaConfig(FP16, FP16, FP32, "trunc", terms=1, align_bits=23),
}
L = math.ldexp


def h(*values: float) -> np.ndarray:
    return fp.quantize(np.array(values, dtype=np.float64), FP16)


def tc_step(a, w, c: float, cfg: FmaConfig = TC) -> float:
    """One step on fp16 operands (zero-padded to ``cfg.terms``) and an accumulator value."""
    pad = [0.0] * (cfg.terms - len(a))
    out = dot_step(h(*a, *pad), h(*w, *pad), fp.quantize(np.float64(c), cfg.acc_fmt), cfg)
    return float(fp.decode(out, cfg.acc_fmt))


# ------------------------------------------------------------------------------------------------
# the paper's test cases (values returned by the V100 / T4 tensor cores)
# ------------------------------------------------------------------------------------------------
BELOW_ONE_16 = 1 - L(1, -11)  # largest fp16 below 1
BELOW_ONE_32 = 1 - L(1, -24)  # largest fp32 below 1
MIN_SUB_16 = L(1, -24)


def test_subnormals_in_and_out():
    assert tc_step([MIN_SUB_16], [4], 0) == L(1, -22)  # fp16 subnormal input
    assert tc_step([], [], L(1, -149)) == L(1, -149)  # fp32 subnormal accumulator kept
    assert tc_step([L(1, -14)], [0.5], 0) == L(1, -15)  # products below fp16's normal range
    assert tc_step([L(1, -14)], [1], -L(1, -15)) == L(1, -15)  # no flush of a small result


def test_products_are_exact_and_accumulated_in_fp32():
    square = 1 - L(1, -10) + L(1, -22)  # (1 - 2**-11)**2 needs 22 bits
    assert tc_step([BELOW_ONE_16], [BELOW_ONE_16], 0) == square
    assert tc_step([BELOW_ONE_16] * 4, [BELOW_ONE_16] * 4, 0) == 4 * square
    assert tc_step([1] * 4, [MIN_SUB_16] * 4, 1.0) == 1.0  # 4 * 2**-24 below fp32's last bit of 1


def test_sum_is_anchored_on_the_largest_term_in_any_position():
    for j in range(4):
        w = [MIN_SUB_16] * 4
        w[j] = 1.0
        assert tc_step([1] * 4, w, MIN_SUB_16) == 1.0


def test_truncation_toward_zero_for_both_signs():
    assert tc_step([1, 1], [2, L(1, -23) + L(1, -24)], 0) == 2.0  # RNE would give 2 + 2**-22
    assert tc_step([1, 1], [-2, -L(1, -23) - L(1, -24)], 0) == -2.0


def test_no_guard_bits_in_the_alignment():
    assert tc_step([1], [1], -BELOW_ONE_32) == L(1, -23)  # exact: 2**-24


def test_normalization_after_the_one_addition():
    assert tc_step([1] * 4, [MIN_SUB_16] * 4, BELOW_ONE_32) == 1 + L(1, -23)  # exact 1 + 3 * 2**-24
    assert tc_step([1, 1], [1, -MIN_SUB_16], -1 + L(1, -24)) == L(1, -23)


def test_carry_out_bits():
    for j in range(4):
        w = [1.0] * 4
        w[j] = L(1, -23)
        assert tc_step([1] * 4, w, 1 + L(1, -22) + L(1, -23)) == 4 + L(1, -21)
    assert tc_step([1] * 4, [1, 1.5, 1.75, 1.875], 1.875) == 8.0
    assert tc_step([1] * 4, [1] * 4, 1 + L(1, -22) + L(1, -23)) == 5.0  # RNE: 5 + 2**-21
    assert tc_step([1] * 4, [-1] * 4, -1 - L(1, -22) - L(1, -23)) == -5.0


def test_the_dot_product_is_not_monotonic():
    smaller_c = tc_step([1] * 4, [MIN_SUB_16] * 4, BELOW_ONE_32)
    larger_c = tc_step([1] * 4, [MIN_SUB_16] * 4, 1.0)
    assert (smaller_c, larger_c) == (1 + L(1, -23), 1.0) and larger_c < smaller_c


def test_fp16_accumulation_mode():
    """The paper's binary16 mode: exact products, the sum rounded to nearest into fp16."""
    cfg = FmaConfig(FP16, FP16, FP16, terms=4, align_bits=23)
    assert tc_step([BELOW_ONE_16] * 2, [BELOW_ONE_16, L(1, -11)], 0, cfg) == BELOW_ONE_16
    assert tc_step([MIN_SUB_16] * 2, [0.5, 0.25], 0, cfg) == MIN_SUB_16  # 0.75 * 2**-24 rounds up
    assert tc_step([L(1, -14)], [0.5], 0, cfg) == L(1, -15)  # fp16 subnormal output


def test_shipped_config_is_the_paper_configuration():
    cfg = load_config(CONFIGS / "tc_fp16_dot4.yaml")
    assert cfg.pe.fma == TC and (cfg.array.rows, cfg.array.cols) == (2, 2)


# ------------------------------------------------------------------------------------------------
# the model against an exact-rational reference written from the specification
# ------------------------------------------------------------------------------------------------
def _fields(code: int, fmt: FloatFormat) -> tuple[int, int, int, str]:
    """sign, significand (hidden bit explicit), field exponent max(e, 1) - bias, class."""
    m = fmt.man_bits
    s, e, f = code >> (fmt.width - 1) & 1, (code >> m) & fmt.exp_all_ones, code & ((1 << m) - 1)
    if e == fmt.exp_all_ones and (not fmt.finite_only or f == (1 << m) - 1):
        return s, 0, 0, "nan" if (fmt.finite_only or f) else "inf"
    return s, (f | (1 << m)) if e else f, max(e, 1) - fmt.bias, "finite"


def _encode(value: Fraction, negative: bool, fmt: FloatFormat) -> int:
    if value == 0:
        return fmt.sign_bit if negative else 0
    return int(fp.quantize(np.float64(value), fmt))  # exactly representable: no rounding


def reference_step(a: list[int], w: list[int], c: int, cfg: FmaConfig) -> int:
    """``fl(c + sum a_t w_t)`` as the specification states it, on Python integers and Fractions."""
    fmt, B = cfg.acc_fmt, cfg.align_bits
    sc, sigc, tc, kc = _fields(c, fmt)
    terms = [((-1) ** sc) * Fraction(sigc) * Fraction(2) ** (tc - fmt.man_bits)]
    exps, signs, infs, nan = [tc], [sc], [sc] if kc == "inf" else [], kc == "nan"
    for x, y in zip(a, w, strict=True):
        sa, siga, ta, ka = _fields(x, cfg.a_fmt)
        sw, sigw, tw, kw = _fields(y, cfg.w_fmt)
        s = sa ^ sw
        signs.append(s)
        nan |= "nan" in (ka, kw) or (ka == "inf" and kw == "finite" and sigw == 0)
        nan |= kw == "inf" and ka == "finite" and siga == 0
        if "inf" in (ka, kw):
            infs.append(s)
        prod = siga * sigw * Fraction(2) ** (ta - cfg.a_fmt.man_bits + tw - cfg.w_fmt.man_bits)
        terms.append(-prod if s else prod)
        if prod:
            exps.append(ta + tw)
    if nan or len(set(infs)) > 1:
        return fmt.nan_bits
    if infs:
        return fmt.inf_bits | (fmt.sign_bit if infs[0] else 0)
    quantum = Fraction(2) ** (max(exps) - B)
    total = sum((abs(t) // quantum) * quantum * (1 if t >= 0 else -1) for t in terms)  # truncation
    if total == 0:
        return fmt.sign_bit if all(signs) else 0
    r = round_ieee(total, fmt, cfg.rounding)
    max_finite = Fraction(float(fp.decode(fmt.max_finite_bits, fmt)))
    if abs(r) > max_finite:
        big = fmt.inf_bits if cfg.rounding == "rne" else fmt.max_finite_bits
        return big | (fmt.sign_bit if total < 0 else 0)
    return _encode(r, total < 0, fmt)


def _edges(fmt: FloatFormat) -> list[int]:
    """Zeros, subnormals, normals at the ends of the range, inf (if any), NaN; both signs."""
    m = fmt.man_bits
    v = [0, 1, 3, (1 << m) - 1, 1 << m, fmt.bias << m, fmt.max_finite_bits, fmt.max_finite_bits - 1]
    v += [fmt.nan_bits] + ([fmt.inf_bits] if fmt.has_inf else [])
    return v + [x | fmt.sign_bit for x in v]


def make_inputs(cfg: FmaConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, w, c): (n, terms), (n, terms), (n,) codes. Random codes, codes in a narrow exponent band
    (products that interact), near-cancelling accumulators, subnormal/zero terms, and the edge
    cases (every edge code in every term position, against edge accumulators)."""
    rng = np.random.default_rng(seed)
    T, af, wf, cf = cfg.terms, cfg.a_fmt, cfg.w_fmt, cfg.acc_fmt

    def codes(fmt: FloatFormat, shape, band: float) -> np.ndarray:
        x = rng.integers(0, 1 << fmt.width, shape)
        mid = rng.random(shape) < band
        spread = rng.integers(fmt.bias - 4, fmt.bias + 5, shape) << fmt.man_bits
        x = np.where(mid, (x & (fmt.sign_bit | ((1 << fmt.man_bits) - 1))) | spread, x)
        small = rng.random(shape) < 0.1  # zeros and subnormals
        return np.where(small, x & (fmt.sign_bit | ((1 << fmt.man_bits) - 1)), x)

    a, w = codes(af, (n, T), 0.7), codes(wf, (n, T), 0.7)
    with np.errstate(all="ignore"):
        exact = (fp.decode(a, af) * fp.decode(w, wf)).sum(axis=1)
        near = fp.quantize(-exact * (1 + rng.standard_normal(n) * 2.0 ** -rng.integers(2, 30, n)), cf)
    c = np.where(rng.random(n) < 0.5, near, codes(cf, n, 0.5))
    ea, ew, ec = _edges(af), _edges(wf), _edges(cf)
    k = min(n // 4, len(ea) * len(ew) * T)
    grid_a, grid_w = (g.ravel() for g in np.meshgrid(ea, ew))
    for i in range(k):  # one edge pair in term i % T, the other terms random
        a[i, i % T], w[i, i % T] = grid_a[i // T % grid_a.size], grid_w[i // T % grid_w.size]
        c[i] = ec[i % len(ec)]
    return a.astype(np.int64), w.astype(np.int64), c.astype(np.int64)


@pytest.mark.parametrize("mode", list(MODES))
def test_model_equals_exact_rational_reference(mode):
    cfg = MODES[mode]
    a, w, c = make_inputs(cfg, 1500, seed=7 + list(MODES).index(mode))
    got = dot_step(a, w, c, cfg)
    for i in range(len(c)):
        want = reference_step([int(x) for x in a[i]], [int(x) for x in w[i]], int(c[i]), cfg)
        assert got[i] == want, (i, [hex(x) for x in a[i]], [hex(x) for x in w[i]], hex(c[i]), hex(got[i]))


@pytest.mark.parametrize("mode", ["bf16_fp32_t8_b30_rne", "tc_fp16_fp32_t4_b23_trunc"])
def test_terms_within_a_step_are_order_independent(mode):
    cfg = MODES[mode]
    a, w, c = make_inputs(cfg, 3000, seed=3)
    perm = np.random.default_rng(4).permuted(np.tile(np.arange(cfg.terms), (len(c), 1)), axis=1)
    base = dot_step(a, w, c, cfg)
    assert np.array_equal(
        base, dot_step(np.take_along_axis(a, perm, 1), np.take_along_axis(w, perm, 1), c, cfg)
    )


def test_gemm_consumes_k_terms_at_a_time_with_zero_padding():
    """``gemm_dot`` = dot steps over K in groups of ``terms`` from +0, K padded with +0."""
    cfg = MODES["bf16_bf16_t2_b10_trunc"]
    rng = np.random.default_rng(9)
    A = fp.quantize(rng.standard_normal((3, 7)), BF16)
    W = fp.quantize(rng.standard_normal((7, 2)), BF16)
    got = gemm_dot(A, W, cfg)
    Ap, Wp = np.pad(A, ((0, 0), (0, 1))), np.pad(W, ((0, 1), (0, 0)))
    for i in range(3):
        for j in range(2):
            acc = 0
            for b in range(4):
                a_row, w_col = Ap[i, 2 * b : 2 * b + 2].tolist(), Wp[2 * b : 2 * b + 2, j].tolist()
                acc = reference_step(a_row, w_col, acc, cfg)
            assert got[i, j] == acc
    assert np.array_equal(fp.gemm_chain(A, W, cfg), got)  # gemm_chain dispatches on cfg.dot


def test_one_term_without_align_bits_is_todays_fma():
    p = FmaPEParams()
    assert (p.terms, p.align_bits, p.fma.dot) == (1, None, False)
    dp = p.datapath()
    Fragment.get(dp, None)  # elaborates
    assert isinstance(dp, FmaDatapath) and p.a_shape.size == 16
    with pytest.raises(ValueError, match="dot_step"):
        fp.fma(0, 0, 0, TC)


# ------------------------------------------------------------------------------------------------
# RTL: Amaranth's simulator (a few vectors) and Verilator (10k per mode, one build)
# ------------------------------------------------------------------------------------------------
def _lanes(x: np.ndarray, width: int) -> list[int]:
    """(n, terms) codes -> n packed ints, term t at bits t*width (the ArrayLayout order)."""
    return [sum(int(v) << (t * width) for t, v in enumerate(row)) for row in x]


def test_datapath_amaranth_sim():
    cfg = MODES["e4m3fn_fp16_t4_b12_rne"]
    a, w, c = make_inputs(cfg, 150, seed=21)
    dut = FmaPEParams(cfg).datapath()
    pa, pw = _lanes(a, cfg.a_fmt.width), _lanes(w, cfg.w_fmt.width)
    got = np.zeros(len(c), dtype=np.int64)

    async def bench(ctx):
        for i in range(len(c)):
            ctx.set(dut.a.as_value(), pa[i])
            ctx.set(dut.w.as_value(), pw[i])
            ctx.set(dut.acc_in.as_value(), int(c[i]))
            got[i] = ctx.get(dut.acc_out.as_value())

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(got, dot_step(a, w, c, cfg))


class _AllModesTop(wiring.Component):
    """Test-only stream top: one input beat = (a, w, acc_in) of every mode, one output beat = every
    mode's acc_out, registered (1 cycle latency, full throughput)."""

    def __init__(self, modes: dict[str, FmaConfig]):
        self.params = {k: FmaPEParams(v) for k, v in modes.items()}
        self.in_widths = [
            (k, p.a_shape.size, p.w_shape.size, p.acc_shape.size) for k, p in self.params.items()
        ]
        n_in = sum(sum(x[1:]) for x in self.in_widths)
        n_out = sum(x[3] for x in self.in_widths)
        super().__init__({"i": In(stream.Signature(n_in)), "o": Out(stream.Signature(n_out))})

    def elaborate(self, platform):
        m = Module()
        off, outs = 0, []
        for k, wa, ww, wc in self.in_widths:
            dp = self.params[k].datapath()
            m.submodules[f"dp_{k}"] = dp
            pay = self.i.payload
            m.d.comb += [
                dp.a.eq(pay[off : off + wa]),
                dp.w.eq(pay[off + wa : off + wa + ww]),
                dp.acc_in.eq(pay[off + wa + ww : off + wa + ww + wc]),
            ]
            off += wa + ww + wc
            outs.append(dp.acc_out.as_value())
        result = Signal(len(self.o.payload))
        m.d.comb += [result.eq(Cat(*outs)), self.i.ready.eq(~self.o.valid | self.o.ready)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(result), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def _verilator_check(n: int, seed: int) -> None:
    from tpegen.sim.packing import pack_fields, unpack_lanes
    from tpegen.sim.verilator import StreamProgram, build

    top = _AllModesTop(MODES)
    data = {k: make_inputs(cfg, n, seed + i) for i, (k, cfg) in enumerate(MODES.items())}
    fields = []
    for k, cfg in MODES.items():
        a, w, c = data[k]
        fields += [(a, cfg.a_fmt.width), (w, cfg.w_fmt.width), (c, cfg.acc_fmt.width)]
    beats = pack_fields(fields, len(top.i.payload))
    model = build(verilog.convert(top, name="fp_dot_modes_top"), "fp_dot_modes_top")
    res = model.run([StreamProgram(inputs={"i": beats}, outputs={"o": n})])[0]
    off = 0
    for k, cfg in MODES.items():
        got = unpack_lanes(res.outputs["o"], cfg.acc_fmt.width, 1, signed=False, offset=off)[:, 0]
        off += cfg.acc_fmt.width
        a, w, c = data[k]
        want = dot_step(a, w, c, cfg)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (
            f"{k}: {bad.size} mismatches; first a={[hex(x) for x in a[bad[0]]]} w={[hex(x) for x in w[bad[0]]]} "
            f"c={c[bad[0]]:#x} rtl={got[bad[0]]:#x} model={want[bad[0]]:#x}"
        )
    assert res.cycles == n + 1


@pytest.mark.rtl
def test_datapath_verilator_10k():
    _verilator_check(10_000, seed=200)


@pytest.mark.rtl
@pytest.mark.slow
def test_datapath_verilator_long():
    _verilator_check(200_000, seed=2000)


# ------------------------------------------------------------------------------------------------
# the shipped config: timing, tpegen gemm on every backend, tpegen verify
# ------------------------------------------------------------------------------------------------
def test_timing_is_ceil_k_over_terms_beats():
    acc = load_config(CONFIGS / "tc_fp16_dot4.yaml").accelerator()
    assert acc.terms == 4 and acc.macs_per_cycle == 16
    for m, k, n in [(2, 1, 2), (2, 4, 2), (2, 9, 2), (5, 11, 3), (4, 64, 4)]:
        tiles = -(-m // 2) * -(-n // 2)
        want = os_timeline(2, 2, np.full(tiles, -(-k // 4)), "three_register").total
        ops = acc.random_operands(np.random.default_rng(k), m, k, n)
        assert acc.cycles(m, k, n) == want == tpegen.run_gemm(acc.config, *ops, backend="cycle").cycles
    assert acc.cycles(2, 9, 2) == 3 + 2 * 2 + 2 - 1  # one tile: beats + 2R + C - 1


def _reference_gemm(a_bits: np.ndarray, w_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """C from the exact-rational reference: steps of ``terms`` values of K from +0, K zero-padded."""
    T = cfg.terms
    k = -(-a_bits.shape[1] // T) * T
    ap, wp = (
        np.pad(a_bits, ((0, 0), (0, k - a_bits.shape[1]))),
        np.pad(w_bits, ((0, k - w_bits.shape[0]), (0, 0))),
    )
    out = np.zeros((a_bits.shape[0], w_bits.shape[1]), dtype=np.int64)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            acc = 0
            for b in range(0, k, T):
                acc = reference_step(
                    [int(x) for x in ap[i, b : b + T]], [int(x) for x in wp[b : b + T, j]], acc, cfg
                )
            out[i, j] = acc
    return out


def _operands(seed: int, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-12, 12, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-12, 12, (k, n)))
    a[0, :3] = [6e-8, -0.0, 1e-5]  # fp16 subnormals (the smallest one) and a negative zero
    return a, w


def test_shipped_config_golden_equals_reference(gemm_cli):
    hw = CONFIGS / "tc_fp16_dot4.yaml"
    a, w = _operands(61, 5, 11, 3)
    gold, c = gemm_cli(hw, a, w, "golden")
    cyc, c_cycle = gemm_cli(hw, a, w, "cycle")
    want = _reference_gemm(fp.quantize(a, FP16), fp.quantize(w, FP16), TC)
    assert c.dtype == np.float32 and np.array_equal(c.view(np.uint32), want.astype(np.uint32))
    assert c_cycle.tobytes() == c.tobytes() and gold["cycles"] == cyc["cycles"] == 3 * 2 * 3 + 5
    fma = fp.gemm_chain(fp.quantize(a, FP16), fp.quantize(w, FP16), FmaConfig(FP16, FP16, FP32))
    assert not np.array_equal(c, fp.decode(fma, FP32))  # not the correctly rounded FMA chain


@pytest.mark.rtl
def test_shipped_config_rtl_equals_golden_and_verify(gemm_cli):
    hw = CONFIGS / "tc_fp16_dot4.yaml"
    a, w = _operands(67, 5, 10, 3)  # 3 x 2 tiles of the 2 x 2 array, K not a multiple of 4
    a[1, :3] = [np.nan, 65504.0, -np.inf]  # NaN, fp16 max (products overflow fp16, not fp32), -inf
    w[:2, 2] = [65504.0, np.inf]
    gold, c_gold = gemm_cli(hw, a, w, "golden")
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    assert c_gold.tobytes() == c_rtl.tobytes() and rtl["cycles"] == gold["cycles"]
    assert np.isnan(c_rtl[1]).all()
    report = verify(config_from_dict(yaml.safe_load(hw.read_text())).accelerator(), cases=3, seed=5)
    bad = [case for case in report.cases if not case.passed]
    assert not bad and report.passed, bad


# ------------------------------------------------------------------------------------------------
# invalid combinations: one-line ConfigErrors naming the field
# ------------------------------------------------------------------------------------------------
def _raw(**pe) -> dict:
    raw = yaml.safe_load((CONFIGS / "tc_fp16_dot4.yaml").read_text())
    raw["pe"].update(pe)
    return raw


@pytest.mark.parametrize(
    "pe,field,allowed",
    [
        ({"terms": 3}, "pe.terms", "1, 2, 4, 8"),
        ({"terms": 4, "align_bits": None}, "pe.align_bits", "when pe.terms > 1"),
        ({"align_bits": 49}, "pe.align_bits", "0..48"),
        ({"multiplier": "lmul"}, "pe.multiplier", "'exact' in a dot-product PE"),
        ({"norm_window": 8}, "pe.norm_window", "null in a dot-product PE"),
        ({"normalize_in_pe": False}, "pe.normalize_in_pe", "true in a dot-product PE"),
        ({"dataflow": "ws"}, "pe.dataflow", "'os'"),
    ],
)
def test_invalid_combinations(bad_config, pe, field, allowed):
    bad_config(_raw(**pe), field, allowed)


def test_no_accelerator_top_for_a_dot_product_pe(run_cli, tmp_path):
    with pytest.raises(ConfigError, match=r"pe.terms: must be 1 on the accelerator top"):
        tpegen.run_system_gemm(load_config(CONFIGS / "tc_fp16_dot4.yaml"), np.ones((2, 4)), np.ones((4, 2)))
    code, _, err = run_cli("gen", CONFIGS / "tc_fp16_dot4.yaml", "--system", "-o", tmp_path / "top")
    assert code != 0 and err.count("\n") == 1 and "pe.terms" in err


def test_manifest_names_the_beats(run_cli, tmp_path):
    code, _, err = run_cli("gen", CONFIGS / "tc_fp16_dot4.yaml", "-o", tmp_path / "out")
    assert code == 0, err
    manifest = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert manifest["macs_per_cycle"] == 16 and "ceil(K / 4)" in manifest["timing"]["tile_beats"]
    ports = {p["name"]: p["width"] for p in manifest["ports"]}
    assert ports["operands__payload"] == 2 * 4 * 16 * 2 + 1  # 2 + 2 lanes of 4 fp16 values, last
