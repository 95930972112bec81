"""LUT tensor-core processing elements: the table precompute unit and the LUT dot-product unit.

The arithmetic is described in :mod:`tpegen.sim.lut` (symmetric +-1 bit planes, half tables with a
negation-select sign bit and offline-complemented index bits, rowsum correction). Both units also
build the unoptimized variants of LUT Tensor Core's ablation: full ``2^g``-entry tables and the index
complement in the unit instead of the driver.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


def _tree_sum(values: list[Value]) -> Value:
    """Balanced adder tree (Amaranth widens each sum, so no intermediate overflow)."""
    values = list(values)
    while len(values) > 1:
        paired = [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            paired.append(values[-1])
        values = paired
    return values[0]


def table_layout(group_size: int, table_bits: int, *, full: bool = False) -> data.ArrayLayout:
    """One table: ``2^(g-1)`` (half) or ``2^g`` (``full``) signed entries of ``table_bits``."""
    return data.ArrayLayout(signed(table_bits), 1 << (group_size - (0 if full else 1)))


class LutTablePrecompute(wiring.Component):
    """Table precompute unit: ``g`` activations -> the stored entries of their +-1 table.

    Purely combinational adder network. Half table (default): ``2^g - 2`` adders; starting from
    ``[a_{g-1}]``, step ``j = 0..g-2`` forms ``x - a_j`` and ``x + a_j`` for every partial entry
    ``x``, so ``table[v] = a_{g-1} + sum_{j<g-1} (2 v_j - 1) a_j`` (``2^(g-1)`` entries). Full table
    (``full``): the same network over every activation, starting from ``[-a_0, a_0]`` (one negation,
    ``2^(g+1) - 4`` adders), so ``table[v] = sum_j (2 v_j - 1) a_j`` (``2^g`` entries). In both the
    last entry is the group sum. One unit serves every weight column that reads the group.

    Ports: ``a`` In(g x signed(act_bits)), ``table`` Out(entries x signed(table_bits)).
    Latency 0 (combinational). ``table_bits >= act_bits + floor(log2 g) + 1`` avoids overflow.
    """

    def __init__(self, group_size: int, act_bits: int, table_bits: int, *, full: bool = False):
        self.group_size = group_size
        self.act_bits = act_bits
        self.table_bits = table_bits
        self.full = full
        super().__init__(
            {
                "a": In(data.ArrayLayout(signed(act_bits), group_size)),
                "table": Out(table_layout(group_size, table_bits, full=full)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.group_size
        if self.full:
            entries: list[Value] = [-self.a[0], self.a[0]]
            steps = range(1, g)
        else:
            entries = [self.a[g - 1]]
            steps = range(g - 1)
        for j in steps:
            aj = self.a[j]
            entries = [x - aj for x in entries] + [x + aj for x in entries]
        for v, value in enumerate(entries):
            m.d.comb += self.table[v].eq(value)
        return m


class LutDotProduct(wiring.Component):
    """LUT dot-product unit with bit-serial shift-accumulate (one output element of the tile).

    Each enabled cycle it processes one weight bit plane of ``tile_k`` groups: for group ``k`` it
    reads ``tables[k][index[k][0:g-1]]``, negates it when the sign bit ``index[k][g-1]`` is 0 (the
    low index bits were complemented offline, so no index inverter), sums the ``tile_k`` values,
    shifts the sum left by ``shift`` (the plane's bit index), subtracts ``rowsum`` when ``subtract``
    is set (plane 0, symmetric-encoding correction) and adds it into the accumulator.

    Variants (LUT Tensor Core's ablation): ``complement_index`` takes raw plane bits and XORs the low
    ``g-1`` index bits with the inverted sign bit before the lookup (``g-1`` XOR gates per lookup);
    ``full_table`` reads ``2^g``-entry tables at the whole g-bit index, without negation.

    Ports: ``tables`` In(tile_k x entries x signed(table_bits)), ``index`` In(tile_k x unsigned(g)),
    ``shift`` In(range(planes)), ``rowsum`` In(signed), ``subtract``/``en``/``clear`` In(1);
    ``acc`` Out(signed(acc_width)) is the accumulator register, ``next`` Out(signed(acc_width)) the
    combinational ``acc + contribution`` (the value written when ``en``). With ``clear`` the register
    is reset to 0 instead (the caller takes ``next`` as the finished result). Sums wrap modulo
    ``2^acc_width``. Throughput one plane per cycle; ``acc`` is updated one cycle after ``en``.
    """

    def __init__(
        self,
        *,
        group_size: int,
        tile_k: int,
        planes: int,
        table_bits: int,
        rowsum_bits: int,
        acc_width: int,
        full_table: bool = False,
        complement_index: bool = False,
    ):
        if full_table and complement_index:
            raise ValueError("LutDotProduct: a full table is read at the raw index (no complement)")
        self.group_size = group_size
        self.tile_k = tile_k
        self.planes = planes
        self.acc_width = acc_width
        self.full_table = full_table
        self.complement_index = complement_index
        super().__init__(
            {
                "tables": In(data.ArrayLayout(table_layout(group_size, table_bits, full=full_table), tile_k)),
                "index": In(data.ArrayLayout(unsigned(group_size), tile_k)),
                "shift": In(range(max(planes, 2))),
                "rowsum": In(signed(rowsum_bits)),
                "subtract": In(1),
                "en": In(1),
                "clear": In(1),
                "acc": Out(signed(acc_width)),
                "next": Out(signed(acc_width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.group_size
        looked_up: list[Value] = []
        for k in range(self.tile_k):
            idx = self.index[k]
            if self.full_table:
                looked_up.append(self.tables[k][idx])
                continue
            if g == 1:
                entry = self.tables[k][0]
            elif self.complement_index:
                entry = self.tables[k][idx[: g - 1] ^ (~idx[g - 1]).replicate(g - 1)]
            else:
                entry = self.tables[k][idx[: g - 1]]
            looked_up.append(Mux(idx[g - 1], entry, -entry))
        psum = Signal(signed(len(_tree_sum(looked_up))))
        m.d.comb += psum.eq(_tree_sum(looked_up))
        shifted = psum << self.shift if self.planes > 1 else psum
        contrib = shifted - Mux(self.subtract, self.rowsum, 0)
        m.d.comb += self.next.eq(self.acc + contrib)
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(self.clear, 0, self.next))
        return m


def rowsum_bits(group_size: int, act_bits: int, tile_k: int) -> int:
    """Width of a row's activation sum over one K-tile (``tile_k * g`` activations)."""
    return act_bits + ceil_log2(tile_k * group_size) + 1
