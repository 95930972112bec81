"""Generic cocotb testbench: plays a :class:`~tpegen.sim.verilator.StreamProgram` on any tpegen top level.

It is started by :meth:`tpegen.sim.verilator.VerilatedModel.run`, which writes the program to
``$TPEGEN_TB_DIR/program.{npz,json}``; results go to ``result.{npz,json}`` in the same folder.

Protocol, per clock cycle: inputs are driven right after the rising edge; in the read-only phase
before the next edge every ``valid & ready`` pair is a handshake (a beat transferred at that edge).
Each input port presents its next beat as soon as the previous one was taken; each output port is
always ready unless ``stall_prob`` withholds it. Cycle 0 is the first cycle after reset.
:func:`play_programs` (reset between programs, result files) is shared with
:mod:`tpegen.sim.replay_tb`, which plays the same programs without Python in the cycle loop.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def _port(dut, port: str, member: str):
    return getattr(dut, f"{port}__{member}")


async def _play(dut, prog_inputs, out_counts, *, stall_prob, rng, max_idle):
    inputs = {p: [int.from_bytes(bytes(b), "little") for b in beats] for p, beats in prog_inputs.items()}
    nbytes = {p: (len(_port(dut, p, "payload")) + 7) // 8 for p in out_counts}
    pos = dict.fromkeys(inputs, 0)
    in_cyc = {p: [] for p in inputs}
    out = {p: [] for p in out_counts}
    out_cyc = {p: [] for p in out_counts}
    offered = dict.fromkeys(inputs, False)
    cycle, idle = 0, 0
    while any(len(out[p]) < n for p, n in out_counts.items()) or any(pos[p] < len(inputs[p]) for p in inputs):
        for p, beats in inputs.items():
            offer = pos[p] < len(beats) and rng.random() >= stall_prob
            offered[p] = offer
            _port(dut, p, "valid").value = int(offer)
            if offer:
                _port(dut, p, "payload").value = beats[pos[p]]
        for p in out_counts:
            _port(dut, p, "ready").value = int(rng.random() >= stall_prob)
        await ReadOnly()
        progress = False
        for p in inputs:
            if offered[p] and int(_port(dut, p, "ready").value):
                in_cyc[p].append(cycle)
                pos[p] += 1
                progress = True
        for p in out_counts:
            if int(_port(dut, p, "valid").value) and int(_port(dut, p, "ready").value):
                value = _port(dut, p, "payload").value.to_unsigned()
                out[p].append(value.to_bytes(nbytes[p], "little"))
                out_cyc[p].append(cycle)
                progress = True
        idle = 0 if progress else idle + 1
        if idle > max_idle:
            raise RuntimeError(
                f"no handshake for {max_idle} cycles at cycle {cycle}: "
                f"inputs taken {pos}, outputs seen { {p: len(v) for p, v in out.items()} }"
            )
        await RisingEdge(dut.clk)
        cycle += 1
    for p in inputs:
        _port(dut, p, "valid").value = 0
    outputs = {
        p: np.frombuffer(b"".join(beats), dtype=np.uint8).reshape(-1, max(1, nbytes[p]))
        for p, beats in out.items()
    }
    return outputs, in_cyc, out_cyc


async def play_programs(dut, player, *, clock_impl: str = "py") -> None:
    """Play every program in $TPEGEN_TB_DIR and write outputs and handshake cycles to result.{npz,json}.

    Shared by the testbenches. Per program: ``rst`` goes high and ``player.prepare(inputs, outputs,
    meta)`` runs; two clock edges later ``rst`` is released (cycle 0 starts) and
    ``await player.play(inputs, outputs, meta, rng)`` returns ``(outputs, in_cycles, out_cycles)``
    (beats as (beats, nbytes) ``uint8`` arrays, cycle lists by port); one more edge follows before
    the next program's reset. ``cycles`` counts from the first input to the last output handshake;
    ``seconds`` is the wall time of each program inside the simulator process."""
    tb_dir = Path(os.environ["TPEGEN_TB_DIR"])
    meta = json.loads((tb_dir / "program.json").read_text())
    data = np.load(tb_dir / "program.npz")
    rng = random.Random(meta["seed"])
    Clock(dut.clk, 10, unit="ns", impl=clock_impl).start()
    arrays, cycles, seconds, error = {}, [], [], None
    try:
        for n, prog in enumerate(meta["programs"]):
            start = time.perf_counter()
            dut.rst.value = 1
            inputs = {p: data[f"p{n}_in_{p}"] for p in prog["inputs"]}
            player.prepare(inputs, prog["outputs"], meta)
            for _ in range(2):
                await RisingEdge(dut.clk)
            dut.rst.value = 0
            out, in_cyc, out_cyc = await player.play(inputs, prog["outputs"], meta, rng)
            await RisingEdge(dut.clk)
            for p, beats in out.items():
                arrays[f"p{n}_out_{p}"] = beats
                arrays[f"p{n}_outcyc_{p}"] = np.asarray(out_cyc[p], dtype=np.int64)
            for p, c in in_cyc.items():
                arrays[f"p{n}_incyc_{p}"] = np.asarray(c, dtype=np.int64)
            first_in = min((c[0] for c in in_cyc.values() if len(c)), default=0)
            last_out = max((c[-1] for c in out_cyc.values() if len(c)), default=0)
            cycles.append(int(last_out - first_in + 1))
            seconds.append(time.perf_counter() - start)
    except Exception as exc:  # reported to the caller through result.json
        error = f"{type(exc).__name__}: {exc}"
    np.savez(tb_dir / "result.npz", **arrays)
    (tb_dir / "result.json").write_text(json.dumps({"cycles": cycles, "seconds": seconds, "error": error}))
    assert error is None, error


class _BeatPlayer:
    """Drives the ports from Python every cycle (see the module docstring)."""

    def __init__(self, dut):
        self.dut = dut

    def prepare(self, inputs, outputs, meta) -> None:
        for p in inputs:
            _port(self.dut, p, "valid").value = 0
        for p in outputs:
            _port(self.dut, p, "ready").value = 0

    async def play(self, inputs, outputs, meta, rng):
        return await _play(
            self.dut,
            inputs,
            outputs,
            stall_prob=meta["stall_prob"],
            rng=rng,
            max_idle=meta["max_idle_cycles"],
        )


@cocotb.test()
async def play_stream_programs(dut):
    """Play every program in $TPEGEN_TB_DIR and record outputs and handshake cycles."""
    await play_programs(dut, _BeatPlayer(dut))
