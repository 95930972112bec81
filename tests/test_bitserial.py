"""Bit-serial tile over radix-4 weight digits with zero skipping (``pe.type: bitserial``).

References independent of the models under test: the digits of each weight recomputed here in
plain Python (EN-T by repeated division, Booth from the two's-complement bits), a per-beat Python
loop for the cycle count, numpy ``A @ W`` for the outputs, and the Verilated RTL.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.sim import bitserial as bs
from tpegen.sim.cycle import simulate, simulate_schedule
from tpegen.sim.radix4 import encode, nonzero_digits

CONFIG = CONFIGS / "bitweight" / "bitserial_en_t_4x4.yaml"


def _raw() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def _config(encoding: str = "en_t", **pe):
    raw = _raw()
    raw["pe"].update(encoding=encoding, **pe)
    return config_from_dict(raw)


def _digits(w: int, encoding: str, bits: int = 8) -> list[int]:
    """Radix-4 digits of one signed ``bits``-wide weight, lowest first, in plain Python."""
    if encoding == "booth_r4":
        u = (w & ((1 << bits) - 1)) << 1  # two's complement with the bit w[-1] = 0 below it
        digits = [
            -2 * (u >> (2 * i + 2) & 1) + (u >> (2 * i + 1) & 1) + (u >> (2 * i) & 1)
            for i in range(bits // 2)
        ]
    else:
        x, digits = abs(w), []
        while x:
            d = x % 4 if x % 4 != 3 else -1
            digits.append(d if w > 0 else -d)
            x = (x - d) // 4
    assert sum(d * 4**i for i, d in enumerate(digits)) == w
    return digits


def _reference_cycles(w: np.ndarray, m: int, tile_m: int, tile_n: int, encoding: str) -> int:
    """3 + sum over the driver's beats (N-tile, M-tile, K step) of the slowest column's digits."""
    nz = [[sum(d != 0 for d in _digits(int(x), encoding)) for x in row] for row in w]
    k, n = w.shape
    total = 3
    for n0 in range(0, n, tile_n):
        for _ in range(0, max(m, 1), tile_m):
            for kk in range(k):
                total += max(1, *nz[kk][n0 : n0 + tile_n])
    return total


# -- config -------------------------------------------------------------------------------------
def test_shipped_config():
    cfg = load_config(CONFIG)
    p = cfg.pe
    assert cfg.family == "bitserial" and cfg.pe is cfg.array
    assert (p.encoding, p.tile_m, p.tile_n, p.digits, p.act_bits, p.acc_bits) == ("en_t", 4, 4, 4, 8, 32)
    acc = cfg.accelerator()
    assert acc.macs_per_cycle == 16 and acc.dense_cycles_per_step == 4  # 4 digits per int8 weight at most
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "section,key,value,field,allowed",
    [
        ("pe", "encoding", "booth", "pe.encoding", "'en_t', 'booth_r4'"),
        ("pe", "multiplier", "en_t", "pe.multiplier", "unknown key"),
        ("pe", "accumulation", "carry_save", "pe.accumulation", "pe.type 'mac' only"),
        ("array", "tile_n", 65, "array.tile_n", "1..64"),
        ("array", "tile_k", 2, "array.tile_k", "unknown key"),
        ("pe", "acc_bits", 15, "pe.acc_bits", "16..64"),
    ],
)
def test_invalid_configs_name_the_field(bad_config, section, key, value, field, allowed):
    raw = _raw()
    raw[section][key] = value
    bad_config(raw, field, allowed)


# -- timing model -------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["en_t", "booth_r4"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 1, 4), (9, 13, 11), (5, 40, 3)])
def test_cycles_equal_python_loop_over_digits(encoding, shape):
    m, k, n = shape
    acc = _config(encoding).accelerator()
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(-128, 128, (m, k))
    w = np.clip(np.rint(rng.normal(0, 24, (k, n))), -128, 127).astype(np.int64)
    w[rng.random(w.shape) < 0.2] = 0
    want = _reference_cycles(w, m, 4, 4, encoding)
    assert acc.operand_cycles(a, w) == want
    res = simulate(acc, a, w)  # the cycle simulator's timeline, from the operands
    assert res.cycles == want and np.array_equal(res.output, a @ w)
    sched = acc.operand_schedule(a, w)
    state, ends = None, []
    for t in range(sched.tiles):  # the stalled recurrence, every operand ready at cycle 0
        state, _, _, end = sched.timing.step(state, t, 0)
        ends.append(end)
    assert max(ends) + 1 == want
    assert simulate_schedule(sched, shape=shape, bandwidth=1e9).cycles == want
    assert simulate(acc, a, w, bandwidth=1).cycles >= want
    # shape-only: the bound with 4 digits every K step, never below the operands' count
    assert acc.cycles(m, k, n) == 3 + 4 * -(-m // 4) * k * -(-n // 4) >= want


def test_zero_skipping_and_digit_statistics():
    """All-zero weights cost one cycle per K step, the densest four; sparse-digit weights run at
    one cycle per step; on N(0, 24) int8 weights the average non-zero digits are the papers'."""
    rng = np.random.default_rng(0)
    m, k, n = 8, 64, 8
    a = rng.integers(-128, 128, (m, k))
    beats = 2 * k * 2
    for encoding in ("en_t", "booth_r4"):
        acc = _config(encoding).accelerator()
        assert acc.operand_cycles(a, np.zeros((k, n), dtype=np.int64)) == 3 + beats
        assert acc.operand_cycles(a, np.full((k, n), 85)) == 3 + 4 * beats == acc.cycles(m, k, n)
        sparse = rng.choice([-128, -64, -16, -4, -1, 0, 1, 4, 16, 64], (k, n))  # one digit each
        assert acc.operand_cycles(a, sparse) == 3 + beats
    w = np.clip(np.rint(rng.normal(0, 24, 200_000)), -128, 127).astype(np.int64)
    for encoding, paper in (("en_t", 2.22), ("booth_r4", 2.41)):
        nz = np.array([sum(d != 0 for d in _digits(int(x), encoding)) for x in w[:2000]])
        mean = nonzero_digits(encode(w, encoding, 8, True)).mean()
        assert abs(mean - paper) < 0.03 and abs(nz.mean() - mean) < 0.1, (encoding, mean)
    acc = _config("en_t").accelerator()
    steps = bs.step_cycles(acc.params, w[: 4096 * 4].reshape(4096, 4))  # one 4-column group per step
    assert 2.22 < steps.mean() < 4  # synchronization costs the slowest column's digits


