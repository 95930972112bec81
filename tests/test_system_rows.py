"""Row codecs of the accelerator system (sim/system_rows.py) and the LUT weight decoder."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.errors import ConfigError
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim import lut
from tpegen.sim.system_rows import (
    KINDS,
    group_size_of,
    lane_signed,
    lanes_to_rows,
    read_rows,
    row_addresses,
    row_format,
    rows_to_lanes,
    write_rows,
)

CONFIGS = [
    "int8_os_8x8",
    "int8_ws_8x8",
    "w4a8_os_16x16",
    "lut_w2a8",
    "lut_w1a8",
    "bf16_exact",
    "bf16_exact_bf16acc",
]


def _bits_reference(lanes: np.ndarray, width: int, nbytes: int) -> np.ndarray:
    """Independent packer: Python ints, lane l at bit l * width, little-endian bytes."""
    out = np.zeros((len(lanes), nbytes), dtype=np.uint8)
    for r, row in enumerate(lanes):
        word = 0
        for lane, v in enumerate(row):
            word |= (int(v) % (1 << width)) << (lane * width)
        out[r] = np.frombuffer(word.to_bytes(nbytes, "little"), dtype=np.uint8)
    return out


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_and_layout(name, kind):
    config = load_config(name)
    geom = SystemGeometry.of(config)
    g = group_size_of(config)
    fmt = row_format(geom, kind, group_size=g)
    assert fmt.row_bits == geom.row_bits(kind)
    signed = lane_signed(config, kind)
    rng = np.random.default_rng(1)
    w = fmt.lane_bits
    if kind == "Q":
        values = rng.integers(0, 1 << 63, (5, fmt.lanes), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    else:
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
        values = rng.integers(lo, hi, (5, fmt.lanes), endpoint=True)
        values[0] = lo
        values[1] = hi
    rows = lanes_to_rows(geom, kind, values, group_size=g)
    assert rows.shape == (5, fmt.nbytes) and rows.dtype == np.uint8
    np.testing.assert_array_equal(rows, _bits_reference(values, w, fmt.nbytes))
    back = rows_to_lanes(geom, kind, rows, signed=signed, group_size=g)
    np.testing.assert_array_equal(back, values)
    assert back.dtype == (np.uint64 if kind == "Q" else np.int64)


def test_hand_vector_int8_a_row():
    geom = SystemGeometry.of(load_config("int8_os_8x8"))
    rows = lanes_to_rows(geom, "A", np.array([[1, -1, 2, -128, 127, 0, 3, -2]]))
    assert rows.tolist() == [[1, 0xFF, 2, 0x80, 0x7F, 0, 3, 0xFE]]
    assert rows_to_lanes(geom, "A", rows, signed=False).tolist() == [[1, 255, 2, 128, 127, 0, 3, 254]]


def test_lanes_out_of_range_rejected():
    geom = SystemGeometry.of(load_config("int8_os_8x8"))
    with pytest.raises(ValueError, match="do not fit 8 bits"):
        lanes_to_rows(geom, "A", np.full((1, 8), 256))
    with pytest.raises(ValueError, match="expected"):
        lanes_to_rows(geom, "A", np.zeros((1, 7), dtype=np.int64))


def test_lut_w_rows_need_group_size():
    geom = SystemGeometry.of(load_config("lut_w2a8"))
    with pytest.raises(ConfigError, match="group_size"):
        row_format(geom, "W")


@pytest.mark.parametrize("name", ["lut_w2a8", "lut_w1a8", "lut_ternary_a8", "lut_w4a8"])
def test_lut_rows_match_the_stream_driver(name):
    """A and W rows are exactly the LUT core's stream beats (lut_gemm_plan) minus the flag bits."""
    config = load_config(name)
    p = config.pe
    geom = SystemGeometry.of(config)
    rng = np.random.default_rng(2)
    lo, hi = p.weight_range()
    a = rng.integers(-128, 128, (p.tile_m, p.k_tile))
    w = rng.integers(lo, hi + 1, (p.k_tile, p.tile_n))
    if p.weight_bits == 1:
        w = np.where(w == 0, 1, w)
    plan = lut.lut_gemm_plan(p, a, w)
    # weights: b beats (plane 0 first), one W row each
    planes = rows_to_lanes(geom, "W", plan.weights, signed=False, group_size=p.group_size)
    np.testing.assert_array_equal(lanes_to_rows(geom, "W", planes, group_size=p.group_size), plan.weights)
    # acts: A row bits are the payload's low bits (last/wlast follow)
    a_lanes = rows_to_lanes(geom, "A", plan.acts, signed=True)
    np.testing.assert_array_equal(a_lanes[0].reshape(p.tile_m, p.k_tile), a)
    # decode the W rows back to the weights: lane n * tile_k + group
    idx = planes.reshape(p.planes, p.tile_n, p.tile_k).transpose(0, 2, 1)
    np.testing.assert_array_equal(lut.decode_weights(idx, p.weight_bits, p.group_size, ternary=p.ternary), w)


@pytest.mark.parametrize(
    ("bits", "g", "ternary"),
    [(1, 1, False), (1, 4, False), (2, 3, False), (2, 4, True), (3, 2, False), (4, 6, False)],
)
def test_decode_weights_round_trip_every_value(bits, g, ternary):
    lo, hi = (-1, 1) if (ternary or bits == 1) else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    values = [v for v in range(lo, hi + 1) if not (bits == 1 and v == 0)]
    rng = np.random.default_rng(bits * 10 + g)
    # every value in every position of a group, plus random fill
    k = g * len(values)
    w = rng.choice(values, size=(k, 7))
    for i, v in enumerate(values):
        w[i * g : (i + 1) * g, 0] = v
    w[:, 1] = np.resize(values, k)
    enc = lut.encode_weights(w, bits, g, ternary=ternary)
    np.testing.assert_array_equal(lut.decode_weights(enc, bits, g, ternary=ternary), w)
    assert (
        lut.decode_index(lut.encode_index(np.arange(2 * g * 3).reshape(-1, 3) % 2, g), g).tolist()
        == (np.arange(2 * g * 3).reshape(-1, 3) % 2).tolist()
    )


def test_decode_weights_rejects_non_ternary_code():
    enc = lut.encode_weights(np.full((4, 1), -2), 2, 4)
    with pytest.raises(ConfigError, match="ternary"):
        lut.decode_weights(enc, 2, 4, ternary=True)
    assert lut.decode_weights(enc, 2, 4).tolist() == [[-2]] * 4


def test_host_rows_segments_and_padding():
    host = np.full(256, 0xAA, dtype=np.uint8)
    rows = np.arange(1, 13, dtype=np.uint8).reshape(4, 3)
    write_rows(host, 16, 8, rows, seg=2, stride=64)
    assert row_addresses(16, 8, 4, seg=2, stride=64).tolist() == [16, 24, 80, 88]
    assert host[16:32].tolist() == [1, 2, 3, 0, 0, 0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0]
    assert host[80:96].tolist() == [7, 8, 9, 0, 0, 0, 0, 0, 10, 11, 12, 0, 0, 0, 0, 0]
    assert host[32:80].tolist() == [0xAA] * 48 and host[:16].tolist() == [0xAA] * 16
    np.testing.assert_array_equal(read_rows(host, 16, 8, 4, 3, seg=2, stride=64), rows)
    with pytest.raises(IndexError, match="exceed"):
        read_rows(host, 250, 8, 1, 8)
