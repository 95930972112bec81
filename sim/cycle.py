"""Cycle-level simulator of the generated arrays: exact outputs, cycles, per-tile timeline, traffic.

:func:`simulate` runs one GEMM ``C = A @ W`` on an :class:`~tpegen.sw.accelerator.Accelerator`
without the RTL. It composes two independent pieces:

* a **timing model per array type** -- a :class:`TileSchedule` built by the accelerator's
  :meth:`~tpegen.sw.accelerator.Accelerator.schedule` (the systolic drivers return
  :func:`systolic_schedule`, defined here). It lists the tiles exactly as the driver streams them, with
  useful MACs and operand-buffer traffic per tile, and a :class:`TileTiming` that turns them into
  a timeline. With unlimited memory bandwidth the timeline is the RTL's, cycle for cycle
  (:mod:`tpegen.sim.systolic_timing`, checked against Verilator in ``tests/test_cycle_sim.py``).
* a **numeric model per PE type** -- the accelerator's ``golden`` (for the integer MAC PEs the
  BLAS-backed :func:`tpegen.sim.intgemm.int_gemm`), the same model the RTL is checked against.
  The simulator's outputs are therefore the golden model's by construction; only its cycles and
  timeline are a second model (tests check outputs against the RTL and ``wrap(A @ W)``).

``Accelerator.schedule`` is the only timing lookup: every driver named in
:mod:`tpegen.registry` implements it and returns a :class:`TileSchedule` with its own
:class:`TileTiming` (drivers of :class:`~tpegen.hw.arrays.systolic.SystolicArray`, any PE, inherit
:class:`~tpegen.sw.systolic.SystolicAccelerator`'s).

Cycle accounting (as the RTL testbench counts): with unlimited bandwidth, cycle 0 is the first
accepted input beat and ``cycles`` runs to the last result beat inclusive. That path is
vectorized numpy (closed forms of the per-tile recurrences, no Python loop per cycle or tile).
With a finite bandwidth the fetch queue and the array recurrence are coupled through ``max``,
so :func:`_stalled_timeline` takes one integer step per tile in Python (a few microseconds per
tile); the write-back queue is again a vectorized prefix maximum.

**Memory-bandwidth model** (``bandwidth`` in bytes per cycle, for each operand buffer ``A``,
``W`` and ``C``; a number applies to all three, a mapping sets them one by one, missing or
``None`` means unlimited; a given bandwidth must be finite and at least :data:`MIN_BANDWIDTH`,
see :func:`check_bandwidth`). Cycle 0 is when the first fetch starts.

A transfer of ``x`` bytes over a port of ``bw`` bytes per cycle occupies the port for
``ceil(x / bw)`` consecutive cycles; its data is usable in the last of them (the buffer fill
writes through to the array edge), so a transfer of at most ``bw`` bytes costs no extra cycle.

1. Inputs are double buffered: two tile slots per input buffer. Tile ``t``'s A and W blocks are
   fetched over separate ports in parallel, occupying them ``f_t = max_op ceil(bytes_op,t / bw_op)``
   cycles. Fetches are serial (one tile at a time) and the fetch of tile ``t`` may only start once
   its slot is free, i.e. the cycle after tile ``t - 2`` accepted its last input beat::

       fetch_start_t = max(fetch_start_{t-1} + f_{t-1}, last_input_{t-2} + 1)
       ready_t       = fetch_start_t + max(f_t - 1, 0)

2. Tile ``t`` cannot accept its first input beat before ``ready_t``; otherwise the array runs
   exactly as the RTL does with its inputs withheld (the array-specific recurrences of
   :class:`OSTiming` and :class:`WSTiming`), so later tiles shift accordingly.
3. Results (C traffic of the tile: outputs written, plus partial sums read back for
   weight-stationary accumulation) are written back in tile order over the C port, without
   backpressure on the array, starting at the earliest in the cycle the tile's last result
   leaves: ``wb_start_t = max(wb_start_{t-1} + g_{t-1}, end_t)`` with ``g_t = ceil(bytes_C,t /
   bw_C)``. The GEMM ends at ``max(end_{T-1}, wb_start_{T-1} + g_{T-1} - 1)``.

With bandwidth large enough that every ``ceil`` is 0 or hides under compute, the result equals
the unlimited-bandwidth (RTL-exact) timeline; stalls only ever add cycles.

**Traffic** counts real matrix elements moved between each operand buffer and the array (the
zero lanes of partial tiles are generated at the array edge, not read): output-stationary tile
``(i, j)`` reads its ``m_i x K`` A block and ``K x n_j`` W block and writes ``m_i x n_j`` results;
weight-stationary tile ``(k, j)`` reads its ``k_k x n_j`` W block and ``M x k_k`` A block, writes
``M x n_j`` partial sums and (for all but the first K block) reads the previous ones back. Bytes
are ``elements x bits / 8`` with the operand widths (C at the result-lane width).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.systolic_timing import Timeline, os_cell_timing, os_timeline, ws_timeline

if TYPE_CHECKING:
    from tpegen.sw.accelerator import Accelerator

OPERANDS = ("A", "W", "C")
INPUTS = ("A", "W")

Bandwidth = float | Mapping[str, float | None] | None


# -- timing models ------------------------------------------------------------------------------
class TileTiming(abc.ABC):
    """Timing model of one array type for a stream of tiles (see the module docstring).

    ``timeline()`` is the RTL-exact schedule with operands always available. ``stalled(ready)``
    is the schedule when tile ``t`` may not accept its first input before ``ready[t]``; it must
    equal ``timeline()`` whenever ``ready`` never binds. ``last_input(timeline)`` is the cycle of
    each tile's last input handshake (its input slot is free the cycle after).
    """

    @abc.abstractmethod
    def timeline(self) -> Timeline:
        """RTL-exact per-tile start/end cycles with operands always available."""

    @abc.abstractmethod
    def last_input(self, timeline: Timeline) -> np.ndarray:
        """Cycle of each tile's last accepted input beat."""

    @abc.abstractmethod
    def step(self, state: Any, t: int, ready: int) -> tuple[Any, int, int, int]:
        """One tile of the stalled recurrence: ``(state, start, last_input, end)``; ``state`` is
        ``None`` before tile 0."""


