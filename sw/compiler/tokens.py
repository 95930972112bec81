"""Token waits from hazards: the ordering of a program's commands between the three units.

VTA-style double buffering falls out of it: the first use of each buffer half waits for nothing,
a LOAD into a half waits (EXEC -> LOAD) for the last EXEC reading the block it replaces, an EXEC
waits for its operands (LOAD -> EXEC) and, when it starts a new accumulator block, for the STORE
that emptied the half (STORE -> EXEC); a STORE waits for its EXEC (EXEC -> STORE) and its Q rows
(LOAD -> STORE); a LOAD of a layer's input waits for the STOREs that wrote it (STORE -> LOAD), and
a Q LOAD for the STOREs still reading the half it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tpegen.hw.system import isa
from tpegen.hw.system.isa import Instruction, Opcode, Unit


@dataclass
class Cmd:
    """A command under construction (its wait and signal masks still grow)."""

    opcode: Opcode
    args: dict[str, int]
    comment: str
    wait: int = 0
    signal: int = 0

    @property
    def unit(self) -> Unit:
        return isa.UNIT_OF[self.opcode]


class TokenBuilder:
    """Emits commands and derives their token waits from resource hazards.

    Each command names the resources it reads and writes (scratchpad / accumulator / Q halves,
    host tensors written by an earlier layer). A command depends on the last writer of what it
    reads or writes and on the readers of what it overwrites since that write (read-after-write,
    write-after-read, write-after-write). Per other unit only the latest such command matters
    (units run in order); if a wait on it is not already implied by an earlier wait of this unit,
    the command waits for a token from that unit and the command depended on signals one. Waited
    commands are strictly increasing per unit pair, so the n-th wait takes the token of exactly
    the n-th signal, every signal has its wait (semaphores end at zero) and every wait refers to
    an earlier command: with in-order dispatch the earliest unfinished command can always start,
    whatever the queue depth, so the program cannot deadlock."""

    def __init__(self) -> None:
        self.cmds: list[Cmd] = []
        self.writer: dict[str, int] = {}
        self.readers: dict[str, dict[Unit, int]] = {}
        self.waited: dict[tuple[Unit, Unit], int] = {}
        self.traffic: dict[str, int] = {}
        self.read_bytes = self.written_bytes = 0

    def emit(
        self, opcode: Opcode, args: dict[str, int], comment: str, reads=(), writes=(), host: tuple = ()
    ) -> int:
        index = len(self.cmds)
        cmd = Cmd(opcode, args, comment)
        deps: dict[Unit, int] = {}

        def need(i: int) -> None:
            u = self.cmds[i].unit
            deps[u] = max(deps.get(u, -1), i)

        for r in (*reads, *writes):
            if r in self.writer:
                need(self.writer[r])
        for w in writes:
            for i in self.readers.get(w, {}).values():
                need(i)
        for src, i in deps.items():
            if src == cmd.unit or i <= self.waited.get((src, cmd.unit), -1):
                continue
            self.waited[(src, cmd.unit)] = i
            cmd.wait |= 1 << src
            self.cmds[i].signal |= 1 << cmd.unit
        for r in reads:
            self.readers.setdefault(r, {})[cmd.unit] = index
        for w in writes:
            self.writer[w] = index
            self.readers[w] = {}
        if host:  # (tensor name, bytes)
            name, nbytes = host
            self.traffic[name] = self.traffic.get(name, 0) + nbytes
            if opcode is Opcode.STORE:
                self.written_bytes += nbytes
            else:
                self.read_bytes += nbytes
        self.cmds.append(cmd)
        return index

    def instructions(self) -> list[Instruction]:
        return [Instruction(c.opcode, c.wait, c.signal, c.args, c.comment) for c in self.cmds]


class Buffers:
    """Two alternating halves of one on-chip memory (or one whole buffer when a block needs more
    than half), each remembering which block it holds; resources ``<mem>0`` / ``<mem>1``."""

    def __init__(self, mem: str, depth: int, need: int):
        half = depth // 2
        if need <= half:
            self.slots = [(0, (f"{mem}0",)), (half, (f"{mem}1",))]
        else:
            self.slots = [(0, (f"{mem}0", f"{mem}1"))]
        self.double = len(self.slots) == 2
        self.keys: list[Any] = [None] * len(self.slots)
        self.last = len(self.slots) - 1

    def get(self, key: Any) -> tuple[int, tuple[str, ...], bool]:
        """(base row, resources, hit) of the buffer holding ``key``, allocating the least
        recently used one on a miss."""
        if key in self.keys:
            s, hit = self.keys.index(key), True
        else:
            s, hit = (self.last + 1) % len(self.slots), False
            self.keys[s] = key
        self.last = s
        return self.slots[s][0], self.slots[s][1], hit
