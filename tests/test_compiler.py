"""The system compiler and runtime: GEMMs and layer chains compiled to programs, run on the golden
model and checked against numpy; traffic, listings and the token protocol checked independently."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.errors import ConfigError
from tpegen.hw.system import isa
from tpegen.hw.system.isa import Opcode, Unit
from tpegen.hw.system.params import SystemParams
from tpegen.sim.packing import wrap
from tpegen.sim.requant import fp32_bits_to_bf16_bits, quantize_multiplier, requantize
from tpegen.sw.compiler import Layer, Requant, compile_gemm, compile_mlp
from tpegen.sw.runtime import run_program

SMALL = SystemParams(scratchpad_a_kib=1, scratchpad_w_kib=1, accumulator_kib=1, qparam_rows=1)
INT_CONFIGS = ("int8_os_8x8", "int8_ws_8x8", "lut_w2a8")
SHAPES = ((100, 300, 70), (13, 29, 11), (1, 1, 1), (9, 17, 65))


def _ref(a, w, bits=32):
    """Independent reference: exact integer A @ W (Python ints for K products) wrapped to ``bits``."""
    return wrap(np.asarray(a, dtype=np.int64) @ np.asarray(w, dtype=np.int64), bits)


def _requant(rng, n: int, relu: bool = False) -> Requant:
    pairs = [quantize_multiplier(s) for s in rng.uniform(2e-4, 2e-2, n)]
    return Requant(
        np.array([m for m, _ in pairs]), np.array([s for _, s in pairs]), int(rng.integers(-30, 30))
    )


def _happens_before(program: list[isa.Instruction]) -> np.ndarray:
    """hb[j, u]: the latest command of unit u certain to have completed when command j starts
    (in-order units plus the n-th wait taking the n-th token), transitively; -1 if none."""
    n = len(program)
    hb = np.full((n, 3), -1, dtype=np.int64)
    last = [-1, -1, -1]
    signals: dict[tuple[int, int], list[int]] = {}
    taken: dict[tuple[int, int], int] = {}
    for j, ins in enumerate(program):
        u = ins.unit
        sources = [last[u]] if last[u] >= 0 else []
        for src in Unit:
            if ins.waits_on(src):
                k = taken.get((src, u), 0)
                sources.append(signals[(src, u)][k])
                taken[(src, u)] = k + 1
        for s in sources:
            hb[j] = np.maximum(hb[j], hb[s])
            hb[j, program[s].unit] = max(hb[j, program[s].unit], s)
        for dst in Unit:
            if ins.signals(dst):
                signals.setdefault((u, dst), []).append(j)
        last[u] = j
    for key, sent in signals.items():  # every token is taken: the semaphores end at zero
        assert taken.get(key, 0) == len(sent), f"{key}: {len(sent)} signals, {taken.get(key, 0)} waits"
    return hb


def _accesses(ins: isa.Instruction, g, host_size: int):
    """(memory, rows or byte ranges, write) of one command, from its fields alone."""
    if ins.opcode == Opcode.LOAD:
        pitch = g.load_pitch(isa.Target(ins["target"]).name)
        mem = isa.Target(ins["target"]).name
        yield mem, [(ins["sp_addr"], ins["sp_addr"] + ins["rows"] * ins["seg"])], True
        yield (
            "host",
            [
                (
                    ins["host_addr"] + s * ins["stride"],
                    ins["host_addr"] + s * ins["stride"] + ins["seg"] * pitch,
                )
                for s in range(ins["rows"])
            ],
            False,
        )
    elif ins.opcode == Opcode.EXEC:
        a_end, w_end, c_end = g.exec_footprint(ins.args)
        yield "A", [(ins["a_addr"], a_end)], False
        yield "W", [(ins["w_addr"], w_end)], False
        if ins["acc"]:
            yield "C", [(ins["c_addr"], c_end)], False
        yield "C", [(ins["c_addr"], c_end)], True
    else:
        fmt = isa.Format(ins["format"]).name.lower()
        pitch = g.store_pitch(fmt)
        yield "C", [(ins["c_addr"], ins["c_addr"] + ins["rows"] * ins["seg"])], False
        if fmt == "int8":
            L = g.acc_lanes
            if ins["per_row"]:
                yield "Q", [(ins["q_addr"] // L, (ins["q_addr"] + ins["seg"] - 1) // L + 1)], False
            else:
                yield "Q", [(ins["q_addr"], ins["q_addr"] + ins["rows"])], False
        yield (
            "host",
            [
                (
                    ins["host_addr"] + s * ins["stride"],
                    ins["host_addr"] + s * ins["stride"] + ins["seg"] * pitch,
                )
                for s in range(ins["rows"])
            ],
            True,
        )


def check_hazards(compiled) -> None:
    """Every pair of commands of different units touching the same memory row or host byte, one
    of them writing, is ordered by the token protocol the program-order way."""
    g, program = compiled.geometry, compiled.instructions
    hb = _happens_before(program)
    sizes = {"A": g.a_depth, "W": g.w_depth, "C": g.acc_depth, "Q": g.q_depth, "host": compiled.host.size}
    last_w = {m: np.full((3, n), -1, dtype=np.int64) for m, n in sizes.items()}
    last_r = {m: np.full((3, n), -1, dtype=np.int64) for m, n in sizes.items()}
    for j, ins in enumerate(program):
        u = ins.unit
        for mem, ranges, write in _accesses(ins, g, compiled.host.size):
            for lo, hi in ranges:
                for other in range(3):
                    if other == u:
                        continue
                    prior = last_w[mem][other, lo:hi].max(initial=-1)
                    if write:
                        prior = max(prior, last_r[mem][other, lo:hi].max(initial=-1))
                    assert prior <= hb[j, other], (
                        f"command {j} ({ins.listing()}) may run before command {prior} "
                        f"({program[prior].listing()}) on {mem} {lo}..{hi}"
                    )
        for mem, ranges, write in _accesses(ins, g, compiled.host.size):
            for lo, hi in ranges:
                (last_w if write else last_r)[mem][u, lo:hi] = j


def _run_checked(config, compiled):
    """Golden run; the measured host traffic is the expected one; listing and tokens check out."""
    run = run_program(config, compiled, "golden")
    t = compiled.expected_traffic
    assert run.host_bytes == t.read + t.written
    gold = run.detail
    assert (gold.host_bytes_read, gold.host_bytes_written) == (t.read, t.written)
    assert isa.assemble(compiled.listing(), compiled.geometry) == compiled.binary()
    check_hazards(compiled)
    return run


@pytest.mark.parametrize("name", INT_CONFIGS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_integer_gemm_matches_numpy(name, shape):
    config = load_config(name)
    acc = config.accelerator()
    a, w = acc.random_operands(np.random.default_rng(sum(shape)), *shape)
    compiled = compile_gemm(config, a, w)
    run = _run_checked(config, compiled)
    np.testing.assert_array_equal(run.outputs["C"], _ref(a, w, 32))
    assert compiled.macs == np.prod(shape)
    assert "expected host traffic" in compiled.listing()


@pytest.mark.parametrize("name", INT_CONFIGS)
def test_small_scratchpads_split_k_and_stay_exact(name):
    config = load_config(name)
    a, w = config.accelerator().random_operands(np.random.default_rng(7), 100, 300, 70)
    compiled = compile_gemm(config, a, w, system=SMALL)
    execs = [i for i in compiled.instructions if i.opcode == Opcode.EXEC]
    assert any(i["acc"] for i in execs), "K was not split across EXECs"
    assert "K-split" in compiled.listing()
    run = _run_checked(config, compiled)
    np.testing.assert_array_equal(run.outputs["C"], _ref(a, w, 32))


def test_accumulator_wraps_like_the_array():
    config = load_config("int8_os_8x8")
    a = np.full((8, 140_000), -128)
    w = np.full((140_000, 3), -128)
    compiled = compile_gemm(config, a, w, system=SMALL)
    run = run_program(config, compiled)
    np.testing.assert_array_equal(run.outputs["C"], _ref(a, w, 32))
    assert run.outputs["C"][0, 0] != 140_000 * 128 * 128  # it did wrap


@pytest.mark.parametrize("shape", [(100, 300, 70), (9, 5, 17)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("fmt", ["raw", "bf16"])
def test_bf16_gemm_matches_the_bare_array(shape, fmt):
    config = load_config("bf16_exact")
    acc = config.accelerator()
    a, w = acc.random_operands(np.random.default_rng(3), *shape)
    compiled = compile_gemm(config, a, w, out_format=fmt)
    run = _run_checked(config, compiled)
    ref = acc.run_gemm(a, w, "golden").output.view(np.uint32).astype(np.int64)
    if fmt == "bf16":
        ref = fp32_bits_to_bf16_bits(ref)
    np.testing.assert_array_equal(run.outputs["C"], ref)


def test_fma_k_beyond_the_scratchpad_is_a_config_error():
    config = load_config("bf16_exact")
    a, w = config.accelerator().random_operands(np.random.default_rng(0), 8, 3000, 8)
    with pytest.raises(ConfigError, match="scratchpad_a_kib.*whole K column"):
        compile_gemm(config, a, w)
    compile_gemm(config, a[:, :1000], w[:1000])  # fits the whole scratchpad (single buffer)


@pytest.mark.parametrize("name", INT_CONFIGS)
@pytest.mark.parametrize("system", [None, SMALL], ids=["default", "small"])
def test_int8_output_requantizes_per_channel(name, system):
    config = load_config(name)
    rng = np.random.default_rng(11)
    a, w = config.accelerator().random_operands(rng, 37, 50, 45)
    rq = _requant(rng, 45)
    compiled = compile_gemm(config, a, w, out_format="int8", requant=rq, relu=True, system=system)
    run = _run_checked(config, compiled)
    ref = requantize(_ref(a, w), rq.multiplier[None], rq.shift[None], rq.zero_point, relu=True)
    np.testing.assert_array_equal(run.outputs["C"], ref)


def _mlp_reference(x, layers):
    h = np.asarray(x, dtype=np.int64)
    outs = []
    for layer in layers:
        h = _ref(h, layer.w)
        if layer.requant is not None:
            r = layer.requant
            h = requantize(h, r.multiplier[None], r.shift[None], r.zero_point, relu=layer.relu)
        outs.append(h)
    return outs


@pytest.mark.parametrize("name", ["int8_os_8x8", "int8_ws_8x8"])
def test_two_layer_mlp_matches_numpy(name):
    config = load_config(name)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (33, 40))
    layers = [
        Layer(rng.integers(-128, 128, (40, 50)), _requant(rng, 50), relu=True),
        Layer(rng.integers(-128, 128, (50, 20)), _requant(rng, 20)),
    ]
    compiled = compile_mlp(config, x, layers)
    run = _run_checked(config, compiled)
    ref = _mlp_reference(x, layers)
    np.testing.assert_array_equal(run.outputs["layer0"], ref[0])
    np.testing.assert_array_equal(run.outputs["Y"], ref[1])
    # the second layer reads what the first stored: its input loads wait for those stores
    stores = [i for i, ins in enumerate(compiled.instructions) if ins.opcode == Opcode.STORE]
    assert any(ins.waits_on(Unit.STORE) for ins in compiled.instructions[stores[0] :])


@pytest.mark.parametrize("name", ["int8_os_8x8", "int8_ws_8x8"])
def test_three_layer_mlp_small_memories_raw_last(name):
    config = load_config(name)
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (21, 70))
    layers = [
        Layer(rng.integers(-128, 128, (70, 45)), _requant(rng, 45), relu=True),
        Layer(rng.integers(-128, 128, (45, 30)), _requant(rng, 30), relu=False),
        Layer(rng.integers(-128, 128, (30, 9))),
    ]
    compiled = compile_mlp(config, x, layers, system=SMALL)
    run = _run_checked(config, compiled)
    np.testing.assert_array_equal(run.outputs["Y"], _mlp_reference(x, layers)[-1])


def test_cycle_backend_times_the_same_values():
    config = load_config("int8_ws_8x8")
    rng = np.random.default_rng(2)
    a, w = config.accelerator().random_operands(rng, 40, 64, 24)
    compiled = compile_gemm(config, a, w, system=SystemParams(queue_depth=2))
    run = run_program(config, compiled, "cycle")
    np.testing.assert_array_equal(run.outputs["C"], _ref(a, w))
    assert run.cycles > compiled.macs / config.accelerator().macs_per_cycle
    assert 0 < run.utilization < 1
    with pytest.raises(ConfigError, match="--waves"):
        run_program(config, compiled, "golden", vcd_path="x.vcd")


def test_bad_requests_name_the_field():
    config = load_config("int8_os_8x8")
    a, w = np.ones((4, 5), dtype=np.int64), np.ones((5, 6), dtype=np.int64)
    with pytest.raises(ConfigError, match="out_format"):
        compile_gemm(config, a, w, out_format="bf16")
    with pytest.raises(ConfigError, match="requant"):
        compile_gemm(config, a, w, out_format="int8")
    with pytest.raises(ConfigError, match="requant.multiplier"):
        compile_gemm(
            config, a, w, out_format="int8", requant=Requant(np.ones(5, dtype=int), np.ones(6, dtype=int))
        )
    with pytest.raises(ConfigError, match="layers\\[1\\].w"):
        compile_mlp(config, a, [Layer(w, _requant(np.random.default_rng(0), 6)), Layer(w)])
    with pytest.raises(ConfigError, match="layers\\[0\\].requant"):
        compile_mlp(config, a, [Layer(w), Layer(w.T)])
    with pytest.raises(ConfigError, match="pe.type"):
        compile_mlp(load_config("lut_w2a8"), a, [Layer(w)])
    with pytest.raises(ConfigError, match="config"):
        run_program(load_config("int8_ws_8x8"), compile_gemm(config, a, w))


def _rtl_check(config, compiled, reference, output):
    run = run_program(config, compiled, "rtl")
    np.testing.assert_array_equal(run.outputs[output], reference)
    assert run.cycles == run_program(config, compiled, "cycle").cycles
    assert run.host_bytes == compiled.expected_traffic.total


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8_os_8x8", "int8_ws_8x8"])
def test_rtl_runs_a_compiled_mlp(name):
    pytest.importorskip("tpegen.hw.system.top")
    config = load_config(name)
    rng = np.random.default_rng(8)
    x = rng.integers(-128, 128, (12, 20))
    layers = [
        Layer(rng.integers(-128, 128, (20, 16)), _requant(rng, 16), relu=True),
        Layer(rng.integers(-128, 128, (16, 10))),
    ]
    _rtl_check(config, compile_mlp(config, x, layers), _mlp_reference(x, layers)[-1], "Y")


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8_os_8x8", "lut_w2a8", "bf16_exact"])
def test_rtl_runs_a_compiled_gemm(name):
    pytest.importorskip("tpegen.hw.system.top")
    config = load_config(name)
    acc = config.accelerator()
    a, w = acc.random_operands(np.random.default_rng(9), 11, 45, 19)
    if config.family == "fma":
        ref = fp32_bits_to_bf16_bits(acc.run_gemm(a, w, "golden").output.view(np.uint32).astype(np.int64))
        _rtl_check(config, compile_gemm(config, a, w, out_format="bf16"), ref, "C")
        return
    rq = _requant(np.random.default_rng(10), 19)
    compiled = compile_gemm(config, a, w, out_format="int8", requant=rq, relu=True)
    _rtl_check(
        config,
        compiled,
        requantize(_ref(a, w), rq.multiplier[None], rq.shift[None], rq.zero_point, True),
        "C",
    )


def test_hazard_check_catches_a_missing_wait():
    """The token check above can fail: drop one LOAD -> EXEC token (wait and its signal)."""
    config = load_config("int8_os_8x8")
    a, w = config.accelerator().random_operands(np.random.default_rng(1), 30, 40, 20)
    compiled = compile_gemm(config, a, w)
    program = list(compiled.instructions)
    j = next(i for i, ins in enumerate(program) if ins.opcode == Opcode.EXEC and ins.waits_on(Unit.LOAD))
    s = max(i for i in range(j) if program[i].signals(Unit.EXEC))
    program[j] = isa.Instruction(program[j].opcode, program[j].wait & ~1, program[j].signal, program[j].args)
    program[s] = isa.Instruction(program[s].opcode, program[s].wait, program[s].signal & ~2, program[s].args)
    compiled.instructions = program
    with pytest.raises(AssertionError, match="may run before"):
        check_hazards(compiled)


def test_per_row_channels_stay_within_the_q_addr_field():
    """OS chains name channels in the 10-bit q_addr: with 64 Q rows of 32 lanes (2048 channels)
    only the first 1024 are addressable, so a 1100-channel layer is stored in Q windows."""
    config = load_config("int8_os_32x32")
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (5, 8))
    layers = [
        Layer(rng.integers(-128, 128, (8, 1100)), _requant(rng, 1100)),
        Layer(rng.integers(-128, 128, (1100, 3))),
    ]
    compiled = compile_mlp(config, x, layers, system=SystemParams(qparam_rows=64))
    run = _run_checked(config, compiled)
    np.testing.assert_array_equal(run.outputs["Y"], _mlp_reference(x, layers)[-1])
