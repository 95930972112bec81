"""Multiplier encoding of the integer MAC PE (``pe.multiplier``, issue 16 item 1).

* The numpy model of each encoding (:mod:`tpegen.sim.radix4`) against plain integers: every
  operand of 2..16 bits rebuilt from its digits, and the product rebuilt from partial products
  for all 65,536 pairs of 8-bit operands at each signedness; hand-worked digit vectors; the
  average non-zero digits on normally distributed int8 data next to the papers' figures.
* The recoded datapath (:class:`tpegen.hw.pe.mac.MacDatapath`, Amaranth simulator) against
  ``wrap(acc_in + a * w)`` in Python integers: exhaustive at small widths for all four signedness
  pairs, every 8-bit weight against edge activations, random 16-bit weights; its RTLIL has no
  multiplier cell.
* The shipped ``configs/bitweight`` arrays on Verilator: ``verify`` and ``tpegen gemm --backend
  rtl`` equal ``A @ W`` with the cycle simulator's cycles (the same as the plain array's).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from tpegen.config import load_config
from tpegen.hw.pe.mac_params import MacPEParams, radix4_digits
from tpegen.sim.intgemm import operand_range
from tpegen.sim.radix4 import ENCODERS, encode, from_digits, nonzero_digits, product_from_digits

ENCODINGS = tuple(ENCODERS)
SIGNEDNESS = list(itertools.product((True, False), repeat=2))  # (act_signed, weight_signed)


def all_values(bits: int, signed: bool) -> np.ndarray:
    lo, hi = operand_range(bits, signed)
    return np.arange(lo, hi + 1, dtype=np.int64)


# ---------------------------------------------------------------------------------- numpy model


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_model_digits_represent_every_operand(encoding):
    for bits, signed in itertools.product(range(2, 17), (True, False)):
        x = all_values(bits, signed)
        d = encode(x, encoding, bits, signed)
        assert d.shape == (x.size, radix4_digits(bits, signed))
        assert np.array_equal(from_digits(d), x), (bits, signed)
        if encoding == "booth_r4":
            assert d.min() >= -2 and d.max() <= 2
        else:  # magnitude digits in {-1, 0, 1, 2}, the operand's sign folded into every digit
            magnitude_digits = d * np.where(x < 0, -1, 1)[:, None]
            assert magnitude_digits.min() >= -1 and magnitude_digits.max() <= 2


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("act_signed,weight_signed", SIGNEDNESS)
def test_model_products_every_int8_pair(encoding, act_signed, weight_signed):
    a, w = all_values(8, act_signed), all_values(8, weight_signed)
    digits = encode(w, encoding, 8, weight_signed)
    products = product_from_digits(a[:, None], digits[None, :, :])  # 256 x 256 pairs
    assert np.array_equal(products, a[:, None] * w[None, :])


# digits, least significant first, worked by hand from the definitions
HAND = [
    # value, bits, signed, booth_r4, en_t
    (2, 8, True, [-2, 1, 0, 0], [2, 0, 0, 0]),
    (6, 8, True, [-2, 2, 0, 0], [2, 1, 0, 0]),
    (-3, 8, True, [1, -1, 0, 0], [1, -1, 0, 0]),
    (127, 8, True, [-1, 0, 0, 2], [-1, 0, 0, 2]),
    (-128, 8, True, [0, 0, 0, -2], [0, 0, 0, -2]),
    (-86, 8, True, [-2, -1, -1, -1], [-2, -1, -1, -1]),  # -0b01010110
    (255, 8, False, [-1, 0, 0, 0, 1], [-1, 0, 0, 0, 1]),
    (170, 8, False, [-2, -1, -1, -1, 1], [2, 2, 2, 2, 0]),  # 0b10101010
]


@pytest.mark.parametrize("value,bits,signed,booth,en_t", HAND)
def test_model_hand_worked_digits(value, bits, signed, booth, en_t):
    assert encode(np.array(value), "booth_r4", bits, signed).tolist() == booth
    assert encode(np.array(value), "en_t", bits, signed).tolist() == en_t


def test_nonzero_digit_averages_on_normal_int8_data():
    """Average non-zero digits (partial products) per int8 weight. On N(0, 24) data the model gives
    the papers' 2.41 (modified Booth) and 2.22 (EN-T) to within 0.02; on N(0, 32) 2.56 and 2.37.
    Over all 256 int8 values Booth averages exactly 3 (each digit is zero for 2 of its 8 triplets)."""
    rng = np.random.default_rng(16)
    for sigma, booth, en_t in ((24, 2.41, 2.22), (32, 2.564, 2.370)):
        x = np.clip(np.rint(rng.normal(0, sigma, 400_000)), -128, 127)
        mean = {e: nonzero_digits(encode(x, e, 8, True)).mean() for e in ENCODINGS}
        assert mean["booth_r4"] == pytest.approx(booth, abs=0.02), sigma
        assert mean["en_t"] == pytest.approx(en_t, abs=0.02), sigma
    every = all_values(8, True)
    assert nonzero_digits(encode(every, "booth_r4", 8, True)).mean() == 3.0
    assert nonzero_digits(encode(every, "en_t", 8, True)).mean() < 3.0


def test_model_rejects_out_of_range_operands():
    from tpegen.errors import ConfigError

    with pytest.raises(ConfigError, match="signed 8-bit values in -128..127"):
        encode(np.array([128]), "en_t", 8, True)
    with pytest.raises(ConfigError, match="encoding: must be one of booth_r4, en_t"):
        encode(np.array([1]), "booth_r3", 8, True)


# ------------------------------------------------------------------------------ RTL datapath


def simulate_datapath(p: MacPEParams, a: np.ndarray, w: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """``acc_out`` of ``p``'s datapath for each (a, w, acc_in) in the Amaranth simulator."""
    dp = p.datapath()
    out: list[int] = []

    async def bench(ctx):
        for x, y, z in zip(a.tolist(), w.tolist(), acc.tolist(), strict=True):
            ctx.set(dp.a, x)
            ctx.set(dp.w, y)
            ctx.set(dp.acc_in, z)
            out.append(ctx.get(dp.acc_out))

    sim = Simulator(dp)
    sim.add_testbench(bench)
    sim.run()
    return np.array(out, dtype=object)


