"""The R x C mesh of systolic cells, built from repeated blocks so its Verilog grows with R + C.

An R x C array is R identical rows of C identical cells. Written hierarchically
(:mod:`tpegen.hw.hierarchy`) the mesh is one cell module, one row module of C cell instances
(:class:`CellRow`), and stacks of rows (:class:`RowStack`): a stack of 2^k rows is two stacks of
2^(k-1), and a stack of R rows chains the stacks of R's binary digits. Every bit of wiring is then
written O(log R) times instead of R times, and generating a 128 x 128 array costs about what a
row of 128 cells costs. Outside Verilog generation the same blocks are plain submodules.

How the cells' ports cross a row and a stack (the cells of :mod:`tpegen.hw.pe.cell`):

* ``a`` and the control token ``tok`` chain left to right along a row; each row has its own.
* ``w``, ``psum`` and ``load`` (the weight shadow chain) flow down: ``<p>_in`` of the top row,
  ``<p>_out`` of the bottom row. ``drain`` flows up: ``drain_in`` of the bottom row,
  ``drain_out`` of the top row.
* ``capture``, ``shift`` and ``load`` are per column and the same in every row.
* ``tok_out`` of the bottom and of the top row are visible (the array's drain and result
  control and operand gating use them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from amaranth import Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.hw.hierarchy import binary_blocks, shared_submodule, signature_of

# Cell ports that chain left to right inside a row (cell j's output feeds cell j + 1's input).
_CHAINED = {"a_in": "a_out", "tok_in": "tok_out"}
# Vertical links: port -> the port of the next row it connects to, and which way it flows.
_DOWN = {"w_in": "w_out", "psum_in": "psum_out", "load_in": "load_out"}
_UP = {"drain_in": "drain_out"}


class CellRow(wiring.Component):
    """``cols`` systolic cells chained left to right (``a`` and the control token).

    Ports:

    * ``en`` (only if ``gated``): every register of the row holds while low (the array's advance).
    * ``a_in``, ``tok_in``: enter cell 0; ``a_out`` leaves the last cell (unused by the array).
    * For every other port ``p`` of the cell, a lane array ``p`` whose lane j is cell j's port
      (inputs stay inputs, outputs outputs); ``tok_out`` lane j is the token leaving cell j.

    Latency and throughput: the cells' (one registered hop per cell); the row adds only wiring.

    Parameters: ``cell`` makes one cell (every cell of the row is the same), ``cols`` the number
    of cells, ``kind``/``key`` name the cell's shared module (:func:`shared_submodule`), ``gated``
    gives the row an ``en`` port (an array that never stalls has none).
    """

    def __init__(self, cell: Callable[[], wiring.Component], cols: int, *, kind: str, key: Any, gated: bool):
        self.cell, self.cols, self.cell_kind, self.cell_key, self.gated = cell, cols, kind, key, gated
        self._cell_signature = signature_of(cell)
        ports: dict[str, Any] = {"en": In(1)} if gated else {}
        for name, member in self._cell_signature.members.items():
            if name in _CHAINED or name == "a_out":
                ports[name] = member.flow(member.shape)
            else:
                ports[name] = member.flow(data.ArrayLayout(member.shape, cols))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        cells = [
            shared_submodule(
                m,
                f"pe_{j}",
                self.cell,
                kind=self.cell_kind,
                key=self.cell_key,
                enable=self.en if self.gated else None,
            )
            for j in range(self.cols)
        ]
        for j, cell in enumerate(cells):
            for name, member in self._cell_signature.members.items():
                if name in _CHAINED:
                    left = getattr(self, name) if j == 0 else getattr(cells[j - 1], _CHAINED[name])
                    m.d.comb += getattr(cell, name).eq(left)
                elif name == "a_out":
                    continue
                elif member.flow == In:
                    m.d.comb += getattr(cell, name).eq(getattr(self, name)[j])
                else:
                    m.d.comb += getattr(self, name)[j].eq(getattr(cell, name))
        m.d.comb += self.a_out.eq(cells[-1].a_out)
        return m


class RowStack(wiring.Component):
    """``height`` :class:`CellRow` s stacked top to bottom: the whole mesh of an array.

    Ports:

    * ``en`` (only if ``gated``): every register holds while low (the array's advance).
    * ``a_in``, ``tok_in``: lane arrays of ``height``; lane i enters row i (row 0 on top).
    * ``<p>_in`` of the top row and ``<p>_out`` of the bottom row for the downward links (``w``,
      ``psum``, ``load``); ``drain_in`` of the bottom row and ``drain_out`` of the top row.
    * ``tok_out``, ``tok_top``: the tokens leaving the bottom and the top row's cells (lane j: cell j).
    * Every other row input (``capture``, ``shift``, ``load``) once, driving every row.

    Latency and throughput: the cells'; the stack adds only wiring.

    Parameters: as :class:`CellRow`, plus ``height`` (rows).
    """

    def __init__(
        self,
        cell: Callable[[], wiring.Component],
        cols: int,
        height: int,
        *,
        kind: str,
        key: Any,
        gated: bool,
    ):
        self.cell, self.cols, self.height, self.cell_kind, self.cell_key = cell, cols, height, kind, key
        self.gated = gated
        self._row_signature = signature_of(self._row)
        ports: dict[str, Any] = {}
        for name, member in self._row_signature.members.items():
            if name in _CHAINED:
                ports[name] = In(data.ArrayLayout(member.shape, height))
            elif name != "a_out":
                ports[name] = member
        ports["tok_top"] = Out(self._row_signature.members["tok_out"].shape)
        super().__init__(ports)

    def _row(self) -> CellRow:
        return CellRow(self.cell, self.cols, kind=self.cell_kind, key=self.cell_key, gated=self.gated)

    def _stack(self, height: int) -> RowStack:
        return RowStack(
            self.cell, self.cols, height, kind=self.cell_kind, key=self.cell_key, gated=self.gated
        )

    def _blocks(self) -> list[tuple[int, Callable[[], wiring.Component], str, Any]]:
        """The blocks this stack is made of, top first: ``(height, factory, kind, key)``."""
        row = (1, self._row, f"{self.cell_kind}_row", (self.cell_key, self.cols, self.gated))
        if self.height == 1:
            return [row]
        heights = binary_blocks(self.height)
        if len(heights) == 1:  # a power of two: two halves
            heights = [self.height // 2] * 2
        return [
            row
            if h == 1
            else (
                h,
                lambda h=h: self._stack(h),
                f"{self.cell_kind}_rows{h}",
                (self.cell_key, self.cols, self.gated),
            )
            for h in heights
        ]

    def elaborate(self, platform) -> Module:
        m = Module()
        specs = self._blocks()
        first = 0
        blocks = []
        for n, (height, factory, kind, key) in enumerate(specs):
            block = shared_submodule(m, f"rows_{n}", factory, kind=kind, key=key, enable=None)
            for name in _CHAINED:  # rows first .. first + height - 1 of the per-row inputs
                lanes = getattr(self, name)
                width = Shape.cast(lanes.shape().elem_shape).width
                value = (
                    lanes[first]
                    if height == 1
                    else lanes.as_value()[first * width : (first + height) * width]
                )
                m.d.comb += getattr(block, name).eq(value)
            first += height
            blocks.append(block)
        for name, member in self._row_signature.members.items():
            if name in _CHAINED or name == "a_out":
                continue
            if name in _DOWN:
                m.d.comb += getattr(blocks[0], name).eq(getattr(self, name))
                for above, below in itertools.pairwise(blocks):
                    m.d.comb += getattr(below, name).eq(getattr(above, _DOWN[name]))
            elif name in _DOWN.values():
                m.d.comb += getattr(self, name).eq(getattr(blocks[-1], name))
            elif name in _UP:
                m.d.comb += getattr(blocks[-1], name).eq(getattr(self, name))
                for above, below in itertools.pairwise(blocks):
                    m.d.comb += getattr(above, name).eq(getattr(below, _UP[name]))
            elif name in _UP.values():
                m.d.comb += getattr(self, name).eq(getattr(blocks[0], name))
            elif name == "tok_out":
                top = blocks[0].tok_out if specs[0][0] == 1 else blocks[0].tok_top
                m.d.comb += [self.tok_out.eq(blocks[-1].tok_out), self.tok_top.eq(top)]
            elif member.flow == In:  # the same in every row: en, capture, shift, load
                m.d.comb += [getattr(block, name).eq(getattr(self, name)) for block in blocks]
        return m
