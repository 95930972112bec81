"""RTL backend of the accelerator system: the Verilated top with cocotbext-axi's ``AxiRam`` as host memory.

:func:`run_rtl` converts ``hw.system.top.AcceleratorTop`` to Verilog, builds it with Verilator
(cached, :func:`tpegen.sim.verilator.build`) and plays a binary program on it through the cocotb
testbench :mod:`tpegen.sim.system_tb`: the command words go in on ``cmd``, host memory is an
``AxiRam`` loaded with the host image whose read and write-response latencies are set by a
:class:`~tpegen.sim.system_timing.MemoryTiming`, and the run ends when the top is idle. The result
is the final host image, the cycle count as the timing contract defines it (the same number
:func:`tpegen.sim.system_timing.simulate_timing` computes), the status port and the handshake
cycle of every command.

:func:`measure_axi_ram` measures what ``AxiRam`` does on its own (the smallest latencies it can
give, and whether it keeps AR/AW/W ready high for one burst at a time) on a probe top whose AXI
master ports are driven straight from the testbench.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from amaranth import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import TpegenError
from tpegen.hw.hierarchy import to_verilog
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.system_timing import MIN_READ_LATENCY, MIN_WRITE_LATENCY, MemoryTiming
from tpegen.sim.verilator import VerilatedModel, build, cache_root, verilator_env

TB_MODULE = "tpegen.sim.system_tb"
TOP_NAME = "accel_top"
PROBE_NAME = "axi_probe"
DEFAULT_MAX_CYCLES = 1_000_000


@dataclass
class RtlRun:
    """Outcome of one program on the RTL.

    ``host``: final host image (uint8, same length as the input image); ``cycles``: the run's
    cycle count (timing contract); ``status``: ``error``, ``error_code``, ``error_index`` of the
    status port at the end; ``command_cycles``: handshake cycle of each accepted command;
    ``axi``: handshake cycles seen on the AXI bus (``ar``, ``aw``, ``wlast``, ``b`` lists and
    ``r``/``w`` beat counts).
    """

    host: np.ndarray
    cycles: int
    status: dict[str, int]
    command_cycles: np.ndarray
    axi: dict[str, Any] = field(default_factory=dict)


def _sources_digest() -> str:
    """Hash of the Python sources the generated Verilog can depend on -- tpegen.hw, tpegen.sim but
    its system-level simulators (``sim/system_*.py``, never imported by the hardware),
    tpegen.config and tpegen.errors -- and the Amaranth version."""
    import amaranth

    import tpegen.config
    import tpegen.errors
    import tpegen.hw
    import tpegen.sim

    h = hashlib.sha256(amaranth.__version__.encode())
    files = [Path(tpegen.config.__file__), Path(tpegen.errors.__file__)]
    files += sorted(Path(tpegen.hw.__file__).parent.rglob("*.py"))
    files += sorted(
        f for f in Path(tpegen.sim.__file__).parent.glob("*.py") if not f.name.startswith("system_")
    )
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=16)
def top_verilog(config: Any, system: Any) -> str:
    """Verilog of ``AcceleratorTop(config, system)`` (module :data:`TOP_NAME`).

    Elaborating the top takes seconds, so the text is cached on disk under ``$TPEGEN_CACHE``,
    keyed by the design, the system sizes and a hash of the generator's sources."""
    from tpegen.hw.system.top import AcceleratorTop

    key = hashlib.sha256(
        "\0".join([_sources_digest(), repr(config.to_dict()), repr(system)]).encode()
    ).hexdigest()[:24]
    path = cache_root() / "system_verilog" / f"{TOP_NAME}-{key}.v"
    if path.exists():
        return path.read_text()
    text = to_verilog(AcceleratorTop(config, system), TOP_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text


def build_top(config: Any, geometry: SystemGeometry, *, trace: bool = False) -> VerilatedModel:
    """Cached Verilator build of the accelerator top for ``config`` and ``geometry.system``."""
    return build(top_verilog(config, geometry.system), TOP_NAME, trace=trace)


def _run_tb(
    model: VerilatedModel,
    testcase: str,
    meta: dict,
    host: bytes,
    *,
    vcd_path: Path | None = None,
) -> tuple[dict, bytes | None]:
    from cocotb_tools.runner import get_runner

    verilator_env()
    with tempfile.TemporaryDirectory(prefix="tpegen-system-") as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "run.json").write_text(json.dumps(meta))
        (tmpdir / "host.bin").write_bytes(host)
        runner = get_runner("verilator")
        results_xml = runner.test(
            hdl_toplevel=model.top,
            hdl_toplevel_lang="verilog",
            test_module=TB_MODULE,
            testcase=testcase,
            build_dir=model.build_dir,
            test_dir=tmpdir,
            extra_env={"TPEGEN_TB_DIR": str(tmpdir)},
            waves=vcd_path is not None,
            log_file=str(tmpdir / "sim.log"),
        )
        if vcd_path is not None and (tmpdir / "dump.vcd").exists():
            shutil.move(tmpdir / "dump.vcd", vcd_path)
        result_file = tmpdir / "result.json"
        if not result_file.exists():
            log = (tmpdir / "sim.log").read_text(errors="replace") if (tmpdir / "sim.log").exists() else ""
            raise TpegenError(f"RTL simulation of {model.top} failed ({results_xml}):\n{log[-3000:]}")
        result = json.loads(result_file.read_text())
        if result.get("error"):
            raise TpegenError(f"RTL simulation of {model.top}: {result['error']}")
        out = tmpdir / "host.out"
        return result, (out.read_bytes() if out.exists() else None)


