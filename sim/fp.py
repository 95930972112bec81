"""Bit-exact numeric model of the floating-point multiply-add PE (exact and approximate normalization).

Everything here is integer bit manipulation on ``int64`` numpy arrays (vectorized); floats appear
only in :func:`quantize`/:func:`decode` at the edges. The model describes the hardware of
:mod:`tpegen.hw.pe.fma` step by step, so the RTL matches it bit for bit in every mode.

Formats
-------
Formats (:class:`FloatFormat`) have bias ``2**(e-1)-1`` and exponent field 0 for zeros and
subnormals. IEEE-like formats hold infinities (fraction 0) and NaNs in the all-ones exponent:
bf16, fp16, fp32, ``FP8_E5M2`` (equals OCP/PyTorch ``float8_e5m2``) and ``FP8_E4M3_IEEE``
(infinities, max finite 240). ``FP8_E4M3FN`` is the OCP/PyTorch ``float8_e4m3fn``
(``finite_only``): no infinities, the all-ones exponent is a normal binade whose all-ones fraction
is the only NaN (either sign), max finite 448. It is an input format: converting into it
(:func:`quantize`) rounds as ml_dtypes does -- beyond the range, and ``±inf``, become NaN (sign
kept) when rounding to nearest, ``±448`` when truncating -- and the PE reads its all-ones-exponent
codes as normal numbers and ``S.1111.111`` as NaN. Accumulators are IEEE-like. The format and
PE-configuration dataclasses (:class:`FloatFormat`, :class:`RelaxedFormat`, :class:`FmaConfig`) are defined in
:mod:`tpegen.hw.pe.fp_formats` (the generator shares them) and re-exported here.

Numeric policy of :func:`fma` (``c + a*w``, one rounding)
-------------------------------------------------------
* Subnormals are fully supported on inputs and outputs (no flush-to-zero).
* Rounding ``'rne'`` (round to nearest, ties to even) or ``'trunc'`` (toward zero).
* Signed zeros: an exact zero sum is ``-0`` only if both addends are negative zeros-or-cancel
  (``(-0) + (-0) = -0``, ``x + (-x) = +0``, in both rounding modes); a nonzero sum that rounds
  to zero keeps its sign. The product sign is ``sign(a) ^ sign(w)`` also for zero products.
* NaN in, ``inf * 0`` or ``inf - inf`` give the canonical quiet NaN (sign 0, exponent all ones,
  fraction MSB set, e.g. ``0x7FC0`` in bf16). Infinities propagate with IEEE signs.
* Overflow: ``'rne'`` gives ``±inf``, ``'trunc'`` gives ``±max finite`` (IEEE round-toward-zero).

Datapath (shared by the model and the RTL)
------------------------------------------
``P = (Ma+1) + (Mw+1)`` bits of exact product significand, ``Q`` bits of addend significand
(``Mc+1`` for an IEEE accumulator, the relaxed significand width otherwise, see "Relaxed significand
width"). Each significand is placed at the top of a ``W = P + Q + 1``-bit window whose MSB has
weight ``2**anchor``, where
``anchor = max(Tp, Tc)`` (``Tc`` if the product is zero; ``T`` = weight exponent of a field's MSB).
The smaller operand is shifted right by the exponent difference (clamped to ``W``); bits shifted
out of the window are OR-ed into one extra *sticky bit* appended below the window. The two signed
operands are added; the magnitude ``M`` has ``N = W + 2`` bits (carry + window + sticky), its MSB
weight is ``T = anchor + 1``.

Why this is correctly rounded in exact mode: bits are only lost when the shift ``d`` exceeds
``W - width(small)``, i.e. ``d >= lz(big) + 2`` (``lz(big) <= width(big) - 1`` for a nonzero
field), so the result keeps its leading one at most one position below the big operand's, and
its rounding position lies at or above the window's LSB. Below that, the computed and the exact
sum lie strictly inside the same open interval between two sticky-grid points, which contains no
rounding boundary (grid point or midpoint), so both round the same way. Tests check it
exhaustively/randomly against :class:`fractions.Fraction`.

L-Mul products (``multiplier='lmul'``)
--------------------------------------
The exact significand product is replaced by L-Mul (Luo & Sun, "Addition is All You Need for
Energy-efficient Language Models", arXiv:2410.00907, Sec. 2.2), as its equation defines it for
normal operands ``x = (1 + x_m) 2**x_e``, ``y = (1 + y_m) 2**y_e``::

    L-Mul(x, y) = (-1)**(x_s ^ y_s) * (1 + x_m + y_m + 2**-l(m)) * 2**(x_e + y_e)

with ``l(m) = m`` (``m <= 3``), ``3`` (``m = 4``), ``4`` (``m > 4``), ``m = max(Ma, Mw)`` (bf16:
``l = 4``, e4m3: ``3``, e5m2: ``2``). With ``F = max(Ma, Mw)`` fraction bits the significand
``S = 2**F + x_f 2**(F-Ma) + y_f 2**(F-Mw) + 2**(F-l)`` is one integer addition of the two
fraction fields and a constant (``S < 2**(F+2)``: the carry is kept, not folded into the
exponent as the paper's integer-add-of-bit-patterns kernel does). It is placed on the exact
product's ``P``-bit grid, ``sigp = S << (Ma + Mw - F)``, with the same ``Tp = Ta + Tw + 1``;
everything after the multiplier (alignment, add, normalization, rounding, overflow and underflow
of the accumulator format) is unchanged, so the product itself is never rounded.
The paper defines L-Mul for normal numbers only; here zeros *and subnormals* read as signed zeros
(denormals-are-zero on the inputs of an L-Mul PE): their product is the signed zero
``sign(a) ^ sign(w)``, ``inf * subnormal`` is NaN like ``inf * 0``, and NaN/infinity rules are
those of the exact multiplier. Exponent overflow/underflow of the product is that of the exact
path: the exact sum ``c + L-Mul(a, w)`` is rounded once to the accumulator format (``±inf`` or
``±max`` on overflow by rounding mode, subnormals and signed zeros on underflow).

Normalization and rounding (output format with ``p`` significand bits, minimum exponent ``emin``)
-----------------------------------------------------------------------------------------------
``lz = clz_N(M)``; the shift is limited by the output's minimum exponent: ``L = T - emin`` (>= 1).

* exact: ``sh = min(lz, L)``;
* approximate (``norm_window = S``, ``shift_granularity = G``): the leading-one detector sees only
  the top ``S`` bits, ``lzw = min(lz, S)``; ``sh = floor(min(lzw, L) / G) * G``.

``M << sh`` (never loses a bit since ``sh <= lz``) is rounded at a *fixed* position: its top ``p``
bits are the significand ``q``, the next bit is the guard, the OR of the rest the sticky;
``E = T - sh`` is the weight exponent of ``q``'s MSB. A rounding carry out (``q == 2**p``) is
``q >>= 1, E += 1``. If the approximate shift left ``q`` unnormalized, the result therefore lost
``lz - sh`` bits of precision (it is rounded on a coarser grid), and the magnitude error is
bounded by one coarse ulp; ``q`` itself is then an exactly representable value.

* IEEE output (``normalize_in_pe=True``): ``q * 2**(E-p+1)`` is packed *exactly*: a short
  renormalizer over the ``p``-bit ``q`` shifts it left by ``min(clz_p(q), E - emin)`` (a no-op in
  exact mode, which the RTL omits there); ``q == 0`` gives a signed zero; a biased exponent
  ``>= all-ones`` overflows.
* Relaxed output (``normalize_in_pe=False``): ``q`` is stored as is (explicit leading bit, leading
  zeros allowed) with ``E``; see :class:`RelaxedFormat`. The chain's last value goes through
  :func:`normalize_relaxed` (the ``FmaNormalizer`` at the array edge), which rounds it correctly
  (exact normalization, one rounding) to the accumulator format.

Relaxed significand width
-------------------------
The relaxed format has ``Ec + 2`` exponent bits and ``p = Q = relaxed_man_bits`` significand bits
(:attr:`FmaConfig.relaxed`; ``Mc + 1 + relaxed_guard_bits`` when ``relaxed_man_bits`` is None),
chosen independently of the accumulator format. Every step above then rounds to ``Q`` bits at its
fixed position, on the relaxed grid, whatever ``Mc`` is: wider than ``Mc + 1`` keeps guard bits
between PEs, narrower (e.g. 12 bits for an fp32 output) makes every PE round the partial sum to
``Q`` bits (and shrinks the alignment window ``W = P + Q + 1``). The edge normalizer is the same
correct rounding of the relaxed value in both cases: when ``Q < Mc + 1`` a normal result is the
relaxed significand zero-padded (exact), and only results in the output's subnormal range or beyond
its largest finite value round (or overflow). Relaxed exponents (``Ec + 2`` bits) cover the output's
range with room on both sides, so a relaxed partial sum underflows only far below the output's
smallest subnormal.
"""

