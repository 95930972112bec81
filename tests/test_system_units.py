# amaranth: UnusedElaboratable=no
"""Accelerator-top units in Amaranth's Python simulator: the dispatcher's command check against
``isa.check_instruction``, queues/semaphores/scheduler against an independent cycle model of the
spec, the load and store units against Python AXI slaves (cycle-exact durations, memory rows and
host bytes), the output stage against :mod:`tpegen.sim.requant`, and the whole top elaborated."""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np
import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from tpegen.config import load_config
from tpegen.hw.system import isa
from tpegen.hw.system.dispatch import CommandChecker, Dispatcher, command_bits, unit_signature
from tpegen.hw.system.isa import ErrorCode, Format, Instruction, Opcode, Target, Unit
from tpegen.hw.system.load import LoadUnit
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.hw.system.requant import OutputStage
from tpegen.hw.system.store import StoreUnit
from tpegen.hw.system.top import AcceleratorTop
from tpegen.sim.requant import fp32_bits_to_bf16_bits, pack_qparams, requantize, unpack_qparams

SYSTEM_CONFIGS = ("int8_os_8x8", "int8_ws_8x8", "lut_w2a8", "bf16_exact", "int8_os_16x16")


def geometry(name: str, **system) -> SystemGeometry:
    return SystemGeometry.of(load_config(name), SystemParams(**system) if system else None)


def run_sim(dut, testbench, *, clocked: bool = True) -> None:
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


# ---------------------------------------------------------------------------------------------
# command check
# ---------------------------------------------------------------------------------------------


def _check_code(ins: Instruction, geom: SystemGeometry) -> int:
    try:
        isa.check_instruction(ins, geom, 0)
    except isa.ProgramError as exc:
        return int(exc.code)
    return 0


def _fit(value: int, bits: int) -> int:
    return min(max(value, 0), (1 << bits) - 1)


