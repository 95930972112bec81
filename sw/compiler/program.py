"""What the compiler hands out: the program with its host image and outputs, and the layer and
requantization descriptions it takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tpegen.errors import ConfigError
from tpegen.hw.system import isa
from tpegen.hw.system.isa import Instruction
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim import system_rows
from tpegen.sim.packing import unpack_lanes
from tpegen.sim.requant import pack_qparams


@dataclass(frozen=True)
class Requant:
    """Requantization of one layer's int32 accumulators to int8 (STORE format ``int8``).

    Per output channel: ``multiplier`` (int32) and ``shift`` (right shift 0..63), as
    :func:`tpegen.sim.requant.quantize_multiplier` builds them from real scales; one
    ``zero_point`` (int8) for the layer. See :func:`tpegen.sim.requant.requantize`."""

    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int = 0

    def entries(self, channels: int) -> np.ndarray:
        """The 64-bit Q entries of ``channels`` channels (uint64; checks the lengths and ranges)."""
        m, s = np.asarray(self.multiplier), np.asarray(self.shift)
        for name, v in (("requant.multiplier", m), ("requant.shift", s)):
            if v.shape != (channels,):
                raise ConfigError(name, f"one value per output channel (shape ({channels},))", v.shape)
        return pack_qparams(m, s, np.full(channels, int(self.zero_point)))


@dataclass(frozen=True)
class Layer:
    """One layer of :func:`compile_mlp`: ``y = requant(x @ w)`` (+ReLU), or raw ``x @ w`` if
    ``requant`` is None (last layer only)."""

    w: np.ndarray
    requant: Requant | None = None
    relu: bool = False


@dataclass(frozen=True)
class Traffic:
    """Host-memory bytes a program moves: ``read`` by LOADs, ``written`` by STOREs (whole row
    pitches, as the AXI bursts carry them); ``by_tensor`` splits them per host tensor."""

    read: int
    written: int
    by_tensor: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.read + self.written


@dataclass(frozen=True)
class HostTensor:
    """An (M, N) result in host memory: ``blocks`` N blocks of ``block_rows`` rows at ``pitch``
    from ``addr``; a row holds ``tile[0] x tile[1]`` lanes (m-major) of ``lane_bits`` bits.
    ``transposed``: the rows hold the transpose (OS layer chains store Y^T)."""

    name: str
    addr: int
    blocks: int
    block_rows: int
    pitch: int
    lane_bits: int
    signed: bool
    tile: tuple[int, int]
    shape: tuple[int, int]
    transposed: bool = False

    @property
    def nbytes(self) -> int:
        return self.blocks * self.block_rows * self.pitch

    def read(self, host: np.ndarray) -> np.ndarray:
        """Decode the matrix from a host image: int64 values (raw integers sign-extended, int8),
        or unsigned bit patterns (FMA raw accumulator format, bf16)."""
        host = np.asarray(host, dtype=np.uint8).reshape(-1)
        tm, tn = self.tile
        count = self.blocks * self.block_rows
        nbytes = -(-tm * tn * self.lane_bits // 8)
        rows = system_rows.read_rows(host, self.addr, self.pitch, count, nbytes)
        lanes = _unpack(rows, self.lane_bits, tm * tn, self.signed)
        x = lanes.reshape(self.blocks, self.block_rows, tm, tn).transpose(1, 2, 0, 3)
        x = x.reshape(self.block_rows * tm, self.blocks * tn)
        m, n = self.shape
        return x[:n, :m].T.copy() if self.transposed else x[:m, :n].copy()


@dataclass
class CompiledProgram:
    """A program for one design's accelerator: commands, initial host image, outputs.

    ``expected_traffic`` and ``macs`` (useful multiply-accumulates, padding excluded) are known
    before running; ``notes`` are the listing's header lines (tiling, buffers, traffic)."""

    config: Any
    geometry: SystemGeometry
    instructions: list[Instruction]
    host: np.ndarray
    outputs: dict[str, HostTensor]
    expected_traffic: Traffic
    macs: int
    notes: list[str] = field(default_factory=list)

    def listing(self) -> str:
        """Readable program: header comments, then one command per line (:func:`isa.listing`)."""
        return "".join(f"# {line}\n" for line in self.notes) + isa.listing(self.instructions)

    def binary(self) -> bytes:
        return isa.encode_program(self.instructions)

    def read_outputs(self, host: np.ndarray) -> dict[str, np.ndarray]:
        return {name: t.read(host) for name, t in self.outputs.items()}


def _unpack(rows: np.ndarray, bits: int, lanes: int, signed: bool) -> np.ndarray:
    if bits in (8, 16, 32):
        u = (
            np.ascontiguousarray(rows[:, : lanes * bits // 8])
            .view(f"<u{bits // 8}")
            .reshape(len(rows), lanes)
        )
        return u.view(f"<i{bits // 8}").astype(np.int64) if signed else u.astype(np.int64)
    return unpack_lanes(rows, bits, lanes, signed=signed)
