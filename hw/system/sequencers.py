"""EXEC sequencers: the order, scratchpad addresses and control bits of every array beat, per family.

An EXEC command (:mod:`tpegen.hw.system.isa`) becomes, for each array input port, a sequence of
beats whose payload is one or two scratchpad rows plus control bits, and a sequence of result
beats each of which goes to one accumulator row. Every such sequence is a loop nest: loop counts
(outer first, each >= 1) and, per memory, a base row and a stride per loop level, i.e.
``row = base + sum_l idx_l * stride_l``. A family describes its command semantics (the spec's
"Command semantics per family") as such nests in a small :class:`Sequencer` subclass; the
execute unit (:mod:`tpegen.hw.system.execute`) turns them into hardware: :class:`LoopNest`
counters, prefetching feeders and the accumulator collector. A new family is a new sequencer plus
one entry in :data:`SEQUENCERS`, whose key the family's entry in :mod:`tpegen.registry` names as
its ``system`` kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from amaranth import Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.hdl import ValueCastable

from tpegen.errors import ConfigError

ADDR_BITS = 16  # scratchpad / accumulator row addresses are 16-bit ISA fields

ValueLike = Value | ValueCastable | int


@dataclass(frozen=True)
class Nest:
    """A loop nest: ``counts`` (outer first; Values or ints, each >= 1) and, per memory name,
    ``(base, strides)`` with one stride per level."""

    counts: Sequence[ValueLike]
    addrs: dict[str, tuple[ValueLike, Sequence[ValueLike]]]

    def __post_init__(self) -> None:
        for mem, (_, strides) in self.addrs.items():
            if len(strides) != len(self.counts):
                raise ValueError(
                    f"nest address {mem!r}: {len(strides)} strides for {len(self.counts)} levels"
                )


@dataclass(frozen=True)
class Feed:
    """Beats of one array input port: ``nest`` (one beat per iteration), ``data`` (memory ->
    payload field it fills, ``None`` for the whole payload) and ``control`` (payload field ->
    value, a function of the :class:`LoopNest` state of the beat)."""

    port: str
    nest: Nest
    data: dict[str, str | None]
    control: Callable[[LoopNest], dict[str, Value]] = field(default=lambda nest: {})


@dataclass(frozen=True)
class Collect:
    """Result beats: ``nest`` with the single address ``"c"`` (accumulator row of each result beat)
    and ``accumulate`` (1: add to the row, 0: overwrite it) as a function of the nest state."""

    nest: Nest
    accumulate: Callable[[LoopNest], Value]


class LoopNest:
    """Hardware counters of a :class:`Nest` plus one incremental row address per memory.

    Added to module ``m`` (no submodule). ``load`` (the unit's start pulse) makes the nest begin at
    its first iteration in the same cycle (the ``cur`` values are the loaded ones while ``load`` is
    high, so the first beat can be issued in the start cycle); ``step`` (only while :attr:`active`)
    advances to the next iteration at the clock edge. Addresses use no multiplier: every level
    keeps the row at which its current iteration started and adds its stride when it advances; the
    levels inside it restart from there.

    Outputs (combinational, this cycle's iteration): ``idx[l]``, ``last[l]`` (``idx[l] ==
    counts[l] - 1``), ``addr[mem]``, ``active`` (iterations remain) and ``final`` (this is the
    last iteration). Addresses wrap modulo ``2**16`` (the dispatcher keeps real rows in range).
    """

    def __init__(self, m: Module, nest: Nest, *, load: Value, step: Value, name: str):
        counts = [Value.cast(c) for c in nest.counts]
        L = len(counts)
        idx_r = [Signal(max(1, len(c)), name=f"{name}_idx{lv}") for lv, c in enumerate(counts)]
        self.idx = [Signal(len(r), name=f"{name}_idx{lv}_cur") for lv, r in enumerate(idx_r)]
        m.d.comb += [cur.eq(Mux(load, 0, reg)) for cur, reg in zip(self.idx, idx_r, strict=True)]
        self.last = [Signal(name=f"{name}_last{lv}") for lv in range(L)]
        m.d.comb += [self.last[lv].eq(self.idx[lv] == counts[lv] - 1) for lv in range(L)]
        active_r = Signal(name=f"{name}_active")
        self.active = Signal(name=f"{name}_active_cur")
        m.d.comb += self.active.eq(load | active_r)

        # carry[l]: every level inside l is at its last index, so level l advances on a step
        carry, inc = [Const(1)] * L, [None] * L
        running: Value = Const(1)
        for lv in reversed(range(L)):
            carry[lv] = running
            inc[lv] = running & ~self.last[lv]
            running = running & self.last[lv]
        self.final = Signal(name=f"{name}_final")
        m.d.comb += self.final.eq(running)

        new_idx = [Mux(inc[lv], self.idx[lv] + 1, Mux(carry[lv], 0, self.idx[lv])) for lv in range(L)]
        self.addr: dict[str, Signal] = {}
        updates = []
        for mem, (base, strides) in nest.addrs.items():
            start_r = [Signal(ADDR_BITS, name=f"{name}_{mem}_start{lv}") for lv in range(L)]
            start = [Signal(ADDR_BITS, name=f"{name}_{mem}_start{lv}_cur") for lv in range(L)]
            m.d.comb += [cur.eq(Mux(load, base, reg)) for cur, reg in zip(start, start_r, strict=True)]
            parent = start[0]  # level 0 wrapping means the nest is finished: value irrelevant
            for lv in range(L):
                new = Mux(inc[lv], start[lv] + strides[lv], Mux(carry[lv], parent, start[lv]))
                new_sig = Signal(ADDR_BITS, name=f"{name}_{mem}_start{lv}_next")
                m.d.comb += new_sig.eq(new)
                updates.append((start_r[lv], new_sig, start[lv]))
                parent = new_sig
            self.addr[mem] = start[L - 1]
        with m.If(step):
            m.d.sync += [reg.eq(new) for reg, new in zip(idx_r, new_idx, strict=True)]
            m.d.sync += [reg.eq(new) for reg, new, _ in updates]
        with m.Else():
            m.d.sync += [reg.eq(cur) for reg, cur in zip(idx_r, self.idx, strict=True)]
            m.d.sync += [reg.eq(cur) for reg, _, cur in updates]
        m.d.sync += active_r.eq(self.active & ~(step & self.final))


class Sequencer:
    """Beat order of one family's EXEC (subclasses: one per ``SystemGeometry.kind``).

    :meth:`feeds` returns one :class:`Feed` per array input port and :meth:`collect` the
    :class:`Collect` of the result beats, both from the command fields ``f`` (a View of
    ``isa.layout(Opcode.EXEC)``; Values, valid in every cycle of the command). Each memory ("a",
    "w") may be read by one feed only (one read port each)."""

    kind = ""

    def __init__(self, geometry):
        self.geometry = geometry

    def feeds(self, f) -> list[Feed]:
        raise NotImplementedError

    def collect(self, f) -> Collect:
        raise NotImplementedError

    def result_data(self, payload) -> Value:
        """The result lanes (accumulator-row bits) of a ``results`` payload."""
        return Value.cast(payload.data)


class OsSequencer(Sequencer):
    """Output-stationary (MAC or FMA): ``for i < mt: for j < nt:`` a tile of ``kt`` beats, beat k =
    ``{a: A[a_addr + i*kt + k], w: W[w_addr + j*kt + k], last: k == kt-1}``; result row q of tile
    (i, j) -> ``C[c_addr + j*c_stride + i*R + q]`` (added if ``acc``)."""

    kind = "os"

    def feeds(self, f):
        nest = Nest((f.mt, f.nt, f.kt), {"a": (f.a_addr, (f.kt, 0, 1)), "w": (f.w_addr, (0, f.kt, 1))})
        return [Feed("operands", nest, {"a": "a", "w": "w"}, lambda n: {"last": n.last[2]})]

    def collect(self, f):
        R = self.geometry.rows
        nest = Nest((f.mt, f.nt, R), {"c": (f.c_addr, (R, f.c_stride, 1))})
        return Collect(nest, lambda n: f.acc)


class WsSequencer(Sequencer):
    """Weight-stationary: ``for j < nt: for kk < kt:`` R weight beats ``W[w_addr + (j*kt + kk)*R +
    b]`` (bottom row first), then activation rows ``{a: A[a_addr + kk*mb + m], last: m == mb-1}``;
    result row m -> ``C[c_addr + j*c_stride + m]`` (added if ``kk > 0`` or ``acc``)."""

    kind = "ws"

    def feeds(self, f):
        R = self.geometry.rows
        weights = Nest((f.nt, f.kt, R), {"w": (f.w_addr, (f.kt * R, R, 1))})
        acts = Nest((f.nt, f.kt, f.mb), {"a": (f.a_addr, (0, f.mb, 1))})
        return [
            Feed("weights", weights, {"w": None}),
            Feed("activations", acts, {"a": "a"}, lambda n: {"last": n.last[2]}),
        ]

    def collect(self, f):
        nest = Nest((f.nt, f.kt, f.mb), {"c": (f.c_addr, (f.c_stride, 0, 1))})
        return Collect(nest, lambda n: f.acc | (n.idx[1] != 0))


class LutSequencer(Sequencer):
    """LUT core: ``for j < nt: for i < mt: for kk < kt:`` activation beat ``{a: A[a_addr + i*kt +
    kk], last: kk == kt-1, wlast}``. Weights (b beats per tile, plane 0 first): kt == 1: one tile
    ``W[w_addr + j*b + p]`` per j (``wlast = i == mt-1``); else one tile ``W[w_addr + (j*kt +
    kk)*b + p]`` per activation beat (``wlast = 1``). Result (j, i) -> ``C[c_addr + j*c_stride +
    i]`` (added if ``acc``)."""

    kind = "lut"

    def feeds(self, f):
        b = self.geometry.planes
        one_k = f.kt == 1
        # kt == 1: the i and kk levels have one iteration each, so j advances by kt*b = b rows.
        weights = Nest((f.nt, Mux(one_k, 1, f.mt), f.kt, b), {"w": (f.w_addr, (f.kt * b, 0, b, 1))})
        acts = Nest((f.nt, f.mt, f.kt), {"a": (f.a_addr, (0, f.kt, 1))})
        return [
            Feed("weights", weights, {"w": None}),
            Feed("acts", acts, {"a": "a"}, lambda n: {"last": n.last[2], "wlast": Mux(one_k, n.last[1], 1)}),
        ]

    def collect(self, f):
        nest = Nest((f.nt, f.mt), {"c": (f.c_addr, (f.c_stride, 1))})
        return Collect(nest, lambda n: f.acc)

    def result_data(self, payload):
        return Value.cast(payload)


SEQUENCERS: dict[str, type[Sequencer]] = {"os": OsSequencer, "ws": WsSequencer, "lut": LutSequencer}


def sequencer_for(geometry) -> Sequencer:
    """The sequencer of ``geometry.kind`` (a :class:`tpegen.hw.system.params.SystemGeometry`)."""
    cls = SEQUENCERS.get(geometry.kind)
    if cls is None:
        raise ConfigError("array kind", "one of " + ", ".join(SEQUENCERS), geometry.kind)
    return cls(geometry)


def addr_shape(depth: int) -> Shape:
    """Shape of a row address of a memory of ``depth`` rows (that of its ``lib.memory`` ports)."""
    return unsigned(max(0, (depth - 1).bit_length()))
