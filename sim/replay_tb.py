"""cocotb testbench for a :class:`~tpegen.sim.replay.ReplayHarness`: Python touches a program three times.

Started by :meth:`tpegen.sim.verilator.VerilatedModel.run` on a model from
:func:`tpegen.sim.replay.build_replay`, with the same program and result files as
:mod:`tpegen.sim.stream_tb` (whose :func:`~tpegen.sim.stream_tb.play_programs` does the reset,
bookkeeping and files). While ``rst`` is high it writes the input beats into the harness's memories
and sets the counts; after the release it awaits the rising edge of ``done`` (a single trigger:
the clock is cocotb's C++ clock, so no Python runs while the design computes); then it reads the
output memories and the stamp memories (one entry per run of handshakes on consecutive cycles,
expanded here to one cycle per beat).

Memory words are read and written through cocotb's GPI handles (``handle._handle``, cocotb's
simulator object), one call per word: cocotb's ``.value`` would build a ``LogicArray`` and schedule
each write, about ten times the cost, and with thousands of beats per program that is what a run
would spend its time on.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from tpegen.sim.stream_tb import play_programs

_DEPOSIT = 0  # cocotb's GPI set action for a plain write


def _to_binstr(beats: np.ndarray, width: int, per_word: int) -> list[str]:
    """(beats, nbytes) little-endian payloads -> MSB-first binary strings of ``per_word`` beats of
    ``width`` bits each, beat 0 in the least significant bits (the last word padded with zeros)."""
    pad = -len(beats) % per_word
    beats = np.pad(beats, ((0, pad), (0, 0)))
    bits = np.unpackbits(np.ascontiguousarray(beats[:, ::-1]), axis=1)[:, beats.shape[1] * 8 - width :]
    bits = bits.reshape(-1, per_word, width)[:, ::-1].reshape(-1, per_word * width)
    text = (bits + ord("0")).astype(np.uint8).tobytes().decode()
    step = per_word * width
    return [text[i : i + step] for i in range(0, len(text), step)]


def _from_binstr(words: list[str], width: int) -> np.ndarray:
    """MSB-first binary strings of ``width`` bits -> (beats, nbytes) little-endian payload bytes."""
    nbytes = max(1, (width + 7) // 8)
    if not words:
        return np.zeros((0, nbytes), dtype=np.uint8)
    # Verilator answers X/Z-free strings; unwritten bits cannot occur (every word read was written).
    bits = np.frombuffer("".join(words).encode(), dtype=np.uint8).reshape(len(words), width) - ord("0")
    bits = np.pad(bits, ((0, 0), (nbytes * 8 - width, 0)))
    return np.ascontiguousarray(np.packbits(bits, axis=1)[:, ::-1])


class _Memory:
    """GPI handles of the words of one harness memory, made once per run."""

    def __init__(self, handle):
        self.gpi = handle._handle
        self.depth, self.width = len(handle), len(handle[0])
        self.words: list = []

    def handles(self, n: int) -> list:
        """Handles of words 0..n-1."""
        if n > self.depth:
            raise ValueError(
                f"{n} words exceed the replay memory depth {self.depth} (more beats than build_replay was given)"
            )
        while len(self.words) < n:
            self.words.append(self.gpi.get_handle_by_index(len(self.words)))
        return self.words[:n]


class _ReplayPlayer:
    """Loads a program into the harness, awaits ``done``, reads the results back."""

    def __init__(self, dut):
        self.dut = dut
        self.memories: dict[str, _Memory] = {}

    def memory(self, name: str) -> _Memory:
        if name not in self.memories:
            self.memories[name] = _Memory(getattr(self.dut, name))
        return self.memories[name]

    def prepare(self, inputs, outputs, meta) -> None:
        if meta["stall_prob"]:
            raise ValueError("the replay testbench plays programs without stalls (stall_prob must be 0)")
        self.dut.max_idle.value = meta["max_idle_cycles"]
        for p, beats in inputs.items():
            getattr(self.dut, f"count_{p}").value = len(beats)
            mem = self.memory(f"in_{p}")
            per_word = self.memory(f"stamps_{p}").depth // mem.depth  # the harness's BEATS_PER_WORD
            words = _to_binstr(beats, mem.width // per_word, per_word)
            for handle, word in zip(mem.handles(len(words)), words, strict=True):
                handle.set_signal_val_binstr(_DEPOSIT, word)
        for p, n in outputs.items():
            getattr(self.dut, f"count_{p}").value = n

    def stamps(self, port: str, beats: int) -> np.ndarray:
        """Cycle of each of the first ``beats`` handshakes of ``port``, from its stamp runs."""
        n = int(getattr(self.dut, f"runs_{port}").value)
        entries = [int(h.get_signal_val_binstr(), 2) for h in self.memory(f"stamps_{port}").handles(n)]
        entry = np.array(entries, dtype=np.uint64)
        first_cycle = (entry & np.uint64(0xFFFFFFFF)).astype(np.int64)
        first_beat = (entry >> np.uint64(32)).astype(np.int64)
        beat = np.arange(beats, dtype=np.int64)
        run = np.searchsorted(first_beat, beat, side="right") - 1
        return first_cycle[run] + beat - first_beat[run]

    async def play(self, inputs, outputs, meta, rng):
        await RisingEdge(self.dut.done)
        if int(self.dut.stuck.value):
            taken = {p: int(getattr(self.dut, f"taken_{p}").value) for p in inputs}
            seen = {p: int(getattr(self.dut, f"seen_{p}").value) for p in outputs}
            raise RuntimeError(
                f"no handshake for {meta['max_idle_cycles']} cycles: inputs taken {taken}, outputs seen {seen}"
            )
        in_cyc = {p: self.stamps(p, len(beats)) for p, beats in inputs.items()}
        out, out_cyc = {}, {}
        for p in outputs:
            seen = int(getattr(self.dut, f"seen_{p}").value)
            mem = self.memory(f"out_{p}")
            out[p] = _from_binstr([h.get_signal_val_binstr() for h in mem.handles(seen)], mem.width)
            out_cyc[p] = self.stamps(p, seen)
        return out, in_cyc, out_cyc


@cocotb.test()
async def replay_stream_programs(dut):
    """Play every program in $TPEGEN_TB_DIR from the harness's memories."""
    await play_programs(dut, _ReplayPlayer(dut), clock_impl="gpi")
