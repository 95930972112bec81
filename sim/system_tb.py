"""cocotb testbench of the accelerator top: commands in, cocotbext-axi ``AxiRam`` as host memory.

Started by :func:`tpegen.sim.system_rtl.run_rtl` (test ``run_system``) and
:func:`tpegen.sim.system_rtl.measure_axi_ram` (test ``probe_memory``), which write their inputs to
``$TPEGEN_TB_DIR`` (``run.json``, ``host.bin``); results go to ``result.json`` (and ``host.out``).

Protocol, per clock cycle: inputs are driven right after the rising edge; in the read-only phase
before the next edge every ``valid & ready`` pair is a handshake. ``cmd`` offers the next command
word as long as commands remain and no error was seen. Cycle 0 is the cycle of the first command
handshake. After the last handshake (or an error) the run ends in the first cycle in which
``status__busy`` is 0; that cycle index is the run's cycle count.

Host memory: ``AxiRam`` answers an AR handshake in cycle ``a`` with the first R beat in
``a + 2`` and the last W beat in ``w`` with B in ``w + 2`` (:data:`MIN_READ_LATENCY`,
:data:`MIN_WRITE_LATENCY`); larger latencies ``Lr``/``Lb`` are realised by holding each accepted
AR (and each B response) ``Lr - 2`` (``Lb - 2``) more clock edges before the RAM's own process sees
it (:func:`add_latency`). Every run checks the memory side of the timing contract on the wire:
AR, AW and W ready whenever valid, R beats of a burst on consecutive cycles, first R exactly
``Lr`` after AR and B exactly ``Lb`` after the last W (a violation is reported as an error).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from tpegen.sim.system_timing import MIN_READ_LATENCY, MIN_WRITE_LATENCY

RESET_CYCLES = 2
SETTLE_CYCLES = 4  # after reset, before the first command: AxiRam raises its readies


def add_latency(ram: AxiRam, clk, extra: dict[str, int]) -> None:
    """Delay every AR ``extra["read"]`` and every B ``extra["write"]`` clock edges inside ``ram``
    (read when each burst arrives, so a caller may change them between runs)."""
    recv = ram.read_if.ar_channel.recv
    send = ram.write_if.b_channel.send

    async def delayed_recv():
        item = await recv()
        for _ in range(extra["read"]):
            await RisingEdge(clk)
        return item

    async def delayed_send(obj):
        for _ in range(extra["write"]):
            await RisingEdge(clk)
        await send(obj)

    ram.read_if.ar_channel.recv = delayed_recv
    ram.write_if.b_channel.send = delayed_send


class AxiWatch:
    """Per-cycle record of the AXI handshakes and a check of the memory timing contract."""

    def __init__(self, dut, prefix: str = "m_axi__"):
        sig = {n: getattr(dut, prefix + n) for n in self.NAMES}
        self.sig = sig
        self.ar, self.r, self.aw, self.wlast, self.b = [], [], [], [], []
        self.w = 0
        self.violations: list[str] = []
        self._r_left = 0

    NAMES = (
        "arvalid",
        "arready",
        "arlen",
        "rvalid",
        "rready",
        "rlast",
        "awvalid",
        "awready",
        "wvalid",
        "wready",
        "wlast",
        "bvalid",
        "bready",
    )

    def sample(self, cycle: int) -> None:
        """Call in the read-only phase of ``cycle``."""
        s = self.sig
        v = {n: int(s[n].value) for n in ("arvalid", "rvalid", "awvalid", "wvalid", "bvalid")}
        if v["arvalid"]:
            if int(s["arready"].value):
                self.ar.append(cycle)
            else:
                self._violate(f"cycle {cycle}: arvalid with arready low")
        if v["awvalid"]:
            if int(s["awready"].value):
                self.aw.append(cycle)
            else:
                self._violate(f"cycle {cycle}: awvalid with awready low")
        if v["wvalid"]:
            if int(s["wready"].value):
                self.w += 1
                if int(s["wlast"].value):
                    self.wlast.append(cycle)
            else:
                self._violate(f"cycle {cycle}: wvalid with wready low")
        if v["rvalid"] and int(s["rready"].value):
            self.r.append(cycle)
        if v["bvalid"] and int(s["bready"].value):
            self.b.append(cycle)

    def _violate(self, text: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(text)

    def check(self, read_latency: int, write_latency: int) -> list[str]:
        """Check first-R / B latencies and R beat spacing of the recorded bursts."""
        problems = list(self.violations)
        # R beats per burst: arlen is not recorded per AR, so split R beats at gaps
        bursts, pos = [], 0
        for a in self.ar:
            if pos >= len(self.r):
                break
            first = self.r[pos]
            if first != a + read_latency:
                problems.append(f"AR in cycle {a}: first R in {first}, expected {a + read_latency}")
            n = 1
            while (
                pos + n < len(self.r)
                and self.r[pos + n] == first + n
                and (len(bursts) + 1 >= len(self.ar) or self.r[pos + n] < self.ar[len(bursts) + 1])
            ):
                n += 1
            bursts.append(n)
            pos += n
        if pos != len(self.r):
            problems.append(f"{len(self.r) - pos} R beats not on consecutive cycles after their AR")
        for w, b in zip(self.wlast, self.b, strict=False):
            if b != w + write_latency:
                problems.append(f"last W in cycle {w}: B in {b}, expected {w + write_latency}")
        if len(self.wlast) != len(self.b):
            problems.append(f"{len(self.wlast)} write bursts but {len(self.b)} B responses")
        return problems[:20]

    def summary(self) -> dict:
        return {"ar": self.ar, "r": len(self.r), "aw": self.aw, "wlast": self.wlast, "b": self.b, "w": self.w}


class Status:
    """Reads the top's status: a flattened ``status__<field>`` port per field if the Verilog has
    them, else fields of the packed ``status`` port at the layout's offsets (``fields`` maps a
    name to ``(offset, width)``)."""

    def __init__(self, dut, fields: dict[str, list[int]]):
        self.fields = fields
        self.flat = {n: getattr(dut, f"status__{n}", None) for n in fields}
        self.packed = None if all(self.flat.values()) else dut.status

    def __getitem__(self, name: str) -> int:
        if self.packed is None:
            return int(self.flat[name].value)
        off, width = self.fields[name]
        return (int(self.packed.value) >> off) & ((1 << width) - 1)

    def read(self) -> dict[str, int]:
        return {n: self[n] for n in ("error", "error_code", "error_index")}


async def _reset(dut, ports_low) -> None:
    dut.rst.value = 1
    for p in ports_low:
        p.value = 0
    for _ in range(RESET_CYCLES):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(SETTLE_CYCLES):
        await RisingEdge(dut.clk)


def _memory(dut, size: int) -> tuple[AxiRam, bytearray, dict[str, int]]:
    """An AxiRam of ``size`` bytes on ``m_axi_``, with adjustable added latencies."""
    host = bytearray(size)
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=size, mem=host)
    extra = {"read": 0, "write": 0}
    add_latency(ram, dut.clk, extra)
    return ram, host, extra


async def _run_one(dut, run: dict, status: Status) -> dict:
    """Reset, push ``run["words"]``, wait for idle; the run's results (module docstring)."""
    words = [int(w, 16) for w in run["words"]]
    max_cycles = int(run["max_cycles"])
    watch = AxiWatch(dut)
    await _reset(dut, [dut.cmd__valid])
    cmd_cycles: list[int] = []
    pos, clock, first = 0, 0, None  # clock counts cycles since the settle; first = cycle 0
    end = 0
    error_seen = False
    while words:
        offer = pos < len(words) and not error_seen
        dut.cmd__valid.value = int(offer)
        if offer:
            dut.cmd__payload.value = words[pos]
        await ReadOnly()
        if offer and int(dut.cmd__ready.value):
            if first is None:
                first = clock
            cmd_cycles.append(clock - first)
            pos += 1
        cycle = clock - (first if first is not None else clock)
        if first is not None:
            watch.sample(cycle)
        error_seen = error_seen or bool(status["error"])
        if first is not None and (pos == len(words) or error_seen) and not status["busy"]:
            end = cycle
            break
        if (clock if first is None else cycle) >= max_cycles:
            raise RuntimeError(
                f"not idle after {max_cycles} cycles (cycle {cycle}): {pos} of {len(words)} commands "
                f"accepted, busy={status['busy']}, status {status.read()}; AXI so far: {watch.summary()}"
            )
        await RisingEdge(dut.clk)
        clock += 1
    await RisingEdge(dut.clk)
    dut.cmd__valid.value = 0
    return {
        "cycles": end,  # an empty program: no handshake, 0 cycles
        "commands": cmd_cycles,
        "status": status.read(),
        "axi": watch.summary(),
        "memory_problems": watch.check(run["read_latency"], run["write_latency"]),
    }


