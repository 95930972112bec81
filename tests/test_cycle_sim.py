"""The cycle-level simulator (:mod:`tpegen.sim.cycle`): cycle-exact and bit-exact with the RTL,
per-tile timelines equal to the RTL's handshake cycles, the bandwidth-stall model, and
hand-computed traffic/utilization."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.sim.cycle import simulate, simulate_shape
from tpegen.sim.intgemm import operand_range


def design(dataflow, rows, cols, **pe):
    pe = {"type": "mac", "dataflow": dataflow, **pe}
    name = f"cyc_{dataflow}_{rows}x{cols}"
    return config_from_dict({"name": name, "pe": pe, "array": {"rows": rows, "cols": cols}}).accelerator()


def shapes_for(rows, cols):
    """GEMM shapes around the array size: single beats, partial tiles, K/M below and above the
    tile interval thresholds (OS max(K, R); WS max(M, 2R + C - 1))."""
    R, C = rows, cols
    return [
        (1, 1, 1),
        (R, 1, C),
        (2 * R + 1, 3, C + 2),
        (1, 2 * R + 3, 2 * C + 1),
        (3, 5 * R, 1),
        (R + 2, R + 1, C),
        (2 * R + C + 3, R - 1 if R > 1 else 1, 2 * C - 1),
        (4 * R + 1, 2 * R + 1, C + 1),
    ]


def rand_gemm(acc, rng, m, k, n):
    pe = acc.params.pe
    a_lo, a_hi = operand_range(pe.act_bits, pe.act_signed)
    w_lo, w_hi = operand_range(pe.weight_bits, pe.weight_signed)
    return rng.integers(a_lo, a_hi + 1, (m, k)), rng.integers(w_lo, w_hi + 1, (k, n))


def rtl_tile_timeline(acc, res, m, k):
    """Per-tile (start, end) from the RTL's handshake cycles, relative to the first input beat."""
    R = acc.params.rows
    first = min(int(c[0]) for c in res.in_cycles.values() if len(c))
    out = res.out_cycles["results"] - first
    if acc.params.dataflow == "os":
        start = res.in_cycles["operands"][::k] - first
        end = out[R - 1 :: R]
    else:
        start = res.in_cycles["weights"][::R] - first
        end = out[m - 1 :: m]
    return start, end


ARRAYS = [(df, r, c) for df in ("os", "ws") for r, c in ((2, 3), (4, 4), (5, 3))]


@pytest.mark.rtl
@pytest.mark.parametrize("dataflow,rows,cols", ARRAYS, ids=[f"{d}_{r}x{c}" for d, r, c in ARRAYS])
def test_cycles_outputs_and_tile_timeline_equal_rtl(dataflow, rows, cols):
    acc = design(dataflow, rows, cols, acc_bits=24)
    rng = np.random.default_rng(rows * 10 + cols)
    gemms = [rand_gemm(acc, rng, *s) for s in shapes_for(rows, cols)]
    programs = [acc.program(*acc.check_operands(a, w)) for a, w in gemms]
    raw = acc.rtl_model().run([p.stream for p in programs])  # all GEMMs in one simulation
    assert len(raw) == len(gemms)
    for (a, w), prog, res in zip(gemms, programs, raw, strict=True):
        (m, k), n = a.shape, w.shape[1]
        sim = simulate(acc, a, w)
        rtl_out = prog.decode(res.outputs)
        assert sim.cycles == res.cycles, (m, k, n)
        assert sim.output.dtype == rtl_out.dtype and np.array_equal(sim.output, rtl_out), (m, k, n)
        assert np.array_equal(sim.output, acc.golden(a, w))
        start, end = rtl_tile_timeline(acc, res, m, k)
        assert sim.tiles == prog.tiles == len(start) == len(end)
        assert np.array_equal(sim.timeline.start, start), (m, k, n)
        assert np.array_equal(sim.timeline.end, end), (m, k, n)
        assert acc.run_gemm(a, w, "cycle").cycles == res.cycles


@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8", "int8_os_32x32", "int8_ws_32x32"])
def test_unlimited_and_huge_bandwidth_equal_timing_model(config):
    acc = load_config(CONFIGS / f"{config}.yaml").accelerator()
    for shape in ((33, 70, 21), (1, 1, 1), (128, 384, 100), (9, 8, 8)):
        ref = acc.timeline(*shape)
        for bw in (None, 1e12, {"A": 1e9, "W": 1e9, "C": 1e9}):
            r = simulate_shape(acc, *shape, bandwidth=bw)
            assert r.cycles == acc.cycles(*shape) and r.stall_cycles == 0
            assert np.array_equal(r.timeline.start, ref.start) and np.array_equal(r.timeline.end, ref.end)


