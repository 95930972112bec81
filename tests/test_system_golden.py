"""Functional model of the accelerator system (sim/system_golden.py) against independent references.

Programs are built by hand here (explicit loops over tiles), host images with the row codecs
(tested on their own in test_system_rows.py), and outputs are compared with numpy GEMMs, the LUT
model, the FP engine's golden model through the bare-array path and ml_dtypes.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tpegen.config import config_from_dict, load_config
from tpegen.errors import TpegenError
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim import fp, lut
from tpegen.sim.requant import pack_qparams, requantize
from tpegen.sim.system_golden import acc_to_fp32_bits, run_golden
from tpegen.sim.system_rows import lanes_to_rows, rows_to_lanes
from tpegen.sw.fp import round_operand

L, X, S = isa.Opcode.LOAD, isa.Opcode.EXEC, isa.Opcode.STORE


def cmd(op: isa.Opcode, **args) -> isa.Instruction:
    return isa.Instruction(op, args=args)


def with_pe(name: str, **pe) -> object:
    raw = load_config(name).to_dict()
    raw["pe"].update(pe)
    return config_from_dict(raw)


class Image:
    """A host image with a bump allocator: rows are placed at their pitch."""

    def __init__(self, config, size: int = 1 << 16):
        self.geom = SystemGeometry.of(config)
        self.config = config
        self.host = np.full(size, 0xAA, dtype=np.uint8)
        self.top = 0

    def alloc(self, nbytes: int, align: int) -> int:
        addr = -(-self.top // align) * align
        self.top = addr + nbytes
        return addr

    def put(self, kind: str, lanes) -> tuple[int, int]:
        """Place rows of ``kind`` lanes contiguously at the load pitch; return (address, rows)."""
        g = self.config.pe.group_size if self.config.family == "lut" else None
        rows = lanes_to_rows(self.geom, kind, np.asarray(lanes), group_size=g)
        pitch = self.geom.load_pitch(kind)
        addr = self.alloc(len(rows) * pitch, pitch)
        for r, row in enumerate(rows):
            self.host[addr + r * pitch : addr + r * pitch + len(row)] = row
        return addr, len(rows)

    def out(self, rows: int, fmt: str) -> int:
        pitch = self.geom.store_pitch(fmt)
        return self.alloc(rows * pitch, pitch)

    def read(self, host: np.ndarray, addr: int, rows: int, fmt: str, lane_dtype: str) -> np.ndarray:
        """Output rows (independent decode: byte-aligned little-endian lanes)."""
        pitch = self.geom.store_pitch(fmt)
        nbytes = self.geom.acc_lanes * np.dtype(lane_dtype).itemsize
        return np.stack(
            [host[addr + r * pitch : addr + r * pitch + nbytes].view(lane_dtype) for r in range(rows)]
        )


def load(target: str, addr: int, rows: int, sp: int = 0) -> isa.Instruction:
    return cmd(L, target=isa.Target[target], sp_addr=sp, host_addr=addr, rows=1, seg=rows)


def store(
    c_addr: int, addr: int, rows: int, seg: int, stride: int, fmt: str = "raw", **kw
) -> isa.Instruction:
    return cmd(
        S,
        c_addr=c_addr,
        host_addr=addr,
        rows=rows,
        seg=seg,
        stride=stride,
        format=isa.Format[fmt.upper()],
        **kw,
    )


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x, dtype=object) % (1 << bits)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x).astype(np.int64)


# -- output-stationary MAC ----------------------------------------------------------------------


def os_operand_rows(a: np.ndarray, w: np.ndarray, R: int, C: int) -> tuple[list, list]:
    """A rows i*K + k = A[iR:(i+1)R, k]; W rows j*K + k = W[k, jC:(j+1)C] (hand-written loops)."""
    (M, K), N = a.shape, w.shape[1]
    a_rows = [a[i * R : (i + 1) * R, k] for i in range(M // R) for k in range(K)]
    w_rows = [w[k, j * C : (j + 1) * C] for j in range(N // C) for k in range(K)]
    return a_rows, w_rows


def test_os_int8_two_tiles_each_way_and_k_split():
    config = load_config("int8_os_8x8")
    R = C = 8
    rng = np.random.default_rng(1)
    M, K, N = 16, 7, 16
    a = rng.integers(-128, 128, (M, K))
    w = rng.integers(-128, 128, (K, N))
    img = Image(config)
    # whole K in one EXEC
    a_rows, w_rows = os_operand_rows(a, w, R, C)
    a_addr, na = img.put("A", a_rows)
    w_addr, nw = img.put("W", w_rows)
    # K split 4 + 3 (two EXECs, the second accumulates)
    a1, w1 = os_operand_rows(a[:, :4], w[:4], R, C)
    a2, w2 = os_operand_rows(a[:, 4:], w[4:], R, C)
    addrs = [img.put("A", a1), img.put("W", w1), img.put("A", a2), img.put("W", w2)]
    pitch = img.geom.store_pitch("raw")
    out1, out2 = img.out(2 * M, "raw"), img.out(2 * M, "raw")
    program = [
        load("A", a_addr, na),
        load("W", w_addr, nw),
        cmd(X, mt=2, nt=2, kt=K, mb=1, c_stride=M),
        store(0, out1, rows=2, seg=M, stride=M * pitch),
        load("A", *addrs[0], sp=100),
        load("W", *addrs[1], sp=100),
        load("A", *addrs[2], sp=200),
        load("W", *addrs[3], sp=200),
        cmd(X, a_addr=100, w_addr=100, c_addr=64, mt=2, nt=2, kt=4, mb=1, c_stride=M),
        cmd(X, a_addr=200, w_addr=200, c_addr=64, mt=2, nt=2, kt=3, mb=1, c_stride=M, acc=1),
        store(64, out2, rows=2, seg=M, stride=M * pitch),
    ]
    run = run_golden(config, program, img.host)
    want = a @ w
    for out in (out1, out2):
        got = img.read(run.host, out, 2 * M, "raw", "<i4")  # row j*M + r = C[r, jC:(j+1)C]
        np.testing.assert_array_equal(np.concatenate([got[:M], got[M:]], axis=1), want)
    assert img.host[out1] == 0xAA and not np.shares_memory(run.host, img.host)  # input untouched
    assert run.macs == 2 * 2 * (K + 4 + 3) * R * C
    assert run.host_bytes_read == sum(c["bytes"] for c in run.per_command if c["opcode"] == "LOAD")
    assert run.host_bytes_read == (na + nw + len(a1) + len(w1) + len(a2) + len(w2)) * 16
    assert run.host_bytes_written == 2 * 2 * M * pitch
    assert [c["opcode"] for c in run.per_command] == ["LOAD", "LOAD", "EXEC", "STORE"] + ["LOAD"] * 4 + [
        "EXEC",
        "EXEC",
        "STORE",
    ]
    assert run.memories["C"].shape == (img.geom.acc_depth, 32)


def test_os_wraps_at_narrow_accumulator_and_pads_output_rows():
    config = with_pe("int8_os_8x8", acc_bits=20)  # 8 lanes x 20 bits = 20 bytes, pitch 32
    geom = SystemGeometry.of(config)
    K = 40
    a = np.full((8, K), -128)
    w = np.concatenate([np.full((K, 4), -128), np.full((K, 4), 127)], axis=1)
    img = Image(config)
    a_rows, w_rows = os_operand_rows(a, w, 8, 8)
    loads = [load("A", *img.put("A", a_rows)), load("W", *img.put("W", w_rows))]
    out = img.out(8, "raw")
    program = [
        *loads,
        cmd(X, mt=1, nt=1, kt=K, mb=1),
        cmd(X, mt=1, nt=1, kt=K, mb=1, acc=1),  # twice: 2 A @ W, wrapped at 20 bits
        store(0, out, rows=1, seg=8, stride=0),
    ]
    run = run_golden(config, program, img.host)
    pitch = geom.store_pitch("raw")
    assert pitch == 32
    rows = np.stack([run.host[out + r * pitch : out + (r + 1) * pitch] for r in range(8)])
    assert not rows[:, 20:].any()  # padding written as zero
    assert run.host[out - 1] == 0xAA and run.host[out + 8 * pitch] == 0xAA
    got = rows_to_lanes(geom, "C", rows[:, :20], signed=True)
    np.testing.assert_array_equal(got, wrap(2 * (a @ w), 20))
    assert np.any(2 * (a @ w) != got)  # it did wrap


# -- weight-stationary MAC ----------------------------------------------------------------------


def test_ws_int8_tiles_k_accumulation_and_acc_flag():
    config = load_config("int8_ws_8x8")
    R = C = 8
    rng = np.random.default_rng(2)
    M, K, N = 5, 24, 16
    a = rng.integers(-128, 128, (M, K))
    w = rng.integers(-128, 128, (K, N))
    kt, nt = K // R, N // C
    # A rows kk*M + m = A[m, kk R:(kk+1) R]; W rows (j kt + kk) R + b = W[kk R + R-1-b, jC:(j+1)C]
    a_rows = [a[m, kk * R : (kk + 1) * R] for kk in range(kt) for m in range(M)]
    w_rows = [
        w[kk * R + R - 1 - b, j * C : (j + 1) * C] for j in range(nt) for kk in range(kt) for b in range(R)
    ]
    img = Image(config)
    pitch = img.geom.store_pitch("raw")
    out = img.out(nt * M, "raw")
    out2 = img.out(nt * M, "raw")
    program = [
        load("A", *img.put("A", a_rows)),
        load("W", *img.put("W", w_rows)),
        cmd(X, mt=1, nt=nt, kt=kt, mb=M, c_stride=M),
        store(0, out, rows=nt, seg=M, stride=M * pitch),
        # same again with acc=1 into the same rows: 2 A @ W; then K split: kk 0 here, kk 1..2 there
        cmd(X, mt=1, nt=nt, kt=kt, mb=M, c_stride=M, acc=1),
        cmd(X, c_addr=100, mt=1, nt=1, kt=1, mb=M, c_stride=M),  # j = 0, kk = 0
        cmd(X, a_addr=M, w_addr=R, c_addr=100, mt=1, nt=1, kt=2, mb=M, c_stride=M, acc=1),  # kk = 1, 2
        store(0, out2, rows=nt, seg=M, stride=M * pitch),
    ]
    run = run_golden(config, program, img.host)
    got = img.read(run.host, out, nt * M, "raw", "<i4")
    np.testing.assert_array_equal(np.concatenate([got[:M], got[M:]], axis=1), a @ w)
    got = img.read(run.host, out2, nt * M, "raw", "<i4")
    np.testing.assert_array_equal(np.concatenate([got[:M], got[M:]], axis=1), 2 * (a @ w))
    c = rows_to_lanes(img.geom, "C", run.memories["C"][100 : 100 + M], signed=True)
    np.testing.assert_array_equal(c, a @ w[:, :C])
    assert run.macs == (nt * kt * M + nt * kt * M + kt * M) * R * C


# -- LUT core -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lut_w2a8", "lut_w1a8", "lut_ternary_a8"])
@pytest.mark.parametrize("kt", [1, 2])
def test_lut_against_numpy_and_lut_model(name, kt):
    config = load_config(name)
    p = config.pe
    rng = np.random.default_rng(3 + kt)
    mt, nt = 2, 2
    M, K, N = mt * p.tile_m, kt * p.k_tile, nt * p.tile_n
    a = rng.integers(-128, 128, (M, K))
    lo, hi = p.weight_range()
    w = rng.integers(lo, hi + 1, (K, N))
    if p.weight_bits == 1:
        w = np.where(w == 0, -1, w)
    # A rows i*kt + kk: the (m, k) block, lane m * k_tile + k
    a_rows = [
        a[i * p.tile_m : (i + 1) * p.tile_m, kk * p.k_tile : (kk + 1) * p.k_tile].ravel()
        for i in range(mt)
        for kk in range(kt)
    ]
    # W rows (j*kt + kk)*b + plane: encoded indices, lane n * tile_k + group
    w_rows = []
    for j in range(nt):
        for kk in range(kt):
            block = w[kk * p.k_tile : (kk + 1) * p.k_tile, j * p.tile_n : (j + 1) * p.tile_n]
            idx = lut.encode_weights(
                block, p.weight_bits, p.group_size, ternary=p.ternary
            )  # (b, tile_k, tile_n)
            w_rows += [idx[plane].T.ravel() for plane in range(p.planes)]
    img = Image(config)
    pitch = img.geom.store_pitch("raw")
    out = img.out(nt * mt, "raw")
    program = [
        load("A", *img.put("A", a_rows), sp=3),
        load("W", *img.put("W", w_rows), sp=5),
        cmd(X, a_addr=3, w_addr=5, c_addr=1, mt=mt, nt=nt, kt=kt, mb=1, c_stride=mt),
        store(1, out, rows=nt, seg=mt, stride=mt * pitch),
    ]
    run = run_golden(config, program, img.host)
    rows = img.read(run.host, out, nt * mt, "raw", "<i4")  # row j*mt + i, lane m * tile_n + n
    c = np.zeros((M, N), dtype=np.int64)
    for j in range(nt):
        for i in range(mt):
            c[i * p.tile_m : (i + 1) * p.tile_m, j * p.tile_n : (j + 1) * p.tile_n] = rows[
                j * mt + i
            ].reshape(p.tile_m, p.tile_n)
    np.testing.assert_array_equal(c, a @ w)
    np.testing.assert_array_equal(c, lut.lut_gemm(a, w, p))
    assert run.macs == nt * mt * kt * p.tile_m * p.tile_n * p.k_tile


def test_lut_wraps_like_the_core():
    config = with_pe("lut_w2a8", acc_bits=16)
    p = config.pe
    a = np.full((p.tile_m, 8 * p.k_tile), -128)
    w = np.full((8 * p.k_tile, p.tile_n), -2)
    a_rows = [a[:, kk * p.k_tile : (kk + 1) * p.k_tile].ravel() for kk in range(8)]
    w_rows = []
    for kk in range(8):
        idx = lut.encode_weights(w[kk * p.k_tile : (kk + 1) * p.k_tile], 2, p.group_size)
        w_rows += [idx[plane].T.ravel() for plane in range(2)]
    img = Image(config)
    out = img.out(1, "raw")
    program = [
        load("A", *img.put("A", a_rows)),
        load("W", *img.put("W", w_rows)),
        cmd(X, mt=1, nt=1, kt=8, mb=1),
        store(0, out, rows=1, seg=1, stride=0),
    ]
    run = run_golden(config, program, img.host)
    got = img.read(run.host, out, 1, "raw", "<i2").reshape(p.tile_m, p.tile_n)
    np.testing.assert_array_equal(got, lut.lut_gemm(a, w, p))
    np.testing.assert_array_equal(got, wrap(a @ w, 16))


# -- FMA (bf16) ---------------------------------------------------------------------------------


def fp_operand_rows(config, a, w):
    cfg = config.pe.fma
    ab, wb = round_operand("A", a, cfg.a_fmt), round_operand("W", w, cfg.w_fmt)
    return os_operand_rows(ab, wb, config.array.rows, config.array.cols)


@pytest.mark.parametrize("name", ["bf16_exact", "bf16_approx_relaxed_w8", "bf16_exact_bf16acc"])
def test_fma_raw_and_bf16_against_the_fp_golden(name):
    config = load_config(name)
    R, C = config.array.rows, config.array.cols
    rng = np.random.default_rng(4)
    M, K, N = 2 * R, 13, 2 * C
    a = rng.standard_normal((M, K)) * np.exp2(rng.integers(-6, 7, (M, K)))
    w = rng.standard_normal((K, N)) * np.exp2(rng.integers(-6, 7, (K, N)))
    a[0, 1], w[1, 3] = np.inf, 0.0  # C[0, :] is inf, except C[0, 3]: NaN (inf * 0)
    a_rows, w_rows = fp_operand_rows(config, a, w)
    img = Image(config)
    raw_pitch, bf_pitch = img.geom.store_pitch("raw"), img.geom.store_pitch("bf16")
    out_raw, out_bf = img.out(2 * M, "raw"), img.out(2 * M, "bf16")
    program = [
        load("A", *img.put("A", a_rows)),
        load("W", *img.put("W", w_rows)),
        cmd(X, mt=2, nt=2, kt=K, mb=1, c_stride=M),
        store(0, out_raw, rows=2, seg=M, stride=M * raw_pitch),
        store(0, out_bf, rows=2, seg=M, stride=M * bf_pitch, fmt="bf16"),
    ]
    run = run_golden(config, program, img.host)
    want = config.accelerator().run_gemm(a, w, "golden").output.astype(np.float32)  # float32, NaN canonical
    acc_fmt = config.pe.fma.acc_fmt
    lane = "<u4" if acc_fmt.width == 32 else "<u2"
    raw = img.read(run.host, out_raw, 2 * M, "raw", lane)
    raw = np.concatenate([raw[:M], raw[M:]], axis=1)
    # a bf16 accumulator widens exactly to fp32
    got = raw.view(np.float32) if acc_fmt.width == 32 else (raw.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])
    bf = img.read(run.host, out_bf, 2 * M, "bf16", "<u2")
    bf = np.concatenate([bf[:M], bf[M:]], axis=1)
    ref = want.astype(ml_dtypes.bfloat16).view(np.uint16)
    finite = ~np.isnan(want)
    np.testing.assert_array_equal(bf[finite], ref[finite])
    assert np.all((bf[~finite] & 0x7FC0) == 0x7FC0)  # NaNs stay quiet NaNs
    pad = bf_pitch - 2 * C
    if pad:
        assert not run.host[out_bf + 2 * C : out_bf + bf_pitch].any()


def test_fma_chained_layers_flush_deferred_work():
    """Layer 2 LOADs what layer 1 STOREd (bf16 output rows reused as A rows): the deferred FMA
    tiles must be computed before that LOAD reads the host."""
    config = load_config("bf16_exact")
    R = C = 8
    rng = np.random.default_rng(5)
    a1, w1 = rng.standard_normal((R, 12)), rng.standard_normal((12, C))
    w2 = rng.standard_normal((R, C))
    a_rows, w_rows = fp_operand_rows(config, a1, w1)
    _, w2_rows = fp_operand_rows(config, np.zeros((R, R)), w2)
    img = Image(config)
    a_addr, na = img.put("A", a_rows)
    w_addr, nw = img.put("W", w_rows)
    w2_addr, nw2 = img.put("W", w2_rows)
    mid = img.out(R, "bf16")
    out = img.out(R, "raw")
    program = [
        load("A", a_addr, na),
        load("W", w_addr, nw),
        cmd(X, mt=1, nt=1, kt=12, mb=1),
        store(0, mid, rows=1, seg=R, stride=0, fmt="bf16"),
        load("A", mid, R, sp=200),  # bf16 output row q = A row k = q of layer 2
        load("W", w2_addr, nw2, sp=200),
        cmd(X, a_addr=200, w_addr=200, c_addr=8, mt=1, nt=1, kt=R, mb=1),
        store(8, out, rows=1, seg=R, stride=0),
    ]
    run = run_golden(config, program, img.host)
    acc = config.accelerator()
    c1 = acc.run_gemm(a1, w1, "golden").output.astype(np.float32).astype(ml_dtypes.bfloat16)
    a2 = c1.astype(np.float64).T  # A row k = q holds C1[q, :] as the R lanes (A2[r, k] = C1[k, r])
    want = acc.run_gemm(a2, w2, "golden").output.astype(np.float32)
    got = img.read(run.host, out, R, "raw", "<u4").view(np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        run.memories["C"][:R].view("<u4").view(np.float32), acc.run_gemm(a1, w1, "golden").output
    )


@pytest.mark.parametrize("fmt", [fp.BF16, fp.FP16, fp.FP8_E5M2, fp.FP8_E4M3_IEEE])
def test_narrow_accumulators_widen_exactly_to_fp32(fmt):
    bits = np.arange(1 << fmt.width)
    got = acc_to_fp32_bits(bits, fmt)
    val = fp.decode(bits, fmt).astype(np.float32)
    num = ~np.isnan(val)
    np.testing.assert_array_equal(got[num], val[num].view(np.uint32))  # -0, subnormals and inf too
    nan_bits = bits[~num]
    man = nan_bits & ((1 << fmt.man_bits) - 1)
    sign = nan_bits >> (fmt.width - 1)
    np.testing.assert_array_equal(got[~num], (sign << 31) | 0x7F800000 | (man << (23 - fmt.man_bits)))
    if fmt == fp.BF16:
        np.testing.assert_array_equal(got, bits << 16)


# -- int8 STORE -------------------------------------------------------------------------------


@pytest.mark.parametrize("relu", [0, 1])
def test_store_int8_per_row_0_and_1(relu):
    config = load_config("int8_os_8x8")
    R = C = 8
    rng = np.random.default_rng(6)
    M, K, N = 16, 9, 8
    a = rng.integers(-128, 128, (M, K))
    w = rng.integers(-128, 128, (K, N))
    c = a @ w
    # per_row 0: Q row s (one per segment), entry l per lane; per_row 1: channel 3 + i per row i
    mult = rng.integers(1 << 30, 1 << 31, (4, C))
    shift = rng.integers(5, 14, (4, C))
    zp = rng.integers(-20, 20, (4, C))
    q_lanes = pack_qparams(mult, shift, zp)  # 4 Q rows of 8 entries = 32 channels
    a_rows, w_rows = os_operand_rows(a, w, R, C)
    img = Image(config)
    pitch = img.geom.store_pitch("int8")
    assert pitch == 16  # 8 int8 lanes, padded to one 16-byte beat
    out0, out1 = img.out(M, "int8"), img.out(M, "int8")
    program = [
        load("A", *img.put("A", a_rows)),
        load("W", *img.put("W", w_rows)),
        load("Q", *img.put("Q", q_lanes)),
        cmd(X, mt=2, nt=1, kt=K, mb=1),
        store(0, out0, rows=2, seg=R, stride=R * pitch, fmt="int8", relu=relu, per_row=0, q_addr=1),
        store(0, out1, rows=2, seg=R, stride=R * pitch, fmt="int8", relu=relu, per_row=1, q_addr=3),
    ]
    run = run_golden(config, program, img.host)
    got0 = img.read(run.host, out0, M, "int8", "i1")
    got1 = img.read(run.host, out1, M, "int8", "i1")
    flat_m, flat_s, flat_z = mult.ravel(), shift.ravel(), zp.ravel()
    for r in range(M):
        s, i = divmod(r, R)
        for lane in range(C):
            q = 1 + s  # Q row of segment s
            want0 = requantize(
                np.array([c[r, lane]]), mult[q, lane], shift[q, lane], zp[q, lane], bool(relu)
            )[0]
            ch = 3 + i  # channel of row i
            want1 = requantize(np.array([c[r, lane]]), flat_m[ch], flat_s[ch], flat_z[ch], bool(relu))[0]
            assert got0[r, lane] == want0 and got1[r, lane] == want1, (r, lane)
    assert not run.host[out0 + 8 : out0 + 16].any()  # padding zero
    assert len(set(got0.ravel().tolist())) > 20  # not all clamped


# -- errors -------------------------------------------------------------------------------------


def test_out_of_range_command_raises_program_error():
    config = load_config("int8_os_8x8")
    geom = SystemGeometry.of(config)
    img = Image(config)
    program = [
        load("A", *img.put("A", np.zeros((8, 8), dtype=np.int64))),
        cmd(X, a_addr=geom.a_depth - 4, mt=1, nt=1, kt=8, mb=1),
    ]
    with pytest.raises(isa.ProgramError, match="command 1: EXEC rows of scratchpad A") as info:
        run_golden(config, program, img.host)
    assert info.value.code is isa.ErrorCode.OUT_OF_RANGE
    with pytest.raises(isa.ProgramError) as info:
        run_golden(config, [cmd(S, rows=1, seg=1, format=isa.Format.BF16)], img.host)
    assert info.value.code is isa.ErrorCode.BAD_FIELD
    with pytest.raises(TpegenError, match="command 0: LOAD touches host bytes"):
        run_golden(config, [load("A", img.host.size - 16, 2)], img.host)


# -- layer-sized programs (128 x 768 x 768): speed and tiling over many commands -----------------


def instr(op: isa.Opcode, **args) -> isa.Instruction:
    return isa.Instruction(op, args=args)


def _host_with(geom, parts: list[tuple[str, np.ndarray]], out_bytes: int, group_size=None):
    """Host image holding each (kind, lanes) block contiguously at its pitch; returns addresses."""
    addrs, top = [], 0
    blobs = []
    for kind, lanes in parts:
        rows = lanes_to_rows(geom, kind, lanes, group_size=group_size)
        pitch = geom.load_pitch(kind)
        blob = np.zeros((len(rows), pitch), dtype=np.uint8)
        blob[:, : rows.shape[1]] = rows
        addrs.append(top)
        blobs.append(blob.ravel())
        top += blob.size
    addrs.append(top)
    return np.concatenate(blobs + [np.zeros(out_bytes, dtype=np.uint8)]), addrs


def os_layer(config, a_bits, w_bits):
    """OS program: per block of mi row tiles and nj column tiles, whole K in one EXEC."""
    g = SystemGeometry.of(config)
    R, C = g.rows, g.cols
    (M, K), N = a_bits.shape, w_bits.shape[1]
    mt, nt = M // R, N // C
    a_l = a_bits.reshape(mt, R, K).transpose(0, 2, 1).reshape(-1, R)  # row i*K + k
    w_l = w_bits.reshape(K, nt, C).transpose(1, 0, 2).reshape(-1, C)  # row j*K + k
    pa, pw, pc = g.load_pitch("A"), g.load_pitch("W"), g.store_pitch("raw")
    host, (a_addr, w_addr, out) = _host_with(g, [("A", a_l), ("W", w_l)], M * nt * pc)
    per_i, per_j = max(1, g.a_depth // K), max(1, g.w_depth // K)
    per_i = min(per_i, g.acc_depth // (R * per_j))
    prog = []
    for i0 in range(0, mt, per_i):
        mi = min(per_i, mt - i0)
        prog.append(instr(L, target=0, host_addr=a_addr + i0 * K * pa, rows=1, seg=mi * K))
        for j0 in range(0, nt, per_j):
            nj = min(per_j, nt - j0)
            prog.append(instr(L, target=1, host_addr=w_addr + j0 * K * pw, rows=1, seg=nj * K))
            prog.append(instr(X, mt=mi, nt=nj, kt=K, mb=1, c_stride=mi * R))
            # C row j*mi*R + i*R + q -> host row (j0 + j)*M + (i0 + i)*R + q
            prog.append(
                instr(S, host_addr=out + (j0 * M + i0 * R) * pc, rows=nj, seg=mi * R, stride=M * pc, format=0)
            )
    return prog, host, out


def read_blocks(host, out, M, N, C, pitch, dtype):
    """Host rows j*M + r (C lanes of dtype each) -> (M, N)."""
    nt = N // C
    rows = host[out : out + nt * M * pitch].reshape(nt * M, pitch)[:, : C * np.dtype(dtype).itemsize]
    lanes = np.ascontiguousarray(rows).view(dtype).reshape(nt, M, C)
    return lanes.transpose(1, 0, 2).reshape(M, N)


def test_layer_sized_os_int8():
    config = load_config("int8_os_8x8")
    rng = np.random.default_rng(10)
    a, w = rng.integers(-128, 128, (128, 768)), rng.integers(-128, 128, (768, 768))
    prog, host, out = os_layer(config, a, w)
    run = run_golden(config, prog, host)
    np.testing.assert_array_equal(read_blocks(run.host, out, 128, 768, 8, 32, "<i4"), a @ w)
    assert run.macs == 128 * 768 * 768


def test_layer_sized_ws_int8():
    config = load_config("int8_ws_8x8")
    g = SystemGeometry.of(config)
    R = C = 8
    rng = np.random.default_rng(11)
    M, K, N = 128, 768, 768
    a, w = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    KT, NT = K // R, N // C
    a_l = a.reshape(M, KT, R).transpose(1, 0, 2).reshape(-1, R)  # row kk*M + m
    w_l = w.reshape(KT, R, NT, C)[:, ::-1].transpose(2, 0, 1, 3).reshape(-1, C)  # row (j*KT + kk)*R + b
    pa, pw, pc = g.load_pitch("A"), g.load_pitch("W"), g.store_pitch("raw")
    host, (a_addr, w_addr, out) = _host_with(g, [("A", a_l), ("W", w_l)], M * NT * pc)
    kc = g.a_depth // M
    nc = min(g.acc_depth // M, g.w_depth // (kc * R))
    prog = []
    for j0 in range(0, NT, nc):
        nj = min(nc, NT - j0)
        for k0 in range(0, KT, kc):
            kj = min(kc, KT - k0)
            prog.append(instr(L, target=0, host_addr=a_addr + k0 * M * pa, rows=1, seg=kj * M))
            prog.append(
                instr(
                    L,
                    target=1,
                    host_addr=w_addr + (j0 * KT + k0) * R * pw,
                    rows=nj,
                    seg=kj * R,
                    stride=KT * R * pw,
                )
            )
            prog.append(instr(X, mt=1, nt=nj, kt=kj, mb=M, c_stride=M, acc=int(k0 > 0)))
        prog.append(instr(S, host_addr=out + j0 * M * pc, rows=nj, seg=M, stride=M * pc, format=0))
    run = run_golden(config, prog, host)
    np.testing.assert_array_equal(read_blocks(run.host, out, M, N, C, pc, "<i4"), a @ w)
    assert run.macs == M * K * N


def test_layer_sized_lut_w2a8():
    config = load_config("lut_w2a8")
    p = config.pe
    g = SystemGeometry.of(config)
    rng = np.random.default_rng(12)
    M, K, N = 128, 768, 768
    a, w = rng.integers(-128, 128, (M, K)), rng.integers(-2, 2, (K, N))
    MT, KT, NT = M // p.tile_m, K // p.k_tile, N // p.tile_n
    a_l = a.reshape(MT, p.tile_m, KT, p.k_tile).transpose(0, 2, 1, 3).reshape(-1, p.tile_m * p.k_tile)
    idx = lut.encode_weights(w, p.weight_bits, p.group_size)  # (b, K/g, N)
    w_l = (
        idx.reshape(p.planes, KT, p.tile_k, NT, p.tile_n)
        .transpose(3, 1, 0, 4, 2)
        .reshape(-1, p.tile_n * p.tile_k)
    )
    pa, pw, pc = g.load_pitch("A"), g.load_pitch("W"), g.store_pitch("raw")
    host, (a_addr, w_addr, out) = _host_with(
        g, [("A", a_l), ("W", w_l)], MT * NT * pc, group_size=p.group_size
    )
    mc = min(g.a_depth // KT, g.acc_depth)
    prog = []
    for j in range(NT):
        prog.append(instr(L, target=1, host_addr=w_addr + j * KT * p.planes * pw, rows=1, seg=KT * p.planes))
        for i0 in range(0, MT, mc):
            mi = min(mc, MT - i0)
            prog.append(instr(L, target=0, host_addr=a_addr + i0 * KT * pa, rows=1, seg=mi * KT))
            prog.append(instr(X, mt=mi, nt=1, kt=KT, mb=1))
            prog.append(instr(S, host_addr=out + (j * MT + i0) * pc, rows=1, seg=mi, format=0))
    run = run_golden(config, prog, host)
    rows = run.host[out : out + MT * NT * pc].reshape(NT, MT, pc)[:, :, : 4 * p.tile_m * p.tile_n]
    c = (
        np.ascontiguousarray(rows)
        .view("<i4")
        .reshape(NT, MT, p.tile_m, p.tile_n)
        .transpose(1, 2, 0, 3)
        .reshape(M, N)
    )
    np.testing.assert_array_equal(c, a @ w)


@pytest.mark.slow
def test_layer_sized_os_bf16():
    config = load_config("bf16_exact")
    cfg = config.pe.fma
    rng = np.random.default_rng(13)
    a, w = rng.standard_normal((128, 768)), rng.standard_normal((768, 768))
    prog, host, out = os_layer(config, round_operand("A", a, cfg.a_fmt), round_operand("W", w, cfg.w_fmt))
    run = run_golden(config, prog, host)
    got = read_blocks(run.host, out, 128, 768, 8, 32, "<u4")
    want = config.accelerator().run_gemm(a, w, "golden").output.astype(np.float32)
    np.testing.assert_array_equal(got.view(np.float32), want)
