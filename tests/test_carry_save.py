"""Carry-save (compressed) accumulation of the integer MAC PE (``pe.accumulation``, issue 16 item 2).

* The datapath (:class:`tpegen.hw.pe.carry_save.CarrySaveMacDatapath`, Amaranth simulator) against
  Python integers: for any incoming (sum, carry) pair the outgoing pair sums to ``sum + carry + a *
  w`` modulo ``2**acc_bits`` -- exhaustive at small widths for every multiplier and signedness pair,
  with the accumulator as wide as the product so that sums wrap; chained over K steps from the
  empty pair, the pair sums to numpy's binary accumulator at every step (and the carry word is
  really used). The datapath has no adder or multiplier cell; the (prefix) edge adder adds the
  pair.
* Formal: ``tpegen verify --formal`` proves a carry-save step plus the edge adder equal to the
  binary reference, and catches a broken compressor with a real counterexample.
* The shipped carry-save arrays on Verilator: ``verify`` and ``tpegen gemm --backend rtl`` equal
  ``A @ W`` with the cycle simulator's cycles, the same as the binary array's.
* Config: other families reject ``pe.accumulation`` in one line naming ``pe.type``; the default
  leaves the PE repr (and so the Verilog) of existing designs alone.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from amaranth import Cat, Const, Signal
from amaranth.back import rtlil
from amaranth.sim import Simulator

from tpegen.config import config_from_dict, load_config
from tpegen.hw.pe import carry_save
from tpegen.hw.pe.mac_params import MULTIPLIERS, MacPEParams
from tpegen.sim.intgemm import operand_range
from tpegen.synth.formal import formal_verify

SIGNEDNESS = list(itertools.product((True, False), repeat=2))  # (act_signed, weight_signed)


def cs_params(**kw) -> MacPEParams:
    return MacPEParams(accumulation="carry_save", **kw)


def all_values(bits: int, signed: bool) -> np.ndarray:
    lo, hi = operand_range(bits, signed)
    return np.arange(lo, hi + 1, dtype=np.int64)


def step(p: MacPEParams, a, w, pairs=None) -> list[tuple[int, int]]:
    """The datapath's outgoing (sum, carry) for each (a, w, incoming pair), Amaranth simulator;
    with ``pairs=None`` a chain from the empty pair, each step fed the previous step's pair."""
    dp = p.datapath()
    out: list[tuple[int, int]] = []

    async def bench(ctx):
        pair = (0, 0)
        for n, (x, y) in enumerate(zip(a, w, strict=True)):
            s, c = pair if pairs is None else pairs[n]
            ctx.set(dp.a, int(x))
            ctx.set(dp.w, int(y))
            ctx.set(dp.acc_in.sum, s)
            ctx.set(dp.acc_in.carry, c)
            pair = (ctx.get(dp.acc_out.sum), ctx.get(dp.acc_out.carry))
            out.append(pair)

    sim = Simulator(dp)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_step_exhaustive_at_small_widths(multiplier):
    """Every operand pair at 4x4, 3x5 and 5x2 bits, four signedness pairs, random incoming pairs
    (and the extremes), ``acc_bits = act_bits + weight_bits``: the pair's sum wraps."""
    rng = np.random.default_rng(7)
    for (ab, wb), (sa, sw) in itertools.product(((4, 4), (3, 5), (5, 2)), SIGNEDNESS):
        p = cs_params(
            act_bits=ab,
            weight_bits=wb,
            act_signed=sa,
            weight_signed=sw,
            acc_bits=ab + wb,
            multiplier=multiplier,
        )
        a, w = (g.ravel() for g in np.meshgrid(all_values(ab, sa), all_values(wb, sw)))
        mask = (1 << p.acc_bits) - 1
        pairs = [tuple(int(v) for v in rng.integers(0, mask + 1, 2)) for _ in a]
        pairs[:3] = [(mask, mask), (0, 0), (mask, 1)]
        got = step(p, a, w, pairs)
        want = [(s + c + int(x) * int(y)) & mask for x, y, (s, c) in zip(a, w, pairs, strict=True)]
        assert [(s + c) & mask for s, c in got] == want, p


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_chained_steps_track_the_binary_accumulator(multiplier):
    """INT8 x INT8 into 32 bits, and UINT8 x INT8 into a 16-bit accumulator that wraps: K steps
    from the empty pair, each fed the previous pair; after every step the pair sums to numpy's
    int64 running sum wrapped to ``acc_bits``. The carry word is not identically zero."""
    rng = np.random.default_rng(11)
    for sa, acc_bits in ((True, 32), (False, 16)):
        p = cs_params(act_signed=sa, acc_bits=acc_bits, multiplier=multiplier)
        lo, hi = operand_range(8, sa)
        a = np.concatenate([[lo] * 6 + [hi] * 6, rng.integers(lo, hi + 1, 60)])
        w = np.concatenate([[-128, 127] * 6, rng.integers(-128, 128, 60)])
        mask = (1 << acc_bits) - 1
        binary = np.cumsum(a * w) & mask  # the binary PE's accumulator (as unsigned bits)
        pairs = step(p, a, w)
        assert [(s + c) & mask for s, c in pairs] == binary.tolist()
        assert any(c for _, c in pairs)


def test_datapath_has_no_adder_or_multiplier():
    for multiplier in MULTIPLIERS:
        text = rtlil.convert(cs_params(multiplier=multiplier).datapath())
        assert "cell $add " not in text and "cell $mul " not in text and "cell $sub " not in text


