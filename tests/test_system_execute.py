"""Execute unit of the accelerator top (hw/system/execute.py) in Amaranth's Python simulator.

Real ``lib.memory`` scratchpads and accumulator (as the top wires them) around the unit; random
contents; EXEC commands back to back. The accumulator after the run is compared with a numpy model
of the spec's command semantics (integer GEMM of the tile operands with lane-wise wrap; FMA: the
bare array's golden chain on the tile operands; LUT: the integer GEMM of the weights the W rows
encode), and ``done`` must come exactly ``FEED_LATENCY + T`` cycles after ``start`` with T from
the stand-alone array timing models.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Elaboratable, Module, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator

from tpegen.config import config_from_dict
from tpegen.hw.system.execute import ExecuteUnit
from tpegen.hw.system.isa import Instruction, Opcode, check_instruction
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.sim import lut
from tpegen.sim.packing import pack_fields, unpack_lanes, wrap
from tpegen.sim.system_exec_timing import array_cycles, exec_cycles
from tpegen.sim.systolic_timing import os_timeline, ws_timeline

SMALL = SystemParams(scratchpad_a_kib=1, scratchpad_w_kib=1, accumulator_kib=1)


def mac(rows: int, cols: int, dataflow: str, acc_bits: int = 20):
    return config_from_dict(
        {
            "pe": {
                "type": "mac",
                "act_bits": 8,
                "weight_bits": 6,
                "acc_bits": acc_bits,
                "dataflow": dataflow,
            },
            "array": {"rows": rows, "cols": cols},
        }
    )


def fma(rows: int, cols: int):
    return config_from_dict(
        {
            "pe": {"type": "fma", "input_format": "bf16", "acc_format": "fp32"},
            "array": {"rows": rows, "cols": cols},
        }
    )


def lut_config(weight_bits: int = 2, acc_bits: int = 24):
    return config_from_dict(
        {
            "pe": {
                "type": "lut",
                "group_size": 2,
                "act_bits": 8,
                "weight_bits": weight_bits,
                "acc_bits": acc_bits,
            },
            "array": {"tile_m": 2, "tile_n": 3, "tile_k": 2},
        }
    )


# -- rows <-> lanes ------------------------------------------------------------------------------


def to_lanes(rows, width: int, lanes: int, *, signed: bool) -> np.ndarray:
    nbytes = -(-width * lanes // 8)
    payload = np.array([list(int(r).to_bytes(nbytes, "little")) for r in rows], dtype=np.uint8)
    return unpack_lanes(payload.reshape(len(rows), nbytes), width, lanes, signed=signed)


def to_rows(values: np.ndarray, width: int) -> list[int]:
    packed = pack_fields([(np.asarray(values, dtype=np.int64), width)])
    return [int.from_bytes(bytes(r), "little") for r in packed]


def random_rows(rng, bits: int, n: int) -> list[int]:
    return [int.from_bytes(rng.bytes(-(-bits // 8)), "little") & ((1 << bits) - 1) for _ in range(n)]


# -- harness -------------------------------------------------------------------------------------


class Harness(Elaboratable):
    """The execute unit with A, W and accumulator memories wired as the top wires them."""

    def __init__(self, cfg, geom: SystemGeometry, a_rows, w_rows, c_rows):
        self.unit = ExecuteUnit(cfg, geom)
        self.mem_a = memory.Memory(shape=unsigned(geom.a_row_bits), depth=geom.a_depth, init=a_rows)
        self.mem_w = memory.Memory(shape=unsigned(geom.w_row_bits), depth=geom.w_depth, init=w_rows)
        self.mem_c = memory.Memory(shape=unsigned(geom.acc_row_bits), depth=geom.acc_depth, init=c_rows)

    def elaborate(self, platform):
        m = Module()
        u = m.submodules.unit = self.unit
        m.submodules.mem_a, m.submodules.mem_w, m.submodules.mem_c = self.mem_a, self.mem_w, self.mem_c
        for mem, p in ((self.mem_a, "a"), (self.mem_w, "w")):
            rp = mem.read_port()
            m.d.comb += [
                rp.addr.eq(getattr(u, f"{p}_addr")),
                rp.en.eq(getattr(u, f"{p}_en")),
                getattr(u, f"{p}_data").eq(rp.data),
            ]
        wp = self.mem_c.write_port()
        rp = self.mem_c.read_port(transparent_for=(wp,))
        m.d.comb += [
            wp.addr.eq(u.c_waddr),
            wp.data.eq(u.c_wdata),
            wp.en.eq(u.c_wen),
            rp.addr.eq(u.c_raddr),
            rp.en.eq(u.c_ren),
            u.c_rdata.eq(rp.data),
        ]
        return m


def run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=None):
    """Run ``commands`` (EXEC field dicts); command n starts ``gaps[n]`` cycles after the unit is
    idle again (0: back to back). Returns the final accumulator rows and per command (t, e)."""
    gaps = gaps or [0] * len(commands)
    for n, f in enumerate(commands):
        check_instruction(Instruction(Opcode.EXEC, args=f), geom, n)
    dut = Harness(cfg, geom, a_rows, w_rows, c_rows)
    u = dut.unit
    log, final = [], []

    async def bench(ctx):
        cycle = 0
        for f, gap in zip(commands, gaps, strict=True):
            for _ in range(gap):
                await ctx.tick()
                cycle += 1
            assert ctx.get(u.idle) == 1
            ctx.set(u.command.as_value(), Instruction(Opcode.EXEC, args=f).encode())
            ctx.set(u.start, 1)
            t = cycle
            await ctx.tick()
            cycle += 1
            ctx.set(u.start, 0)
            limit = exec_cycles(geom, cfg, f) + 50
            while not ctx.get(u.done):
                assert ctx.get(u.idle) == 0, f"idle in cycle {cycle} before done"
                assert cycle - t < limit, "no done"
                await ctx.tick()
                cycle += 1
            e = cycle
            assert ctx.get(u.idle) == 0
            await ctx.tick()
            cycle += 1
            assert ctx.get(u.done) == 0
            log.append((t, e))
        final.extend(ctx.get(dut.mem_c.data[i]) for i in range(geom.acc_depth))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return final, log


def check_timing(geom, cfg, commands, log):
    for f, (t, e) in zip(commands, log, strict=True):
        assert e - t == ExecuteUnit.FEED_LATENCY + array_cycles(geom, f), f
        assert e - t + 1 == exec_cycles(geom, cfg, f)


def fields(**kw) -> dict[str, int]:
    base = {
        "a_addr": 0,
        "w_addr": 0,
        "c_addr": 0,
        "c_stride": 0,
        "mt": 1,
        "nt": 1,
        "kt": 1,
        "mb": 1,
        "acc": 0,
    }
    return base | kw


# -- reference models of the command semantics -----------------------------------------------------


def ref_os_int(geom, acc_bits, A, W, C, f):
    """A (depth, R), W (depth, C) lane values; C (depth, C) updated in place."""
    R = geom.rows
    for i in range(f["mt"]):
        for j in range(f["nt"]):
            at = A[f["a_addr"] + i * f["kt"] : f["a_addr"] + (i + 1) * f["kt"]]  # (kt, R)
            wt = W[f["w_addr"] + j * f["kt"] : f["w_addr"] + (j + 1) * f["kt"]]  # (kt, C)
            res = at.T @ wt
            for q in range(R):
                row = f["c_addr"] + j * f["c_stride"] + i * R + q
                C[row] = wrap(C[row] * f["acc"] + res[q], acc_bits)


def ref_ws_int(geom, acc_bits, A, W, C, f):
    R, kt, mb = geom.rows, f["kt"], f["mb"]
    for j in range(f["nt"]):
        for kk in range(kt):
            first = f["w_addr"] + (j * kt + kk) * R
            wt = W[first : first + R][::-1]  # stored bottom row first
            at = A[f["a_addr"] + kk * mb : f["a_addr"] + (kk + 1) * mb]  # (mb, R)
            res = at @ wt
            keep = int(kk > 0 or f["acc"])
            for m in range(mb):
                row = f["c_addr"] + j * f["c_stride"] + m
                C[row] = wrap(C[row] * keep + res[m], acc_bits)


# -- tests ---------------------------------------------------------------------------------------


def test_array_cycles_match_the_array_timing_models():
    rng = np.random.default_rng(0)
    for cfg in (
        mac(2, 3, "os"),
        mac(4, 4, "os"),
        mac(2, 3, "ws"),
        mac(3, 2, "ws"),
        lut_config(),
        lut_config(3),
    ):
        geom = SystemGeometry.of(cfg, SMALL)
        for _ in range(30):
            mt, nt, kt, mb = (int(x) for x in rng.integers(1, 7, 4))
            if geom.kind == "os":
                f = fields(mt=mt, nt=nt, kt=kt)
                T = os_timeline(geom.rows, geom.cols, np.full(mt * nt, kt)).total
            elif geom.kind == "ws":
                f = fields(nt=nt, kt=kt, mb=mb)
                T = ws_timeline(geom.rows, geom.cols, np.full(nt * kt, mb)).total
            else:
                f = fields(mt=mt, nt=nt, kt=kt)
                p = cfg.pe
                T = lut.lut_gemm_cycles(p, mt * p.tile_m, kt * p.k_tile, nt * p.tile_n)
            assert array_cycles(geom, f) == T, f
            assert exec_cycles(geom, cfg, f) == ExecuteUnit.FEED_LATENCY + T + 1


@pytest.mark.parametrize(("rows", "cols"), [(2, 3), (4, 4)])
def test_os_mac(rows, cols):
    cfg = mac(rows, cols, "os")
    geom = SystemGeometry.of(cfg, SMALL)
    rng = np.random.default_rng(rows * 10 + cols)
    a_rows = random_rows(rng, geom.a_row_bits, geom.a_depth)
    w_rows = random_rows(rng, geom.w_row_bits, geom.w_depth)
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    R = rows
    commands = [
        fields(a_addr=3, w_addr=5, c_addr=1, c_stride=2 * R, mt=2, nt=3, kt=4),  # overwrite
        fields(a_addr=20, w_addr=9, c_addr=1, c_stride=2 * R, mt=2, nt=3, kt=5, acc=1),  # accumulate
        fields(a_addr=7, w_addr=40, c_addr=40, c_stride=R, mt=1, nt=2, kt=1),  # K = 1: last beats stall
        fields(a_addr=0, w_addr=0, c_addr=40, c_stride=R, mt=1, nt=2, kt=1, acc=1),
        fields(a_addr=50, w_addr=60, c_addr=30, c_stride=0, mt=1, nt=3, kt=2, acc=1),  # same rows thrice
    ]
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=[0, 0, 3, 0, 1])
    check_timing(geom, cfg, commands, log)
    acc_bits = geom.acc_lane_bits
    A = to_lanes(a_rows, 8, R, signed=True)
    W = to_lanes(w_rows, 6, cols, signed=True)
    C = to_lanes(c_rows, acc_bits, cols, signed=True)
    for f in commands:
        ref_os_int(geom, acc_bits, A, W, C, f)
    got = to_lanes(final, acc_bits, cols, signed=True)
    np.testing.assert_array_equal(got, C)


@pytest.mark.parametrize(("rows", "cols"), [(2, 3), (3, 2)])
def test_ws_mac(rows, cols):
    cfg = mac(rows, cols, "ws")
    geom = SystemGeometry.of(cfg, SMALL)
    rng = np.random.default_rng(100 + rows * 10 + cols)
    a_rows = random_rows(rng, geom.a_row_bits, geom.a_depth)
    w_rows = random_rows(rng, geom.w_row_bits, geom.w_depth)
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    commands = [
        fields(a_addr=2, w_addr=1, c_addr=3, c_stride=8, nt=2, kt=3, mb=5),  # k-blocks accumulate
        fields(a_addr=30, w_addr=40, c_addr=3, c_stride=8, nt=2, kt=2, mb=5, acc=1),
        fields(a_addr=9, w_addr=70, c_addr=30, c_stride=1, nt=3, kt=1, mb=1),  # one row per tile
        fields(a_addr=50, w_addr=5, c_addr=35, c_stride=0, nt=2, kt=3, mb=12, acc=1),  # mb > 2R + C - 1
    ]
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=[0, 0, 2, 0])
    check_timing(geom, cfg, commands, log)
    acc_bits = geom.acc_lane_bits
    A = to_lanes(a_rows, 8, rows, signed=True)
    W = to_lanes(w_rows, 6, cols, signed=True)
    C = to_lanes(c_rows, acc_bits, cols, signed=True)
    for f in commands:
        ref_ws_int(geom, acc_bits, A, W, C, f)
    np.testing.assert_array_equal(to_lanes(final, acc_bits, cols, signed=True), C)


def test_os_fma_bf16():
    from tpegen.sim import fp

    cfg = fma(2, 3)
    geom = SystemGeometry.of(cfg, SMALL)
    accel = cfg.accelerator()
    fcfg = accel.cfg
    rng = np.random.default_rng(7)
    R, Cc = geom.rows, geom.cols

    def bf16_rows(n, lanes):
        values = rng.standard_normal((n, lanes)) * np.exp2(rng.integers(-6, 7, (n, lanes)))
        return fp.quantize(values, fcfg.a_fmt, "rne")

    A = bf16_rows(geom.a_depth, R)
    W = bf16_rows(geom.w_depth, Cc)
    A[5, 0], W[3, 1] = fcfg.a_fmt.inf_bits, 0  # an infinity and a zero mixed in
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    commands = [
        fields(a_addr=1, w_addr=2, c_addr=4, c_stride=2 * R, mt=2, nt=2, kt=3),
        fields(a_addr=10, w_addr=20, c_addr=20, c_stride=R, mt=1, nt=3, kt=1),
    ]
    final, log = run_unit(cfg, geom, to_rows(A, 16), to_rows(W, 16), c_rows, commands)
    check_timing(geom, cfg, commands, log)
    width = fcfg.acc_fmt.width
    C = to_lanes(c_rows, width, Cc, signed=False)
    for f in commands:
        for i in range(f["mt"]):
            for j in range(f["nt"]):
                at = A[f["a_addr"] + i * f["kt"] : f["a_addr"] + (i + 1) * f["kt"]]
                wt = W[f["w_addr"] + j * f["kt"] : f["w_addr"] + (j + 1) * f["kt"]]
                res = accel.golden_bits(at.T, wt)  # (R, C) accumulator-format bits
                for q in range(R):
                    C[f["c_addr"] + j * f["c_stride"] + i * R + q] = res[q]
    np.testing.assert_array_equal(to_lanes(final, width, Cc, signed=False), C)


def lut_operands(p, rng, mt, nt, kt):
    """Random integer A (mt*tile_m, kt*k_tile) and W (kt*k_tile, nt*tile_n) and their scratchpad rows
    (A rows i*kt + kk; W rows per the LUT EXEC semantics: per j if kt == 1, else per (j, kk))."""
    lo, hi = p.weight_range()
    A = rng.integers(-128, 128, (mt * p.tile_m, kt * p.k_tile))
    if p.weight_bits == 1:
        W = rng.choice([-1, 1], (kt * p.k_tile, nt * p.tile_n))
    else:
        W = rng.integers(lo, hi + 1, (kt * p.k_tile, nt * p.tile_n))
    blocks = A.reshape(mt, p.tile_m, kt, p.k_tile).transpose(0, 2, 1, 3).reshape(mt * kt, -1)
    plan = lut.lut_gemm_plan(p, A[: p.tile_m], W)  # one M-tile: weight tiles in (j, kk) order, planes
    w_rows = [int.from_bytes(bytes(r), "little") for r in plan.weights]
    return A, W, to_rows(blocks, p.act_bits), w_rows


@pytest.mark.parametrize("weight_bits", [2, 1, 3])
def test_lut(weight_bits):
    cfg = lut_config(weight_bits)
    p = cfg.pe
    geom = SystemGeometry.of(cfg, SMALL)
    rng = np.random.default_rng(weight_bits)
    a_rows = random_rows(rng, geom.a_row_bits, geom.a_depth)
    w_rows = random_rows(rng, geom.w_row_bits, geom.w_depth)
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    lanes, bits = geom.acc_lanes, geom.acc_lane_bits
    C = to_lanes(c_rows, bits, lanes, signed=True)
    specs = [  # (fields, scratchpad A row, W row) -- operands written at a_addr / w_addr
        fields(a_addr=3, w_addr=2, c_addr=1, c_stride=4, mt=3, nt=2, kt=1),  # weight tile reused by 3 beats
        fields(a_addr=20, w_addr=30, c_addr=1, c_stride=4, mt=2, nt=2, kt=3, acc=1),  # tile per beat
        fields(a_addr=40, w_addr=70, c_addr=12, c_stride=0, mt=1, nt=3, kt=1, acc=1),  # same row thrice
        fields(a_addr=45, w_addr=80, c_addr=14, c_stride=1, mt=1, nt=1, kt=2),
    ]
    for f in specs:
        A, W, ar, wr = lut_operands(p, rng, f["mt"], f["nt"], f["kt"])
        a_rows[f["a_addr"] : f["a_addr"] + len(ar)] = ar
        w_rows[f["w_addr"] : f["w_addr"] + len(wr)] = wr
        res = wrap(A @ W, p.acc_bits)  # independent of the LUT encoding
        for j in range(f["nt"]):
            for i in range(f["mt"]):
                row = f["c_addr"] + j * f["c_stride"] + i
                block = res[i * p.tile_m : (i + 1) * p.tile_m, j * p.tile_n : (j + 1) * p.tile_n].ravel()
                C[row] = wrap(C[row] * f["acc"] + block, bits)
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, specs, gaps=[0, 1, 0, 0])
    check_timing(geom, cfg, specs, log)
    np.testing.assert_array_equal(to_lanes(final, bits, lanes, signed=True), C)


# -- randomized: random scratchpads (every row a legal operand), random commands -------------------


def lut_tile_weights(p, plane_rows) -> np.ndarray:
    """Integer weights (k_tile, tile_n) that ``b`` W rows (bit planes of encoded indices) stand for."""
    g, b = p.group_size, p.planes
    idx = to_lanes(plane_rows, g, p.tile_n * p.tile_k, signed=False).reshape(b, p.tile_n, p.tile_k)
    mask = (1 << (g - 1)) - 1
    sign = (idx >> (g - 1)) & 1
    low = np.where(sign == 1, idx & mask, ~idx & mask)  # undo the offline complement
    u = (sign << (g - 1)) | low
    bits = (u[..., None] >> np.arange(g)) & 1  # (b, n, group, j): plane bit of K element group*g + j
    q = (bits << np.arange(b).reshape(b, 1, 1, 1)).sum(axis=0)
    s = 2 * q - 1 if b == 1 else q - (1 << (b - 1))
    return s.reshape(p.tile_n, p.k_tile).T  # K element group*g + j


def ref_lut(geom, p, a_rows, w_rows, C, f):
    b, kt = p.planes, f["kt"]
    for j in range(f["nt"]):
        for i in range(f["mt"]):
            res = np.zeros((p.tile_m, p.tile_n), dtype=np.int64)
            for kk in range(kt):
                a = to_lanes(
                    [a_rows[f["a_addr"] + i * kt + kk]], p.act_bits, p.tile_m * p.k_tile, signed=True
                )
                first = f["w_addr"] + (j * b if kt == 1 else (j * kt + kk) * b)
                res += a.reshape(p.tile_m, p.k_tile) @ lut_tile_weights(p, w_rows[first : first + b])
            row = f["c_addr"] + j * f["c_stride"] + i
            C[row] = wrap(C[row] * f["acc"] + res.ravel(), geom.acc_lane_bits)


def random_command(rng, geom, fp: bool) -> dict[str, int]:
    while True:
        mt, nt, kt, mb = (int(x) for x in rng.integers(1, 5, 4))
        f = fields(mt=1 if geom.kind == "ws" else mt, nt=nt, kt=kt, mb=mb if geom.kind == "ws" else 1)
        f["acc"] = 0 if fp else int(rng.integers(0, 2))
        f["c_stride"] = int(rng.integers(0, 3 * geom.rows + 1))
        ends = geom.exec_footprint(f)  # with zero bases
        if all(end <= geom.depth(mem) for end, mem in zip(ends, "AWC", strict=True)):
            for key, end, mem in zip(("a_addr", "w_addr", "c_addr"), ends, "AWC", strict=True):
                f[key] = int(rng.integers(0, geom.depth(mem) - end + 1))
            return f


@pytest.mark.parametrize("family", ["os", "ws", "fma", "lut"])
def test_random_commands(family):
    cfg = {"os": mac(3, 2, "os"), "ws": mac(2, 2, "ws"), "fma": fma(2, 2), "lut": lut_config(2)}[family]
    geom = SystemGeometry.of(cfg, SMALL)
    rng = np.random.default_rng(["os", "ws", "fma", "lut"].index(family) + 42)
    a_rows = random_rows(rng, geom.a_row_bits, geom.a_depth)
    w_rows = random_rows(rng, geom.w_row_bits, geom.w_depth)
    c_rows = random_rows(rng, geom.acc_row_bits, geom.acc_depth)
    if family == "fma":  # finite bf16 operands; the chain itself is the array's business
        fmt = cfg.accelerator().cfg.a_fmt
        a_rows = [r & 0x3FFF3FFF for r in a_rows]  # exponent below all-ones in every lane
        w_rows = [r & 0x3FFF3FFF for r in w_rows]
        assert fmt.width == 16
    commands = [random_command(rng, geom, geom.fp) for _ in range(8)]
    gaps = [int(x) for x in rng.integers(0, 3, len(commands))]
    final, log = run_unit(cfg, geom, a_rows, w_rows, c_rows, commands, gaps=gaps)
    check_timing(geom, cfg, commands, log)
    lanes, bits = geom.acc_lanes, geom.acc_lane_bits
    C = to_lanes(c_rows, bits, lanes, signed=not geom.fp)
    if family == "lut":
        for f in commands:
            ref_lut(geom, cfg.pe, a_rows, w_rows, C, f)
    elif family == "fma":
        accel = cfg.accelerator()
        A = to_lanes(a_rows, 16, geom.rows, signed=False)
        W = to_lanes(w_rows, 16, geom.cols, signed=False)
        for f in commands:
            for i in range(f["mt"]):
                for j in range(f["nt"]):
                    at = A[f["a_addr"] + i * f["kt"] : f["a_addr"] + (i + 1) * f["kt"]]
                    wt = W[f["w_addr"] + j * f["kt"] : f["w_addr"] + (j + 1) * f["kt"]]
                    res = accel.golden_bits(at.T, wt)
                    for q in range(geom.rows):
                        C[f["c_addr"] + j * f["c_stride"] + i * geom.rows + q] = res[q]
    else:
        pe = cfg.array.pe
        A = to_lanes(a_rows, pe.act_bits, geom.rows, signed=True)
        W = to_lanes(w_rows, pe.weight_bits, geom.cols, signed=True)
        ref = ref_os_int if family == "os" else ref_ws_int
        for f in commands:
            ref(geom, bits, A, W, C, f)
    np.testing.assert_array_equal(to_lanes(final, bits, lanes, signed=not geom.fp), C)


@pytest.mark.parametrize("weight_bits", [1, 2, 3])
def test_lut_weight_decoder_inverts_the_encoder(weight_bits):
    """The reference's decoder of W rows (used on random rows above) undoes sim.lut's encoding."""
    p = lut_config(weight_bits).pe
    rng = np.random.default_rng(weight_bits)
    _, W, _, w_rows = lut_operands(p, rng, 1, 1, 1)
    np.testing.assert_array_equal(lut_tile_weights(p, w_rows), W)