def _valid_command(rng: np.random.Generator, op: Opcode, g: SystemGeometry) -> dict[str, int]:
    """Fields of a command that passes every check (counts small, addresses inside the memories)."""
    small = lambda hi=4: int(rng.integers(1, hi + 1))  # noqa: E731
    if op is Opcode.LOAD:
        target = int(rng.integers(0, 3))
        name = Target(target).name
        rows = small(min(4, g.depth(name)))
        seg = small(min(4, g.depth(name) // rows))
        pitch = g.load_pitch(name)
        return {
            "target": target,
            "sp_addr": int(rng.integers(0, g.depth(name) - rows * seg + 1)),
            "host_addr": pitch * int(rng.integers(0, (1 << 32) // pitch)),
            "rows": rows,
            "seg": seg,
            "stride": pitch * int(rng.integers(0, (1 << 24) // pitch)),
        }
    if op is Opcode.EXEC:
        f = {"mt": small(2), "nt": small(3), "kt": small(4), "mb": small(4), "acc": int(rng.integers(0, 2))}
        if g.kind == "ws":
            f["mt"] = 1
        else:
            f["mb"] = 1
        if g.fp:
            f["acc"] = 0
        f["c_stride"] = int(rng.integers(0, g.acc_depth // (4 * f["nt"]) + 1))
        ends = g.exec_footprint(f | {"a_addr": 0, "w_addr": 0, "c_addr": 0})
        for key, end, mem in zip(("a_addr", "w_addr", "c_addr"), ends, "AWC", strict=True):
            f[key] = int(rng.integers(0, g.depth(mem) - end + 1))
        return f
    fmt = str(rng.choice(g.output_formats()))
    rows, seg = small(min(4, g.q_depth) if fmt == "int8" else 4), small()
    pitch = g.store_pitch(fmt)
    per_row = int(rng.integers(0, 2))
    q_limit = g.q_depth * g.acc_lanes - seg if per_row else g.q_depth - rows
    return {
        "c_addr": int(rng.integers(0, g.acc_depth - rows * seg + 1)),
        "host_addr": pitch * int(rng.integers(0, (1 << 32) // pitch)),
        "rows": rows,
        "seg": seg,
        "stride": pitch * int(rng.integers(0, (1 << 24) // pitch)),
        "format": int(Format[fmt.upper()]),
        "relu": int(rng.integers(0, 2)),
        "per_row": per_row,
        "q_addr": int(rng.integers(0, max(q_limit, 0) + 1)),
    }


def _perturb(rng: np.random.Generator, op: Opcode, f: dict[str, int], g: SystemGeometry) -> dict[str, int]:
    """Break zero, one or two fields: a boundary value, zero, all ones, off by one or random bits."""
    widths = {fld.name: fld.bits for fld in isa.FIELDS[op]}
    for _ in range(int(rng.integers(0, 3))):
        name = str(rng.choice(list(widths)))
        bits = widths[name]
        kind = int(rng.integers(0, 6))
        if kind == 0:
            f[name] = 0
        elif kind == 1:
            f[name] = (1 << bits) - 1
        elif kind == 2:
            f[name] = _fit(f[name] + int(rng.choice([-1, 1, 2])), bits)
        elif kind == 3:
            f[name] = int(rng.integers(0, 1 << bits, dtype=np.uint64))
        elif kind == 4 and name.endswith("addr") and name != "host_addr":  # push to the memory's end
            f[name] = _fit(f[name] + int(rng.integers(0, 3 * max(g.a_depth, g.acc_depth))), bits)
        else:  # small value (counts, formats, targets, flags)
            f[name] = _fit(int(rng.integers(0, 5)), bits)
    return f


def _boundary_command(rng: np.random.Generator, op: Opcode, g: SystemGeometry) -> dict[str, int]:
    """A valid command moved to end exactly at (delta 0) or one past (delta 1) a memory's end."""
    f = _valid_command(rng, op, g)
    delta = int(rng.integers(0, 2))
    if op is Opcode.LOAD:
        name = Target(f["target"]).name
        f["sp_addr"] = _fit(g.depth(name) - f["rows"] * f["seg"] + delta, 16)
    elif op is Opcode.EXEC:
        key = str(rng.choice(["a_addr", "w_addr", "c_addr"]))
        ends = g.exec_footprint(f | {key: 0})
        mem = {"a_addr": 0, "w_addr": 1, "c_addr": 2}[key]
        f[key] = _fit(g.depth("AWC"[mem]) - ends[mem] + delta, 16)
    else:
        if rng.integers(0, 2) or f["format"] != Format.INT8:
            f["c_addr"] = _fit(g.acc_depth - f["rows"] * f["seg"] + delta, 16)
        elif f["per_row"]:
            f["q_addr"] = _fit(g.q_depth * g.acc_lanes - f["seg"] + delta, 10)
        else:
            f["q_addr"] = _fit(g.q_depth - f["rows"] + delta, 10)
    return f


def _random_commands(rng: np.random.Generator, g: SystemGeometry, n: int) -> list[int]:
    words = []
    for i in range(n):
        if i % 23 == 0:  # an unknown opcode with random bits
            op_bits = int(rng.choice([0, *range(4, 16)]))
            words.append(int(rng.integers(0, 1 << 62, dtype=np.uint64)) << 4 | op_bits)
            continue
        op = Opcode(int(rng.integers(1, 4)))
        f = _boundary_command(rng, op, g) if i % 3 == 0 else _perturb(rng, op, _valid_command(rng, op, g), g)
        own = 1 << isa.UNIT_OF[op]
        wait, signal = (int(rng.integers(0, 8)) & ~own for _ in range(2))
        if rng.random() < 0.05:
            wait |= own
        if rng.random() < 0.05:
            signal |= own
        word = Instruction(op, wait, signal, f).encode()
        if rng.random() < 0.3:  # padding bits above the fields are ignored
            word |= int(rng.integers(1, 1 << 20)) << command_bits(op) & ((1 << isa.WORD_BITS) - 1)
        words.append(word)
    return words


@pytest.mark.parametrize("name", SYSTEM_CONFIGS)
def test_command_check_matches_isa(name):
    """The RTL checker and isa.check_instruction agree on accept/reject and on the error code."""
    g = geometry(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    words = _random_commands(rng, g, 1500)
    dut = CommandChecker(g)
    got: list[int] = []

    async def tb(ctx):
        for word in words:
            ctx.set(dut.word, word)
            got.append(ctx.get(dut.code))

    run_sim(dut, tb, clocked=False)
    want = [_check_code(Instruction.decode(w), g) for w in words]
    mismatches = [
        (hex(w), Instruction.decode(w), a, b) for w, a, b in zip(words, got, want, strict=True) if a != b
    ]
    assert not mismatches, mismatches[:3]
    seen = {(w & 0xF, c) for w, c in zip(words, want, strict=True)}
    for op in Opcode:  # every rule family is exercised for every opcode
        for code in (ErrorCode.NONE, ErrorCode.BAD_FIELD, ErrorCode.OUT_OF_RANGE):
            assert (op, code) in seen, (op, code)
    assert (Opcode.LOAD, ErrorCode.MISALIGNED) in seen and (Opcode.STORE, ErrorCode.MISALIGNED) in seen
    assert any(c == ErrorCode.BAD_OPCODE for _, c in seen)


# ---------------------------------------------------------------------------------------------
# dispatcher: queues, semaphores, scheduler, status
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Cmd:
    word: int
    unit: Unit | None  # None: invalid
    wait: int
    signal: int
    dur: int


class _DispatchModel:
    """Independent cycle model of the spec's dispatcher and units (fake units of given durations)."""

    def __init__(self, depth: int):
        self.depth = depth
        self.queues = {u: deque() for u in Unit}  # entries: (_Cmd, visible_from)
        self.sem = {(s, d): 0 for s in Unit for d in Unit if s != d}
        self.busy_until = {u: -1 for u in Unit}  # last busy cycle of the running command
        self.signal = {u: 0 for u in Unit}
        self.error = (0, 0, 0)
        self.count = 0

    def step(self, c: int, cmd: _Cmd | None, code: int) -> dict:
        """Cycle c with ``cmd`` offered (None: no valid); returns what happens in the cycle."""
        out = {"ready": 0, "starts": {}, "dones": set()}
        err = self.error[0]
        if cmd is not None:
            full = cmd.unit is not None and len(self.queues[cmd.unit]) >= self.depth
            out["ready"] = int(not err and (code != 0 or not full))
        idle = {u: c > self.busy_until[u] for u in Unit}
        dones = {u for u in Unit if c == self.busy_until[u]}
        busy = (cmd is not None and out["ready"] and code == 0) or any(self.queues[u] for u in Unit)
        busy = busy or not all(idle.values())
        out["busy"] = int(bool(busy))
        inc, dec = [], []
        for u in Unit:
            q = self.queues[u]
            if idle[u] and q and q[0][1] <= c:
                head = q[0][0]
                if all(not head.wait >> s & 1 or self.sem[(s, u)] > 0 for s in Unit if s != u):
                    q.popleft()
                    out["starts"][u] = head
                    dec += [(s, u) for s in Unit if s != u and head.wait >> s & 1]
                    self.busy_until[u] = c + head.dur - 1
                    self.signal[u] = head.signal
        for u in dones:
            inc += [(u, d) for d in Unit if d != u and self.signal[u] >> d & 1]
        out["dones"] = dones
        for key in inc:
            self.sem[key] += 1
        for key in dec:
            self.sem[key] -= 1
        if out["ready"]:
            if code:
                self.error = (1, code, self.count)
            else:
                self.queues[cmd.unit].append((cmd, c + 1))
            self.count += 1
        return out


def _program(rng: np.random.Generator, g: SystemGeometry, n: int, bad_at: int | None) -> list[_Cmd]:
    """Valid commands with random durations and deadlock-free dependencies; one invalid at ``bad_at``."""
    tokens = {(s, d): 0 for s in Unit for d in Unit if s != d}
    prog = []
    dur_field = {Opcode.LOAD: "seg", Opcode.EXEC: "nt", Opcode.STORE: "seg"}
    for i in range(n):
        if i == bad_at:
            prog.append(_Cmd(Instruction(Opcode.EXEC, 0, 0, {}).encode(), None, 0, 0, 0))  # mt = 0
            continue
        op = Opcode(int(rng.integers(1, 4)))
        u = isa.UNIT_OF[op]
        wait = 0
        for s in Unit:
            if s != u and tokens[(s, u)] and rng.random() < 0.7:
                wait |= 1 << s
                tokens[(s, u)] -= 1
        signal = 0
        for d in Unit:
            if d != u and rng.random() < 0.5:
                signal |= 1 << d
                tokens[(u, d)] += 1
        f = _valid_command(rng, op, g)
        f[dur_field[op]] = int(rng.integers(2, 7))
        if op is Opcode.LOAD:
            f["target"] = Target.A
        f = _valid_command_fix(f, op, g)
        word = Instruction(op, wait, signal, f).encode()
        prog.append(_Cmd(word, u, wait, signal, f[dur_field[op]]))
    return prog


def _valid_command_fix(f: dict[str, int], op: Opcode, g: SystemGeometry) -> dict[str, int]:
    """Move addresses down so that a command with enlarged counts is still in range."""
    for key in ("sp_addr", "a_addr", "w_addr", "c_addr", "q_addr"):
        if key in f:
            f[key] = 0
    assert _check_code(Instruction(op, 0, 0, f), g) == 0
    return f


class _FakeUnit(wiring.Component):
    def __init__(self, op: Opcode):
        super().__init__(dict(unit_signature(op).members.items()))

    def elaborate(self, platform):
        return Module()


@pytest.mark.parametrize(("seed", "depth", "bad_at"), [(1, 2, None), (2, 5, None), (3, 4, 17), (4, 3, 0)])
def test_dispatcher_schedules_like_the_spec(seed, depth, bad_at):
    """Start and done cycles, cmd.ready, status and every semaphore, cycle by cycle, against an
    independent model; fake units take the given number of cycles per command."""
    g = geometry("int8_os_8x8", queue_depth=depth)
    rng = np.random.default_rng(seed)
    prog = _program(rng, g, 40, bad_at)
    dut = Dispatcher(g)
    model = _DispatchModel(depth)
    ports = {Unit.LOAD: dut.load, Unit.EXEC: dut.exec, Unit.STORE: dut.store}
    gaps = rng.random(400) < 0.15  # cycles in which the host offers nothing
    log = []

    async def tb(ctx):
        busy_until = {u: -1 for u in Unit}
        sent = 0
        for c in range(400):
            cmd = prog[sent] if sent < len(prog) and not gaps[c] else None
            ctx.set(dut.cmd.valid, cmd is not None)
            ctx.set(dut.cmd.payload, cmd.word if cmd else 0)
            for u, port in ports.items():
                ctx.set(port.idle, c > busy_until[u])
                ctx.set(port.done, c == busy_until[u])
            code = _check_code(Instruction.decode(cmd.word), g) if cmd else 0
            want = model.step(c, cmd, code)
            ready = ctx.get(dut.cmd.ready)
            status = ctx.get(dut.status)
            starts = {}
            for u, port in ports.items():
                if ctx.get(port.start):
                    starts[u] = ctx.get(port.command).as_bits()
            got = (int(ready) if cmd else 0, starts, status.busy)
            exp = (want["ready"], {u: h.word for u, h in want["starts"].items()}, want["busy"])
            log.append((c, got))
            assert got == exp, (c, got, exp)
            for u, h in want["starts"].items():
                busy_until[u] = c + h.dur - 1
            if cmd is not None and ready:
                sent += 1
            await ctx.tick()
            assert {k: ctx.get(s) for k, s in dut.tokens.items()} == model.sem, c
            status = ctx.get(dut.status)
            assert (status.error, status.error_code, status.error_index) == model.error, c

    run_sim(dut, tb)
    n_starts = sum(len(e[1][1]) for e in log)
    valid = [p for p in prog[: bad_at if bad_at is not None else len(prog)] if p.unit is not None]
    assert n_starts == len(valid)  # every command before the bad one ran, none after it
    assert not log[-1][1][2]  # idle at the end


# ---------------------------------------------------------------------------------------------
# load unit: AXI read bursts, row assembly, cycle-exact duration
# ---------------------------------------------------------------------------------------------

HOST_BYTES = 1 << 16


def _int8_os(rows: int, cols: int):
    from tpegen.config import config_from_dict

    return config_from_dict(
        {
            "name": f"int8_os_{rows}x{cols}",
            "pe": {"type": "mac", "act_bits": 8, "weight_bits": 8, "acc_bits": 32, "dataflow": "os"},
            "array": {"rows": rows, "cols": cols},
        }
    )


def _bursts(start: int, nbytes: int, D: int, unit: int) -> list[tuple[int, int]]:
    """(address, beats) of the bursts of one segment: <= 256 beats, no 4 KiB crossing, whole
    ``unit``-byte pieces (a beat for LOAD, a row for STORE)."""
    out, addr, left = [], start, nbytes
    while left:
        n = min(256 * D, left, 4096 - addr % 4096)
        n -= n % unit
        out.append((addr, n // D))
        addr, left = addr + n, left - n
    return out


def _row_value(host: np.ndarray, addr: int, bits: int) -> int:
    nbytes = -(-bits // 8)
    return int.from_bytes(host[addr : addr + nbytes].tobytes(), "little") & ((1 << bits) - 1)


def _run_load(g: SystemGeometry, f: dict[str, int], lr: int, seed: int):
    """Play one LOAD on the unit with a Python AXI read slave (AR always ready, first R beat Lr
    cycles after AR, then one beat per cycle) and check AR, idle/done and every memory write."""
    rng = np.random.default_rng(seed)
    host = rng.integers(0, 256, HOST_BYTES, dtype=np.uint8)
    D = g.axi_bytes
    name = Target(f["target"]).name
    P = g.load_pitch(name)
    bursts = [
        b for s in range(f["rows"]) for b in _bursts(f["host_addr"] + s * f["stride"], f["seg"] * P, D, D)
    ]
    ar_cycles = [1]
    for _, n in bursts[:-1]:
        ar_cycles.append(ar_cycles[-1] + lr + n)
    end = sum(lr + n for _, n in bursts)  # completion cycle e (start in cycle 0)
    beat_cycles = [a + lr + k for a, (_, n) in zip(ar_cycles, bursts, strict=True) for k in range(n)]
    expected = {}  # row -> (cycle, value)
    r = P // D
    for s in range(f["rows"]):
        for i in range(f["seg"]):
            j = s * f["seg"] + i
            addr = f["host_addr"] + s * f["stride"] + i * P
            expected[f["sp_addr"] + j] = (
                beat_cycles[(j + 1) * r - 1],
                _row_value(host, addr, g.row_bits(name)),
            )

    dut = LoadUnit(g)
    word = Instruction(Opcode.LOAD, 0, 0, f).encode()
    seen_ar, writes, dones, idles = [], {}, [], []

    async def tb(ctx):
        beats = deque()  # (cycle, address) of scheduled R beats
        ctx.set(dut.axi.arready, 1)
        for c in range(end + 3):
            ctx.set(dut.start, c == 0)
            ctx.set(dut.command.as_value(), word if c == 0 else 0)
            if beats and beats[0][0] == c:
                _, addr = beats.popleft()
                ctx.set(dut.axi.rvalid, 1)
                ctx.set(dut.axi.rdata, _row_value(host, addr, 8 * D))
                ctx.set(dut.axi.rlast, not beats or beats[0][0] != c + 1)
            else:
                ctx.set(dut.axi.rvalid, 0)
            assert ctx.get(dut.axi.rready)
            idles.append(ctx.get(dut.idle))
            if ctx.get(dut.done):
                dones.append(c)
            if ctx.get(dut.axi.arvalid):
                addr, n = ctx.get(dut.axi.araddr), ctx.get(dut.axi.arlen) + 1
                assert (ctx.get(dut.axi.arsize), ctx.get(dut.axi.arburst), ctx.get(dut.axi.arid)) == (
                    D.bit_length() - 1,
                    1,
                    0,
                )
                seen_ar.append((c, addr, n))
                beats.extend((c + lr + k, addr + k * D) for k in range(n))
            enables = [ctx.get(getattr(dut, f"{t.lower()}_wen")) for t in "AWQ"]
            assert sum(enables) <= 1 and not any(e for t, e in zip("AWQ", enables, strict=True) if t != name)
            if enables[f["target"]]:
                row = ctx.get(dut.waddr)
                assert row not in writes, f"row {row} written twice"
                writes[row] = (c, ctx.get(getattr(dut, f"{name.lower()}_wdata")))
            await ctx.tick()

    run_sim(dut, tb)
    assert seen_ar == [(c, a, n) for c, (a, n) in zip(ar_cycles, bursts, strict=True)]
    assert dones == [end]
    assert idles == [1] + [0] * end + [1, 1]
    assert writes == expected
    return bursts


def test_load_unit_tolerates_arready_stalls_and_r_gaps():
    """AR refused and R beats spaced at random (legal AXI, outside the timing contract): the same
    bursts and the same rows, each written once."""
    g = geometry("lut_w2a8")
    f = dict(target=Target.W, sp_addr=3, host_addr=0xF80, rows=2, seg=3, stride=0x1100)
    rng = np.random.default_rng(9)
    host = rng.integers(0, 256, HOST_BYTES, dtype=np.uint8)
    D, P, bits = g.axi_bytes, g.load_pitch("W"), g.row_bits("W")
    bursts = [b for s in range(2) for b in _bursts(f["host_addr"] + s * f["stride"], f["seg"] * P, D, D)]
    dut = LoadUnit(g)
    word = Instruction(Opcode.LOAD, 0, 0, f).encode()
    ars, writes, dones = [], {}, []
    ready = rng.random((2, 3000)) < 0.5

    async def tb(ctx):
        pending = deque()  # addresses of beats the slave still owes
        for c in range(3000):
            ctx.set(dut.start, c == 0)
            ctx.set(dut.command.as_value(), word if c == 0 else 0)
            ctx.set(dut.axi.arready, int(ready[0, c]))
            beat = bool(pending) and bool(ready[1, c])
            ctx.set(dut.axi.rvalid, beat)
            if beat:
                ctx.set(dut.axi.rdata, _row_value(host, pending[0], 8 * D))
            if ctx.get(dut.done):
                dones.append(c)
            if ctx.get(dut.axi.arvalid) and ready[0, c]:
                assert not pending, "AR before the previous burst's last beat"
                addr, n = ctx.get(dut.axi.araddr), ctx.get(dut.axi.arlen) + 1
                ars.append((addr, n))
                pending.extend(addr + k * D for k in range(n))
            if beat:
                pending.popleft()
            if ctx.get(dut.w_wen):
                assert ctx.get(dut.waddr) not in writes
                writes[ctx.get(dut.waddr)] = ctx.get(dut.w_wdata)
            await ctx.tick()
            if dones and c > dones[0] + 2:
                break

    run_sim(dut, tb)
    assert ars == bursts and len(dones) == 1
    want = {
        f["sp_addr"] + s * f["seg"] + i: _row_value(host, f["host_addr"] + s * f["stride"] + i * P, bits)
        for s in range(2)
        for i in range(f["seg"])
    }
    assert writes == want


LOAD_CASES = [
    # (config, system, target, rows, seg, host_addr in pitches, stride in pitches, Lr)
    ("int8_os_8x8", {}, Target.A, 2, 3, 1, 5, 1),  # one beat per row
    ("int8_os_8x8", {}, Target.Q, 1, 3, 62, 0, 3),  # Q rows: 4 beats, across a 4 KiB boundary
    ("int8_os_8x8", {"axi_bytes": 4}, Target.W, 1, 300, 0, 0, 2),  # 600 beats: 256 + 256 + 88
    ("lut_w2a8", {}, Target.W, 3, 5, 30, 33, 2),  # 8 beats per row, page crossings
    ("lut_w2a8", {"axi_bytes": 64}, Target.A, 2, 4, 63, 70, 4),  # a row is half a beat
    ("lut_w2a8", {"axi_bytes": 64}, Target.Q, 1, 2, 3, 0, 1),  # 16 beats per Q row
    ("nine", {"axi_bytes": 4}, Target.A, 2, 5, 255, 300, 2),  # 9-byte rows: 3 data beats + 1 padding
    ("nine", {"axi_bytes": 4}, Target.Q, 1, 2, 31, 0, 5),  # 72-byte Q rows: 18 data + 14 padding
]


@pytest.mark.parametrize("case", LOAD_CASES, ids=lambda c: f"{c[0]}-{c[2].name}-{c[3]}x{c[4]}")
def test_load_unit_bursts_rows_and_duration(case):
    name, system, target, rows, seg, addr_p, stride_p, lr = case
    config = _int8_os(9, 9) if name == "nine" else load_config(name)
    g = SystemGeometry.of(config, SystemParams(**system))
    P = g.load_pitch(target.name)
    f = {
        "target": int(target),
        "sp_addr": g.depth(target.name) - rows * seg,
        "host_addr": addr_p * P,
        "rows": rows,
        "seg": seg,
        "stride": stride_p * P,
    }
    assert _check_code(Instruction(Opcode.LOAD, 0, 0, f), g) == 0
    assert f["host_addr"] + (rows - 1) * f["stride"] + seg * P <= HOST_BYTES
    _run_load(g, f, lr, seed=rows * 100 + seg)


# ---------------------------------------------------------------------------------------------
# output stage (combinational) against tpegen.sim.requant
# ---------------------------------------------------------------------------------------------

INT32 = (-(1 << 31), (1 << 31) - 1)


def _edge_int32(rng: np.random.Generator, n: int, edges: list[int]) -> np.ndarray:
    v = rng.integers(INT32[0], INT32[1] + 1, n, dtype=np.int64)
    small = rng.integers(-5000, 5000, n)
    pick = rng.random(n)
    v = np.where(pick < 0.25, small, v)
    return np.where(pick > 0.85, rng.choice(edges, n), v)


def _random_qparams(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = _edge_int32(rng, n, [INT32[0], INT32[1], 0, 1, -1, 1 << 30, -(1 << 30)])
    shifts = rng.integers(0, 64, n)
    shifts = np.where(rng.random(n) < 0.5, rng.choice([0, 1, 15, 30, 31, 32, 33, 34, 62, 63], n), shifts)
    zp = rng.integers(-128, 128, n)
    return m, shifts, zp


def _lanes_to_int(lanes: np.ndarray, bits: int) -> int:
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (i * bits) for i, v in enumerate(lanes))


def _int_to_lanes(value: int, bits: int, n: int, signed: bool) -> np.ndarray:
    lanes = [(value >> (i * bits)) & ((1 << bits) - 1) for i in range(n)]
    if signed:
        lanes = [v - (1 << bits) if v >> (bits - 1) else v for v in lanes]
    return np.array(lanes, dtype=np.int64)


def test_output_stage_int8_matches_reference():
    """Per-lane and per-row int8 requantization (every edge of SRDHM, the 64-bit shift, relu)."""
    g = geometry("int8_os_8x8")
    L = g.acc_lanes
    rng = np.random.default_rng(7)
    n = 400
    acc = _edge_int32(rng, n * L, [INT32[0], INT32[1], 0, -1, 1, -(1 << 30)]).reshape(n, L)
    m, s, zp = (x.reshape(n, L) for x in _random_qparams(rng, n * L))
    relu = rng.integers(0, 2, n)
    per_row = rng.integers(0, 2, n)
    # exact ties of both rounding steps: x * 2^30 / 2^31 = x / 2 for odd x; then odd * 2^(s-1) / 2^s
    odd = np.array([-1, 1, -3, 3, -5, 5, -7, 7] * L)[:L]
    for i, (x, mult, shift) in enumerate([(odd, 1 << 30, 0), (odd, -(1 << 30), 0), (odd * 8, 1 << 30, 3)]):
        acc[i], m[i], s[i], zp[i], relu[i], per_row[i] = x, mult, shift, 0, 0, 0
    entry = rng.integers(0, L, n)
    dut = OutputStage(g)
    got = []

    async def tb(ctx):
        for i in range(n):
            ctx.set(dut.acc_row, _lanes_to_int(acc[i], 32))
            ctx.set(dut.q_row, _lanes_to_int(pack_qparams(m[i], s[i], zp[i]).astype(np.int64), 64))
            ctx.set(dut.format, Format.INT8)
            ctx.set(dut.relu, int(relu[i]))
            ctx.set(dut.per_row, int(per_row[i]))
            ctx.set(dut.q_entry, int(entry[i]))
            got.append(_int_to_lanes(ctx.get(dut.out), 8, L, signed=True))

    run_sim(dut, tb, clocked=False)
    for i in range(n):
        idx = np.full(L, entry[i]) if per_row[i] else np.arange(L)
        want = requantize(acc[i], m[i][idx], s[i][idx], zp[i][idx], relu=bool(relu[i]))
        assert np.array_equal(got[i], want), (i, acc[i], m[i][idx], s[i][idx], zp[i][idx], relu[i])


def _special_fp32(rng: np.random.Generator, n: int) -> np.ndarray:
    bits = rng.integers(0, 1 << 32, n, dtype=np.int64)
    specials = np.array(
        [0, 1 << 31, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFF800001, 0x7F7FFFFF, 0xFF7FFFFF]
        + [0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x00008000, 0x00018000, 0x7F7F8000],
        dtype=np.int64,
    )
    return np.where(rng.random(n) < 0.3, rng.choice(specials, n), bits)


@pytest.mark.parametrize("acc", ["fp32", "bf16", "fp16"])
def test_output_stage_bf16_matches_reference(acc):
    """fp32 -> bf16 RNE (ties, overflow, NaN quieting); narrower accumulators are widened exactly."""
    g = geometry("bf16_exact")
    L = g.acc_lanes
    fmt, bits = {"fp32": ((8, 23), 32), "bf16": ((8, 7), 16), "fp16": ((5, 10), 16)}[acc]
    g = dataclasses.replace(g, acc_lane_bits=bits)
    rng = np.random.default_rng(3)
    n = 150
    lanes = _special_fp32(rng, n * L).reshape(n, L)
    if acc == "bf16":
        lanes = lanes >> 16
        fp32 = lanes << 16
    elif acc == "fp16":
        lanes = lanes & 0xFFFF
        lanes[:, 0] = [0x0001, 0x03FF, 0x0200, 0x7C00, 0xFC00, 0x7E01, 0x8001, 0x7BFF] * (n // 8) + [0] * (
            n % 8
        )
        as_f32 = lanes.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32).astype(np.int64)
        nan = (lanes & 0x7C00) == 0x7C00
        nan &= (lanes & 0x3FF) != 0
        fp32 = np.where(nan, ((lanes & 0x8000) << 16) | 0x7F800000 | ((lanes & 0x3FF) << 13), as_f32)
    else:
        fp32 = lanes
    dut = OutputStage(g, fmt)
    got = []

    async def tb(ctx):
        for i in range(n):
            ctx.set(dut.acc_row, _lanes_to_int(lanes[i], bits))
            ctx.set(dut.format, Format.BF16)
            got.append(_int_to_lanes(ctx.get(dut.out), 16, L, signed=False))
            ctx.set(dut.format, Format.RAW)
            assert ctx.get(dut.out) == _lanes_to_int(lanes[i], bits)

    run_sim(dut, tb, clocked=False)
    assert np.array_equal(np.array(got), fp32_bits_to_bf16_bits(fp32))


# ---------------------------------------------------------------------------------------------
# store unit: accumulator -> output stage -> AXI write bursts, cycle-exact duration
# ---------------------------------------------------------------------------------------------


class _StoreHarness(wiring.Component):
    """Store unit with real C and Q memories (synchronous read ports) initialised from lists."""

    def __init__(self, g: SystemGeometry, c_rows: list[int], q_rows: list[int], fp_format=None):
        self.g = g
        self.unit = StoreUnit(g, fp_format)
        self.c_rows, self.q_rows = c_rows, q_rows
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        g = self.g
        m.submodules.unit = unit = self.unit
        m.submodules.c = c = Memory(shape=unsigned(g.acc_row_bits), depth=g.acc_depth, init=self.c_rows)
        m.submodules.q = q = Memory(shape=unsigned(g.q_row_bits), depth=g.q_depth, init=self.q_rows)
        rc, rq = c.read_port(), q.read_port()
        m.d.comb += [
            rc.addr.eq(unit.c_raddr),
            rc.en.eq(unit.c_ren),
            unit.c_rdata.eq(rc.data),
            rq.addr.eq(unit.q_raddr),
            rq.en.eq(unit.q_ren),
            unit.q_rdata.eq(rq.data),
        ]
        return m


def _expected_store_rows(g, f, c_lanes, q_entries) -> dict[int, bytes]:
    """Host address -> bytes of every output row (numpy references, zero padding to the pitch)."""
    fmt = Format(f["format"]).name.lower()
    P = g.store_pitch(fmt)
    L = g.acc_lanes
    m, s, zp = unpack_qparams(q_entries)  # (q_depth, L)
    out = {}
    for seg_i in range(f["rows"]):
        for i in range(f["seg"]):
            lanes = c_lanes[f["c_addr"] + seg_i * f["seg"] + i]
            if fmt == "raw":
                value = _lanes_to_int(lanes, g.acc_lane_bits)
            elif fmt == "bf16":  # fp32 lanes, or bf16 lanes widened exactly
                fp32 = lanes if g.acc_lane_bits == 32 else lanes << 16
                value = _lanes_to_int(fp32_bits_to_bf16_bits(fp32), 16)
            else:
                if f["per_row"]:
                    ch = f["q_addr"] + i
                    row, idx = np.full(L, ch // L), np.full(L, ch % L)
                else:
                    row, idx = np.full(L, f["q_addr"] + seg_i), np.arange(L)
                q = requantize(lanes, m[row, idx], s[row, idx], zp[row, idx], relu=bool(f["relu"]))
                value = _lanes_to_int(q, 8)
            out[f["host_addr"] + seg_i * f["stride"] + i * P] = value.to_bytes(P, "little")
    return out


def _run_store(g: SystemGeometry, f: dict[str, int], lb: int, seed: int, fp_format=None) -> None:
    rng = np.random.default_rng(seed)
    L, bits = g.acc_lanes, g.acc_lane_bits
    if fp_format:
        c_lanes = _special_fp32(rng, g.acc_depth * L).reshape(g.acc_depth, L) & ((1 << bits) - 1)
    else:
        c_lanes = _edge_int32(rng, g.acc_depth * L, [INT32[0], INT32[1], 0, -1]).reshape(g.acc_depth, L)
        c_lanes = _int_to_lanes(_lanes_to_int(c_lanes.ravel(), bits), bits, g.acc_depth * L, True).reshape(
            g.acc_depth, L
        )
    qm, qs, qz = (x.reshape(g.q_depth, L) for x in _random_qparams(rng, g.q_depth * L))
    q_entries = pack_qparams(qm, qs, qz)
    dut = _StoreHarness(
        g,
        [_lanes_to_int(row, bits) for row in c_lanes],
        [_lanes_to_int(row.astype(np.int64), 64) for row in q_entries],
        fp_format,
    )
    unit = dut.unit
    D = g.axi_bytes
    fmt = Format(f["format"]).name.lower()
    P = g.store_pitch(fmt)
    r = P // D
    bursts = [
        b for s in range(f["rows"]) for b in _bursts(f["host_addr"] + s * f["stride"], f["seg"] * P, D, P)
    ]
    aw_cycles, w_cycles, b_cycles = [], [], []
    x = 1
    for _, n in bursts:
        rows_b = n // r
        aw_cycles.append(x)
        w_cycles += [x + j * (r + 2) + 2 + k for j in range(rows_b) for k in range(r)]
        b_cycles.append(x + rows_b * (r + 2) - 1 + lb)
        x = b_cycles[-1] + 1
    end = b_cycles[-1]
    expected = _expected_store_rows(g, f, c_lanes, q_entries)
    word = Instruction(Opcode.STORE, 0, 0, f).encode()
    seen_aw, seen_w, dones, idles, written = [], [], [], [], {}

    async def tb(ctx):
        axi = unit.axi
        ctx.set(axi.awready, 1)
        ctx.set(axi.wready, 1)
        b_at, burst_addr, beat = None, None, 0
        for c in range(end + 3):
            ctx.set(unit.start, c == 0)
            ctx.set(unit.command.as_value(), word if c == 0 else 0)
            ctx.set(axi.bvalid, c == b_at)
            assert ctx.get(axi.bready)
            idles.append(ctx.get(unit.idle))
            if ctx.get(unit.done):
                dones.append(c)
            if ctx.get(axi.awvalid):
                assert b_at is None or c > b_at, "AW before the previous burst's B"
                burst_addr, beat = ctx.get(axi.awaddr), 0
                seen_aw.append((c, burst_addr, ctx.get(axi.awlen) + 1))
                assert (ctx.get(axi.awsize), ctx.get(axi.awburst), ctx.get(axi.awid)) == (
                    D.bit_length() - 1,
                    1,
                    0,
                )
            if ctx.get(axi.wvalid):
                assert ctx.get(axi.wstrb) == (1 << D) - 1
                last = ctx.get(axi.wlast)
                seen_w.append(c)
                data = ctx.get(axi.wdata).to_bytes(D, "little")
                for k in range(D):
                    written[burst_addr + beat * D + k] = data[k]
                beat += 1
                assert bool(last) == (beat == seen_aw[-1][2]), (c, beat)
                if last:
                    b_at = c + lb
            await ctx.tick()

    run_sim(dut, tb)
    assert seen_aw == [(c, a, n) for c, (a, n) in zip(aw_cycles, bursts, strict=True)]
    assert seen_w == w_cycles
    assert dones == [end]
    assert idles == [1] + [0] * end + [1, 1]
    want = {addr + k: b for addr, row in expected.items() for k, b in enumerate(row)}
    assert written == want


def test_store_unit_tolerates_awready_and_wready_stalls():
    """With AW and W refused at random (not the timing contract, but legal AXI), every burst and
    byte is still right, W may run ahead of AW, and the next AW waits for the previous B."""
    g = geometry("int8_os_8x8", axi_bytes=8)
    f = dict(
        c_addr=5,
        host_addr=0x0FC0,
        rows=2,
        seg=5,
        stride=0x400,
        format=Format.RAW,
        relu=0,
        per_row=0,
        q_addr=0,
    )
    rng = np.random.default_rng(5)
    L, bits, D = g.acc_lanes, g.acc_lane_bits, g.axi_bytes
    c_lanes = rng.integers(INT32[0], INT32[1] + 1, (g.acc_depth, L), dtype=np.int64)
    dut = _StoreHarness(g, [_lanes_to_int(row, bits) for row in c_lanes], [0] * g.q_depth)
    unit, axi = dut.unit, dut.unit.axi
    P = g.store_pitch("raw")
    bursts = [b for s in range(2) for b in _bursts(f["host_addr"] + s * f["stride"], f["seg"] * P, D, P)]
    word = Instruction(Opcode.STORE, 0, 0, f).encode()
    aws, beats, dones = [], [], []
    ready = rng.random((2, 2000)) < 0.6

    async def tb(ctx):
        b_at, aw_open, w_bursts = None, 0, 0
        for c in range(2000):
            ctx.set(unit.start, c == 0)
            ctx.set(unit.command.as_value(), word if c == 0 else 0)
            ctx.set(axi.awready, int(ready[0, c]))
            ctx.set(axi.wready, int(ready[1, c]))
            ctx.set(axi.bvalid, c == b_at)
            if ctx.get(unit.done):
                dones.append(c)
            if ctx.get(axi.awvalid) and ready[0, c]:
                assert b_at is None or c > b_at, "AW before the previous burst's B"
                aws.append((ctx.get(axi.awaddr), ctx.get(axi.awlen) + 1))
                aw_open = c
            if ctx.get(axi.wvalid) and ready[1, c]:
                beats.append((ctx.get(axi.wdata), ctx.get(axi.wlast)))
                if beats[-1][1]:
                    w_bursts += 1
            if w_bursts == len(aws) and w_bursts and (b_at is None or b_at < aw_open):
                b_at = c + 2  # B after both the AW and the last W of the burst
            await ctx.tick()
            if dones and c > dones[0] + 3:
                break

    run_sim(dut, tb)
    assert aws == bursts and len(dones) == 1
    assert [last for _, last in beats] == [k == n - 1 for _, n in bursts for k in range(n)]
    data = b"".join(d.to_bytes(D, "little") for d, _ in beats)
    want = _expected_store_rows(g, f, c_lanes, np.zeros((g.q_depth, L), np.uint64))
    got, pos = {}, 0
    for addr, n in aws:
        for k in range(n * D):
            got[addr + k] = data[pos + k]
        pos += n * D
    assert got == {a + k: b for a, row in want.items() for k, b in enumerate(row)}


STORE_CASES = [
    # (config, system, format, rows, seg, per_row, relu, host_addr in pitches, stride in pitches, q_addr, Lb)
    ("int8_os_8x8", {}, Format.INT8, 2, 3, 0, 0, 1, 5, 1, 1),
    ("int8_os_8x8", {}, Format.INT8, 3, 2, 1, 1, 255, 300, 13, 2),  # page crossing, channel per row
    ("int8_os_8x8", {}, Format.RAW, 2, 2, 0, 0, 126, 129, 0, 3),
    ("int8_os_8x8", {"axi_bytes": 4}, Format.RAW, 1, 40, 0, 0, 0, 0, 0, 2),  # 320 beats: 256 + 64
    ("int8_os_8x8", {"axi_bytes": 4}, Format.INT8, 2, 3, 0, 1, 510, 7, 2, 4),  # 2 beats per row
    ("nine", {}, Format.INT8, 2, 12, 1, 0, 3, 40, 20, 1),  # L = 9: channel // 9, % 9 across Q rows
    ("lut_w2a8", {}, Format.INT8, 2, 3, 1, 1, 30, 33, 120, 2),  # 128 lanes, 8 beats per row
    ("lut_w2a8", {}, Format.RAW, 1, 9, 0, 0, 6, 0, 0, 1),  # 32 beats per row, 8 rows per burst
    ("bf16_exact", {}, Format.BF16, 2, 3, 0, 0, 255, 2, 0, 2),
    ("bf16_exact", {"axi_bytes": 8}, Format.RAW, 1, 3, 0, 0, 1, 0, 0, 1),
    ("bf16_exact_bf16acc", {}, Format.BF16, 1, 4, 0, 0, 0, 0, 0, 3),
]


@pytest.mark.parametrize("case", STORE_CASES, ids=lambda c: f"{c[0]}-{c[2].name}-{c[3]}x{c[4]}-{c[1]}")
def test_store_unit_bursts_bytes_and_duration(case):
    name, system, fmt, rows, seg, per_row, relu, addr_p, stride_p, q_addr, lb = case
    config = _int8_os(9, 9) if name == "nine" else load_config(name)
    g = SystemGeometry.of(config, SystemParams(**system))
    P = g.store_pitch(fmt.name.lower())
    f = {
        "c_addr": g.acc_depth - rows * seg - 1,
        "host_addr": addr_p * P,
        "rows": rows,
        "seg": seg,
        "stride": stride_p * P,
        "format": int(fmt),
        "relu": relu,
        "per_row": per_row,
        "q_addr": q_addr,
    }
    assert _check_code(Instruction(Opcode.STORE, 0, 0, f), g) == 0
    assert f["host_addr"] + (rows - 1) * f["stride"] + seg * P <= HOST_BYTES
    fp_format = None
    if g.fp:
        acc = config.pe.fma.acc_fmt
        fp_format = (acc.exp_bits, acc.man_bits)
    _run_store(g, f, lb, seed=rows * 7 + seg, fp_format=fp_format)


# ---------------------------------------------------------------------------------------------
# the whole top
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYSTEM_CONFIGS)
def test_top_elaborates(name):
    from amaranth.hdl import Fragment

    top = AcceleratorTop(load_config(name))
    Fragment.get(top, None)
    assert set(top.signature.members) == {"cmd", "m_axi", "status"}
    assert top.m_axi.signature.data_bytes == top.geometry.axi_bytes


@pytest.mark.rtl
def test_top_verilog_lints_and_binds_cocotbext_axi_names():
    from amaranth.back import verilog
    from cocotbext.axi.axi_channels import AxiARBus, AxiAWBus, AxiBBus, AxiRBus, AxiWBus

    from tpegen.sim.verilator import verilator_lint

    text = verilog.convert(AcceleratorTop(load_config("int8_os_8x8")), name="accel_top")
    verilator_lint(text, "accel_top")
    header = text[text.index("module accel_top(") : text.index(");", text.index("module accel_top("))]
    ports = {p.strip().lstrip("\\") for p in header.split("(", 1)[1].split(",")}
    for bus in (AxiAWBus, AxiWBus, AxiBBus, AxiARBus, AxiRBus):  # AxiBus.from_prefix(dut, "m_axi_")
        for sig in bus._signals:
            assert f"m_axi__{sig}" in ports, sig
    assert {"cmd__payload", "cmd__valid", "cmd__ready", "status", "clk", "rst"} <= ports


def test_top_runs_a_program_cycle_exact():
    """LOAD Q, A, W; EXEC; STORE raw and int8 on the int8 8x8 OS top in the Python simulator, with
    a Python AXI slave (read latency Lr, write response latency Lb): host bytes against numpy and
    every completion cycle against the spec's duration formulas."""
    from tpegen.hw.system.execute import ExecuteUnit

    g = geometry("int8_os_8x8")
    R, C, D, lr, lb = g.rows, g.cols, g.axi_bytes, 3, 2
    rng = np.random.default_rng(11)
    host = np.zeros(HOST_BYTES, dtype=np.uint8)
    a_rows = rng.integers(-128, 128, (8, R))
    w_rows = rng.integers(-128, 128, (8, C))
    qm, qs, qz = _random_qparams(rng, C)
    qs = np.minimum(qs, 12)  # keep the int8 outputs away from all-clamped
    host[0x0000:0x0040] = np.frombuffer(pack_qparams(qm, qs, qz).tobytes(), np.uint8)
    host[0x1000:0x1080] = np.pad(a_rows.astype(np.int8).view(np.uint8), ((0, 0), (0, D - R))).ravel()
    host[0x2000:0x2080] = np.pad(w_rows.astype(np.int8).view(np.uint8), ((0, 0), (0, D - C))).ravel()
    E, S, L = 1 << Unit.EXEC, 1 << Unit.STORE, 1 << Unit.LOAD
    load = dict(sp_addr=0, rows=1, stride=0)
    store = dict(c_addr=0, rows=1, seg=R, stride=0, relu=0, per_row=0, q_addr=0)
    ex = dict(a_addr=0, w_addr=0, c_addr=0, c_stride=0, mt=1, nt=1, kt=8, mb=1, acc=0)
    program = [
        Instruction(Opcode.LOAD, 0, S, dict(load, target=Target.Q, host_addr=0x0000, seg=1)),
        Instruction(Opcode.LOAD, 0, 0, dict(load, target=Target.A, host_addr=0x1000, seg=8)),
        Instruction(Opcode.LOAD, 0, E, dict(load, target=Target.W, host_addr=0x2000, seg=8)),
        Instruction(Opcode.EXEC, L, S, ex),
        Instruction(Opcode.STORE, E, 0, dict(store, host_addr=0x3000, format=Format.RAW)),
        Instruction(Opcode.STORE, L, 0, dict(store, host_addr=0x4000, format=Format.INT8)),
    ]
    # completion cycles by the spec's formulas (one burst each; command i accepted in cycle i)
    r_q, r_raw, r_int8 = g.load_pitch("Q") // D, g.store_pitch("raw") // D, g.store_pitch("int8") // D
    e_q = 1 + lr + r_q
    e_a = e_q + lr + 8 + 1
    e_w = e_a + lr + 8 + 1
    e_x = e_w + 1 + ExecuteUnit.FEED_LATENCY + (8 + 2 * R + C - 1)
    # STORE of one burst started in t: AW in t + 1, last W in t + R (r + 2), B (= completion) Lb later
    e_raw = e_x + 1 + R * (r_raw + 2) + lb
    e_int8 = e_raw + 1 + R * (r_int8 + 2) + lb
    words = [ins.encode() for ins in program]
    top = AcceleratorTop(load_config("int8_os_8x8"))
    done_at = {}

    async def tb(ctx):
        axi = top.m_axi
        ctx.set(axi.arready, 1)
        ctx.set(axi.awready, 1)
        ctx.set(axi.wready, 1)
        r_beats, b_at, w_addr, sent = deque(), None, None, 0
        for c in range(e_int8 + 5):
            ctx.set(top.cmd.valid, sent < len(words))
            ctx.set(top.cmd.payload, words[sent] if sent < len(words) else 0)
            if r_beats and r_beats[0][0] == c:
                _, addr, last = r_beats.popleft()
                ctx.set(axi.rvalid, 1)
                ctx.set(axi.rdata, int.from_bytes(host[addr : addr + D].tobytes(), "little"))
                ctx.set(axi.rlast, last)
            else:
                ctx.set(axi.rvalid, 0)
            ctx.set(axi.bvalid, c == b_at)
            if sent < len(words) and ctx.get(top.cmd.ready):
                assert c == sent
                sent += 1
            if ctx.get(axi.arvalid):
                addr, n = ctx.get(axi.araddr), ctx.get(axi.arlen) + 1
                r_beats.extend((c + lr + k, addr + k * D, k == n - 1) for k in range(n))
            if ctx.get(axi.awvalid):
                w_addr = ctx.get(axi.awaddr)
            if ctx.get(axi.wvalid):
                host[w_addr : w_addr + D] = np.frombuffer(ctx.get(axi.wdata).to_bytes(D, "little"), np.uint8)
                w_addr += D
                if ctx.get(axi.wlast):
                    b_at = c + lb
            if c == b_at:
                done_at.setdefault("B", []).append(c)
            status = ctx.get(top.status)
            assert not status.error
            if not status.busy and c > 0:
                done_at["idle"] = c
                break
            await ctx.tick()

    run_sim(top, tb)
    assert done_at == {"B": [e_raw, e_int8], "idle": e_int8 + 1}
    c_ref = a_rows.T @ w_rows  # C[q, j] = sum_k A[k][q] W[k][j]
    raw = host[0x3000 : 0x3000 + R * 32].view(np.int32).reshape(R, C)
    assert np.array_equal(raw, c_ref)
    int8 = host[0x4000 : 0x4000 + R * 16].reshape(R, 16)[:, :C].view(np.int8)
    assert np.array_equal(int8, requantize(c_ref, qm, qs, qz))
    assert not np.all(np.isin(int8, (-128, 127)))


def test_top_rejects_output_rows_wider_than_a_burst():
    from tpegen.config import config_from_dict
    from tpegen.errors import ConfigError

    pe = {"type": "lut", "group_size": 4, "act_bits": 8, "weight_bits": 2, "ternary": False, "acc_bits": 32}
    config = config_from_dict({"pe": pe, "array": {"tile_m": 16, "tile_n": 128, "tile_k": 1}})
    with pytest.raises(ConfigError, match="raw STORE row fits one AXI burst"):
        AcceleratorTop(config)
