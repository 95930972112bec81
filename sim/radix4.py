"""Numpy model of the radix-4 weight encodings of the integer MAC PE (``pe.multiplier``).

:mod:`tpegen.hw.pe.radix4` recodes each weight into radix-4 digits, modified Booth (``booth_r4``)
or EN-T (``en_t``), and sums one partial product ``d_i * a * 4**i`` per digit. The product stays
exactly ``a * w``, so the GEMM golden model (:mod:`tpegen.sim.intgemm`) holds unchanged; this model
gives the digits themselves, vectorized over arrays of operands, for what depends on them: the
number of non-zero digits (partial products a bit-serial PE must add, zero digits it can skip) and
the checks that each encoding represents every operand. Digit ``i`` of ``x`` is ``digits[..., i]``,
a signed value in {-2..2}, with ``x == sum_i digits[..., i] * 4**i``:

* ``booth_r4``: ``-2 x[2i+1] + x[2i] + x[2i-1]`` from the two's-complement bits (``x[-1] = 0``; an
  unsigned operand has a zero bit above its top bit).
* ``en_t``: ``sign(x) * e_i``, where ``e_i`` in {-1, 0, 1, 2} are the EN-T digits of ``|x|``: bit
  pair ``p_i`` plus the carry ``c_i`` from the pair below, kept if at most 2, else minus 4 with a
  carry into the next pair (Wu et al., ICCD 2024, arXiv 2404.11887).

Both use :func:`~tpegen.hw.pe.mac_params.radix4_digits` digits per operand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.pe.mac_params import radix4_digits
from tpegen.sim.intgemm import integer_array, operand_range


def _operands(x: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    lo, hi = operand_range(bits, signed)
    kind = "signed" if signed else "unsigned"
    return integer_array("x", x, lo, hi, f"{kind} {bits}-bit values in {lo}..{hi}", ndim=None)


def booth_r4_digits(x: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Modified Booth digits of every ``bits``-wide operand in ``x``: shape ``x.shape + (D,)``, int8."""
    x = _operands(x, bits, signed)
    count = radix4_digits(bits, signed)
    bit = [np.zeros_like(x)] + [(x >> k) & 1 for k in range(2 * count)]  # bit[k + 1] = x[k]; x[-1] = 0
    digits = [-2 * bit[2 * i + 2] + bit[2 * i + 1] + bit[2 * i] for i in range(count)]
    return np.stack(digits, axis=-1).astype(np.int8)


def en_t_digits(x: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """EN-T digits of every ``bits``-wide operand in ``x``, the sign folded into each: shape
    ``x.shape + (D,)``, int8, magnitude digits in {-1, 0, 1, 2} times ``sign(x)``."""
    x = _operands(x, bits, signed)
    magnitude, sign = np.abs(x), np.where(x < 0, -1, 1)
    carry = np.zeros_like(x)
    digits = []
    for i in range(radix4_digits(bits, signed)):
        t = ((magnitude >> (2 * i)) & 3) + carry
        carry = (t >= 3).astype(np.int64)
        digits.append(sign * (t - 4 * carry))
    return np.stack(digits, axis=-1).astype(np.int8)


ENCODERS: dict[str, Callable[[np.ndarray, int, bool], np.ndarray]] = {
    "booth_r4": booth_r4_digits,
    "en_t": en_t_digits,
}


def encode(x: np.ndarray, encoding: str, bits: int, signed: bool) -> np.ndarray:
    """The digits of ``x`` in ``encoding`` (``booth_r4`` or ``en_t``)."""
    if encoding not in ENCODERS:
        raise ConfigError("encoding", "one of " + ", ".join(ENCODERS), encoding)
    return ENCODERS[encoding](x, bits, signed)


def from_digits(digits: np.ndarray) -> np.ndarray:
    """The integers that ``digits`` (last axis: digit ``i`` of weight ``4**i``) stand for, int64."""
    return digits.astype(np.int64) @ (4 ** np.arange(digits.shape[-1], dtype=np.int64))


def product_from_digits(a: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """``a * w`` as the PE forms it from ``w``'s ``digits``: the partial products ``d_i * a`` (each
    0, +-a or +-2a) shifted left by ``2 i`` bits and summed; ``a`` broadcasts against ``w``."""
    a = np.asarray(a, dtype=np.int64)[..., None]
    partial = np.where(np.abs(digits) == 2, a << 1, a) * np.sign(digits)
    return (partial << (2 * np.arange(digits.shape[-1], dtype=np.int64))).sum(axis=-1)


def nonzero_digits(digits: np.ndarray) -> np.ndarray:
    """Non-zero digits (partial products that are not zero) of each operand."""
    return np.count_nonzero(digits, axis=-1)
