"""Codecs between on-chip memory rows, their lanes and the host-memory image of the accelerator.

A row of memory kind ``A``, ``W``, ``C`` or ``Q`` (see :class:`~tpegen.hw.system.params.SystemGeometry`)
is ``ceil(row_bits / 8)`` little-endian bytes; its lanes are packed from bit 0 (lane ``l`` at bits
``l*lane_bits .. (l+1)*lane_bits - 1``, two's complement for signed lanes), exactly as Amaranth lays
out a ``data.ArrayLayout`` and as :mod:`tpegen.sim.packing` packs stream payloads:

=====  ==============================================  ============================================
kind   OS / WS / FMA                                   LUT
=====  ==============================================  ============================================
A      R lanes of the PE's ``a_shape`` width           ``tile_m * k_tile`` activations of
                                                       ``act_bits`` (lane ``m * k_tile + k``)
W      C lanes of the PE's ``w_shape`` width           one bit plane of a weight tile:
                                                       ``tile_n * tile_k`` encoded indices of
                                                       ``group_size`` bits (lane ``n * tile_k + g``,
                                                       as :func:`tpegen.sim.lut.lut_gemm_plan`);
                                                       dot family: a whole weight tile of plain
                                                       weights (lane ``n * tile_k + k``)
C      C lanes of ``acc_lane_bits`` (integers: signed; ``tile_m * tile_n`` lanes (lane ``m * tile_n
       FMA: raw accumulator-format bit patterns)       + n``) of ``acc_bits``, signed
Q      ``acc_lanes`` entries of 64 bits (:mod:`tpegen.sim.requant` ``pack_qparams``)
=====  ==============================================  ============================================

"LUT" is every design the LUT EXEC sequencer drives (``geom.kind == "lut"``: the LUT core and the
dot-product tile). How its ``W`` rows hold weights depends on the family, and only
:func:`weight_code` says how (:class:`WeightCode`: bit planes of encoded indices or plain weights);
the geometry does not record it, so the ``W`` format needs ``group_size`` (:func:`group_size_of`;
:func:`row_format` raises without it). In host memory a row sits at the start of its pitch
(``geom.load_pitch`` / ``geom.store_pitch``); segment ``s`` row ``i`` of a LOAD or STORE is at
``addr + s * stride + i * pitch`` (:func:`row_addresses`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.system.params import QPARAM_ENTRY_BITS, SystemGeometry
from tpegen.sim.packing import pack_fields, unpack_lanes

KINDS = ("A", "W", "C", "Q")


@dataclass(frozen=True)
class RowFormat:
    """Lane layout of one memory row kind: ``lanes`` lanes of ``lane_bits`` bits, ``nbytes`` bytes."""

    kind: str
    lanes: int
    lane_bits: int

    @property
    def row_bits(self) -> int:
        return self.lanes * self.lane_bits

    @property
    def nbytes(self) -> int:
        return -(-self.row_bits // 8)


def row_format(geom: SystemGeometry, kind: str, *, group_size: int | None = None) -> RowFormat:
    """Lane layout of a ``kind`` row (``"A"``, ``"W"``, ``"C"`` or ``"Q"``) of ``geom``.

    ``group_size`` (:func:`group_size_of`) is required for ``W`` rows of a LUT-kind geometry: the
    K elements per lane (the LUT group size; 1 for plain weights), which sets the lane count."""
    if kind == "A":
        lanes = geom.rows * (geom.k_tile if geom.kind == "lut" else 1)
        fmt = RowFormat("A", lanes, geom.a_row_bits // lanes)
    elif kind == "W":
        if geom.kind == "lut":
            if group_size is None:
                raise ConfigError("group_size", "K elements per W lane (needed for LUT W rows)", None)
            if geom.k_tile % group_size:
                raise ConfigError("group_size", f"a divisor of k_tile {geom.k_tile}", group_size)
            lanes = geom.cols * (geom.k_tile // group_size)
            fmt = RowFormat("W", lanes, geom.w_row_bits // lanes)
        else:
            fmt = RowFormat("W", geom.cols, geom.w_row_bits // geom.cols)
    elif kind == "C":
        fmt = RowFormat("C", geom.acc_lanes, geom.acc_lane_bits)
    elif kind == "Q":
        fmt = RowFormat("Q", geom.acc_lanes, QPARAM_ENTRY_BITS)
    else:
        raise ConfigError("kind", "one of " + ", ".join(KINDS), kind)
    if fmt.row_bits != geom.row_bits(kind):  # the geometry and this table disagree: a bug, not input
        raise AssertionError(f"{kind} row: {fmt} does not match {geom.row_bits(kind)} bits")
    return fmt


def row_bytes(geom: SystemGeometry, kind: str) -> int:
    """Bytes of one ``kind`` row (``ceil(row_bits / 8)``)."""
    return -(-geom.row_bits(kind) // 8)


@dataclass(frozen=True)
class WeightCode:
    """How the ``W`` rows of a LUT-kind design (``geom.kind == "lut"``) hold its weights.

    A weight tile (``k_tile x tile_n`` weights) is ``geom.planes`` consecutive rows, plane 0 first;
    each row has ``tile_n * k_tile / group_size`` lanes, lane ``n * (k_tile / group_size) + j`` the
    code of column ``n``'s K elements ``j * group_size ..`` of the tile. ``encode`` maps ``(K, N)``
    integer weights to ``(planes, K / group_size, N)`` lane values and ``decode`` back (as the
    array reads them); ``pad`` is the weight that fills partial tiles (it meets zero activations)."""

    group_size: int
    pad: int
    encode: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]

    def weights_to_lanes(self, geom: SystemGeometry, w: np.ndarray) -> np.ndarray:
        """``(kt * k_tile, nt * tile_n)`` weights -> ``(nt * kt * planes, lanes)`` W rows as lanes,
        in the order ``[n-tile][k-tile][plane]`` (the LUT EXEC's weight tile of (j, kk) at row
        ``(j * kt + kk) * planes``)."""
        lk = geom.k_tile // self.group_size
        kt, nt = w.shape[0] // geom.k_tile, w.shape[1] // geom.cols
        idx = np.asarray(self.encode(w)).reshape(geom.planes, kt, lk, nt, geom.cols)
        return idx.transpose(3, 1, 0, 4, 2).reshape(nt * kt * geom.planes, geom.cols * lk)

    def lanes_to_weights(self, geom: SystemGeometry, lanes: np.ndarray, nt: int, kt: int) -> np.ndarray:
        """Inverse of :meth:`weights_to_lanes`: ``nt * kt`` tiles of W-row lanes -> ``(kt * k_tile,
        nt * tile_n)`` integer weights."""
        lk = geom.k_tile // self.group_size
        idx = np.asarray(lanes).reshape(nt, kt, geom.planes, geom.cols, lk)
        return self.decode(idx.transpose(2, 1, 4, 0, 3).reshape(geom.planes, kt * lk, nt * geom.cols))


def _lut_bit_planes(p: Any) -> WeightCode:
    """LUT core: ``weight_bits`` bit planes of ``group_size``-bit encoded indices (:mod:`tpegen.sim.lut`)."""
    from tpegen.sim.lut import decode_weights, encode_weights

    return WeightCode(
        group_size=p.group_size,
        pad=1 if p.weight_bits == 1 else 0,
        encode=lambda w: encode_weights(w, p.weight_bits, p.group_size, ternary=p.ternary),
        decode=lambda idx: decode_weights(idx, p.planes, p.group_size),  # any code, ternary or not
    )


def _plain(p: Any) -> WeightCode:
    """Dot-product tile: one row per tile, the weights themselves (``weight_bits`` lanes)."""
    return WeightCode(group_size=1, pad=0, encode=lambda w: np.asarray(w)[None], decode=lambda idx: idx[0])


WEIGHT_CODES: dict[str, Callable[[Any], WeightCode]] = {"lut": _lut_bit_planes, "dot": _plain}
"""W-row codes of the families on the LUT EXEC sequencer, by family (``pe.type``)."""


def weight_code(config: Any) -> WeightCode | None:
    """How ``config``'s W rows hold weights: a :class:`WeightCode` for a family on the LUT EXEC
    sequencer (its registry entry's ``system`` is ``"lut"``), None otherwise (W lanes are the PE's
    weight operands)."""
    from tpegen.registry import entry_for

    if entry_for(config).system != "lut":
        return None
    code = WEIGHT_CODES.get(config.family)
    if code is None:
        raise ConfigError(
            "pe.type", "a family with a W-row code (" + ", ".join(WEIGHT_CODES) + ")", config.family
        )
    return code(config.pe)


def group_size_of(config: Any) -> int | None:
    """K elements per W lane of a LUT-kind design (:func:`weight_code`; the LUT group size, 1 for
    the dot family's plain weights), None for the other families."""
    code = weight_code(config)
    return None if code is None else code.group_size


def lane_signed(config: Any, kind: str) -> bool:
    """Whether the lanes of ``kind`` rows of ``config`` are two's-complement integers.

    MAC and dot: A/W per ``pe.act_signed`` / ``pe.weight_signed``, C signed. LUT: A and C signed,
    W (encoded indices) unsigned. FMA: raw bit patterns, unsigned. Q: unsigned 64-bit entries."""
    if kind == "Q" or config.family == "fma":
        return False
    if config.family == "lut":
        return kind != "W"
    return {"A": config.pe.act_signed, "W": config.pe.weight_signed, "C": True}[kind]


_BYTE_DTYPES = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}