# -- RTL ----------------------------------------------------------------------------------------
@pytest.mark.rtl
def test_verify_and_gemm_on_verilator(run_cli, gemm_cli):
    """``tpegen verify`` (edge cases with zero and densest weights, two random GEMMs, random stalls)
    and ``tpegen gemm --backend rtl``: A @ W in the cycle simulator's data-dependent cycles."""
    code, stdout, err = run_cli("verify", CONFIG, "--cases", "2", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["passed"], (err, report)
    labels = [c["label"] for c in report["cases"]]
    assert {"zero weights", "densest weights", "mixed digit counts"} <= set(labels)
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (6, 21))
    w = np.clip(np.rint(rng.normal(0, 24, (21, 7))), -128, 127).astype(np.int64)
    w[:5] = 0
    rtl, c_rtl = gemm_cli(CONFIG, a, w, "rtl")
    cycle, c_cycle = gemm_cli(CONFIG, a, w, "cycle")
    golden, _ = gemm_cli(CONFIG, a, w, "golden")
    assert np.array_equal(c_rtl, a @ w) and np.array_equal(c_cycle, c_rtl)
    want = _reference_cycles(w, 6, 4, 4, "en_t")
    assert rtl["cycles"] == cycle["cycles"] == golden["cycles"] == want < 3 + 4 * 2 * 21 * 2


@pytest.mark.rtl
@pytest.mark.slow
def test_booth_unsigned_narrow_accumulator_on_verilator(run_cli, tmp_path):
    """Booth digits, unsigned activations, a 2x3 tile and a 16-bit accumulator that wraps."""
    raw = _raw()
    raw["name"] = "bitserial_booth_2x3_acc16"
    raw["pe"].update(encoding="booth_r4", act_signed=False, acc_bits=16)
    raw["array"].update(tile_m=2, tile_n=3)
    hw = tmp_path / "booth.yaml"
    hw.write_text(yaml.safe_dump(raw))
    code, stdout, err = run_cli("verify", hw, "--cases", "6", "--seed", "2", "--json")
    assert code == 0 and json.loads(stdout)["passed"], err


# -- RTL blocks in Amaranth's simulator ---------------------------------------------------------
@pytest.mark.parametrize("encoding", ["en_t", "booth_r4"])
@pytest.mark.parametrize("bits,signed", [(8, True), (8, False), (5, True)])
def test_hardware_digits_are_the_timing_models(encoding, bits, signed):
    """The column encoder's non-zero digits, which set the RTL's cycles, equal the timing model's
    (:mod:`tpegen.sim.radix4`) for every weight of the format."""
    from amaranth import signed as s_shape
    from amaranth import unsigned as u_shape
    from amaranth.sim import Simulator

    from tpegen.hw.pe.radix4 import Radix4Encoder

    enc = Radix4Encoder((s_shape if signed else u_shape)(bits), encoding)
    lo = -(1 << (bits - 1)) if signed else 0
    values = np.arange(lo, lo + (1 << bits))
    got: list[int] = []

    async def bench(ctx):
        for v in values.tolist():
            ctx.set(enc.w, v)
            got.append(sum(ctx.get(d.one) | ctx.get(d.two) for d in enc.digits))

    sim = Simulator(enc)
    sim.add_testbench(bench)
    sim.run()
    assert got == nonzero_digits(encode(values, encoding, bits, signed)).tolist()


def test_pe_digit_step():
    """``acc_out = wrap(acc_in + d * a * 4**pos)`` for every digit, position and extreme operands."""
    from amaranth.sim import Simulator

    from tpegen.hw.arrays.bitserial import BitSerialPE

    p = _config(acc_bits=16).pe
    pe = BitSerialPE(p)
    cases = [
        (a, d, pos, acc)
        for a in (-128, -1, 0, 1, 127, 77)
        for d in (-2, -1, 0, 1, 2)
        for pos in range(4)
        for acc in (-(1 << 15), -1, 0, (1 << 15) - 1)
    ]
    got: list[int] = []

    async def bench(ctx):
        for a, d, pos, acc in cases:
            ctx.set(pe.a, a)
            ctx.set(pe.digit.one, abs(d) == 1)
            ctx.set(pe.digit.two, abs(d) == 2)
            ctx.set(pe.digit.neg, d < 0)
            ctx.set(pe.pos, pos)
            ctx.set(pe.acc_in, acc)
            got.append(ctx.get(pe.acc_out))

    sim = Simulator(pe)
    sim.add_testbench(bench)
    sim.run()
    want = [(acc + d * a * 4**pos + (1 << 15)) % (1 << 16) - (1 << 15) for a, d, pos, acc in cases]
    assert got == want