@cocotb.test()
async def run_system(dut):
    """Play every run of ``run.json`` (reset before each): load its host image into the AxiRam,
    push its command words, wait for idle, read the image back (see the module docstring)."""
    tb_dir = Path(os.environ["TPEGEN_TB_DIR"])
    meta = json.loads((tb_dir / "run.json").read_text())
    images = (tb_dir / "host.bin").read_bytes()
    sizes = [run["host_bytes"] for run in meta["runs"]]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    ram, host, extra = _memory(dut, max(sizes))
    status = Status(dut, meta["status_fields"])
    results, outputs, offset = [], [], 0
    for run, size in zip(meta["runs"], sizes, strict=True):
        host[:] = images[offset : offset + size] + bytes(len(host) - size)
        offset += size
        extra["read"] = run["read_latency"] - MIN_READ_LATENCY
        extra["write"] = run["write_latency"] - MIN_WRITE_LATENCY
        try:
            result = await _run_one(dut, run, status)
            result["error"] = None
        except Exception as exc:  # reported to the caller through result.json
            result = {"error": f"{type(exc).__name__}: {exc}"}
        results.append(result)
        outputs.append(bytes(host[:size]))
    (tb_dir / "host.out").write_bytes(b"".join(outputs))
    (tb_dir / "result.json").write_text(json.dumps({"runs": results, "error": None}))