def rows_to_lanes(
    geom: SystemGeometry, kind: str, rows: np.ndarray, *, signed: bool = True, group_size: int | None = None
) -> np.ndarray:
    """``(n, nbytes)`` uint8 rows -> ``(n, lanes)`` lane values.

    int64 (sign-extended when ``signed``), except unsigned 64-bit lanes (always for ``Q``), which
    are returned as uint64. Bytes beyond ``nbytes`` (e.g. a host pitch) are ignored."""
    fmt = row_format(geom, kind, group_size=group_size)
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2 or rows.shape[1] < fmt.nbytes:
        raise ValueError(f"{kind} rows: expected (n, >= {fmt.nbytes}) bytes, got shape {rows.shape}")
    signed = signed and kind != "Q"
    w = fmt.lane_bits
    if w in _BYTE_DTYPES:
        u = np.ascontiguousarray(rows[:, : fmt.nbytes]).view(_BYTE_DTYPES[w]).reshape(len(rows), fmt.lanes)
        if w == 64:
            return u.view(np.int64) if signed else u.astype(np.uint64)
        if signed:
            return u.view(f"<i{w // 8}").astype(np.int64)
        return u.astype(np.int64)
    return unpack_lanes(rows[:, : fmt.nbytes], w, fmt.lanes, signed=signed)


