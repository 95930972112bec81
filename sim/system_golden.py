"""Functional (golden) model of the accelerator system: runs an ISA program on host memory.

What it models: the *values* the accelerator top computes -- host memory, the A / W / Q
scratchpads and the accumulator C after every command, executed in program order (the semaphores
only order the units; a correct program's result is the program-order result). No timing. The
semantics are those of :mod:`tpegen.hw.system.isa` (module docstring) and the system spec:

* LOAD copies ``rows x seg`` host rows (pitch ``geom.load_pitch``) to ``sp_addr + s*seg + i``.
* EXEC streams scratchpad rows through the array and writes or adds result rows into C. The
  arithmetic is the array's: integer tiles are ``A @ W`` wrapped to the accumulator width
  (:func:`tpegen.sim.intgemm.int_gemm`; LUT-kind weights are decoded from their W rows by the
  family's :func:`tpegen.sim.system_rows.weight_code` -- LUT bit planes with
  :func:`tpegen.sim.lut.decode_weights` as the core reads them, dot-tile rows are plain weights),
  adds wrap at ``acc_lane_bits``;
  FMA tiles are the in-order single-rounding chain of :func:`tpegen.sim.fp.fma` from +0 on the
  bit patterns (what :func:`tpegen.sim.fp.gemm_chain` computes), never accumulated in C.
* STORE converts accumulator rows (``raw``, ``int8`` via :func:`tpegen.sim.requant.requantize`,
  ``bf16`` via :func:`tpegen.sim.requant.fp32_bits_to_bf16_bits`) and writes them at the output
  pitch, padding bytes zero.

Speed: every command is vectorized (integer GEMMs through float64 BLAS). FMA chains cost one
numpy pass per K step, so FMA tiles are *deferred*: each EXEC records its tiles and the C rows
they will fill, and all pending tiles are computed in one batched chain when a value is needed
(a LOAD reading host bytes that a deferred STORE writes, or the end of the program); STOREs after
the first deferred one are replayed in order at that point. Results are identical to running
every command at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim import fp
from tpegen.sim.intgemm import int_gemm
from tpegen.sim.packing import wrap
from tpegen.sim.requant import fp32_bits_to_bf16_bits, requantize, unpack_qparams
from tpegen.sim.system_rows import (
    group_size_of,
    lane_signed,
    lanes_to_rows,
    row_addresses,
    row_format,
    rows_to_lanes,
    weight_code,
    write_rows,
)

__all__ = ["GoldenRun", "run_golden", "acc_to_fp32_bits"]

_FMA_BLOCK = 1 << 18  # elements of one batched FMA step (bounds the temporaries)


@dataclass
class GoldenRun:
    """Result of :func:`run_golden`.

    ``host``: the final host image (a new array); ``memories``: ``"A"``, ``"W"``, ``"Q"``, ``"C"``
    as ``(depth, row_bytes)`` uint8 arrays; ``host_bytes_read`` / ``host_bytes_written``: bytes
    moved on the AXI bus (whole pitches, i.e. beats x ``axi_bytes``); ``macs``: sum of
    ``geom.exec_macs`` over the EXECs; ``per_command``: one dict per command with ``index``,
    ``opcode`` (name), ``bytes`` (host bytes moved) and ``macs``."""

    host: np.ndarray
    memories: dict[str, np.ndarray]
    host_bytes_read: int = 0
    host_bytes_written: int = 0
    macs: int = 0
    per_command: list[dict[str, Any]] = field(default_factory=list)


def acc_to_fp32_bits(bits: np.ndarray, fmt: fp.FloatFormat) -> np.ndarray:
    """Accumulator-format bit patterns -> fp32 bit patterns (int64), exactly.

    fp32 is the identity; a narrower format is widened exactly (subnormals of a format with fewer
    exponent bits become normal); inf and NaN keep their sign and fraction payload, shifted to the
    top of the fp32 fraction (as the STORE unit's ``fp_to_fp32``)."""
    bits = np.asarray(bits, dtype=np.int64)
    if fmt.exp_bits > 8 or fmt.man_bits > 23:
        raise ConfigError("pe.acc_format", "a format no wider than fp32 for a bf16 STORE", fmt.name)
    if fmt == fp.FP32:
        return bits & 0xFFFFFFFF
    sign = (bits >> (fmt.width - 1)) & 1
    man = bits & ((1 << fmt.man_bits) - 1)
    special = ((bits >> fmt.man_bits) & fmt.exp_all_ones) == fmt.exp_all_ones
    v = np.abs(fp.decode(np.where(special, 0, bits), fmt)).astype(np.float32)  # exact
    finite = v.view(np.uint32).astype(np.int64)
    return (sign << 31) | np.where(special, 0x7F800000 | (man << (23 - fmt.man_bits)), finite)


def run_golden(
    config: Any,
    program: Sequence[isa.Instruction],
    host: np.ndarray,
    *,
    geometry: SystemGeometry | None = None,
) -> GoldenRun:
    """Execute ``program`` on ``config``'s accelerator with the initial host image ``host``.

    ``host`` is a 1-D uint8 array (copied, never modified); A, W, Q and C start zero. Each command
    is first checked with :func:`tpegen.hw.system.isa.check_instruction` (a
    :class:`~tpegen.hw.system.isa.ProgramError` propagates); a LOAD or STORE outside the host image
    raises :class:`~tpegen.errors.TpegenError`."""
    geom = geometry or SystemGeometry.of(config)
    machine = _Machine(config, geom, host)
    for index, ins in enumerate(program):
        isa.check_instruction(ins, geom, index)
        machine.step(index, ins)
    machine.flush()
    return machine.run


@dataclass
class _DeferredStore:
    index: int
    ins: isa.Instruction
    refs: np.ndarray  # pending FMA row id per accumulator row read, -1 = use `rows`
    rows: np.ndarray  # accumulator row bytes at the time of the STORE


class _Machine:
    """Memories and command semantics of one run (see the module docstring)."""

    def __init__(self, config: Any, geom: SystemGeometry, host: np.ndarray):
        host = np.asarray(host)
        if host.ndim != 1 or host.dtype != np.uint8:
            raise ConfigError("host", "a 1-D uint8 array", f"array of shape {host.shape}, dtype {host.dtype}")
        self.config, self.geom = config, geom
        self.group_size = group_size_of(config)
        self.w_code = weight_code(config)
        self.signed = {k: lane_signed(config, k) for k in "AWC"}
        self.fmt = {k: row_format(geom, k, group_size=self.group_size) for k in "AWQC"}
        memories = {k: np.zeros((geom.depth(k), self.fmt[k].nbytes), dtype=np.uint8) for k in "AWQC"}
        self.run = GoldenRun(host=host.copy(), memories=memories)
        self.mem = memories
        self.fma_cfg = config.pe.fma if geom.fp else None
        # deferred FMA work
        self.c_ref = np.full(geom.acc_depth, -1, dtype=np.int64)
        self.tiles: list[tuple[np.ndarray, np.ndarray]] = []  # (a (T, R, K), w (T, K, C)) bit patterns
        self.pending_tiles = 0
        self.stores: list[_DeferredStore] = []
        self.store_spans: list[tuple[int, int]] = []

    # -- helpers ------------------------------------------------------------------------------
    def lanes(self, kind: str, start: int, count: int) -> np.ndarray:
        rows = self.mem[kind][start : start + count]
        return rows_to_lanes(self.geom, kind, rows, signed=self.signed[kind], group_size=self.group_size)

    def to_rows(self, kind: str, lanes: np.ndarray) -> np.ndarray:
        return lanes_to_rows(self.geom, kind, lanes, group_size=self.group_size)

    def _host_span(self, index: int, ins: isa.Instruction, pitch: int) -> tuple[int, int]:
        what = isa.Opcode(ins.opcode).name
        starts = row_addresses(
            ins["host_addr"], pitch, ins["rows"] * ins["seg"], seg=ins["seg"], stride=ins["stride"]
        )
        lo, hi = int(starts.min()), int(starts.max()) + pitch
        if hi > self.run.host.size:
            raise TpegenError(
                f"command {index}: {what} touches host bytes 0x{lo:x}..0x{hi - 1:x}, "
                f"beyond the host image of {self.run.host.size} bytes"
            )
        return lo, hi

    # -- commands -----------------------------------------------------------------------------
    def step(self, index: int, ins: isa.Instruction) -> None:
        op = isa.Opcode(ins.opcode)
        nbytes = macs = 0
        if op is isa.Opcode.LOAD:
            nbytes = self.load(index, ins)
            self.run.host_bytes_read += nbytes
        elif op is isa.Opcode.EXEC:
            macs = self.geom.exec_macs(ins.args)
            self.execute(ins)
            self.run.macs += macs
        else:
            nbytes = self.store(index, ins)
            self.run.host_bytes_written += nbytes
        self.run.per_command.append({"index": index, "opcode": op.name, "bytes": nbytes, "macs": macs})

    def load(self, index: int, ins: isa.Instruction) -> int:
        target = isa.Target(ins["target"]).name
        pitch = self.geom.load_pitch(target)
        n, nb = ins["rows"] * ins["seg"], self.fmt[target].nbytes
        lo, hi = self._host_span(index, ins, pitch)
        if any(lo < s_hi and s_lo < hi for s_lo, s_hi in self.store_spans):
            self.flush()  # this LOAD reads what a deferred STORE writes
        starts = row_addresses(ins["host_addr"], pitch, n, seg=ins["seg"], stride=ins["stride"])
        self.mem[target][ins["sp_addr"] : ins["sp_addr"] + n] = self.run.host[starts[:, None] + np.arange(nb)]
        return n * pitch

    def execute(self, ins: isa.Instruction) -> None:
        g = self.geom
        mt, nt, kt, mb = ins["mt"], ins["nt"], ins["kt"], ins["mb"]
        c_addr, c_stride = ins["c_addr"], ins["c_stride"]
        R, C = g.rows, g.cols
        if g.kind == "os":
            a = self.lanes("A", ins["a_addr"], mt * kt).reshape(mt, kt, R)
            w = self.lanes("W", ins["w_addr"], nt * kt).reshape(nt, kt, C)
            # emission order (i, j, q): result row q of tile (i, j)
            i, j, q = (
                x.ravel() for x in np.meshgrid(np.arange(mt), np.arange(nt), np.arange(R), indexing="ij")
            )
            dest = c_addr + j * c_stride + i * R + q
            if g.fp:
                self.defer_fma(a.transpose(0, 2, 1), w, dest)
                return
            full = int_gemm(
                a.transpose(0, 2, 1).reshape(mt * R, kt),
                w.transpose(1, 0, 2).reshape(kt, nt * C),
                g.acc_lane_bits,
            )
            values = full.reshape(mt, R, nt, C).transpose(0, 2, 1, 3).reshape(-1, C)
        elif g.kind == "ws":
            a = self.lanes("A", ins["a_addr"], kt * mb).reshape(kt, mb, R)
            w = self.lanes("W", ins["w_addr"], nt * kt * R).reshape(nt, kt, R, C)[
                :, :, ::-1
            ]  # bottom row first
            full = int_gemm(
                a.transpose(1, 0, 2).reshape(mb, kt * R),
                w.transpose(1, 2, 0, 3).reshape(kt * R, nt * C),
                g.acc_lane_bits,
            )
            # per j the kt partial results of row m accumulate in C; emission order (j, m)
            values = full.reshape(mb, nt, C).transpose(1, 0, 2).reshape(-1, C)
            dest = (c_addr + np.arange(nt)[:, None] * c_stride + np.arange(mb)).ravel()
        else:
            a = self.lanes("A", ins["a_addr"], mt * kt).reshape(mt, kt, R, g.k_tile)
            am = a.transpose(0, 2, 1, 3).reshape(mt * R, kt * g.k_tile)
            # weight tile of (j, kk): rows w_addr + (j*kt + kk)*b + p (kt = 1: one tile per j, reused)
            w_rows = self.lanes("W", ins["w_addr"], nt * kt * g.planes)
            wm = self.w_code.lanes_to_weights(g, w_rows, nt, kt)  # what the array computes with
            full = int_gemm(am, wm, g.acc_lane_bits)
            values = full.reshape(mt, R, nt, C).transpose(2, 0, 1, 3).reshape(nt * mt, R * C)
            dest = (c_addr + np.arange(nt)[:, None] * c_stride + np.arange(mt)).ravel()
        self.commit(dest, values, bool(ins["acc"]))

    def commit(self, dest: np.ndarray, values: np.ndarray, accumulate: bool) -> None:
        """Write (or add, wrapping) result rows ``values`` to C rows ``dest`` in emission order."""
        rows, first = np.unique(dest[::-1], return_index=True)
        if accumulate:
            if len(rows) == len(dest):
                order = np.argsort(dest)
                sums = values[order]
            else:
                inverse = np.searchsorted(rows, dest)
                sums = np.zeros((len(rows), values.shape[1]), dtype=np.int64)
                np.add.at(sums, inverse, values)
            new = wrap(self.lanes_at("C", rows) + sums, self.geom.acc_lane_bits)
        else:
            new = values[len(dest) - 1 - first]  # the last write of each row wins
        self.mem["C"][rows] = self.to_rows("C", new)

    def lanes_at(self, kind: str, rows: np.ndarray) -> np.ndarray:
        return rows_to_lanes(
            self.geom, kind, self.mem[kind][rows], signed=self.signed[kind], group_size=self.group_size
        )

    # -- FMA deferral -------------------------------------------------------------------------
    def defer_fma(self, a: np.ndarray, w: np.ndarray, dest: np.ndarray) -> None:
        """Record the mt x nt tiles of an FMA EXEC (a: (mt, R, K), w: (nt, K, C)) for C rows ``dest``."""
        mt, nt = a.shape[0], w.shape[0]
        i, j = np.repeat(np.arange(mt), nt), np.tile(np.arange(nt), mt)
        self.tiles.append((a[i], w[j]))
        refs = self.pending_tiles * self.geom.rows + np.arange(mt * nt * self.geom.rows)
        self.pending_tiles += mt * nt
        rows, first = np.unique(dest[::-1], return_index=True)
        self.c_ref[rows] = refs[len(dest) - 1 - first]

    def fma_results(self) -> np.ndarray:
        """All pending FMA tiles computed: (tiles * R, C) accumulator-format bit patterns."""
        cfg, R, C = self.fma_cfg, self.geom.rows, self.geom.cols
        out = np.zeros((self.pending_tiles, R, C), dtype=np.int64)
        starts = np.cumsum([0] + [t[0].shape[0] for t in self.tiles])
        by_k: dict[int, list[int]] = {}
        for n, (a, _) in enumerate(self.tiles):
            by_k.setdefault(a.shape[2], []).append(n)
        for k, members in by_k.items():
            a = np.concatenate([self.tiles[n][0] for n in members])
            w = np.concatenate([self.tiles[n][1] for n in members])
            where = np.concatenate([np.arange(starts[n], starts[n + 1]) for n in members])
            chunk = max(1, _FMA_BLOCK // (R * C))
            for s in range(0, len(a), chunk):
                # K outermost and contiguous: one (tiles, R, 1) x (tiles, 1, C) step per k, in order
                ac = np.ascontiguousarray(a[s : s + chunk].transpose(2, 0, 1))[..., None]
                wc = np.ascontiguousarray(w[s : s + chunk].transpose(1, 0, 2))[:, :, None, :]
                acc = np.zeros((ac.shape[1], R, C), dtype=np.int64)
                for kk in range(k):
                    acc = fp.fma(ac[kk], wc[kk], acc, cfg)
                if not cfg.normalize_in_pe:
                    acc = fp.normalize_relaxed(acc, cfg)
                out[where[s : s + chunk]] = acc
        return out.reshape(-1, C)

    def flush(self) -> None:
        """Compute deferred FMA tiles, fill their C rows and replay deferred STOREs in order."""
        if not self.pending_tiles and not self.stores:
            return
        values = self.fma_results() if self.pending_tiles else np.zeros((0, self.geom.cols), dtype=np.int64)
        pending = np.flatnonzero(self.c_ref >= 0)
        if len(pending):
            self.mem["C"][pending] = self.to_rows("C", values[self.c_ref[pending]])
        for st in self.stores:
            rows = st.rows.copy()
            ref = st.refs >= 0
            if ref.any():
                rows[ref] = self.to_rows("C", values[st.refs[ref]])
            self.write_output(st.ins, rows)
        self.c_ref[:] = -1
        self.tiles, self.pending_tiles = [], 0
        self.stores, self.store_spans = [], []

    # -- STORE --------------------------------------------------------------------------------
    def store(self, index: int, ins: isa.Instruction) -> int:
        fmt = isa.Format(ins["format"]).name.lower()
        pitch = self.geom.store_pitch(fmt)
        n = ins["rows"] * ins["seg"]
        span = self._host_span(index, ins, pitch)
        c_rows = slice(ins["c_addr"], ins["c_addr"] + n)
        refs = self.c_ref[c_rows]
        if self.stores or np.any(refs >= 0):
            self.stores.append(_DeferredStore(index, ins, refs.copy(), self.mem["C"][c_rows].copy()))
            self.store_spans.append(span)
        else:
            self.write_output(ins, self.mem["C"][c_rows])
        return n * pitch

    def write_output(self, ins: isa.Instruction, acc_rows: np.ndarray) -> None:
        """Convert accumulator rows (bytes) to the STORE's format and write them to the host."""
        g = self.geom
        fmt = isa.Format(ins["format"])
        seg = ins["seg"]
        if fmt is isa.Format.RAW:
            out = acc_rows
        elif fmt is isa.Format.INT8:
            acc = rows_to_lanes(g, "C", acc_rows, signed=True)
            r = np.arange(len(acc))
            if ins["per_row"]:
                channel = ins["q_addr"] + r % seg
                entries = rows_to_lanes(g, "Q", self.mem["Q"][channel // g.acc_lanes])
                entries = entries[np.arange(len(r)), channel % g.acc_lanes][:, None]
            else:
                entries = rows_to_lanes(g, "Q", self.mem["Q"][ins["q_addr"] + r // seg])
            m, shift, zp = unpack_qparams(entries)
            q = requantize(acc, m, shift, zp, relu=bool(ins["relu"]))
            out = (q & 0xFF).astype(np.uint8)
        else:
            bits = rows_to_lanes(g, "C", acc_rows, signed=False)
            bf = fp32_bits_to_bf16_bits(acc_to_fp32_bits(bits, self.fma_cfg.acc_fmt))
            out = np.ascontiguousarray(bf.astype("<u2")).view(np.uint8).reshape(len(bits), -1)
        write_rows(
            self.run.host,
            ins["host_addr"],
            g.store_pitch(fmt.name.lower()),
            out,
            seg=seg,
            stride=ins["stride"],
        )
