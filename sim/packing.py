"""Pack numpy lanes into stream payload bytes and back, vectorized.

Amaranth lays out ``data.ArrayLayout`` and ``data.StructLayout`` payloads LSB first: lane ``i`` of an
array of ``w``-bit elements occupies bits ``[i*w, (i+1)*w)``, and struct fields follow each other in
declaration order. A payload of ``n`` bits travels as ``ceil(n/8)`` little-endian bytes, so a whole
stream of beats is a ``uint8`` array of shape ``(beats, nbytes)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """(beats, lanes) integers -> (beats, lanes*width) bits, two's complement, LSB first."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim == 1:
        v = v[:, None]
    shifts = np.arange(width, dtype=np.uint64)
    bits = (v.astype(np.uint64)[..., None] >> shifts) & np.uint64(1)
    return bits.reshape(v.shape[0], -1).astype(np.uint8)


def pack_fields(fields: Sequence[tuple[np.ndarray, int]], nbits: int | None = None) -> np.ndarray:
    """Concatenate ``(values, width)`` fields, LSB first, into payload bytes of shape (beats, nbytes).

    ``values`` is (beats,) for a scalar field or (beats, lanes) for an array field; negative values
    are written in two's complement. ``nbits`` pads the payload to the port width.
    """
    bits = np.concatenate([_to_bits(v, w) for v, w in fields], axis=1)
    if nbits is not None:
        if bits.shape[1] > nbits:
            raise ValueError(f"payload needs {bits.shape[1]} bits, port has {nbits}")
        bits = np.pad(bits, ((0, 0), (0, nbits - bits.shape[1])))
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_lanes(payload: np.ndarray, width: int, lanes: int, *, signed: bool, offset: int = 0) -> np.ndarray:
    """Read ``lanes`` fields of ``width`` bits starting at bit ``offset``: (beats, nbytes) -> (beats, lanes)."""
    if width > 64:
        raise ValueError("lanes wider than 64 bits are not supported")
    bits = np.unpackbits(np.asarray(payload, dtype=np.uint8), axis=1, bitorder="little")
    bits = bits[:, offset : offset + width * lanes].reshape(-1, lanes, width).astype(np.uint64)
    values = (bits << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    if signed:
        sign = np.uint64(1) << np.uint64(width - 1)
        values = (
            (values ^ sign).astype(np.int64) - np.int64(1 << (width - 1))
            if width < 64
            else values.astype(np.int64)
        )
        return values
    return values.astype(np.int64)


def unpack_result_tiles(
    beats: np.ndarray, tile_m: int, tile_n: int, acc_bits: int, M: int, N: int
) -> np.ndarray:
    """(M, N) int64 ``C`` from a tile core's ``results`` beats: one ``tile_m x tile_n`` tile of signed
    ``acc_bits`` lanes (lane ``m * tile_n + n``) per beat, N-tile outer, M-tile inner (the LUT core's
    and the dot-product tile's order). Raises ValueError on a wrong beat count."""
    mt, nt = max(1, -(-M // tile_m)), max(1, -(-N // tile_n))
    lanes = unpack_lanes(beats, acc_bits, tile_m * tile_n, signed=True)
    if lanes.shape[0] != mt * nt:
        raise ValueError(f"expected {mt * nt} result beats, got {lanes.shape[0]}")
    c = lanes.reshape(nt, mt, tile_m, tile_n).transpose(1, 2, 0, 3).reshape(mt * tile_m, nt * tile_n)
    return c[:M, :N]


def wrap(values: np.ndarray, width: int, *, signed: bool = True) -> np.ndarray:
    """Reduce integers modulo 2**width (two's-complement wrap when ``signed``)."""
    v = np.asarray(values, dtype=np.int64)
    if width >= 64:
        return v
    mask = np.int64((1 << width) - 1)
    u = v & mask
    if signed:
        return np.where(u >= (1 << (width - 1)), u - np.int64(1 << width), u)
    return u