@dataclass(frozen=True)
class OSTiming(TileTiming):
    """Output-stationary systolic array: tile ``t`` streams ``k[t]`` operand beats.

    Stalled recurrence (``L`` = cycle of the tile's ``last`` beat; ``G``, ``D`` of ``os_cell`` from
    :func:`~tpegen.sim.systolic_timing.os_cell_timing`, ``G = rows``, ``D = rows + cols`` by default,
    plus ``pe_latency`` for a pipelined PE):
    ``s_t = max(L_{t-1} + 1, ready_t)``, ``L_t = max(s_t + k_t - 1, L_{t-1} + G)``, ``end_t = L_t + D
    + rows - 1``. The tile's first handshake is ``s_t``, except for ``k_t = 1``: its only beat is
    the ``last`` beat, which the array refuses until ``G`` cycles after the previous one, so it
    starts at ``L_t``.
    """

    rows: int
    cols: int
    k: np.ndarray
    os_cell: str = "three_register"
    pe_latency: int = 0  # cycles the cells' accumulation trails their operands (pe.pipeline_stages - 1)

    def _cell_timing(self) -> tuple[int, int]:
        return os_cell_timing(self.rows, self.cols, self.os_cell, self.pe_latency)

    def timeline(self) -> Timeline:
        return os_timeline(self.rows, self.cols, self.k, self.os_cell, self.pe_latency)

    def _tail(self) -> int:
        return self._cell_timing()[1] + self.rows - 1

    def last_input(self, timeline: Timeline) -> np.ndarray:
        return timeline.end - self._tail()

    def step(self, state, t, ready):
        k = int(self.k[t])
        if state is None:
            start, last = ready, ready + k - 1
        else:
            start = max(state + 1, ready)
            last = max(start + k - 1, state + self._cell_timing()[0])
        return last, (last if k == 1 else start), last, last + self._tail()


@dataclass(frozen=True)
class WSTiming(TileTiming):
    """Weight-stationary systolic array: tile ``t`` loads ``rows`` weight beats, then ``m[t]`` rows.

    Stalled recurrence (``F`` = cycle of the tile's first activation, ``start`` its first weight
    beat): ``start_t = max(F_{t-1} + rows + cols - 1, ready_t)``, ``F_t = max(start_t + rows,
    F_{t-1} + m_{t-1})``, ``end_t = F_t + m_t + rows + cols - 2``.
    """

    rows: int
    cols: int
    m: np.ndarray

    def timeline(self) -> Timeline:
        return ws_timeline(self.rows, self.cols, self.m)

    def last_input(self, timeline: Timeline) -> np.ndarray:
        return timeline.end - (self.rows + self.cols - 1)

    def step(self, state, t, ready):
        R, C, m = self.rows, self.cols, int(self.m[t])
        if state is None:
            start = ready
            first = start + R
        else:
            first_prev, m_prev = state
            start = max(first_prev + R + C - 1, ready)
            first = max(start + R, first_prev + m_prev)
        return (first, m), start, first + m - 1, first + m + R + C - 2


