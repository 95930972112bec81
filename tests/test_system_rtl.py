"""The accelerator top on Verilator (sim/system_rtl.py) against the golden ISA model and the timing model.

Every program runs on the RTL with cocotbext-axi's AxiRam as host memory; the final host image must
equal :func:`tpegen.sim.system_golden.run_golden`'s byte for byte, and the cycle count (and every
command's handshake cycle) must equal :func:`tpegen.sim.system_timing.simulate_timing`'s exactly,
at two memory latencies. Programs are built by hand here (multi-segment LOADs and STOREs, 4 KiB
splits, every token direction, accumulation, each output format) and, where the compiler exists,
compiled GEMMs.
"""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.hw.system.isa import ErrorCode, Format, Instruction, Opcode, Target, Unit, encode_program
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.requant import pack_qparams
from tpegen.sim.system_golden import run_golden
from tpegen.sim.system_rtl import RtlJob, measure_axi_ram, run_rtl_batch
from tpegen.sim.system_timing import MIN_READ_LATENCY, MIN_WRITE_LATENCY, MemoryTiming, simulate_timing

pytestmark = pytest.mark.rtl

L, E, S = 1 << Unit.LOAD, 1 << Unit.EXEC, 1 << Unit.STORE
CONFIGS = ("int8_os_8x8", "int8_ws_8x8", "lut_w2a8", "bf16_exact")
MEMORIES = (MemoryTiming(MIN_READ_LATENCY, MIN_WRITE_LATENCY), MemoryTiming(11, 6))
HOST_BYTES = 1 << 16


def test_axi_ram_latency_and_readiness():
    """AxiRam on its own: AR -> first R and last W -> B are 2 cycles (the model's minimums), the
    added latency lands exactly, R beats are back to back, AR/AW/W never stall, data round-trips."""
    base = measure_axi_ram(16)
    assert base.read_latency == (MIN_READ_LATENCY,) * 2
    assert base.write_latency == (MIN_WRITE_LATENCY,) * 2
    slow = measure_axi_ram(4, MemoryTiming(7, 5), beats=9)
    assert slow.read_latency == (7, 7) and slow.write_latency == (5, 5)
    for m in (base, slow):
        assert m.r_contiguous and m.data_ok and m.ready_violations == ()


# -- hand-built programs ----------------------------------------------------------------------


def _exec_fields(g: SystemGeometry) -> dict[str, int]:
    if g.kind == "os":
        f = dict(mt=2, nt=2, kt=5, mb=1, c_stride=2 * g.rows)
    elif g.kind == "ws":
        f = dict(mt=1, nt=2, kt=2, mb=5, c_stride=5)
    else:
        f = dict(mt=2, nt=2, kt=3, mb=1, c_stride=2)
    return f | dict(a_addr=0, w_addr=0, c_addr=0)


