"""The dot-product tile family on the accelerator top (the "lut" EXEC sequencer, planes = 1).

* W rows of a dot design are plain weight lanes, exactly the tile's ``weights`` stream beats
  (:func:`tpegen.sim.dot_tile.dot_gemm_plan`); the LUT core's stay encoded bit planes.
* The EXEC duration is the tile's own ``J + 3 + stages`` (checked against that closed form).
* Compiler + golden ISA model == wrapped ``A @ W`` (numpy) for the three shipped dot configs at
  several shapes, K split across EXECs with small scratchpads, partial tiles, an int8 output.
* The execute unit around a real :class:`~tpegen.hw.arrays.dot_tile.DotTile` in Amaranth's
  simulator: accumulator == a numpy model of the LUT EXEC semantics on plain weights, and
  ``done`` exactly ``2 + J + 3 + stages`` cycles after ``start``.
* On Verilator, one compiled GEMM through the whole top: host image == golden byte for byte,
  cycles == the system timing model; and ``tpegen gemm --system --backend cycle`` from the CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CONFIGS
from test_system_execute import SMALL, fields, random_rows, run_unit, to_lanes

from tpegen.config import config_from_dict, load_config
from tpegen.hw.system.execute import ExecuteUnit
from tpegen.hw.system.isa import Opcode
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.sim import dot_tile, lut
from tpegen.sim.packing import wrap
from tpegen.sim.requant import quantize_multiplier, requantize
from tpegen.sim.system_exec_timing import array_cycles, exec_cycles
from tpegen.sim.system_rows import (
    group_size_of,
    lane_signed,
    lanes_to_rows,
    row_format,
    rows_to_lanes,
    weight_code,
)
from tpegen.sw.compiler import Requant, compile_gemm
from tpegen.sw.runtime import run_program

DOT_CONFIGS = ("matrix2d_int8_4x4x8", "addertree_int8_16x8", "cube3d_int8_4x4x4")
W2 = CONFIGS / "compare" / "dot_w2a8_m2n64k4.yaml"  # 2-bit weight lanes


def dot_config(**array) -> object:
    """A small dot tile with odd widths (7-bit activations, 5-bit weights, 20-bit accumulators)."""
    org = "addertree" if array.get("tile_m") == 1 else "matrix2d"
    return config_from_dict(
        {
            "pe": {"type": "dot", "organization": org, "act_bits": 7, "weight_bits": 5, "acc_bits": 20},
            "array": {"tile_m": 2, "tile_n": 3, "tile_k": 3, "stages": 0} | array,
        }
    )


def _load(name: str):
    return load_config(W2 if name == "dot_w2a8" else name)


# -- geometry, row formats, EXEC timing ---------------------------------------------------------


@pytest.mark.parametrize("name", [*DOT_CONFIGS, "dot_w2a8"])
def test_geometry_and_w_rows_are_the_tiles_weight_beats(name):
    """LUT kind with planes 1; a W row is one whole weight tile of plain weights, lane n*tile_k + k,
    byte for byte the tile's ``weights`` beat; A rows are its ``acts`` beats minus last/wlast."""
    config = _load(name)
    p = config.pe
    g = SystemGeometry.of(config)
    assert (g.kind, g.fp, g.rows, g.cols, g.planes, g.k_tile) == (
        "lut",
        False,
        p.tile_m,
        p.tile_n,
        1,
        p.tile_k,
    )
    assert g.a_row_bits == p.tile_m * p.tile_k * p.act_bits
    assert g.w_row_bits == p.tile_n * p.tile_k * p.weight_bits
    assert (g.acc_lanes, g.acc_lane_bits) == (p.tile_m * p.tile_n, p.acc_bits)
    assert group_size_of(config) == 1 and lane_signed(config, "W") == p.weight_signed
    fmt = row_format(g, "W", group_size=1)
    assert (fmt.lanes, fmt.lane_bits) == (p.tile_n * p.tile_k, p.weight_bits)

    rng = np.random.default_rng(3)
    a, w = config.accelerator().random_operands(rng, p.tile_m, 3 * p.tile_k, p.tile_n)  # 3 K tiles
    plan = dot_tile.dot_gemm_plan(p, a, w)  # kt > 1: one weight tile per activation beat (k order)
    code = weight_code(config)
    lanes = code.weights_to_lanes(g, w)
    np.testing.assert_array_equal(lanes_to_rows(g, "W", lanes, group_size=1), plan.weights)
    back = rows_to_lanes(g, "W", plan.weights, signed=p.weight_signed, group_size=1)
    np.testing.assert_array_equal(code.lanes_to_weights(g, back, 1, 3), w)
    a_rows = rows_to_lanes(g, "A", plan.acts, signed=True)  # payload low bits are the A row
    np.testing.assert_array_equal(
        a_rows.reshape(3, p.tile_m, p.tile_k), a.reshape(p.tile_m, 3, -1).swapaxes(0, 1)
    )


