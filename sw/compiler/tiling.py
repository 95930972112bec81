"""Tiling of one GEMM in array units: block sizes, loop order and the EXEC steps they give.

Every memory is split into two halves used alternately (double buffering; one buffer when a
single block needs more than half). Three loop orders are costed (host bytes plus a fixed cost per
command, :data:`COMMAND_COST_BEATS`) and the cheapest kept: *A-stationary* (a block of A with all
of K stays while W blocks stream past; W is read once per A block), *W-stationary* (the converse)
and *K-split* (an output block accumulates over K chunks in the accumulator, ``acc = 1``; A is
read once per N block and W once per M block; integer families only -- the FMA engine cannot add
in the accumulator, so its whole K must fit one scratchpad half, or the whole scratchpad with
single buffering, else :class:`~tpegen.errors.ConfigError`). Serpentine orders reuse the blocks
still resident at a turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tpegen.errors import ConfigError
from tpegen.hw.system.isa import Format
from tpegen.hw.system.params import SystemGeometry

COMMAND_COST_BEATS = 32  # tiling cost of one command in beats of host bandwidth (about a burst latency)
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
    vals = set(range(1, min(limit, 32) + 1)) | {-(-limit // q) for q in range(1, 65)}
    x = 32.0
    while x < limit:
        vals.add(int(x))
        x *= 1.25
    return sorted(v for v in vals if 1 <= v <= limit)


def _best_tiling(g: SystemGeometry, op: Op, caps: tuple[int, int, int]) -> Tiling | None:
    """The cheapest feasible tiling with buffers of ``caps`` = (A, W, C) rows, or None."""
    a_cap, w_cap, c_cap = caps
    wr, cr, mu, nu, ku = w_rows_per_unit(g), c_rows_per_unit(g), op.mu, op.nu, op.ku
    ws = g.kind == "ws"
    em_limit = MAX_ROWS if ws else MAX_TILES
    pa, pw = op.a.pitch, op.w.pitch
    per_cmd = COMMAND_COST_BEATS * g.axi_bytes
    best: tuple[float, Tiling] | None = None

    def offer(cost: float, t: Tiling) -> None:
        nonlocal best
        if best is None or cost < best[0]:
            best = (cost, t)

    if cr > c_cap:
        return None
    if ku <= a_cap and ku * wr <= w_cap:
        # A-stationary
        sa = min(mu, a_cap // ku, c_cap // cr if ws else mu, em_limit if ws else mu)
        em = sa if ws else min(sa, c_cap // cr, MAX_TILES)
        en = min(nu, w_cap // (ku * wr), c_cap // (cr * em), MAX_TILES)
        na, nw = -(-mu // sa), -(-nu // en)
        cmds = na + na * nw * (1 + 2 * -(-sa // em))
        offer(mu * ku * pa + na * nu * ku * wr * pw + cmds * per_cmd, Tiling("A", sa, en, em, en, ku, ku))
        # W-stationary
        sw = min(nu, w_cap // (ku * wr))
        em = min(mu, a_cap // ku, em_limit, c_cap // cr)
        en = min(sw, MAX_TILES, max(1, c_cap // (cr * em)))
        em = min(em, c_cap // (cr * en))
        nw, na = -(-nu // sw), -(-mu // em)
        cmds = nw + nw * na * (1 + 2 * -(-sw // en))
        offer(nu * ku * wr * pw + nw * mu * ku * pa + cmds * per_cmd, Tiling("W", em, sw, em, en, ku, ku))
    if not g.fp and a_cap >= 1 and w_cap >= wr:
        for em in _candidates(min(mu, a_cap, em_limit, c_cap // cr)):
            for en in _candidates(min(nu, w_cap // wr, MAX_TILES, c_cap // (cr * em))):
                kt = min(ku, a_cap // em, w_cap // (en * wr), MAX_ROWS)
                nm, nn, nk = -(-mu // em), -(-nu // en), -(-ku // kt)
                cmds = nm * nn * (3 * nk + 1)
                cost = nn * mu * ku * pa + nm * nu * ku * wr * pw + cmds * per_cmd
                offer(cost, Tiling("K", em, en, em, en, kt, ku))
    return None if best is None else best[1]


def w_rows_per_unit(g: SystemGeometry) -> int:
    """W rows of one (n, k) unit: OS 1, WS R (a weight tile), LUT b (bit planes)."""
    return {"os": 1, "ws": g.rows, "lut": g.planes}[g.kind]


def c_rows_per_unit(g: SystemGeometry) -> int:
    """Accumulator rows of one (m, n) unit: OS R (a tile's result rows), WS and LUT 1."""
    return g.rows if g.kind == "os" else 1


def choose_tiling(g: SystemGeometry, op: Op) -> Tiling:
    """The cheapest tiling with double buffering, else with single buffers; ConfigError naming
    the memory that is too small when neither exists."""
    halves = (g.a_depth // 2, g.w_depth // 2, g.acc_depth // 2)
    full = (g.a_depth, g.w_depth, g.acc_depth)
    for caps in (halves, full):
        t = _best_tiling(g, op, caps)
        if t is not None:
            return t
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
