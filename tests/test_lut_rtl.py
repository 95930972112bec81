"""RTL tests of the LUT tensor core: Verilator + the generic cocotb stream player.

Each design is one Verilator build (cached by Verilog hash). The default run builds four small
designs that together cover W1, W2 (+ ternary), W3, W4, A8 and A16 and g = 2, 3, 4; the remaining
weight x activation combinations, g = 1 and the shipped configs' M2 N64 K16 tile (4 groups of g = 4)
run with ``-m slow``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from amaranth.back import verilog

from tpegen.hw.arrays.lut_core import LutCore, lut_core_verilog
from tpegen.sim.lut import (
    LutCoreParams,
    encode_weights,
    lut_act_beats,
    lut_decode_results,
    lut_gemm,
    lut_gemm_cycles,
    lut_gemm_plan,
    lut_gemm_program,
    lut_tile_cycles,
    lut_weight_beats,
    precompute_tables,
    reference_gemm,
)

TOP = "lut_core"

DEFAULT_DESIGNS = {
    "w1a8_g4": LutCoreParams(weight_bits=1, act_bits=8, group_size=4, tile_m=2, tile_n=4, tile_k=2),
    "w2a16_g2": LutCoreParams(weight_bits=2, act_bits=16, group_size=2, tile_m=1, tile_n=3, tile_k=2),
    "w3a8_g3": LutCoreParams(weight_bits=3, act_bits=8, group_size=3, tile_m=3, tile_n=2, tile_k=1),
    "w4a16_g4": LutCoreParams(weight_bits=4, act_bits=16, group_size=4, tile_m=2, tile_n=3, tile_k=1),
}
SLOW_DESIGNS = {
    "w1a16_g3": LutCoreParams(weight_bits=1, act_bits=16, group_size=3, tile_m=2, tile_n=3, tile_k=2),
    "w2a8_g4": LutCoreParams(weight_bits=2, act_bits=8, group_size=4, tile_m=2, tile_n=4, tile_k=2),
    "w3a16_g4": LutCoreParams(weight_bits=3, act_bits=16, group_size=4, tile_m=2, tile_n=2, tile_k=2),
    "w4a8_g4": LutCoreParams(weight_bits=4, act_bits=8, group_size=4, tile_m=2, tile_n=4, tile_k=2),
    "w4a8_g1": LutCoreParams(weight_bits=4, act_bits=8, group_size=1, tile_m=2, tile_n=2, tile_k=3),
    "w2a8_g4_acc14": LutCoreParams(
        weight_bits=2, act_bits=8, group_size=4, tile_m=1, tile_n=2, tile_k=2, acc_bits=14
    ),
    "m2n64k16_w4a8": LutCoreParams(weight_bits=4, act_bits=8, group_size=4, tile_m=2, tile_n=64, tile_k=4),
}


@functools.cache
def _model(params: LutCoreParams):
    from tpegen.sim.verilator import build

    return build(lut_core_verilog(params, TOP), TOP)


def _weights(p: LutCoreParams, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    lo, hi = p.weight_range()
    w = rng.integers(lo, hi + 1, shape)
    return np.where(w >= 0, 1, -1) if p.weight_bits == 1 else w


def _weight_values(p: LutCoreParams) -> np.ndarray:
    lo, hi = p.weight_range()
    return np.array([-1, 1]) if p.weight_bits == 1 else np.arange(lo, hi + 1)


def _cases(p: LutCoreParams, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """GEMMs covering one tile, partial tiles, K-tile accumulation, weight reuse and extremes."""
    rng = np.random.default_rng(seed)
    amin, amax = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    wvals = _weight_values(p)
    wlo, whi = wvals.min(), wvals.max()
    tm, tn, kt = p.tile_m, p.tile_n, p.k_tile
    cases = []
    # 1. exactly one tile, random
    cases.append((rng.integers(amin, amax + 1, (tm, kt)), _weights(p, rng, (kt, tn))))
    # 2. every weight value against extreme activation patterns, two K-tiles, several N-tiles
    K = 2 * kt
    patterns = np.array(
        [
            [amin] * K,
            [amax] * K,
            [amin, amax] * (K // 2) + [amin] * (K % 2),
            [0] * K,
            [-1, 1] * (K // 2) + [1] * (K % 2),
        ]
    )
    w = np.tile(wvals, (K, 1))
    w = np.concatenate([w, np.roll(w, 1, axis=1)[:, :1]], axis=1)
    w[1::2] = w[1::2, ::-1]
    cases.append((patterns, w))
    # 3. worst-case magnitudes: every product at its extreme
    cases.append((np.full((tm + 1, kt), amin), np.full((kt, tn), wlo)))
    cases.append((np.full((tm, kt + 1), amin), np.full((kt + 1, tn + 1), whi)))
    # 4. random, partial tiles in M, N and K, several K-tiles (accumulation across K-tiles)
    cases.append(
        (rng.integers(amin, amax + 1, (2 * tm + 1, 3 * kt - 1)), _weights(p, rng, (3 * kt - 1, 2 * tn + 1)))
    )
    # 5. K fits one tile: one weight tile reused by three M-tiles, per N-tile
    Kr = max(1, kt - 1)
    cases.append((rng.integers(amin, amax + 1, (3 * tm, Kr)), _weights(p, rng, (Kr, 2 * tn))))
    # 6. long K of extreme products: exercises accumulator wrap when acc_bits is narrow
    cases.append((np.full((tm, 4 * kt), amin), np.full((4 * kt, tn), wlo)))
    return cases


def _check_design(params: LutCoreParams, *, ternary: bool = False, stall: bool = True) -> None:
    p = params
    runs = [(p, _cases(p))]
    if ternary:  # ternary weights run on the W2 datapath (identical Verilog, same build)
        pt = LutCoreParams(**{**p.__dict__, "ternary": True})
        assert lut_core_verilog(pt, TOP) == lut_core_verilog(p, TOP)
        runs.append((pt, _cases(pt, seed=1)))
    model = _model(p)
    for q, cases in runs:
        programs = [lut_gemm_program(q, a, w) for a, w in cases]
        results = model.run(programs, stall_prob=0.0)
        for (a, w), prog, res in zip(cases, programs, results, strict=True):
            M, K = a.shape
            N = w.shape[1]
            expected = reference_gemm(a, w, q.acc_bits)
            assert np.array_equal(lut_gemm(a, w, q), expected)
            got = lut_decode_results(q, res.outputs["results"], M, N)
            assert np.array_equal(got, expected), f"{q} case {M}x{N}x{K}"
            J = lut_act_beats(q, M, K, N)
            assert len(prog.inputs["acts"]) == J
            assert len(prog.inputs["weights"]) == lut_weight_beats(q, M, K, N)
            assert res.cycles == lut_gemm_cycles(q, M, K, N), f"cycles {M}x{K}x{N}"
            assert np.array_equal(res.in_cycles["acts"], q.planes * (np.arange(J) + 1))
        if stall:
            stalled = model.run(programs, stall_prob=0.3, seed=7)
            for (a, w), res in zip(cases, stalled, strict=True):
                got = lut_decode_results(q, res.outputs["results"], a.shape[0], w.shape[1])
                assert np.array_equal(got, reference_gemm(a, w, q.acc_bits))


@pytest.mark.rtl
@pytest.mark.parametrize("name", list(DEFAULT_DESIGNS))
def test_lut_core_rtl(name: str) -> None:
    p = DEFAULT_DESIGNS[name]
    _check_design(p, ternary=p.weight_bits == 2)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_DESIGNS))
def test_lut_core_rtl_slow(name: str) -> None:
    p = SLOW_DESIGNS[name]
    if p.acc_bits < 32:  # the extreme long-K case really wraps
        a, w = _cases(p)[-1]
        assert not np.array_equal(reference_gemm(a, w, p.acc_bits), a @ w)
    _check_design(p, ternary=p.weight_bits == 2)


@pytest.mark.rtl
def test_lut_core_single_tile_latency() -> None:
    """One tile: weight beats at cycles 0..b-1, acts at b, result at 2b+1 (2b+2 cycles)."""
    p = DEFAULT_DESIGNS["w4a16_g4"]
    rng = np.random.default_rng(3)
    a = rng.integers(-30000, 30000, (p.tile_m, p.k_tile))
    w = _weights(p, rng, (p.k_tile, p.tile_n))
    (res,) = _model(p).run([lut_gemm_program(p, a, w)])
    b = p.planes
    assert res.cycles == lut_tile_cycles(p) == 2 * b + 2
    assert list(res.in_cycles["weights"]) == list(range(b))
    assert list(res.in_cycles["acts"]) == [b]
    assert list(res.out_cycles["results"]) == [2 * b + 1]


@pytest.mark.rtl
def test_lut_core_heavy_backpressure() -> None:
    """Many result beats with frequent stalls on every port keep order and values."""
    p = DEFAULT_DESIGNS["w1a8_g4"]
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (9, 3 * p.k_tile))
    w = _weights(p, rng, (3 * p.k_tile, 3 * p.tile_n - 1))
    a2 = rng.integers(-128, 128, (8, p.k_tile))
    w2 = _weights(p, rng, (p.k_tile, 2 * p.tile_n))
    progs = [lut_gemm_program(p, a, w), lut_gemm_program(p, a2, w2)]
    for res, (x, y) in zip(_model(p).run(progs, stall_prob=0.6, seed=11), [(a, w), (a2, w2)], strict=True):
        assert np.array_equal(lut_decode_results(p, res.outputs["results"], x.shape[0], y.shape[1]), x @ y)


def test_lut_core_ports() -> None:
    """Port widths follow the params (the driver packs to exactly these widths)."""
    p = DEFAULT_DESIGNS["w3a8_g3"]
    core = LutCore(p)
    assert len(core.weights.payload.as_value()) == p.weight_payload_bits
    assert len(core.acts.payload.as_value()) == p.act_payload_bits
    assert len(core.results.payload.as_value()) == p.result_payload_bits
    text = verilog.convert(core, name=TOP)
    for port in ("weights", "acts", "results"):
        for member in ("payload", "valid", "ready"):
            assert f"{port}__{member}" in text
    plan = lut_gemm_plan(p, np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64))
    assert plan.weights.shape == (p.planes, -(-p.weight_payload_bits // 8))
    assert plan.acts.shape == (1, -(-p.act_payload_bits // 8))


# ---- unit tests of the PEs in Amaranth's Python simulator (no Verilator) ------------------------


@pytest.mark.parametrize(("g", "act_bits"), [(1, 8), (2, 16), (3, 8), (4, 8), (4, 16), (6, 8)])
def test_table_precompute_unit(g: int, act_bits: int) -> None:
    from amaranth.sim import Simulator

    from tpegen.hw.pe.lut import LutTablePrecompute

    p = LutCoreParams(group_size=g, act_bits=act_bits)
    dut = LutTablePrecompute(g, act_bits, p.table_bits)
    rng = np.random.default_rng(g)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    vectors = np.concatenate([np.full((1, g), lo), np.full((1, g), hi), rng.integers(lo, hi + 1, (20, g))])
    expected = precompute_tables(vectors)
    seen = []

    async def bench(ctx):
        for vec in vectors:
            for j, v in enumerate(vec):
                ctx.set(dut.a[j], int(v))
            seen.append([ctx.get(dut.table[e]) for e in range(p.entries)])

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(seen), expected)


@pytest.mark.parametrize(("b", "g", "tk"), [(1, 4, 2), (2, 2, 3), (3, 3, 1), (4, 4, 2)])
def test_dot_product_unit(b: int, g: int, tk: int) -> None:
    """Bit-serial shift-accumulate over several K-tiles equals the numeric model (one output)."""
    from amaranth.sim import Simulator

    from tpegen.hw.pe.lut import LutDotProduct, rowsum_bits

    p = LutCoreParams(group_size=g, weight_bits=b, tile_m=1, tile_n=1, tile_k=tk)
    dut = LutDotProduct(
        group_size=g,
        tile_k=tk,
        planes=b,
        table_bits=p.table_bits,
        rowsum_bits=rowsum_bits(g, p.act_bits, tk),
        acc_width=p.acc_width,
    )
    rng = np.random.default_rng(b * 7 + g)
    K = 3 * p.k_tile
    a = rng.integers(-128, 128, (1, K))
    a[0, :4] = -128
    w = _weights(p, rng, (K, 1))
    tables = precompute_tables(a.reshape(1, -1, g))  # (1, G, E)
    index = encode_weights(w, b, g)  # (b, G, 1)
    results = []

    async def bench(ctx):
        for kt in range(3):
            grp = range(kt * tk, (kt + 1) * tk)
            for k, gi in enumerate(grp):
                for e in range(p.entries):
                    ctx.set(dut.tables[k][e], int(tables[0, gi, e]))
            ctx.set(dut.rowsum, int(tables[0, list(grp), -1].sum()))
            for plane in range(b):
                for k, gi in enumerate(grp):
                    ctx.set(dut.index[k], int(index[plane, gi, 0]))
                ctx.set(dut.shift, plane)
                ctx.set(dut.subtract, int(plane == 0 and p.corrected))
                ctx.set(dut.en, 1)
                ctx.set(dut.clear, int(kt == 2 and plane == b - 1))
                if kt == 2 and plane == b - 1:
                    results.append(ctx.get(dut.next))
                await ctx.tick()
        ctx.set(dut.en, 0)
        results.append(ctx.get(dut.acc))  # cleared after the final plane

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    final = results[0] >> 1 if p.corrected else results[0]
    assert final == int((a @ w)[0, 0])
    assert results[1] == 0
