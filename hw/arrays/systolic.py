"""R x C systolic array of PE cells, output- or weight-stationary, with skew and de-skew built in.

Layering follows Gemmini (datapath -> cell -> array): :mod:`tpegen.hw.pe.mac` (or any datapath with
the same signature) computes, :mod:`tpegen.hw.pe.cell` registers and forwards, this module wires
R x C cells, skews the operand streams into the array, de-skews the results out of it, and applies
backpressure. Cycle-exact formulas for both dataflows live in :mod:`tpegen.sim.systolic_timing`.
"""

from __future__ import annotations

from amaranth import Const, EnableInserter, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from tpegen.hw.arrays.delay_line import delayed
from tpegen.hw.arrays.mesh import RowStack
from tpegen.hw.arrays.systolic_params import SystolicParams
from tpegen.hw.hierarchy import shared_submodule
from tpegen.hw.pe.cell import (
    OutputStationaryCell,
    Token,
    TwoRegisterOutputStationaryCell,
    WeightStationaryCell,
)


def _delay_stages(
    m: Module, value, stages: int, name: str, *, reset_less: bool = False, enables=None
) -> list:
    """``value`` and its copies delayed by 1 .. ``stages`` registers (in the enclosing clock-enabled
    domain); stage n loads only while ``enables[n]`` if given, and has no reset if ``reset_less``."""
    out = [value]
    for n in range(stages):
        reg = Signal.like(value, name=f"{name}_d{n}", **({"reset_less": True} if reset_less else {}))
        if enables is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(enables[n]):
                m.d.sync += reg.eq(value)
        value = reg
        out.append(value)
    return out


class _Beat:
    """The core's result beat before the result queue: ``valid`` and ``payload`` (the layout of a
    ``results`` beat)."""

    def __init__(self, layout):
        self.valid = Signal(name="core_valid")
        self.payload = Signal(layout, name="core_result")


def _tok_into(row_in, row_out, col: int):
    """The token entering cell ``col`` of a row whose tokens enter as ``row_in`` and leave cell j as
    ``row_out[j]``."""
    return row_in if col == 0 else row_out[col - 1]


def _token(m: Module, fire, last, after_last: Signal) -> Signal:
    """Control token of an input beat; ``after_last`` (reset 1) makes the beat after a ``last`` a ``first``."""
    with m.If(fire):
        m.d.sync += after_last.eq(last)
    token = Signal(Token)
    m.d.comb += [token.valid.eq(fire), token.first.eq(after_last), token.last.eq(last)]
    return token