def _host_image(config, g: SystemGeometry, rng: np.random.Generator, q_addr: int) -> np.ndarray:
    if g.fp:  # finite bf16 lanes of moderate magnitude everywhere (A, W and the rest)
        values = rng.normal(0, 2, HOST_BYTES // 2).astype(np.float32)
        host = (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    else:
        host = rng.integers(0, 256, HOST_BYTES, dtype=np.uint8)
    if "int8" in g.output_formats():
        n = g.q_depth * g.acc_lanes
        entries = pack_qparams(
            rng.integers(1 << 29, 1 << 31, n),
            rng.integers(0, 40, n),
            rng.integers(-128, 128, n),
        )
        pitch = g.load_pitch("Q")
        rows = entries.reshape(g.q_depth, g.acc_lanes).astype("<u8").view(np.uint8)
        for r, row in enumerate(rows):
            host[q_addr + r * pitch : q_addr + r * pitch + row.size] = row
    return host


def hand_program(config, g: SystemGeometry, seed: int = 0) -> tuple[list[Instruction], np.ndarray]:
    """Two A loads, W, Q; three EXECs (overwrite, accumulate or second buffer, after an A reload);
    raw and requantized/bf16 STOREs; every token direction; segments and 4 KiB-crossing bursts."""
    rng = np.random.default_rng(seed)
    f = _exec_fields(g)
    a_end, w_end, c_end = g.exec_footprint(f)
    pa, pw = g.load_pitch("A"), g.load_pitch("W")
    raw = g.store_pitch("raw")
    second = "bf16" if g.fp else "int8"
    p2 = g.store_pitch(second)
    q_host = 0x4000
    sa = -(-a_end // 2)
    prog = [
        Instruction(
            Opcode.LOAD, 0, 0, dict(target=Target.A, host_addr=0, rows=2, seg=sa, stride=(sa + 2) * pa)
        ),
        Instruction(Opcode.LOAD, 0, E, dict(target=Target.W, host_addr=0x3000 - 3 * pw, rows=1, seg=w_end)),
    ]
    if second == "int8":
        prog.append(
            Instruction(Opcode.LOAD, 0, S, dict(target=Target.Q, host_addr=q_host, rows=1, seg=g.q_depth))
        )
    prog.append(Instruction(Opcode.EXEC, L, 0, f | dict(acc=0)))
    if g.fp:  # no accumulation on the FMA engine: a second buffer
        c_total = 2 * c_end
        prog.append(Instruction(Opcode.EXEC, 0, S | L, f | dict(acc=0, c_addr=c_end)))
    else:
        c_total = c_end
        prog.append(Instruction(Opcode.EXEC, 0, S | L, f | dict(acc=1)))
    half = c_total // 2
    prog.append(
        Instruction(
            Opcode.STORE, E, 0, dict(c_addr=0, host_addr=0x5000, rows=2, seg=half, stride=(half + 1) * raw)
        )
    )
    store2 = dict(c_addr=1, host_addr=0x8000, rows=2, seg=3, stride=4 * p2, format=Format[second.upper()])
    wait2 = 0
    if second == "int8":
        wait2 = L
        if g.kind == "lut":
            store2 |= dict(per_row=1, q_addr=g.acc_lanes + 3)
        else:
            store2 |= dict(per_row=0, relu=1, q_addr=1)
    prog.append(Instruction(Opcode.STORE, wait2, E, store2))
    prog.append(Instruction(Opcode.LOAD, E, E, dict(target=Target.A, host_addr=0x1000, rows=1, seg=a_end)))
    prog.append(Instruction(Opcode.EXEC, L | S, S, f | dict(acc=0)))
    prog.append(Instruction(Opcode.STORE, E, 0, dict(c_addr=0, host_addr=0xA000 - raw, rows=1, seg=c_end)))
    return prog, _host_image(config, g, rng, q_host)


def _check(config, g, jobs_programs, runs):
    for (prog, host, memory), run in zip(jobs_programs, runs, strict=True):
        timing = simulate_timing(config, g, prog, memory)
        gold = run_golden(config, prog[: timing.error_index] if timing.error else prog, host, geometry=g)
        where = f"{config.name} {memory}"
        bad = np.flatnonzero(run.host != gold.host)
        assert bad.size == 0, f"{where}: host bytes differ at {bad[:16]}"
        accepted = timing.dispatch[timing.dispatch >= 0]
        assert list(run.command_cycles) == list(accepted), where
        assert run.cycles == timing.cycles, f"{where}: RTL {run.cycles} cycles, model {timing.cycles}"
        assert run.status == {
            "error": int(timing.error),
            "error_code": timing.error_code,
            "error_index": max(timing.error_index, 0),
        }, where


def _run(config, g, cases):
    jobs = [RtlJob(encode_program(prog), host, memory) for prog, host, memory in cases]
    _check(config, g, cases, run_rtl_batch(config, g, jobs))


@pytest.mark.parametrize("name", CONFIGS)
def test_hand_program_matches_golden_and_timing(name):
    config = load_config(name)
    g = SystemGeometry.of(config)
    prog, host = hand_program(config, g)
    _run(config, g, [(prog, host, m) for m in MEMORIES])


def test_small_queue_backpressure():
    """Queue depth 2 and 4-byte AXI: the dispatcher stalls on full queues, bursts split at 256
    beats; still cycle-exact."""
    from tpegen.hw.system.params import SystemParams

    config = load_config("int8_os_8x8")
    g = SystemGeometry.of(config, SystemParams(axi_bytes=4, queue_depth=2))
    prog, host = hand_program(config, g, seed=1)
    big = Instruction(Opcode.LOAD, 0, 0, dict(target=Target.A, sp_addr=100, host_addr=0xC00, rows=1, seg=300))
    prog = [prog[0], big, *prog[1:]]
    memory = MemoryTiming(3, 4)
    dispatch = simulate_timing(config, g, prog, memory).dispatch
    assert (dispatch > np.arange(len(prog))).any()  # the dispatcher does wait for queue space
    _run(config, g, [(prog, host, memory)])


def test_errors_reported_with_code_and_index():
    """Commands the assembler would reject, forced onto the RTL: an unknown opcode word and an
    out-of-range LOAD raise status.error with the right code and index; earlier commands still
    run (the image equals the golden run of the prefix) and the cycle count is the model's."""
    config = load_config("int8_os_8x8")
    g = SystemGeometry.of(config)
    prog, host = hand_program(config, g)
    unknown = Instruction(9, 0, 0)
    out_of_range = Instruction(Opcode.LOAD, 0, 0, dict(target=Target.W, sp_addr=g.w_depth - 2, rows=1, seg=3))
    cases = [
        ([*prog[:3], unknown, *prog[3:]], host, MEMORIES[1]),
        ([prog[0], out_of_range, *prog[1:]], host, MEMORIES[0]),
    ]
    jobs = [RtlJob(b"".join(_word(i) for i in p), h, m) for p, h, m in cases]
    runs = run_rtl_batch(config, g, jobs)
    assert runs[0].status == {"error": 1, "error_code": ErrorCode.BAD_OPCODE, "error_index": 3}
    assert runs[1].status == {"error": 1, "error_code": ErrorCode.OUT_OF_RANGE, "error_index": 1}
    _check(config, g, cases, runs)


def test_hang_is_reported_with_the_cycle():
    """A program that never gets idle (an EXEC waiting for a token nobody gives) stops at
    ``max_cycles`` with an error naming the cycle and the commands accepted."""
    from tpegen.errors import TpegenError
    from tpegen.sim.system_rtl import run_rtl

    config = load_config("int8_os_8x8")
    g = SystemGeometry.of(config)
    prog = [Instruction(Opcode.EXEC, L, 0, _exec_fields(g) | dict(acc=0))]
    binary = b"".join(_word(i) for i in prog)
    with pytest.raises(
        TpegenError, match=r"not idle after 300 cycles \(cycle 300\): 1 of 1 commands accepted"
    ):
        run_rtl(config, g, binary, np.zeros(4096, np.uint8), MEMORIES[0], max_cycles=300)


def _word(ins: Instruction) -> bytes:
    """Encode without the assembler's checks (an unknown opcode has no fields)."""
    if ins.opcode not in Opcode._value2member_map_:
        return (ins.opcode | ins.wait << 4 | ins.signal << 7).to_bytes(16, "little")
    return ins.encode().to_bytes(16, "little")


# -- compiled GEMMs ---------------------------------------------------------------------------

SMALL_GEMMS = {  # (M, K, N, output format): a few tiles each way, partial edge tiles
    "int8_os_8x8": (20, 40, 28, "int8"),
    "int8_ws_8x8": (20, 40, 28, "raw"),
    "lut_w2a8": (5, 40, 70, "int8"),
    "bf16_exact": (12, 20, 20, "bf16"),
}


def _compiled(name: str, m: int, k: int, n: int, fmt: str, seed: int = 0):
    from tpegen.sw.compiler import Requant, compile_gemm

    config = load_config(name)
    rng = np.random.default_rng(seed)
    a, w = config.accelerator().random_operands(rng, m, k, n)
    kwargs = {}
    if fmt == "int8":
        kwargs = dict(
            requant=Requant(
                rng.integers(1 << 30, 1 << 31, n), rng.integers(8, 20, n), int(rng.integers(-20, 20))
            ),
            relu=True,
        )
    return config, a, w, compile_gemm(config, a, w, out_format=fmt, **kwargs)


def _run_compiled(name, m, k, n, fmt, memories=MEMORIES):
    config, a, w, compiled = _compiled(name, m, k, n, fmt)
    g = compiled.geometry
    prog = compiled.instructions
    cases = [(prog, compiled.host, memory) for memory in memories]
    jobs = [RtlJob(compiled.binary(), compiled.host, memory) for memory in memories]
    runs = run_rtl_batch(config, g, jobs)
    _check(config, g, cases, runs)
    for run in runs:
        assert run.axi["r"] * g.axi_bytes == compiled.expected_traffic.read
        assert run.axi["w"] * g.axi_bytes == compiled.expected_traffic.written
    if fmt == "raw":
        out = compiled.read_outputs(runs[0].host)["C"]
        np.testing.assert_array_equal(out, config.accelerator().golden(a, w))
    return runs


@pytest.mark.parametrize("name", CONFIGS)
def test_compiled_gemm_matches_golden_and_timing(name):
    _run_compiled(name, *SMALL_GEMMS[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_compiled_100x300x70(name):
    fmt = {"bf16_exact": "bf16", "int8_ws_8x8": "raw"}.get(name, "int8")
    _run_compiled(name, 100, 300, 70, fmt)
