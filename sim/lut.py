"""LUT tensor core: parameters, bit-exact numeric model, timing model and stream driver.

Technique (LUT Tensor Core, ISCA 2025) as the RTL in :mod:`tpegen.hw.arrays.lut_core` implements it:

* **Bit-serial symmetric weights.** A signed ``b``-bit weight ``s`` in ``[-2^(b-1), 2^(b-1)-1]`` is
  stored as the unsigned code ``q = s + 2^(b-1)`` with bits ``w_i``. Every bit plane is read as a
  +-1 vector ``(2 w_i - 1)``, and ``q' = sum_i 2^i (2 w_i - 1) = 2q - (2^b - 1) = 2s + 1``. Hence
  ``sum_k a_k q'_k = 2 sum_k a_k s_k + sum_k a_k`` and the exact product is
  ``A @ W = (L - rowsum(A)) / 2`` with ``L`` the LUT result. The division is exact (the numerator is
  even), so the hardware drops one accumulator LSB.
* **Binary W1** weights are ``s`` in ``{-1, +1}``: one plane, ``q' = s``, no correction.
* **Ternary** weights ``{-1, 0, +1}`` (``ternary=True``) run on the W2 datapath: they are a subset of
  the signed 2-bit range, so they use two +-1 planes and the same correction; the encoder rejects
  the code ``-2``.
* **Half tables.** For a group of ``g`` activations the full table ``T[u] = sum_j (2 u_j - 1) a_j``
  (bit ``j`` of ``u`` selects the sign of ``a_j``) satisfies ``T[~u] = -T[u]``. Only the
  ``E = 2^(g-1)`` entries with ``u_{g-1} = 1`` are stored: ``S[v] = a_{g-1} + sum_{j<g-1} (2 v_j - 1) a_j``.
  The encoded index keeps ``u_{g-1}`` as its top (sign) bit; when it is 0 the low ``g-1`` bits are
  complemented offline, so the hardware reads ``S[low]`` and negates it when the sign bit is 0.
  ``S[E-1]`` (all signs +1) is the group's activation sum, the ``rowsum`` correction term.
* **Table design choices** (LUT Tensor Core's ablation, :class:`LutCoreParams` ``table``,
  ``index_complement``, ``precompute``; the defaults are the scheme above). ``table="full"``
  stores all ``2^g`` entries ``T[u]`` and reads them at the raw plane index ``u`` (no negation,
  nothing complemented). ``index_complement="in_core"`` keeps half tables but the driver sends the
  raw ``u``: the core complements the low bits itself when the sign bit is 0. ``precompute=
  "external"``: the driver computes the tables (:func:`precompute_tables`) and each row's K-tile
  activation sum (:func:`tile_rowsums`) and streams them in place of the activations. Every
  variant computes the same exact integers, so ``C`` is the same; :func:`lut_gemm` follows each
  one's own path (which tables, which index, who sums the rows).
* **Order of operations** (mirrored by :func:`lut_gemm`): per K-tile (``tile_k`` groups) and per
  plane ``p = 0..b-1``: look up, select negation, sum over the ``tile_k`` groups, shift left by
  ``p``, subtract the K-tile's rowsum in plane 0 (``b >= 2``), add into the accumulator. The
  accumulator is ``acc_bits + 1`` bits (``acc_bits`` for W1) and wraps in two's complement; it is
  carried across the K-tiles of one output tile and emitted (``acc >> 1``, or ``acc`` for W1) after
  the last one. So ``C = (A @ W) mod 2^acc_bits`` (two's complement), exact when it fits.

Users with unsigned codes ``w = scale * (q - z)`` get ``w = scale' * (q' - z')`` with
``scale' = scale / 2`` and ``z' = 2 z + 1 - 2^b`` (:func:`symmetric_scale_zero_point`).

Sections: parameters (:class:`LutCoreParams`, defined in :mod:`tpegen.hw.arrays.lut_params` and
re-exported here), numeric model (``encode_weights``, ``precompute_tables``, ``lut_accumulate``,
``lut_gemm``), timing model (``lut_*_cycles``, ``lut_macs_per_cycle*``) and the stream driver
(``lut_gemm_program``, ``lut_decode_results``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.arrays.lut_params import (  # noqa: F401 -- re-exported: the parameters live in hw/
    ACT_BITS_CHOICES,
    MAX_ACC_BITS,
    MAX_GROUP_SIZE,
    MAX_TABLE_BITS,
    LutCoreParams,
)
from tpegen.sim.cycle import TileSchedule, TileTiming, stream_tile_schedule
from tpegen.sim.intgemm import integer_array
from tpegen.sim.packing import pack_fields, unpack_result_tiles, wrap
from tpegen.sim.systolic_timing import Timeline

# ---------------------------------------------------------------------------------------------
# Numeric model
# ---------------------------------------------------------------------------------------------


def check_weights(W: np.ndarray, weight_bits: int, *, ternary: bool = False) -> np.ndarray:
    """Return ``W`` as int64 after checking every value is representable (raises ConfigError)."""
    if weight_bits == 1:
        w = integer_array("W", W, -1, 1, "-1 or +1 (binary W1)", ndim=None)
        if np.any(w == 0):
            raise ConfigError("W", "-1 or +1 (binary W1)", 0)
        return w
    if ternary:
        return integer_array("W", W, -1, 1, "-1, 0 or +1 (ternary)", ndim=None)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    return integer_array("W", W, lo, hi, f"integers in {lo}..{hi} (W{weight_bits})", ndim=None)


def check_acts(A: np.ndarray, act_bits: int) -> np.ndarray:
    """Return ``A`` as int64 after checking it holds signed ``act_bits``-bit integers."""
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return integer_array("A", A, lo, hi, f"integers in {lo}..{hi} (A{act_bits})", ndim=None)


def check_operands(params: LutCoreParams, A: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (M, K) activations and W (K, N) weights as int64 after range and shape checks."""
    a = check_acts(A, params.act_bits)
    w = check_weights(W, params.weight_bits, ternary=params.ternary)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ConfigError("shapes", "A (M, K) and W (K, N) with matching K", (a.shape, w.shape))
    return a, w


