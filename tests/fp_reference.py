"""Independent reference of the approximate FMA normalizer, on exact rationals.

Written from the specification in :mod:`tpegen.sim.fp`'s docstring, not from its code: one step
``c + a*w`` is the exact rational sum rounded (RNE or truncation) on a grid fixed by the
normalizer's shift, with ``T = max(Tp, Tc) + 1`` (``Tc`` alone for a zero product) the weight
exponent above the alignment window, ``lz = T - lead(sum)``, and the shift

    sh = floor(min(lz, S, T - emin_out) / G) * G        (S = norm_window, G = shift_granularity)

so the result's last significand bit (``p`` bits) has weight ``2**(T - sh - p + 1)``. In exact mode
(S = inf, G = 1) this is correct IEEE rounding. Finite values only (no overflow, inf or NaN).
"""

from __future__ import annotations

from fractions import Fraction

from tpegen.sim.fp import FloatFormat, FmaConfig


def lead(x: Fraction) -> int:
    """Weight exponent of the leading one of ``|x|`` (``x != 0``): ``2**lead <= |x| < 2**(lead+1)``."""
    x = abs(x)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > x else e


def round_to_grid(x: Fraction, quantum_exp: int, rounding: str) -> Fraction:
    """``x`` rounded to a multiple of ``2**quantum_exp``: ties to even (``'rne'``) or toward zero."""
    quantum = Fraction(2) ** quantum_exp
    q, rem = divmod(abs(x), quantum)
    if rounding == "rne" and (rem * 2 > quantum or (rem * 2 == quantum and q % 2 == 1)):
        q += 1
    return q * quantum if x >= 0 else -q * quantum


def ieee_top(x: Fraction, fmt: FloatFormat) -> int:
    """Weight exponent of the MSB of ``x``'s significand field in ``fmt`` (``emin`` for 0/subnormals)."""
    return fmt.emin if x == 0 else max(lead(x), fmt.emin)


def round_ieee(x: Fraction, fmt: FloatFormat, rounding: str = "rne") -> Fraction:
    """Correct rounding of ``x`` to ``fmt`` (finite range)."""
    return x if x == 0 else round_to_grid(x, ieee_top(x, fmt) - fmt.man_bits, rounding)


def fma_step(c: Fraction, c_top: int, a: Fraction, w: Fraction, cfg: FmaConfig) -> tuple[Fraction, int]:
    """One PE step: ``(value, top)`` of ``c + a*w``, where ``c_top`` is ``c``'s field MSB exponent."""
    out_emin = cfg.acc_fmt.emin if cfg.normalize_in_pe else cfg.relaxed.emin
    p = cfg.acc_fmt.man_bits + 1 if cfg.normalize_in_pe else cfg.relaxed.man_bits
    prod = a * w
    t_p = ieee_top(a, cfg.a_fmt) + ieee_top(w, cfg.w_fmt) + 1
    t = (c_top if prod == 0 else max(t_p, c_top)) + 1
    total = c + prod
    if total == 0:
        return Fraction(0), out_emin
    window = cfg.norm_window if cfg.norm_window is not None else t - out_emin
    sh = min(t - lead(total), window, t - out_emin)
    sh -= sh % cfg.shift_granularity
    value = round_to_grid(total, t - sh - p + 1, cfg.rounding)
    if value == 0:
        return value, out_emin
    top = t - sh + (1 if abs(value) == Fraction(2) ** (t - sh + 1) else 0)  # rounding carry
    if cfg.normalize_in_pe:
        top = ieee_top(value, cfg.acc_fmt)  # the IEEE packing renormalizes
    return value, top


def chain(a_row, w_col, cfg: FmaConfig) -> Fraction:
    """``fl(... fl(0 + a0 w0) + a1 w1 ...)`` from +0 in order, then the edge normalizer if relaxed."""
    acc, top = Fraction(0), (cfg.acc_fmt.emin if cfg.normalize_in_pe else cfg.relaxed.emin)
    for a, w in zip(a_row, w_col, strict=True):
        acc, top = fma_step(acc, top, Fraction(float(a)), Fraction(float(w)), cfg)
    return acc if cfg.normalize_in_pe else round_ieee(acc, cfg.acc_fmt, cfg.rounding)
