"""Parameters of the accelerator top and the geometry they give around one array.

:class:`SystemParams` is the ``system:`` section of a design config (every field has a default, so
a config without the section still gets an accelerator). :class:`SystemGeometry` combines it with
the array's parameters: the width of a row of each on-chip memory, their depths, the host-memory
pitch of each row kind and the footprint of an EXEC command. The RTL (:mod:`tpegen.hw.system`),
the ISA checker (:mod:`tpegen.hw.system.isa`), the compiler and both simulators read the geometry
from here, so they cannot disagree about a size.

Memory rows are array beats: an A-scratchpad row is one activation beat of the array (OS: R
lanes of ``a``; WS: R lanes of ``a``; LUT: ``tile_m x k_tile`` activations), a W-scratchpad row
one weight beat (OS/WS: C lanes of ``w``; LUT: one bit plane of a weight tile; dot-product tile,
LUT kind: a whole tile of plain weights), an accumulator row
one result beat (OS/WS: C lanes; LUT: ``tile_m x tile_n`` lanes), a Q row one 64-bit requantization
entry per accumulator lane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tpegen.errors import ConfigError, check_int

KIB = 1024
QPARAM_ENTRY_BITS = 64  # multiplier int32 | shift u6 (bits 32..37) | zero point int8 (bits 40..47)
MAX_ROWS = (1 << 16) - 1  # scratchpad and accumulator addresses are 16-bit fields
OUTPUT_FORMATS = ("raw", "int8", "bf16")


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def next_pow2(x: int) -> int:
    return 1 << max(0, (x - 1).bit_length())


@dataclass(frozen=True)
class SystemParams:
    """The ``system:`` section: sizes of the accelerator around the array.

    Parameters
    ----------
    axi_bytes : AXI4 data width in bytes (power of two, 4..64); also the host bandwidth in bytes
        per cycle that the memory model assumes.
    scratchpad_a_kib, scratchpad_w_kib : capacity of the A (activation) and W (weight) scratchpads
        in KiB (1..1024); depth = capacity // row width.
    accumulator_kib : capacity of the accumulator memory in KiB (1..4096).
    qparam_rows : rows of the requantization-parameter memory (1..64), one entry per lane each.
    queue_depth : depth of each unit's command queue (2..64).
    """

    axi_bytes: int = 16
    scratchpad_a_kib: int = 16
    scratchpad_w_kib: int = 16
    accumulator_kib: int = 32
    qparam_rows: int = 4
    queue_depth: int = 8

    def __post_init__(self) -> None:
        check_int("system.axi_bytes", self.axi_bytes, 4, 64)
        if not _pow2(self.axi_bytes):
            raise ConfigError("system.axi_bytes", "a power of two in 4..64", self.axi_bytes)
        check_int("system.scratchpad_a_kib", self.scratchpad_a_kib, 1, 1024)
        check_int("system.scratchpad_w_kib", self.scratchpad_w_kib, 1, 1024)
        check_int("system.accumulator_kib", self.accumulator_kib, 1, 4096)
        check_int("system.qparam_rows", self.qparam_rows, 1, 64)
        # depth 1 would make Amaranth's SyncFIFO emit zero-width wires, which Verilator rejects
        check_int("system.queue_depth", self.queue_depth, 2, 64)

    @classmethod
    def from_dict(cls, values: Any) -> SystemParams:
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ConfigError("system", "a mapping of system parameters", values)
        names = [f for f in cls.__dataclass_fields__]
        for key in values:
            if key not in names:
                raise ConfigError(f"system.{key}", "one of " + ", ".join(names) + " (unknown key)")
        return cls(**values)

    def to_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True)
class SystemGeometry:
    """Row widths, depths and EXEC semantics of the accelerator built around one design.

    ``kind`` is ``"os"`` (MAC or FMA output-stationary array), ``"ws"`` (MAC weight-stationary)
    or ``"lut"`` (LUT tensor core, and the dot-product tile: the same streams with ``planes = 1``).
    ``fp`` is True for the FMA family. ``design`` is the config the geometry was built from (not
    compared): a LUT-kind EXEC's array cycles are its driver's timing model.
    """

    kind: str
    fp: bool
    system: SystemParams
    rows: int  # OS/WS: array rows R; LUT: tile_m
    cols: int  # OS/WS: array cols C; LUT: tile_n
    a_row_bits: int
    w_row_bits: int
    acc_lanes: int
    acc_lane_bits: int
    planes: int = 1  # LUT: weight bit planes b (weight beats per weight tile)
    k_tile: int = 1  # LUT: activations per row of a table block (tile_k * group_size)
    os_cell: str = "three_register"  # OS: the array's cell (array.os_cell), which sets EXEC timing
    design: Any = field(default=None, compare=False, repr=False)  # the DesignConfig (LUT kind: EXEC timing)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def of(cls, config: Any, system: SystemParams | None = None) -> SystemGeometry:
        """Geometry of ``config`` (a :class:`tpegen.config.DesignConfig`) with ``system``
        (default: the config's own ``system`` section). ``kind`` is the registry entry's
        ``system`` (:mod:`tpegen.registry`); a family without one has no accelerator top."""
        from amaranth import Shape

        from tpegen.registry import ENTRIES, entry_for

        system = system or getattr(config, "system", None) or SystemParams()
        kind = entry_for(config).system
        if kind is None:
            tops = ", ".join(e.key for e in ENTRIES if e.system is not None)
            raise ConfigError("pe.type", f"a family with an accelerator top ({tops})", config.family)
        if kind == "lut":  # LUT core, or the dot-product tile (its params alias k_tile, planes = 1, ...)
            p = config.pe
            if config.family == "lut":  # the sequencer feeds activations and offline-encoded weights
                p.require_default_variant("on the accelerator top (system:)")
            return cls(
                kind=kind,
                fp=False,
                system=system,
                rows=p.tile_m,
                cols=p.tile_n,
                a_row_bits=p.tile_m * p.k_tile * p.act_bits,
                w_row_bits=p.weight_payload_bits,
                acc_lanes=p.tile_m * p.tile_n,
                acc_lane_bits=p.acc_bits,
                planes=p.planes,
                k_tile=p.k_tile,
                design=config,
            )
        arr = config.array
        pe = arr.pe
        if config.family == "fma" and pe.fma.dot:  # the system's FP golden and EXEC chain are per product
            field = "pe.terms" if pe.terms > 1 else "pe.align_bits"
            allowed = "1" if pe.terms > 1 else "null"
            raise ConfigError(field, f"{allowed} on the accelerator top (system:)", getattr(pe, field[3:]))
        if config.family == "fma" and pe.pipeline_stages != 1:  # EXEC timing assumes a combinational PE
            raise ConfigError("pe.pipeline_stages", "1 on the accelerator top (system:)", pe.pipeline_stages)
        return cls(
            kind=kind,
            fp=config.family == "fma",
            system=system,
            rows=arr.rows,
            cols=arr.cols,
            a_row_bits=arr.rows * Shape.cast(pe.a_shape).width,
            w_row_bits=arr.cols * Shape.cast(pe.w_shape).width,
            acc_lanes=arr.cols,
            acc_lane_bits=Shape.cast(arr.out_shape).width,
            os_cell=getattr(arr, "os_cell", "three_register"),
            design=config,
        )

    # -- memories ----------------------------------------------------------------------------
    @property
    def acc_row_bits(self) -> int:
        return self.acc_lanes * self.acc_lane_bits

    @property
    def q_row_bits(self) -> int:
        return self.acc_lanes * QPARAM_ENTRY_BITS

    def _depth(self, kib: int, bits: int, what: str) -> int:
        depth = kib * KIB * 8 // bits
        if depth < 1:
            raise ConfigError(f"system.{what}", f"at least one row of {bits} bits", f"{kib} KiB")
        return min(depth, MAX_ROWS)

    @cached_property
    def a_depth(self) -> int:
        return self._depth(self.system.scratchpad_a_kib, self.a_row_bits, "scratchpad_a_kib")

    @cached_property
    def w_depth(self) -> int:
        return self._depth(self.system.scratchpad_w_kib, self.w_row_bits, "scratchpad_w_kib")

    @cached_property
    def acc_depth(self) -> int:
        return self._depth(self.system.accumulator_kib, self.acc_row_bits, "accumulator_kib")

    @property
    def q_depth(self) -> int:
        return self.system.qparam_rows

    def depth(self, target: str) -> int:
        """Rows of memory ``target`` (``"A"``, ``"W"``, ``"Q"`` or ``"C"``)."""
        return {"A": self.a_depth, "W": self.w_depth, "Q": self.q_depth, "C": self.acc_depth}[target]

    def row_bits(self, target: str) -> int:
        return {"A": self.a_row_bits, "W": self.w_row_bits, "Q": self.q_row_bits, "C": self.acc_row_bits}[
            target
        ]

    # -- host memory -------------------------------------------------------------------------
    @property
    def axi_bytes(self) -> int:
        return self.system.axi_bytes

    def pitch(self, bits: int) -> int:
        """Host-memory pitch of a row of ``bits`` bits: next power of two >= max(bytes, D)."""
        return next_pow2(max(-(-bits // 8), self.axi_bytes))

    def load_pitch(self, target: str) -> int:
        return self.pitch(self.row_bits(target))

    def output_lane_bits(self, fmt: str) -> int:
        """Bits per lane of a STORE in format ``fmt``."""
        return {"raw": self.acc_lane_bits, "int8": 8, "bf16": 16}[fmt]

    def store_pitch(self, fmt: str) -> int:
        return self.pitch(self.acc_lanes * self.output_lane_bits(fmt))

    def output_formats(self) -> tuple[str, ...]:
        """STORE formats this design supports."""
        if self.fp:
            return ("raw", "bf16")
        return ("raw", "int8") if self.acc_lane_bits <= 32 else ("raw",)

    # -- EXEC --------------------------------------------------------------------------------
    def exec_footprint(self, f: dict[str, int]) -> tuple[int, int, int]:
        """One past the last A, W and accumulator row an EXEC with fields ``f`` touches."""
        mt, nt, kt, mb = f["mt"], f["nt"], f["kt"], f["mb"]
        if self.kind == "os":
            a, w, c = mt * kt, nt * kt, mt * self.rows
        elif self.kind == "ws":
            a, w, c = kt * mb, nt * kt * self.rows, mb
        else:
            a = mt * kt
            w = nt * self.planes if kt == 1 else nt * kt * self.planes
            c = mt
        return f["a_addr"] + a, f["w_addr"] + w, f["c_addr"] + (nt - 1) * f["c_stride"] + c

    def exec_macs(self, f: dict[str, int]) -> int:
        """Multiply-accumulate slots (including zero padding) an EXEC issues to the array."""
        mt, nt, kt, mb = f["mt"], f["nt"], f["kt"], f["mb"]
        if self.kind == "os":
            return mt * nt * kt * self.rows * self.cols
        if self.kind == "ws":
            return nt * kt * mb * self.rows * self.cols
        return nt * mt * kt * self.rows * self.cols * self.k_tile
