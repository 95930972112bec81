"""Accelerator top: one array with scratchpads, an accumulator, DMA units, command queues and status."""

from __future__ import annotations

from typing import Any

from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tpegen.hw.system.axi import axi4_signature, connect_halves
from tpegen.hw.system.dispatch import STATUS_LAYOUT, Dispatcher
from tpegen.hw.system.execute import ExecuteUnit
from tpegen.hw.system.isa import WORD_BITS
from tpegen.hw.system.load import LoadUnit
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.hw.system.store import StoreUnit

__all__ = ["AcceleratorTop"]


class AcceleratorTop(wiring.Component):
    """The accelerator: a command-driven system around one array of ``config``.

    Ports (clock ``clk``, synchronous active-high reset ``rst``)
    ---------------------------------------------------------------
    cmd : ``In(stream.Signature(unsigned(128)))`` -- command words (:mod:`tpegen.hw.system.isa`),
        Verilog ``cmd__payload/__valid/__ready``.
    m_axi : ``Out(axi4_signature(32, D, 1))`` -- AXI4 master (:mod:`tpegen.hw.system.axi`),
        Verilog ``m_axi__awaddr`` etc.; AR/R from the load unit, AW/W/B from the store unit.
        INCR bursts, ``size = log2 D``, full strobes, id 0, ``rready = bready = 1``.
    status : ``Out(STATUS_LAYOUT)`` -- ``busy``, ``error``, ``error_code`` (4 bits,
        :class:`~tpegen.hw.system.isa.ErrorCode`), ``error_index`` (32 bits).

    Structure: :class:`~tpegen.hw.system.dispatch.Dispatcher` (check, three queues, six token
    semaphores, scheduler, status), :class:`~tpegen.hw.system.load.LoadUnit` (AXI read into A, W
    or Q), the execute unit (:mod:`tpegen.hw.system.execute`: feeders -> array -> accumulator
    read-modify-write), :class:`~tpegen.hw.system.store.StoreUnit` (accumulator -> output stage ->
    AXI write), and four ``amaranth.lib.memory.Memory`` s sized by
    :class:`~tpegen.hw.system.params.SystemGeometry`: A and W (write: load unit; synchronous read:
    execute unit), Q (write: load unit; read: store unit) and C, the accumulator (write and
    write-transparent read: execute unit; read: store unit).

    Timing contract (cycle exact; :mod:`tpegen.sim.system_timing` models the same): cycle 0 is the
    first ``cmd`` handshake. ``cmd.ready = ~error & (invalid | ~full(queue of the opcode))``; a
    command accepted in cycle d is visible to its unit from d + 1. A unit starts in cycle t when it
    is idle, its queue is non-empty and every semaphore it waits on is non-zero (pop and decrement
    effective t + 1); its last busy cycle e signals its semaphores (visible e + 1) and it may start
    again in e + 1. Durations with read latency ``Lr`` and write-response latency ``Lb`` of the
    AXI slave (AW, AR, W always ready): LOAD ``1 + sum_b (Lr + len_b)`` over its bursts; STORE
    ``1 + sum_b (rows_b (r + 2) + Lb)`` with ``r = P_out / D``; EXEC
    ``F + T + 1`` (``F`` = the execute unit's ``FEED_LATENCY``, ``T`` the array's own cycle
    count). ``status.busy`` = a command being queued, a queue non-empty or a unit busy.

    Parameters
    ----------
    config : a :class:`tpegen.config.DesignConfig` (MAC OS/WS, FMA or LUT family).
    system : the ``system:`` sizes (:class:`~tpegen.hw.system.params.SystemParams`); ``None``
        takes the config's own section.
    """

    def __init__(self, config: Any, system: SystemParams | None = None):
        self.config = config
        self.geometry = g = SystemGeometry.of(config, system)
        StoreUnit.check_geometry(g)
        self.fp_format = None
        if g.fp:
            acc = config.pe.fma.acc_fmt
            self.fp_format = (acc.exp_bits, acc.man_bits)
        super().__init__(
            {
                "cmd": In(stream.Signature(unsigned(WORD_BITS))),
                "m_axi": Out(axi4_signature(32, g.axi_bytes, 1)),
                "status": Out(STATUS_LAYOUT),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.geometry
        m.submodules.dispatch = disp = Dispatcher(g)
        m.submodules.load = load = LoadUnit(g)
        m.submodules.execute = exe = ExecuteUnit(self.config, g)
        m.submodules.store = store = StoreUnit(g, self.fp_format)

        wiring.connect(m, wiring.flipped(self.cmd), disp.cmd)
        m.d.comb += self.status.eq(disp.status)
        for port, unit in ((disp.load, load), (disp.exec, exe), (disp.store, store)):
            m.d.comb += [
                unit.start.eq(port.start),
                unit.command.eq(port.command),
                port.idle.eq(unit.idle),
                port.done.eq(unit.done),
            ]
        connect_halves(m, self.m_axi, load.axi, store.axi)

        def memory(name: str, kind: str) -> Memory:
            mem = Memory(shape=unsigned(g.row_bits(kind)), depth=g.depth(kind), init=[])
            m.submodules[name] = mem
            return mem

        mem_a, mem_w, mem_q, mem_c = (
            memory("mem_a", "A"),
            memory("mem_w", "W"),
            memory("mem_q", "Q"),
            memory("mem_c", "C"),
        )

        # A and W: load unit writes, execute unit reads
        for mem, prefix in ((mem_a, "a"), (mem_w, "w")):
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [
                wp.addr.eq(load.waddr),
                wp.data.eq(getattr(load, f"{prefix}_wdata")),
                wp.en.eq(getattr(load, f"{prefix}_wen")),
                rp.addr.eq(getattr(exe, f"{prefix}_addr")),
                rp.en.eq(getattr(exe, f"{prefix}_en")),
                getattr(exe, f"{prefix}_data").eq(rp.data),
            ]
        # Q: load unit writes, store unit reads
        q_wp, q_rp = mem_q.write_port(), mem_q.read_port()
        m.d.comb += [
            q_wp.addr.eq(load.waddr),
            q_wp.data.eq(load.q_wdata),
            q_wp.en.eq(load.q_wen),
            q_rp.addr.eq(store.q_raddr),
            q_rp.en.eq(store.q_ren),
            store.q_rdata.eq(q_rp.data),
        ]
        # C: execute unit read-modify-write (read transparent for its write), store unit reads
        c_wp = mem_c.write_port()
        c_rmw = mem_c.read_port(transparent_for=(c_wp,))
        c_rs = mem_c.read_port()
        m.d.comb += [
            c_wp.addr.eq(exe.c_waddr),
            c_wp.data.eq(exe.c_wdata),
            c_wp.en.eq(exe.c_wen),
            c_rmw.addr.eq(exe.c_raddr),
            c_rmw.en.eq(exe.c_ren),
            exe.c_rdata.eq(c_rmw.data),
            c_rs.addr.eq(store.c_raddr),
            c_rs.en.eq(store.c_ren),
            store.c_rdata.eq(c_rs.data),
        ]
        return m
