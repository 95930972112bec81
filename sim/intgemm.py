"""Numeric golden model of the integer MAC arrays: exact GEMM with accumulator wrap-around."""

from __future__ import annotations

import numpy as np

from tpegen.errors import ConfigError
from tpegen.sim.packing import wrap


def operand_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive value range of a ``bits``-wide operand."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def check_operand(name: str, x: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Return ``x`` as int64 after checking it is a 2-D integer matrix within the operand range."""
    x = np.asarray(x)
    if x.ndim != 2 or 0 in x.shape:
        raise ConfigError(name, "a non-empty 2-D matrix", f"array of shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        if np.issubdtype(x.dtype, np.floating) and np.all(np.isfinite(x)) and np.all(x == np.round(x)):
            x = x.astype(np.int64)
        else:
            raise ConfigError(name, "an integer matrix", f"dtype {x.dtype}")
    lo, hi = operand_range(bits, signed)
    if x.min() < lo or x.max() > hi:
        kind = "signed" if signed else "unsigned"
        raise ConfigError(name, f"{kind} {bits}-bit values in {lo}..{hi}", f"values in {x.min()}..{x.max()}")
    return x.astype(np.int64)


_F64_EXACT = 1 << 53  # integers below this magnitude are exact in float64


def int_gemm(a: np.ndarray, w: np.ndarray, acc_bits: int) -> np.ndarray:
    """``A @ W`` accumulated in a two's-complement ``acc_bits`` register (wraps modulo 2**acc_bits).

    Wrap-around is associative, so the result does not depend on the order or tiling of the
    accumulation -- every dataflow and schedule of the integer arrays produces exactly this.
    Computed with float64 BLAS (numpy's integer matmul has no BLAS and is ~50x slower) on K chunks
    short enough that every partial sum is an exact float64 integer; chunks are summed in int64
    (|A @ W| < 2**62 for 16-bit operands and K < 2**31) and wrapped at the end.
    """
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    k = a.shape[1]
    if k >= (1 << 31):
        raise ValueError("K too large for exact int64 accumulation")
    per_term = max(1, int(np.abs(a).max(initial=0)) * int(np.abs(w).max(initial=0)))
    chunk = (_F64_EXACT - 1) // per_term
    if chunk < 1:  # a single product is not exact in float64 (operands wider than 26 bits)
        return wrap(a @ w, acc_bits, signed=True)
    af, wf = a.astype(np.float64), w.astype(np.float64)
    out = np.zeros((a.shape[0], w.shape[1]), dtype=np.int64)
    for s in range(0, k, chunk):
        out += (af[:, s : s + chunk] @ wf[s : s + chunk]).astype(np.int64)
    return wrap(out, acc_bits, signed=True)
