"""Runtime: run a :class:`~tpegen.sw.compiler.CompiledProgram` on a backend of the accelerator system.

Backends (the same program and host image on each):

* ``golden``: the functional model :func:`tpegen.sim.system_golden.run_golden` (no cycles);
* ``cycle``: the golden's values plus the cycle-exact timing model
  :func:`tpegen.sim.system_timing.simulate_timing` (cycles equal the RTL's);
* ``rtl``: the Verilated accelerator top driven over AXI (:func:`tpegen.sim.system_rtl.run_rtl`).

Host bytes are measured by the backend (golden: bytes its LOADs and STOREs move; RTL: AXI beats x
data width); compare them with ``compiled.expected_traffic``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.hw.system.params import SystemGeometry
from tpegen.sw.compiler import CompiledProgram

BACKENDS = ("golden", "cycle", "rtl")


@dataclass
class SystemRun:
    """Outcome of one program on one backend.

    ``host``: final host image; ``outputs``: the program's outputs decoded from it;
    ``cycles``: run length (None on ``golden``); ``host_bytes``: host bytes read + written as
    measured by the backend; ``commands``: program length; ``utilization``: useful MACs per cycle
    against the array's peak (None on ``golden``); ``detail``: the backend's own result object."""

    backend: str
    host: np.ndarray
    outputs: dict[str, np.ndarray]
    cycles: int | None
    host_bytes: int | None
    commands: int
    utilization: float | None
    detail: Any = None


def _memory(memory: Any):
    from tpegen.sim.system_timing import MemoryTiming

    if memory is None:
        return MemoryTiming()
    if not isinstance(memory, MemoryTiming):
        raise ConfigError("memory", "a tpegen.sim.system_timing.MemoryTiming", type(memory).__name__)
    return memory


def run_program(
    config: Any,
    compiled: CompiledProgram,
    backend: str = "golden",
    *,
    memory: Any = None,
    vcd_path: Path | str | None = None,
) -> SystemRun:
    """Run ``compiled`` on ``backend`` (``golden``, ``cycle`` or ``rtl``) of ``config``'s accelerator.

    ``memory``: a :class:`tpegen.sim.system_timing.MemoryTiming` (default: its defaults; cycle
    and rtl only). ``vcd_path`` (rtl only) saves the waveform there."""
    if backend not in BACKENDS:
        raise ConfigError("--backend", "one of " + ", ".join(BACKENDS), backend)
    if vcd_path is not None and backend != "rtl":
        raise ConfigError("--waves", "used with --backend rtl (only the RTL has waveforms)", backend)
    g = compiled.geometry
    if SystemGeometry.of(config, g.system) != g:
        raise ConfigError(
            "config", f"the design the program was compiled for ({compiled.config.name})", config.name
        )
    peak = config.accelerator().macs_per_cycle
    n = len(compiled.instructions)
    if backend == "rtl":
        from tpegen.sim.system_rtl import run_rtl

        mem = _memory(memory)
        run = run_rtl(config, g, compiled.binary(), compiled.host, mem, vcd_path=vcd_path)
        status = getattr(run, "status", {}) or {}
        if status.get("error"):
            raise TpegenError(
                f"the accelerator rejected command {status.get('error_index')} "
                f"(error code {status.get('error_code')})"
            )
        axi = getattr(run, "axi", {}) or {}
        beats = axi.get("r", 0) + axi.get("w", 0) if isinstance(axi.get("r", 0), int) else None
        return SystemRun(
            "rtl",
            run.host,
            compiled.read_outputs(run.host),
            run.cycles,
            None if beats is None else beats * g.axi_bytes,
            n,
            compiled.macs / (run.cycles * peak) if run.cycles else None,
            run,
        )
    from tpegen.sim.system_golden import run_golden

    gold = run_golden(config, compiled.instructions, compiled.host, geometry=g)
    cycles = utilization = timing = None
    if backend == "cycle":
        from tpegen.sim.system_timing import simulate_timing

        timing = simulate_timing(config, g, compiled.instructions, _memory(memory))
        cycles = timing.cycles
        utilization = compiled.macs / (cycles * peak) if cycles else None
    return SystemRun(
        backend,
        gold.host,
        compiled.read_outputs(gold.host),
        cycles,
        gold.host_bytes_read + gold.host_bytes_written,
        n,
        utilization,
        timing if backend == "cycle" else gold,
    )