def test_lut_w_rows_stay_bit_planes():
    """The LUT core's W rows keep their encoding (group_size-bit indices, b planes per tile)."""
    config = load_config("lut_w2a8")
    p, g = config.pe, SystemGeometry.of(config)
    code = weight_code(config)
    assert code.group_size == group_size_of(config) == p.group_size
    w = np.random.default_rng(0).integers(-2, 2, (p.k_tile, p.tile_n))
    plan = lut.lut_gemm_plan(p, np.zeros((p.tile_m, p.k_tile), dtype=np.int64), w)
    rows = lanes_to_rows(g, "W", code.weights_to_lanes(g, w), group_size=p.group_size)
    np.testing.assert_array_equal(rows, plan.weights)
    assert (
        weight_code(load_config("int8_os_8x8")) is None and group_size_of(load_config("int8_ws_8x8")) is None
    )


@pytest.mark.parametrize("stages", [0, 1, 3])
def test_exec_cycles_are_the_tiles_own(stages):
    """T = J + 3 + stages (the tile's closed form), not the LUT core's b (J + 1) + 2."""
    config = dot_config(stages=stages)
    g = SystemGeometry.of(config, SMALL)
    p = config.pe
    for mt, nt, kt in [(1, 1, 1), (3, 2, 1), (2, 3, 4), (5, 1, 7)]:
        f = fields(mt=mt, nt=nt, kt=kt)
        J = mt * nt * kt
        assert array_cycles(g, f) == J + 3 + stages
        assert array_cycles(g, f) == dot_tile.dot_gemm_cycles(p, mt * p.tile_m, kt * p.tile_k, nt * p.tile_n)
        assert exec_cycles(g, config, f) == ExecuteUnit.FEED_LATENCY + J + 3 + stages + 1


# -- compiler + golden ISA model ------------------------------------------------------------------


@pytest.mark.parametrize("name", DOT_CONFIGS)
@pytest.mark.parametrize("shape", [(13, 29, 11), (1, 1, 1), (9, 17, 65), (33, 300, 70)])
def test_compiled_gemm_matches_numpy(name, shape):
    config = load_config(name)
    a, w = config.accelerator().random_operands(np.random.default_rng(sum(shape)), *shape)
    run = run_program(config, compile_gemm(config, a, w), "golden")
    np.testing.assert_array_equal(run.outputs["C"], wrap(a @ w, 32))


@pytest.mark.parametrize("name", [*DOT_CONFIGS, "dot_w2a8"])
def test_small_scratchpads_split_k_and_stay_exact(name):
    config = _load(name)
    small = SystemParams(scratchpad_a_kib=1, scratchpad_w_kib=1, accumulator_kib=1, qparam_rows=1)
    a, w = config.accelerator().random_operands(np.random.default_rng(7), 37, 300, 70)
    compiled = compile_gemm(config, a, w, system=small)
    execs = [i for i in compiled.instructions if i.opcode == Opcode.EXEC]
    assert any(i["acc"] for i in execs), "K was not split across EXECs"
    np.testing.assert_array_equal(run_program(config, compiled, "golden").outputs["C"], wrap(a @ w, 32))


