"""Numeric golden model of the integer MAC arrays: exact GEMM with accumulator wrap-around."""

from __future__ import annotations

import numpy as np

from tpegen.errors import ConfigError
from tpegen.sim.packing import wrap


def operand_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive value range of a ``bits``-wide operand."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def integer_array(
    name: str, x: np.ndarray, lo: int, hi: int, allowed: str, *, ndim: int | None = 2
) -> np.ndarray:
    """``x`` as int64 after checking it is a non-empty array (``ndim``-D unless None) of integers in ``lo..hi``.

    Integer dtypes (not bool or timedelta) are taken as they are; float matrices only if every
    value is finite and integral. The range is checked on the original values, before any cast, so
    that nothing wraps or saturates silently (``1e20`` or ``2**64 - 1`` are rejected, not cast).
    """
    x = np.asarray(x)
    if (ndim is not None and x.ndim != ndim) or 0 in x.shape:
        what = f"a non-empty {ndim}-D matrix" if ndim == 2 else "a non-empty array"
        raise ConfigError(name, what, f"array of shape {x.shape}")
    if x.dtype.kind == "f":
        if not (np.all(np.isfinite(x)) and np.all(x == np.round(x))):
            raise ConfigError(name, f"an integer matrix ({allowed})", "non-integral or non-finite floats")
    elif x.dtype.kind not in "iu":
        raise ConfigError(name, f"an integer matrix ({allowed})", f"dtype {x.dtype}")
    low, high = x.min(), x.max()
    if low < lo or high > hi:
        bad = low if low < lo else high
        raise ConfigError(name, allowed, int(bad) if x.dtype.kind in "iu" else float(bad))
    return x.astype(np.int64)


def check_operand(name: str, x: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Return ``x`` as int64 after checking it is a 2-D integer matrix within the operand range."""
    lo, hi = operand_range(bits, signed)
    kind = "signed" if signed else "unsigned"
    return integer_array(name, x, lo, hi, f"{kind} {bits}-bit values in {lo}..{hi}")


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
