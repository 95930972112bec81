"""The cycle-level simulator (:mod:`tpegen.sim.cycle`): cycle-exact and bit-exact with the RTL,
per-tile timelines equal to the RTL's handshake cycles, the bandwidth-stall model, and
hand-computed traffic/utilization.

The simulator's outputs are the golden model by construction (it calls the accelerator's
``golden``), so comparing them with ``golden`` proves nothing: outputs are checked against the RTL
and against ``wrap(A @ W)`` computed here. Its cycles and timeline come from the timing model,
which is checked against the RTL's handshake cycles (every MAC-array size the README names) and
against closed forms written in this file.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.sim.cycle import simulate, simulate_shape
from tpegen.sim.intgemm import operand_range
from tpegen.sim.packing import wrap


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
ACC_BITS = 17  # INT8 x INT8 products need 16 bits: sums of a few products already wrap


@pytest.mark.rtl
@pytest.mark.parametrize("dataflow,rows,cols", ARRAYS, ids=[f"{d}_{r}x{c}" for d, r, c in ARRAYS])
def test_cycles_outputs_and_tile_timeline_equal_rtl(dataflow, rows, cols):
    acc = design(dataflow, rows, cols, acc_bits=ACC_BITS)
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
        assert np.array_equal(sim.output, wrap(a.astype(np.int64) @ w, ACC_BITS))
        start, end = rtl_tile_timeline(acc, res, m, k)
        assert sim.tiles == prog.tiles == len(start) == len(end)
        assert np.array_equal(sim.timeline.start, start), (m, k, n)
        assert np.array_equal(sim.timeline.end, end), (m, k, n)
        assert acc.run_gemm(a, w, "cycle").cycles == res.cycles


# Every integer-array configuration whose cycles the README quotes or ships: 8x8 OS/WS (examples,
# bench/sim_speed.py), 16x16 OS (tpegen demo, PPA), 16x16 W4A8, 8x16 W2A8 (LUT vs MAC) and 32x32
# OS/WS (tpegen sim, the BERT-style encoder). The 8x8 and 16x16 INT8 builds are shared with the CLI
# and demo tests; the others are new Verilator builds of minutes each, so they run with -m slow.
README_ARRAYS = [
    pytest.param("int8_os_8x8"),
    pytest.param("int8_ws_8x8"),
    pytest.param("int8_os_16x16"),
    pytest.param("w4a8_os_16x16", marks=pytest.mark.slow),
    pytest.param("compare/mac_w2a8_8x16", marks=pytest.mark.slow),
    pytest.param("int8_os_32x32", marks=pytest.mark.slow),
    pytest.param("int8_ws_32x32", marks=pytest.mark.slow),
]


@pytest.mark.rtl
@pytest.mark.parametrize("config", README_ARRAYS)
def test_timing_model_equals_rtl_at_readme_sizes(config):
    """The timing model itself (``acc.cycles``, ``acc.timeline``), not the simulator, against the
    RTL's handshakes: total cycles and every tile's first input and last result beat."""
    acc = load_config(CONFIGS / f"{config}.yaml").accelerator()
    R, C = acc.params.rows, acc.params.cols
    rng = np.random.default_rng(R * 100 + C)
    # one beat; partial tiles with K < R; K > R; M above WS's 2R + C - 1 interval
    shapes = [(1, 1, 1), (R + 1, 3, C + 1), (2, 2 * R + 3, C + 2), (2 * R + C + 2, R + 1, 1)]
    gemms = [rand_gemm(acc, rng, *s) for s in shapes]
    programs = [acc.program(*acc.check_operands(a, w)) for a, w in gemms]
    raw = acc.rtl_model().run([p.stream for p in programs])
    for (a, w), prog, res in zip(gemms, programs, raw, strict=True):
        (m, k), n = a.shape, w.shape[1]
        model = acc.timeline(m, k, n)
        start, end = rtl_tile_timeline(acc, res, m, k)
        assert res.cycles == acc.cycles(m, k, n) == model.total, (config, m, k, n)
        assert np.array_equal(model.start, start) and np.array_equal(model.end, end), (config, m, k, n)
        want = wrap(a.astype(np.int64) @ w, acc.params.pe.acc_bits)
        assert np.array_equal(prog.decode(res.outputs), want), (config, m, k, n)


@pytest.mark.rtl
def test_ws_partial_sums_wrap_inside_the_array():
    """A weight-stationary tile's in-array partial sum (R products) overflows the accumulator:
    INT8 x INT8 with acc_bits 17 holds -65536..65535, and the 5 products of a 5-row tile reach
    5 * 16384 = 81920. The RTL must return wrap(A @ W) (computed here), with the timing model's
    cycles. (The same 5x3 design as test_cycles_outputs_and_tile_timeline_equal_rtl: one build.)"""
    acc = design("ws", 5, 3, acc_bits=ACC_BITS)
    lim = 1 << (ACC_BITS - 1)
    rng = np.random.default_rng(4)
    m, k, n = 7, 13, 4  # three K tiles (5 + 5 + 3 rows), two N tiles
    a = np.where(rng.random((m, k)) < 0.7, -128, rng.integers(-128, 128, (m, k)))
    w = np.where(rng.random((k, n)) < 0.7, -128, rng.integers(-128, 128, (k, n)))
    a[0], w[:, 0] = -128, -128  # C[0, 0]: each full tile's partial sum is 5 * 16384 = 81920
    tile0 = a[:, :5].astype(np.int64) @ w[:5]
    assert tile0[0, 0] == 81920 and (tile0 >= lim).sum() >= 4, "partial sums must overflow in the array"
    res = acc.run_rtl([(a, w)])[0]
    want = wrap(a.astype(np.int64) @ w, ACC_BITS)
    assert np.array_equal(res.output, want)
    assert not np.array_equal(want, a.astype(np.int64) @ w)
    assert res.cycles == acc.cycles(m, k, n)


def closed_form_timeline(dataflow, R, C, m, k, n):
    """Per-tile (start, end) and total cycles of equal tiles, from the README's description.

    OS: ceil(M/R) ceil(N/C) tiles of K beats; the last beat of tile t is accepted at
    ``K - 1 + t max(K, R)``, the next tile's first beat right after it (with K = 1 the first beat
    is the last), and the tile's last result row ``2R + C - 1`` cycles later.
    WS: ceil(K/R) ceil(N/C) tiles of M rows; tile t's first row enters at ``R + t max(M, 2R + C - 1)``
    after its R weight beats, which start ``R + C - 1`` cycles after the previous tile's first row;
    its last row leaves ``M + R + C - 2`` cycles after its first row entered.
    """
    ceil = lambda x, y: -(-x // y)  # noqa: E731
    t = np.arange(ceil(m, R) * ceil(n, C) if dataflow == "os" else ceil(k, R) * ceil(n, C))
    if dataflow == "os":
        last = k - 1 + t * max(k, R)
        start = last if k == 1 else np.where(t == 0, 0, last - max(k, R) + 1)
        end = last + 2 * R + C - 1
    else:
        first = R + t * max(m, 2 * R + C - 1)
        start = np.where(t == 0, 0, first - max(m, 2 * R + C - 1) + R + C - 1)
        end = first + m + R + C - 2
    return start, end, int(end[-1]) + 1


@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8", "int8_os_32x32", "int8_ws_32x32"])
def test_unlimited_and_huge_bandwidth_equal_closed_form_timing(config):
    acc = load_config(CONFIGS / f"{config}.yaml").accelerator()
    R, C, df = acc.params.rows, acc.params.cols, acc.params.dataflow
    for shape in ((33, 70, 21), (1, 1, 1), (128, 384, 100), (9, 8, 8), (64, 1, 64), (5, 300, 7)):
        start, end, total = closed_form_timeline(df, R, C, *shape)
        assert acc.cycles(*shape) == total, shape
        for bw in (None, 1e12, {"A": 1e9, "W": 1e9, "C": 1e9}):
            r = simulate_shape(acc, *shape, bandwidth=bw)
            assert r.cycles == total and r.stall_cycles == 0, (shape, bw)
            assert np.array_equal(r.timeline.start, start) and np.array_equal(r.timeline.end, end), (
                shape,
                bw,
            )


def test_closed_form_matches_the_readme_figures():
    # README: the default job, 64x64x64 on the 16x16 OS array, takes 1071 cycles; a single OS tile
    # takes K + 2R + C - 1 cycles.
    assert closed_form_timeline("os", 16, 16, 64, 64, 64)[2] == 1071
    assert closed_form_timeline("os", 4, 3, 4, 10, 3)[2] == 10 + 2 * 4 + 3 - 1


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