def test_kt_one_and_many_both_exact():
    """K within one tile (one weight tile per N tile, reused by every M tile) and beyond it."""
    config = load_config("matrix2d_int8_4x4x8")
    rng = np.random.default_rng(5)
    for k in (5, 8, 9):
        a, w = config.accelerator().random_operands(rng, 11, k, 10)
        compiled = compile_gemm(config, a, w)
        kts = {i["kt"] for i in compiled.instructions if i.opcode == Opcode.EXEC}
        assert (kts == {1}) == (k <= 8)
        np.testing.assert_array_equal(run_program(config, compiled, "golden").outputs["C"], a @ w)


def test_accumulator_wraps_like_the_tile():
    config = dot_config()  # acc_bits 20
    a = np.full((3, 200), -64)
    w = np.full((200, 4), -16)
    run = run_program(config, compile_gemm(config, a, w), "golden")
    np.testing.assert_array_equal(run.outputs["C"], wrap(a @ w, 20))
    np.testing.assert_array_equal(run.outputs["C"], config.accelerator().golden(a, w))


def test_int8_output_requantizes_per_channel():
    config = load_config("cube3d_int8_4x4x4")
    rng = np.random.default_rng(11)
    a, w = config.accelerator().random_operands(rng, 10, 37, 9)
    pairs = [quantize_multiplier(s) for s in rng.uniform(2e-4, 2e-2, 9)]
    mult, shift = np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])
    rq = Requant(mult, shift, 3)
    run = run_program(config, compile_gemm(config, a, w, out_format="int8", requant=rq, relu=True), "cycle")
    ref = requantize(a @ w, mult[None, :], shift[None, :], 3, relu=True)
    np.testing.assert_array_equal(run.outputs["C"], ref)
    assert run.cycles > a.size * w.shape[1] / config.accelerator().macs_per_cycle


# -- the execute unit around a real DotTile (Amaranth simulator) -----------------------------------


def ref_dot(g, p, a_rows, w_rows, C, f):
    """Numpy model of the LUT EXEC semantics with plain weight rows (lane n * tile_k + k)."""
    kt = f["kt"]
    A = to_lanes(a_rows, p.act_bits, p.tile_m * p.tile_k, signed=p.act_signed)
    W = to_lanes(w_rows, p.weight_bits, p.tile_n * p.tile_k, signed=p.weight_signed)
    for j in range(f["nt"]):
        for i in range(f["mt"]):
            res = np.zeros((p.tile_m, p.tile_n), dtype=np.int64)
            for kk in range(kt):
                a = A[f["a_addr"] + i * kt + kk].reshape(p.tile_m, p.tile_k)
                w = W[f["w_addr"] + (j if kt == 1 else j * kt + kk)].reshape(p.tile_n, p.tile_k)
                res += a @ w.T
            row = f["c_addr"] + j * f["c_stride"] + i
            C[row] = wrap(C[row] * f["acc"] + res.ravel(), g.acc_lane_bits)


