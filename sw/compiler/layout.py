"""Host memory image: where operands, requantization parameters and results live, per family.

A GEMM is counted in *units* of the array: OS: M tiles of R rows, K beats, N tiles of C columns;
WS: M rows, K tiles of R, N tiles of C; LUT (and the dot tile, LUT kind): M tiles of ``tile_m``, K
tiles of ``k_tile``, N tiles of ``tile_n``. One A row holds one (m, k) unit, ``wr`` W rows one (n, k)
unit (OS 1, WS R -- bottom row first --, LUT ``b`` bit planes, dot tile 1: plain weights, see
:func:`tpegen.sim.system_rows.weight_code`) and ``cr`` accumulator rows one (m, n) unit (OS R, WS
and LUT 1), exactly the beats the bare-array drivers build (:mod:`tpegen.sw.systolic`,
:func:`tpegen.sim.lut.lut_gemm_plan`). Host layouts are blocked so that every LOAD and STORE is a
few long runs of rows: A m-major (OS, LUT: rows ``[m][k]``) or k-major (WS: ``[k][m]``), W
``[n][k][wr]``, outputs ``[n][m][cr]``; zero padding completes partial tiles. Rows are the codecs
of :mod:`tpegen.sim.system_rows` at the geometry's host pitch; every tensor starts on a page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim import system_rows
from tpegen.sw.compiler.program import HostTensor
from tpegen.sw.compiler.tiling import QTable, Src

HOST_ALIGN = 4096


class HostImage:
    """Host image under construction: page-aligned tensors, zero elsewhere."""

    def __init__(self) -> None:
        self.size = 0
        self.parts: list[tuple[int, np.ndarray]] = []

    def alloc(self, nbytes: int) -> int:
        addr = self.size
        self.size = addr + -(-max(nbytes, 1) // HOST_ALIGN) * HOST_ALIGN
        if self.size > 1 << 32:
            raise ConfigError("shapes", "operands and results within the 4 GiB host address space", self.size)
        return addr

    def put_rows(self, rows: np.ndarray, pitch: int) -> int:
        """Place ``(n, nbytes)`` row bytes at ``pitch``; returns the address."""
        addr = self.alloc(len(rows) * pitch)
        block = np.zeros((len(rows), pitch), dtype=np.uint8)
        block[:, : rows.shape[1]] = rows
        self.parts.append((addr, block.reshape(-1)))
        return addr

    def image(self) -> np.ndarray:
        host = np.zeros(self.size, dtype=np.uint8)
        for addr, data in self.parts:
            host[addr : addr + data.size] = data
        return host


def _pad(x: np.ndarray, rows: int, cols: int, value: int = 0) -> np.ndarray:
    return np.pad(x, ((0, rows - x.shape[0]), (0, cols - x.shape[1])), constant_values=value)


def units(g: SystemGeometry, m: int, k: int, n: int) -> tuple[int, int, int]:
    """(mu, ku, nu) of an M x K x N GEMM."""
    if g.kind == "os":
        return -(-m // g.rows), k, -(-n // g.cols)
    if g.kind == "ws":
        return m, -(-k // g.rows), -(-n // g.cols)
    return -(-m // g.rows), -(-k // g.k_tile), -(-n // g.cols)


def a_lanes(config: Any, g: SystemGeometry, a: np.ndarray) -> tuple[np.ndarray, int]:
    """Host rows (as lanes) of the A operand and the block stride in rows."""
    m, k = a.shape
    R = g.rows
    if g.kind == "os":  # [m-tile][k]: R lanes of column k of the tile
        mt = -(-m // R)
        return _pad(a, mt * R, k).reshape(mt, R, k).transpose(0, 2, 1).reshape(mt * k, R), k
    if g.kind == "ws":  # [k-tile][m]: R lanes of row m of the K tile
        kt = -(-k // R)
        return _pad(a, m, kt * R).reshape(m, kt, R).transpose(1, 0, 2).reshape(kt * m, R), m
    mt, kt = -(-m // R), -(-k // g.k_tile)  # LUT [m-tile][k-tile]: lane m_local * k_tile + k_local
    x = _pad(a, mt * R, kt * g.k_tile).reshape(mt, R, kt, g.k_tile).transpose(0, 2, 1, 3)
    return x.reshape(mt * kt, R * g.k_tile), kt


def w_lanes(config: Any, g: SystemGeometry, w: np.ndarray) -> tuple[np.ndarray, int]:
    """Host rows (as lanes) of the W operand ([n-unit][k-unit][wr]) and the block stride."""
    k, n = w.shape
    R, C = g.rows, g.cols
    nt = -(-n // C)
    if g.kind == "os":  # C lanes of row k of the N tile
        return _pad(w, k, nt * C).reshape(k, nt, C).transpose(1, 0, 2).reshape(nt * k, C), k
    if g.kind == "ws":  # weight tiles, bottom row first
        kt = -(-k // R)
        x = _pad(w, kt * R, nt * C).reshape(kt, R, nt, C)[:, ::-1].transpose(2, 0, 1, 3)
        return x.reshape(nt * kt * R, C), kt * R
    code = system_rows.weight_code(config)  # LUT bit planes or the dot tile's plain weights
    kt = -(-k // g.k_tile)
    wp = _pad(w, kt * g.k_tile, nt * C, value=code.pad)
    return code.weights_to_lanes(g, wp), kt * g.planes


def place(host: HostImage, config, g, kind: str, lanes: np.ndarray) -> int:
    rows = system_rows.lanes_to_rows(g, kind, lanes, group_size=system_rows.group_size_of(config))
    return host.put_rows(rows, g.load_pitch(kind))


def out_tensor(
    host: HostImage,
    g: SystemGeometry,
    name: str,
    mu: int,
    nu: int,
    m_rows: int,
    shape,
    fmt: str,
    *,
    transposed=False,
) -> tuple[Src, HostTensor]:
    """Zeroed output area ``[n-unit][m rows]`` (m_rows = mu * cr) and its decoder."""
    pitch = g.store_pitch(fmt)
    addr = host.alloc(nu * m_rows * pitch)
    tile = (g.rows, g.cols) if g.kind == "lut" else (1, g.cols)
    signed = not (g.fp or fmt == "bf16")
    tensor = HostTensor(
        name, addr, nu, m_rows, pitch, g.output_lane_bits(fmt), signed, tile, shape, transposed=transposed
    )
    return Src(name, addr, m_rows, pitch), tensor


def q_table(host: HostImage, g: SystemGeometry, entries: np.ndarray, per_row: bool) -> QTable:
    """Q rows: per_row 0 -> one row per n-unit (lane l = its channel, LUT lanes repeat per m);
    per_row 1 -> channels packed ``acc_lanes`` per row."""
    L = g.acc_lanes
    if per_row:
        rows = -(-len(entries) // L)
        q = np.zeros(rows * L, dtype=np.uint64)
        q[: len(entries)] = entries
        q = q.reshape(rows, L)
    else:
        nt = -(-len(entries) // g.cols)
        q = np.zeros(nt * g.cols, dtype=np.uint64)
        q[: len(entries)] = entries
        q = q.reshape(nt, 1, g.cols)
        q = np.broadcast_to(q, (nt, L // g.cols, g.cols)).reshape(nt, L)
    rows = system_rows.lanes_to_rows(g, "Q", q)
    return QTable(host.put_rows(rows, g.load_pitch("Q")), len(q), per_row)