def expected(a: np.ndarray, w: np.ndarray, acc: np.ndarray, acc_bits: int) -> np.ndarray:
    """``wrap(acc + a * w)`` in Python integers (two's complement, ``acc_bits``)."""
    half = 1 << (acc_bits - 1)
    triples = zip(a.tolist(), w.tolist(), acc.tolist(), strict=True)
    return np.array([(z + x * y + half) % (2 * half) - half for x, y, z in triples])


def check_datapath(p: MacPEParams, a: np.ndarray, w: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lo, hi = operand_range(p.acc_bits, True)
    acc = rng.integers(lo, hi + 1, a.size, dtype=np.int64)
    acc[: min(8, acc.size)] = [lo, hi, 0, -1, lo, hi, 0, -1][: min(8, acc.size)]
    got = simulate_datapath(p, a, w, acc)
    assert np.array_equal(got, expected(a, w, acc, p.acc_bits)), p


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_datapath_exhaustive_at_small_widths(encoding):
    """Every operand pair at 4x4, 3x5 and 5x2 bits (odd widths: a half-filled top bit pair), all
    four signedness pairs; the accumulator one bit wider than the product, so sums wrap."""
    for (ab, wb), (sa, sw) in itertools.product(((4, 4), (3, 5), (5, 2)), SIGNEDNESS):
        p = MacPEParams(
            act_bits=ab,
            weight_bits=wb,
            act_signed=sa,
            weight_signed=sw,
            acc_bits=ab + wb + 1,
            multiplier=encoding,
        )
        a, w = (g.ravel() for g in np.meshgrid(all_values(ab, sa), all_values(wb, sw)))
        check_datapath(p, a, w, seed=ab * 10 + wb)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_datapath_int8_every_weight_and_int16_random(encoding):
    """INT8 x INT8 and UINT8 x INT8: every weight against the edge activations; INT8 x 16-bit
    weights (signed and unsigned) on edge and random operands."""
    rng = np.random.default_rng(3)
    for sa in (True, False):
        p = MacPEParams(act_signed=sa, multiplier=encoding)
        lo, hi = operand_range(8, sa)
        edges = np.array(sorted({lo, lo + 1, -1 if sa else 1, 0, 1, hi - 1, hi}))
        a, w = (g.ravel() for g in np.meshgrid(edges, all_values(8, True)))
        check_datapath(p, a, w, seed=1)
    for sw in (True, False):
        p = MacPEParams(weight_bits=16, weight_signed=sw, acc_bits=40, multiplier=encoding)
        wlo, whi = operand_range(16, sw)
        w = np.concatenate(
            [[wlo, wlo + 1, -1 if sw else 1, 0, 1, whi - 1, whi] * 2, rng.integers(wlo, whi + 1, 200)]
        )
        a = np.concatenate([[-128] * 7 + [127] * 7, rng.integers(-128, 128, 200)])
        check_datapath(p, a, w, seed=2)


@pytest.mark.parametrize("multiplier", ("array", *ENCODINGS))
def test_only_the_array_multiplier_has_a_multiply_cell(multiplier):
    text = rtlil.convert(MacPEParams(multiplier=multiplier).datapath())
    assert ("cell $mul " in text) == (multiplier == "array")


# ---------------------------------------------------------------------------------- config


def test_invalid_multiplier_is_a_one_line_config_error(bad_config):
    bad_config(
        {"pe": {"type": "mac", "multiplier": "wallace"}, "array": {"rows": 2, "cols": 2}},
        "pe.multiplier",
        "one of 'array', 'booth_r4', 'en_t'",
    )


def test_default_multiplier_leaves_existing_designs_alone():
    """``array`` is the default, and a default PE's repr (which names the array's shared Verilog
    modules) is the one from before the field existed, so their Verilog is unchanged."""
    pe = load_config("int8_os_8x8").pe
    assert pe.multiplier == "array" and "multiplier" not in repr(pe)
    assert "multiplier='en_t'" in repr(dataclasses.replace(pe, multiplier="en_t"))


# ------------------------------------------------------------------------------ RTL arrays

# One array in the default run (a Verilator build is ~20 s of CPU; the datapath tests above cover
# both encodings); all four under -m slow.
BITWEIGHT = [
    "bitweight/systolic_ws_en_t_4x4",
    pytest.param("bitweight/systolic_os_booth_r4_4x4", marks=pytest.mark.slow),
    pytest.param("bitweight/systolic_os_en_t_4x4", marks=pytest.mark.slow),
    pytest.param("bitweight/systolic_ws_booth_r4_4x4", marks=pytest.mark.slow),
]


@pytest.mark.rtl
@pytest.mark.parametrize("name", BITWEIGHT)
def test_bitweight_config_verifies_on_verilator(name, knob_array_check):
    rng = np.random.default_rng(4)
    a, w = rng.integers(-128, 128, (7, 13)), rng.integers(-128, 128, (13, 6))
    a[0, :], w[:, 0] = -128, -128  # the extremes reach every PE
    # the encoding changes no latency: the plain array of the same shape takes as many cycles
    knob_array_check(name, a, w, {"multiplier": "array"}, verify_seed=16)
