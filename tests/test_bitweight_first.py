"""Reduce by bit-weight first (``pe.reduction: bitweight``, issue 16 item 3; Wu et al., HPCA 2025, OPT2).

* The arithmetic the tree relies on, in numpy integers written here (no tpegen model): the weights'
  digits (two's-complement bits, modified Booth and EN-T radix-4 digits) per bit-weight ``j``, the
  column sums ``S_j = A @ D_j`` across K, shifted and added, equal ``A @ W``.
* The config errors, and that the default keeps the repr (the Verilog is hashed in the report).
* ``configs/bitweight/addertree_bitweight_first_4x4.yaml`` on Verilator: ``tpegen verify`` and
  ``tpegen gemm --backend rtl`` equal ``A @ W`` with the cycle simulator's cycles; under ``-m slow``
  the other digit encodings, signedness, pipeline stages and a wrapping accumulator on small tiles.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import load_config
from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.sim.intgemm import operand_range

CONFIG = CONFIGS / "bitweight/addertree_bitweight_first_4x4.yaml"
RNG = np.random.default_rng(16)


def _bits(w: np.ndarray, bits: int, signed: bool) -> list[np.ndarray]:
    """Radix-2 digits: bit j of the two's-complement weight; a signed weight's top bit weighs -1."""
    u = w.astype(np.int64) % (1 << bits)
    digits = [(u >> j) & 1 for j in range(bits)]
    if signed:
        digits[-1] = -digits[-1]
    return digits


def _booth(w: np.ndarray, bits: int, signed: bool) -> list[np.ndarray]:
    """Modified Booth digits -2 w[2i+1] + w[2i] + w[2i-1] of the sign- (or zero-) extended weight."""
    count = (bits + 1) // 2 if signed else bits // 2 + 1
    u = w.astype(np.int64) % (1 << (2 * count))  # two's complement over 2 * count bits
    bit = [np.zeros_like(u)] + [(u >> j) & 1 for j in range(2 * count)]  # bit[j + 1] = w[j]
    return [-2 * bit[2 * i + 2] + bit[2 * i + 1] + bit[2 * i] for i in range(count)]


def _en_t(w: np.ndarray, bits: int, signed: bool) -> list[np.ndarray]:
    """EN-T digits: the magnitude's bit pairs plus a carry, 3 -> -1 and 4 -> 0 with a carry out,
    the weight's sign folded into every digit."""
    count = (bits + 1) // 2 if signed else bits // 2 + 1
    mag, sign = np.abs(w.astype(np.int64)), np.where(w < 0, -1, 1)
    carry, digits = np.zeros_like(mag), []
    for i in range(count):
        v = ((mag >> (2 * i)) & 3) + carry
        carry = (v >= 3).astype(np.int64)
        digits.append(sign * np.where(v >= 3, v - 4, v))
    return digits


