"""The integer golden model: exact wrap(A @ W) via chunked float64 BLAS, checked against int64 matmul."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.sim import intgemm
from tpegen.sim.intgemm import check_operand, int_gemm
from tpegen.sim.packing import wrap


def reference(a, w, acc_bits):
    return wrap(np.asarray(a, dtype=np.int64) @ np.asarray(w, dtype=np.int64), acc_bits)


@pytest.mark.parametrize(
    "bits_a,bits_w,acc_bits,k",
    [(8, 8, 32, 300), (16, 16, 40, 5000), (8, 4, 12, 64), (16, 16, 64, 70), (2, 2, 4, 9)],
)
def test_matches_int64_reference_including_wrap(bits_a, bits_w, acc_bits, k):
    rng = np.random.default_rng(k)
    a = rng.integers(-(1 << (bits_a - 1)), 1 << (bits_a - 1), (7, k))
    w = rng.integers(-(1 << (bits_w - 1)), 1 << (bits_w - 1), (k, 5))
    a[0] = -(1 << (bits_a - 1))
    w[:, 0] = -(1 << (bits_w - 1))
    assert np.array_equal(int_gemm(a, w, acc_bits), reference(a, w, acc_bits))


def test_chunked_path_is_exact(monkeypatch):
    """With a tiny exactness bound every K chunk is short, so the chunk summation itself is tested."""
    monkeypatch.setattr(intgemm, "_F64_EXACT", 1 << 20)
    a = np.full((3, 1000), -(1 << 15))
    w = np.full((1000, 2), -(1 << 15))
    w[::3] = (1 << 15) - 1
    assert np.array_equal(int_gemm(a, w, 64), reference(a, w, 64))
    assert np.array_equal(int_gemm(a, w, 24), reference(a, w, 24))


def test_operand_checks():
    assert check_operand("A", np.array([[1.0, -2.0]]), 8, True).dtype == np.int64
    with pytest.raises(ValueError, match="A: must be signed 8-bit values in -128..127"):
        check_operand("A", np.array([[128]]), 8, True)
    with pytest.raises(ValueError, match="W: must be unsigned 4-bit values in 0..15"):
        check_operand("W", np.array([[-1]]), 4, False)
    with pytest.raises(ValueError, match="A: must be an integer matrix"):
        check_operand("A", np.array([[0.5]]), 8, True)
    with pytest.raises(ValueError, match="must be a non-empty 2-D matrix"):
        check_operand("A", np.zeros((0, 3)), 8, True)
