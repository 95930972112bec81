"""The FMA RTL (tpegen.hw.pe.fma) against the numeric model, in Amaranth's simulator and on Verilator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Fragment, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaPEParams
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3_IEEE, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FmaConfig

MODES = {
    "exact_bf16_fp32": FmaConfig(BF16, BF16, FP32),
    "exact_bf16_bf16": FmaConfig(BF16, BF16, BF16),
    "approx_w8_bf16": FmaConfig(BF16, BF16, BF16, norm_window=8),
    "approx_w16_g4_fp32_trunc": FmaConfig(
        BF16, BF16, FP32, rounding="trunc", norm_window=16, shift_granularity=4
    ),
    "relaxed_w8_bf16": FmaConfig(BF16, BF16, BF16, normalize_in_pe=False, norm_window=8),
    # The two shipped Pareto points of bench/fp_dse.py (configs/bf16_approx_w4_g4, _relaxed_w2_g2).
    "approx_w4_g4_fp32": FmaConfig(BF16, BF16, FP32, norm_window=4, shift_granularity=4),
    "relaxed_w2_g2_fp32": FmaConfig(
        BF16, BF16, FP32, normalize_in_pe=False, norm_window=2, shift_granularity=2
    ),
    "exact_e4m3ieee_fp16_trunc": FmaConfig(FP8_E4M3_IEEE, FP8_E4M3_IEEE, FP16, rounding="trunc"),
    # OCP fp8 as PyTorch defines it: e4m3fn (no inf, S.1111.111 NaN, max 448) and e5m2 (IEEE-like)
    "exact_e4m3fn_fp32": FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP32),
    "exact_e4m3fn_fp16": FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16),  # 448 * 448 overflows fp16 to inf
    "exact_e5m2_fp16": FmaConfig(FP8_E5M2, FP8_E5M2, FP16),
    # L-Mul (arXiv:2410.00907): bf16 (l = 4), e4m3fn (l = 3), mixed e5m2 x e4m3fn (m = 3, l = 3)
    "lmul_bf16_fp32": FmaConfig(BF16, BF16, FP32, multiplier="lmul"),
    "lmul_e4m3fn_fp16": FmaConfig(FP8_E4M3FN, FP8_E4M3FN, FP16, multiplier="lmul"),
    "lmul_e5m2_e4m3fn_bf16_trunc": FmaConfig(FP8_E5M2, FP8_E4M3FN, BF16, "trunc", multiplier="lmul"),
}


def _edges(fmt: fp.FloatFormat) -> list[int]:
    m = fmt.man_bits
    v = [
        0,
        1,
        (1 << m) - 1,
        1 << m,
        fmt.bias << m,
        fmt.max_finite_bits,
        fmt.max_finite_bits - 1,
        fmt.exp_all_ones << m,  # inf; a normal number (256) in e4m3fn
        fmt.nan_bits,
        (fmt.exp_all_ones << m) | 1,  # NaN; a normal number (288) in e4m3fn
        (fmt.bias + 1) << m | 3,
    ]
    return v + [x | fmt.sign_bit for x in v]


def make_inputs(cfg: FmaConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random + near-cancellation + edge-case (a, w, acc_in) triples for ``cfg``."""
    rng = np.random.default_rng(seed)
    af, wf, cf = cfg.a_fmt, cfg.w_fmt, cfg.acc_fmt
    a = rng.integers(0, 1 << af.width, n)
    w = rng.integers(0, 1 << wf.width, n)
    mid = rng.random(n) < 0.6  # keep exponents in a range where a*w and c interact
    a = np.where(
        mid,
        (a & (af.sign_bit | ((1 << af.man_bits) - 1)))
        | (rng.integers(af.bias - 6, af.bias + 6, n) << af.man_bits),
        a,
    )
    w = np.where(
        mid,
        (w & (wf.sign_bit | ((1 << wf.man_bits) - 1)))
        | (rng.integers(wf.bias - 6, wf.bias + 6, n) << wf.man_bits),
        w,
    )
    with np.errstate(all="ignore"):
        if cfg.multiplier == "lmul":  # the approximate product as the PE forms it, in fp32
            prod = fp.decode(fp.fma(a, w, 0, FmaConfig(af, wf, FP32, multiplier="lmul")), FP32)
        else:
            prod = fp.decode(a, af) * fp.decode(w, wf)
        near = fp.quantize(-prod * (1 + rng.standard_normal(n) * 2.0 ** -rng.integers(2, 24, n)), cf)
    c = np.where(rng.random(n) < 0.5, near, rng.integers(0, 1 << cf.width, n))
    e = len(_edges(af))
    k = min(n // 4, e * e)
    ea, ew = np.meshgrid(_edges(af), _edges(wf))
    a[:k], w[:k] = ea.ravel()[:k], ew.ravel()[:k]
    c[:k] = np.resize(_edges(cf), k)
    if not cfg.normalize_in_pe:  # relaxed accumulator: partial sums the PE itself produces, plus raw bits
        rf = cfg.relaxed
        relax = fp.fma(rng.permutation(a), rng.permutation(w), 0, cfg)
        relax = fp.fma(a, w, relax, cfg)
        raw = rng.integers(0, 1 << rf.width, n)
        c = np.where(rng.random(n) < 0.8, relax, raw)
    return a.astype(np.int64), w.astype(np.int64), c.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Amaranth simulator
# ------------------------------------------------------------------------------------------------


def _amaranth_run(dut, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    n = len(next(iter(inputs.values())))
    got = {o: np.zeros(n, dtype=np.int64) for o in outputs}

    async def bench(ctx):
        for i in range(n):
            for port, vals in inputs.items():
                ctx.set(getattr(dut, port).as_value(), int(vals[i]))
            for o in outputs:
                got[o][i] = ctx.get(getattr(dut, o).as_value())

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("mode", list(MODES))
def test_datapath_amaranth_sim(mode):
    cfg = MODES[mode]
    a, w, c = make_inputs(cfg, 300, seed=11)
    dut = FmaPEParams(cfg).datapath()
    got = _amaranth_run(dut, {"a": a, "w": w, "acc_in": c}, ["acc_out"])["acc_out"]
    want = fp.fma(a, w, c, cfg)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{bad.size} mismatches; first a={a[bad[0]]:#x} w={w[bad[0]]:#x} c={c[bad[0]]:#x} "
        f"rtl={got[bad[0]]:#x} model={want[bad[0]]:#x}"
    )


def test_normalizer_amaranth_sim():
    cfg = MODES["relaxed_w8_bf16"]
    _, _, c = make_inputs(cfg, 300, seed=12)
    got = _amaranth_run(FmaPEParams(cfg).normalizer(), {"acc_in": c}, ["acc_out"])["acc_out"]
    assert np.array_equal(got, fp.normalize_relaxed(c, cfg))


def test_params_and_signature():
    p = FmaPEParams(MODES["exact_bf16_fp32"])
    assert p.a_shape.size == 16 and p.acc_shape.size == 32
    dp = p.datapath()
    assert set(dp.signature.members) == {"a", "w", "acc_in", "acc_out"}
    Fragment.get(dp, None)  # elaborates
    r = FmaPEParams(MODES["relaxed_w8_bf16"])
    assert r.acc_shape.size == r.fma.relaxed.width and r.out_shape.size == 16
    with pytest.raises(ConfigError, match="pe.dataflow"):
        FmaPEParams(dataflow="ws")
    with pytest.raises(ConfigError, match="pe.normalize_in_pe"):
        p.normalizer()


# ------------------------------------------------------------------------------------------------
# Verilator: every mode side by side in one stream top, one build, one simulation
# ------------------------------------------------------------------------------------------------


class _AllModesTop(wiring.Component):
    """Test-only stream top: one input beat = (a, w, acc_in) of every mode, one output beat = results.

    The output is registered (1-cycle latency, full throughput with backpressure).
    """

    def __init__(self, modes: dict[str, FmaConfig]):
        self.params = {k: FmaPEParams(v) for k, v in modes.items()}
        self.in_fields, self.out_fields = [], []
        for k, p in self.params.items():
            self.in_fields += [
                (k, "a", p.a_shape.size),
                (k, "w", p.w_shape.size),
                (k, "acc_in", p.acc_shape.size),
            ]
            self.out_fields += [(k, "acc_out", p.acc_shape.size)]
            if not p.fma.normalize_in_pe:
                self.out_fields += [(k, "norm", p.out_shape.size)]
        super().__init__(
            {
                "i": In(stream.Signature(sum(f[2] for f in self.in_fields))),
                "o": Out(stream.Signature(sum(f[2] for f in self.out_fields))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ins, off = {}, 0
        for k, port, width in self.in_fields:
            ins[k, port] = self.i.payload[off : off + width]
            off += width
        outs = []
        for k, p in self.params.items():
            dp = p.datapath()
            m.submodules[f"dp_{k}"] = dp
            m.d.comb += [dp.a.eq(ins[k, "a"]), dp.w.eq(ins[k, "w"]), dp.acc_in.eq(ins[k, "acc_in"])]
            outs.append(dp.acc_out.as_value())
            if not p.fma.normalize_in_pe:  # the normalizer sees the mode's acc_in directly
                nm = p.normalizer()
                m.submodules[f"norm_{k}"] = nm
                m.d.comb += nm.acc_in.eq(ins[k, "acc_in"])
                outs.append(nm.acc_out.as_value())
        result = Signal(len(self.o.payload))
        m.d.comb += [result.eq(Cat(*outs)), self.i.ready.eq(~self.o.valid | self.o.ready)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(result), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def _verilator_check(n: int, seed: int, modes: dict[str, FmaConfig] = MODES, make=make_inputs):
    """``n`` beats of ``make(cfg, n, seed)`` inputs per mode through every mode's datapath (and edge
    normalizer) on Verilator, each output against the model."""
    from tpegen.sim.packing import pack_fields, unpack_lanes
    from tpegen.sim.verilator import StreamProgram, build

    top = _AllModesTop(modes)
    data = {k: make(cfg, n, seed + i) for i, (k, cfg) in enumerate(modes.items())}
    fields = []
    for k, port, width in top.in_fields:
        vals = data[k][("a", "w", "acc_in").index(port)]
        fields.append((vals, width))
    nbits_in = len(top.i.payload)
    beats = pack_fields(fields, nbits_in)
    model = build(verilog.convert(top, name="fma_modes_top"), "fma_modes_top")
    res = model.run([StreamProgram(inputs={"i": beats}, outputs={"o": n})])[0]
    out = res.outputs["o"]
    off = 0
    for k, port, width in top.out_fields:
        got = unpack_lanes(out, width, 1, signed=False, offset=off)[:, 0]
        off += width
        cfg = modes[k]
        a, w, c = data[k]
        want = fp.fma(a, w, c, cfg) if port == "acc_out" else fp.normalize_relaxed(c, cfg)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (
            f"{k}.{port}: {bad.size} mismatches; first a={a[bad[0]]:#x} w={w[bad[0]]:#x} "
            f"c={c[bad[0]]:#x} rtl={got[bad[0]]:#x} model={want[bad[0]]:#x}"
        )
    assert res.cycles == n + 1  # one beat per cycle, one cycle of latency


@pytest.mark.rtl
def test_datapath_verilator_10k():
    _verilator_check(10_000, seed=100)


@pytest.mark.rtl
@pytest.mark.slow
def test_datapath_verilator_long():
    _verilator_check(200_000, seed=1000)
