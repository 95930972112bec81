"""Compiled bit-exact GEMM of the floating-point PEs (numba): the FMA chain and the dot-product PE.

:func:`fast_gemm` returns exactly what the vectorized numpy models return --
:func:`tpegen.sim.fp.gemm_chain` for an FMA configuration (exact or L-Mul multiplier, any
normalization window/granularity, relaxed partial sums with one edge normalization) and
:func:`tpegen.sim.fp_dot.gemm_dot` for a dot-product configuration (``terms`` products per step,
``align_bits``, ``rne``/``trunc``) -- much faster, for task-level accuracy studies (billions of
multiply-adds, e.g. ``bench/fp_accuracy.py``): 7-9 ns of CPU per multiply-add for the FMA chain and
11-14 ns for the four-term dot-product PE, against 130 ns and 60 ns for the numpy models on a
64 x 384 x 384 GEMM, and 100-200x on attention-head-sized GEMMs (12 x 32 x 12), where the
models' per-step numpy overhead dominates. The kernels are scalar transcriptions
of :func:`tpegen.sim.fp.fma` and :func:`tpegen.sim.fp_dot.dot_step` step by step (decode, multiply,
align, add, normalize, round, pack, special values), compiled by numba, the rows of ``C`` on numba's
threads for GEMMs of at least ``2**16`` multiply-adds. They share no code with the numpy models except the relaxed partial sums' edge
normalization (:func:`tpegen.sim.fp.normalize_relaxed`, once per output), so :func:`self_check`,
which compares both on random and special-value GEMMs, is a check of one against the other.

numba is optional (``pip install numba``, or the ``minilm`` extra): it is imported when a kernel
is first needed, and its absence is a :class:`~tpegen.errors.TpegenError` then, not at import.
The kernels compile on first use (a few seconds); every configuration shares the same compiled
code, its numbers (widths, offsets, flags) being passed as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from tpegen.errors import TpegenError
from tpegen.sim.fp import FloatFormat, FmaConfig, gemm_chain, normalize_relaxed, quantize
from tpegen.sim.fp_dot import pad_k

__all__ = ["fast_gemm", "self_check", "check_cases"]


class _Format(NamedTuple):
    """An IEEE-like format's numbers as the kernels read them (see :class:`FloatFormat`)."""

    width: int
    man: int
    exp_ones: int
    bias: int
    emin: int
    max_finite: int
    has_inf: int
    inf: int  # +inf pattern (0 for a finite-only format, never produced there)
    nan: int
    overflow: int  # magnitude pattern of a finite overflow under the configured rounding


class _Params(NamedTuple):
    """Every number of one configuration the kernels need (one compiled signature for all)."""

    a: _Format
    w: _Format
    acc: _Format
    r_man: int  # relaxed partial-sum format (FmaConfig.relaxed)
    r_exp: int
    r_bias: int
    r_emin: int
    r_exp_off: int
    r_sign_off: int
    r_inf_off: int
    r_nan_off: int
    prod_width: int  # P, Q, W, N, p of the FMA datapath
    addend_width: int
    window: int
    sum_width: int
    out_sig: int
    out_emin: int
    norm_window: int  # 0 = exact leading-zero count
    granularity: int
    rne: int
    in_pe: int
    renormalize: int
    lmul: int
    lmul_offset: int
    terms: int  # dot-product step
    align_bits: int
    dot_sum_width: int


def _format(fmt: FloatFormat, rounding: str) -> _Format:
    return _Format(
        fmt.width,
        fmt.man_bits,
        fmt.exp_all_ones,
        fmt.bias,
        fmt.emin,
        fmt.max_finite_bits,
        int(fmt.has_inf),
        0 if fmt.finite_only else fmt.inf_bits,
        fmt.nan_bits,
        fmt.overflow_bits(rounding),
    )