from __future__ import annotations

import numpy as np

from tpegen.hw.pe.fp_formats import (  # re-exported: the formats and the PE configuration live in hw/
    BF16,
    FORMATS,
    FP8_E4M3_IEEE,
    FP8_E4M3FN,
    FP8_E5M2,
    FP16,
    FP32,
    FloatFormat,
    FmaConfig,
    RelaxedFormat,
)

__all__ = [
    "FloatFormat",
    "BF16",
    "FP16",
    "FP32",
    "FP8_E4M3FN",
    "FP8_E4M3_IEEE",
    "FP8_E5M2",
    "FORMATS",
    "RelaxedFormat",
    "FmaConfig",
    "quantize",
    "decode",
    "decode_relaxed",
    "fma",
    "gemm_chain",
    "normalize_relaxed",
    "clz",
]

I64 = np.int64


# ------------------------------------------------------------------------------------------------
# integer helpers
# ------------------------------------------------------------------------------------------------
def clz(x: np.ndarray, width: int) -> np.ndarray:
    """Leading zeros of non-negative ``x`` as a ``width``-bit number (``width`` for 0)."""
    x = np.asarray(x, dtype=I64)
    n = np.zeros(x.shape, dtype=I64)
    v = x.copy()
    pos = np.full(x.shape, -1, dtype=I64)  # index of the MSB set
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (I64(1) << I64(s))
        v = np.where(big, v >> I64(s), v)
        n = np.where(big, n + s, n)
    pos = np.where(x > 0, n, -1)
    return I64(width - 1) - pos


