"""Commands of a sequence of tiled GEMMs: LOADs of the blocks each EXEC step needs (unless still
resident), the EXEC, and the STOREs of a finished accumulator block with their Q windows."""

from __future__ import annotations

from typing import Any

from tpegen.errors import ConfigError
from tpegen.hw.system.isa import FIELDS, Format, Opcode, Target
from tpegen.hw.system.params import SystemGeometry
from tpegen.sw.compiler.tiling import (
    MAX_ROWS,
    TRAFFIC_WEIGHT,
    Op,
    Src,
    Tiling,
    c_rows_per_unit,
    rank_tilings,
    steps,
    w_rows_per_unit,
)
from tpegen.sw.compiler.tokens import Buffers, TokenBuilder

MAX_STRIDE = (1 << 24) - 1
EXACT_CANDIDATES = 6  # tilings re-costed on the timing model ...
EXACT_COMMANDS = 4000  # ... when the cheapest one's program has at most this many commands
Q_ADDR_LIMIT = 1 << next(f.bits for f in FIELDS[Opcode.STORE] if f.name == "q_addr")


def segments(rows: int, seg: int, stride: int, pitch: int, mergeable: bool = True) -> dict[str, int]:
    """LOAD/STORE segment fields; runs that are contiguous in host memory become one segment."""
    if rows == 1:
        stride = 0
    elif mergeable and stride == seg * pitch and rows * seg <= MAX_ROWS:
        rows, seg, stride = 1, rows * seg, 0
    if stride > MAX_STRIDE:
        raise ConfigError("shapes", f"host strides below {MAX_STRIDE + 1} bytes (24-bit field)", stride)
    return {"rows": rows, "seg": seg, "stride": stride}