def _params(cfg: FmaConfig) -> _Params:
    rf = cfg.relaxed
    return _Params(
        _format(cfg.a_fmt, cfg.rounding),
        _format(cfg.w_fmt, cfg.rounding),
        _format(cfg.acc_fmt, cfg.rounding),
        rf.man_bits,
        rf.exp_bits,
        rf.bias,
        rf.emin,
        rf.exp_offset,
        rf.sign_offset,
        rf.inf_offset,
        rf.nan_offset,
        cfg.prod_width,
        cfg.addend_width,
        cfg.window,
        cfg.sum_width,
        cfg.out_sig_width,
        cfg.out_emin,
        cfg.norm_window or 0,
        cfg.shift_granularity,
        int(cfg.rounding == "rne"),
        int(cfg.normalize_in_pe),
        int(not cfg.exact),
        int(cfg.multiplier == "lmul"),
        cfg.lmul_offset,
        cfg.terms,
        cfg.align_bits or 0,
        cfg.dot_sum_width if cfg.dot else 0,
    )


# ------------------------------------------------------------------------------------------------
# the kernels (built on first use: numba is imported there)
# ------------------------------------------------------------------------------------------------
class _Kernels(NamedTuple):
    """Each a pair (serial, parallel over the rows of ``C``) of compiled functions."""

    chain: tuple  # (A (M,K), W (K,N), params) -> acc (M,N): the FMA chain's last partial sums
    dot: tuple  # (A (M,K'), W3 (K'/T, N, T), params) -> C (M,N) of the dot-product PE


# GEMMs of fewer multiply-adds run on one thread: starting the thread pool costs more than they
# take, and much more on an oversubscribed machine.
_PARALLEL_MACS = 1 << 16


_KERNELS: _Kernels | None = None


def _kernels() -> _Kernels:
    global _KERNELS
    if _KERNELS is None:
        try:
            import numba
        except ImportError:
            raise TpegenError(
                "the compiled FP GEMM (tpegen.sim.fp_fast) needs numba: pip install numba"
            ) from None
        _KERNELS = _build(numba)
    return _KERNELS


