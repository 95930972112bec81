"""Stream payload packing must match Amaranth's LSB-first layout and round-trip exactly."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data

from tpegen.sim.packing import pack_fields, unpack_lanes, wrap


@pytest.mark.parametrize("width", [1, 3, 8, 13, 32, 63])
def test_round_trip(width):
    rng = np.random.default_rng(width)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1))
    x = rng.integers(lo, hi, (17, 5)) if width > 1 else rng.integers(0, 2, (17, 5))
    flag = rng.integers(0, 2, 17)
    payload = pack_fields([(flag, 1), (x, width)])
    assert (unpack_lanes(payload, 1, 1, signed=False)[:, 0] == flag).all()
    assert (unpack_lanes(payload, width, 5, signed=width > 1, offset=1) == x).all()


def test_matches_amaranth_layout():
    layout = data.StructLayout(
        {"a": data.ArrayLayout(signed(8), 3), "w": data.ArrayLayout(unsigned(4), 2), "last": 1}
    )
    expected = layout.const({"a": [-1, 2, -128], "w": [15, 3], "last": 1}).as_value().value
    payload = pack_fields([(np.array([[-1, 2, -128]]), 8), (np.array([[15, 3]]), 4), (np.array([1]), 1)])
    assert int.from_bytes(bytes(payload[0]), "little") == expected


def test_wrap_is_twos_complement():
    assert list(wrap(np.array([2**15, -(2**15) - 1, 7, -7]), 16)) == [-(2**15), 2**15 - 1, 7, -7]
    assert list(wrap(np.array([256, 257]), 8, signed=False)) == [0, 1]