@pytest.mark.parametrize("acc_bits", (6, 32, 33))
def test_edge_adder_adds_the_pair(acc_bits):
    """The Kogge-Stone edge adder: every pair at 6 bits, edge and random pairs at 32 and 33 bits
    (a width that is not a power of two), against ``(sum + carry) mod 2**acc_bits`` as signed."""
    edge = cs_params(act_bits=2, weight_bits=2, acc_bits=acc_bits).normalizer()
    mask = (1 << acc_bits) - 1
    if acc_bits <= 6:
        pairs = list(itertools.product(range(mask + 1), repeat=2))
    else:
        rng = np.random.default_rng(acc_bits)
        edges = [0, 1, mask, mask >> 1, 1 << (acc_bits - 1)]
        pairs = list(itertools.product(edges, repeat=2))
        pairs += [(int(rng.integers(0, mask + 1)), int(rng.integers(0, mask + 1))) for _ in range(2000)]
    out = []

    async def bench(ctx):
        for s, c in pairs:
            ctx.set(edge.acc_in.sum, s)
            ctx.set(edge.acc_in.carry, c)
            out.append(ctx.get(edge.acc_out))

    sim = Simulator(edge)
    sim.add_testbench(bench)
    sim.run()
    half = 1 << (acc_bits - 1)
    assert out == [(s + c + half) % (2 * half) - half for s, c in pairs]


# ---------------------------------------------------------------------------------- formal


def small_config(multiplier: str = "array"):
    pe = {"type": "mac", "act_bits": 4, "weight_bits": 4, "acc_bits": 10, "accumulation": "carry_save"}
    pe["multiplier"] = multiplier
    return config_from_dict({"name": "cs_small", "pe": pe, "array": {"rows": 2, "cols": 2}})


@pytest.mark.slow  # a Yosys SAT proof (~30 s); the knob stays on Verilator in the default run
def test_formal_proves_carry_save_step_and_edge_adder():
    report = formal_verify(small_config("booth_r4"))
    assert report.passed, list(report.lines())
    names = {c.name for c in report.checks}
    assert "mac datapath == reference" in names and "mac datapath gate level == RTL" in names
    assert all("acc_in.sum + acc_in.carry" in c.statement for c in report.checks if "reference" in c.name)


@pytest.mark.slow
def test_formal_catches_a_broken_compressor(monkeypatch):
    """A 3:2 adder whose carry misses ``z`` (``x & y`` instead of the majority); under -m slow to
    keep the default run short (the proof above is in it)."""

    def broken(m, x, y, z, name):
        s, c = Signal(len(x), name=f"{name}_s"), Signal(len(x), name=f"{name}_c")
        m.d.comb += [s.eq(x ^ y ^ z), c.eq(Cat(Const(0, 1), (x & y)[:-1]))]
        return s, c

    monkeypatch.setattr(carry_save, "full_adders", broken)
    report = formal_verify(small_config())
    [bad] = [c for c in report.checks if c.name == "mac datapath == reference"]
    assert (bad.proved, bad.status) == (False, "not equivalent")
    cex = bad.counterexample

    def signed(v, bits):
        v &= (1 << bits) - 1
        return v - (1 << bits) if v >> (bits - 1) else v

    a, w, pair = signed(cex.inputs["a"], 4), signed(cex.inputs["w"], 4), cex.inputs["acc_in"]
    expected = signed((pair & 1023) + (pair >> 10) + a * w, 10)
    assert signed(cex.reference["acc_out"], 10) == expected
    assert signed(cex.design["acc_out"], 10) != expected


# ---------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "pe",
    [
        {"type": "dot", "organization": "addertree"},
        {"type": "dot", "organization": "cube3d"},
        {"type": "fma"},
        {"type": "lut"},
    ],
)
def test_other_families_reject_accumulation_in_one_line(bad_config, pe):
    bad_config(
        {"pe": {**pe, "accumulation": "carry_save"}, "array": {}},
        "pe.accumulation",
        f"left out for pe.type {pe['type']!r}",
    )


def test_invalid_accumulation_is_a_one_line_config_error(bad_config):
    bad_config(
        {"pe": {"type": "mac", "accumulation": "redundant"}, "array": {"rows": 2, "cols": 2}},
        "pe.accumulation",
        "one of 'binary', 'carry_save'",
    )


def test_default_accumulation_leaves_existing_designs_alone():
    pe = load_config("int8_os_8x8").pe
    assert pe.accumulation == "binary" and "accumulation" not in repr(pe)
    assert "accumulation='carry_save'" in repr(dataclasses.replace(pe, accumulation="carry_save"))


# ------------------------------------------------------------------------------ RTL arrays

# The OS array in the default run (a Verilator build is ~20 s of CPU); WS and EN-T under -m slow.
CARRY_SAVE = [
    "bitweight/systolic_os_carry_save_4x4",
    pytest.param("bitweight/systolic_ws_carry_save_4x4", marks=pytest.mark.slow),
    pytest.param("bitweight/systolic_os_en_t_carry_save_4x4", marks=pytest.mark.slow),
]


@pytest.mark.rtl
@pytest.mark.parametrize("name", CARRY_SAVE)
def test_carry_save_config_verifies_on_verilator(name, knob_array_check):
    assert load_config(name).pe.accumulation == "carry_save"
    rng = np.random.default_rng(5)
    a, w = rng.integers(-128, 128, (6, 11)), rng.integers(-128, 128, (11, 7))
    a[0, :], w[:, 0] = -128, -128  # the extremes reach every PE
    # the edge adder is combinational: the binary array of the same shape takes as many cycles
    knob_array_check(name, a, w, {"accumulation": "binary"}, verify_seed=17)