@dataclass(frozen=True)
class RtlJob:
    """One program for :func:`run_rtl_batch`: ``binary`` (16 bytes per command), initial
    ``host`` image (uint8), ``memory`` latencies and an optional cycle bound (see :func:`run_rtl`)."""

    binary: bytes
    host: np.ndarray
    memory: MemoryTiming = MemoryTiming()
    max_cycles: int | None = None


def run_rtl(
    config: Any,
    geometry: SystemGeometry,
    binary: bytes,
    host: np.ndarray,
    memory: MemoryTiming,
    *,
    vcd_path: Path | str | None = None,
    max_cycles: int | None = None,
) -> RtlRun:
    """Run the binary program ``binary`` (16 bytes per command) on the RTL top with host memory
    ``host`` (uint8 image) and memory latencies ``memory``.

    ``max_cycles`` bounds the run (default: twice the timing model's count plus 1000, or
    :data:`DEFAULT_MAX_CYCLES` when the model cannot time the program); a run that is not idle by
    then raises :class:`~tpegen.errors.TpegenError` naming the cycle. ``vcd_path`` saves a VCD.
    The memory side of the timing contract is checked on the wire on every run.
    """
    job = RtlJob(binary, host, memory, max_cycles)
    return run_rtl_batch(config, geometry, [job], vcd_path=vcd_path)[0]


def run_rtl_batch(
    config: Any, geometry: SystemGeometry, jobs: list[RtlJob], *, vcd_path: Path | str | None = None
) -> list[RtlRun]:
    """:func:`run_rtl` for several programs in one simulator session (reset between them), which
    saves the simulator start-up per program."""
    runs, images = [], []
    for n, job in enumerate(jobs):
        if not isinstance(job.memory, MemoryTiming):
            raise TpegenError(f"memory must be a MemoryTiming, got {type(job.memory).__name__}")
        if len(job.binary) % isa.WORD_BYTES:
            raise TpegenError(
                f"a binary program is a multiple of {isa.WORD_BYTES} bytes, got {len(job.binary)}"
            )
        image = np.ascontiguousarray(job.host, dtype=np.uint8).reshape(-1)
        if image.size == 0:
            raise TpegenError(f"job {n}: the host image is empty")
        words = [
            int.from_bytes(job.binary[i : i + isa.WORD_BYTES], "little")
            for i in range(0, len(job.binary), isa.WORD_BYTES)
        ]
        bound = job.max_cycles
        if bound is None:
            bound = _default_max_cycles(config, geometry, job.binary, job.memory)
        runs.append(
            {
                "words": [f"{w:x}" for w in words],
                "read_latency": job.memory.read_latency,
                "write_latency": job.memory.write_latency,
                "max_cycles": int(bound),
                "host_bytes": int(image.size),
            }
        )
        images.append(image.tobytes())
    if not jobs:
        return []
    model = build_top(config, geometry, trace=vcd_path is not None)
    meta = {"status_fields": status_fields(), "runs": runs}
    result, out = _run_tb(
        model, "run_system", meta, b"".join(images), vcd_path=None if vcd_path is None else Path(vcd_path)
    )
    results, offset = [], 0
    for n, (run, res) in enumerate(zip(runs, result["runs"], strict=True)):
        size = run["host_bytes"]
        image = np.frombuffer(out[offset : offset + size], dtype=np.uint8).copy()
        offset += size
        which = f" (program {n} of {len(jobs)})" if len(jobs) > 1 else ""
        if res["error"]:
            raise TpegenError(f"RTL simulation of {model.top}{which}: {res['error']}")
        if res["memory_problems"]:
            raise TpegenError(
                f"RTL simulation of {model.top}{which}: the AXI traffic broke the memory timing contract: "
                + "; ".join(res["memory_problems"])
            )
        results.append(
            RtlRun(
                host=image,
                cycles=int(res["cycles"]),
                status={k: int(v) for k, v in res["status"].items()},
                command_cycles=np.asarray(res["commands"], dtype=np.int64),
                axi=res["axi"],
            )
        )
    return results


