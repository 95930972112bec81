"""What every hardware family provides to the driver, and the GEMM backends built on it.

An :class:`Accelerator` binds one validated design configuration to its RTL generator, its
numeric golden model, its timing model and the mapping of a GEMM onto its streams. The driver,
the CLI and the tests only talk to this interface, so a new PE family plugs in by subclassing it
and adding one entry to the table of :mod:`tpegen.registry` (parameters, generator, this driver).
The driver is the family's only numeric model (:meth:`Accelerator.golden`) and only timing model
(:meth:`Accelerator.cycles` and :meth:`Accelerator.schedule`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tpegen.errors import ConfigError

if TYPE_CHECKING:
    from amaranth.lib import wiring

    from tpegen.sim.verilator import StreamProgram, VerilatedModel

BACKENDS = ("golden", "rtl", "cycle")
RTL_PATHS = ("auto", "replay", "cocotb")  # see Accelerator.run_rtl
# run_rtl(path="auto") replays programs of more than this many beats on a port (else per-beat), and
# compiles the replay build at -O2 from OPTIMIZE_MIN_BEATS on
REPLAY_MIN_BEATS = 1 << 12
OPTIMIZE_MIN_BEATS = 1 << 16


@dataclass
class Program:
    """A GEMM mapped onto an array: the stream beats and how to turn result beats into C."""

    stream: StreamProgram
    decode: Callable[[dict[str, np.ndarray]], np.ndarray]
    tiles: int


@dataclass
class GemmResult:
    """Output of one GEMM on one backend; ``cycles`` is None for the untimed golden backend.

    ``sim`` holds the cycle-level simulator's full result (timeline, traffic) on the ``cycle``
    backend."""

    output: np.ndarray
    backend: str
    cycles: int | None = None
    sim: Any = None


class Accelerator(abc.ABC):
    """A generated array and everything needed to run GEMMs on it (see module docstring)."""

    family: str = ""

    def __init__(self, config: Any):
        self.config = config

    # -- hardware ---------------------------------------------------------------------------
    @property
    def top_name(self) -> str:
        return "tpegen_" + "".join(ch if ch.isalnum() else "_" for ch in self.config.name)

    @abc.abstractmethod
    def component(self) -> wiring.Component:
        """A fresh instance of the top-level Amaranth component."""

    @cached_property
    def top(self) -> wiring.Component:
        """The top-level component this accelerator generates Verilog from."""
        return self.component()

    @cached_property
    def verilog(self) -> str:
        from tpegen.hw.hierarchy import to_verilog

        return to_verilog(self.top, self.top_name)

    @abc.abstractmethod
    def latency(self) -> dict[str, Any]:
        """Latency/throughput facts for the manifest (documented formulas, in cycles)."""

    def manifest(self) -> dict[str, Any]:
        from amaranth import Shape
        from amaranth.lib import wiring

        self.verilog  # noqa: B018 -- elaborates self.top, so its port list is the generated one
        comp = self.top
        ports = [
            {"name": "clk", "direction": "in", "width": 1},
            {"name": "rst", "direction": "in", "width": 1},
        ]
        for path, member, _value in comp.signature.flatten(comp):
            ports.append(
                {
                    "name": "__".join(str(p) for p in path),
                    "direction": "in" if member.flow == wiring.In else "out",
                    "width": Shape.cast(member.shape).width,
                }
            )
        return {
            "top": self.top_name,
            "family": self.family,
            "config": self.config.to_dict(),
            "ports": ports,
            "timing": self.latency(),
            "macs_per_cycle": self.macs_per_cycle,
        }

    @property
    @abc.abstractmethod
    def macs_per_cycle(self) -> int:
        """Peak multiply-accumulates per cycle."""

    # -- numerics and timing ----------------------------------------------------------------
    @abc.abstractmethod
    def check_operands(self, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate A (M x K) and W (K x N); return them converted to the model's dtypes."""

    @abc.abstractmethod
    def golden(self, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The numeric model's C = A @ W, bit-exact with the hardware."""

    @abc.abstractmethod
    def program(self, a: np.ndarray, w: np.ndarray) -> Program:
        """Tile the GEMM onto the array as stream beats."""

    @abc.abstractmethod
    def cycles(self, m: int, k: int, n: int) -> int:
        """Timing model: cycles the RTL takes for an M x K x N GEMM (as :meth:`program` tiles it)."""

    def operand_cycles(self, a: np.ndarray, w: np.ndarray) -> int:
        """Timing model for these operands (A, W as :meth:`check_operands` accepts them): :meth:`cycles`
        of their shape, unless the design's latency depends on the values (the bit-serial tile)."""
        return self.cycles(np.shape(a)[0], np.shape(a)[1], np.shape(w)[1])

    def operand_schedule(self, a: np.ndarray, w: np.ndarray):
        """:meth:`schedule` for these operands (checked ones): the shape's, unless the design's latency
        depends on the values; its timeline's total equals :meth:`operand_cycles`."""
        return self.schedule(np.shape(a)[0], np.shape(a)[1], np.shape(w)[1])

    @abc.abstractmethod
    def workload_shape(self) -> tuple[int, int, int]:
        """The default energy workload (M, K, N): a steady-state GEMM of many tiles back to back, so
        that the timing model's utilization (:meth:`workload_utilization`) is above 90% and fill and
        drain cycles do not dominate the energy per MAC. Each family documents its choice."""

    def workload_utilization(self, m: int, k: int, n: int) -> float:
        """MACs of an M x K x N GEMM over the peak MACs of the :meth:`cycles` it takes."""
        return m * k * n / (self.cycles(m, k, n) * self.macs_per_cycle)

    @abc.abstractmethod
    def random_operands(
        self, rng: np.random.Generator, m: int, k: int, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random A (M x K) and W (K x N) drawn uniformly from the configured operand ranges."""

    @abc.abstractmethod
    def schedule(self, m: int, k: int, n: int):
        """Per-tile timing model and buffer traffic of an M x K x N GEMM for the cycle-level
        simulator (a :class:`tpegen.sim.cycle.TileSchedule`, tiles in :meth:`program`'s order);
        its timeline's total equals :meth:`cycles`."""

    @abc.abstractmethod
    def verification_cases(
        self, rng: np.random.Generator, n_random: int
    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Edge-case GEMMs (extreme values, K = 1, K much larger than the array, zeros, wrap-around,
        shapes that are not multiples of the array) followed by ``n_random`` random ones, as
        ``(label, A, W)``."""

    # -- backends ---------------------------------------------------------------------------
    def rtl_model(self, *, trace: bool = False) -> VerilatedModel:
        """The Verilator build of this design for the per-beat testbench (cached); ``trace`` builds it
        with VCD tracing. The testbench touches only the top module's ports, so only they are
        visible to VPI and Verilator optimises across the rest (a 32x32 array builds in a fraction
        of the time ``--public-flat-rw`` takes)."""
        from tpegen.sim.verilator import build

        return build(self.verilog, self.top_name, trace=trace, vpi_module=self.top_name)

    @cached_property
    def _replay_models(self) -> dict[tuple[int, bool], VerilatedModel]:
        return {}

    def replay_model(self, depth: int, *, optimize: bool = True) -> VerilatedModel:
        """The Verilator build of this design inside the replay harness of memory depth ``depth``
        (:mod:`tpegen.sim.replay`; cached on disk, and here per depth: making its Verilog takes
        seconds on a large array). ``optimize`` compiles the C++ at ``-O2``
        (:data:`~tpegen.sim.verilator.MAKE_ENV_FAST`), else ``-O0``: 2.5-5x the simulation speed for
        several times the build time (a 32x32 array: about 200 s instead of 48 s)."""
        from tpegen.sim.replay import build_replay

        if (depth, optimize) not in self._replay_models:
            name = self.top_name + "_replay"
            model = build_replay(self.component, name, depth, dut_verilog=self.verilog, optimize=optimize)
            self._replay_models[depth, optimize] = model
        return self._replay_models[depth, optimize]

    def run_rtl(
        self,
        gemms: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        stall_prob: float = 0.0,
        seed: int = 0,
        vcd_path: Path | None = None,
        path: str = "auto",
    ) -> list[GemmResult]:
        """Run several GEMMs on the Verilated RTL in one simulation (reset between them);
        ``vcd_path`` saves the waveform of the whole run there (a build with tracing).

        ``path`` picks the testbench (both give identical outputs and cycles): ``replay`` plays the
        stream beats from memories inside the simulation (:mod:`tpegen.sim.replay`, no Python per
        cycle), ``cocotb`` drives every beat from Python (:mod:`tpegen.sim.stream_tb`: random
        stalls and waveforms need it), ``auto`` takes ``replay`` for programs of more than
        :data:`REPLAY_MIN_BEATS` beats on a port without stalls or a waveform (a shorter one runs
        in less time on the per-beat build, which ``verify`` shares, than a second build takes)."""
        if path not in RTL_PATHS:
            raise ConfigError("path", "one of " + ", ".join(RTL_PATHS), path)
        checked = [self.check_operands(a, w) for a, w in gemms]
        programs = [self.program(a, w) for a, w in checked]
        streams = [p.stream for p in programs]
        beats = max((len(b) for st in streams for b in st.inputs.values()), default=0)
        if path == "auto":
            plain = stall_prob == 0 and vcd_path is None
            path = "replay" if plain and beats > REPLAY_MIN_BEATS else "cocotb"
        if path == "replay" and (stall_prob > 0 or vcd_path is not None):
            raise ConfigError("path", "'cocotb' or 'auto' with random stalls or a waveform", path)
        if path == "replay":
            from tpegen.sim.replay import replay_depth

            # -O2 pays for itself on long programs only (see replay_model)
            model = self.replay_model(replay_depth(streams), optimize=beats >= OPTIMIZE_MIN_BEATS)
        else:
            model = self.rtl_model(trace=vcd_path is not None)
        results = model.run(streams, stall_prob=stall_prob, seed=seed, vcd_path=vcd_path)
        return [
            GemmResult(p.decode(r.outputs), "rtl", r.cycles) for p, r in zip(programs, results, strict=True)
        ]

    def run_gemm(
        self, a: np.ndarray, w: np.ndarray, backend: str = "golden", *, vcd_path: Path | None = None
    ) -> GemmResult:
        """C = A @ W on ``backend``: ``golden`` numeric model, ``rtl`` Verilator simulation or
        ``cycle`` (the cycle-level simulator :mod:`tpegen.sim.cycle`, cycles equal to the RTL's).
        ``vcd_path`` (RTL only) saves the waveform there."""
        if backend not in BACKENDS:
            raise ConfigError("--backend", "one of " + ", ".join(BACKENDS), backend)
        if vcd_path is not None and backend != "rtl":
            raise ConfigError("--waves", "used with --backend rtl (only the RTL has waveforms)", backend)
        if backend == "rtl":
            return self.run_rtl([(a, w)], vcd_path=vcd_path)[0]
        if backend == "cycle":
            from tpegen.sim.cycle import simulate

            sim = simulate(self, a, w)
            return GemmResult(sim.output, "cycle", sim.cycles, sim)
        a, w = self.check_operands(a, w)
        return GemmResult(self.golden(a, w), "golden", None)


def check_shapes(a: np.ndarray, w: np.ndarray) -> None:
    """A is M x K, W is K x N with matching K."""
    if a.ndim != 2 or w.ndim != 2:
        raise ConfigError("A/W", "2-D matrices", f"shapes {a.shape} and {w.shape}")
    if a.shape[1] != w.shape[0]:
        raise ConfigError("A/W", "shapes M x K and K x N with the same K", f"{a.shape} and {w.shape}")