def lanes_to_rows(
    geom: SystemGeometry, kind: str, lanes: np.ndarray, *, group_size: int | None = None
) -> np.ndarray:
    """``(n, lanes)`` integers (signed or unsigned) -> ``(n, nbytes)`` uint8 rows.

    Each value must fit ``lane_bits`` in either interpretation (``-2^(w-1) .. 2^w - 1``); it is
    stored modulo ``2^w``. Padding bits of the last byte are zero."""
    fmt = row_format(geom, kind, group_size=group_size)
    v = np.asarray(lanes)
    if v.ndim != 2 or v.shape[1] != fmt.lanes:
        raise ValueError(f"{kind} lanes: expected (n, {fmt.lanes}), got shape {v.shape}")
    if v.dtype.kind not in "iu":
        raise ValueError(f"{kind} lanes: expected integers, got dtype {v.dtype}")
    w = fmt.lane_bits
    if v.size and w < 64:
        lo, hi = int(v.min()), int(v.max())
        if lo < -(1 << (w - 1)) or hi >= 1 << w:
            raise ValueError(f"{kind} lanes: values {lo}..{hi} do not fit {w} bits")
    if w in _BYTE_DTYPES:
        u = v.astype(np.uint64) if v.dtype.kind == "u" else v.astype(np.int64).view(np.uint64)
        u = (u & np.uint64((1 << w) - 1)).astype(_BYTE_DTYPES[w])
        return np.ascontiguousarray(u).view(np.uint8).reshape(len(v), fmt.nbytes)
    return pack_fields([(v.astype(np.int64), w)], fmt.nbytes * 8)


# -- host memory --------------------------------------------------------------------------------


def row_addresses(
    addr: int, pitch: int, count: int, *, seg: int | None = None, stride: int = 0
) -> np.ndarray:
    """Host byte addresses of ``count`` rows: row ``r`` = segment ``r // seg``, row ``r % seg``
    at ``addr + (r // seg) * stride + (r % seg) * pitch`` (``seg`` None: one segment)."""
    r = np.arange(count, dtype=np.int64)
    if seg is None:
        return addr + r * pitch
    return addr + (r // seg) * stride + (r % seg) * pitch


def _check_span(host: np.ndarray, starts: np.ndarray, span: int) -> None:
    if len(starts) and (starts.min() < 0 or starts.max() + span > host.size):
        raise IndexError(
            f"host rows at 0x{int(starts.min()):x}..0x{int(starts.max()) + span:x} "
            f"exceed the host image of {host.size} bytes"
        )


def read_rows(
    host: np.ndarray,
    addr: int,
    pitch: int,
    count: int,
    nbytes: int,
    *,
    seg: int | None = None,
    stride: int = 0,
) -> np.ndarray:
    """``(count, nbytes)`` uint8 rows read from host memory (a 1-D uint8 array) at
    :func:`row_addresses`; the padding of each pitch is not read."""
    starts = row_addresses(addr, pitch, count, seg=seg, stride=stride)
    _check_span(host, starts, nbytes)
    return host[starts[:, None] + np.arange(nbytes)]


def write_rows(
    host: np.ndarray,
    addr: int,
    pitch: int,
    rows: np.ndarray,
    *,
    seg: int | None = None,
    stride: int = 0,
) -> None:
    """Write ``(n, nbytes)`` uint8 rows into ``host`` (in place) at :func:`row_addresses`, each
    followed by zero bytes up to the whole ``pitch`` (as the STORE unit writes them)."""
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2 or rows.shape[1] > pitch:
        raise ValueError(f"rows of shape {rows.shape} do not fit a pitch of {pitch} bytes")
    starts = row_addresses(addr, pitch, len(rows), seg=seg, stride=stride)
    _check_span(host, starts, pitch)
    padded = np.zeros((len(rows), pitch), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    host[starts[:, None] + np.arange(pitch)] = padded