class SystolicArray(wiring.Component):
    """A ``rows`` x ``cols`` systolic array for ``pe.dataflow`` ``"os"`` or ``"ws"``.

    All ports are ``amaranth.lib.stream`` streams (clock ``clk``, synchronous reset ``rst``). Input
    bubbles are allowed and backpressure is exact, by ``array.backpressure``: with ``stall`` the whole
    array advances each cycle unless ``results`` holds a beat that is not taken (a global stall);
    with ``queue`` (default past 256 cells) the array never stops, its results pass through a queue
    and input beats wait for room in it (:meth:`_result_queue`). The timing below holds for both
    when results are always taken.

    **Output-stationary** (``operands`` in, ``results`` out). One ``operands`` beat carries column
    ``k`` of an A tile (``a[i]``, i < rows) and row ``k`` of a W tile (``w[j]``, j < cols);
    ``last`` marks ``k = K - 1``. Cell (i, j) sees beat k at cycle ``k + i + j``. A tile's
    results leave as ``rows`` beats of ``cols`` accumulators, row 0 first, ``last`` on row
    ``rows - 1``. Latency: row q of a tile whose ``last`` beat was accepted at cycle L appears at
    cycle ``L + rows + cols + q``. Throughput: one tile per ``max(K, rows)`` cycles -- each column
    drains through one port, so a ``last`` beat is refused (``ready`` low) until ``rows`` cycles
    after the previous one.

    **Weight-stationary** (``weights`` and ``activations`` in, ``results`` out). A tile first
    loads ``rows`` ``weights`` beats of ``cols`` values, *bottom row first* (beat b is W-tile row
    ``rows - 1 - b``) into a shadow register chain. Each ``activations`` beat carries one row of
    the A tile (``a[i]``, i < rows, the K slice); ``last`` marks the tile's final row. The first
    beat of a tile is accepted only once its weights are loaded and switches every cell to them
    as it passes, so the next tile's weights load while the current one computes. Each beat
    yields one ``results`` beat (``cols`` partial sums over the rows) ``rows + cols - 1`` cycles
    after it was accepted. Loading the next weights starts ``rows + cols - 1`` cycles after a
    tile's first beat, so a tile takes ``max(M, 2 * rows + cols - 1)`` cycles.

    **Cell options** (:class:`SystolicParams`). With ``os_cell="two_register"`` each cell keeps an
    accumulator and a drain register only: a cell copies its result into its drain register when
    it processes the ``last`` beat, and column j shifts its drain registers up during the
    ``rows - 1`` cycles after its bottom cell finished (a 1-bit shift enable per column, delayed
    one cycle per column). Row q then appears at cycle ``L + rows + cols - 1 + q``, and a ``last``
    beat is refused until ``2 rows - 1`` cycles after the previous one (the top cell must have
    emitted row ``rows - 1`` before it copies in the next tile): one tile per ``max(K, 2 rows -
    1)`` cycles. ``reset_less_datapath`` and ``operand_gating`` change neither results nor timing.
    A pipelined PE (``pe.pipeline_latency`` d, output-stationary) accumulates every beat d cycles
    after it entered the cell; the capture (or shift) and drain control is delayed by d registers
    too, so results leave d cycles later (latency ``L + rows + cols + d + q``), throughput unchanged.

    Arithmetic: exactly the datapath's (integer MACs wrap at ``acc_bits``). A PE whose partial
    sums travel in an internal format (``pe.out_shape != pe.acc_shape``: an FMA PE's relaxed
    format, an integer MAC PE's carry-save pair) gets one combinational ``pe.normalizer()`` per
    column at the array edge (the FMA normalizer, the carry-propagate adder); latency is unchanged.
    A PE with a shared weight encoder (``pe.encoder: per_column``) gets one combinational
    ``pe.edge_encoder()`` per column at the top edge, before the column's skew registers
    (output-stationary) or load chain (weight-stationary), which then carry the encoded weight
    (``pe.w_link_shape``); the ``operands``/``weights`` ports keep the raw weights and latency is unchanged.
    """

    def __init__(self, params: SystolicParams):
        self.params = params
        pe = params.pe
        R, C = params.rows, params.cols
        results = Out(stream.Signature(params.result_layout()))
        if pe.dataflow == "os":
            operands = data.StructLayout(
                {"a": data.ArrayLayout(pe.a_shape, R), "w": data.ArrayLayout(pe.w_shape, C), "last": 1}
            )
            super().__init__({"operands": In(stream.Signature(operands)), "results": results})
        else:
            acts = data.StructLayout({"a": data.ArrayLayout(pe.a_shape, R), "last": 1})
            super().__init__(
                {
                    "weights": In(stream.Signature(data.ArrayLayout(pe.w_shape, C))),
                    "activations": In(stream.Signature(acts)),
                    "results": results,
                }
            )

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        core = Module()
        # What the core may accept and where its results go: with a queue, credits and the queue's
        # input; with a global stall, always and the results port itself.
        self._room = Signal(init=1)  # the queue has room for what an input beat completes
        self._completes = Signal()  # an accepted input beat completes result beats (credits taken)
        if p.queued:
            self._advance = advance = Const(1)
            self._res = _Beat(p.result_layout())
        else:
            self._advance = advance = Signal()
            m.d.comb += advance.eq(~(self.results.valid & ~self.results.ready))
            self._res = self.results
        if p.dataflow == "os":
            self._elaborate_os(core, advance)
        else:
            self._elaborate_ws(core, advance)
        if p.queued:
            m.submodules.core = core
            self._result_queue(m)
        else:
            m.submodules.core = EnableInserter(advance)(core)
        return m

    def _result_queue(self, m: Module) -> None:
        """``backpressure: queue``: the core's results enter a FIFO of ``result_queue_depth`` beats
        (or pass it while it is empty and the consumer takes them) and credits count its free
        places: an input beat that completes ``results_per_credit_beat`` result beats is accepted
        only with that many credits, which come back as beats leave. No path from
        ``results.ready`` reaches the array's registers."""
        p, core, res = self.params, self._res, self.results
        depth, per_beat = p.result_queue_depth, p.results_per_credit_beat
        m.submodules.queue = queue = SyncFIFO(width=Shape.cast(p.result_layout()).width, depth=depth)
        credits = Signal(range(depth + 1), init=depth)
        taken = res.valid & res.ready
        m.d.sync += credits.eq(credits - Mux(self._completes, per_beat, 0) + taken)
        m.d.comb += self._room.eq(credits >= per_beat)
        empty = queue.level == 0
        m.d.comb += [
            res.valid.eq(Mux(empty, core.valid, queue.r_rdy)),
            res.payload.eq(Mux(empty, Value.cast(core.payload), queue.r_data)),
            queue.w_en.eq(core.valid & ~(empty & res.ready)),
            queue.w_data.eq(core.payload),
            queue.r_en.eq(res.ready),
        ]

    def _elaborate_os(self, m: Module, advance: Signal) -> None:
        p = self.params
        R, C = p.rows, p.cols
        two_register = p.os_cell == "two_register"
        rl, gating = p.reset_less_datapath, p.operand_gating
        gap = p.os_drain_interval
        ops = self.operands
        since_last = Signal(range(gap + 1), init=gap)  # cycles since the last `last` beat, saturating
        after_last = Signal(init=1)  # the next accepted beat starts a tile
        m.d.comb += ops.ready.eq(advance & (~ops.payload.last | ((since_last == gap) & self._room)))
        fire = ops.valid & ops.ready
        m.d.comb += self._completes.eq(fire & ops.payload.last)
        with m.If(fire & ops.payload.last):
            m.d.sync += since_last.eq(1)
        with m.Elif(since_last != gap):
            m.d.sync += since_last.eq(since_last + 1)
        token = _token(m, fire, ops.payload.last, after_last)
        cell_cls = TwoRegisterOutputStationaryCell if two_register else OutputStationaryCell
        mesh = self._mesh(m, cell_cls, "os2_cell" if two_register else "os_cell", advance)
        self._skew_rows(m, mesh, ops.payload.a, token)  # row i enters i cycles late
        for j in range(C):  # column skew: column j enters j cycles late
            # operand gating: stage n of column j holds beat k in cycle k + n, with cell (0, n)'s token
            enables = [_tok_into(mesh.tok_in[0], mesh.tok_top, n).valid for n in range(j)] if gating else None
            w = self._edge_weight(m, j, ops.payload.w[j])
            m.d.comb += mesh.w_in[j].eq(
                self._delay(m, w, j, f"skew_w{j}", "skew_w", reset_less=rl, enables=enables)
            )
        if two_register:
            self._os_shift(m, mesh)
        else:
            # Column j captures when its bottom cell has finished the tile's last beat.
            capture = Signal(C)
            bottom = mesh.tok_out
            m.d.comb += [capture[j].eq(bottom[j].valid & bottom[j].last) for j in range(C)]
            m.d.comb += mesh.capture.eq(self._pe_delay(m, capture, "capture"))

        drain_left = Signal(range(R + 1))  # result rows still to emit for the current tile
        # three registers: row 0 of column C-1 is captured when the corner's tok_out is `last`;
        # two registers: the corner copies it in itself, a cycle earlier.
        corner = _tok_into(mesh.tok_in[R - 1], mesh.tok_out, C - 1) if two_register else mesh.tok_out[C - 1]
        with m.If(self._pe_delay(m, corner.valid & corner.last, "corner_last")):
            m.d.sync += drain_left.eq(R)
        with m.Elif(drain_left != 0):
            m.d.sync += drain_left.eq(drain_left - 1)
        res = self._res
        m.d.comb += [res.valid.eq(drain_left != 0), res.payload.last.eq(drain_left == 1)]
        for j in range(C):  # de-skew: column j leaves C-1-j cycles later
            self._emit(
                m, j, self._delay(m, mesh.drain_out[j], C - 1 - j, f"deskew{j}", "deskew", reset_less=rl)
            )

    def _os_shift(self, m: Module, mesh) -> None:
        """Two-register cells: each column shifts its drain registers up for ``rows - 1`` cycles,
        starting in the cycle its bottom cell shows the tile's ``last`` token (every cell of the
        column has then copied its result in); column j runs j cycles after column 0."""
        R, C = self.params.rows, self.params.cols
        if R == 1:
            return  # the single row's drain register is the column's output: nothing to shift
        bottom = mesh.tok_out[0]
        ends = self._pe_delay(m, bottom.valid & bottom.last, "shift_ends")
        left = Signal(range(R), name="shift_left")  # further shift cycles of column 0 (0 .. R - 2)
        with m.If(ends):
            m.d.sync += left.eq(R - 2)
        with m.Elif(left != 0):
            m.d.sync += left.eq(left - 1)
        shift = Signal(name="shift_col0")
        m.d.comb += shift.eq(ends | (left != 0))
        shifts = Signal(C)
        m.d.comb += mesh.shift.eq(shifts)
        for j in range(C):
            m.d.comb += shifts[j].eq(shift)
            if j + 1 < C:
                nxt = Signal(name=f"shift_col{j + 1}")
                m.d.sync += nxt.eq(shift)
                shift = nxt

    def _pe_delay(self, m: Module, value, lane: str):
        """``value`` (output-stationary control derived from the cells' tokens) delayed by the PE's
        pipeline latency, as every cell's accumulation is (``value`` itself for a combinational PE)."""
        return self._delay(m, value, self.params.pe_latency, lane, "pe_pipe")

    def _elaborate_ws(self, m: Module, advance: Signal) -> None:
        R, C = self.params.rows, self.params.cols
        wts, acts = self.weights, self.activations
        loaded = Signal(range(R + 1))  # weight rows in the shadow chain
        busy = Signal(range(R + C))  # cycles until the last tile switch has passed every cell
        after_last = Signal(init=1)
        m.d.comb += [
            wts.ready.eq(advance & (loaded != R) & (busy == 0)),
            acts.ready.eq(advance & (~after_last | (loaded == R)) & self._room),
        ]
        load = wts.valid & wts.ready
        fire = acts.valid & acts.ready
        m.d.comb += self._completes.eq(fire)
        starts_tile = fire & after_last
        with m.If(starts_tile):
            m.d.sync += [loaded.eq(0), busy.eq(R + C - 2)]
        with m.Else():
            with m.If(load):
                m.d.sync += loaded.eq(loaded + 1)
            with m.If(busy != 0):
                m.d.sync += busy.eq(busy - 1)
        token = _token(m, fire, acts.payload.last, after_last)
        mesh = self._mesh(m, WeightStationaryCell, "ws_cell", advance)
        m.d.comb += mesh.load.eq(load.replicate(C))
        self._skew_rows(m, mesh, acts.payload.a, token)
        if self.params.pe_encodes_at_edge:
            m.d.comb += [mesh.load_in[j].eq(self._edge_weight(m, j, wts.payload[j])) for j in range(C)]
            m.d.comb += mesh.psum_in.eq(0)
        else:
            m.d.comb += [mesh.load_in.eq(wts.payload), mesh.psum_in.eq(0)]

        res = self._res
        corner = mesh.tok_out[C - 1]
        m.d.comb += [res.valid.eq(corner.valid), res.payload.last.eq(corner.last)]
        rl = self.params.reset_less_datapath
        for j in range(C):
            deskewed = self._delay(m, mesh.psum_out[j], C - 1 - j, f"deskew{j}", "deskew", reset_less=rl)
            self._emit(m, j, deskewed)

    def _mesh(self, m: Module, cell_cls, kind: str, advance: Signal):
        """The R x C cells (:class:`RowStack`: one shared Verilog module per distinct cell, row and
        stack of rows, :mod:`tpegen.hw.hierarchy`), advancing with ``advance``."""
        p = self.params
        opts = p.cell_options()
        key = (p.pe, opts)

        def cell():
            return cell_cls(p.pe, **opts)

        mesh = shared_submodule(
            m,
            "mesh",
            lambda: RowStack(cell, p.cols, p.rows, kind=kind, key=key, gated=not p.queued),
            kind=f"{kind}_rows{p.rows}",
            key=(key, p.cols, not p.queued),
            enable=None,
        )
        if not p.queued:  # an array that never stalls has no enables
            m.d.comb += mesh.en.eq(advance)
        return mesh

    def _skew_rows(self, m: Module, mesh, a_lanes, token) -> None:
        """Row skew: row i's activation and token enter cell (i, 0) i cycles late. With operand
        gating, skew stage n of row i loads only with the (valid) token entering that stage."""
        rl = self.params.reset_less_datapath
        for i in range(self.params.rows):
            a = a_lanes[i]
            if self.params.operand_gating:
                toks = _delay_stages(m, token, i, f"skew_tok{i}")
                a = _delay_stages(m, a, i, f"skew_a{i}", reset_less=rl, enables=[t.valid for t in toks[:-1]])[
                    -1
                ]
                m.d.comb += [mesh.a_in[i].eq(a), mesh.tok_in[i].eq(toks[-1])]
            else:  # (the original order of construction: the default Verilog is unchanged)
                m.d.comb += [
                    mesh.a_in[i].eq(self._delay(m, a, i, f"skew_a{i}", "skew_a", reset_less=rl)),
                    mesh.tok_in[i].eq(self._delay(m, token, i, f"skew_tok{i}", "skew_tok")),
                ]

    def _delay(
        self, m: Module, value, stages: int, lane: str, registers: str, *, reset_less=False, enables=None
    ):
        """``value`` delayed ``stages`` cycles: shared :class:`DelayLine` blocks (registers named
        ``registers``), or with per-stage ``enables`` (operand gating) one register per stage
        (:func:`_delay_stages`, named ``<lane>_d<n>``)."""
        if enables is not None:
            return _delay_stages(m, value, stages, lane, reset_less=reset_less, enables=enables)[-1]
        enable = None if self.params.queued else self._advance  # an array that never stalls: no enables
        return delayed(m, value, stages, name=lane, registers=registers, reset_less=reset_less, enable=enable)

    def _edge_weight(self, m: Module, col: int, w: Value) -> Value:
        """Column ``col``'s weight as it enters the column: ``w`` itself, or with a shared encoder
        its link form from the column's edge encoder (submodule ``encode_<col>``, combinational,
        before the skew or load registers, which then hold the encoded weight)."""
        if not self.params.pe_encodes_at_edge:
            return w
        m.submodules[f"encode_{col}"] = encoder = self.params.pe.edge_encoder()
        m.d.comb += encoder.w.eq(w)
        return Value.cast(encoder.link)

    def _emit(self, m: Module, col: int, value) -> None:
        """Drive result lane ``col`` from a de-skewed accumulator, through the edge normalizer if any."""
        if self.params.edge_normalized:
            m.submodules[f"normalize_{col}"] = norm = self.params.pe.normalizer()
            m.d.comb += norm.acc_in.eq(value)
            value = norm.acc_out
        m.d.comb += self._res.payload.data[col].eq(value)
