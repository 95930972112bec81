"""Numeric, timing and driver model of the LUT tensor core (no Verilator)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tpegen.errors import ConfigError
from tpegen.sim.lut import (
    LutCoreParams,
    bit_planes,
    encode_weights,
    lookup,
    lut_act_beats,
    lut_decode_results,
    lut_gemm,
    lut_gemm_cycles,
    lut_gemm_plan,
    lut_macs_per_cycle,
    lut_macs_per_cycle_per_weight_bit,
    lut_tile_cycles,
    lut_weight_beats,
    precompute_tables,
    reference_gemm,
    symmetric_scale_zero_point,
    symmetric_value,
    weight_codes,
)
from tpegen.sim.packing import pack_fields, unpack_lanes, wrap

WEIGHT_MODES = [(1, False), (2, False), (2, True), (3, False), (4, False)]


def _values(b: int, ternary: bool) -> np.ndarray:
    if b == 1:
        return np.array([-1, 1])
    if ternary:
        return np.array([-1, 0, 1])
    return np.arange(-(1 << (b - 1)), 1 << (b - 1))


def _rand_weights(rng, b: int, ternary: bool, shape) -> np.ndarray:
    vals = _values(b, ternary)
    return vals[rng.integers(0, len(vals), shape)]


# ---- encoding algebra ----------------------------------------------------------------------


@pytest.mark.parametrize("b", [1, 2, 3, 4])
def test_symmetric_reencoding(b: int) -> None:
    s = _values(b, False)
    q = weight_codes(s, b)
    assert q.min() == 0 and q.max() == (1 << b) - 1
    qs = symmetric_value(q, b)
    assert np.array_equal(qs, s if b == 1 else 2 * s + 1)
    planes = bit_planes(q, b)  # each plane is a +-1 vector after 2w-1
    assert np.array_equal(((2 * planes - 1) << np.arange(b)[:, None]).sum(axis=0), qs)


@pytest.mark.parametrize("b", [1, 2, 3, 4])
def test_scale_zero_point_bookkeeping(b: int) -> None:
    q = np.arange(1 << b)
    scale, z = 0.37, np.array([0, 3, (1 << b) - 1])[:, None]
    s2, z2 = symmetric_scale_zero_point(scale, z, b)
    qs = 2 * q - ((1 << b) - 1)
    assert np.allclose(scale * (q - z), s2 * (qs - z2))
    assert s2 == scale / 2 and np.array_equal(z2, 2 * z + 1 - (1 << b))


@pytest.mark.parametrize("g", [1, 2, 3, 4, 5, 6])
def test_half_table_and_index_complement(g: int) -> None:
    rng = np.random.default_rng(g)
    a = rng.integers(-128, 128, (7, g))
    a[0] = -128
    a[1] = 127
    tables = precompute_tables(a)  # (7, 2^(g-1))
    u = np.arange(1 << g)
    signs = 2 * ((u[:, None] >> np.arange(g)) & 1) - 1  # (2^g, g)
    full = a @ signs.T  # (7, 2^g): T[u]
    assert np.array_equal(full[:, ~u & ((1 << g) - 1)], -full)  # T[~u] = -T[u]
    assert np.array_equal(tables, full[:, (1 << (g - 1)) :])  # stored half: top bit set
    assert np.array_equal(tables[:, -1], a.sum(axis=1))  # all-plus entry = activation sum
    # every full index, encoded with the offline complement, looks up T[u] without an inverter
    bits = (u[None, :] >> np.arange(g)[:, None]) & 1  # (g, 2^g): K axis first
    index = encode_weights_from_bits(bits, g)  # (1, 2^g)
    got = lookup(tables[:, None, :], index, g)[:, 0, :]
    assert np.array_equal(got, full)
    assert index.max() < (1 << g)


def encode_weights_from_bits(bits: np.ndarray, g: int) -> np.ndarray:
    from tpegen.sim.lut import encode_index

    return encode_index(bits, g)


# ---- exhaustive and randomized GEMM -----------------------------------------------------------


@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize(("b", "ternary"), WEIGHT_MODES)
@pytest.mark.parametrize("g", [2, 3, 4])
def test_exhaustive_group(g: int, b: int, ternary: bool, act_bits: int) -> None:
    """All weight vectors of one group against every min/max activation pattern (+ zeros, +-1)."""
    vals = _values(b, ternary)
    W = np.array(list(itertools.product(vals, repeat=g))).T  # (g, |vals|^g)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    A = np.array(list(itertools.product([lo, hi], repeat=g)) + [[0] * g, [1, -1] * (g // 2) + [1] * (g % 2)])
    p = LutCoreParams(
        group_size=g, act_bits=act_bits, weight_bits=b, ternary=ternary, tile_m=3, tile_n=16, tile_k=1
    )
    assert np.array_equal(lut_gemm(A, W, p), A @ W)


@pytest.mark.parametrize("act_bits", [8, 16])
@pytest.mark.parametrize(("b", "ternary"), WEIGHT_MODES)
def test_random_large(b: int, ternary: bool, act_bits: int) -> None:
    rng = np.random.default_rng(b * 10 + act_bits + ternary)
    M, K, N = 37, 301, 129
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    A = rng.integers(lo, hi + 1, (M, K))
    A[0] = lo
    A[1] = hi
    W = _rand_weights(rng, b, ternary, (K, N))
    W[:, 0] = _values(b, ternary).min()
    for g, (tm, tn, tk) in [(4, (2, 64, 4)), (3, (5, 7, 2)), (1, (1, 3, 8)), (6, (3, 16, 1))]:
        p = LutCoreParams(
            group_size=g,
            act_bits=act_bits,
            weight_bits=b,
            ternary=ternary,
            acc_bits=48,
            tile_m=tm,
            tile_n=tn,
            tile_k=tk,
        )
        assert np.array_equal(lut_gemm(A, W, p), A.astype(np.int64) @ W)


@pytest.mark.parametrize(("b", "ternary"), WEIGHT_MODES)
def test_accumulator_wrap(b: int, ternary: bool) -> None:
    """With a narrow accumulator the result wraps exactly like a two's-complement acc_bits register."""
    rng = np.random.default_rng(b)
    base = LutCoreParams(
        group_size=4, act_bits=8, weight_bits=b, ternary=ternary, tile_m=2, tile_n=4, tile_k=2
    )
    p = LutCoreParams(**{**base.__dict__, "acc_bits": base.min_acc_bits})
    A = np.full((3, 80), -128)
    A[1] = rng.integers(-128, 128, 80)
    W = _rand_weights(rng, b, ternary, (80, 5))
    W[:, 0] = _values(b, ternary).min()
    exact = A @ W
    assert np.abs(exact).max() >= 1 << (p.acc_bits - 1)  # really overflows
    assert np.array_equal(lut_gemm(A, W, p), wrap(exact, p.acc_bits))
    assert np.array_equal(reference_gemm(A, W, p.acc_bits), wrap(exact, p.acc_bits))