class Emitter:
    """Emits the commands of a sequence of GEMMs onto one :class:`TokenBuilder`."""

    def __init__(self, g: SystemGeometry, config: Any = None):
        self.g = g
        self.config = config
        self.b = TokenBuilder()
        self.notes: list[str] = []

    def choose(self, op: Op) -> Tiling:
        """The tiling of ``op``: the cheapest by the closed-form estimate, or, for short programs,
        the best of the few cheapest when each is emitted alone and timed on the timing model
        (:func:`tpegen.sim.system_timing.simulate_timing`, default memory latencies)."""
        ranked = rank_tilings(self.g, op)
        if len(ranked) == 1 or ranked[0][1] > EXACT_COMMANDS:
            return ranked[0][2]
        from tpegen.sim.system_timing import MemoryTiming, simulate_timing

        best = None
        for _, _, t in ranked[:EXACT_CANDIDATES]:
            trial = Emitter(self.g, self.config)
            trial.op(op, t)
            cycles = simulate_timing(self.config, self.g, trial.b.instructions(), MemoryTiming()).cycles
            nbytes = trial.b.read_bytes + trial.b.written_bytes
            cost = cycles + TRAFFIC_WEIGHT * nbytes / self.g.axi_bytes
            if best is None or cost < best[0]:
                best = (cost, t)
        return best[1]

    def op(self, op: Op, tiling: Tiling | None = None) -> Tiling:
        """Emit the commands of ``op`` with ``tiling`` (default: :meth:`choose`)."""
        g, b = self.g, self.b
        t = tiling or self.choose(op)
        wr, cr = w_rows_per_unit(g), c_rows_per_unit(g)
        ws = g.kind == "ws"
        abuf = Buffers("A", g.a_depth, t.a_block * t.kt)
        wbuf = Buffers("W", g.w_depth, t.w_block * t.kt * wr)
        cbuf = Buffers("C", g.acc_depth, t.em * t.en * cr)
        qplan = self._qplan(op)
        self.notes.append(f"{op.label}: {t.describe()}")
        bufs = ", ".join(
            f"{m} {'2 x ' + str(d // 2) if buf.double else '1 x ' + str(d)} rows (block {need})"
            for m, d, buf, need in (
                ("A", g.a_depth, abuf, t.a_block * t.kt),
                ("W", g.w_depth, wbuf, t.w_block * t.kt * wr),
                ("C", g.acc_depth, cbuf, t.em * t.en * cr),
            )
        )
        self.notes.append(f"{op.label}: buffers {bufs}")
        c_key = None
        for ablk, wblk, (m0, em), (n0, en), (k0, kt), first, last in steps(t, op.mu, op.nu):
            a_base, a_res, hit = abuf.get(("A", op.label, ablk))
            ma, ca = ablk[0], ablk[1]
            if not hit:
                if ws:  # k-major: ck segments of ca rows
                    host = op.a.addr + (k0 * op.a.stride + ma) * op.a.pitch
                    seg = segments(kt, ca, op.a.stride * op.a.pitch, op.a.pitch)
                else:
                    host = op.a.addr + (ma * op.a.stride + k0) * op.a.pitch
                    seg = segments(ca, kt, op.a.stride * op.a.pitch, op.a.pitch)
                self._load(Target.A, a_base, host, seg, op.a, a_res, f"{op.label} A m{ma}+{ca} k{k0}+{kt}")
            nw, cw = wblk[0], wblk[1]
            w_base, w_res, hit = wbuf.get(("W", op.label, wblk))
            if not hit:
                host = op.w.addr + (nw * op.w.stride + k0 * wr) * op.w.pitch
                seg = segments(cw, kt * wr, op.w.stride * op.w.pitch, op.w.pitch)
                self._load(Target.W, w_base, host, seg, op.w, w_res, f"{op.label} W n{nw}+{cw} k{k0}+{kt}")
            if first:
                c_key = ("C", op.label, m0, n0)
            c_base, c_res, _ = cbuf.get(c_key)
            fields = {
                "a_addr": a_base + (m0 - ma) * kt,
                "w_addr": w_base + (n0 - nw) * kt * wr,
                "c_addr": c_base,
                "c_stride": em * cr,
                "mt": 1 if ws else em,
                "nt": en,
                "kt": kt,
                "mb": em if ws else 1,
                "acc": 0 if first else 1,
            }
            b.emit(
                Opcode.EXEC,
                fields,
                f"{op.label} m{m0}+{em} n{n0}+{en} k{k0}+{kt}" + ("" if first else " acc"),
                reads=(*a_res, *w_res, *(() if first else c_res)),
                writes=c_res,
            )
            if last:
                self._store(op, qplan, c_base, c_res, m0, em, n0, en)
        return t

    def _load(self, target: Target, sp: int, host: int, seg: dict, src: Src, res, comment: str) -> None:
        nbytes = seg["rows"] * seg["seg"] * src.pitch
        self.b.emit(
            Opcode.LOAD,
            {"target": target, "sp_addr": sp, "host_addr": host, **seg},
            comment,
            reads=(src.name,) if src.produced else (),
            writes=res,
            host=(src.name, nbytes),
        )

    # -- requantization parameters and stores ----------------------------------------------------
    def _qplan(self, op: Op) -> dict | None:
        if op.q is None:
            return None
        depth = self.g.q_depth
        if op.q.per_row:  # q_addr (10 bits) names a channel: use only the rows it can reach
            depth = max(1, min(depth, Q_ADDR_LIMIT // self.g.acc_lanes))
        window = op.q.rows if op.q.rows <= depth else max(1, depth // 2)
        return {"window": window, "buf": Buffers("Q", depth, window)}

    def _q_window(self, op: Op, qplan: dict, w: int) -> tuple[int, tuple[str, ...]]:
        size = qplan["window"]
        base, res, hit = qplan["buf"].get(("Q", op.label, w))
        if not hit:
            r0 = w * size
            count = min(size, op.q.rows - r0)
            pitch = self.g.load_pitch("Q")
            self.b.emit(
                Opcode.LOAD,
                {
                    "target": Target.Q,
                    "sp_addr": base,
                    "host_addr": op.q.addr + r0 * pitch,
                    "rows": 1,
                    "seg": count,
                },
                f"{op.label} Q rows {r0}+{count}",
                writes=res,
                host=(f"{op.label}.Q", count * pitch),
            )
        return base, res

    def _store(self, op: Op, qplan, c_base, c_res, m0, em, n0, en) -> None:
        """STOREs of one finished accumulator block, cut where a Q window ends; each Q window is
        loaded just before its first STORE, so that the hazard tracker sees the order."""
        g, cr = self.g, c_rows_per_unit(self.g)
        seg_rows = em * cr
        if qplan is None:
            self._store_piece(op, c_base, c_res, m0, em, n0, 0, en, 0, seg_rows, 0, ())
            return
        size, L = qplan["window"], g.acc_lanes
        if not op.q.per_row:  # Q row q_addr + s for segment (n-unit) s
            s = n0
            while s < n0 + en:
                w = s // size
                e = min(n0 + en, (w + 1) * size)
                base, res = self._q_window(op, qplan, w)
                self._store_piece(
                    op, c_base, c_res, m0, em, n0, s - n0, e - s, 0, seg_rows, base + s - w * size, res
                )
                s = e
            return
        c, c_end = m0 * cr, (m0 + em) * cr  # channel q_addr + i for row i of every segment
        while c < c_end:
            w = c // (size * L)
            e = min(c_end, (w + 1) * size * L)
            base, res = self._q_window(op, qplan, w)
            q_addr = base * L + c - w * size * L
            if e - c == seg_rows:
                self._store_piece(op, c_base, c_res, m0, em, n0, 0, en, 0, seg_rows, q_addr, res)
            else:  # a part of each segment: one STORE per segment (C segments are seg_rows apart)
                for s in range(en):
                    self._store_piece(op, c_base, c_res, m0, em, n0, s, 1, c - m0 * cr, e - c, q_addr, res)
            c = e

    def _store_piece(self, op, c_base, c_res, m0, em, n0, s0, ns, r0, nr, q_addr, q_res) -> None:
        cr, P, So = c_rows_per_unit(self.g), op.out.pitch, op.out.stride
        seg_rows = em * cr
        seg = segments(ns, nr, So * P, P, mergeable=op.fmt != Format.INT8)
        fields = {
            "c_addr": c_base + s0 * seg_rows + r0,
            "host_addr": op.out.addr + ((n0 + s0) * So + m0 * cr + r0) * P,
            **seg,
            "format": op.fmt,
            "relu": int(op.relu),
            "per_row": int(op.q is not None and op.q.per_row),
            "q_addr": q_addr,
        }
        self.b.emit(
            Opcode.STORE,
            fields,
            f"{op.label} out m{m0}+{em} n{n0 + s0}+{ns}" + (f" rows {r0}+{nr}" if nr != seg_rows else ""),
            reads=(*c_res, *q_res),
            writes=(op.out.name,) if op.out.produced else (),
            host=(op.out.name, seg["rows"] * seg["seg"] * P),
        )