# -- schedules and results ----------------------------------------------------------------------
@dataclass(frozen=True)
class TileSchedule:
    """How an accelerator runs one M x K x N GEMM, tile by tile, in the driver's order.

    ``macs[t]`` useful multiply-accumulates of tile ``t``; ``reads[op][t]``/``writes[op][t]``
    elements it moves from/to operand buffer ``op`` (``A``, ``W``, ``C``); ``bits[op]`` the element
    width in that buffer; ``pes`` the number of PEs (utilization denominator).
    """

    timing: TileTiming
    macs: np.ndarray
    reads: dict[str, np.ndarray]
    writes: dict[str, np.ndarray]
    bits: dict[str, int]
    pes: int

    @property
    def tiles(self) -> int:
        return len(self.macs)


@dataclass(frozen=True)
class BufferTraffic:
    """Reads and writes of one operand buffer, in elements and in bytes (``elements x bits / 8``)."""

    operand: str
    bits: int
    reads: int
    writes: int

    @property
    def read_bytes(self) -> float:
        return self.reads * self.bits / 8

    @property
    def write_bytes(self) -> float:
        return self.writes * self.bits / 8

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "reads": self.reads,
            "writes": self.writes,
            "read_bytes": self.read_bytes,
            "write_bytes": self.write_bytes,
        }


@dataclass
class SimResult:
    """Outcome of one simulated GEMM (``output`` is None for a timing-only run)."""

    shape: tuple[int, int, int]
    output: np.ndarray | None
    cycles: int
    ideal_cycles: int
    timeline: Timeline
    macs: int
    pes: int
    traffic: dict[str, BufferTraffic]
    ready: np.ndarray | None = field(default=None, repr=False)

    @property
    def stall_cycles(self) -> int:
        """Cycles added by limited memory bandwidth (0 when unlimited)."""
        return self.cycles - self.ideal_cycles

    @property
    def utilization(self) -> float:
        """Useful MACs / (cycles x PEs)."""
        return self.macs / (self.cycles * self.pes) if self.cycles else 0.0

    @property
    def tiles(self) -> int:
        return len(self.timeline.start)

    def summary(self) -> dict[str, Any]:
        """JSON-able summary (no output matrix, no per-tile arrays)."""
        m, k, n = self.shape
        return {
            "M": m,
            "K": k,
            "N": n,
            "macs": self.macs,
            "tiles": self.tiles,
            "cycles": self.cycles,
            "ideal_cycles": self.ideal_cycles,
            "stall_cycles": self.stall_cycles,
            "utilization": self.utilization,
            "traffic": {op: t.to_dict() for op, t in self.traffic.items()},
        }


# -- the systolic timing model ------------------------------------------------------------------
# Tiles of one simulated GEMM: a schedule holds about a dozen int64 arrays of one entry per tile
# (~100 MiB at the limit), and a finite bandwidth steps through the tiles in Python.
MAX_TILES = 1 << 20


def check_tiles(tiles: int, m: int, k: int, n: int) -> None:
    """Raise :class:`~tpegen.errors.TpegenError` if an M x K x N GEMM needs more than
    :data:`MAX_TILES` tiles; schedule builders call it before allocating per-tile arrays."""
    if tiles > MAX_TILES:
        raise TpegenError(
            f"a {m}x{k}x{n} GEMM needs {tiles} tiles on this array; the cycle-level simulator takes "
            f"at most {MAX_TILES} (2^20) tiles per GEMM (use a larger array or split the layer)"
        )