def test_worst_case_tile_fits_min_widths() -> None:
    for b, A_bits, g, tk in itertools.product([1, 2, 3, 4], [8, 16], [1, 2, 4, 6], [1, 3]):
        p = LutCoreParams(group_size=g, act_bits=A_bits, weight_bits=b, tile_m=1, tile_n=1, tile_k=tk)
        p = LutCoreParams(**{**p.__dict__, "acc_bits": p.min_acc_bits})
        amin = -(1 << (A_bits - 1))
        wext = -1 if b == 1 else -(1 << (b - 1))
        A = np.full((1, p.k_tile), amin)
        W = np.full((p.k_tile, 1), wext)
        assert lut_gemm(A, W, p)[0, 0] == p.k_tile * amin * wext
        tables = precompute_tables(np.full((1, g), amin))
        assert np.abs(tables).max() <= (1 << (p.table_bits - 1))


def test_rejects_bad_values() -> None:
    p = LutCoreParams(weight_bits=1, tile_n=2)
    with pytest.raises(ConfigError, match="-1 or \\+1"):
        lut_gemm(np.zeros((1, 4), dtype=int), np.zeros((4, 2), dtype=int), p)
    pt = LutCoreParams(weight_bits=2, ternary=True)
    with pytest.raises(ConfigError, match="ternary"):
        encode_weights(np.full((4, 1), -2), 2, 4, ternary=True)
    with pytest.raises(ConfigError, match="-8..7"):
        lut_gemm(np.zeros((1, 4), dtype=int), np.full((4, 1), 8), LutCoreParams())
    with pytest.raises(ConfigError, match="-128..127"):
        lut_gemm(np.full((1, 4), 128), np.zeros((4, 1), dtype=int), LutCoreParams())
    with pytest.raises(ConfigError, match="shapes"):
        lut_gemm(np.zeros((1, 4), dtype=int), np.zeros((3, 1), dtype=int), pt)


# ---- params ---------------------------------------------------------------------------------


