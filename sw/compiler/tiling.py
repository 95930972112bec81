"""Tiling of one GEMM in array units: block sizes, loop order and the EXEC steps they give.

Every memory is split into two halves used alternately (double buffering; one buffer when a
single block needs more than half). Three loop orders are considered: *A-stationary* (a block of
A with all of K stays while W blocks stream past; W is read once per A block), *W-stationary* (the
converse) and *K-split* (an output block accumulates over K chunks in the accumulator,
``acc = 1``; A is read once per N block and W once per M block; integer families only -- the FMA
engine cannot add in the accumulator, so its whole K must fit one scratchpad half, or the whole
scratchpad with single buffering, else :class:`~tpegen.errors.ConfigError`). Serpentine orders
reuse the blocks still resident at a turn.

Block sizes are chosen by cost = estimated cycles + :data:`TRAFFIC_WEIGHT` x host-traffic beats:
large blocks minimise traffic, small first blocks start the array early (the first loads are not
hidden), so small GEMMs are cut finer than large ones. :func:`rank_tilings` estimates in closed
form (the first loads, then the busiest unit, then the last store);
:class:`~tpegen.sw.compiler.emit.Emitter` re-costs the best few exactly when their programs are short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tpegen.errors import ConfigError
from tpegen.hw.system.isa import Format
from tpegen.hw.system.params import SystemGeometry

TRAFFIC_WEIGHT = 1.0  # cycles one beat of host traffic costs on top of the cycle estimate
MAX_TILES = 255  # mt / nt fields
MAX_ROWS = 0xFFFF  # rows / seg / kt / mb fields


@dataclass(frozen=True)
class Src:
    """Host placement of an operand or result: block b row r at ``addr + (b*stride + r)*pitch``."""

    name: str
    addr: int
    stride: int  # rows per block
    pitch: int
    produced: bool = False  # written by an earlier STORE of this program (a hazard resource)


@dataclass(frozen=True)
class QTable:
    """Requantization parameters in host memory: ``rows`` Q rows at ``addr``; ``per_row`` 0: one
    row per n-unit (lane = channel), 1: channels packed ``acc_lanes`` per row."""

    addr: int
    rows: int
    per_row: bool


@dataclass
class Op:
    """One GEMM in array units (``mu`` x ``ku`` x ``nu``) with its operands, result and STORE format."""

    label: str
    mu: int
    nu: int
    ku: int
    a: Src
    w: Src
    out: Src
    fmt: Format
    relu: bool = False
    q: QTable | None = None


@dataclass(frozen=True)
class Tiling:
    """Loop order and block sizes of one GEMM (in units, see the module docstring).

    ``order``: ``A`` (A blocks of ``a_block`` m-units with all of K stay while W blocks stream),
    ``W`` (the converse) or ``K`` (output blocks accumulate over K chunks). Each EXEC covers
    ``em x en`` units and ``kt`` k-units."""

    order: str
    a_block: int
    w_block: int
    em: int
    en: int
    kt: int
    ku: int

    @property
    def nk(self) -> int:
        return -(-self.ku // self.kt)

    def describe(self) -> str:
        names = {"A": "A-stationary", "W": "W-stationary", "K": "K-split"}
        return (
            f"{names[self.order]}: A block {self.a_block} m-units x {self.kt} k-units, W block "
            f"{self.w_block} n-units x {self.kt} k-units, EXEC {self.em} x {self.en} units, "
            f"{self.nk} K chunk(s) of {self.kt}"
        )


def _blocks(n: int, size: int, reverse: bool = False) -> list[tuple[int, int]]:
    out = [(s, min(size, n - s)) for s in range(0, n, size)]
    return out[::-1] if reverse else out


def _candidates(limit: int) -> list[int]:
    """Block sizes worth trying up to ``limit``: small ones, even splits and a geometric ladder."""
    vals = set(range(1, min(limit, 8) + 1)) | {-(-limit // q) for q in range(1, 17)}
    x = 8.0
    while x < limit:
        vals.add(int(x))
        x *= 1.5
    return sorted(v for v in vals if 1 <= v <= limit)


@dataclass(frozen=True)
class _Costs:
    """What the cost model needs of a design: row pitches, bandwidth, latencies, EXEC timing."""

    g: SystemGeometry
    pa: int
    pw: int
    po: int
    wr: int
    cr: int
    read_latency: int
    write_latency: int
    feed: int

    def load(self, rows: int, pitch: int, count: int = 1) -> float:
        """Cycles of ``count`` LOADs moving ``rows`` rows in all (about one burst per page)."""
        nbytes = rows * pitch
        return nbytes / self.g.axi_bytes + (count + nbytes / 4096) * self.read_latency + count

    def exec(self, em: int, en: int, kt: int) -> int:
        """Cycles of one EXEC of ``em x en`` units and ``kt`` k-units (the execute unit's contract)."""
        from tpegen.sim.system_exec_timing import array_cycles

        ws = self.g.kind == "ws"
        f = {"mt": 1 if ws else em, "nt": en, "kt": kt, "mb": em if ws else 1}
        return self.feed + array_cycles(self.g, f) + 1

    def store(self, rows: int, count: int = 1) -> float:
        return rows * (self.po // self.g.axi_bytes + 2) + count * (self.write_latency + 1)


def _estimate(c: _Costs, t: Tiling, mu: int, nu: int, double: bool) -> tuple[float, int, int]:
    """(estimated cycles, host bytes, commands) of tiling ``t``: the first blocks' loads, then the busiest
    unit (loads, EXECs, STOREs overlap when double-buffered, loads and EXECs add up otherwise),
    then the last STORE. Partial edge blocks are costed as full ones."""
    ku, em, en, kt = t.ku, t.em, t.en, t.kt
    nm, nn = -(-mu // em), -(-nu // en)
    if t.order == "A":
        na, nw = -(-mu // t.a_block), -(-nu // t.w_block)
        a_rows, w_rows, a_loads, w_loads = mu * ku, na * nu * ku * c.wr, na, na * nw
        n_exec, n_store = na * nw * -(-t.a_block // em), na * nw * -(-t.a_block // em)
    elif t.order == "W":
        nw, na = -(-nu // t.w_block), -(-mu // t.a_block)
        a_rows, w_rows, a_loads, w_loads = nw * mu * ku, nu * ku * c.wr, nw * na, nw
        n_exec, n_store = nw * na * -(-t.w_block // en), nw * na * -(-t.w_block // en)
    else:
        nk = t.nk
        a_rows, w_rows, a_loads, w_loads = nn * mu * ku, nm * nu * ku * c.wr, nm * nn * nk, nm * nn * nk
        n_exec, n_store = nm * nn * nk, nm * nn
    first = c.load(t.a_block * kt, c.pa) + c.load(t.w_block * kt * c.wr, c.pw)
    loads = c.load(a_rows, c.pa, a_loads) + c.load(w_rows, c.pw, w_loads) - first
    execs = n_exec * c.exec(em, en, kt)
    last = c.store(em * en * c.cr)
    stores = c.store(mu * nu * c.cr, n_store) - last
    body = max(loads, execs, stores) if double else max(loads + execs, stores)
    return first + body + last, a_rows * c.pa + w_rows * c.pw, a_loads + w_loads + n_exec + n_store


def _ranked(g: SystemGeometry, op: Op, caps: tuple[int, int, int]) -> list[tuple[float, int, Tiling]]:
    """Feasible tilings with buffers of ``caps`` = (A, W, C) rows as (cost, commands, tiling),
    cheapest first. Cost: estimated cycles (:func:`_estimate`) plus :data:`TRAFFIC_WEIGHT`
    cycles per beat of host traffic."""
    from tpegen.hw.system.execute import ExecuteUnit
    from tpegen.sim.system_timing import MemoryTiming

    a_cap, w_cap, c_cap = caps
    wr, cr, mu, nu, ku = w_rows_per_unit(g), c_rows_per_unit(g), op.mu, op.nu, op.ku
    if cr > c_cap:
        return []
    mem = MemoryTiming()
    costs = _Costs(
        g, op.a.pitch, op.w.pitch, op.out.pitch, wr, cr, mem.read_latency, mem.write_latency,
        ExecuteUnit.FEED_LATENCY,
    )  # fmt: skip
    double = caps[0] < g.a_depth
    ws = g.kind == "ws"
    em_limit = MAX_ROWS if ws else MAX_TILES
    found: dict[Tiling, tuple[float, int]] = {}

    def offer(t: Tiling) -> None:
        cycles, nbytes, commands = _estimate(costs, t, mu, nu, double)
        found[t] = (cycles + TRAFFIC_WEIGHT * nbytes / g.axi_bytes, commands)

    if ku <= a_cap and ku * wr <= w_cap:  # all of K in one EXEC
        sa_max = min(mu, a_cap // ku, *((c_cap // cr, em_limit) if ws else ()))
        for sa in _candidates(sa_max):  # A-stationary
            em = sa if ws else min(sa, c_cap // cr, MAX_TILES)
            for en in _candidates(min(nu, w_cap // (ku * wr), c_cap // (cr * em), MAX_TILES)):
                offer(Tiling("A", sa, en, em, en, ku, ku))
        for sw in _candidates(min(nu, w_cap // (ku * wr))):  # W-stationary
            for em in _candidates(min(mu, a_cap // ku, em_limit, c_cap // cr)):
                en = min(sw, MAX_TILES, c_cap // (cr * em))
                offer(Tiling("W", em, sw, em, en, ku, ku))
    if not g.fp and w_cap >= wr:  # K split into chunks accumulating in C
        for em in _candidates(min(mu, a_cap, em_limit, c_cap // cr)):
            for en in _candidates(min(nu, w_cap // wr, MAX_TILES, c_cap // (cr * em))):
                kt = min(ku, a_cap // em, w_cap // (en * wr), MAX_ROWS)
                offer(Tiling("K", em, en, em, en, kt, ku))
    return sorted(((cost, n, t) for t, (cost, n) in found.items()), key=lambda x: x[0])


def w_rows_per_unit(g: SystemGeometry) -> int:
    """W rows of one (n, k) unit: OS 1, WS R (a weight tile), LUT b (bit planes)."""
    return {"os": 1, "ws": g.rows, "lut": g.planes}[g.kind]


def c_rows_per_unit(g: SystemGeometry) -> int:
    """Accumulator rows of one (m, n) unit: OS R (a tile's result rows), WS and LUT 1."""
    return g.rows if g.kind == "os" else 1


def rank_tilings(g: SystemGeometry, op: Op) -> list[tuple[float, int, Tiling]]:
    """Tilings of ``op`` as (estimated cost, commands, tiling), cheapest first: with double
    buffering if any fits, else with single buffers; ConfigError naming the memory that is too
    small when neither exists."""
    halves = (g.a_depth // 2, g.w_depth // 2, g.acc_depth // 2)
    full = (g.a_depth, g.w_depth, g.acc_depth)
    for caps in (halves, full):
        ranked = _ranked(g, op, caps)
        if ranked:
            return ranked
    kib = g.system
    if c_rows_per_unit(g) > g.acc_depth:
        raise ConfigError(
            "system.accumulator_kib",
            f"at least {c_rows_per_unit(g)} accumulator rows",
            f"{kib.accumulator_kib} KiB",
        )
    if g.fp:  # the whole K of a tile must fit one buffer: FMA cannot accumulate in C
        if op.ku > g.a_depth:
            raise ConfigError(
                "system.scratchpad_a_kib",
                f"large enough for a whole K column on the FMA engine ({op.ku} rows of "
                f"{g.a_row_bits} bits; it has {g.a_depth})",
                f"{kib.scratchpad_a_kib} KiB",
            )
        raise ConfigError(
            "system.scratchpad_w_kib",
            f"large enough for a whole K column on the FMA engine ({op.ku} rows of "
            f"{g.w_row_bits} bits; it has {g.w_depth})",
            f"{kib.scratchpad_w_kib} KiB",
        )
    raise ConfigError(
        "system.scratchpad_w_kib",
        f"at least {w_rows_per_unit(g)} W rows (one weight tile)",
        f"{kib.scratchpad_w_kib} KiB",
    )


def steps(t: Tiling, mu: int, nu: int) -> Iterator[tuple]:
    """EXEC steps: (A block, W block, (m0, em), (n0, en), (k0, kt), first, last) with blocks as
    (start, count, k0, kt); serpentine orders let the block at a turn stay resident."""
    ku = t.ku
    if t.order == "A":
        for i, (ma, ca) in enumerate(_blocks(mu, t.a_block)):
            for n0, cn in _blocks(nu, t.en, reverse=i % 2 == 1):
                for m0, cm in _blocks(ca, t.em):
                    yield (ma, ca, 0, ku), (n0, cn, 0, ku), (ma + m0, cm), (n0, cn), (0, ku), True, True
    elif t.order == "W":
        for i, (nw, cw) in enumerate(_blocks(nu, t.w_block)):
            for m0, cm in _blocks(mu, t.em, reverse=i % 2 == 1):
                for n0, cn in _blocks(cw, t.en):
                    yield (m0, cm, 0, ku), (nw, cw, 0, ku), (m0, cm), (nw + n0, cn), (0, ku), True, True
    else:
        turn = 0
        for i, (m0, cm) in enumerate(_blocks(mu, t.em)):
            for n0, cn in _blocks(nu, t.en, reverse=i % 2 == 1):
                ks = _blocks(ku, t.kt, reverse=turn % 2 == 1)
                turn += 1
                for j, (k0, ck) in enumerate(ks):
                    yield (
                        (m0, cm, k0, ck),
                        (n0, cn, k0, ck),
                        (m0, cm),
                        (n0, cn),
                        (k0, ck),
                        j == 0,
                        j == len(ks) - 1,
                    )
