"""Bit-exact numeric model of the multi-term floating-point dot-product PE (tensor-core numerics).

A PE with ``terms = T`` and ``align_bits = B`` (:class:`~tpegen.sim.fp.FmaConfig`, ``cfg.dot``)
computes per step ``acc + a_0 w_0 + ... + a_{T-1} w_{T-1}`` with one addition, one normalization
and one rounding, as Fasi, Higham, Mikaitis and Pranesh ("Numerical behavior of NVIDIA tensor
cores", PeerJ Computer Science 7:e330, 2021) observe for the V100/T4 fp16 tensor cores with fp32
accumulation (there ``T = 4``, ``B = 23``, rounding toward zero). The hardware is
:class:`tpegen.hw.pe.fp_dot.DotDatapath`; this model describes it step by step, vectorized.

Step (all integer arithmetic on int64)
--------------------------------------
* **Products** are exact: ``sig_t = sig(a_t) * sig(w_t)`` (``P = Ma + Mw + 2`` bits, hidden bits
  explicit, subnormals as they are: no flush to zero), sign ``s(a_t) ^ s(w_t)``. A product is
  *not* normalized: its exponent is ``E_t = Ta + Tw``, the sum of the operands' field exponents
  (``T = max(e, 1) - bias``), the weight of bit ``Ma + Mw`` of ``sig_t``; its significand lies in
  ``[0, 4) * 2**E_t``, so it may carry one bit above ``E_t``.
* **Anchor**: ``E = max(Tc, E_t over the nonzero products)`` where ``Tc`` is the accumulator's
  field exponent (``emin`` of the accumulator format for zeros and subnormals, so ``E >= emin``).
* **Alignment with truncation**: every term's magnitude is cut to a multiple of ``2**(E - B)``:
  ``x = floor(|v| / 2**(E - B))``; the bits shifted out are dropped (no guard, round or sticky
  bit). ``B = 23`` keeps fp32's 24 significand bits from ``E`` down.
* **One addition**: ``S = sum(+-x_t) +- x_c`` exactly (``cfg.dot_sum_width`` bits signed: the
  carries above ``E`` are all kept), value ``S * 2**(E - B)``.
* **One normalization and one rounding** to the accumulator format (``'rne'`` or ``'trunc'``),
  subnormal outputs included: the rounding of :func:`tpegen.sim.fp.fma` applied to this exact
  value (overflow to ``±inf`` or ``±max``).

Because the sum of the truncated terms is exact, the result does not depend on the order of the
terms within a step (the tensor cores' "no rounding between terms"), but it is not monotonic: a
larger anchor truncates the small terms more (the paper's non-monotonicity example).

Signs and specials: a zero sum ``S == 0`` is ``-0`` only if every term is negative (products
``s(a_t) ^ s(w_t)``, zeros included, and the accumulator), else ``+0``; a nonzero ``S`` that
rounds to zero keeps its sign. NaN if any operand is NaN, a product is ``inf * 0``, or infinities
of both signs meet (products and accumulator); otherwise an infinite term gives that infinity.

A GEMM (:func:`gemm_dot`) consumes K ``T`` at a time from ``+0`` in order: step ``b`` takes
``k = b*T .. b*T + T - 1``; K is padded at its end with ``+0`` operands to a multiple of ``T``
(their products are ``+0`` and take part as such, e.g. in the sign of a zero sum).
"""

from __future__ import annotations

import numpy as np

from tpegen.sim.fp import _BLOCK, I64, FmaConfig, _ieee_fields, _pack_ieee, _round_fixed, clz

__all__ = ["dot_step", "gemm_dot", "pad_k"]