@cocotb.test()
async def probe_memory(dut):
    """Drive AXI bursts by hand into the probe top (all ``m_axi__*`` are top-level ports) and
    measure AxiRam's AR -> first R and last W -> B latencies, back-to-back as the units issue
    them (next AR the cycle after the last R beat, next AW the cycle after B)."""
    tb_dir = Path(os.environ["TPEGEN_TB_DIR"])
    meta = json.loads((tb_dir / "run.json").read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    image = (tb_dir / "host.bin").read_bytes()
    ram, host, extra = _memory(dut, len(image))
    host[:] = image
    extra["read"] = meta["read_latency"] - MIN_READ_LATENCY
    extra["write"] = meta["write_latency"] - MIN_WRITE_LATENCY
    d = meta["axi_bytes"]
    size = (d - 1).bit_length()
    a = {n: getattr(dut, "m_axi__" + n) for n in ("arvalid", "araddr", "arlen", "arsize", "arburst", "arid")}
    w = {n: getattr(dut, "m_axi__" + n) for n in ("awvalid", "awaddr", "awlen", "awsize", "awburst", "awid")}
    wd = {n: getattr(dut, "m_axi__" + n) for n in ("wvalid", "wdata", "wstrb", "wlast")}
    watch = AxiWatch(dut)
    result: dict = {"error": None}
    try:
        await _reset(dut, [a["arvalid"], w["awvalid"], wd["wvalid"]])
        dut.m_axi__rready.value = 1
        dut.m_axi__bready.value = 1
        for sig in (a["arsize"], w["awsize"]):
            sig.value = size
        for sig in (a["arburst"], w["awburst"]):
            sig.value = 1
        a["arid"].value = w["awid"].value = 0
        wd["wstrb"].value = (1 << d) - 1
        cycle = 0
        reads: list[bytes] = []

        async def tick():
            nonlocal cycle
            await ReadOnly()
            watch.sample(cycle)
            await RisingEdge(dut.clk)
            cycle += 1

        beats = meta["beats"]
        for burst in range(2):  # read bursts, the second right after the first's last R
            a["arvalid"].value, a["araddr"].value, a["arlen"].value = 1, burst * beats * d, beats - 1
            await tick()
            a["arvalid"].value = 0
            got = 0
            while got < beats:
                await ReadOnly()
                if int(dut.m_axi__rvalid.value):
                    reads.append(dut.m_axi__rdata.value.to_unsigned().to_bytes(d, "little"))
                    got += 1
                watch.sample(cycle)
                await RisingEdge(dut.clk)
                cycle += 1
        base = 2 * beats * d
        for burst in range(2):  # write bursts: AW, W beats from the cycle after next, next AW after B
            w["awvalid"].value, w["awaddr"].value, w["awlen"].value = 1, base + burst * beats * d, beats - 1
            await tick()
            w["awvalid"].value = 0
            await tick()
            for n in range(beats):
                wd["wvalid"].value, wd["wlast"].value = 1, int(n == beats - 1)
                wd["wdata"].value = int.from_bytes(bytes([(burst * beats + n) & 0xFF] * d), "little")
                await tick()
            wd["wvalid"].value = wd["wlast"].value = 0
            while len(watch.b) <= burst:
                await tick()
                if cycle > 10_000:
                    raise RuntimeError("no B response")
        for _ in range(4):
            await tick()
        result.update(
            axi=watch.summary(),
            r_cycles=watch.r,
            ready_violations=watch.violations,
            read_data=b"".join(reads).hex(),
        )
        (tb_dir / "host.out").write_bytes(bytes(host))
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    (tb_dir / "result.json").write_text(json.dumps(result))
    assert result["error"] is None, result["error"]
