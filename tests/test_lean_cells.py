"""Lean systolic cells (``array.os_cell``, ``array.reset_less_datapath``, ``array.operand_gating``).

* The two-register output-stationary cell on Verilator at 2x3, 4x4 and 3x5, K in {1, 2, R-1, R,
  3R}, several tiles per GEMM: outputs equal ``wrap(A @ W)`` computed here, and every tile's first
  input and last result handshake equals a closed form written in this file (``last`` beats every
  ``max(K, 2R - 1)`` cycles, the last result ``2R + C - 2`` cycles after the tile's ``last`` beat),
  which the timing model (``acc.timeline``), the cycle simulator and the system top's EXEC formula
  must also give. Random input/output stalls keep the outputs exact.
* Reset-less datapath registers and operand gating on every cell kind: outputs stay exact (also
  after a reset in the middle of a tile, with the datapath registers full of the interrupted
  tile's values), cycles unchanged, and the registers are really reset-less (the Verilog has no
  reset for them).
* The accelerator top's execute unit (Python simulator) with two-register MAC and FMA arrays:
  accumulator contents equal the numpy model of the EXEC semantics and ``done`` comes exactly
  ``FEED_LATENCY + T`` cycles after ``start`` with T from the closed form above.
* Config validation: one-line ConfigErrors naming the field.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import ClockDomain, Elaboratable, Module
from amaranth.sim import Simulator
from test_system_execute import (
    SMALL,
    check_timing,
    fields,
    random_command,
    random_rows,
    ref_os_int,
    run_unit,
    to_lanes,
)

from tpegen.config import config_from_dict
from tpegen.errors import ConfigError
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.cycle import simulate
from tpegen.sim.intgemm import operand_range
from tpegen.sim.packing import pack_fields, wrap
from tpegen.sim.system_exec_timing import array_cycles

ACC_BITS = 17  # INT8 x INT8 products need 16 bits: sums of a few products already wrap


def design(rows, cols, dataflow="os", pe=None, **array):
    pe = {"type": "mac", "dataflow": dataflow, "acc_bits": ACC_BITS, **(pe or {})}
    tag = "_".join(f"{k}{int(v) if isinstance(v, bool) else v}" for k, v in sorted(array.items()))
    raw = {
        "name": f"lean_{dataflow}_{rows}x{cols}_{tag}"[:64],
        "pe": pe,
        "array": {"rows": rows, "cols": cols, **array},
    }
    return config_from_dict(raw)


def rand_gemm(acc, rng, m, k, n):
    pe = acc.params.pe
    a_lo, a_hi = operand_range(pe.act_bits, pe.act_signed)
    w_lo, w_hi = operand_range(pe.weight_bits, pe.weight_signed)
    return rng.integers(a_lo, a_hi + 1, (m, k)), rng.integers(w_lo, w_hi + 1, (k, n))


def two_register_closed_form(R, C, tiles, K):
    """Per-tile (start, end) of ``tiles`` tiles of K beats on the two-register OS cell."""
    t = np.arange(tiles)
    last = K - 1 + t * max(K, 2 * R - 1)
    start = last if K == 1 else np.where(t == 0, 0, last - max(K, 2 * R - 1) + 1)
    return start, last + 2 * R + C - 2


def k_values(R):
    return sorted({1, 2, max(R - 1, 1), R, 3 * R})


TWO_REGISTER = [  # (rows, cols, extra array options): the lean options ride along on some builds
    (2, 3, {}),
    (4, 4, {"reset_less_datapath": True, "operand_gating": True}),
    (3, 5, {"operand_gating": True}),
]


@pytest.mark.rtl
@pytest.mark.parametrize("rows,cols,options", TWO_REGISTER, ids=[f"{r}x{c}" for r, c, _ in TWO_REGISTER])
def test_two_register_cell_rtl_equals_closed_form_and_models(rows, cols, options):
    R, C = rows, cols
    cfg = design(R, C, os_cell="two_register", **options)
    acc = cfg.accelerator()
    geom = SystemGeometry.of(cfg, SMALL)
    rng = np.random.default_rng(R * 10 + C)
    # 3 row blocks (one partial) x 2 column blocks (one partial): 6 tiles per GEMM
    gemms = [rand_gemm(acc, rng, 2 * R + 1, k, C + 1) for k in k_values(R)]
    gemms.append(rand_gemm(acc, rng, 1, 1, 1))
    programs = [acc.program(*acc.check_operands(a, w)) for a, w in gemms]
    raw = acc.rtl_model().run([p.stream for p in programs])
    for (a, w), prog, res in zip(gemms, programs, raw, strict=True):
        (m, k), n = a.shape, w.shape[1]
        out = prog.decode(res.outputs)
        assert np.array_equal(out, wrap(a.astype(np.int64) @ w, ACC_BITS)), (m, k, n)
        first = int(res.in_cycles["operands"][0])
        start = res.in_cycles["operands"][::k] - first
        end = res.out_cycles["results"][R - 1 :: R] - first
        want_start, want_end = two_register_closed_form(R, C, prog.tiles, k)
        assert np.array_equal(start, want_start) and np.array_equal(end, want_end), (m, k, n)
        assert res.cycles == want_end[-1] + 1
        model = acc.timeline(m, k, n)
        assert np.array_equal(model.start, start) and np.array_equal(model.end, end), (m, k, n)
        assert acc.cycles(m, k, n) == res.cycles
        sim = simulate(acc, a, w)
        assert sim.cycles == res.cycles and np.array_equal(sim.timeline.end, end)
        # the system top's EXEC formula on the same beat sequence (one tile per (i, j))
        if m % R == 0 and n % C == 0:
            f = fields(mt=m // R, nt=n // C, kt=k)
            assert array_cycles(geom, f) == res.cycles
    if R == 4:  # backpressure (one build is enough): random input/output stalls keep outputs exact
        stalled = acc.run_rtl(gemms, stall_prob=0.3, seed=R * C)
        for (a, w), r in zip(gemms, stalled, strict=True):
            assert np.array_equal(r.output, wrap(a.astype(np.int64) @ w, ACC_BITS))


def test_two_register_system_formula_on_full_tiles():
    """``array_cycles`` (EXEC) for the two-register cell: the closed form over random commands."""
    rng = np.random.default_rng(3)
    for R, C in ((2, 3), (4, 4), (3, 5), (1, 2)):
        geom = SystemGeometry.of(design(R, C, os_cell="two_register"), SMALL)
        for _ in range(20):
            mt, nt, kt = (int(x) for x in rng.integers(1, 7, 3))
            _, end = two_register_closed_form(R, C, mt * nt, kt)
            assert array_cycles(geom, fields(mt=mt, nt=nt, kt=kt)) == end[-1] + 1


LEAN_DEFAULT_CELLS = [  # the lean options on the original cells (both dataflows)
    ("os", 3, 4),
    ("ws", 3, 2),
]


@pytest.mark.rtl
@pytest.mark.parametrize("dataflow,rows,cols", LEAN_DEFAULT_CELLS, ids=[d for d, _, _ in LEAN_DEFAULT_CELLS])
def test_reset_less_and_gated_original_cells_rtl(dataflow, rows, cols):
    cfg = design(rows, cols, dataflow, reset_less_datapath=True, operand_gating=True)
    acc = cfg.accelerator()
    plain = design(rows, cols, dataflow).accelerator()
    rng = np.random.default_rng(rows + cols)
    shapes = [(1, 1, 1), (rows, 1, cols), (2 * rows + 1, rows - 1, cols + 2), (rows + 2, 3 * rows, 1)]
    gemms = [rand_gemm(acc, rng, *s) for s in shapes]
    for stall in (0.0, 0.3) if dataflow == "os" else (0.0,):
        for (a, w), r in zip(gemms, acc.run_rtl(gemms, stall_prob=stall, seed=5), strict=True):
            assert np.array_equal(r.output, wrap(a.astype(np.int64) @ w, ACC_BITS)), (a.shape, stall)
            if stall == 0:  # the options change no cycle
                assert r.cycles == plain.cycles(*a.shape, w.shape[1]) == acc.cycles(*a.shape, w.shape[1])


# -- reset-less registers: structure and a reset in the middle of a tile (Python simulator) --------

DATAPATH_REGS = (
    "a_reg",
    "w_reg",
    "acc",
    "result",
    "drain_reg",
    "psum_reg",
    "load_reg",
    "active",
    "skew_a",
    "skew_w",
    "deskew",
)


def _sync_registers(elaboratable) -> dict[str, bool]:
    """Every register (sync-domain signal) of the design hierarchy: name -> reset_less."""
    from amaranth.hdl import Fragment

    regs: dict[str, bool] = {}
    stack = [Fragment.get(elaboratable, None)]
    while stack:
        frag = stack.pop()
        for domain, stmts in frag.statements.items():
            if domain != "comb":
                for stmt in stmts:
                    regs.update((sig.name, sig.reset_less) for sig in stmt._lhs_signals())
        stack.extend(sub for sub, *_ in frag.subfragments)
    return regs


@pytest.mark.parametrize(
    "dataflow,os_cell,gating",
    [("os", "three_register", False), ("os", "two_register", True), ("ws", "three_register", True)],
)
def test_reset_less_datapath_drops_only_datapath_resets(dataflow, os_cell, gating):
    opts = {"os_cell": os_cell, "operand_gating": gating}
    plain = _sync_registers(design(3, 3, dataflow, **opts).accelerator().component())
    lean = _sync_registers(design(3, 3, dataflow, reset_less_datapath=True, **opts).accelerator().component())
    assert not any(plain.values())  # the default keeps every reset
    datapath = {n for n in lean if n.startswith(DATAPATH_REGS)}
    control = set(lean) - datapath
    assert datapath and all(lean[n] for n in datapath), {n: lean[n] for n in datapath}
    assert not any(lean[n] for n in control), {n for n in control if lean[n]}
    assert {"tok_out", "after_last"} <= control and any(n.startswith("skew_tok") for n in control)


class _WithReset(Elaboratable):
    """The array in a ``sync`` domain whose reset the testbench drives."""

    def __init__(self, dut):
        self.dut, self.domain = dut, ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.domain
        m.submodules.dut = self.dut
        return m


def _play(harness, phases) -> list[int]:
    """Offer each phase's beats (port -> int payloads, all ports at once) until accepted, then wait
    ``drain`` cycles collecting results; a phase with ``reset`` pulses the reset after its beats and
    drops what it collected. Returns the result payloads of the other phases."""
    arr = harness.dut
    results: list[int] = []

    async def bench(ctx):
        ctx.set(arr.results.ready, 1)
        for beats, drain, reset in phases:
            idx = dict.fromkeys(beats, 0)
            got, idle = [], 0
            while idle < drain:
                fired = {}
                for port, payloads in beats.items():
                    s = getattr(arr, port)
                    more = idx[port] < len(payloads)
                    ctx.set(s.valid, int(more))
                    if more:
                        ctx.set(s.payload.as_value(), payloads[idx[port]])
                    fired[port] = more and ctx.get(s.ready)
                if ctx.get(arr.results.valid):
                    got.append(ctx.get(arr.results.payload.as_value()))
                await ctx.tick()
                for port in beats:
                    idx[port] += int(fired[port])
                done = all(idx[p] == len(b) for p, b in beats.items())
                idle = idle + 1 if done else 0
            for port in beats:
                ctx.set(getattr(arr, port).valid, 0)
            if reset:
                ctx.set(harness.domain.rst, 1)
                await ctx.tick()
                ctx.set(harness.domain.rst, 0)
            else:
                results.extend(got)

    sim = Simulator(harness)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    return results


def _ints(packed: np.ndarray) -> list[int]:
    return [int.from_bytes(bytes(r), "little") for r in packed]


@pytest.mark.parametrize(
    "dataflow,os_cell", [("os", "three_register"), ("os", "two_register"), ("ws", "three_register")]
)
def test_reset_mid_tile_leaves_results_exact(dataflow, os_cell):
    """With reset-less datapath registers, a reset in the middle of a tile of extreme operands
    leaves them full of that tile's values; the next GEMM's results are still exact."""
    R, C = 3, 2
    acc = design(R, C, dataflow, os_cell=os_cell, reset_less_datapath=True, operand_gating=True).accelerator()
    rng = np.random.default_rng(9)
    a, w = rand_gemm(acc, rng, 2 * R, 5, C + 1)
    prog = acc.program(*acc.check_operands(a, w))
    a_bits, w_bits, out_bits = acc.lane_bits()
    ext = np.full((4, max(R, C)), -128)
    if dataflow == "os":  # four beats, `last` never set: the tile is still accumulating at the reset
        poison = {
            "operands": _ints(
                pack_fields([(ext[:, :R], a_bits), (ext[:, :C], w_bits), (np.zeros(4, int), 1)])
            )
        }
    else:  # shadow weights and four rows in flight through the partial-sum chain at the reset
        poison = {
            "weights": _ints(pack_fields([(ext[:R, :C], w_bits)])),
            "activations": _ints(pack_fields([(ext[:, :R], a_bits), (np.zeros(4, int), 1)])),
        }
    real = {port: _ints(b) for port, b in prog.stream.inputs.items()}
    got = _play(_WithReset(acc.component()), [(poison, 1, True), (real, 4 * (R + C), False)])
    assert len(got) == prog.stream.outputs["results"]
    nbytes = -(-out_bits * C // 8)
    payload = np.array([list(g.to_bytes(nbytes, "little")) for g in got], dtype=np.uint8)
    out = prog.decode({"results": payload})
    assert np.array_equal(out, wrap(a.astype(np.int64) @ w, ACC_BITS))


# -- the accelerator top's execute unit (Python simulator) -----------------------------------------


@pytest.mark.parametrize(("rows", "cols"), [(2, 3), (3, 2)])
def test_execute_unit_two_register_mac(rows, cols):
    cfg = config_from_dict(
        {
            "pe": {"type": "mac", "act_bits": 8, "weight_bits": 6, "acc_bits": 20, "dataflow": "os"},
            "array": {"rows": rows, "cols": cols, "os_cell": "two_register", "operand_gating": True},
        }
    )
    geom = SystemGeometry.of(cfg, SMALL)
    assert geom.os_cell == "two_register"
    rng = np.random.default_rng(rows * 10 + cols + 5)
    a_rows = random_rows(rng, geom.a_row_bits, geom.a_depth)
    w_rows = random_rows(rng, geom.w_row_bits, geom.w_depth)
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    R = rows
    commands = [
        fields(a_addr=3, w_addr=5, c_addr=1, c_stride=2 * R, mt=2, nt=3, kt=4),  # K > 2R - 1
        fields(a_addr=20, w_addr=9, c_addr=1, c_stride=2 * R, mt=2, nt=3, kt=2, acc=1),  # K < 2R - 1
        fields(a_addr=7, w_addr=40, c_addr=40, c_stride=R, mt=1, nt=3, kt=1),  # K = 1
        fields(a_addr=50, w_addr=60, c_addr=30, c_stride=0, mt=1, nt=3, kt=R, acc=1),  # K = R
    ]
    commands += [random_command(rng, geom, False) for _ in range(4)]
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=[0, 0, 2, 0, 1, 0, 0, 1])
    check_timing(geom, cfg, commands, log)
    for f, (t, e) in zip(commands, log, strict=True):  # the closed form, independently of array_cycles
        _, end = two_register_closed_form(R, cols, f["mt"] * f["nt"], f["kt"])
        assert e - t == 2 + end[-1] + 1, f
    acc_bits = geom.acc_lane_bits
    A = to_lanes(a_rows, 8, R, signed=True)
    W = to_lanes(w_rows, 6, cols, signed=True)
    C = to_lanes(c_rows, acc_bits, cols, signed=True)
    for f in commands:
        ref_os_int(geom, acc_bits, A, W, C, f)
    np.testing.assert_array_equal(to_lanes(final, acc_bits, cols, signed=True), C)


def test_execute_unit_two_register_fma():
    cfg = config_from_dict(
        {
            "pe": {"type": "fma", "input_format": "bf16", "acc_format": "fp32"},
            "array": {"rows": 2, "cols": 2, "os_cell": "two_register", "reset_less_datapath": True},
        }
    )
    geom = SystemGeometry.of(cfg, SMALL)
    accel = cfg.accelerator()
    rng = np.random.default_rng(11)
    a_rows = [r & 0x3FFF3FFF for r in random_rows(rng, geom.a_row_bits, geom.a_depth)]  # finite bf16
    w_rows = [r & 0x3FFF3FFF for r in random_rows(rng, geom.w_row_bits, geom.w_depth)]
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    commands = [random_command(rng, geom, True) for _ in range(5)]
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=[0, 1, 0, 0, 2])
    check_timing(geom, cfg, commands, log)
    for f, (t, e) in zip(commands, log, strict=True):
        _, end = two_register_closed_form(2, 2, f["mt"] * f["nt"], f["kt"])
        assert e - t == 2 + end[-1] + 1, f
    C = to_lanes(c_rows, 32, 2, signed=False)
    A = to_lanes(a_rows, 16, 2, signed=False)
    W = to_lanes(w_rows, 16, 2, signed=False)
    for f in commands:
        for i in range(f["mt"]):
            for j in range(f["nt"]):
                at = A[f["a_addr"] + i * f["kt"] : f["a_addr"] + (i + 1) * f["kt"]]
                wt = W[f["w_addr"] + j * f["kt"] : f["w_addr"] + (j + 1) * f["kt"]]
                res = accel.golden_bits(at.T, wt)
                for q in range(2):
                    C[f["c_addr"] + j * f["c_stride"] + i * 2 + q] = res[q]
    np.testing.assert_array_equal(to_lanes(final, 32, 2, signed=False), C)


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array,field",
    [
        ({"os_cell": "one_register"}, "array.os_cell"),
        ({"os_cell": 2}, "array.os_cell"),
        ({"reset_less_datapath": "yes"}, "array.reset_less_datapath"),
        ({"operand_gating": 1}, "array.operand_gating"),
    ],
)
def test_bad_option_values_name_the_field(array, field):
    with pytest.raises(ConfigError) as exc:
        design(2, 2, **array)
    assert exc.value.field == field and "\n" not in str(exc.value)


def test_two_register_cell_is_output_stationary_only():
    with pytest.raises(ConfigError) as exc:
        design(2, 2, "ws", os_cell="two_register")
    assert exc.value.field == "array.os_cell" and "output-stationary" in str(exc.value)
    design(2, 2, "ws", reset_less_datapath=True, operand_gating=True)  # these apply to both


def test_defaults_round_trip_and_latency_report():
    cfg = design(4, 3)
    arr = cfg.to_dict()["array"]
    assert arr["os_cell"] == "three_register" and not arr["reset_less_datapath"] and not arr["operand_gating"]
    assert config_from_dict(cfg.to_dict()) == cfg
    lat = design(4, 3, os_cell="two_register").accelerator().latency()
    assert lat["tile_interval"] == "max(K, 7) cycles" and lat["single_tile_cycles"] == "K + 9"