def _build(numba) -> _Kernels:
    """Compile-on-call kernels: one small function per datapath stage, inlined into two row loops."""
    from llvmlite import ir
    from numba.extending import intrinsic

    njit = numba.njit
    inline = numba.njit(inline="always")  # numba-level inlining: the parameters fold into the loops

    @intrinsic
    def ctlz64(typingctx, x):
        """LLVM's count-leading-zeros of an int64 (64 for 0)."""
        return numba.int64(numba.int64), lambda ctx, builder, sig, args: builder.ctlz(
            args[0], ir.Constant(ir.IntType(1), 0)
        )

    @inline
    def clz(x, width):
        """Leading zeros of ``x >= 0`` as a ``width``-bit number."""
        return ctlz64(x) - (64 - width)

    @inline
    def shr_sticky(v, d, width):
        """``v`` shifted right by ``d`` (clamped to ``width``), the lost bits OR-ed into a bit below."""
        d = min(d, width)
        kept = v >> d
        return (kept << 1) | (1 if v != (kept << d) else 0)

    @inline
    def round_fixed(m, width, p, rne):
        """``width``-bit ``m`` rounded to its top ``p`` bits -> (q < 2**p, carry)."""
        q = m >> (width - p)
        if rne and (m >> (width - p - 1)) & 1 and ((m & ((1 << (width - p - 1)) - 1)) != 0 or q & 1):
            q += 1
        carry = q >> p
        return (q >> 1 if carry else q), carry

    @inline
    def decode(bits, f):
        """-> sign, significand (hidden bit explicit), weight exponent of its bit ``man``, inf, nan."""
        s = (bits >> (f.width - 1)) & 1
        e = (bits >> f.man) & f.exp_ones
        frac = bits & ((1 << f.man) - 1)
        special = (bits & ((1 << (f.width - 1)) - 1)) > f.max_finite
        inf = special and frac == 0 and f.has_inf != 0
        if special:
            sig = 0
        elif e == 0:
            sig = frac
        else:
            sig = frac | (1 << f.man)
        return s, sig, max(e, 1) - f.bias, inf, special and not inf

    @inline
    def decode_relaxed(bits, pr):
        s = (bits >> pr.r_sign_off) & 1
        inf = (bits >> pr.r_inf_off) & 1 != 0
        nan = (bits >> pr.r_nan_off) & 1 != 0
        man = 0 if inf or nan else bits & ((1 << pr.r_man) - 1)
        e = (bits >> pr.r_exp_off) & ((1 << pr.r_exp) - 1)
        return s, man, e - pr.r_bias, inf and not nan, nan

    @inline
    def pack_ieee(sign, q, e_top, p, f):
        """Sign and the exactly representable ``q * 2**(e_top - p + 1)`` (``q > 0`` in ``p`` bits)."""
        biased = e_top - f.emin + 1 if (q >> (p - 1)) & 1 else 0
        bits = (biased << f.man) | (q & ((1 << f.man) - 1))
        return (f.overflow if bits > f.max_finite else bits) | (sign << (f.width - 1))

    @inline
    def product(a, w, pr):
        """``a * w`` -> sign, significand (exact, or L-Mul on the exact product's grid), weight
        exponent ``Ta + Tw`` of its bit ``Ma + Mw``, inf, NaN (a NaN operand or ``inf * 0``)."""
        sa, siga, ta, infa, nana = decode(a, pr.a)
        sw, sigw, tw, infw, nanw = decode(w, pr.w)
        if pr.lmul:  # denormals are zero
            ma, mw = pr.a.man, pr.w.man
            if not (siga >> ma) & 1:
                siga = 0
            if not (sigw >> mw) & 1:
                sigw = 0
            if siga != 0 and sigw != 0:
                f = max(ma, mw)
                s = ((siga & ((1 << ma) - 1)) << (f - ma)) + ((sigw & ((1 << mw) - 1)) << (f - mw))
                sigp = (s + (1 << f) + (1 << (f - pr.lmul_offset))) << (ma + mw - f)
            else:
                sigp = 0
        else:
            sigp = siga * sigw
        nan = nana or nanw or (infa and sigw == 0 and not infw) or (infw and siga == 0 and not infa)
        return sa ^ sw, sigp, ta + tw, (infa or infw) and not nan, nan

    @inline
    def fma(a, w, c, pr):
        """``c + a*w`` of :func:`tpegen.sim.fp.fma` (accumulator or relaxed bits in and out)."""
        sp, sigp, tp, infp, nanp = product(a, w, pr)
        tp += 1
        if pr.in_pe:
            sc, sigc, tc, infc, nanc = decode(c, pr.acc)
        else:
            sc, sigc, tc, infc, nanc = decode_relaxed(c, pr)
        P, Q, W, N, p = pr.prod_width, pr.addend_width, pr.window, pr.sum_width, pr.out_sig
        # align and add
        anchor = tc if sigp == 0 else max(tp, tc)
        xp = shr_sticky(sigp << (W - P), max(anchor - tp, 0), W)
        xc = shr_sticky(sigc << (W - Q), anchor - tc, W)
        total = (-xp if sp else xp) + (-xc if sc else xc)
        mag = abs(total)
        t = anchor + 1
        # normalize (exact or windowed/granular leading-zero shift) and round at a fixed position
        lz = clz(mag, N)
        if pr.norm_window > 0:
            lz = min(lz, pr.norm_window)
        sh = min(lz, t - pr.out_emin)
        sh &= ~(pr.granularity - 1)
        q, carry = round_fixed(mag << sh, N, p, pr.rne)
        e_top = t - sh + carry
        sign = (sp & sc) if mag == 0 else (1 if total < 0 else 0)
        nan = nanp or nanc or (infp and infc and sp != sc)
        if pr.in_pe:
            f = pr.acc
            if nan:
                return f.nan
            if infp:
                return (sp << (f.width - 1)) | f.inf
            if infc:
                return (sc << (f.width - 1)) | f.inf
            if q == 0:
                return sign << (f.width - 1)
            if pr.renormalize:
                rs = min(clz(q, p), e_top - f.emin)
                q <<= rs
                e_top -= rs
            return pack_ieee(sign, q, e_top, p, f)
        if nan:
            return 1 << pr.r_nan_off
        if infp:
            return (sp << pr.r_sign_off) | (1 << pr.r_inf_off)
        if infc:
            return (sc << pr.r_sign_off) | (1 << pr.r_inf_off)
        if q == 0:
            return sign << pr.r_sign_off
        ef = e_top + pr.r_bias
        if ef > (1 << pr.r_exp) - 1:
            big = (((1 << pr.r_exp) - 1) << pr.r_exp_off) | ((1 << pr.r_man) - 1)
            bits = 1 << pr.r_inf_off if pr.rne else big
        else:
            bits = (ef << pr.r_exp_off) | q
        return bits | (sign << pr.r_sign_off)

    @inline
    def truncate(sig, amount):
        """``floor(sig * 2**amount)`` (``sig >= 0``)."""
        if amount >= 0:
            return sig << amount
        return sig >> -amount if amount > -63 else 0

    @inline
    def dot_step(a_row, w3, b, j, c, pr, terms):
        """``c + sum_t a_row[b*T + t] * w3[b, j, t]`` of :func:`tpegen.sim.fp_dot.dot_step`
        (``terms``: scratch of shape (3, T) for the products' significands, exponents, signs)."""
        T, B, f = pr.terms, pr.align_bits, pr.acc
        sc, sigc, tc, infc, nanc = decode(c, f)
        anchor, all_neg = tc, sc
        nan, pos_inf, neg_inf = nanc, infc and sc == 0, infc and sc != 0
        for t in range(T):  # the products, the anchor (largest exponent of a nonzero one), specials
            sp, sigp, ep, infp, nanp = product(a_row[b * T + t], w3[b, j, t], pr)
            terms[0, t], terms[1, t], terms[2, t] = sigp, ep, sp
            if sigp != 0:
                anchor = max(anchor, ep)
            all_neg &= sp
            nan = nan or nanp
            pos_inf = pos_inf or (infp and sp == 0)
            neg_inf = neg_inf or (infp and sp != 0)
        if nan or (pos_inf and neg_inf):
            return f.nan
        if pos_inf or neg_inf:
            return (1 << (f.width - 1) if neg_inf else 0) | f.inf
        # every term truncated to a multiple of 2**(anchor - B), one exact sum
        xc = truncate(sigc, B - f.man - (anchor - tc))
        total = -xc if sc else xc
        for t in range(T):
            xp = truncate(terms[0, t], B - (pr.a.man + pr.w.man) - (anchor - terms[1, t]))
            total += -xp if terms[2, t] else xp
        # one normalization and rounding of |total| * 2**(anchor - B)
        p = f.man + 1
        nm = pr.dot_sum_width - 1
        n = max(nm, p + 2)
        mag = abs(total) << (n - nm)
        top = anchor - B + nm - 1
        sh = min(clz(mag, n), top - f.emin)
        q, carry = round_fixed(mag << sh, n, p, pr.rne)
        sign = all_neg if mag == 0 else (1 if total < 0 else 0)
        if q == 0:
            return sign << (f.width - 1)
        return pack_ieee(sign, q, top - sh + carry, p, f)

    assert len(_Format._fields) == 10  # the static slices below

    @njit
    def unflatten(flat):  # numba's parallel loops take flat tuples only
        return _Params(_Format(*flat[:10]), _Format(*flat[10:20]), _Format(*flat[20:30]), *flat[30:])

    def over_rows(row):
        """(serial, parallel) kernels running ``row`` on every row of ``C``."""

        def build(loop, parallel):
            @njit(parallel=parallel)
            def run(A, B, flat):
                out = np.zeros((A.shape[0], B.shape[1]), dtype=np.int64)
                for i in loop(A.shape[0]):
                    row(A[i], B, out[i], flat)
                return out

            return run

        return build(range, False), build(numba.prange, True)

    @njit
    def chain_row(a_row, Wm, out_row, flat):
        pr = unflatten(flat)
        for k in range(len(a_row)):  # k outer, j inner: independent chains side by side
            a = a_row[k]
            for j in range(len(out_row)):
                out_row[j] = fma(a, Wm[k, j], out_row[j], pr)

    @njit
    def dot_row(a_row, W3, out_row, flat):
        pr = unflatten(flat)
        terms = np.empty((3, pr.terms), dtype=np.int64)
        for b in range(W3.shape[0]):
            for j in range(len(out_row)):
                out_row[j] = dot_step(a_row, W3, b, j, out_row[j], pr, terms)

    return _Kernels(over_rows(chain_row), over_rows(dot_row))


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------
def fast_gemm(a_bits: np.ndarray, w_bits: np.ndarray, cfg: FmaConfig) -> np.ndarray:
    """``C`` of an FP PE configuration, compiled: equals :func:`tpegen.sim.fp.gemm_chain` (an FMA
    ``cfg``) or :func:`tpegen.sim.fp_dot.gemm_dot` (``cfg.dot``) bit for bit.

    ``a_bits`` (M, K) and ``w_bits`` (K, N) hold ``cfg.a_fmt``/``cfg.w_fmt`` codes; returns
    ``cfg.acc_fmt`` codes (int64, shape (M, N)). A dot-product PE consumes K ``cfg.terms`` at a time,
    K padded with ``+0`` codes to a multiple of ``terms``. Raises :class:`~tpegen.errors.TpegenError`
    without numba.
    """
    a = np.ascontiguousarray(a_bits, dtype=np.int64)
    w = np.ascontiguousarray(w_bits, dtype=np.int64)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"fast_gemm: incompatible shapes {a.shape} x {w.shape}")
    kernels = _kernels()
    parallel = int(a.shape[0] > 1 and a.size * w.shape[1] >= _PARALLEL_MACS)
    prm = tuple(v for field in _params(cfg) for v in (field if isinstance(field, tuple) else (field,)))
    if cfg.dot:
        T = cfg.terms
        w3 = np.ascontiguousarray(pad_k(w, T, 0).reshape(-1, T, w.shape[1]).transpose(0, 2, 1))
        return kernels.dot[parallel](np.ascontiguousarray(pad_k(a, T, 1)), w3, prm)
    acc = kernels.chain[parallel](a, w, prm)
    return acc if cfg.normalize_in_pe else normalize_relaxed(acc, cfg)