def stream_tile_schedule(
    timing: TileTiming, tile: tuple[int, int, int], M: int, K: int, N: int, bits: dict[str, int], pes: int
) -> TileSchedule:
    """Tiles of an M x K x N GEMM on a stream tile core (LUT core, dot-product tile): one tile per
    activation beat of a ``tile = (tile_m, tile_k, tile_n)`` block, N-tile outer, M-tile, K-tile inner
    (the drivers' order), every dimension at least one tile.

    A reads the real ``m x k`` block of each beat; W the real ``k x n`` weights whenever a weight
    tile is sent (every beat, or once per N-tile when K fits one tile); C is written with the
    ``m x n`` results after each output tile's last K-tile. ``timing``, ``bits`` and ``pes`` pass
    through to the :class:`TileSchedule`.
    """
    (tm, tk, tn) = tile
    mt, kt, nt = (max(1, -(-d // t)) for d, t in ((M, tm), (K, tk), (N, tn)))
    check_tiles(mt * nt * kt, M, K, N)
    n_idx, m_idx, k_idx = (
        x.ravel() for x in np.meshgrid(np.arange(nt), np.arange(mt), np.arange(kt), indexing="ij")
    )

    def extents(n: int, size: int, count: int) -> np.ndarray:  # real (unpadded) size of each block
        return np.minimum(size, np.maximum(n - size * np.arange(count), 0))

    rows = extents(M, tm, mt)[m_idx]
    cols = extents(N, tn, nt)[n_idx]
    ks = extents(K, tk, kt)[k_idx]
    loads_weights = (m_idx == 0) if kt == 1 else np.ones(len(k_idx), dtype=bool)
    zeros = np.zeros(len(k_idx), dtype=np.int64)
    return TileSchedule(
        timing=timing,
        macs=rows * ks * cols,
        reads={"A": rows * ks, "W": np.where(loads_weights, ks * cols, 0), "C": zeros},
        writes={"A": zeros, "W": zeros, "C": np.where(k_idx == kt - 1, rows * cols, 0)},
        bits=bits,
        pes=pes,
    )


def _block_sizes(n: int, size: int) -> np.ndarray:
    sizes = np.full(-(-n // size), size, dtype=np.int64)
    sizes[-1] = n - size * (len(sizes) - 1)
    return sizes


def systolic_schedule(acc: Accelerator, m: int, k: int, n: int) -> TileSchedule:
    """Tiles of an OS/WS :class:`~tpegen.hw.arrays.systolic.SystolicArray`, as ``sw/systolic.py``
    streams them (OS: row blocks outer, column blocks inner; WS: N blocks outer, K blocks inner)."""
    p = acc.params
    R, C = p.rows, p.cols
    bits = dict(zip(OPERANDS, acc.lane_bits(), strict=True))
    blocks = -(-m // R) if p.dataflow == "os" else -(-k // R)
    check_tiles(blocks * -(-n // C), m, k, n)
    ns = _block_sizes(n, C)
    if p.dataflow == "os":
        ms = _block_sizes(m, R)
        mt = np.repeat(ms, len(ns))  # rows of tile t
        nt = np.tile(ns, len(ms))  # cols of tile t
        kt = np.full(len(mt), acc.k_beats(k), dtype=np.int64)  # beats of K (terms values each)
        timing: TileTiming = OSTiming(R, C, kt, p.os_cell, p.pe_latency)
        macs = mt * nt * k
        reads = {"A": mt * kt, "W": kt * nt, "C": np.zeros_like(mt)}  # lanes of `terms` values
        writes = {"A": np.zeros_like(mt), "W": np.zeros_like(mt), "C": mt * nt}
    else:
        ks = _block_sizes(k, R)
        kt = np.tile(ks, len(ns))
        nt = np.repeat(ns, len(ks))
        first_k = np.tile(np.arange(len(ks)) == 0, len(ns))
        timing = WSTiming(R, C, np.full(len(kt), m, dtype=np.int64))
        macs = m * kt * nt
        reads = {"A": m * kt, "W": kt * nt, "C": np.where(first_k, 0, m * nt)}
        writes = {"A": np.zeros_like(kt), "W": np.zeros_like(kt), "C": m * nt}
    return TileSchedule(
        timing=timing, macs=macs, reads=reads, writes=writes, bits=bits, pes=acc.macs_per_cycle
    )


# -- the simulator ------------------------------------------------------------------------------
# Smallest memory bandwidth in bytes per cycle (one byte per 1024 cycles). Below it transfer times
# stop being meaningful and, near 0, overflow the cycle counters.
MIN_BANDWIDTH = 2.0**-10


def check_bandwidth(bandwidth: Bandwidth, field: str = "bandwidth") -> dict[str, float | None]:
    """Validate ``bandwidth`` (module docstring) and return it per operand buffer (None = unlimited).

    Every given bandwidth must be a finite number of bytes per cycle >= :data:`MIN_BANDWIDTH`
    (1/1024); ``field`` names the argument in the :class:`~tpegen.errors.ConfigError`.
    """
    if bandwidth is None:
        return dict.fromkeys(OPERANDS)
    if isinstance(bandwidth, Mapping):
        for key in bandwidth:
            if key not in OPERANDS:
                raise ConfigError(field, "a mapping with keys " + ", ".join(OPERANDS), key)
        raw = {op: bandwidth.get(op) for op in OPERANDS}
        sep = " " if field.startswith("-") else "."  # "--bandwidth A" on the CLI, "bandwidth.A" in Python
        names = {op: f"{field}{sep}{op}" for op in OPERANDS}
    else:
        raw = dict.fromkeys(OPERANDS, bandwidth)
        names = dict.fromkeys(OPERANDS, field)
    out: dict[str, float | None] = {}
    for op, bw in raw.items():
        ok = isinstance(bw, (int, float, np.integer, np.floating)) and not isinstance(bw, (bool, np.bool_))
        if bw is not None and not (ok and math.isfinite(bw) and bw >= MIN_BANDWIDTH):
            raise ConfigError(
                names[op], "a finite number of bytes per cycle >= 1/1024 (omit it for unlimited)", bw
            )
        out[op] = None if bw is None else float(bw)
    return out


def _transfer_cycles(elements: np.ndarray, bits: int, bw: float | None) -> np.ndarray:
    if bw is None:
        return np.zeros(len(elements), dtype=np.int64)
    return np.ceil((elements * bits) / (8.0 * bw)).astype(np.int64)


def _stalled_timeline(timing: TileTiming, fetch: np.ndarray) -> tuple[Timeline, np.ndarray]:
    """Double-buffered fetch coupled with the array recurrence (module docstring, steps 1-2)."""
    T = len(fetch)
    start = np.empty(T, dtype=np.int64)
    end = np.empty(T, dtype=np.int64)
    ready = np.empty(T, dtype=np.int64)
    last_in = [0] * T
    state, port_free = None, 0
    f = fetch.tolist()
    for t in range(T):
        fetch_start = max(port_free, last_in[t - 2] + 1 if t >= 2 else 0)
        port_free = fetch_start + f[t]
        ready[t] = fetch_start + max(f[t] - 1, 0)
        state, start[t], last_in[t], end[t] = timing.step(state, t, int(ready[t]))
    return Timeline(start=start, end=end), ready


def simulate_schedule(
    sched: TileSchedule, *, shape: tuple[int, int, int], bandwidth: Bandwidth = None
) -> SimResult:
    """Timing and traffic of a :class:`TileSchedule` (no numerics)."""
    bws = check_bandwidth(bandwidth)
    ideal = sched.timing.timeline()
    traffic = {
        op: BufferTraffic(op, sched.bits[op], int(sched.reads[op].sum()), int(sched.writes[op].sum()))
        for op in OPERANDS
    }
    macs = int(sched.macs.sum())
    ideal_total = ideal.total
    if all(bw is None for bw in bws.values()):
        return SimResult(shape, None, ideal_total, ideal_total, ideal, macs, sched.pes, traffic)
    fetch = np.maximum(
        _transfer_cycles(sched.reads["A"] + sched.writes["A"], sched.bits["A"], bws["A"]),
        _transfer_cycles(sched.reads["W"] + sched.writes["W"], sched.bits["W"], bws["W"]),
    )
    if fetch.any():
        timeline, ready = _stalled_timeline(sched.timing, fetch)
    else:
        timeline, ready = ideal, np.zeros(len(fetch), dtype=np.int64)
    # Write-back queue: port free after tile t at P_t = max(P_{t-1}, end_t) + g_t (prefix maximum).
    g = _transfer_cycles(sched.reads["C"] + sched.writes["C"], sched.bits["C"], bws["C"])
    G = np.cumsum(g)
    port_free = G + np.maximum.accumulate(timeline.end - (G - g))
    finish = max(int(timeline.end[-1]), int(port_free[-1]) - 1)
    cycles = finish + 1  # cycle 0 is the first fetch (or the first input beat)
    return SimResult(shape, None, cycles, ideal_total, timeline, macs, sched.pes, traffic, ready)


def simulate_shape(acc: Accelerator, m: int, k: int, n: int, *, bandwidth: Bandwidth = None) -> SimResult:
    """Timing-only simulation of an M x K x N GEMM on ``acc`` (``output`` is None)."""
    for name, v in (("M", m), ("K", k), ("N", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(name, "a positive integer", v)
    m, k, n = int(m), int(k), int(n)
    return simulate_schedule(acc.schedule(m, k, n), shape=(m, k, n), bandwidth=bandwidth)


def simulate(
    acc: Accelerator,
    a: np.ndarray,
    w: np.ndarray,
    *,
    bandwidth: Bandwidth = None,
    numeric: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> SimResult:
    """Simulate ``C = A @ W`` on ``acc``: exact output, cycles, timeline, utilization, traffic.

    ``numeric`` overrides the PE numeric model (default ``acc.golden``); ``bandwidth`` is
    described in the module docstring.
    """
    a, w = acc.check_operands(a, w)
    m, k = a.shape
    n = w.shape[1]
    result = simulate_schedule(acc.operand_schedule(a, w), shape=(m, k, n), bandwidth=bandwidth)
    result.output = (numeric or acc.golden)(a, w)
    return result