@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8"])
def test_bandwidth_stalls_are_monotone(config):
    acc = load_config(CONFIGS / f"{config}.yaml").accelerator()
    for shape in ((33, 70, 21), (64, 64, 64), (5, 200, 3)):
        cycles = [simulate_shape(acc, *shape, bandwidth=bw).cycles for bw in (0.5, 1, 2, 4, 8, 16, 64, 1e6)]
        assert all(x >= y for x, y in zip(cycles, cycles[1:], strict=False)), cycles
        assert cycles[0] > cycles[-1] == acc.cycles(*shape)
        # One starved operand port alone also stalls, and never speeds anything up.
        for op in ("A", "W", "C"):
            assert simulate_shape(acc, *shape, bandwidth={op: 1}).cycles > cycles[-1]


def test_bandwidth_stall_hand_computed():
    acc = design("os", 2, 2)
    # M=2, K=4, N=4 on 2x2: two tiles; each fetches 8 bytes of A and 8 of W, writes 4 int32 (16 B).
    ideal = simulate_shape(acc, 2, 4, 4)
    assert ideal.cycles == 13  # last beats at 3 and 7; end 7 + 2*2 + 2 - 1 = 12
    r = simulate_shape(acc, 2, 4, 4, bandwidth={"A": 1, "W": 1})
    # Tile 0 fetch occupies cycles 0..7 (usable in 7): start 7, last beat 10. Tile 1 fetch 8..15:
    # start 15, last beat 18, end 18 + 5 = 23.
    assert list(r.timeline.start) == [7, 15] and list(r.timeline.end) == [15, 23]
    assert list(r.ready) == [7, 15]
    assert r.cycles == 24 and r.stall_cycles == 11
    r = simulate_shape(acc, 2, 4, 4, bandwidth=1)
    # Plus write-back of 16 B per tile from the cycle each tile ends: 15..30, then 31..46.
    assert r.cycles == 47
    # Double buffering: with 3 tiles and fast fetch, tile 2's fetch waits for tile 0's inputs.
    r = simulate_shape(acc, 2, 8, 6, bandwidth={"A": 16, "W": 16})
    assert r.cycles == simulate_shape(acc, 2, 8, 6).cycles
    with pytest.raises(ConfigError, match="bandwidth.A"):
        simulate_shape(acc, 2, 4, 4, bandwidth={"A": 0})
    with pytest.raises(ConfigError, match="bandwidth"):
        simulate_shape(acc, 2, 4, 4, bandwidth={"X": 1})


def test_traffic_and_utilization_hand_computed():
    os_acc, ws_acc = design("os", 4, 4), design("ws", 4, 4)
    r = simulate_shape(os_acc, 5, 6, 7)  # tiles: M blocks [4, 1] x N blocks [4, 3]
    assert r.tiles == 4 and r.macs == 5 * 6 * 7
    assert r.cycles == 35  # last beats at 5, 11, 17, 23; end 23 + 8 + 4 - 1 = 34
    assert r.utilization == pytest.approx(210 / (35 * 16))
    t = r.traffic
    assert (t["A"].reads, t["W"].reads, t["C"].reads, t["C"].writes) == (60, 84, 0, 35)
    assert (t["A"].read_bytes, t["W"].read_bytes, t["C"].write_bytes) == (60, 84, 140)
    assert t["A"].writes == t["W"].writes == 0
    r = simulate_shape(ws_acc, 5, 6, 7)  # tiles: N blocks [4, 3] x K blocks [4, 2]
    assert r.tiles == 4 and r.cycles == 49  # first rows at 4, 15, 26, 37; end 37 + 5 + 4 + 4 - 2
    t = r.traffic
    # W once, A once per N block, partial sums written per K block and read back for all but the first.
    assert (t["W"].reads, t["A"].reads, t["C"].writes, t["C"].reads) == (42, 60, 70, 35)
    assert t["C"].bits == 32 and t["C"].write_bytes == 280
    w4 = load_config(CONFIGS / "w4a8_os_16x16.yaml").accelerator()
    t = simulate_shape(w4, 16, 10, 16).traffic
    assert t["W"].bits == 4 and t["W"].read_bytes == 80


def test_bad_shapes_and_operands_are_config_errors():
    acc = design("os", 2, 2)
    with pytest.raises(ConfigError, match="M"):
        simulate_shape(acc, 0, 1, 1)
    with pytest.raises(ConfigError, match="A"):
        simulate(acc, np.full((2, 2), 300), np.ones((2, 2), dtype=int))


def test_cli_gemm_cycle_backend_json_contract(gemm_cli):
    rng = np.random.default_rng(5)
    a, w = rng.integers(-128, 128, (33, 70)), rng.integers(-128, 128, (70, 21))
    for config in ("int8_os_8x8", "int8_ws_8x8"):
        report, c = gemm_cli(CONFIGS / f"{config}.yaml", a, w, "cycle")
        assert set(report) == {"backend", "M", "K", "N", "cycles", "output"}
        assert (report["backend"], report["M"], report["K"], report["N"]) == ("cycle", 33, 70, 21)
        acc = load_config(CONFIGS / f"{config}.yaml").accelerator()
        assert report["cycles"] == acc.cycles(33, 70, 21)  # the RTL-verified timing model
        assert np.array_equal(c, a @ w)
