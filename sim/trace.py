"""SCALE-Sim-format SRAM traces of output- and weight-stationary systolic arrays, from our timeline.

For one GEMM layer on a :class:`~tpegen.hw.arrays.systolic.SystolicArray` (MAC or FMA PEs),
:func:`write_layer_traces` writes SCALE-Sim's three SRAM trace files into a folder (SCALE-Sim
names them so and puts them in ``layer<i>/``):

* ``IFMAP_SRAM_TRACE.csv`` -- reads of the A (activation) buffer, one column per array row;
* ``FILTER_SRAM_TRACE.csv`` -- reads of the W (weight) buffer, one column per array column;
* ``OFMAP_SRAM_TRACE.csv`` -- writes of results (C) into the output buffer, one column per array
  column.

Every file has one row per cycle, ``0 .. cycles - 1`` with ``cycles`` the simulator's count for the
layer, so the last row is the layer's last cycle; a row is ``cycle,addr_0,addr_1,...`` (integers,
comma-separated, as SCALE-Sim's ``np.savetxt(fmt='%i', delimiter=',')``), ``-1`` where that port
moves nothing in that cycle. The cycles are ours, the RTL's (:mod:`tpegen.sim.systolic_timing`,
and with a finite ``bandwidth`` the stalled timeline of :mod:`tpegen.sim.cycle`): an access is
listed in the cycle of the stream handshake that carries it. The array skews its inputs and
de-skews its results itself, so all lanes of one beat appear in the same row:

* output-stationary, tile of rows ``i0 ..`` and columns ``j0 ..``: beat ``k`` reads ``A[i0 + r, k]``
  on row port ``r`` and ``W[k, j0 + c]`` on column port ``c``; it is accepted in cycle ``s + k``
  (``s`` = the tile's first handshake), except the ``last`` beat, which waits until the drain
  allows it; result row ``q`` writes ``C[i0 + q, j0 + c]`` ``rows + cols`` cycles after the last
  beat plus ``q`` (one cycle less with the two-register cell);
* weight-stationary, tile of K rows ``k0 ..`` and columns ``j0 ..``: the ``rows`` weight beats load
  ``W[k0 + rows - 1 - b, j0 + c]`` (bottom row first), activation beat ``m`` reads ``A[m, k0 + r]``,
  and partial-sum row ``m`` writes ``C[m, j0 + c]`` ``rows + cols - 1`` cycles after it.

Lanes of a partial tile (zero padding generated at the array edge) are ``-1``: the buffers hold no
such element. The OFMAP trace lists writes only, as SCALE-Sim's does: a weight-stationary layer
with several K blocks also reads each partial sum back before it is accumulated (counted in the
simulator's ``C`` reads), in the cycle it is written.

**Addresses** follow SCALE-Sim's operand matrices (its ``operand_matrix`` convention, default
offsets :data:`OFFSETS`): a GEMM is SCALE-Sim's convolution with an ``M x K`` IFMAP, one ``1 x K``
filter per output column, one channel and stride 1, so ``A[m, k]`` is at ``m * K + k``, ``W[k, n]``
at ``10,000,000 + n * K + k`` (filters are stored one after another) and ``C[m, n]`` at
``20,000,000 + m * N + n``. For a convolution layer A is its im2col matrix and its addresses are
those of the IFMAP pixels (height x width x channels, channel fastest): ``A[m, k]`` of output pixel
``m = (y, x)`` and window element ``k = (fy, fx, ch)`` is at ``((y * S + fy) * W + x * S + fx) * Ch +
ch`` (``S`` the stride), ``-1`` for a window element outside the IFMAP; filters and outputs as for a
GEMM with ``K = Fh * Fw * Ch``. A depth-wise channel's GEMM is its own one-channel convolution.

The traces are generated and formatted with numpy, :data:`WINDOW` cycles at a time, with no Python
code per row or number: each distinct beat's text is made once (:meth:`PortTrace.table`), and a row
is its cycle's text followed by its beat's. A layer's traces may hold at most
:data:`MAX_TRACE_ENTRIES` numbers (checked before anything is written).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.cycle import OSTiming, WSTiming
from tpegen.sim.systolic_timing import os_cell_timing
from tpegen.sim.topology import ConvShape, Layer

if TYPE_CHECKING:
    from tpegen.sim.cycle import SimResult
    from tpegen.sw.accelerator import Accelerator

TRACE_FILES = {"A": "IFMAP_SRAM_TRACE.csv", "W": "FILTER_SRAM_TRACE.csv", "C": "OFMAP_SRAM_TRACE.csv"}
OFFSETS = {"A": 0, "W": 10_000_000, "C": 20_000_000}  # SCALE-Sim's IfmapOffset, FilterOffset, OfmapOffset
WINDOW = 1 << 15  # cycles assembled at a time
CHUNK = 1 << 20  # addresses formatted at a time
MAX_TRACE_ENTRIES = 1 << 28  # cycles x (rows + 2 cols + 3) of one layer's three files (about 2.4 GB of text)


def check_traceable(acc: Accelerator) -> None:
    """Raise :class:`~tpegen.errors.ConfigError` unless ``acc`` is an output- or weight-stationary
    systolic array (the arrays whose accesses SCALE-Sim's traces describe)."""
    if not isinstance(acc.schedule(1, 1, 1).timing, (OSTiming, WSTiming)):
        raise ConfigError(
            "--trace",
            "used with an output- or weight-stationary systolic array (pe.type mac or fma; SCALE-Sim's "
            "traces have one port per array row and column)",
            f"pe.type {acc.family!r}",
        )


def check_trace_size(acc: Accelerator, layer: Layer, cycles: int) -> None:
    """Raise :class:`~tpegen.errors.TpegenError` if ``layer``'s traces (``cycles`` rows) would hold
    more than :data:`MAX_TRACE_ENTRIES` numbers."""
    p = acc.params
    entries = cycles * (p.rows + 2 * p.cols + 3)
    if entries > MAX_TRACE_ENTRIES:
        raise TpegenError(
            f"layer {layer.name[:60]!r}: its traces would hold {entries:,} numbers ({cycles:,} cycles); "
            f"--trace writes at most {MAX_TRACE_ENTRIES:,} (2^28, about 2.4 GB of text) per layer"
        )


@dataclass(frozen=True)
class PortTrace:
    """The accesses of one buffer's port group (one trace file): which beat happens in which cycle,
    and what each beat reads or writes.

    **When.** Segment ``s`` holds back-to-back beats of tile ``tile[s]`` in cycles ``first[s] ..
    last[s]``, beat numbers ``beat[s] ..``; segments are in cycle order and never overlap.

    **What.** Beat ``b`` of tile ``t`` touches, on port ``p``, matrix element ``(i0[t] + di * b + pi *
    p, j0[t] + dj * b + pj * p)`` -- or nothing (``-1``) if that lies outside the tile's real block
    (``i < i_end[t]`` and ``j < j_end[t]``) -- at address ``address(i, j)``. Tiles with the same
    ``pattern[t]`` touch the same elements (e.g. output-stationary tiles of one row block read the
    same A beats), so the addresses are formatted once per *table row* ``pattern * beats + b``;
    patterns are numbered ``0 ..`` and ``rep[q]`` is a tile of pattern ``q``.
    """

    ports: int
    first: np.ndarray
    last: np.ndarray
    tile: np.ndarray
    beat: np.ndarray
    pattern: np.ndarray
    rep: np.ndarray
    beats: int
    i0: np.ndarray
    j0: np.ndarray
    i_end: np.ndarray
    j_end: np.ndarray
    step: tuple[int, int, int, int]  # di, dj, pi, pj
    address: Callable[[np.ndarray, np.ndarray], np.ndarray]
    max_address: int  # a bound on every address (for the text width)

    @property
    def table_rows(self) -> int:
        return len(self.rep) * self.beats

    def table(self, u0: int, u1: int) -> np.ndarray:
        """``(u1 - u0, ports)`` addresses of table rows ``u0 .. u1 - 1`` (``-1``: nothing)."""
        q, b = np.divmod(np.arange(u0, u1), self.beats)
        t, b = self.rep[q], b[:, None]
        di, dj, pi, pj = self.step
        lane = np.arange(self.ports)
        i = self.i0[t, None] + di * b + pi * lane
        j = self.j0[t, None] + dj * b + pj * lane
        inside = (i < self.i_end[t, None]) & (j < self.j_end[t, None])
        return np.where(inside, self.address(np.where(inside, i, 0), np.where(inside, j, 0)), -1)

    def window(self, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """``(cycles, table rows)`` of the beats in cycles ``c0 .. c1 - 1``."""
        lo, hi = np.searchsorted(self.last, c0, "left"), np.searchsorted(self.first, c1, "left")
        a = np.maximum(self.first[lo:hi], c0)
        n = np.minimum(self.last[lo:hi] + 1, c1) - a
        seg = np.repeat(np.arange(lo, hi), n)
        cycles = np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n) + np.repeat(a, n)
        beat = self.beat[seg] + cycles - self.first[seg]
        return cycles, self.pattern[self.tile[seg]] * self.beats + beat


def _blocks(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.arange(0, n, size, dtype=np.int64)
    return start, np.minimum(start + size, n)


def _addresses(layer: Layer) -> dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]]:
    """SCALE-Sim's address of element ``(i, j)`` of A, W and C (see the module docstring), and a
    bound on each."""
    m, k, n = layer.m, layer.k, layer.n
    conv = layer.conv or ConvShape(m, k, 1, k, 1, n, 1)  # SCALE-Sim's GEMM as a convolution
    ow = conv.ofmap[1]
    s, ch, fw = conv.stride, conv.channels, conv.filter_w

    def ifmap(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        y, x = np.divmod(i, ow)
        fy, rest = np.divmod(j, fw * ch)
        fx, c = np.divmod(rest, ch)
        row, col = y * s + fy, x * s + fx
        inside = (row < conv.ifmap_h) & (col < conv.ifmap_w)
        return np.where(inside, (row * conv.ifmap_w + col) * ch + c + OFFSETS["A"], -1)

    return {
        "A": (ifmap, OFFSETS["A"] + conv.ifmap_h * conv.ifmap_w * ch),
        "W": (lambda i, j: OFFSETS["W"] + j * k + i, OFFSETS["W"] + k * n),
        "C": (lambda i, j: OFFSETS["C"] + i * n + j, OFFSETS["C"] + m * n),
    }


def port_traces(acc: Accelerator, layer: Layer, result: SimResult) -> dict[str, PortTrace]:
    """The A, W and C port traces of ``layer`` simulated as ``result`` on ``acc`` (tiles in the
    driver's order, :func:`tpegen.sim.cycle.systolic_schedule`; cycles from ``result.timeline``)."""
    p = acc.params
    R, C = p.rows, p.cols
    m, k, n = layer.m, layer.k, layer.n
    addr = _addresses(layer)
    start, end = result.timeline.start, result.timeline.end
    T = len(start)
    tiles = np.arange(T)
    zeros = np.zeros(T, dtype=np.int64)
    n_start, n_end = _blocks(n, C)

    def trace(op, ports, segments, pattern, beats, i0, j0, i_end, j_end, step) -> PortTrace:
        first, count, tile, beat = (np.concatenate(x) for x in segments)
        order = np.argsort(first, kind="stable")
        keep = order[count[order] > 0]
        return PortTrace(
            ports, first[keep], first[keep] + count[keep] - 1, tile[keep], beat[keep], pattern,
            np.unique(pattern, return_index=True)[1], beats,
            i0, j0, i_end, j_end, step, *addr[op],
        )  # fmt: skip

    def full(value: int) -> np.ndarray:
        return np.full(T, value, dtype=np.int64)

    if p.dataflow == "os":
        m_start, m_end = _blocks(m, R)
        mb, nb = np.divmod(tiles, len(n_start))  # row blocks outer, column blocks inner
        latency = os_cell_timing(R, C, p.os_cell, p.pe_latency)[1]
        last = end - (latency + R - 1)  # cycle of each tile's `last` beat
        # Beats 0 .. K-2 back to back from the first handshake, the `last` beat (K-1) when accepted.
        inputs = ((start, last), (full(k - 1), full(1)), (tiles, tiles), (zeros, full(k - 1)))
        results = ((last + latency,), (full(R),), (tiles,), (zeros,))
        i0, i1, j0, j1 = m_start[mb], m_end[mb], n_start[nb], n_end[nb]
        return {
            "A": trace("A", R, inputs, mb, k, i0, zeros, i1, full(k), (0, 1, 1, 0)),
            "W": trace("W", C, inputs, nb, k, zeros, j0, full(k), j1, (1, 0, 0, 1)),
            "C": trace("C", C, results, tiles, R, i0, j0, i1, j1, (1, 0, 0, 1)),
        }
    k_start, k_end = _blocks(k, R)
    nb, kb = np.divmod(tiles, len(k_start))  # N blocks outer, K blocks inner
    first_act = end - (m + R + C - 2)
    k0, k1, j0, j1 = k_start[kb], k_end[kb], n_start[nb], n_end[nb]
    acts = ((first_act,), (full(m),), (tiles,), (zeros,))
    weights = ((start,), (full(R),), (tiles,), (zeros,))
    psums = ((first_act + R + C - 1,), (full(m),), (tiles,), (zeros,))
    return {
        "A": trace("A", R, acts, kb, m, zeros, k0, full(m), k1, (1, 0, 0, 1)),
        "W": trace("W", C, weights, tiles, R, k0 + R - 1, j0, k1, j1, (-1, 0, 0, 1)),
        "C": trace("C", C, psums, nb, m, zeros, j0, full(m), j1, (1, 0, 0, 1)),
    }


# -- formatting --------------------------------------------------------------------------------
# Text is built in fixed-width slots padded with NUL bytes, which are deleted at the end (one C-level
# bytes.translate), so no Python code runs per row or per number.
_FULL = np.frombuffer("".join(f"{x:04d}" for x in range(10_000)).encode(), dtype="<u4")
_TOP = np.frombuffer("".join(f"{x:>4}" for x in range(10_000)).replace(" ", "\0").encode(), dtype="<u4")
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def _digits(value: int) -> int:
    return len(str(abs(value)))


def _slots(values: np.ndarray, chars: int, sep: str) -> np.ndarray:
    """``(n, chars)`` bytes: per value, ``sep`` (NUL if empty), NUL padding, then its ``%i`` text,
    right-aligned (byte 0 is ``sep``, so ``chars`` must exceed every value's sign and digits).
    Digits come four at a time from a table, the leading group without leading zeros."""
    v = np.asarray(values, dtype=np.int64).ravel()
    mag = np.abs(v)
    groups = -(-chars // 4)
    slots = np.zeros((len(v), groups + 1), dtype="<u4")
    rest = mag.astype(np.uint32) if len(v) and mag.max() < 2**32 else mag  # 32-bit division is faster
    for g in range(groups):
        rest, low = np.divmod(rest, 10_000)
        leading = _TOP[low] if g == 0 else np.where(low > 0, _TOP[low], 0)
        slots[:, -1 - g] = np.where(rest > 0, _FULL[low], leading)
    out = slots.view(np.uint8).reshape(len(v), 4 * (groups + 1))[:, -chars:]
    neg = np.flatnonzero(v < 0)
    out[neg, chars - 1 - (1 + np.searchsorted(_POWERS, mag[neg], "right"))] = ord("-")
    out[:, 0] = ord(sep) if sep else 0
    return out


def _table(trace: PortTrace) -> np.ndarray:
    """Row ``1 + u`` holds ``,addr_0,...,addr_{ports-1}\\n`` of table row ``u`` in NUL-padded slots,
    row 0 the idle row (every port ``-1``)."""
    chars = 1 + max(_digits(trace.max_address), 2)  # separator, then an address or -1
    width = trace.ports * chars
    table = np.empty((1 + trace.table_rows, width + 1), dtype=np.uint8)
    table[:, -1] = ord("\n")
    table[0, :-1] = _slots(np.full(trace.ports, -1), chars, ",").ravel()
    per_chunk = max(1, CHUNK // trace.ports)
    for u0 in range(0, trace.table_rows, per_chunk):
        u1 = min(u0 + per_chunk, trace.table_rows)
        fields = table[1 + u0 : 1 + u1, :-1].reshape(u1 - u0, trace.ports, chars)  # a view
        fields[...] = _slots(trace.table(u0, u1), chars, ",").reshape(u1 - u0, trace.ports, chars)
    return table


def _write_trace(fh, trace: PortTrace, cycles: int) -> None:
    """One trace file: rows for cycles ``0 .. cycles - 1`` (module docstring), :data:`WINDOW` at a time:
    the cycle's text, then the row of the table its beat selects, then the padding NULs deleted."""
    table = _table(trace)
    chars = 1 + _digits(cycles - 1)  # a NUL, then the cycle
    text = np.empty((min(WINDOW, cycles), chars + table.shape[1]), dtype=np.uint8)
    for c0 in range(0, cycles, WINDOW):
        c1 = min(c0 + WINDOW, cycles)
        row = np.zeros(c1 - c0, dtype=np.int64)
        at, u = trace.window(c0, c1)
        row[at - c0] = 1 + u
        text[: c1 - c0, :chars] = _slots(np.arange(c0, c1), chars, "")
        text[: c1 - c0, chars:] = table[row]
        fh.write(text[: c1 - c0].tobytes().translate(None, b"\0"))


def write_layer_traces(folder: Path, acc: Accelerator, layer: Layer, result: SimResult) -> None:
    """Write the three SCALE-Sim SRAM trace files of ``layer`` (simulated as ``result``) into the new
    folder ``folder`` (see the module docstring; the caller checks :func:`check_trace_size`)."""
    folder.mkdir()
    for op, trace in port_traces(acc, layer, result).items():
        with open(folder / TRACE_FILES[op], "wb") as fh:
            _write_trace(fh, trace, result.cycles)


def check_trace_folder(folder: str | Path, layers: int, *, force: bool = False) -> None:
    """Check, before any work, that ``folder`` can take the traces of ``layers`` layers: an output
    folder as :func:`tpegen._io.check_output_dir` wants it (option ``--trace``), holding no
    ``layer<i>`` entry yet (tpegen never replaces a folder)."""
    from tpegen._io import check_output_dir

    target = check_output_dir(folder, option="--trace", force=force)
    if target.is_dir():
        for i in range(layers):
            if (target / f"layer{i}").exists() or (target / f"layer{i}").is_symlink():
                raise TpegenError(
                    f"{target / f'layer{i}'}: exists; tpegen does not replace trace folders "
                    "(choose a new or empty folder for --trace)"
                )


def write_traces(
    folder: str | Path,
    acc: Accelerator,
    layers: list[Layer],
    results: list[SimResult],
    *,
    where: str,
    force: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> None:
    """The traces of every layer into ``folder/layer<i>/`` (:func:`write_layer_traces`), written
    atomically (:func:`tpegen._io.atomic_dir`: all of them or, on any error, none); ``progress(done,
    total, name)`` after each layer. Every layer's size is checked before anything is written."""
    from tpegen._io import atomic_dir

    for layer, result in zip(layers, results, strict=True):
        try:
            check_trace_size(acc, layer, result.cycles)
        except TpegenError as exc:
            raise TpegenError(f"{where}: {exc}") from None
    with atomic_dir(folder, option="--trace", force=force) as scratch:
        for i, (layer, result) in enumerate(zip(layers, results, strict=True)):
            write_layer_traces(scratch / f"layer{i}", acc, layer, result)
            if progress:
                progress(i + 1, len(layers), layer.name)