def weight_codes(W: np.ndarray, weight_bits: int, *, ternary: bool = False) -> np.ndarray:
    """Unsigned codes ``q`` whose bits are the +-1 planes: ``q = s + 2^(b-1)``; W1: ``q = (s+1)/2``."""
    w = check_weights(W, weight_bits, ternary=ternary)
    if weight_bits == 1:
        return (w + 1) >> 1
    return w + (1 << (weight_bits - 1))


def symmetric_value(q: np.ndarray, weight_bits: int) -> np.ndarray:
    """``q' = sum_i 2^i (2 w_i - 1) = 2 q - (2^b - 1)`` for codes ``q`` (odd, in ``[-(2^b-1), 2^b-1]``)."""
    return 2 * np.asarray(q, dtype=np.int64) - ((1 << weight_bits) - 1)


def bit_planes(q: np.ndarray, weight_bits: int) -> np.ndarray:
    """Bits of the codes: shape ``(b, *q.shape)``, plane ``i`` = bit ``i`` (0 -> -1, 1 -> +1)."""
    q = np.asarray(q, dtype=np.int64)
    return (q[None] >> np.arange(weight_bits).reshape((-1,) + (1,) * q.ndim)) & 1


def symmetric_scale_zero_point(
    scale: float | np.ndarray, zero_point: int | np.ndarray, weight_bits: int
) -> tuple[Any, Any]:
    """For unsigned codes with ``w = scale * (q - z)`` return ``(s', z')`` with ``w = s' * (q' - z')``.

    ``s' = scale / 2`` and ``z' = 2 z + 1 - 2^b`` (``q'`` as in :func:`symmetric_value`).
    """
    return np.divide(scale, 2), 2 * np.asarray(zero_point, dtype=np.int64) + 1 - (1 << weight_bits)