def status_fields() -> dict[str, tuple[int, int]]:
    """``(offset, width)`` of each field of the top's ``status`` port."""
    from tpegen.hw.system.dispatch import STATUS_LAYOUT

    return {name: (f.offset, f.width) for name, f in STATUS_LAYOUT}


def _default_max_cycles(config: Any, geometry: SystemGeometry, binary: bytes, memory: MemoryTiming) -> int:
    from tpegen.sim.system_timing import simulate_timing

    try:
        timing = simulate_timing(config, geometry, isa.decode_program(binary), memory)
    except Exception:  # the model cannot time it (e.g. a deadlocking program): a fixed bound
        return DEFAULT_MAX_CYCLES
    return 2 * timing.cycles + 1000


# -- measuring AxiRam ---------------------------------------------------------------------------


def axi_master_signature(axi_bytes: int) -> wiring.Signature:
    """Every AXI4 signal of a master with ``axi_bytes``-byte data, 32-bit addresses, 1-bit ids,
    all as members of one direction (the probe takes them all as inputs)."""
    widths = {
        "awid": 1,
        "awaddr": 32,
        "awlen": 8,
        "awsize": 3,
        "awburst": 2,
        "awvalid": 1,
        "awready": 1,
        "wdata": 8 * axi_bytes,
        "wstrb": axi_bytes,
        "wlast": 1,
        "wvalid": 1,
        "wready": 1,
        "bid": 1,
        "bresp": 2,
        "bvalid": 1,
        "bready": 1,
        "arid": 1,
        "araddr": 32,
        "arlen": 8,
        "arsize": 3,
        "arburst": 2,
        "arvalid": 1,
        "arready": 1,
        "rid": 1,
        "rdata": 8 * axi_bytes,
        "rresp": 2,
        "rlast": 1,
        "rvalid": 1,
        "rready": 1,
    }
    return wiring.Signature({k: Out(unsigned(v)) for k, v in widths.items()})


class AxiProbe(wiring.Component):
    """Probe top for measuring the AXI slave model: every ``m_axi__*`` signal is a top-level
    input, so the testbench plays the master and ``AxiRam`` the slave on the same wires. A free
    running counter ``count`` keeps ``clk``/``rst`` in the module."""

    def __init__(self, axi_bytes: int):
        super().__init__({"m_axi": In(axi_master_signature(axi_bytes)), "count": Out(16)})

    def elaborate(self, platform) -> Module:
        m = Module()
        counter = Signal(16)
        m.d.sync += counter.eq(counter + 1)
        m.d.comb += self.count.eq(counter)
        return m


@dataclass(frozen=True)
class AxiRamLatency:
    """What :func:`measure_axi_ram` saw: AR -> first R and last W -> B latencies of two
    back-to-back bursts each, whether the R beats came on consecutive cycles, ready violations."""

    read_latency: tuple[int, ...]
    write_latency: tuple[int, ...]
    r_contiguous: bool
    ready_violations: tuple[str, ...]
    data_ok: bool


def measure_axi_ram(
    axi_bytes: int = 16, memory: MemoryTiming | None = None, *, beats: int = 4
) -> AxiRamLatency:
    """Measure ``AxiRam`` (with :func:`tpegen.sim.system_tb.add_latency` for ``memory``; default:
    no added latency) on :class:`AxiProbe`: two read bursts of ``beats`` beats, the second AR the
    cycle after the first's last R, then two write bursts, AW, W beats from two cycles later, the
    next AW the cycle after B."""
    text = to_verilog(AxiProbe(axi_bytes), PROBE_NAME)
    model = build(text, PROBE_NAME)
    size = 4 * beats * axi_bytes
    rng = np.random.default_rng(1)
    host = rng.integers(0, 256, size, dtype=np.uint8)
    meta = {
        "axi_bytes": axi_bytes,
        "beats": beats,
        "read_latency": memory.read_latency if memory else MIN_READ_LATENCY,
        "write_latency": memory.write_latency if memory else MIN_WRITE_LATENCY,
    }
    result, out = _run_tb(model, "probe_memory", meta, host.tobytes())
    axi = result["axi"]
    r = result["r_cycles"]
    lr = tuple(r[i * beats] - a for i, a in enumerate(axi["ar"]))
    contiguous = all(r[i * beats + n] == r[i * beats] + n for i in range(2) for n in range(beats))
    lb = tuple(b - w for w, b in zip(axi["wlast"], axi["b"], strict=True))
    written = np.frombuffer(out, dtype=np.uint8)[2 * beats * axi_bytes :]
    expect = np.repeat(np.arange(2 * beats, dtype=np.uint8), axi_bytes)
    data_ok = bytes.fromhex(result["read_data"]) == host[: 2 * beats * axi_bytes].tobytes() and bool(
        np.array_equal(written, expect)
    )
    return AxiRamLatency(lr, lb, contiguous, tuple(result["ready_violations"]), data_ok)
