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
                                                       as :func:`tpegen.sim.lut.lut_gemm_plan`)
C      C lanes of ``acc_lane_bits`` (integers: signed; ``tile_m * tile_n`` lanes (lane ``m * tile_n
       FMA: raw accumulator-format bit patterns)       + n``) of ``acc_bits``, signed
Q      ``acc_lanes`` entries of 64 bits (:mod:`tpegen.sim.requant` ``pack_qparams``)
=====  ==============================================  ============================================

The geometry does not record the LUT group size, so the LUT ``W`` format needs ``group_size``
(:func:`row_format` raises without it). In host memory a row sits at the start of its pitch
(``geom.load_pitch`` / ``geom.store_pitch``); segment ``s`` row ``i`` of a LOAD or STORE is at
``addr + s * stride + i * pitch`` (:func:`row_addresses`).
"""

from __future__ import annotations

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

    ``group_size`` is required for LUT ``W`` rows (the width of one encoded weight index)."""
    if kind == "A":
        lanes = geom.rows * (geom.k_tile if geom.kind == "lut" else 1)
        fmt = RowFormat("A", lanes, geom.a_row_bits // lanes)
    elif kind == "W":
        if geom.kind == "lut":
            if group_size is None:
                raise ConfigError("group_size", "the LUT group size (needed for LUT W rows)", None)
            if geom.k_tile % group_size:
                raise ConfigError("group_size", f"a divisor of k_tile {geom.k_tile}", group_size)
            fmt = RowFormat("W", geom.cols * (geom.k_tile // group_size), group_size)
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


def group_size_of(config: Any) -> int | None:
    """The LUT group size of a design config (None for the other families)."""
    return config.pe.group_size if config.family == "lut" else None


def lane_signed(config: Any, kind: str) -> bool:
    """Whether the lanes of ``kind`` rows of ``config`` are two's-complement integers.

    MAC: A/W per ``pe.act_signed`` / ``pe.weight_signed``, C signed. LUT: A and C signed, W
    (encoded indices) unsigned. FMA: raw bit patterns, unsigned. Q: unsigned 64-bit entries."""
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
