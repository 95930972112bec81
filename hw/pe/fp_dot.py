"""Multi-term floating-point dot-product PE datapath (tensor-core numerics, Amaranth).

The numeric policy is that of :mod:`tpegen.sim.fp_dot` (read its docstring: products exact and
unnormalized, aligned to the largest exponent of the step with truncation ``align_bits`` below
it, one addition, one normalization, one rounding); :class:`DotDatapath` matches
:func:`tpegen.sim.fp_dot.dot_step` bit for bit. It is purely combinational (latency 0) and has the
FMA datapath's signature, with ``terms`` operands per ``a``/``w`` port, so the systolic cell and
array (:mod:`tpegen.hw.arrays.fp_engine`) take it unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth.hdl import C, Cat, Module, Mux, signed

from tpegen.hw.pe.datapath import Datapath
from tpegen.hw.pe.fma import (
    _clz,
    _exp,
    _ieee_fields,
    _min,
    _pack_ieee,
    _round_fixed,
    _select_special,
    _sig,
    top_range,
)

if TYPE_CHECKING:
    pass

__all__ = ["DotDatapath"]


def _max_tree(m: Module, name: str, values: list, lo: int, hi: int):
    """The largest of ``values`` (exponents in ``lo..hi``) by a balanced tree of comparators."""
    level = 0
    while len(values) > 1:
        pairs = [values[i : i + 2] for i in range(0, len(values), 2)]
        values = [
            p[0] if len(p) == 1 else _exp(m, f"{name}_l{level}_{i}", lo, hi, Mux(p[0] > p[1], p[0], p[1]))
            for i, p in enumerate(pairs)
        ]
        level += 1
    return values[0]


def _truncate_aligned(m: Module, name: str, sig, sig_width: int, d, keep: int):
    """The top ``keep`` bits of the ``sig_width``-bit field ``sig`` shifted right by ``d >= 0``
    (clamped), in a frame of ``max(sig_width, keep)`` bits: ``floor`` of the aligned value, the
    bits shifted out dropped (no sticky)."""
    frame = max(sig_width, keep)
    dc = _sig(m, f"{name}_d", range(frame + 1), Mux(d > frame, frame, d))
    shifted = _sig(m, f"{name}_sh", frame, Cat(C(0, frame - sig_width), sig) >> dc)
    return _sig(m, f"{name}_x", keep, shifted[frame - keep :])


class DotDatapath(Datapath):
    """Combinational ``acc_out = fl(acc_in + sum_t a[t] * w[t])``, ``terms`` products (latency 0).

    Ports: ``a`` (``terms`` lanes of the input format), ``w`` (``terms`` lanes of the weight
    format), ``acc_in``/``acc_out`` (the accumulator format; all-zero word ``+0``). Hardware:
    ``terms`` exact significand multipliers, a comparator tree for the largest exponent (the
    accumulator's included), one right shifter per term that truncates to ``align_bits`` bits below
    it (``align_bits + 2`` bits per term), one multi-operand adder of ``cfg.dot_sum_width`` bits,
    a leading-zero counter and left shifter, one RNE/truncation rounder, overflow and special
    handling. Parameters: :class:`~tpegen.hw.pe.fma.FmaPEParams` with ``align_bits`` set.
    """

    def elaborate(self, platform) -> Module:
        cfg = self.params.fma
        m = Module()
        fmt, B, T = cfg.acc_fmt, cfg.align_bits, cfg.terms
        P, Q, p = cfg.prod_width, fmt.man_bits + 1, fmt.man_bits + 1
        rne = cfg.rounding == "rne"
        sc, sigc, tc, infc, nanc = _ieee_fields(m, "c", self.acc_in, fmt)
        (clo, chi), (xlo, xhi), (ylo, yhi) = top_range(fmt), top_range(cfg.a_fmt), top_range(cfg.w_fmt)
        plo, phi = xlo + ylo, xhi + yhi  # a product's exponent Ta + Tw

        # products: exact, unnormalized (exponent Ta + Tw), zero products left out of the anchor
        prods = []
        for t in range(T):
            sa, siga, ta, infa, nana = _ieee_fields(m, f"a{t}", self.a[t], cfg.a_fmt)
            sw, sigw, tw, infw, nanw = _ieee_fields(m, f"w{t}", self.w[t], cfg.w_fmt)
            sig = _sig(m, f"p{t}_sig", P, siga * sigw)
            exp = _exp(m, f"p{t}_exp", plo, phi, ta + tw)
            nan = _sig(
                m, f"p{t}_nan", 1, nana | nanw | (infa & (sigw == 0) & ~infw) | (infw & (siga == 0) & ~infa)
            )
            inf = _sig(m, f"p{t}_inf", 1, (infa | infw) & ~nan)
            prods.append((_sig(m, f"p{t}_sign", 1, sa ^ sw), sig, exp, inf, nan))
        alo, ahi = clo, max(chi, phi)
        anchor = _max_tree(
            m, "anchor", [tc] + [Mux(sig == 0, tc, exp) for _, sig, exp, _, _ in prods], alo, ahi
        )
        anchor = _exp(m, "anchor", alo, ahi, anchor)

        # align (truncating to B bits below the anchor) and add once; fields placed with their MSB
        # one above their exponent (a product's carry bit; a leading 0 for the accumulator)
        width = cfg.dot_sum_width
        terms = []
        for t, (s, sig, exp, _, _) in enumerate(prods):
            d = _exp(m, f"p{t}_dist", 0, ahi - plo, Mux(sig == 0, 0, anchor - exp))
            x = _truncate_aligned(m, f"p{t}_al", sig, P, d, B + 2)
            terms.append(Mux(s, -x, x))
        xc = _truncate_aligned(m, "c_al", Cat(sigc, C(0, 1)), Q + 1, anchor - tc, B + 2)
        terms.append(Mux(sc, -xc, xc))
        total = _sig(m, "total", signed(width), sum(terms[1:], terms[0]))
        neg = total[-1]
        nm = width - 1
        n = max(nm, p + 2)
        mag = _sig(m, "mag", n, Cat(C(0, n - nm), Mux(neg, -total, total)[:nm]))
        top = _exp(m, "top", alo - B + nm - 1, ahi - B + nm - 1, anchor - B + nm - 1)  # weight of mag's MSB

        # normalize and round once
        lz = _clz(m, "lz", mag, n)
        sh = _sig(m, "sh", range(n + 1), _min(lz, top - fmt.emin))
        m2 = _sig(m, "m2", n, (mag << sh)[:n])
        q, carry = _round_fixed(m, "rnd", m2, n, p, rne)
        e_max = ahi - B + nm  # sh <= top - emin keeps e_top >= emin
        e_top = _exp(m, "e_top", fmt.emin, e_max, top - sh + carry)
        all_neg = sc
        for s, *_ in prods:
            all_neg = all_neg & s
        sign = _sig(m, "sign", 1, Mux(mag == 0, all_neg, neg))
        packed = _pack_ieee(m, "pk", sign, q, e_top, e_max, p, fmt, rne, renormalize=False)

        # specials
        pos_inf = infc & ~sc
        neg_inf = infc & sc
        any_nan = nanc
        for s, _, _, inf, nan in prods:
            pos_inf = pos_inf | (inf & ~s)
            neg_inf = neg_inf | (inf & s)
            any_nan = any_nan | nan
        pos_inf, neg_inf = _sig(m, "pos_inf", 1, pos_inf), _sig(m, "neg_inf", 1, neg_inf)
        nan = _sig(m, "nan", 1, any_nan | (pos_inf & neg_inf))
        _select_special(
            m, self.acc_out.as_value(), fmt, nan, pos_inf | neg_inf, neg_inf, q == 0, sign, packed
        )
        return m