@pytest.mark.parametrize("signed", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize(("digits", "radix"), [(_bits, 2), (_booth, 4), (_en_t, 4)])
def test_column_sums_shifted_and_added_are_the_dot_product(digits, radix, signed):
    a_signed, w_signed = signed
    for bits in (2, 3, 5, 8):
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if w_signed else (0, 1 << bits)
        w = np.concatenate([np.arange(lo, hi), RNG.integers(lo, hi, 64 * 9 - (hi - lo))])
        w = w.reshape(64, 9)  # every weight value, then random ones
        a = RNG.integers(-128 if a_signed else 0, 128 if a_signed else 256, (5, 64))
        d = digits(w, bits, w_signed)
        assert all(np.all(np.abs(dj) <= (1 if radix == 2 else 2)) for dj in d)
        columns = [a @ dj for dj in d]  # S_j: the unshifted partial products of bit-weight j, summed over K
        assert np.array_equal(sum(s * radix**j for j, s in enumerate(columns)), a @ w)


def test_config_and_default_repr():
    p = load_config(CONFIG).pe
    assert (p.organization, p.reduction, p.multiplier, p.multipliers) == (
        "addertree",
        "bitweight",
        "en_t",
        16,
    )
    assert "reduction" in repr(p) and "multiplier" in repr(p)
    assert "reduction" not in repr(DotTileParams()) and "multiplier" not in repr(DotTileParams())


@pytest.mark.parametrize(
    ("pe", "field", "allowed"),
    [
        ({"type": "dot", "reduction": "digits"}, "pe.reduction", "'products', 'bitweight'"),
        ({"type": "dot", "multiplier": "en_t"}, "pe.multiplier", "'array' with pe.reduction 'products'"),
        ({"type": "dot", "reduction": "bitweight", "multiplier": "wallace"}, "pe.multiplier", "'booth_r4'"),
        ({"type": "mac", "reduction": "bitweight"}, "pe.reduction", "unknown key"),
        ({"type": "lut", "reduction": "bitweight"}, "pe.reduction", "unknown key"),
    ],
)
def test_config_errors_name_the_field(bad_config, pe, field, allowed):
    bad_config({"pe": pe, "array": {}}, field, allowed)


def _check_on_verilator(run_cli, gemm_cli, hw, shape: tuple[int, int, int]) -> None:
    """``verify`` passes (bubbles and backpressure included); ``gemm --backend rtl`` on an (M, K, N)
    GEMM with the most negative weight equals the wrapped ``A @ W`` in the cycle simulator's cycles."""
    code, stdout, err = run_cli("verify", hw, "--cases", "2", "--json")
    report = json.loads(stdout)
    assert code == 0 and report["passed"], (err, report)
    assert all(c["stall_bit_exact"] for c in report["cases"])
    p = load_config(hw).pe
    a = RNG.integers(*operand_range(p.act_bits, p.act_signed), shape[:2], endpoint=True)
    w_lo, w_hi = operand_range(p.weight_bits, p.weight_signed)
    w = RNG.integers(w_lo, w_hi, shape[1:], endpoint=True)
    w[0] = w_lo if p.weight_signed else w_hi  # EN-T's magnitude 2**(bits-1), Booth's top digit -2
    rtl, c_rtl = gemm_cli(hw, a, w, "rtl")
    cycle, c_cycle = gemm_cli(hw, a, w, "cycle")
    half = 1 << (p.acc_bits - 1)
    wrapped = (a.astype(np.int64) @ w + half) % (2 * half) - half
    assert np.array_equal(c_rtl, wrapped) and np.array_equal(c_cycle, wrapped)
    assert rtl["cycles"] == cycle["cycles"]


@pytest.mark.rtl
def test_addertree_bitweight_first_on_verilator(run_cli, gemm_cli):
    _check_on_verilator(run_cli, gemm_cli, CONFIG, (3, 10, 9))  # K, N not multiples of the 1x4x4 tile


# Small tiles for what the shipped config does not exercise: the other digit encodings, unsigned
# operands, odd widths, tile_k = 1, every register level count, a wrapping 16-bit accumulator.
SMALL = {
    "array_s0": ({"multiplier": "array"}, {}),
    "array_ua_s2_acc16": ({"multiplier": "array", "act_signed": False, "acc_bits": 16}, {"stages": 2}),
    "array_uw5_a6_s3": (
        {"multiplier": "array", "weight_signed": False, "weight_bits": 5, "act_bits": 6},
        {"stages": 3},
    ),
    "booth_r4_unsigned_s1": (
        {"multiplier": "booth_r4", "weight_signed": False, "act_signed": False},
        {"stages": 1},
    ),
    "booth_r4_k1": ({"multiplier": "booth_r4"}, {"tile_k": 1, "stages": 1}),
    "en_t_uw_a7_acc18_s3": (
        {"multiplier": "en_t", "weight_signed": False, "act_bits": 7, "acc_bits": 18},
        {"stages": 3},
    ),
}


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_small_tiles_on_verilator(run_cli, gemm_cli, tmp_path, name):
    pe, array = SMALL[name]
    raw = {
        "name": f"bitweight_{name}",
        "pe": {"type": "dot", "organization": "matrix2d", "reduction": "bitweight", **pe},
        "array": {"tile_m": 2, "tile_n": 2, "tile_k": 4, "stages": 0, **array},
    }
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml.safe_dump(raw))
    _check_on_verilator(run_cli, gemm_cli, hw, (3, 9, 5))
