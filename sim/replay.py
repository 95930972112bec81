"""Replay harness: stream programs played from memories inside the simulated design, not from Python.

:mod:`tpegen.sim.stream_tb` drives every beat from Python, one ``await`` per clock cycle, which
bounds a Verilated array to a few thousand cycles per second. :class:`ReplayHarness` wraps any
tpegen top level (``clk``, synchronous ``rst``, only ``amaranth.lib.stream`` ports) in
simulation-only logic that does the same job in hardware:

* each input port reads its beats from a memory through a pointer: beat ``i`` is offered as soon as
  beat ``i - 1`` was taken, ``valid`` while the pointer is below the port's ``count_<port>``;
* each output port is ready on every cycle and writes the accepted payloads to a memory;
* handshakes are stamped with a cycle counter (0 in the first cycle after reset): each run of
  handshakes on consecutive cycles of a port writes one entry, the index and cycle of its first
  beat, to the port's stamp memory (a stream without bubbles reads back in a few words);
* ``done`` rises once every input beat was taken and ``count_<port>`` beats left every output port,
  or after more than ``max_idle`` cycles without a handshake (then ``stuck`` is set as well).

The testbench :mod:`tpegen.sim.replay_tb` writes a program into the input memories over VPI (a
memory word is written without clock edges), releases reset, awaits ``done`` as one trigger, and
reads outputs and stamps back: Python runs a few times per program, not per cycle. VPI was chosen
over ``$readmemh``: Amaranth cannot emit the system task, so it would take hand-written Verilog
next to the generated one, while a VPI write costs a few microseconds per word through cocotb's
GPI handles and a word holds :data:`BEATS_PER_WORD` beats (a 64x256x64 GEMM on a 16x16 array loads
its 4,096 beats in 6 to 10 ms, handles included).

Exactly as :mod:`tpegen.sim.stream_tb` with ``stall_prob = 0``, cycle for cycle, so outputs, cycle
counts and handshake stamps are identical: ``valid`` and ``ready`` are low while ``rst`` is high; an
input port's payload is its next beat while one is left and its last beat afterwards (the cocotb
testbench leaves the last driven value on the port); output ready stays high for one cycle after
the program completed (the cocotb testbench waits one edge before the next reset), and beats
accepted then are not recorded. The one difference: while ``rst`` is high (``valid`` low) the
input payload is the new program's first beat, where the cocotb testbench still shows the previous
program's last one.

Every memory has the same ``depth`` (a power of two, a build parameter): the Verilog, and so the
cached Verilator build, depends only on the design and the depth, not on the program, so one build
serves every GEMM up to that many beats per port (:func:`replay_depth`). The harness is
simulation-only: its memories are large and never synthesized.

Build: only the harness module is visible to VPI (``vpi_module`` of
:func:`tpegen.sim.verilator.build`; cocotb's default ``--public-flat-rw`` keeps every signal of
every cell a separate VPI-writable variable, so Verilator can neither inline the hierarchical
array nor fold its logic: a 16x16 OS array ran 6k cycles/s that way, about 90k without), and the
C++ is compiled at -O2 (:data:`tpegen.sim.verilator.MAKE_ENV_FAST`) unless ``optimize=False``
(:meth:`~tpegen.sw.accelerator.Accelerator.run_rtl` asks for -O2 on long programs only), since the
run time is the model's own. ``bench/rtl_speed.py`` measures both paths.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from amaranth import Cat, Module, Mux, ResetSignal, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from tpegen._io import atomic_file
from tpegen.errors import TpegenError
from tpegen.sim.verilator import StreamProgram, VerilatedModel, build, cache_root

REPLAY_TB_MODULE = "tpegen.sim.replay_tb"

# Smallest memory depth a replay build gets: GEMMs up to this many beats per port share one build.
MIN_DEPTH = 1 << 12

COUNTER_BITS = 32  # cycle counter, stamps, pointers, counts: 2^32 beats and cycles are far away

# Input beats per memory word (beat i of a word in its bits [i * width, (i + 1) * width)): every
# word is a VPI handle to make and a call to write, which is most of what loading costs.
BEATS_PER_WORD = 8


def stream_ports(component: wiring.Component) -> tuple[dict[str, int], dict[str, int]]:
    """Payload widths of ``component``'s input and output stream ports, by port name.

    Raises TpegenError when a port is not an ``amaranth.lib.stream`` port (the harness only speaks
    the stream protocol)."""
    widths: dict[str, dict[str, int]] = {}
    for path, member, _value in component.signature.flatten(component):
        port, field = "__".join(str(p) for p in path[:-1]), str(path[-1])
        widths.setdefault(port, {})[field] = Shape.cast(member.shape).width
        if field == "payload":
            widths[port]["input"] = member.flow == In
    inputs, outputs = {}, {}
    for port, fields in widths.items():
        if set(fields) != {"payload", "valid", "ready", "input"}:
            raise TpegenError(f"port {port!r} is not a stream port (payload/valid/ready): cannot replay it")
        (inputs if fields["input"] else outputs)[port] = fields["payload"]
    return inputs, outputs


class ReplayHarness(wiring.Component):
    """Simulation-only wrapper playing stream programs on ``dut`` from memories (module docstring).

    Ports: ``count_<p>`` (in) beats to offer on input port ``p`` / to collect from output port ``p``;
    ``taken_<p>`` / ``seen_<p>`` (out) handshakes so far; ``max_idle`` (in) cycles without a
    handshake before giving up; ``done``, ``stuck`` (out); ``runs_<p>`` (out) entries in the stamp
    memory of port ``p``. Memories, read and written over VPI, ``depth`` beats each: ``in_<p>``
    (beats to offer, :data:`BEATS_PER_WORD` to a word) per input port, ``out_<p>`` (beats collected) per output port, ``stamps_<p>``
    per port (``{beat index, cycle}`` of the first beat of each run of handshakes on consecutive
    cycles, index in the high half). The harness adds no cycle: timing is the DUT's alone.
    """

    def __init__(self, dut: wiring.Component, depth: int):
        if depth < BEATS_PER_WORD or depth & (depth - 1):
            raise TpegenError(f"replay depth must be a power of two >= {BEATS_PER_WORD}, got {depth}")
        self.dut, self.depth = dut, depth
        self.inputs, self.outputs = stream_ports(dut)
        members = {"max_idle": In(COUNTER_BITS), "done": Out(1), "stuck": Out(1)}
        for p in self.inputs:
            members |= {f"count_{p}": In(COUNTER_BITS), f"taken_{p}": Out(COUNTER_BITS)}
        for p in self.outputs:
            members |= {f"count_{p}": In(COUNTER_BITS), f"seen_{p}": Out(COUNTER_BITS)}
        for p in (*self.inputs, *self.outputs):
            members[f"runs_{p}"] = Out(COUNTER_BITS)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        rst = ResetSignal()
        cycle = Signal(COUNTER_BITS)
        done_d = Signal()  # done one cycle later: output ready stays high for one cycle after done
        idle = Signal(COUNTER_BITS)
        m.d.sync += [cycle.eq(cycle + 1), done_d.eq(self.done)]

        def stamp(port: str, pointer: Signal, handshake) -> None:
            # A run of handshakes on consecutive cycles is one entry {beat index, cycle} of its
            # first beat, so a stream without bubbles reads back in a few words.
            m.submodules[f"stamps_{port}"] = mem = Memory(shape=2 * COUNTER_BITS, depth=self.depth, init=[])
            write = mem.write_port()
            runs, previous = getattr(self, f"runs_{port}"), Signal(COUNTER_BITS)
            starts = handshake & ((pointer == 0) | (cycle != previous + 1))
            m.d.comb += [write.addr.eq(runs), write.data.eq(Cat(cycle, pointer)), write.en.eq(starts)]
            m.d.sync += runs.eq(runs + starts)
            with m.If(handshake):
                m.d.sync += previous.eq(cycle)

        complete, handshakes = [], []
        for p, width in self.inputs.items():
            stream, count, taken = getattr(dut, p), getattr(self, f"count_{p}"), getattr(self, f"taken_{p}")
            words = Memory(shape=width * BEATS_PER_WORD, depth=self.depth // BEATS_PER_WORD, init=[])
            m.submodules[f"in_{p}"] = words
            read = words.read_port(domain="comb")
            left = taken < count
            take = stream.valid & stream.ready
            beat = Mux(left, taken, count - 1)
            lane = beat[: exact_log2(BEATS_PER_WORD)]
            m.d.comb += [
                read.addr.eq(beat >> exact_log2(BEATS_PER_WORD)),
                stream.payload.eq(read.data.word_select(lane, width)),
                stream.valid.eq(left & ~rst),
            ]
            stamp(p, taken, take)
            m.d.sync += taken.eq(taken + take)
            complete.append(taken + take >= count)
            handshakes.append(take)
        for p, width in self.outputs.items():
            stream, count, seen = getattr(dut, p), getattr(self, f"count_{p}"), getattr(self, f"seen_{p}")
            m.submodules[f"out_{p}"] = mem = Memory(shape=width, depth=self.depth, init=[])
            write = mem.write_port()
            m.d.comb += stream.ready.eq(~rst & ~done_d)
            accept = stream.valid & stream.ready & ~self.done
            m.d.comb += [write.addr.eq(seen), write.data.eq(stream.payload), write.en.eq(accept)]
            stamp(p, seen, accept)
            m.d.sync += seen.eq(seen + accept)
            complete.append(seen + accept >= count)
            handshakes.append(accept)

        progress = Signal()
        m.d.comb += progress.eq(Cat(*handshakes).any())
        with m.If(~self.done):
            m.d.sync += idle.eq(Mux(progress, 0, idle + 1))
            with m.If(Cat(*complete).all()):
                m.d.sync += self.done.eq(1)
            with m.Elif(~progress & (idle + 1 > self.max_idle)):
                m.d.sync += [self.done.eq(1), self.stuck.eq(1)]
        return m


# Amaranth writes a memory's initial contents as one Verilog statement per word; the harness's
# memories are loaded over VPI, so these blocks only cost Verilator compile time.
_MEMORY_INIT = re.compile(r"^  initial begin\n(?:    (?:in|out|stamps)_\w+\[\d+\] = [^\n]*\n)+  end\n", re.M)


def replay_verilog(component: wiring.Component, name: str, depth: int) -> str:
    """Verilog of :class:`ReplayHarness` around ``component`` (module ``name``), without the memories'
    all-zero initial blocks."""
    from tpegen.hw.hierarchy import to_verilog

    return _MEMORY_INIT.sub("", to_verilog(ReplayHarness(component, depth), name))


def replay_depth(programs: Sequence[StreamProgram]) -> int:
    """The memory depth for ``programs``: the most beats any port carries, rounded up to a power of
    two, at least :data:`MIN_DEPTH`."""
    beats = [len(b) for p in programs for b in p.inputs.values()]
    beats += [n for p in programs for n in p.outputs.values()]
    return max(MIN_DEPTH, 1 << (max(beats, default=1) - 1).bit_length())


def build_replay(
    component: Callable[[], wiring.Component],
    name: str,
    depth: int,
    *,
    dut_verilog: str | None = None,
    quiet: bool = True,
    optimize: bool = True,
) -> VerilatedModel:
    """A (cached) Verilator build of :class:`ReplayHarness` of depth ``depth`` around the component
    that ``component()`` makes (called only when the Verilog is not cached), as module ``name``;
    its :meth:`~VerilatedModel.run` plays programs through :mod:`tpegen.sim.replay_tb`
    (``stall_prob`` must be 0).

    Amaranth writes every memory's contents into the design, so making the harness's Verilog takes
    time in proportion to ``depth`` (an 8x8 array: 3 s at 4,096 beats, 17 s at 16,384). Given
    ``dut_verilog`` (the component's own Verilog), the harness's Verilog is cached on disk under a
    key of it, ``name``, ``depth`` and this module's source, so later processes skip that."""
    if dut_verilog is None:
        verilog = replay_verilog(component(), name, depth)
    else:
        key = hashlib.sha256(
            "\0".join([dut_verilog, name, str(depth), Path(__file__).read_text()]).encode()
        ).hexdigest()[:20]
        cached = cache_root() / "replay-verilog" / f"{name}-{key}.v"
        if cached.exists():
            verilog = cached.read_text()
        else:
            verilog = replay_verilog(component(), name, depth)
            with atomic_file(cached) as tmp:
                tmp.write_text(verilog)
    return build(verilog, name, quiet=quiet, testbench=REPLAY_TB_MODULE, optimize=optimize, vpi_module=name)