def _shr_sticky(v: np.ndarray, d: np.ndarray, width: int) -> np.ndarray:
    """``width``-bit ``v`` shifted right by ``d`` (clamped to ``width``), sticky bit appended below."""
    d = np.minimum(d, width).astype(I64)
    kept = v >> d
    lost = (v - (kept << d)) != 0
    return (kept << I64(1)) | lost.astype(I64)


def _bit(x, n):
    return (np.asarray(x, dtype=I64) >> I64(n)) & I64(1)


def _ieee_fields(bits: np.ndarray, fmt: FloatFormat):
    """-> sign, significand (hidden bit explicit), T (weight exponent of bit man_bits), inf, nan."""
    bits = np.asarray(bits, dtype=I64)
    m = fmt.man_bits
    s = _bit(bits, fmt.width - 1)
    e = (bits >> I64(m)) & I64(fmt.exp_all_ones)
    f = bits & I64((1 << m) - 1)
    special = (bits & I64(fmt.sign_bit - 1)) > fmt.max_finite_bits  # inf or NaN patterns
    inf = special & (f == 0) & fmt.has_inf
    sig = np.where(special, 0, np.where(e == 0, f, f | I64(1 << m)))
    top = np.maximum(e, 1) - fmt.bias
    return s, sig, top, inf, special & ~inf


def _relaxed_fields(bits: np.ndarray, rf: RelaxedFormat):
    bits = np.asarray(bits, dtype=I64)
    man = bits & I64((1 << rf.man_bits) - 1)
    e = (bits >> I64(rf.exp_offset)) & I64((1 << rf.exp_bits) - 1)
    s = _bit(bits, rf.sign_offset)
    inf = _bit(bits, rf.inf_offset).astype(bool)
    nan = _bit(bits, rf.nan_offset).astype(bool)
    special = inf | nan
    return s, np.where(special, 0, man), e - rf.bias, inf & ~nan, nan


def _round_fixed(m: np.ndarray, width: int, p: int, rounding: str):
    """Round ``width``-bit ``m`` to its top ``p`` bits -> (q, carry) with ``q < 2**p``."""
    q = m >> I64(width - p)
    if rounding == "rne":
        g = _bit(m, width - p - 1)
        st = (m & I64((1 << (width - p - 1)) - 1)) != 0
        inc = g & ((st | (q & 1).astype(bool)).astype(I64))
        q = q + inc
    carry = q >> I64(p)
    return np.where(carry != 0, q >> I64(1), q), carry


