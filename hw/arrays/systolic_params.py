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
BACKPRESSURE = ("auto", "stall", "queue")  # how results.ready holds the array back (array.backpressure)
# `auto` queues the results of arrays of more than this many cells and stalls smaller ones.
QUEUE_MIN_CELLS = 256


class DatapathParams(Protocol):
    """What a PE's parameters provide to the systolic cell (:mod:`tpegen.hw.pe.cell`): operand and
    accumulator shapes, the dataflow, and the datapath component. A datapath whose operands reach
    ``acc_out`` only some cycles later (registered multiplier) says so with an optional
    ``pipeline_latency`` attribute (:func:`pe_latency`; absent means 0, combinational)."""

    a_shape: ShapeLike
    w_shape: ShapeLike
    acc_shape: ShapeLike
    dataflow: str

    def datapath(self) -> wiring.Component: ...


def pe_latency(pe: DatapathParams) -> int:
    """Cycles between an operand beat entering ``pe``'s datapath and its accumulation: its
    ``pipeline_latency`` (0 for a combinational datapath, which has none)."""
    return getattr(pe, "pipeline_latency", 0)


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
    * ``backpressure``: how a ``results`` beat that is not taken holds the array back. ``"stall"``
      (the original array): every register of the array holds for that cycle, through one enable
      that ``results.ready`` drives combinationally into every flop -- a net of R x C x (register
      bits) loads. ``"queue"``: the array never stops; its results pass through a queue of
      :attr:`result_queue_depth` beats (straight through while it is empty and the consumer is
      ready) and an input beat that completes results is accepted only when the queue has room for
      all of them (credits, as Gemmini admits work against its output queue), so ``results.ready``
      reaches only the queue. ``"auto"`` (default): ``"queue"`` for arrays of more than 256 cells.
      With results always taken both give the same outputs and cycles.
    """

    rows: int
    cols: int
    pe: DatapathParams
    os_cell: str = "three_register"
    reset_less_datapath: bool = False
    operand_gating: bool = False
    backpressure: str = "auto"

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
        check_choice("array.backpressure", self.backpressure, BACKPRESSURE)

    @property
    def queued(self) -> bool:
        """True when results leave through a queue and inputs wait for credits (``backpressure``)."""
        if self.backpressure == "auto":
            return self.rows * self.cols > QUEUE_MIN_CELLS
        return self.backpressure == "queue"

    @property
    def results_per_credit_beat(self) -> int:
        """Result beats an input beat that completes results reserves: a tile's ``rows`` beats
        (output-stationary ``last`` beat), one (weight-stationary activation beat)."""
        return self.rows if self.dataflow == "os" else 1

    @property
    def result_queue_depth(self) -> int:
        """Beats the result queue holds: the most result beats in flight when inputs arrive as
        fast as the array takes them and results are always taken, so the credits never hold an
        input back then (timing as with ``"stall"``). Weight-stationary: a result leaves ``rows +
        cols - 1`` cycles after its activation beat and its credit is free a cycle later, so
        ``rows + cols``. Output-stationary: tile t's ``last`` beats come at least G cycles apart and
        its row q leaves ``D + q`` cycles after it (:func:`~tpegen.sim.systolic_timing.os_cell_timing`),
        so admitting a tile needs ``rows`` beats plus those of the tiles j = 1, 2, ... before it that
        are still in flight, ``clamp(rows - (j G - D), 0, rows)`` each."""
        R = self.rows
        if self.dataflow != "os":
            return R + self.cols
        gap, latency = self.os_drain_interval, self.os_result_latency
        return R + sum(min(R, max(0, R - (j * gap - latency))) for j in range(1, latency // gap + 2))

    @property
    def os_drain_interval(self) -> int:
        """Output-stationary: minimum cycles between two tiles' ``last`` beats (``rows`` for the
        three-register cell, ``2 rows - 1`` for the two-register cell)."""
        return self.rows if self.os_cell == "three_register" else 2 * self.rows - 1

    @property
    def os_result_latency(self) -> int:
        """Output-stationary: cycles from a tile's ``last`` beat to its result row 0 (``rows +
        cols``, one fewer for the two-register cell, plus the PE's :attr:`pe_latency`)."""
        return self.rows + self.cols - (self.os_cell == "two_register") + self.pe_latency

    @property
    def pe_latency(self) -> int:
        """Cycles every cell's accumulation trails its operands (:func:`pe_latency`): the array
        delays its capture/shift control by as many, and results leave that much later."""
        return pe_latency(self.pe)

    def cell_options(self) -> dict[str, bool]:
        return {"reset_less": self.reset_less_datapath, "operand_gating": self.operand_gating}

    @property
    def dataflow(self) -> str:
        return self.pe.dataflow

    @property
    def out_shape(self):
        """Shape of one result lane: the PE's ``out_shape`` if it has one (e.g. an FMA PE whose
        partial sums travel in a relaxed format, a MAC PE with carry-save pairs), else its
        accumulator shape."""
        return getattr(self.pe, "out_shape", self.pe.acc_shape)

    @property
    def pe_encodes_at_edge(self) -> bool:
        """True when weights enter the columns through the PE's ``edge_encoder()`` (a shared
        encoder, ``pe.encoder: per_column``)."""
        return getattr(self.pe, "shared_encoder", False)

    @property
    def edge_normalized(self) -> bool:
        """True when partial sums leave the array through the PE's edge ``normalizer()``."""
        return self.out_shape != self.pe.acc_shape

    def result_layout(self):
        """Layout of one ``results`` beat: ``cols`` result lanes and ``last``."""
        from amaranth.lib import data

        return data.StructLayout({"data": data.ArrayLayout(self.out_shape, self.cols), "last": 1})
