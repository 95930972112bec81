"""The system timing model (sim/system_timing.py) against cycle numbers worked out by hand from the
spec's timing contract, and the EXEC array term against the array timing models."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.hw.system.execute import ExecuteUnit
from tpegen.hw.system.isa import ErrorCode, Instruction, Opcode, Unit
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.sim.lut import lut_gemm_cycles
from tpegen.sim.system_exec_timing import array_cycles
from tpegen.sim.system_timing import MemoryTiming, segment_bursts, simulate_timing, transfer_bursts
from tpegen.sim.systolic_timing import os_timeline, ws_timeline

L, E, S = 1 << Unit.LOAD, 1 << Unit.EXEC, 1 << Unit.STORE
MEM = MemoryTiming(read_latency=8, write_latency=8)
F = ExecuteUnit.FEED_LATENCY


def geom(name: str = "int8_os_8x8", **system) -> tuple[object, SystemGeometry]:
    config = load_config(name)
    return config, SystemGeometry.of(config, SystemParams(**system))


def load(target=0, sp=0, host=0, rows=1, seg=1, stride=0, wait=0, signal=0) -> Instruction:
    args = dict(target=target, sp_addr=sp, host_addr=host, rows=rows, seg=seg, stride=stride)
    return Instruction(Opcode.LOAD, wait, signal, args)


def store(c=0, host=0, rows=1, seg=1, stride=0, fmt=0, wait=0, signal=0) -> Instruction:
    args = dict(c_addr=c, host_addr=host, rows=rows, seg=seg, stride=stride, format=fmt)
    return Instruction(Opcode.STORE, wait, signal, args)


def exec_(mt=1, nt=1, kt=4, mb=1, wait=0, signal=0, **more) -> Instruction:
    return Instruction(Opcode.EXEC, wait, signal, dict(mt=mt, nt=nt, kt=kt, mb=mb, **more))


def run(program, name="int8_os_8x8", memory=MEM, **system):
    config, g = geom(name, **system)
    return simulate_timing(config, g, program, memory)


def test_memory_timing_is_validated():
    assert MemoryTiming() == MemoryTiming(8, 8)
    for kwargs in ({"read_latency": 1}, {"write_latency": 0}, {"read_latency": True}, {"write_latency": 2.5}):
        with pytest.raises(ConfigError, match="memory\\."):
            MemoryTiming(**kwargs)


def test_one_load():
    # A rows of 8 bytes at a 16-byte pitch: 4 rows = 4 beats, one burst. Dispatched in 0,
    # visible and started in 1, AR in 2, R beats in 10..13: last busy cycle 13.
    t = run([load(rows=1, seg=4)])
    assert (t.dispatch[0], t.start[0], t.end[0]) == (0, 1, 13)
    assert t.cycles == 14
    assert t.busy == {"LOAD": 13, "EXEC": 0, "STORE": 0}


def test_load_split_at_4k():
    # 64 bytes from 4064: 2 beats before the 4 KiB boundary, 2 after -> 2 bursts.
    t = run([load(host=4064, rows=1, seg=4)])
    assert t.end[0] - t.start[0] + 1 == 1 + 2 * 8 + 4
    # three segments one page apart: three bursts; Q rows (64-byte pitch, 4 beats each)
    t = run([load(target=2, host=0, rows=3, seg=1, stride=4096)])
    assert t.end[0] - t.start[0] + 1 == 1 + 3 * 8 + 3 * 4


def test_load_split_at_256_beats():
    # 4-byte AXI: a burst holds at most 256 beats = 1024 bytes. 300 A rows of 8 bytes (pitch 8,
    # 2 beats each) = 600 beats = 2400 bytes.
    t = run([load(host=0, rows=1, seg=300)], axi_bytes=4)
    assert t.end[0] - t.start[0] + 1 == 1 + 3 * 8 + 600  # 1024 + 1024 + 352 bytes
    # from 3840: 256 bytes to the page end, then 2144 bytes = 1024 + 1024 + 96: 4 bursts
    t = run([load(host=3840, rows=1, seg=300)], axi_bytes=4)
    assert t.end[0] - t.start[0] + 1 == 1 + 4 * 8 + 600


def test_burst_counts():
    assert segment_bursts(0, 4096, 16) == 1
    assert segment_bursts(4080, 32, 16) == 2
    assert segment_bursts(3840, 2400, 4) == 4
    assert segment_bursts(0, 8192 + 16, 64) == 3
    # periodic shortcut == direct count over every segment
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = int(rng.choice([4, 8, 16, 32, 64]))
        pitch = d << int(rng.integers(0, 4))
        host = pitch * int(rng.integers(0, 1000))
        stride = pitch * int(rng.integers(0, 700))
        rows, seg = int(rng.integers(1, 40)), int(rng.integers(1, 30))
        direct = sum(segment_bursts(host + s * stride, seg * pitch, d) for s in range(rows))
        assert transfer_bursts(host, stride, rows, seg * pitch, d) == direct


def test_one_store():
    # raw int8_os accumulator rows: 8 x 32 bits = 32 bytes, r_o = 2 beats. AW in t+1 = 2;
    # rows read in 2, 6, 10, W beats 4-5, 8-9, 12-13; B in 13 + 8 = 21.
    t = run([store(rows=1, seg=3)])
    assert (t.start[0], t.end[0]) == (1, 21)
    # int8 output: 8 bytes at a 16-byte pitch, r_o = 1: 3 cycles a row
    t = run([store(rows=1, seg=3, fmt=1)])
    assert t.end[0] == 1 + 3 * 3 + 8
    # two segments 4 KiB apart: two bursts, the second AW the cycle after the first B
    t = run([store(rows=2, seg=1, stride=4096)], memory=MemoryTiming(8, 5))
    assert t.end[0] - t.start[0] + 1 == 1 + 2 * (4 + 5)


def test_semaphores_and_exec():
    # OS EXEC 1x1 tile of 4 beats on 8x8: T = 4 + 2*8 + 8 - 1 = 27, dur x = F + T + 1
    x = F + 28
    prog = [
        load(rows=1, seg=4, signal=E),  # 0: start 1, end 13
        load(target=1, rows=1, seg=4, signal=E),  # 1: dispatched 1, starts 14, end 26
        exec_(wait=L, signal=S | L),  # 2: dispatched 2; first token (cmd 0, end 13) -> 14
        exec_(wait=L, signal=S),  # 3: second token (cmd 1, end 26) -> 27, but EXEC is busy
        store(rows=1, seg=1, wait=E),  # 4: token of cmd 2; dur 1 + 4 + 8 = 13
        load(rows=1, seg=4, wait=E),  # 5: waits on cmd 2's L token
    ]
    t = run(prog)
    assert list(t.dispatch) == [0, 1, 2, 3, 4, 5]
    assert list(t.start) == [1, 14, 14, 14 + x, 14 + x, 14 + x]
    assert list(t.end) == [13, 26, 13 + x, 13 + 2 * x, 26 + x, 26 + x]
    assert t.cycles == 14 + 2 * x
    assert t.busy == {"LOAD": 39, "EXEC": 2 * x, "STORE": 13}


def test_queue_full_blocks_dispatch():
    # queue depth 2 (the minimum): the fourth LOAD is accepted the cycle after the second one left
    # the queue (popped in 14 -> level 1 in 15); the STORE's queue is empty, so it follows at once
    prog = [load(rows=1, seg=4)] * 4 + [store()]
    t = run(prog, queue_depth=2)
    assert list(t.dispatch) == [0, 1, 2, 15, 16]
    assert list(t.start) == [1, 14, 27, 40, 17]
    assert list(t.end) == [13, 26, 39, 52, 29]
    assert t.cycles == 53
    # an invalid command queues nothing: it is accepted (and stops the dispatcher) at once, even
    # when its queue is full
    t = run([load(rows=1, seg=4)] * 3 + [load(sp=2047, rows=1, seg=4)], queue_depth=2)
    assert list(t.dispatch) == [0, 1, 2, 3]
    assert (t.error_code, t.error_index, t.cycles) == (ErrorCode.OUT_OF_RANGE, 3, 40)


def test_error_stops_dispatch():
    bad = Instruction(7)
    prog = [load(rows=1, seg=4), store(), bad, load()]
    t = run(prog)
    assert (t.error_code, t.error_index) == (ErrorCode.BAD_OPCODE, 2)
    assert list(t.dispatch) == [0, 1, 2, -1]
    assert list(t.start) == [1, 2, -1, -1]
    assert t.cycles == 15
    # an out-of-range LOAD as the very first command: nothing runs, the run ends in cycle 0
    t = run([load(sp=4000, rows=1, seg=100)])
    assert (t.error_code, t.error_index, t.cycles) == (ErrorCode.OUT_OF_RANGE, 0, 0)


def test_deadlocking_program_is_rejected():
    with pytest.raises(TpegenError, match="command 0: waits for a token from LOAD"):
        run([exec_(wait=L)])


def _os_total(rows, cols, tiles, kt):
    return os_timeline(rows, cols, np.full(tiles, kt)).total


def test_exec_array_cycles_match_array_models():
    rng = np.random.default_rng(3)
    _, os8 = geom("int8_os_8x8")
    _, ws8 = geom("int8_ws_8x8")
    config, lut = geom("lut_w2a8")
    for _ in range(100):
        mt, nt, kt, mb = (int(x) for x in rng.integers(1, 20, 4))
        f = dict(mt=mt, nt=nt, kt=kt, mb=1)
        assert array_cycles(os8, f) == _os_total(8, 8, mt * nt, kt)
        f = dict(mt=1, nt=nt, kt=kt, mb=mb)
        assert array_cycles(ws8, f) == ws_timeline(8, 8, np.full(nt * kt, mb)).total
        f = dict(mt=mt, nt=nt, kt=kt, mb=1)
        p = config.pe
        m, k, n = mt * p.tile_m, kt * p.k_tile, nt * p.tile_n
        assert array_cycles(lut, f) == lut_gemm_cycles(p, m, k, n)


def test_ten_thousand_commands_in_well_under_a_second():
    rng = np.random.default_rng(5)
    prog = []
    for i in range(2500):
        host = 16 * int(rng.integers(0, 1 << 16))
        prog.append(load(target=i % 2, host=host, rows=int(rng.integers(1, 8)), seg=8, stride=4096, signal=E))
        prog.append(load(target=(i + 1) % 2, host=host, rows=1, seg=16))
        prog.append(exec_(mt=1, nt=2, kt=8, wait=L, signal=S))
        prog.append(store(host=32 * i, rows=1, seg=8, wait=E))
    t0 = time.perf_counter()
    t = run(prog)
    elapsed = time.perf_counter() - t0
    assert not t.error and (t.end >= t.start).all() and t.cycles > 0
    assert elapsed < 1.0, elapsed  # about 0.2 s on an idle core