def _pack_ieee(sign, q, e_top, p, fmt: FloatFormat, rounding: str, renormalize: bool):
    """Pack the exactly representable ``q * 2**(e_top - p + 1)`` (``q < 2**p``, ``e_top >= emin``)."""
    if renormalize:
        rs = np.minimum(clz(q, p), e_top - fmt.emin)
        q = q << rs
        e_top = e_top - rs
    normal = _bit(q, p - 1)
    biased = np.where(normal != 0, e_top - fmt.emin + 1, 0)
    bits = (biased << I64(fmt.man_bits)) | (q & I64((1 << fmt.man_bits) - 1))
    bits = np.where(bits > fmt.max_finite_bits, I64(fmt.overflow_bits(rounding)), bits)
    return bits | (np.asarray(sign, dtype=I64) << I64(fmt.width - 1))


def _pack_relaxed(sign, q, e_top, rf: RelaxedFormat, rounding: str):
    ef = e_top + rf.bias
    zero = q == 0
    over = (ef > (1 << rf.exp_bits) - 1) & ~zero
    bits = np.where(zero, 0, (ef << I64(rf.exp_offset)) | q)
    if rounding == "rne":
        bits = np.where(over, I64(1 << rf.inf_offset), bits)
    else:
        bits = np.where(
            over, I64((((1 << rf.exp_bits) - 1) << rf.exp_offset) | ((1 << rf.man_bits) - 1)), bits
        )
    return bits | (np.asarray(sign, dtype=I64) << I64(rf.sign_offset))


# ------------------------------------------------------------------------------------------------
# conversions
# ------------------------------------------------------------------------------------------------
def _round_to_format(sign, mag, lsb_exp, width: int, fmt: FloatFormat, rounding: str) -> np.ndarray:
    """Correctly round ``(-1)**sign * mag * 2**lsb_exp`` (``mag < 2**width``) into ``fmt`` bits."""
    mag = np.asarray(mag, dtype=I64)
    lsb_exp = np.asarray(lsb_exp, dtype=I64)
    p = fmt.man_bits + 1
    lead = lsb_exp + (width - 1) - clz(mag, width)  # weight exponent of the leading one
    tgt = np.maximum(lead, fmt.emin) - fmt.man_bits  # weight exponent of the result LSB
    rs = tgt - lsb_exp
    # bring mag to an (p+2)-bit frame: p result bits, guard, sticky
    left = np.clip(2 - rs, 0, 62)
    right = np.clip(rs - 2, 0, 63)
    kept = np.where(rs - 2 > 62, 0, mag >> np.minimum(right, 62))
    lost = (mag - (kept << np.minimum(right, 62))) != 0
    lost = np.where(rs - 2 > 62, mag != 0, lost)
    frame = np.where(rs <= 2, mag << left, kept | lost)
    # frame holds value/2**(tgt-2) with sticky in bit 0
    q, carry = _round_fixed(frame, p + 2, p, rounding)
    zero = q == 0
    e_top = np.maximum(lead, fmt.emin) + carry
    out = _pack_ieee(sign, q, e_top, p, fmt, rounding, renormalize=False)
    return np.where(zero, np.asarray(sign, dtype=I64) << I64(fmt.width - 1), out)


# Elements per block of the elementwise models (quantize, and gemm_chain's output rows): they hold a
# few dozen int64 temporaries per element, so large operands are processed in blocks of this size.
_BLOCK = 1 << 18


