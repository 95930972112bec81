"""Public Python API: the same operations as the ``tpegen`` command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tpegen._io import atomic_dir, check_output_dir
from tpegen.config import DesignConfig, load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.sw.accelerator import GemmResult
from tpegen.sw.verify import VerifyReport
from tpegen.sw.verify import verify as _verify


def _config(config: DesignConfig | str | Path | None) -> DesignConfig:
    return config if isinstance(config, DesignConfig) else load_config(config)


MAX_SEED = 2**63 - 1


def check_seed(seed: Any, field: str = "seed") -> int:
    """Return ``seed`` as an int if it is an integer in 0..2^63-1 (every seed tpegen accepts)."""
    if isinstance(seed, np.integer):
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(field, "an integer in 0..2^63-1", seed)
    return seed


def generate_verilog(
    config: DesignConfig | str | Path | None,
    out_dir: str | Path,
    *,
    lint: bool = False,
    force: bool = False,
    system: bool = False,
) -> dict[str, Path]:
    """Write ``<top>.v`` and the JSON manifest ``<top>.json`` (ports, widths, timing, parameters).

    ``system=True`` writes the accelerator top instead of the bare array (``<top>_system.v``:
    scratchpads, DMA with an AXI4 master port, command queues, output stage; the manifest lists
    its memories and the instruction set is ``docs/isa.md``).
    The folder is written atomically: on any error nothing is left behind. ``out_dir`` must be
    new, empty or written by tpegen before; ``force=True`` also writes into another non-empty
    folder (replacing only these two files). See :mod:`tpegen._io`.
    """
    check_output_dir(out_dir, force=force)
    cfg = _config(config)
    if system:
        name, verilog, top = system_verilog(cfg)
        manifest = system_manifest(cfg, top)
    else:
        acc = cfg.accelerator()
        name, verilog = acc.top_name, acc.verilog
        manifest = None
    if lint:
        from tpegen.sim.verilator import verilator_lint

        verilator_lint(verilog, name)
    if manifest is None:
        manifest = acc.manifest()
    with atomic_dir(out_dir, force=force) as scratch:
        (scratch / f"{name}.v").write_text(verilog)
        (scratch / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    out = Path(out_dir)
    return {"verilog": out / f"{name}.v", "manifest": out / f"{name}.json"}


def run_gemm(
    config: DesignConfig | str | Path | None,
    a: np.ndarray,
    w: np.ndarray,
    backend: str = "golden",
    *,
    vcd_path: str | Path | None = None,
) -> GemmResult:
    """C = A @ W on the configured hardware: ``golden`` (numeric model), ``cycle`` (cycle-level
    simulator) or ``rtl`` (Verilator; ``vcd_path`` saves its waveform)."""
    vcd = None if vcd_path is None else Path(vcd_path)
    return _config(config).accelerator().run_gemm(a, w, backend, vcd_path=vcd)


def verify(
    config: DesignConfig | str | Path | None,
    *,
    cases: int = 8,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    vcd_path: str | Path | None = None,
) -> VerifyReport:
    """Edge-case and random GEMMs on the RTL, checked bit for bit and cycle for cycle;
    ``vcd_path`` saves the waveform of the run (without stalls) there."""
    seed = check_seed(seed)
    acc = _config(config).accelerator()
    vcd = None if vcd_path is None else Path(vcd_path)
    return _verify(acc, cases=cases, seed=seed, progress=progress, vcd_path=vcd)


DEMO_MODEL, DEMO_QUANT, DEMO_RTL_LAYER = "digits_cnn", "W8A8", "fc1"


def demo(*, progress: Callable[[str], None] | None = None):
    """The default job, end to end: the built-in digits CNN mapped onto the default 16x16 INT8
    output-stationary array at W8A8 on the cycle-level simulator, with one layer (``fc1``) re-run
    on the RTL (Verilator) and compared bit for bit and cycle for cycle.

    Returns the :class:`tpegen.sw.mapper.MapReport`; its ``fc1`` layer has ``rtl_check`` set.
    """
    from tpegen.sw.mapper import map_model

    say = progress or (lambda _msg: None)
    cfg = load_config(None)
    say(
        f"mapping {DEMO_MODEL} onto {cfg.name} at {DEMO_QUANT} (cycle-level simulator); "
        f"layer {DEMO_RTL_LAYER} also on the RTL (Verilator builds it once, about a minute; cached afterwards)"
    )
    layers_done = lambda done, total, name: say(f"layer {done}/{total} {name} done")  # noqa: E731
    return map_model(
        DEMO_MODEL, cfg, DEMO_QUANT, backend="cycle", rtl_check=DEMO_RTL_LAYER, progress=layers_done
    )


def simulate_topology(
    config: DesignConfig | str | Path | None,
    topology: str | Path | list,
    *,
    bandwidth: float | dict[str, float | None] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    source: str | None = None,
    ppa: dict | str | Path | None = None,
    outputs: bool = False,
    trace: str | Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Run every layer of a SCALE-Sim topology (file or list of :class:`~tpegen.sim.topology.Layer`;
    ``source`` names where a list came from, in errors and the report) through the cycle-level
    simulator's timing model.

    Returns a JSON-able report: ``design``, ``topology``, ``bandwidth``, ``seed``, ``outputs``,
    ``trace``, ``layers`` (one summary per layer: ``name``, ``M``, ``K``, ``N``, ``macs``,
    ``tiles``, ``cycles``, ``ideal_cycles``, ``stall_cycles``, ``utilization``, ``traffic``),
    ``total_cycles``, ``total_macs``, ``utilization`` and ``traffic`` (summed).
    ``progress(done, total, name)`` is called after each layer. With ``ppa`` (a ``tpegen synth``
    record or its ppa.json) every layer and the total also get ``energy_pj``
    (:func:`tpegen.synth.ppa.energy_model`).

    Cycles, utilization and traffic depend only on the shapes, so by default nothing is computed
    but the timing model (no operands exist; ``seed`` is unused). ``outputs=True`` also runs every
    layer's GEMM on random operands (seeded, in the configured ranges) through the numeric model,
    as the ``cycle`` backend does; the outputs are not reported, only computed (layers are then
    limited to :data:`~tpegen.sim.topology.MAX_ELEMENTS` operand elements).

    ``trace`` (a folder) also writes SCALE-Sim-format SRAM traces of every layer,
    ``<trace>/layer<i>/{IFMAP,FILTER,OFMAP}_SRAM_TRACE.csv`` (:mod:`tpegen.sim.trace`: one row per
    cycle of our timeline, SCALE-Sim's address convention), for output- and weight-stationary
    systolic arrays. The folder is written atomically like ``-o``: it must be new, empty or written
    by tpegen before (``force`` adds to another folder), and existing ``layer<i>`` folders are never
    replaced.
    """
    from tpegen.sim.cycle import OPERANDS, check_bandwidth, simulate, simulate_shape
    from tpegen.sim.topology import check_layers, check_operand_elements, load_topology

    seed = check_seed(seed)
    check_bandwidth(bandwidth)
    cfg = _config(config)
    energy_of, energy_note = None, None
    if ppa is not None:
        from tpegen.synth.ppa import energy_model

        energy_of, energy_note = energy_model(ppa, cfg.name)
    acc = cfg.accelerator()
    if isinstance(topology, (str, Path)):
        where, layers = str(topology), load_topology(topology)
    else:
        where, layers = source or "topology", check_layers(list(topology), source or "topology")
    if trace is not None:
        from tpegen.sim.trace import check_trace_folder, check_traceable

        check_traceable(acc)
        check_trace_folder(trace, len(layers), force=force)
    if outputs:
        check_operand_elements(layers, where, "computing outputs")
        rng = np.random.default_rng(seed)
    rows, results = [], []
    for i, layer in enumerate(layers):
        try:
            if outputs:
                a, w = acc.random_operands(rng, layer.m, layer.k, layer.n)
                res = simulate(acc, a, w, bandwidth=bandwidth)
            else:
                res = simulate_shape(acc, layer.m, layer.k, layer.n, bandwidth=bandwidth)
        except TpegenError as exc:
            raise TpegenError(f"{where}: layer {layer.name[:60]!r}: {exc}") from None
        rows.append({"name": layer.name, **res.summary()})
        results.append(res)
        if energy_of is not None:
            rows[-1]["energy_pj"] = energy_of(rows[-1]["macs"], rows[-1]["cycles"])
        if progress and trace is None:
            progress(i + 1, len(layers), layer.name)
    if trace is not None:
        from tpegen.sim.trace import write_traces

        write_traces(trace, acc, layers, results, where=where, force=force, progress=progress)
    total_cycles = sum(r["cycles"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    traffic = {
        op: {
            key: sum(r["traffic"][op][key] for r in rows)
            for key in ("reads", "writes", "read_bytes", "write_bytes")
        }
        for op in OPERANDS
    }
    return {
        "design": cfg.name,
        "topology": where if isinstance(topology, (str, Path)) or source else "(list)",
        "pes": acc.macs_per_cycle,
        "bandwidth": bandwidth,
        "seed": seed,
        "outputs": outputs,
        "trace": None if trace is None else str(trace),
        "layers": rows,
        "total_cycles": total_cycles,
        "total_macs": total_macs,
        "utilization": total_macs / (total_cycles * acc.macs_per_cycle) if total_cycles else 0.0,
        "traffic": traffic,
        **(
            {"energy_pj": sum(r["energy_pj"] for r in rows), "energy_note": energy_note}
            if energy_of is not None
            else {}
        ),
    }


def synthesize_design(
    config: DesignConfig | str | Path | None,
    *,
    liberty: str | Path | None = None,
    period_ns: float | None = None,
    workload: tuple[np.ndarray, np.ndarray] | None = None,
    energy: bool = True,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    memories: str = "blackbox",
    system: bool = False,
    clock_gating: int | None = None,
    flatten: bool = False,
    hierarchical: bool | None = None,
):
    """Synthesize a design and (unless ``energy=False``) measure its energy on a GEMM workload.

    ``system=True`` synthesizes the accelerator top instead of the bare array: logic as usual,
    memories black-boxed and costed by :mod:`tpegen.synth.memories` (a separate line of the
    report); its gate-level energy is not measured yet (``energy`` must be False).

    The workload is ``(A, W)`` or, if not given, random operands (seeded) of the array's
    steady-state GEMM (:meth:`~tpegen.sw.accelerator.Accelerator.workload_shape`: many tiles back
    to back, utilization above 90%). Energy per op is per useful MAC of that GEMM, from the
    gate-level netlist's toggles (checked against the RTL); the energy report's ``workload`` states
    its shape, timing-model cycles and utilization. The gate-level outputs are checked against the
    RTL on Verilator, or for a hierarchical netlist (too large a Verilator build to pay for here)
    against the golden model and the timing model's cycles.
    ``memories`` is passed to :func:`tpegen.synth.synthesize` (black-boxed memories are reported
    separately; gate-level energy needs ``energy=False`` for such designs).
    ``period_ns`` is ABC's delay target and the timing engine's clock (also with ``system=True``):
    the report's ``slack_ns`` and ``timing_met`` are at that period (None without one).
    ``clock_gating=N`` (None or 0: off) gates the clock of every group of at least ``N`` flops that
    share an enable with an integrated clock-gating cell (the library must have one; see
    :func:`tpegen.synth.synthesize`); the report's ``clock_gating`` counts the cells and gated flops.
    ``flatten=True`` maps the design as one module (ABC buffers nets that fan out into submodules;
    no per-module breakdown), as comparisons of designs with and without submodules should.
    ``hierarchical`` (None: automatic, for designs of more than
    :data:`tpegen.synth.yosys.HIERARCHICAL_MIN_INSTANCES` module instances, or with energy of a design
    whose memories are black-boxed) maps each distinct module once and keeps the netlist hierarchical
    (OpenSTA timing; the gate-level simulation flattens it into arrays, memories modelled as such and
    charged per access from the SRAM model).
    Returns ``(SynthReport, EnergyReport | None)``.
    """
    from tpegen.synth import measure_energy, read_liberty, synthesize
    from tpegen.synth.liberty import check_usable
    from tpegen.synth.yosys import check_clock_gating, check_period, has_memory_arrays, require_clock_gate

    seed = check_seed(seed)
    check_period(period_ns)
    lib = check_usable(read_liberty(liberty))  # a bad library fails here, before any Verilog is generated
    if check_clock_gating(clock_gating, "--clock-gating"):
        require_clock_gate(lib)
    say = progress or (lambda _msg: None)
    lib_name = "built-in library" if liberty is None else liberty
    if system:
        if energy:
            raise ConfigError(
                "--no-energy", "given with --system (gate-level energy of the top is not modelled yet)"
            )
        name, verilog, _top = system_verilog(config)
        say(f"synthesizing {name} with Yosys ({lib_name}); memories black-boxed")
        report = synthesize(
            verilog,
            name,
            liberty=liberty,
            period_ns=period_ns,
            memories=memories,
            clock_gating=clock_gating,
            flatten=flatten,
        )
        return report, None
    acc = _config(config).accelerator()
    if energy and hierarchical is None and memories == "blackbox" and has_memory_arrays(acc.verilog):
        hierarchical = True  # a flat netlist has the memories' pins as ports: no gate-level simulation
    say(f"synthesizing {acc.top_name} with Yosys ({lib_name})")
    report = synthesize(
        acc.verilog,
        acc.top_name,
        liberty=liberty,
        period_ns=period_ns,
        memories=memories,
        clock_gating=clock_gating,
        flatten=flatten,
        hierarchical=hierarchical,
    )
    if not energy:
        return report, None
    given = workload
    if workload is None:
        workload = acc.random_operands(np.random.default_rng(seed), *acc.workload_shape())
    a, w = acc.check_operands(*workload)
    program = acc.program(a, w)
    m, k, n = a.shape[0], a.shape[1], w.shape[1]
    ops = m * k * n
    cycles = acc.operand_cycles(a, w)  # the operands' (a bit-serial design's depend on them)
    utilization = ops / (cycles * acc.macs_per_cycle)
    say(
        f"simulating the gate-level netlist on a {m}x{k}x{n} GEMM ({ops} MACs, {cycles} cycles, "
        f"utilization {utilization:.1%})"
    )

    def against_golden(results) -> None:  # a large design: no Verilator build of its RTL
        if not np.array_equal(program.decode(results[0].outputs), acc.golden(a, w)):
            raise TpegenError(
                f"{acc.top_name}: the gate-level netlist's outputs differ from the golden model"
            )
        if results[0].cycles != cycles:
            raise TpegenError(
                f"{acc.top_name}: the gate-level netlist took {results[0].cycles} cycles, the timing model {cycles}"
            )

    hier = bool(report.flow.get("hierarchical"))
    energy = measure_energy(
        report, [program.stream], ops=ops, period_ns=period_ns, check=against_golden if hier else True
    )
    energy.workload = {
        "M": m,
        "K": k,
        "N": n,
        "cycles": cycles,
        "utilization": utilization,
        "seed": seed if given is None else None,
    }
    return report, energy


# -- the accelerator system (hw/system): scratchpads, DMA, command queues ---------------------------


@dataclass
class SystemGemmResult:
    """``C = A @ W`` run through the accelerator top from a compiled command program.

    ``output`` is what :func:`run_gemm` returns for the bare array (integers, or float32 for the
    FMA family); ``cycles`` come from the system timing model on ``golden``; ``host_bytes`` the host-memory traffic measured
    by the backend (bytes on the AXI bus, row padding included); ``program`` the compiled program
    (:class:`tpegen.sw.compiler.CompiledProgram`: listing, binary, expected traffic)."""

    output: np.ndarray
    backend: str
    cycles: int | None
    commands: int
    host_bytes: int | None
    utilization: float | None
    program: Any
    run: Any = None


def system_top_name(config: DesignConfig) -> str:
    return config.accelerator().top_name + "_system"


def system_verilog(config: DesignConfig | str | Path | None) -> tuple[str, str, Any]:
    """``(top name, Verilog, component)`` of the accelerator top
    (:class:`tpegen.hw.system.top.AcceleratorTop`)."""
    from tpegen.hw.hierarchy import to_verilog
    from tpegen.hw.system.top import AcceleratorTop

    cfg = _config(config)
    name = system_top_name(cfg)
    top = AcceleratorTop(cfg)
    return name, to_verilog(top, name), top


def system_manifest(config: DesignConfig, top: Any) -> dict[str, Any]:
    """Ports, memories and geometry of the accelerator top ``top``, for ``tpegen gen --system``."""
    from amaranth import Shape
    from amaranth.lib import wiring

    from tpegen.hw.system.params import SystemGeometry

    g = SystemGeometry.of(config)
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    for path, member, _value in top.signature.flatten(top):
        ports.append(
            {
                "name": "__".join(str(p) for p in path),
                "direction": "in" if member.flow == wiring.In else "out",
                "width": Shape.cast(member.shape).width,
            }
        )
    memories = {
        target: {
            "rows": g.depth(target),
            "row_bits": g.row_bits(target),
            "host_pitch_bytes": g.pitch(g.row_bits(target)),
        }
        for target in ("A", "W", "Q", "C")
    }
    return {
        "top": system_top_name(config),
        "family": config.family,
        "config": config.to_dict(),
        "system": config.system.to_dict(),
        "ports": ports,
        "memories": memories,
        "axi_bytes": g.axi_bytes,
        "store_formats": list(g.output_formats()),
        "instruction_set": "docs/isa.md (generated from tpegen/hw/system/isa.py)",
    }


def _system_memory(read_latency: int | None, write_latency: int | None):
    from tpegen.sim.system_timing import MemoryTiming

    defaults = MemoryTiming()
    return MemoryTiming(
        read_latency=defaults.read_latency if read_latency is None else read_latency,
        write_latency=defaults.write_latency if write_latency is None else write_latency,
    )


def run_system_gemm(
    config: DesignConfig | str | Path | None,
    a: np.ndarray,
    w: np.ndarray,
    backend: str = "cycle",
    *,
    memory: Any = None,
    vcd_path: str | Path | None = None,
) -> SystemGemmResult:
    """``C = A @ W`` through the accelerator top: compile (tiles fitted to the scratchpads, double
    buffered, K split across commands), then run on ``golden`` (functional ISA simulator),
    ``cycle`` (system simulator, cycles equal to the RTL's) or ``rtl`` (Verilator with an AXI RAM).
    ``memory`` is a :class:`tpegen.sim.system_timing.MemoryTiming` (host latencies)."""
    from tpegen.sw.compiler import compile_gemm
    from tpegen.sw.runtime import run_program

    cfg = _config(config)
    program = compile_gemm(cfg, a, w)
    run = run_program(
        cfg, program, backend, memory=memory, vcd_path=None if vcd_path is None else Path(vcd_path)
    )
    out = run.outputs["C"]
    cycles, utilization = run.cycles, run.utilization
    if cycles is None:  # golden: the timing model gives the cycles, as for the bare array
        from tpegen.sim.system_timing import MemoryTiming, simulate_timing

        cycles = simulate_timing(cfg, program.geometry, program.instructions, memory or MemoryTiming()).cycles
        utilization = program.macs / (cycles * cfg.accelerator().macs_per_cycle) if cycles else None
    if cfg.family == "fma":
        from tpegen.sw.fp import to_float32

        out = to_float32(out.astype(np.uint32), cfg.accelerator().cfg.acc_fmt)
    return SystemGemmResult(
        output=out,
        backend=backend,
        cycles=cycles,
        commands=run.commands,
        host_bytes=run.host_bytes,
        utilization=utilization,
        program=program,
        run=run,
    )


def simulate_system_topology(
    config: DesignConfig | str | Path | None,
    topology: str | Path | list,
    *,
    memory: Any = None,
    axi_bytes: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Every layer of a topology compiled into a command program and timed on the system simulator.

    ``axi_bytes`` overrides the config's ``system.axi_bytes`` (the host bandwidth in bytes per
    cycle); ``memory`` the host latencies (:class:`tpegen.sim.system_timing.MemoryTiming`). Per
    layer: ``cycles`` (system), ``array_cycles`` (the bare array streaming the same GEMM with
    every operand on time), ``utilization`` of both, ``commands``, host ``read_bytes`` and
    ``write_bytes`` (DMA traffic, as compiled). Cycles depend only on shapes: operands are zeros.
    """
    import dataclasses

    from tpegen.sim.system_timing import MemoryTiming, simulate_timing
    from tpegen.sim.topology import check_layers, check_operand_elements, load_topology
    from tpegen.sw.compiler import compile_gemm

    cfg = _config(config)
    if axi_bytes is not None:
        from tpegen.hw.system.params import SystemParams

        cfg = dataclasses.replace(
            cfg, system=SystemParams(**{**cfg.system.to_dict(), "axi_bytes": axi_bytes})
        )
    memory = memory or MemoryTiming()
    acc = cfg.accelerator()
    if isinstance(topology, (str, Path)):
        where, layers = str(topology), load_topology(topology)
    else:
        where, layers = source or "topology", check_layers(list(topology), source or "topology")
    check_operand_elements(layers, where, "the compiler")
    peak = acc.macs_per_cycle
    rows = []
    for i, layer in enumerate(layers):
        a = np.zeros((layer.m, layer.k), dtype=np.int64)
        w = np.zeros((layer.k, layer.n), dtype=np.int64)
        try:
            program = compile_gemm(cfg, a, w)
            timing = simulate_timing(cfg, program.geometry, program.instructions, memory)
        except TpegenError as exc:
            raise TpegenError(f"{where}: layer {layer.name[:60]!r}: {exc}") from None
        array_cycles = acc.cycles(layer.m, layer.k, layer.n)
        rows.append(
            {
                "name": layer.name,
                "M": layer.m,
                "K": layer.k,
                "N": layer.n,
                "macs": layer.macs,
                "commands": len(program.instructions),
                "cycles": int(timing.cycles),
                "array_cycles": int(array_cycles),
                "utilization": layer.macs / (timing.cycles * peak),
                "array_utilization": layer.macs / (array_cycles * peak),
                "read_bytes": int(program.expected_traffic.read),
                "write_bytes": int(program.expected_traffic.written),
            }
        )
        if progress:
            progress(i + 1, len(layers), layer.name)
    total_cycles = sum(r["cycles"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    return {
        "design": cfg.name,
        "topology": where,
        "system": cfg.system.to_dict(),
        "read_latency": memory.read_latency,
        "write_latency": memory.write_latency,
        "pes": peak,
        "layers": rows,
        "total_cycles": total_cycles,
        "total_macs": total_macs,
        "utilization": total_macs / (total_cycles * peak) if total_cycles else 0.0,
        "read_bytes": sum(r["read_bytes"] for r in rows),
        "write_bytes": sum(r["write_bytes"] for r in rows),
    }