def _truncate(sig: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """``floor(sig * 2**amount)`` for non-negative ``sig`` and any integer ``amount`` (no overflow
    when the result fits)."""
    return np.where(amount >= 0, sig << np.clip(amount, 0, 62), sig >> np.clip(-amount, 0, 63))


def dot_step(a_bits: np.ndarray, w_bits: np.ndarray, c_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """One step ``c + sum_t a[..., t] * w[..., t]`` of the dot-product PE, bit-exactly as the RTL.

    ``a``/``w`` hold ``cfg.terms`` codes of ``cfg.a_fmt``/``cfg.w_fmt`` along their last axis,
    ``c`` and the result are ``cfg.acc_fmt`` codes; the leading axes broadcast.
    """
    if not cfg.dot:
        raise ValueError("dot_step models a dot-product PE (cfg.align_bits set); use tpegen.sim.fp.fma")
    a_bits, w_bits = (np.asarray(x, dtype=I64) for x in (a_bits, w_bits))
    if a_bits.shape[-1] != cfg.terms or w_bits.shape[-1] != cfg.terms:
        raise ValueError(f"dot_step: the last axis must hold {cfg.terms} terms")
    c_bits = np.asarray(c_bits, dtype=I64)
    fmt, B = cfg.acc_fmt, cfg.align_bits
    ma, mw = cfg.a_fmt.man_bits, cfg.w_fmt.man_bits
    sa, siga, ta, infa, nana = _ieee_fields(a_bits, cfg.a_fmt)
    sw, sigw, tw, infw, nanw = _ieee_fields(w_bits, cfg.w_fmt)
    sc, sigc, tc, infc, nanc = _ieee_fields(c_bits, fmt)
    # products (exact, unnormalized) and the anchor
    sp = sa ^ sw
    sigp = siga * sigw
    ep = ta + tw
    anchor = np.maximum(tc, np.where(sigp != 0, ep, tc[..., None]).max(axis=-1))
    # alignment: truncate every term to a multiple of 2**(anchor - B)
    xp = _truncate(sigp, B - (ma + mw) - (anchor[..., None] - ep))
    xc = _truncate(sigc, B - fmt.man_bits - (anchor - tc))
    # one addition
    total = np.where(sp != 0, -xp, xp).sum(axis=-1) + np.where(sc != 0, -xc, xc)
    neg = (total < 0).astype(I64)
    mag = np.abs(total)
    # one normalization and rounding: mag has Nm bits, LSB weight anchor - B; pad to room for
    # p significand bits + guard + sticky
    p = fmt.man_bits + 1
    nm = cfg.dot_sum_width - 1
    n = max(nm, p + 2)
    mag = mag << I64(n - nm)
    t = anchor - B + nm - 1  # weight of mag's MSB
    sh = np.minimum(clz(mag, n), t - fmt.emin)
    q, carry = _round_fixed(mag << sh, n, p, cfg.rounding)
    e_top = t - sh + carry
    sign = np.where(mag == 0, (sp.min(axis=-1) & sc), neg)
    out = _pack_ieee(sign, q, e_top, p, fmt, cfg.rounding, renormalize=False)
    out = np.where(q == 0, sign << I64(fmt.width - 1), out)
    # specials
    zero_a, zero_w = siga == 0, sigw == 0
    nan_t = nana | nanw | (infa & zero_w & ~infw) | (infw & zero_a & ~infa)
    infp = (infa | infw) & ~nan_t
    pos_inf = (infp & (sp == 0)).any(axis=-1) | (infc & (sc == 0))
    neg_inf = (infp & (sp != 0)).any(axis=-1) | (infc & (sc != 0))
    nan = nan_t.any(axis=-1) | nanc | (pos_inf & neg_inf)
    out = np.where(pos_inf | neg_inf, (neg_inf.astype(I64) << I64(fmt.width - 1)) | I64(fmt.inf_bits), out)
    return np.where(nan, I64(fmt.nan_bits), out)


def pad_k(x: np.ndarray, terms: int, axis: int) -> np.ndarray:
    """``x`` with its K ``axis`` padded at the end with ``+0`` codes to a multiple of ``terms``."""
    k = x.shape[axis]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, -k % terms)
    return np.pad(x, widths)


def gemm_dot(A_bits: np.ndarray, W_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """``C`` of the dot-product PE: from ``+0``, one :func:`dot_step` per ``terms`` values of K in
    order (K padded with ``+0``). Returns ``cfg.acc_fmt`` codes, shape (M, N)."""
    A_bits = np.asarray(A_bits, dtype=I64)
    W_bits = np.asarray(W_bits, dtype=I64)
    if A_bits.ndim != 2 or W_bits.ndim != 2 or A_bits.shape[1] != W_bits.shape[0]:
        raise ValueError(f"gemm_dot: incompatible shapes {A_bits.shape} x {W_bits.shape}")
    T = cfg.terms
    rows = max(1, _BLOCK // max(1, W_bits.shape[1] * T))
    if A_bits.shape[0] > rows:  # rows of C are independent: bound the (rows x N x T) temporaries
        return np.concatenate(
            [gemm_dot(A_bits[i : i + rows], W_bits, cfg) for i in range(0, len(A_bits), rows)]
        )
    a = pad_k(A_bits, T, 1).reshape(A_bits.shape[0], 1, -1, T)  # (M, 1, steps, T)
    w = pad_k(W_bits, T, 0).reshape(-1, T, W_bits.shape[1]).transpose(2, 0, 1)[None]  # (1, N, steps, T)
    acc = np.zeros((A_bits.shape[0], W_bits.shape[1]), dtype=I64)
    for b in range(a.shape[2]):
        acc = dot_step(a[:, :, b], w[:, :, b], acc, cfg)
    return acc