def quantize(x: np.ndarray, fmt: FloatFormat, rounding: str = "rne") -> np.ndarray:
    """Encode float64/float32 values as ``fmt`` bit patterns (int64), round-to-nearest-even by default.

    NaN -> canonical quiet NaN; ``±inf`` -> ``±inf``; overflow -> ``±inf`` (``'rne'``) or ``±max``.
    A finite-only format (``FP8_E4M3FN``) has no inf: ``±inf`` and ``'rne'`` overflow give NaN with
    the sign kept (``0x7F``/``0xFF``, as ml_dtypes converts).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size > _BLOCK:  # elementwise: bound the int64 temporaries of _round_to_format
        flat = x.reshape(-1)
        parts = [quantize(flat[i : i + _BLOCK], fmt, rounding) for i in range(0, flat.size, _BLOCK)]
        return np.concatenate(parts).reshape(x.shape)
    u = x.view(np.uint64).astype(np.uint64)
    s = (u >> np.uint64(63)).astype(I64)
    e = ((u >> np.uint64(52)) & np.uint64(0x7FF)).astype(I64)
    f = (u & np.uint64((1 << 52) - 1)).astype(I64)
    mag = np.where(e == 0, f, f | I64(1 << 52))
    lsb = np.maximum(e, 1) - 1075
    out = _round_to_format(s, np.where(e == 0x7FF, 0, mag), lsb, 53, fmt, rounding)
    inf = fmt.nan_bits if fmt.finite_only else fmt.inf_bits
    out = np.where(np.isinf(x), (s << I64(fmt.width - 1)) | I64(inf), out)
    return np.where(np.isnan(x), I64(fmt.nan_bits), out)


def decode(bits: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """``fmt`` bit patterns -> float64 (exact for every supported format)."""
    s, sig, top, inf, nan = _ieee_fields(bits, fmt)
    v = np.ldexp(sig.astype(np.float64), (top - fmt.man_bits).astype(np.int32))
    v = np.where(inf, np.inf, v)
    v = np.where(nan, np.nan, v)
    return np.where(s != 0, -v, v)


def decode_relaxed(bits: np.ndarray, rf: RelaxedFormat) -> np.ndarray:
    s, man, top, inf, nan = _relaxed_fields(bits, rf)
    v = np.ldexp(man.astype(np.float64), (top - rf.man_bits + 1).astype(np.int32))
    v = np.where(inf, np.inf, v)
    v = np.where(nan, np.nan, v)
    return np.where(s != 0, -v, v)


# ------------------------------------------------------------------------------------------------
# the multiply-add
# ------------------------------------------------------------------------------------------------
def _lmul_significand(siga: np.ndarray, sigw: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """L-Mul product significand on the exact product's ``P``-bit grid (0 unless both are normal)."""
    ma, mw = cfg.a_fmt.man_bits, cfg.w_fmt.man_bits
    f = max(ma, mw)
    xf = (siga & I64((1 << ma) - 1)) << I64(f - ma)
    yf = (sigw & I64((1 << mw) - 1)) << I64(f - mw)
    s = xf + yf + I64((1 << f) + (1 << (f - cfg.lmul_offset)))
    return np.where((siga != 0) & (sigw != 0), s << I64(ma + mw - f), 0)


