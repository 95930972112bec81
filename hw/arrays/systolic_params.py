"""Parameters of :class:`tpegen.hw.arrays.systolic.SystolicArray` (the ``array:`` section of a MAC or
FMA systolic config), importable without Amaranth: loading a config and running the timing model
(``tpegen sim``) need only these numbers. Shapes are Amaranth objects built on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

if TYPE_CHECKING:
    from amaranth import ShapeLike
    from amaranth.lib import wiring

OS_CELLS = ("three_register", "two_register")  # output-stationary register budgets (array.os_cell)


class DatapathParams(Protocol):
    """What a PE's parameters provide to the systolic cell (:mod:`tpegen.hw.pe.cell`): operand and
    accumulator shapes, the dataflow, and the combinational datapath component."""

    a_shape: ShapeLike
    w_shape: ShapeLike
    acc_shape: ShapeLike
    dataflow: str

    def datapath(self) -> wiring.Component: ...


@dataclass(frozen=True)
class SystolicParams:
    """Shape and cell options of a systolic array: ``rows`` x ``cols`` cells (each 1..128) of the PE.

    Parameters (the ``array:`` section of a config; the defaults are the original array):

    * ``os_cell``: output-stationary register budget, ``"three_register"`` (accumulator, result
      hold, drain: one tile per ``max(K, rows)`` cycles) or ``"two_register"`` (accumulator and
      drain: one tile per ``max(K, 2 rows - 1)`` cycles, results one cycle earlier). Only
      ``"three_register"`` for weight-stationary arrays.
    * ``reset_less_datapath``: datapath registers (operands, accumulators, partial sums, weights,
      skew/de-skew) without reset; control keeps its reset. Outputs are unchanged.
    * ``operand_gating``: forwarded operands (cells and input skew) load only with a valid token.
      Outputs and timing are unchanged.
    """

    rows: int
    cols: int
    pe: DatapathParams
    os_cell: str = "three_register"
    reset_less_datapath: bool = False
    operand_gating: bool = False

    def __post_init__(self) -> None:
        check_int("array.rows", self.rows, 1, 128)
        check_int("array.cols", self.cols, 1, 128)
        check_choice("array.os_cell", self.os_cell, OS_CELLS)
        if self.os_cell != OS_CELLS[0] and self.pe.dataflow != "os":
            raise ConfigError(
                "array.os_cell", f"{OS_CELLS[0]!r} (an option of output-stationary arrays only)", self.os_cell
            )
        check_bool("array.reset_less_datapath", self.reset_less_datapath)
        check_bool("array.operand_gating", self.operand_gating)

    @property
    def os_drain_interval(self) -> int:
        """Output-stationary: minimum cycles between two tiles' ``last`` beats (``rows`` for the
        three-register cell, ``2 rows - 1`` for the two-register cell)."""
        return self.rows if self.os_cell == "three_register" else 2 * self.rows - 1

    @property
    def os_result_latency(self) -> int:
        """Output-stationary: cycles from a tile's ``last`` beat to its result row 0 (``rows +
        cols``, one fewer for the two-register cell)."""
        return self.rows + self.cols - (self.os_cell == "two_register")

    def cell_options(self) -> dict[str, bool]:
        return {"reset_less": self.reset_less_datapath, "operand_gating": self.operand_gating}

    @property
    def dataflow(self) -> str:
        return self.pe.dataflow

    @property
    def out_shape(self):
        """Shape of one result lane: the PE's ``out_shape`` if it has one (e.g. an FMA PE whose
        partial sums travel in a relaxed format), else its accumulator shape."""
        return getattr(self.pe, "out_shape", self.pe.acc_shape)

    @property
    def edge_normalized(self) -> bool:
        """True when partial sums leave the array through the PE's edge ``normalizer()``."""
        return self.out_shape != self.pe.acc_shape

    def result_layout(self):
        """Layout of one ``results`` beat: ``cols`` result lanes and ``last``."""
        from amaranth.lib import data

        return data.StructLayout({"data": data.ArrayLayout(self.out_shape, self.cols), "last": 1})
