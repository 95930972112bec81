"""The FMA PE's building blocks against plain Python, and ``pe.pipeline_stages`` (a registered product)
against the numeric model, the timing models and the cycle simulator, in Amaranth's simulator and on
Verilator."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from test_fma_datapath import make_inputs

from tpegen.config import config_from_dict
from tpegen.errors import ConfigError
from tpegen.hw.pe.fma import FmaPEParams, _clz, _shr_sticky
from tpegen.sim import fp
from tpegen.sim.fp import BF16, FP8_E4M3FN, FP8_E5M2, FP16, FP32, FmaConfig


def _comb_run(build, inputs: dict[str, tuple[int, list[int]]], out_width: int) -> list[int]:
    """Drive the combinational block ``build(m, *input signals)`` with each row of ``inputs``
    (name -> (width, values)); return the output values."""
    m = Module()
    sigs = {name: Signal(width, name=name) for name, (width, _) in inputs.items()}
    out = Signal(out_width)
    m.d.comb += out.eq(build(m, *sigs.values()))
    n = len(next(iter(inputs.values()))[1])
    got = []

    async def bench(ctx):
        for i in range(n):
            for name, (_, vals) in inputs.items():
                ctx.set(sigs[name], vals[i])
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_clz_tree_counts_leading_zeros(width):
    values = list(range(1 << width))
    for window in (None, *range(1, width + 1, 2)):
        look = width if window is None else window
        got = _comb_run(
            lambda m, v, window=window: _clz(m, "lz", v, width, window), {"v": (width, values)}, 8
        )
        # the top `look` bits' leading zeros, `look` when they are all zero
        want = [min(look, width - v.bit_length()) for v in values]
        assert got == want, (width, window)


def test_shr_sticky_ors_the_shifted_out_bits():
    width = 7
    pairs = [(v, d) for v in range(1 << width) for d in range(0, width + 4)]
    got = _comb_run(
        lambda m, v, d: _shr_sticky(m, "s", v, d, width),
        {"v": (width, [v for v, _ in pairs]), "d": (4, [d for _, d in pairs])},
        width + 1,
    )
    want = [(v >> d) << 1 | int(v & ((1 << min(d, width)) - 1) != 0) for v, d in pairs]
    assert got == want


PIPE_MODES = {
    "exact_bf16_fp32": FmaConfig(BF16, BF16, FP32),
    "approx_w4_g4_bf16_trunc": FmaConfig(BF16, BF16, BF16, "trunc", norm_window=4, shift_granularity=4),
    "relaxed_w8_fp32": FmaConfig(BF16, BF16, FP32, normalize_in_pe=False, norm_window=8),
    "lmul_e5m2_e4m3fn_fp16": FmaConfig(FP8_E5M2, FP8_E4M3FN, FP16, multiplier="lmul"),
}


@pytest.mark.parametrize("mode", list(PIPE_MODES))
def test_pipelined_datapath_adds_the_registered_product(mode):
    """``pipeline_stages: 2``: a and w of cycle t meet acc_in of cycle t + 1 (one rounding, as the model)."""
    cfg = PIPE_MODES[mode]
    a, w, c = make_inputs(cfg, 200, seed=21)
    dut = FmaPEParams(cfg, pipeline_stages=2).datapath()
    got = np.zeros(len(a), dtype=np.int64)

    async def bench(ctx):
        for i in range(len(a) + 1):
            if i < len(a):
                ctx.set(dut.a.as_value(), int(a[i]))
                ctx.set(dut.w.as_value(), int(w[i]))
            if i:
                ctx.set(dut.acc_in.as_value(), int(c[i - 1]))
                got[i - 1] = ctx.get(dut.acc_out.as_value())
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = fp.fma(a, w, c, cfg)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{bad.size} mismatches; first at {bad[0]}: rtl={got[bad[0]]:#x} model={want[bad[0]]:#x}"
    )


def _raw(rows=2, cols=2, **pe) -> dict:
    return {
        "name": "bf16_pipe",
        "pe": {"type": "fma", "input_format": "bf16", "acc_format": "fp32", **pe},
        "array": {"rows": rows, "cols": cols},
    }


@pytest.mark.parametrize(
    ("pe", "allowed"),
    [
        ({"pipeline_stages": 0}, "1 (combinational multiply-add) or 2"),
        ({"pipeline_stages": 3}, "1 (combinational multiply-add) or 2"),
        ({"pipeline_stages": True}, "an integer"),
        ({"pipeline_stages": 2, "terms": 2, "align_bits": 23}, "1 in a dot-product PE"),
    ],
)
def test_bad_pipeline_stages(bad_config, pe, allowed):
    bad_config(_raw(**pe), "pe.pipeline_stages", allowed)


def test_pipelined_pe_on_the_accelerator_top_is_refused():
    from tpegen.hw.system.params import SystemGeometry

    with pytest.raises(ConfigError, match="pe.pipeline_stages"):
        SystemGeometry.of(config_from_dict(_raw(pipeline_stages=2)))


@pytest.mark.parametrize("os_cell", ["three_register", "two_register"])
def test_timing_model_adds_one_cycle_of_result_latency(os_cell):
    """Result latency D grows by the PE's pipeline latency (1); the tile interval does not."""
    R, C, (M, K, N) = 3, 2, (7, 2, 5)  # K < R: the drain interval paces the 3 x 3 tiles
    base, pipe = (
        config_from_dict(
            {**_raw(R, C, pipeline_stages=s), "array": {"rows": R, "cols": C, "os_cell": os_cell}}
        )
        for s in (1, 2)
    )
    assert base.array.pe_latency == 0 and pipe.array.pe_latency == 1
    G = R if os_cell == "three_register" else 2 * R - 1
    D = R + C - (os_cell == "two_register")
    tiles = 3 * 3
    assert base.accelerator().cycles(M, K, N) == K + (tiles - 1) * G + D + R - 1
    assert pipe.accelerator().cycles(M, K, N) == K + (tiles - 1) * G + D + 1 + R - 1
    sched = pipe.accelerator().schedule(M, K, N)
    assert sched.timing.timeline().total == pipe.accelerator().cycles(M, K, N)