def fma(a_bits: np.ndarray, w_bits: np.ndarray, c_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """``c + a*w`` with one rounding, bit-exactly as the PE datapath (broadcasting int64 arrays).

    ``a``/``w`` are ``cfg.a_fmt``/``cfg.w_fmt`` bits; ``c`` and the result are ``cfg.acc_fmt`` bits,
    or :attr:`FmaConfig.relaxed` bits when ``normalize_in_pe`` is False.
    """
    if cfg.dot:
        raise ValueError("fma models the single-term FMA; a dot-product PE is tpegen.sim.fp_dot.dot_step")
    a_bits, w_bits, c_bits = np.broadcast_arrays(
        *(np.asarray(x, dtype=I64) for x in (a_bits, w_bits, c_bits))
    )
    sa, siga, ta, infa, nana = _ieee_fields(a_bits, cfg.a_fmt)
    sw, sigw, tw, infw, nanw = _ieee_fields(w_bits, cfg.w_fmt)
    lmul = cfg.multiplier == "lmul"
    if lmul:  # denormals are zero: only a normal operand has its hidden bit set
        siga = np.where(_bit(siga, cfg.a_fmt.man_bits) != 0, siga, 0)
        sigw = np.where(_bit(sigw, cfg.w_fmt.man_bits) != 0, sigw, 0)
    if cfg.normalize_in_pe:
        sc, sigc, tc, infc, nanc = _ieee_fields(c_bits, cfg.acc_fmt)
    else:
        sc, sigc, tc, infc, nanc = _relaxed_fields(c_bits, cfg.relaxed)
    P, Q, W, N, p = cfg.prod_width, cfg.addend_width, cfg.window, cfg.sum_width, cfg.out_sig_width

    # multiply
    sp = sa ^ sw
    sigp = _lmul_significand(siga, sigw, cfg) if lmul else siga * sigw
    tp = ta + tw + 1
    # align
    anchor = np.where(sigp == 0, tc, np.maximum(tp, tc))
    xp = _shr_sticky(sigp << I64(W - P), np.maximum(anchor - tp, 0), W)
    xc = _shr_sticky(sigc << I64(W - Q), anchor - tc, W)
    # add
    total = np.where(sp != 0, -xp, xp) + np.where(sc != 0, -xc, xc)
    neg = (total < 0).astype(I64)
    mag = np.abs(total)
    t = anchor + 1
    # normalize
    lz = clz(mag, N)
    lim = t - cfg.out_emin
    if cfg.norm_window is not None:
        lz = np.minimum(lz, cfg.norm_window)
    sh = np.minimum(lz, lim)
    if cfg.shift_granularity > 1:
        sh = sh & ~I64(cfg.shift_granularity - 1)
    m2 = mag << sh
    e_top = t - sh
    # round (fixed position)
    q, carry = _round_fixed(m2, N, p, cfg.rounding)
    e_top = e_top + carry
    exact_zero = mag == 0
    zsign = sp & sc
    sign = np.where(exact_zero, zsign, neg)
    # pack
    infp = (infa | infw) & ~nana & ~nanw
    nan = (
        nana
        | nanw
        | nanc
        | (infa & (sigw == 0) & ~infw)
        | (infw & (siga == 0) & ~infa)
        | (infp & infc & (sp != sc))
    )
    if cfg.normalize_in_pe:
        fmt = cfg.acc_fmt
        out = _pack_ieee(sign, q, e_top, p, fmt, cfg.rounding, renormalize=not cfg.exact)
        out = np.where(q == 0, sign << I64(fmt.width - 1), out)
        out = np.where(infc, (sc << I64(fmt.width - 1)) | I64(fmt.inf_bits), out)
        out = np.where(infp, (sp << I64(fmt.width - 1)) | I64(fmt.inf_bits), out)
        return np.where(nan, I64(fmt.nan_bits), out)
    rf = cfg.relaxed
    out = _pack_relaxed(sign, q, e_top, rf, cfg.rounding)
    out = np.where(infc, (sc << I64(rf.sign_offset)) | I64(1 << rf.inf_offset), out)
    out = np.where(infp, (sp << I64(rf.sign_offset)) | I64(1 << rf.inf_offset), out)
    return np.where(nan, I64(1 << rf.nan_offset), out)


def normalize_relaxed(bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """Relaxed partial sum -> ``cfg.acc_fmt`` bits, correctly rounded (the array-edge normalizer)."""
    rf, fmt = cfg.relaxed, cfg.acc_fmt
    s, man, top, inf, nan = _relaxed_fields(bits, rf)
    out = _round_to_format(s, man, top - rf.man_bits + 1, rf.man_bits, fmt, cfg.rounding)
    out = np.where(inf, (s << I64(fmt.width - 1)) | I64(fmt.inf_bits), out)
    return np.where(nan, I64(fmt.nan_bits), out)


def gemm_chain(A_bits: np.ndarray, W_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """``C[i,j] = fl(...fl(fl(0 + A[i,0]W[0,j]) + A[i,1]W[1,j])...)``, k in order, from ``+0``.

    With ``normalize_in_pe=False`` the chain carries relaxed partial sums and the result goes
    through :func:`normalize_relaxed` once. Returns ``cfg.acc_fmt`` bits, shape (M, N). A
    dot-product PE (``cfg.dot``) is :func:`tpegen.sim.fp_dot.gemm_dot` instead.
    """
    if cfg.dot:
        from tpegen.sim.fp_dot import gemm_dot  # fp_dot builds on this module's helpers

        return gemm_dot(A_bits, W_bits, cfg)
    A_bits = np.asarray(A_bits, dtype=I64)
    W_bits = np.asarray(W_bits, dtype=I64)
    if A_bits.ndim != 2 or W_bits.ndim != 2 or A_bits.shape[1] != W_bits.shape[0]:
        raise ValueError(f"gemm_chain: incompatible shapes {A_bits.shape} x {W_bits.shape}")
    rows = max(1, _BLOCK // max(1, W_bits.shape[1]))
    if A_bits.shape[0] > rows:  # rows of C are independent: bound fma's (rows x N) temporaries
        return np.concatenate(
            [gemm_chain(A_bits[i : i + rows], W_bits, cfg) for i in range(0, len(A_bits), rows)]
        )
    acc = np.zeros((A_bits.shape[0], W_bits.shape[1]), dtype=I64)
    for k in range(A_bits.shape[1]):
        acc = fma(A_bits[:, k, None], W_bits[None, k, :], acc, cfg)
    return acc if cfg.normalize_in_pe else normalize_relaxed(acc, cfg)
