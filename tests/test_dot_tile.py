"""Dot-product tile family (``pe.type: dot``): 2D-Matrix, multiplier-adder tree and 3D-Cube.

References are independent of the models under test: numpy ``A @ W`` with a two's-complement wrap
written out here, a beat-level emulation of the stream protocol for the driver's packing, the
closed-form cycle count derived in :func:`tpegen.sim.dot_tile.dot_gemm_cycles`, and the Verilated RTL.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.sim import dot_tile as dot
from tpegen.sim.cycle import simulate_shape
from tpegen.sim.packing import pack_fields

SHIPPED = {
    "matrix2d_int8_4x4x8": ("matrix2d", 4, 4, 8),
    "addertree_int8_16x8": ("addertree", 1, 16, 8),
    "cube3d_int8_4x4x4": ("cube3d", 4, 4, 4),
    "compare/dot_w2a8_m2n64k4": ("matrix2d", 2, 64, 4),
}
DEFAULT_RUN = ["matrix2d_int8_4x4x8", "addertree_int8_16x8", "cube3d_int8_4x4x4"]

# A small tile with everything the shipped configs do not exercise: two tree registers, unsigned
# activations against signed weights, and a 16-bit accumulator that wraps within a few products.
SMALL_PIPELINED = {
    "name": "dot_small_s2_acc16",
    "pe": {"type": "dot", "organization": "matrix2d", "act_bits": 8, "act_signed": False, "acc_bits": 16},
    "array": {"tile_m": 2, "tile_n": 3, "tile_k": 4, "stages": 2},
}


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return (np.asarray(x, dtype=np.int64) + half) % (1 << bits) - half


def _raw(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


# -- parameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    p = cfg.pe
    org, tm, tn, tk = SHIPPED[name]
    assert cfg.family == "dot" and cfg.pe is cfg.array
    assert (p.organization, p.tile_m, p.tile_n, p.tile_k) == (org, tm, tn, tk)
    assert p.act_bits == 8 and p.acc_bits == 32 and p.weight_bits == (2 if "w2a8" in name else 8)
    acc = cfg.accelerator()
    assert acc.macs_per_cycle == tm * tn * tk
    assert config_from_dict(cfg.to_dict()) == cfg  # the YAML sections round-trip


@pytest.mark.parametrize(
    "section,key,value,field,allowed",
    [
        ("pe", "organization", "systolic", "pe.organization", "addertree"),
        ("array", "tile_m", 2, "array.tile_m", "1 for organization addertree"),
        ("array", "tile_k", 65, "array.tile_k", "1..64"),
        ("array", "stages", 5, "array.stages", "0..4"),  # tile_k 8: 3 adder levels, at most 4 registers
        ("array", "dataflow", "os", "array.dataflow", "unknown key"),
        ("pe", "acc_bits", 15, "pe.acc_bits", "16..64"),
        ("pe", "weight_bits", 1, "pe.weight_bits", "2..16"),
        ("pe", "dataflow", "os", "pe.dataflow", "unknown key"),
    ],
)
def test_invalid_configs_name_the_field(bad_config, section, key, value, field, allowed):
    raw = _raw("addertree_int8_16x8")
    raw[section][key] = value
    bad_config(raw, field, allowed)


@pytest.mark.parametrize(
    "org,shape,field",
    [
        ("matrix2d", (1, 4, 8), "array.tile_m"),
        ("matrix2d", (4, 1, 8), "array.tile_n"),
        ("cube3d", (4, 4, 1), "array.tile_k"),
        ("cube3d", (1, 4, 4), "array.tile_m"),
        ("matrix2d", (64, 64, 64), "array.tile_k"),  # 262,144 multipliers
    ],
)
def test_organization_shape_classes(org, shape, field):
    tm, tn, tk = shape
    with pytest.raises(ConfigError) as info:
        DotTileParams(organization=org, tile_m=tm, tile_n=tn, tile_k=tk)
    assert info.value.field == field
    DotTileParams(organization="matrix2d", tile_m=4, tile_n=4, tile_k=1)  # the outer-product array


@pytest.mark.parametrize(
    "tile_k,stages,levels",
    [
        (8, 0, ()),
        (8, 1, (1,)),  # blocks: mult | add1 || add2 | add3 | acc
        (8, 2, (0, 2)),
        (8, 4, (0, 1, 2, 3)),  # one register after every block but the accumulator adder
        (1, 1, (0,)),
        (4, 1, (1,)),
        (5, 4, (0, 1, 2, 3)),
    ],
)
def test_register_levels(tile_k, stages, levels):
    p = DotTileParams(organization="matrix2d", tile_m=2, tile_n=2, tile_k=tile_k, stages=stages)
    assert p.register_levels() == levels
    assert p.latency == 2 + stages


# -- numeric model and driver -------------------------------------------------------------------
@pytest.mark.parametrize("signed", [(True, True), (False, True), (True, False), (False, False)])
def test_golden_is_wrapped_matmul(signed):
    a_signed, w_signed = signed
    p = DotTileParams(
        act_bits=8, weight_bits=4, act_signed=a_signed, weight_signed=w_signed, acc_bits=12, tile_k=4
    )
    rng = np.random.default_rng(1)
    a_lo, a_hi = (-128, 127) if a_signed else (0, 255)
    w_lo, w_hi = (-8, 7) if w_signed else (0, 15)
    a, w = rng.integers(a_lo, a_hi + 1, (7, 300)), rng.integers(w_lo, w_hi + 1, (300, 5))
    c = dot.dot_gemm(p, a, w)
    assert np.array_equal(c, _wrap(a @ w, 12))
    assert not np.array_equal(c, a @ w)  # the accumulator did wrap


def _emulate(p: DotTileParams, plan: dot.DotGemmPlan) -> np.ndarray:
    """Beat-level emulation of the stream protocol (double-buffered tiles, last, wlast) on the
    driver's packed bytes; returns the result lanes, one row per result beat."""
    bits = lambda beats: np.unpackbits(beats, axis=1, bitorder="little").astype(np.int64)  # noqa: E731

    def lanes(b, width, count, signed, offset=0):
        v = (b[:, offset : offset + width * count].reshape(len(b), count, width) << np.arange(width)).sum(-1)
        return np.where(v >= 1 << (width - 1), v - (1 << width), v) if signed else v

    wts = lanes(bits(plan.weights), p.weight_bits, p.tile_n * p.tile_k, p.weight_signed)
    ab = bits(plan.acts)
    acts = lanes(ab, p.act_bits, p.tile_m * p.tile_k, p.act_signed)
    last = ab[:, p.tile_m * p.tile_k * p.act_bits]
    wlast = ab[:, p.tile_m * p.tile_k * p.act_bits + 1]
    acc = np.zeros((p.tile_m, p.tile_n), dtype=np.int64)
    out, tile = [], 0
    for j in range(len(acts)):
        a = acts[j].reshape(p.tile_m, p.tile_k)
        w = wts[tile].reshape(p.tile_n, p.tile_k).T
        acc = acc + a @ w
        if last[j]:
            out.append(_wrap(acc, p.acc_bits).ravel())
            acc = np.zeros_like(acc)
        tile += int(wlast[j])
    assert tile == len(wts)  # every weight tile used, none missing
    return np.array(out)


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 4, 7), (9, 37, 11), (2, 8, 3)])
def test_driver_tiling_round_trip(shape):
    p = DotTileParams(organization="matrix2d", tile_m=2, tile_n=3, tile_k=4, act_signed=False)
    m, k, n = shape
    rng = np.random.default_rng(sum(shape))
    a, w = rng.integers(0, 256, (m, k)), rng.integers(-128, 128, (k, n))
    plan = dot.dot_gemm_plan(p, a, w)
    mt, kt, nt = plan.tiles
    assert len(plan.acts) == dot.dot_act_beats(p, m, k, n) == mt * kt * nt
    assert len(plan.weights) == dot.dot_weight_beats(p, m, k, n)
    beats = pack_fields([(_emulate(p, plan), p.acc_bits)], p.result_payload_bits)
    assert np.array_equal(dot.dot_decode_results(p, beats, m, n), a @ w)