@pytest.mark.parametrize(
    "array", [dict(stages=0), dict(stages=2), dict(tile_m=1, tile_n=4, tile_k=2, stages=1)], ids=str
)
def test_execute_unit_cycle_exact(array):
    config = dot_config(**array)
    p = config.pe
    g = SystemGeometry.of(config, SMALL)
    rng = np.random.default_rng(p.stages + 10 * p.tile_m)
    a_rows = random_rows(rng, g.a_row_bits, g.a_depth)  # every row is a legal operand (plain lanes)
    w_rows = random_rows(rng, g.w_row_bits, g.w_depth)
    c_rows = random_rows(rng, g.acc_row_bits, g.acc_depth)
    commands = [
        fields(a_addr=3, w_addr=2, c_addr=1, c_stride=4, mt=3, nt=2, kt=1),  # weight tile reused 3 times
        fields(a_addr=20, w_addr=30, c_addr=1, c_stride=4, mt=2, nt=2, kt=3, acc=1),  # a tile per beat
        fields(a_addr=40, w_addr=50, c_addr=12, c_stride=0, mt=1, nt=3, kt=1, acc=1),  # same row thrice
        fields(a_addr=45, w_addr=60, c_addr=14, c_stride=1, mt=1, nt=1, kt=2),
        fields(a_addr=50, w_addr=5, c_addr=16, c_stride=3, mt=2, nt=3, kt=2, acc=1),
    ]
    final, log = run_unit(config, g, a_rows, w_rows, c_rows, commands, gaps=[0, 1, 0, 0, 2])
    for f, (t, e) in zip(commands, log, strict=True):  # the tile's closed form, independently
        assert e - t == ExecuteUnit.FEED_LATENCY + f["mt"] * f["nt"] * f["kt"] + 3 + p.stages, f
        assert e - t == ExecuteUnit.FEED_LATENCY + array_cycles(g, f)
    C = to_lanes(c_rows, g.acc_lane_bits, g.acc_lanes, signed=True)
    for f in commands:
        ref_dot(g, p, a_rows, w_rows, C, f)
    np.testing.assert_array_equal(to_lanes(final, g.acc_lane_bits, g.acc_lanes, signed=True), C)


# -- Verilator and the CLI ------------------------------------------------------------------------


@pytest.mark.rtl
@pytest.mark.parametrize(
    "name", ["matrix2d_int8_4x4x8", pytest.param("cube3d_int8_4x4x4", marks=pytest.mark.slow)]
)  # cube3d: one tree stage, so T = J + 4 differs from the LUT core's b (J + 1) + 2 at b = 1
def test_rtl_compiled_gemm_matches_golden_and_timing(name):
    from tpegen.sim.system_golden import run_golden
    from tpegen.sim.system_rtl import RtlJob, run_rtl_batch
    from tpegen.sim.system_timing import MIN_READ_LATENCY, MIN_WRITE_LATENCY, MemoryTiming, simulate_timing

    config = load_config(name)
    a, w = config.accelerator().random_operands(np.random.default_rng(1), 10, 43, 13)
    compiled = compile_gemm(config, a, w)
    g = compiled.geometry
    memories = (MemoryTiming(MIN_READ_LATENCY, MIN_WRITE_LATENCY), MemoryTiming(9, 5))
    runs = run_rtl_batch(config, g, [RtlJob(compiled.binary(), compiled.host, m) for m in memories])
    gold = run_golden(config, compiled.instructions, compiled.host, geometry=g)
    for memory, run in zip(memories, runs, strict=True):
        timing = simulate_timing(config, g, compiled.instructions, memory)
        assert not timing.error and run.status["error"] == 0
        bad = np.flatnonzero(run.host != gold.host)
        assert bad.size == 0, f"{memory}: host bytes differ at {bad[:16]}"
        assert list(run.command_cycles) == list(timing.dispatch), memory
        assert run.cycles == timing.cycles, f"{memory}: RTL {run.cycles} cycles, model {timing.cycles}"
        assert run.axi["r"] * g.axi_bytes == compiled.expected_traffic.read
        assert run.axi["w"] * g.axi_bytes == compiled.expected_traffic.written
    np.testing.assert_array_equal(compiled.read_outputs(runs[0].host)["C"], a @ w)


def test_cli_gemm_system_cycle(run_cli, tmp_path):
    config = load_config("matrix2d_int8_4x4x8")
    a, w = config.accelerator().random_operands(np.random.default_rng(2), 21, 50, 18)
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    out = tmp_path / "C.npy"
    code, stdout, err = run_cli(
        "gemm", "matrix2d_int8_4x4x8", "--a", tmp_path / "A.npy", "--w", tmp_path / "W.npy",
        "--system", "--backend", "cycle", "-o", out, "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    np.testing.assert_array_equal(np.load(out), a @ w)
    expected = run_program(config, compile_gemm(config, a, w), "cycle")
    assert report["cycles"] == expected.cycles > 0
    assert report["commands"] == expected.commands