@pytest.mark.rtl
def test_gemm_rtl_equals_cycle_backend(gemm_cli, tmp_path):
    """``tpegen gemm --backend rtl`` vs ``--backend cycle`` on a 2x2 engine with a registered product:
    equal outputs (byte for byte) and cycles, one cycle more than the combinational PE."""
    import yaml

    rng = np.random.default_rng(7)
    m, k, n = 5, 9, 3  # 3 x 2 tiles, K odd
    a = rng.standard_normal((m, k)) * np.exp2(rng.integers(-8, 8, (m, k)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-8, 8, (k, n)))
    a[0, :3] = [np.nan, 3e38, -0.0]
    hw = {}
    for stages in (1, 2):
        hw[stages] = tmp_path / f"pipe{stages}.yaml"
        hw[stages].write_text(yaml.safe_dump(_raw(pipeline_stages=stages)))
    cyc, c_cyc = gemm_cli(hw[2], a, w, "cycle")
    rtl, c_rtl = gemm_cli(hw[2], a, w, "rtl")
    base, c_base = gemm_cli(hw[1], a, w, "golden")
    assert c_rtl.tobytes() == c_cyc.tobytes() == c_base.tobytes()
    assert rtl["cycles"] == cyc["cycles"] == base["cycles"] + 1


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize(
    ("pe", "array"),
    [
        ({"acc_format": "bf16", "norm_window": 8}, {"rows": 3, "cols": 2, "os_cell": "two_register"}),
        (
            {"normalize_in_pe": False, "norm_window": 8},
            {
                "rows": 2,
                "cols": 3,
                "backpressure": "queue",
                "operand_gating": True,
                "reset_less_datapath": True,
            },
        ),
    ],
)
def test_verify_pipelined_cell_variants(pe, array):
    """``tpegen verify`` (edge cases, random GEMMs, random stalls: outputs and timing-model cycles)
    with a registered product in the two-register cell and in a queued, gated, reset-less array."""
    from tpegen.sw.verify import verify

    cfg = config_from_dict({**_raw(pipeline_stages=2, **pe), "array": array})
    report = verify(cfg.accelerator(), cases=3, seed=3)
    bad = [c for c in report.cases if not c.passed]
    assert not bad and report.passed, bad