# -- timing model -------------------------------------------------------------------------------
@pytest.mark.parametrize("stages", [0, 2])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 8, 4), (9, 37, 11), (100, 300, 70)])
def test_cycles_equal_simulated_timeline(stages, shape):
    p = DotTileParams(organization="matrix2d", tile_m=4, tile_n=4, tile_k=8, stages=stages)
    m, k, n = shape
    beats = -(-m // 4) * -(-k // 8) * -(-n // 4)
    cfg = config_from_dict({"pe": {"type": "dot"}, "array": {"stages": stages}})
    acc = cfg.accelerator()
    assert acc.params == p
    assert acc.cycles(m, k, n) == beats + 3 + stages
    sim = simulate_shape(acc, m, k, n)
    assert sim.cycles == acc.cycles(m, k, n) and sim.macs == m * k * n and sim.pes == 128
    # the stalled recurrence equals the ideal timeline when memory never binds, and only adds cycles
    assert simulate_shape(acc, m, k, n, bandwidth=1e9).cycles == sim.cycles
    assert simulate_shape(acc, m, k, n, bandwidth=4).cycles >= sim.cycles


# -- RTL ----------------------------------------------------------------------------------------
@pytest.mark.rtl
@pytest.mark.parametrize("name", DEFAULT_RUN)
def test_verify_on_verilator(run_cli, name):
    """Edge cases plus two random GEMMs bit-exact and cycle-exact, then all of them again under
    random input bubbles and output backpressure."""
    code, stdout, err = run_cli("verify", CONFIGS / f"{name}.yaml", "--cases", "2", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["passed"], (err, report)
    assert all(c["stall_bit_exact"] for c in report["cases"])


def _gemm_rtl_vs_cycle(gemm_cli, hw, a, w, acc_bits, stages, beats):
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    cycle, c_cycle = gemm_cli(hw, a, w, "cycle")
    assert np.array_equal(c_rtl, _wrap(a @ w, acc_bits)) and np.array_equal(c_cycle, c_rtl)
    assert rtl["cycles"] == cycle["cycles"] == beats + 3 + stages
    return c_rtl


@pytest.mark.rtl
def test_gemm_rtl_stages_0(gemm_cli):
    rng = np.random.default_rng(5)
    a, w = rng.integers(-128, 128, (9, 37)), rng.integers(-128, 128, (37, 11))
    c = _gemm_rtl_vs_cycle(gemm_cli, CONFIGS / "matrix2d_int8_4x4x8.yaml", a, w, 32, 0, 3 * 5 * 3)
    assert np.array_equal(c, a @ w)


@pytest.mark.rtl
def test_stages_2_unsigned_and_narrow_accumulator(gemm_cli, run_cli, tmp_path):
    hw = tmp_path / "small.yaml"
    hw.write_text(yaml.safe_dump(SMALL_PIPELINED))
    rng = np.random.default_rng(6)
    # K = 4 tiles of max products: 255 * 127 * 16 overflows 16 bits many times over
    a, w = np.full((3, 16), 255), np.full((16, 4), 127)
    a[2] = rng.integers(0, 256, 16)
    c = _gemm_rtl_vs_cycle(gemm_cli, hw, a, w, 16, 2, 2 * 4 * 2)
    assert not np.array_equal(c, a @ w) and np.abs(c).max() < 1 << 15
    code, stdout, err = run_cli("verify", hw, "--cases", "2", "--seed", "4", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["passed"], (err, report)
    assert "accumulator wrap-around" in [c["label"] for c in report["cases"]]


@pytest.mark.rtl
@pytest.mark.slow
def test_verify_comparison_tile(run_cli):
    code, stdout, err = run_cli("verify", CONFIGS / "compare/dot_w2a8_m2n64k4.yaml", "--cases", "4", "--json")
    assert code == 0 and json.loads(stdout)["passed"], err


def test_matrix2d_and_cube3d_share_the_rtl():
    """The two names are shape classes of one generator: equal shapes give identical Verilog."""
    from tpegen.hw.arrays.dot_tile import dot_tile_verilog

    shape = {"tile_m": 2, "tile_n": 3, "tile_k": 2, "stages": 1}
    matrix = dot_tile_verilog(DotTileParams(organization="matrix2d", **shape))
    cube = dot_tile_verilog(DotTileParams(organization="cube3d", **shape))
    assert matrix == cube and "acc_m1_n2" in matrix
