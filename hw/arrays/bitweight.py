"""Reduce by bit-weight first: the dot-product tile's reduction tree with ``pe.reduction: bitweight``.

Wu et al., "Exploring the Performance Improvement of Tensor Processing Engines through
Transformation in the Bit-weight Dimension of MACs" (HPCA 2025, arXiv 2503.06342), OPT2. A dot
product ``sum_k a_k w_k`` with each weight written in ``D`` digits, ``w_k = sum_j d_{k,j} r**j``, is
``sum_j r**j S_j`` with the column sums ``S_j = sum_k d_{k,j} a_k``: instead of ``tile_k``
multipliers (each an internal tree over its ``D`` partial products) and a tree over their wide
products, ``D`` trees sum the *unshifted*, narrow partial products of equal bit-weight across K, and
one small block shifts and adds the ``D`` column sums.

Digits (``pe.multiplier``):

* ``array``: the weight's bits (``r = 2``, ``D = weight_bits``); partial product ``a_k`` if bit ``j``
  of ``w_k`` is set, else 0 (an AND row). A signed weight's top bit weighs ``-2**(D-1)``: its column
  sum is subtracted once per output (one's complement and a one), not negated per row.
* ``booth_r4`` / ``en_t``: radix-4 digits (``r = 4``) from one
  :class:`~tpegen.hw.pe.radix4.Radix4Encoder` per weight lane (the weight store's output, shared by
  the ``tile_m`` outputs that read the lane), the partial products of
  :func:`~tpegen.hw.pe.radix4.partial_products` (0, +-a, +-2a as a one's complement and a negation
  one); the negation ones of column ``j`` are summed across K by a tree of their own (a popcount).

The column trees are plain two-input adder trees of the tile's depth ``ceil(log2 tile_k)``, so the
tile's ``stages`` register levels apply unchanged (level 0 registers the partial products). The
last block -- the accumulator's -- compresses the accumulator and the shifted column sums (and
popcounts) with a Wallace tree of 3:2 carry-save adders (:func:`~tpegen.hw.pe.carry_save.compress`)
and finishes with one carry-propagate add per output per cycle.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, Value

from tpegen.hw.arrays.dot_params import DotTileParams
from tpegen.hw.pe.carry_save import compress
from tpegen.hw.pe.radix4 import Radix4Encoder, partial_products

__all__ = ["bitweight_columns", "bitweight_total"]


def _lane_digits(m: Module, p: DotTileParams, w_sel) -> list:
    """Per weight lane ``n * tile_k + k``: its digits, the weight's bits (``array``) or the
    :class:`Radix4Encoder` digits (submodule ``enc_n<n>_k<k>``)."""
    if p.multiplier == "array":
        return [[w[j] for j in range(p.weight_bits)] for w in w_sel]
    digits = []
    for lane, w in enumerate(w_sel):
        encoder = Radix4Encoder(p.w_shape, p.multiplier)
        m.submodules[f"enc_n{lane // p.tile_k}_k{lane % p.tile_k}"] = encoder
        m.d.comb += encoder.w.eq(w)
        digits.append(encoder.digits)
    return digits


def bitweight_columns(m: Module, p: DotTileParams, op_a, w_sel) -> list[list[list[Value]]]:
    """Per output ``m * tile_n + n``, its columns: for each digit position ``j`` the ``tile_k``
    unshifted partial products of digit ``j`` (``array``: ``D = weight_bits`` columns;
    ``booth_r4`` / ``en_t``: ``D`` radix-4 columns, then ``D`` columns of the negation ones)."""
    tm, tn, tk = p.tile_m, p.tile_n, p.tile_k
    digits = _lane_digits(m, p, w_sel)
    trees = []
    for i in range(tm):
        for n in range(tn):
            lanes = [(op_a[i * tk + k], digits[n * tk + k]) for k in range(tk)]
            if p.multiplier == "array":
                trees.append([[Mux(d[j], a, 0) for a, d in lanes] for j in range(p.weight_bits)])
                continue
            pps = [partial_products(m, a, d) for a, d in lanes]  # per k: (pp_j, neg_j) per digit j
            columns = [[pp[j][0] for pp in pps] for j in range(len(pps[0]))]
            trees.append(columns + [[pp[j][1] for pp in pps] for j in range(len(pps[0]))])
    return trees


def bitweight_total(m: Module, p: DotTileParams, acc: Value, sums: list[Value], name: str) -> Value:
    """``acc + sum_j r**j S_j`` (plus the negation ones' popcounts, radix-4) at ``acc_bits + 1``
    bits (take the low ``acc_bits``), from the reduced columns ``sums`` of
    :func:`bitweight_columns`: a :func:`compress` tree and one carry-propagate add."""
    width = p.acc_bits
    radix_bits = 1 if p.multiplier == "array" else 2
    digits = p.weight_bits if p.multiplier == "array" else len(sums) // 2
    words: list[Value] = [acc]
    for j, s in enumerate(sums):
        word = Signal(width, name=f"{name}_w{j}")
        m.d.comb += word.eq(s.shift_left(radix_bits * (j % digits)))
        if p.multiplier == "array" and p.weight_signed and j == digits - 1:  # -X == ~X + 1
            words += [~word, Const(1, width)]
        else:
            words.append(word)
    total_sum, total_carry = compress(m, words, width)
    return total_sum + total_carry