def _edge_codes(fmt: FloatFormat) -> np.ndarray:
    """Both signs of: zero, smallest/largest subnormal, smallest normal, one, largest finite, NaN, inf."""
    m = fmt.man_bits
    v = [0, 1, (1 << m) - 1, 1 << m, fmt.bias << m, fmt.max_finite_bits, fmt.nan_bits]
    v += [fmt.inf_bits] if fmt.has_inf else []
    return np.array(v + [x | fmt.sign_bit for x in v], dtype=np.int64)


def check_cases(cfg: FmaConfig, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(A, W)`` code pairs of ``cfg``'s input formats that drive every datapath case.

    A 12 x 70 x 12 GEMM: sums of nearby products, near and exact cancellation (long normalization
    shifts, signed zeros), rows and columns scaled across the accumulator's exponent range
    (products that overflow, turn subnormal or round to signed zeros), a row and a column of
    uniformly random codes (NaN and inf included), a row of zeros of both signs. Then every edge
    code (both signs of zero, smallest and largest subnormal, smallest normal, one, largest finite,
    NaN, inf) times every other, alone (K = 1) and plus a second edge product (K = 2). Last, an
    8 x 6 x 8 GEMM of products of both signs around the accumulator's smallest subnormal (sums that
    round to signed zeros or to the smallest subnormals).
    """
    rng = np.random.default_rng(seed)
    af, wf, cf = cfg.a_fmt, cfg.w_fmt, cfg.acc_fmt
    m, k, n = 12, 70, 12

    def scaled(fmt: FloatFormat, shape, axis: int) -> np.ndarray:
        """Normal values, half the rows (axis 0) or columns (1) scaled so that two scales add up
        to anywhere in the accumulator's range; lines 2, 3, 4 to subnormal, overflowing and
        underflowing products."""
        x = rng.standard_normal(shape) * np.exp2(rng.integers(-3, 4, shape))
        lo, hi = (cf.emin - cf.man_bits) // 2 - 2, cf.emax // 2 + 2
        scale = np.where(rng.random(shape[axis]) < 0.5, 0, rng.integers(lo, hi + 1, shape[axis]))
        scale[2:5] = (cf.emin - 3) // 2, cf.emax // 2 + 1, (cf.emin - cf.man_bits) // 2 - 8
        scale = np.clip(scale, fmt.emin - fmt.man_bits, fmt.emax - 4)
        return x * np.exp2(np.expand_dims(scale, 1 - axis))

    def tiny(fmt: FloatFormat, shape, scale: int) -> np.ndarray:
        x = (1 + rng.random(shape)) * rng.choice([-1.0, 1.0], shape)
        return quantize(x * 2.0 ** np.clip(scale, fmt.emin - fmt.man_bits, fmt.emax), fmt)

    h, rows = k // 2, slice(m // 2, m)
    eps = rng.standard_normal((m - m // 2, 1)) * np.exp2(-rng.integers(1, 30, (m - m // 2, 1)))
    with np.errstate(all="ignore"):
        a, w = scaled(af, (m, k), 0), scaled(wf, (k, n), 1)
        w[1 : 2 * h : 2, n // 2 :] = w[0 : 2 * h : 2, n // 2 :]  # pairs of equal weights ...
        a[rows, 1 : 2 * h : 2] = -a[rows, 0 : 2 * h : 2] * np.where(eps < 0, 1, 1 + eps)  # ... -x, -x(1+e)
        ab, wb = quantize(a, af), quantize(w, wf)
    ab[0] = rng.integers(0, 1 << af.width, k)
    wb[:, 0] = rng.integers(0, 1 << wf.width, k)
    ab[1] = rng.integers(0, 2, k) << (af.width - 1)
    ea, ew = _edge_codes(af), _edge_codes(wf)
    pairs = np.stack([ea, np.roll(ea, 5)], axis=1), np.stack([ew, np.roll(ew, 3)])
    sa = (cf.emin - cf.man_bits - 2) // 2
    under = tiny(af, (8, 6), sa), tiny(wf, (6, 8), cf.emin - cf.man_bits - 2 - sa)
    return [(ab, wb), (ea[:, None], ew[None, :]), pairs, under]


def self_check(cfgs: Mapping[str, FmaConfig], seed: int = 0) -> None:
    """Raise :class:`~tpegen.errors.TpegenError` unless :func:`fast_gemm` equals the numpy model
    (:func:`tpegen.sim.fp.gemm_chain`, which runs :func:`tpegen.sim.fp_dot.gemm_dot` for a
    dot-product ``cfg``) bit for bit on :func:`check_cases` of every configuration."""
    for i, (name, cfg) in enumerate(cfgs.items()):
        for a, w in check_cases(cfg, seed + i):
            want, got = gemm_chain(a, w, cfg), fast_gemm(a, w, cfg)
            bad = np.argwhere(got != want)
            if bad.size:
                r, c = bad[0]
                raise TpegenError(
                    f"fast_gemm != numpy model for {name} on a {a.shape[0]}x{a.shape[1]}x{w.shape[1]} GEMM: "
                    f"{len(bad)} of {want.size} outputs differ, first C[{r},{c}] = {got[r, c]:#x}, "
                    f"model {want[r, c]:#x}"
                )
