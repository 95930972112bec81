"""Critical-path delay / Fmax of a mapped netlist.

Two engines, same constraints (one clock on ``clk`` with the period of the report — a 10 ns
placeholder when none was given, for which ``SynthReport.slack_ns`` / ``timing_met`` are None; input
and output delays 0; output ports loaded like ABC's ``set_load``):

* ``opensta`` — the Debian ``opensta`` package's ``sta`` binary, used when it is on PATH
  (``report_checks -path_delay max``; minimum period = period - worst slack).
* ``tpegen`` — the fallback: a longest-path search over the flattened netlist JSON with the
  Liberty NLDM tables: each arc's delay and output slew are looked up at the net load (sum of fan-out
  pin capacitances + output-port load) and the worst input slew; flop clock->Q arcs start paths
  (ideal clock, slew of the smallest-index table point), flop setup constraints end them (clock pins
  are no endpoints: a clock-gating cell's output is an ideal clock, its enable pin an endpoint with
  the cell's setup to the clock). Rise and fall are not separated (the worse of the two is used at
  every arc), so it is pessimistic: 1.2-1.5x OpenSTA's delay on the reference blocks (checked in
  ``tests/test_synth.py``).

``TPEGEN_STA=tpegen`` forces the fallback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpegen.errors import TpegenError
from tpegen.synth.liberty import Library

DEFAULT_PERIOD_NS = 10.0


@dataclass
class Netlist:
    """Flattened gate-level netlist from yosys ``write_json``: cells, nets (bit ids), ports."""

    top: str
    cells: dict[str, tuple[str, dict[str, list[int | str]]]]  # name -> (type, pin -> bits)
    ports: dict[str, tuple[str, list[int | str]]]  # name -> (direction, bits)
    netnames: dict[str, list[int | str]]

    @classmethod
    def load(cls, path: Path, top: str) -> Netlist:
        import json

        data = json.loads(path.read_text())
        mod = data["modules"].get(top)
        if mod is None:
            raise TpegenError(f"{path}: no module {top}")
        cells = {n: (c["type"], c["connections"]) for n, c in mod.get("cells", {}).items()}
        ports = {n: (p["direction"], p["bits"]) for n, p in mod.get("ports", {}).items()}
        nets = {n: v["bits"] for n, v in mod.get("netnames", {}).items()}
        return cls(top, cells, ports, nets)

    def graph(self, lib: Library) -> tuple[dict[int, tuple[str, str]], dict[int, list[tuple[str, str]]]]:
        """``driver[bit] = (cell, pin)`` (cell ``''`` for an input port) and ``loads[bit]``."""
        driver: dict[int, tuple[str, str]] = {}
        loads: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for pname, (direction, bits) in self.ports.items():
            for b in bits:
                if isinstance(b, int) and direction == "input":
                    driver[b] = ("", pname)
        for cname, (ctype, conns) in self.cells.items():
            cell = lib.cell(ctype)
            for pin, bits in conns.items():
                p = cell.pins.get(pin)
                if p is None:
                    raise TpegenError(f"{lib.path}: cell {ctype} has no pin {pin}")
                for b in bits:
                    if not isinstance(b, int):
                        continue
                    if p.direction == "input":
                        loads[b].append((cname, pin))
                    else:
                        driver[b] = (cname, pin)
        return driver, loads

    def net_caps(self, lib: Library, out_load: float) -> dict[int, float]:
        """Load capacitance (lib units) of every net: fan-out pin caps + output-port load + wire."""
        _, loads = self.graph(lib)
        caps: dict[int, float] = defaultdict(float)
        for b, lst in loads.items():
            caps[b] += sum(lib.cells[self.cells[c][0]].pins[p].capacitance for c, p in lst)
        for _, (direction, bits) in self.ports.items():
            if direction == "output":
                for b in bits:
                    if isinstance(b, int):
                        caps[b] += out_load
        if lib.default_wire_cap:
            for b in list(caps):
                caps[b] += lib.default_wire_cap
        return caps


@dataclass
class TimingReport:
    """Critical path: ``delay_ns`` is the minimum clock period (data arrival + setup)."""

    delay_ns: float
    period_ns: float
    engine: str
    startpoint: str = ""
    endpoint: str = ""
    path: list[str] = field(default_factory=list)
    note: str = ""  # e.g. why OpenSTA was not used although installed

    @property
    def fmax_mhz(self) -> float:
        return 1000.0 / self.delay_ns if self.delay_ns > 0 else float("inf")

    @property
    def slack_ns(self) -> float:
        """Worst slack at ``period_ns`` (negative: the period is not met); rounded to 1e-6 ns."""
        return round(self.period_ns - self.delay_ns, 6)

    def to_json(self) -> dict[str, Any]:
        return {
            "delay_ns": self.delay_ns,
            "fmax_mhz": self.fmax_mhz,
            "period_ns": self.period_ns,
            "slack_ns": self.slack_ns,
            "engine": self.engine,
            "startpoint": self.startpoint,
            "endpoint": self.endpoint,
            "path": self.path,
            "note": self.note,
        }


def _out_load(report, lib: Library) -> float:
    return float(report.flow.get("load_ff", 0.0)) / 1000.0 / lib.cap_pf


def analyze_timing(report, lib: Library) -> TimingReport | None:
    """Critical path of ``report``'s netlist with OpenSTA when installed, else the built-in STA
    (None for a hierarchical netlist without OpenSTA: the built-in STA needs a flat one)."""
    period = report.period_ns or DEFAULT_PERIOD_NS
    note = ""
    if report.flow.get("hierarchical"):  # no flat netlist: OpenSTA times the hierarchy itself
        if not shutil.which("sta") or os.environ.get("TPEGEN_STA", "") == "tpegen":
            return None
        return _opensta(report, lib, period)
    if os.environ.get("TPEGEN_STA", "") != "tpegen" and shutil.which("sta"):
        try:
            return _opensta(report, lib, period)
        except TpegenError as exc:  # OpenSTA versions differ in what they accept: say so, then fall back
            note = f"OpenSTA failed ({str(exc).splitlines()[0][:160]}); the built-in STA was used"
    timing = sta(Netlist.load(report.netlist_json_path, report.top), lib, period, _out_load(report, lib))
    timing.note = note
    return timing


def _opensta(report, lib: Library, period: float) -> TimingReport:
    work: Path = report.work_dir
    # the top's port list in netlist.v (flat or hierarchical), without loading the netlist itself
    has_clk = re.search(
        rf"^module {re.escape(report.top)}\s*\([^;]*\bclk\b", (work / "netlist.v").read_text(), re.M
    )
    load_pf = _out_load(report, lib) * lib.cap_pf
    tcl = [
        "read_liberty cells.lib",
        "read_verilog netlist.v",
        f"link_design {report.top}",
        f"create_clock -name clk -period {period / lib.time_ns} " + ("[get_ports clk]" if has_clk else ""),
        "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]"
        if has_clk
        else "set_input_delay 0 -clock clk [all_inputs]",
        "set_output_delay 0 -clock clk [all_outputs]",
        f"set_load {load_pf / lib.cap_pf} [all_outputs]",
        "report_checks -path_delay max -digits 5",
        "exit",
    ]
    script = "\n".join(tcl) + "\n"
    log = work / "sta.log"
    if (work / "sta.tcl").exists() and (work / "sta.tcl").read_text() == script and log.exists():
        old = log.read_text()  # the netlist is cached: so is a successful timing run of it
        if re.search(_SLACK_RE, old) and "Error" not in old:
            return _parse_opensta(old, work, period, lib.time_ns)
    (work / "sta.tcl").write_text(script)
    try:
        proc = subprocess.run(
            ["sta", "-no_splash", "-exit", "sta.tcl"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TpegenError(f"OpenSTA failed: {exc}") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        out += f"\nError: OpenSTA exited with {proc.returncode}\n"
    log.write_text(out)
    return _parse_opensta(out, work, period, lib.time_ns)


_SLACK_RE = r"(-?\d+\.\d+)\s+slack\s+\((MET|VIOLATED)\)"


def _parse_opensta(out: str, work: Path, period: float, time_ns: float) -> TimingReport:
    slack_re = _SLACK_RE
    if re.search(slack_re, out) is None or "Error" in out:
        if "No paths found" in out:
            return TimingReport(0.0, period, "opensta")
        raise TpegenError(f"OpenSTA gave no slack (see {work / 'sta.log'})")
    # report_checks prints the worst path of each path group (one clock: one group; async
    # recovery checks would add another): the worst slack over all of them is the design's.
    reports = [r for r in re.split(r"(?=^Startpoint:)", out, flags=re.M) if re.search(slack_re, r)]
    worst = min(reports, key=lambda r: float(re.search(slack_re, r).group(1)))
    slack = float(re.search(slack_re, worst).group(1)) * time_ns
    sp = re.search(r"Startpoint:\s*(\S+)", worst)
    ep = re.search(r"Endpoint:\s*(\S+)", worst)
    path = re.findall(r"^\s*[-\d.]+\s+[-\d.]+\s+[\^v]\s+(\S+)\s+\((\S+)\)", worst, flags=re.M)
    return TimingReport(
        round(period - slack, 6),
        period,
        "opensta",
        sp.group(1) if sp else "",
        ep.group(1) if ep else "",
        [f"{a} ({b})" for a, b in path],
    )


def sta(netlist: Netlist, lib: Library, period_ns: float, out_load: float = 0.0) -> TimingReport:
    """Built-in longest-path static timing analysis (see module docstring)."""
    driver, loads = netlist.graph(lib)
    caps = netlist.net_caps(lib, out_load)
    slew0 = _min_slew(lib)
    arrival: dict[int, float] = {}
    slew: dict[int, float] = {}
    pred: dict[int, tuple[str, int | None]] = {}
    # start points: input ports and flop outputs
    for pname, (direction, bits) in netlist.ports.items():
        if direction == "input":
            for b in bits:
                if isinstance(b, int):
                    arrival[b], slew[b], pred[b] = 0.0, slew0, (f"port {pname}", None)
    comb: list[str] = []
    for cname, (ctype, conns) in netlist.cells.items():
        cell = lib.cells[ctype]
        if not cell.sequential:
            comb.append(cname)
            continue
        for p in cell.outputs:
            for b in conns.get(p.name, []):
                if not isinstance(b, int):
                    continue
                arcs = [a for a in p.timing if a.timing_type in ("rising_edge", "falling_edge")] or p.timing
                load = caps.get(b, 0.0)
                arrival[b] = max((a.delay(load, slew0) for a in arcs), default=0.0)
                slew[b] = max((a.transition(load, slew0) for a in arcs), default=slew0)
                pred[b] = (f"{cname} ({ctype}) {p.name}", None)
    # topological order of combinational cells
    deps: dict[str, int] = {}
    users: dict[int, list[str]] = defaultdict(list)
    for cname in comb:
        ctype, conns = netlist.cells[cname]
        cell = lib.cells[ctype]
        n = 0
        for p in cell.inputs:
            for b in conns.get(p.name, []):
                if isinstance(b, int):
                    drv = driver.get(b)
                    if drv and drv[0] and not lib.cells[netlist.cells[drv[0]][0]].sequential:
                        n += 1
                    users[b].append(cname)
        deps[cname] = n
    ready = [c for c in comb if deps[c] == 0]
    done = 0
    while ready:
        cname = ready.pop()
        done += 1
        ctype, conns = netlist.cells[cname]
        cell = lib.cells[ctype]
        for p in cell.outputs:
            for b in conns.get(p.name, []):
                if not isinstance(b, int):
                    continue
                load = caps.get(b, 0.0)
                best, best_slew, best_from = 0.0, slew0, None
                for arc in p.timing:
                    ib = conns.get(arc.related_pin, [None])[0]
                    if not isinstance(ib, int):
                        continue
                    t = arrival.get(ib, 0.0) + arc.delay(load, slew.get(ib, slew0))
                    best_slew = max(best_slew, arc.transition(load, slew.get(ib, slew0)))
                    if best_from is None or t > best:
                        best, best_from = t, ib
                arrival[b], slew[b] = best, best_slew
                pred[b] = (f"{cname} ({ctype}) {p.name}", best_from)
                for u in users.get(b, []):
                    deps[u] -= 1
                    if deps[u] == 0:
                        ready.append(u)
    if done != len(comb):
        raise TpegenError(f"{netlist.top}: combinational loop in the mapped netlist")
    # end points
    worst, worst_bit, worst_end = 0.0, None, ""
    for cname, (ctype, conns) in netlist.cells.items():
        cell = lib.cells[ctype]
        if not cell.sequential:
            continue
        for p in cell.inputs:
            if p.clock:  # ideal clock: clock pins, also behind a clock-gating cell, are no endpoints
                continue
            setup = [a for a in p.timing if a.timing_type.startswith("setup")]
            for b in conns.get(p.name, []):
                if isinstance(b, int) and b in arrival:
                    t = arrival[b] + max((a.constraint(slew.get(b, slew0)) for a in setup), default=0.0)
                    if t > worst:
                        worst, worst_bit, worst_end = t, b, f"{cname} ({ctype}) {p.name}"
    for pname, (direction, bits) in netlist.ports.items():
        if direction == "output":
            for b in bits:
                if isinstance(b, int) and arrival.get(b, 0.0) > worst:
                    worst, worst_bit, worst_end = arrival[b], b, f"port {pname}"
    path: list[str] = []
    b = worst_bit
    while b is not None and b in pred and len(path) < 10_000:
        name, b = pred[b]
        path.append(name)
    path.reverse()
    return TimingReport(
        round(worst * lib.time_ns, 6), period_ns, "tpegen", path[0] if path else "", worst_end, path
    )


def _min_slew(lib: Library) -> float:
    for c in lib.cells.values():
        for p in c.outputs:
            for a in p.timing:
                t = a.cell_rise or a.cell_fall
                if t is not None and len(t.index) == 2:
                    return float(t.index[1][0])
    return 0.0
