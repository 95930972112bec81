"""Execute unit of the accelerator top: scratchpad feeders -> array -> accumulator read-modify-write.

One EXEC command (fields: :func:`tpegen.hw.system.isa.layout` of ``Opcode.EXEC``) runs as follows
(start pulse in cycle t; see the spec's timing contract and the family semantics in
:mod:`tpegen.hw.system.sequencers`):

* **Feeders.** Each array input port has a :class:`~tpegen.hw.system.sequencers.LoopNest` that
  issues synchronous scratchpad reads (data the cycle after the address) into a small prefetch
  FIFO (``amaranth.lib.fifo.SyncFIFO``). A read is issued whenever fewer than
  :attr:`ExecuteUnit.FIFO_DEPTH` beats are in flight or buffered, the first one in the start cycle
  itself, so the first beat of every port is valid in cycle ``t + FEED_LATENCY`` (= t + 2) and
  every port stays valid until its beats are exhausted: the array's ``ready`` is the only thing
  that spaces beats (depth 3 covers the two-cycle read-to-visible loop at one beat per cycle).
* **Array.** ``config.accelerator().component()`` (SystolicArray, FpSystolicEngine, LutCore or
  DotTile; the dot-product tile runs on the LUT sequencer with one weight beat per tile).
* **Collector.** ``results.ready`` is always 1. A result accepted in cycle x reads its accumulator
  row in cycle x (``c_raddr``/``c_ren``; the read port is transparent to ``c_w*``) and writes in
  x + 1 the lane-wise wrapped sum (integer lanes of ``acc_lane_bits``) or, when not accumulating,
  the plain value. The FMA family never accumulates (no FP adder here; the ISA rejects ``acc=1``).
* **Completion.** ``done`` is high in the cycle of the last accumulator write,
  ``e = t + FEED_LATENCY + T`` with ``T`` the array's own cycle count of the beat sequence
  (:func:`tpegen.sim.system_exec_timing.array_cycles`); ``idle`` is low from t + 1 to e and high
  from e + 1. After the last result the array is back in a reset-equivalent state, so the next
  command may start in e + 1.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Shape, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry
from tpegen.hw.system.sequencers import Feed, LoopNest, addr_shape, sequencer_for
from tpegen.registry import entry_for

__all__ = ["ExecuteUnit"]


class ExecuteUnit(wiring.Component):
    """The EXEC unit: per-family sequencers, prefetching feeders, the array and the accumulator RMW.

    Parameters: ``config`` (a :class:`tpegen.config.DesignConfig`) and ``geometry`` (its
    :class:`~tpegen.hw.system.params.SystemGeometry`).

    Ports (clock ``clk``, synchronous reset ``rst``):

    * unit interface: ``start`` In(1) (pulse in the start cycle t), ``command`` In(EXEC layout)
      (valid in t only; latched), ``idle`` Out(1) (0 in t + 1 .. e, 1 otherwise), ``done`` Out(1)
      (1 exactly in the completion cycle e).
    * A and W scratchpads (synchronous read ports, data the cycle after the address):
      ``a_addr``/``a_en`` Out, ``a_data`` In(``a_row_bits``); ``w_addr``/``w_en``/``w_data`` alike.
    * accumulator: read ``c_raddr``/``c_ren`` Out, ``c_rdata`` In(``acc_row_bits``) (synchronous,
      transparent for the write port), write ``c_waddr``/``c_wdata``/``c_wen`` Out.

    Addresses have the width of the memory's ports (``ceil(log2(depth))`` bits).

    Timing: ``done`` in ``e = t + FEED_LATENCY + T``, i.e. the EXEC lasts ``FEED_LATENCY + T + 1``
    cycles (:func:`tpegen.sim.system_exec_timing.exec_cycles`).
    """

    FEED_LATENCY = 2  # start cycle t -> first beat valid on every array input port
    FIFO_DEPTH = 3  # prefetch FIFO entries per input port (minimum for one beat per cycle)

    def __init__(self, config, geometry: SystemGeometry):
        self.config = config
        self.geometry = g = geometry
        self.sequencer = sequencer_for(g)
        self.array = config.accelerator().component()
        kind = entry_for(config).system
        if kind != g.kind:
            raise ConfigError("geometry.kind", f"{kind!r} (the config's array)", g.kind)
        super().__init__(
            {
                "start": In(1),
                "command": In(isa.layout(isa.Opcode.EXEC)),
                "idle": Out(1),
                "done": Out(1),
                "a_addr": Out(addr_shape(g.a_depth)),
                "a_en": Out(1),
                "a_data": In(g.a_row_bits),
                "w_addr": Out(addr_shape(g.w_depth)),
                "w_en": Out(1),
                "w_data": In(g.w_row_bits),
                "c_raddr": Out(addr_shape(g.acc_depth)),
                "c_ren": Out(1),
                "c_rdata": In(g.acc_row_bits),
                "c_waddr": Out(addr_shape(g.acc_depth)),
                "c_wdata": Out(g.acc_row_bits),
                "c_wen": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.array = arr = self.array
        layout = isa.layout(isa.Opcode.EXEC)

        busy = Signal()
        cmd_r = Signal(layout)
        cmd = Signal(layout)  # the command's fields in every cycle of it, the start cycle included
        m.d.comb += [cmd.eq(Mux(self.start, self.command.as_value(), cmd_r.as_value())), self.idle.eq(~busy)]
        with m.If(self.start):
            m.d.sync += cmd_r.eq(self.command)

        used: set[str] = set()
        for feed in self.sequencer.feeds(cmd):
            if used & set(feed.data):
                raise ValueError(f"{self.sequencer.kind}: a scratchpad is read by two feeds")
            used |= set(feed.data)
            self._feeder(m, feed, getattr(arr, feed.port))

        done = self._collector(m, arr.results, cmd)
        m.d.comb += self.done.eq(done)
        with m.If(done):
            m.d.sync += busy.eq(0)
        with m.If(self.start):
            m.d.sync += busy.eq(1)
        return m

    def _feeder(self, m: Module, feed: Feed, port) -> None:
        """Loop nest -> synchronous scratchpad reads -> prefetch FIFO -> array input ``port``."""
        depth = self.FIFO_DEPTH
        outstanding = Signal(range(depth + 1), name=f"{feed.port}_outstanding")  # issued, not consumed
        issue = Signal(name=f"{feed.port}_issue")
        nest = LoopNest(m, feed.nest, load=self.start, step=issue, name=feed.port)
        m.d.comb += issue.eq(nest.active & (outstanding < depth))
        for mem in feed.data:
            m.d.comb += [
                getattr(self, f"{mem}_addr").eq(nest.addr[mem]),
                getattr(self, f"{mem}_en").eq(issue),
            ]

        # The read data arrives one cycle after the address: delay the control bits to meet it.
        arrived = Signal(name=f"{feed.port}_arrived")
        m.d.sync += arrived.eq(issue)
        beat = Signal(port.payload.shape(), name=f"{feed.port}_beat")
        for mem, member in feed.data.items():
            target = beat if member is None else beat[member]
            m.d.comb += target.eq(getattr(self, f"{mem}_data"))
        for name, value in feed.control(nest).items():
            delayed = Signal(Shape.cast(beat[name].shape()), name=f"{feed.port}_{name}_d")
            m.d.sync += delayed.eq(value)
            m.d.comb += beat[name].eq(delayed)

        q = fifo.SyncFIFO(width=Shape.cast(port.payload.shape()).width, depth=depth)
        m.submodules[f"{feed.port}_fifo"] = q
        consumed = Signal(name=f"{feed.port}_consumed")
        m.d.comb += [
            q.w_en.eq(arrived),
            q.w_data.eq(beat),
            port.valid.eq(q.r_rdy),
            port.payload.eq(q.r_data),
            q.r_en.eq(port.ready),
            consumed.eq(port.valid & port.ready),
        ]
        m.d.sync += outstanding.eq(outstanding + issue - consumed)

    def _collector(self, m: Module, results, cmd) -> Signal:
        """Result beats -> accumulator RMW; returns ``done`` (the cycle of the last write)."""
        g = self.geometry
        collect = self.sequencer.collect(cmd)
        take = Signal()
        m.d.comb += [results.ready.eq(1), take.eq(results.valid)]
        nest = LoopNest(m, collect.nest, load=self.start, step=take, name="result")
        m.d.comb += [self.c_raddr.eq(nest.addr["c"]), self.c_ren.eq(take)]

        w_valid, w_addr, w_acc = Signal(), Signal.like(self.c_waddr), Signal()
        w_value = Signal(g.acc_row_bits)
        done = Signal()
        m.d.sync += [
            w_valid.eq(take),
            w_addr.eq(nest.addr["c"]),
            w_acc.eq(collect.accumulate(nest)),
            w_value.eq(self.sequencer.result_data(results.payload)),
            done.eq(take & nest.final),
        ]
        if g.fp:  # floating-point results are written, never added
            new = w_value
        else:
            n = g.acc_lane_bits
            lanes = data.ArrayLayout(n, g.acc_lanes)
            old_l, res_l = data.View(lanes, self.c_rdata), data.View(lanes, w_value)
            summed = Cat(*((old_l[i] + res_l[i])[:n] for i in range(g.acc_lanes)))
            new = Mux(w_acc, summed, w_value)
        m.d.comb += [self.c_waddr.eq(w_addr), self.c_wdata.eq(new), self.c_wen.eq(w_valid)]
        return done