def test_params_defaults() -> None:
    p = LutCoreParams()
    assert (p.group_size, p.act_bits, p.weight_bits, p.tile_m, p.tile_n, p.tile_k) == (4, 8, 4, 2, 64, 4)
    assert p.entries == 8 and p.k_tile == 16 and p.table_bits == 11 and p.acc_bits == 32
    assert LutCoreParams(act_bits=16, group_size=6).table_bits == 16 + 2 + 1
    assert p.weight_payload_bits == 64 * 4 * 4
    assert p.act_payload_bits == 2 * 16 * 8 + 2
    assert p.result_payload_bits == 2 * 64 * 32


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"act_bits": 12}, "pe.act_bits", "must be one of 8, 16"),
        ({"group_size": 7}, "pe.group_size", "1..6"),
        ({"group_size": 0}, "pe.group_size", "1..6"),
        ({"weight_bits": 5}, "pe.weight_bits", "1..4"),
        ({"weight_bits": True}, "pe.weight_bits", "integer"),
        ({"ternary": 1}, "pe.ternary", "true or false"),
        ({"ternary": True, "weight_bits": 4}, "pe.weight_bits", "2 when pe.ternary"),
        ({"table_bits": 10}, "pe.table_bits", "11..32"),
        ({"acc_bits": 15}, "pe.acc_bits", "16..60"),
        ({"acc_bits": 61}, "pe.acc_bits", "16..60"),
        ({"tile_m": 0}, "array.tile_m", "1..64"),
        ({"tile_n": 2000}, "array.tile_n", "1..1024"),
        ({"tile_k": 2.0}, "array.tile_k", "1..64"),
    ],
)
def test_params_validation(kwargs, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        LutCoreParams(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": must be")
    assert fragment in str(info.value)


def test_timing_formulas() -> None:
    p = LutCoreParams(weight_bits=3, tile_m=2, tile_n=8, tile_k=2, group_size=4)
    assert lut_tile_cycles(p) == 2 * 3 + 2
    assert lut_gemm_cycles(p, 2, 8, 8) == lut_tile_cycles(p)
    assert lut_gemm_cycles(p, 1, 1, 1) == lut_tile_cycles(p)
    # M 5 -> 3 tiles, N 17 -> 3 tiles, K 20 -> 3 tiles: J = 27 beats, b cycles each
    assert lut_act_beats(p, 5, 20, 17) == 27
    assert lut_gemm_cycles(p, 5, 20, 17) == 3 * 28 + 2
    assert lut_weight_beats(p, 5, 20, 17) == 3 * 27  # K > tile: a weight tile per activation beat
    assert lut_weight_beats(p, 5, 8, 17) == 3 * 3  # K fits: one weight tile per N-tile
    assert lut_macs_per_cycle(p) == 2 * 8 * 8 / 3
    assert lut_macs_per_cycle_per_weight_bit(p) == 2 * 8 * 8
    p1 = LutCoreParams(weight_bits=1)
    assert lut_macs_per_cycle(p1) == 2 * 64 * 16 == lut_macs_per_cycle_per_weight_bit(p1)


# ---- driver: a behavioural emulation of the stream protocol ---------------------------------------


def _emulate(p: LutCoreParams, weights: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """Consume the beats as the RTL does (weight tiles in order, wlast frees, last emits)."""
    widx = unpack_lanes(weights, p.group_size, p.tile_n * p.tile_k, signed=False)
    ab = unpack_lanes(acts, p.act_bits, p.tile_m * p.k_tile, signed=True)
    flags = unpack_lanes(acts, 1, 2, signed=False, offset=p.tile_m * p.k_tile * p.act_bits)
    tiles = widx.reshape(-1, p.planes, p.tile_n, p.tile_k).transpose(0, 1, 3, 2)  # (tiles, b, tk, tn)
    tile_no, out = 0, []
    acc = np.zeros((p.tile_m, p.tile_n), dtype=np.int64)
    for beat, (last, wlast) in zip(ab, flags, strict=True):
        t = precompute_tables(beat.reshape(p.tile_m, p.tile_k, p.group_size))
        for plane in range(p.planes):
            c = lookup(t, tiles[tile_no, plane], p.group_size).sum(axis=1) << plane
            if plane == 0 and p.corrected:
                c -= t[..., -1].sum(axis=1)[:, None]
            acc = wrap(acc + c, p.acc_width)
        if last:
            out.append((acc >> 1) if p.corrected else acc)
            acc = np.zeros_like(acc)
        tile_no += int(wlast)
    assert tile_no == len(tiles)
    res = np.array(out).reshape(len(out), -1)
    return pack_fields([(res, p.acc_bits)], p.result_payload_bits)


@pytest.mark.parametrize(("b", "ternary"), WEIGHT_MODES)
@pytest.mark.parametrize(("M", "N", "K"), [(1, 1, 1), (2, 4, 8), (5, 9, 3), (7, 3, 30), (4, 13, 17)])
def test_driver_plan_roundtrip(b: int, ternary: bool, M: int, N: int, K: int) -> None:
    p = LutCoreParams(group_size=4, weight_bits=b, ternary=ternary, tile_m=2, tile_n=4, tile_k=2)
    rng = np.random.default_rng(M * N * K + b)
    A = rng.integers(-128, 128, (M, K))
    W = _rand_weights(rng, b, ternary, (K, N))
    plan = lut_gemm_plan(p, A, W)
    assert plan.weights.shape[0] == lut_weight_beats(p, M, K, N)
    assert plan.acts.shape[0] == lut_act_beats(p, M, K, N)
    beats = _emulate(p, plan.weights, plan.acts)
    assert beats.shape[0] == plan.result_beats
    assert np.array_equal(lut_decode_results(p, beats, M, N), A @ W)