def complement_low(index: np.ndarray, group_size: int) -> np.ndarray:
    """Complement the low ``g-1`` bits of g-bit indices whose sign bit (bit ``g-1``) is 0.

    Its own inverse: the driver's offline complement and the core's in-core XOR are this map.
    """
    g = group_size
    idx = np.asarray(index, dtype=np.int64)
    sign = (idx >> (g - 1)) & 1
    mask = (1 << (g - 1)) - 1
    return (sign << (g - 1)) | np.where(sign == 1, idx & mask, ~idx & mask)


def encode_index(bits: np.ndarray, group_size: int, *, complement: bool = True) -> np.ndarray:
    """Group plane bits into hardware indices.

    ``bits`` has shape ``(..., groups * g, N)`` (K axis second to last). Returns ``(..., groups, N)``
    indices of ``g`` bits: the raw plane index ``u`` (bit ``j`` = bit of activation ``j``), with
    ``complement`` (offline complement, the default core) its low bits complemented when the sign
    bit ``u_{g-1}`` is 0, so that the hardware reads ``S[low]`` and only negates.
    """
    g = group_size
    b = np.asarray(bits, dtype=np.int64)
    shape = b.shape[:-2] + (b.shape[-2] // g, g, b.shape[-1])
    b = b.reshape(shape)
    u = (b << np.arange(g).reshape(g, 1)).sum(axis=-2)
    return complement_low(u, g) if complement else u


def encode_weights(
    W: np.ndarray, weight_bits: int, group_size: int, *, ternary: bool = False, complement: bool = True
) -> np.ndarray:
    """Encode a (K, N) integer weight matrix into ``(b, ceil(K/g), N)`` hardware indices.

    K is padded to a multiple of ``g`` with weight 0 (b >= 2) or +1 (W1); padded rows must meet
    zero activations (the driver pads A with zeros), so their value never matters. ``complement``
    as in :func:`encode_index` (``LutCoreParams.offline_complement`` for a core).
    """
    w = check_weights(W, weight_bits, ternary=ternary)
    K = w.shape[0]
    Kp = -(-K // group_size) * group_size
    pad_value = 1 if weight_bits == 1 else 0
    w = np.pad(w, ((0, Kp - K), (0, 0)), constant_values=pad_value)
    bits = bit_planes(weight_codes(w, weight_bits, ternary=ternary), weight_bits)
    return encode_index(bits, group_size, complement=complement)


def encode_core_weights(params: LutCoreParams, W: np.ndarray) -> np.ndarray:
    """:func:`encode_weights` as the core configured by ``params`` reads them (its complement)."""
    p = params
    return encode_weights(W, p.weight_bits, p.group_size, ternary=p.ternary, complement=p.offline_complement)


def decode_index(index: np.ndarray, group_size: int, *, complement: bool = True) -> np.ndarray:
    """Inverse of :func:`encode_index`: ``(..., groups, N)`` indices -> ``(..., groups * g, N)`` plane bits."""
    g = group_size
    idx = np.asarray(index, dtype=np.int64)
    u = complement_low(idx, g) if complement else idx
    bits = (u[..., None, :] >> np.arange(g).reshape(g, 1)) & 1  # (..., groups, g, N)
    return bits.reshape(idx.shape[:-2] + (idx.shape[-2] * g, idx.shape[-1]))


def decode_weights(
    index_planes: np.ndarray,
    weight_bits: int,
    group_size: int,
    *,
    ternary: bool = False,
    complement: bool = True,
) -> np.ndarray:
    """Inverse of :func:`encode_weights`: ``(b, G, N)`` indices -> ``(G * g, N)`` int64 weights.

    Codes map back as the hardware reads them: ``s = q - 2^(b-1)`` (b >= 2), ``s = 2q - 1`` (W1).
    With ``ternary`` a code of ``-2`` (not a ternary weight) raises ConfigError; the padding rows
    :func:`encode_weights` adds are returned too (0, or +1 for W1).
    """
    planes = np.asarray(index_planes, dtype=np.int64)
    if planes.ndim != 3 or planes.shape[0] != weight_bits:
        raise ConfigError("index_planes", f"an array of shape ({weight_bits}, groups, N)", planes.shape)
    bits = decode_index(planes, group_size, complement=complement)  # (b, K, N)
    q = (bits << np.arange(weight_bits).reshape(-1, 1, 1)).sum(axis=0)
    if weight_bits == 1:
        return 2 * q - 1
    w = q - (1 << (weight_bits - 1))
    if ternary and np.any(w < -1):
        raise ConfigError("index_planes", "codes of ternary weights (-1, 0 or +1)", -2)
    return w


def precompute_tables(
    A_groups: np.ndarray, table_bits: int | None = None, *, full: bool = False
) -> np.ndarray:
    """Tables of groups ``(..., g)``: half ``S[..., v] = a_{g-1} + sum_{j<g-1} (2 v_j - 1) a_j``, or
    with ``full`` all ``T[..., u] = sum_j (2 u_j - 1) a_j``.

    Built like the hardware adder network: start from ``[a_{g-1}]`` (half) or ``[-a_0, a_0]``
    (full) and, for each further activation ``a_j`` (``j = 0..g-2``, resp. ``1..g-1``), append
    ``x + a_j`` after ``x - a_j`` (so index bit ``j`` selects the sign of ``a_j``). Returns
    ``(..., 2^(g-1))`` (half) or ``(..., 2^g)`` (full) int64, wrapped to ``table_bits`` if given;
    the last entry is the group sum.
    """
    a = np.asarray(A_groups, dtype=np.int64)
    g = a.shape[-1]
    if full:
        t, steps = np.concatenate([-a[..., :1], a[..., :1]], axis=-1), range(1, g)
    else:
        t, steps = a[..., g - 1 : g], range(g - 1)
    for j in steps:
        aj = a[..., j : j + 1]
        t = np.concatenate([t - aj, t + aj], axis=-1)
    return wrap(t, table_bits) if table_bits is not None else t


def tile_rowsums(A: np.ndarray, k_tile: int) -> np.ndarray:
    """Activation sums of every row over every K-tile: (M, kt * k_tile) -> (M, kt) int64.

    What the driver sends with external tables (the in-core path sums the groups' last entries)."""
    a = np.asarray(A, dtype=np.int64)
    return a.reshape(a.shape[0], -1, k_tile).sum(axis=-1)


def lookup(
    tables: np.ndarray, index: np.ndarray, group_size: int, *, full: bool = False, complement: bool = False
) -> np.ndarray:
    """Hardware lookup, ``tables`` (M, G, E), ``index`` (G, N) -> (M, G, N).

    Half tables (default): ``S[low]`` negated when the sign bit (index bit g-1) is 0; with
    ``complement`` (in-core complement) ``low`` is first XORed with the inverted sign bit. ``full``:
    ``T[index]``, no negation.
    """
    groups = np.arange(tables.shape[1])[:, None]
    if full:
        return tables[:, groups, index]
    if complement:
        index = complement_low(index, group_size)
    low = index & ((1 << (group_size - 1)) - 1)
    sign = (index >> (group_size - 1)) & 1
    entries = tables[:, groups, low]
    return np.where(sign[None] == 1, entries, -entries)


def _pad_to(x: np.ndarray, rows: int, cols: int, value: int = 0) -> np.ndarray:
    return np.pad(x, ((0, rows - x.shape[0]), (0, cols - x.shape[1])), constant_values=value)


def core_tables(params: LutCoreParams, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tables and row sums the core's table registers receive, for A (M, kt * k_tile) padded
    to whole K-tiles: ``(M, G, E)`` tables (``E = params.entries``, wrapped to ``table_bits``) and
    ``(M, kt)`` K-tile row sums. In-core precompute: the precompute units' tables and the sum of
    their last entries; external: the driver's tables and plain activation sums."""
    p = params
    a = np.asarray(A, dtype=np.int64)
    tables = precompute_tables(a.reshape(a.shape[0], -1, p.group_size), p.table_bits, full=p.full_table)
    if p.external_tables:
        return tables, tile_rowsums(a, p.k_tile)
    return tables, tables[..., -1].reshape(a.shape[0], -1, p.tile_k).sum(axis=-1)


def lut_accumulate(
    params: LutCoreParams, tables: np.ndarray, rowsums: np.ndarray, index: np.ndarray
) -> np.ndarray:
    """The dot-product units of a core: ``(M, N)`` int64 results wrapped to ``acc_bits``.

    ``tables`` (M, G, E) and ``rowsums`` (M, kt) as the table registers hold them, ``index``
    (b, G, N) as the weight store holds it (G = kt * tile_k groups). Per K-tile and plane, as the
    RTL: lookup (the variant's, :func:`lookup`), sum over the tile's groups, shift by the plane
    index, rowsum subtraction in plane 0, wrapping accumulate; then the final halving.
    """
    p = params
    M, N = tables.shape[0], index.shape[-1]
    acc = np.zeros((M, N), dtype=np.int64)
    for kt in range(rowsums.shape[1]):
        groups = slice(kt * p.tile_k, (kt + 1) * p.tile_k)
        t = tables[:, groups]
        for plane in range(p.planes):
            looked_up = lookup(
                t,
                index[plane, groups],
                p.group_size,
                full=p.full_table,
                complement=p.index_complement == "in_core",
            )
            contrib = looked_up.sum(axis=1) << plane
            if plane == 0 and p.corrected:
                contrib = contrib - rowsums[:, kt, None]
            acc = wrap(acc + contrib, p.acc_width)
    if p.corrected:
        acc = acc >> 1  # exact: the accumulator holds 2 * C (mod 2^(acc_bits+1))
    return wrap(acc, p.acc_bits)


def lut_gemm(A: np.ndarray, W: np.ndarray, params: LutCoreParams) -> np.ndarray:
    """Bit-exact model of the core: ``C = A @ W`` (M, K) x (K, N) -> (M, N) int64, wrapped to ``acc_bits``.

    Mirrors the RTL of the configured variant: the weights encoded as the driver sends them
    (:func:`encode_core_weights`), the tables and row sums the core registers (:func:`core_tables`),
    then the dot-product units (:func:`lut_accumulate`); vectorized over all M and N tiles, which
    the hardware computes independently.
    """
    p = params
    a, w = check_operands(p, A, W)
    M, K = a.shape
    N = w.shape[1]
    Kp = max(1, -(-K // p.k_tile)) * p.k_tile
    a = _pad_to(a, M, Kp)
    w = _pad_to(w, Kp, N, value=1 if p.weight_bits == 1 else 0)
    tables, rowsums = core_tables(p, a)
    return lut_accumulate(p, tables, rowsums, encode_core_weights(p, w))


def reference_gemm(A: np.ndarray, W: np.ndarray, acc_bits: int = 64) -> np.ndarray:
    """Plain integer GEMM ``A @ W`` in int64, wrapped to ``acc_bits`` (two's complement)."""
    return wrap(np.asarray(A, dtype=np.int64) @ np.asarray(W, dtype=np.int64), acc_bits)


# ---------------------------------------------------------------------------------------------
# Timing model (cycle-exact for the RTL with an always-ready output and always-valid inputs)
# ---------------------------------------------------------------------------------------------


def lut_tile_counts(params: LutCoreParams, M: int, K: int, N: int) -> tuple[int, int, int]:
    """(M tiles, K tiles, N tiles) of an M x K x N GEMM; every dimension counts at least one tile."""
    return (max(1, -(-M // params.tile_m)), max(1, -(-K // params.k_tile)), max(1, -(-N // params.tile_n)))


def lut_act_beats(params: LutCoreParams, M: int, K: int, N: int) -> int:
    """Activation beats of an M x K x N GEMM (one per M-tile, N-tile and K-tile)."""
    mt, kt, nt = lut_tile_counts(params, M, K, N)
    return mt * nt * kt


def lut_weight_beats(params: LutCoreParams, M: int, K: int, N: int) -> int:
    """Weight beats the driver sends for an M x K x N GEMM: ``b`` per weight tile; a tile is reused
    across M-tiles iff K fits one tile."""
    mt, kt, nt = lut_tile_counts(params, M, K, N)
    tiles = nt if kt == 1 else mt * nt * kt
    return params.planes * tiles


def lut_tile_cycles(params: LutCoreParams) -> int:
    """Latency of a single-tile GEMM: ``2 b + 2`` cycles from the first weight beat to the result beat.

    b weight beats (cycles 0..b-1), activation beat at cycle b, tables registered, planes at cycles
    b+1..2b, result beat at 2b+1 (first and last cycle counted).
    """
    return 2 * params.planes + 2


def lut_gemm_cycles(params: LutCoreParams, M: int, K: int, N: int) -> int:
    """Cycles of an M x K x N GEMM driven by :func:`lut_gemm_program`: ``b * (J + 1) + 2``, J = activation beats.

    Counted from the first input handshake to the last output handshake inclusive, with inputs
    always valid and the output always ready. The initiation interval is ``b`` cycles per
    activation beat; the double-buffered weight store hides every weight load but the first.
    """
    return params.planes * (lut_act_beats(params, M, K, N) + 1) + 2


def lut_macs_per_cycle(params: LutCoreParams) -> float:
    """Steady-state b-bit-weight MACs per cycle: ``tile_m * tile_n * tile_k * g / b``."""
    return params.tile_m * params.tile_n * params.k_tile / params.planes


def lut_macs_per_cycle_per_weight_bit(params: LutCoreParams) -> int:
    """MACs per cycle per weight bit (one bit plane per cycle): ``tile_m * tile_n * tile_k * g``."""
    return params.tile_m * params.tile_n * params.k_tile


@dataclass(frozen=True)
class LutTiming(TileTiming):
    """Timing of the LUT core for the cycle-level simulator; a tile is one activation beat.

    Beat ``j`` is accepted ``b`` cycles after beat ``j - 1`` (``b`` cycles after the first weight
    beat for ``j = 0``), so tile ``j`` runs from ``b j`` to ``b (j + 2) + 1``, and the GEMM takes
    ``b (J + 1) + 2`` cycles (:func:`lut_gemm_cycles`). Per-tile start/end are the windows in which
    beat ``j``'s weights stream in and its planes are computed; the totals are RTL-exact. With
    operands arriving late (``ready``), beat ``j`` is accepted ``b`` cycles after ``ready_j`` at
    the earliest (its weight planes stream in first).
    """

    planes: int
    beats: int

    def timeline(self) -> Timeline:
        j = np.arange(self.beats, dtype=np.int64)
        return Timeline(start=self.planes * j, end=self.planes * (j + 2) + 1)

    def last_input(self, timeline: Timeline) -> np.ndarray:
        return timeline.start + self.planes

    def step(self, state, t, ready):
        b = self.planes
        accept = ready + b if state is None else max(state + b, ready + b)
        return accept, accept - b, accept, accept + b + 1


def lut_schedule(params: LutCoreParams, M: int, K: int, N: int) -> TileSchedule:
    """Tiles (activation beats) of an M x K x N GEMM in the driver's order with MACs and buffer traffic.

    Order as :func:`lut_gemm_plan`: N-tile outer, M-tile, K-tile inner. A reads its real
    ``m x k`` block per beat; W reads ``k x n`` weights whenever a weight tile is loaded (every
    beat, or once per N-tile when K fits one tile); C writes the ``m x n`` results after the last
    K-tile. Utilization is against the peak of :func:`lut_macs_per_cycle` MACs per cycle. With
    external precompute the A buffer holds ``tables`` beats instead, counted in bits
    (``bits["A"] = 1``): per beat, the tables of the real rows and groups plus their row sums.
    """
    p = params
    sched = stream_tile_schedule(
        LutTiming(planes=p.planes, beats=lut_act_beats(p, M, K, N)),
        (p.tile_m, p.k_tile, p.tile_n),
        M,
        K,
        N,
        bits={"A": p.act_bits, "W": p.weight_bits, "C": p.acc_bits},
        pes=lut_macs_per_cycle(p),
    )
    if not p.external_tables:
        return sched
    mt, kt, nt = lut_tile_counts(p, M, K, N)
    rows = np.minimum(p.tile_m, M - p.tile_m * np.arange(mt))
    groups = -(-np.minimum(p.k_tile, K - p.k_tile * np.arange(kt)) // p.group_size)
    row_bits = groups * p.entries * p.table_bits + (p.rowsum_bits if p.corrected else 0)  # (kt,)
    table_reads = np.tile((rows[:, None] * row_bits[None, :]).ravel(), nt)  # beats: N, M, K inner
    return dataclasses.replace(sched, reads={**sched.reads, "A": table_reads}, bits={**sched.bits, "A": 1})


# ---------------------------------------------------------------------------------------------
# Stream driver: (A, W) -> input beats, output beats -> C
# ---------------------------------------------------------------------------------------------


@dataclass
class LutGemmPlan:
    """Beats of one GEMM on the core plus what is needed to decode the results.

    ``acts`` holds the beats of the activation-side port ``act_port``: ``"acts"`` (activations),
    or ``"tables"`` (tables and row sums, external precompute)."""

    weights: np.ndarray  # (beats, nbytes) uint8
    acts: np.ndarray  # (beats, nbytes) uint8
    result_beats: int
    shape: tuple[int, int, int]  # (M, K, N) of the GEMM
    tiles: tuple[int, int, int] = field(default=(1, 1, 1))  # (M, K, N) tile counts; beats loop N, M, K
    act_port: str = "acts"

    def stream_program(self):
        """These beats as a :class:`~tpegen.sim.verilator.StreamProgram`."""
        from tpegen.sim.verilator import StreamProgram

        return StreamProgram(
            inputs={"weights": self.weights, self.act_port: self.acts}, outputs={"results": self.result_beats}
        )


def pack_act_beats(
    params: LutCoreParams, blocks: np.ndarray, last: np.ndarray, wlast: np.ndarray
) -> np.ndarray:
    """Payloads of the activation-side port for activation ``blocks`` (beats, tile_m * k_tile)
    (lane ``m * k_tile + k``) and the ``last``/``wlast`` flags: ``acts`` beats, or with external
    precompute the ``tables`` beats the driver computes from them (tables lane ``m * tile_k + k``,
    then the row sums when ``weight_bits >= 2``)."""
    p = params
    flags = [(last, 1), (wlast, 1)]
    if not p.external_tables:
        return pack_fields([(blocks, p.act_bits), *flags], p.act_payload_bits)
    rows = np.asarray(blocks, dtype=np.int64).reshape(-1, p.k_tile)  # (beats * tile_m, k_tile)
    tables, rowsums = core_tables(p, rows)  # (beats * tile_m, tile_k, E), (beats * tile_m, 1)
    fields = [(tables.reshape(len(blocks), -1), p.table_bits)]
    if p.corrected:
        fields.append((rowsums.reshape(len(blocks), p.tile_m), p.rowsum_bits))
    return pack_fields([*fields, *flags], p.tables_payload_bits)


def lut_gemm_plan(params: LutCoreParams, A: np.ndarray, W: np.ndarray) -> LutGemmPlan:
    """Tile an arbitrary (M, K) x (K, N) GEMM onto the core (zero-padding partial tiles).

    Loop order: N-tile outer, then M-tile, then K-tile. Each activation beat carries one M-tile x
    K-tile block (``last`` on the final K-tile: the core emits and clears its accumulators,
    so K-tiles accumulate in hardware with ``acc_bits`` wrap). Weight tiles (``b`` beats, plane 0
    first) are sent in the order they are used: when K fits one tile, one weight tile per N-tile is
    reused by all M-tiles (``wlast`` on the last M-tile); otherwise every activation beat gets its
    own weight tile (``wlast`` always 1). With external precompute each activation beat is sent as
    its tables (:func:`pack_act_beats`), in the same order.
    """
    p = params
    a, w = check_operands(p, A, W)
    M, K = a.shape
    N = w.shape[1]
    mt, kt, nt = lut_tile_counts(p, M, K, N)
    a = _pad_to(a, mt * p.tile_m, kt * p.k_tile)
    w = _pad_to(w, kt * p.k_tile, nt * p.tile_n, value=1 if p.weight_bits == 1 else 0)
    index = encode_core_weights(p, w)  # (b, kt*tile_k, nt*tile_n)
    # weight tile (k, n) as b beats of tile_n * tile_k lanes, lane = n_local * tile_k + group_local
    wt = index.reshape(p.planes, kt, p.tile_k, nt, p.tile_n).transpose(1, 3, 0, 4, 2)
    wt = wt.reshape(kt, nt, p.planes, p.tile_n * p.tile_k)
    # activation block (m, k): tile_m * k_tile lanes, lane = m_local * k_tile + k_local
    ab = a.reshape(mt, p.tile_m, kt, p.k_tile).transpose(0, 2, 1, 3).reshape(mt, kt, -1)
    n_idx, m_idx, k_idx = (
        x.ravel() for x in np.meshgrid(np.arange(nt), np.arange(mt), np.arange(kt), indexing="ij")
    )
    acts = ab[m_idx, k_idx]
    last = (k_idx == kt - 1).astype(np.int64)
    if kt == 1:
        wlast = (m_idx == mt - 1).astype(np.int64)
        weights = wt[0].reshape(nt * p.planes, -1)
    else:
        wlast = np.ones_like(last)
        weights = wt[k_idx, n_idx].reshape(-1, wt.shape[-1])
    return LutGemmPlan(
        weights=pack_fields([(weights, p.group_size)], p.weight_payload_bits),
        acts=pack_act_beats(p, acts, last, wlast),
        result_beats=mt * nt,
        shape=(M, K, N),
        tiles=(mt, kt, nt),
        act_port=p.input_port,
    )


def lut_gemm_program(params: LutCoreParams, A: np.ndarray, W: np.ndarray):
    """The :class:`~tpegen.sim.verilator.StreamProgram` of a GEMM (ports ``weights``, ``acts`` or
    ``tables``, ``results``)."""
    return lut_gemm_plan(params, A, W).stream_program()


def lut_decode_results(params: LutCoreParams, beats: np.ndarray, M: int, N: int) -> np.ndarray:
    """Assemble (M, N) int64 ``C`` from ``results`` beats in N-tile-outer, M-tile-inner order."""
    return unpack_result_tiles(beats, params.tile_m, params.tile_n, params.acc_bits, M, N)


def lut_pe_summary(params: LutCoreParams) -> dict[str, Any]:
    """Sizes of the datapath (for reports): tables, lookups per cycle, storage bits."""
    p = params
    per_unit = 0 if p.external_tables else 2 * p.entries - 2 - (2 if p.full_table else 0)
    return {
        "tables": p.tile_m * p.tile_k,
        "table_entries": p.tile_m * p.tile_k * p.entries,
        "precompute_adders": p.tile_m * p.tile_k * per_unit,
        "lookups_per_cycle": p.tile_m * p.tile_n * p.tile_k,
        "weight_store_bits": 2 * p.planes * p.weight_payload_bits,
        "accumulator_bits": p.tile_m * p.tile_n * p.acc_width,
    }
