"""Synthesis flow: area, timing and energy of generated Verilog.

from tpegen.synth import synthesize, measure_energy
rep = synthesize(verilog, "top", liberty=None, period_ns=None)   # built-in tpegen45.lib
rep.memories                                                     # black-boxed SRAMs (memory_cost)
en = measure_energy(rep, programs, ops=n_macs)                   # gate-level sim, checked vs RTL
rep.to_json(); en.to_json(); rep.print(); en.print(); rep.plot_area("area.png")
"""

from __future__ import annotations

from tpegen.synth.energy import EnergyReport, gate_level_verilog, measure_energy
from tpegen.synth.liberty import BUILTIN_LIBERTY, Library, read_liberty
from tpegen.synth.memories import MemoryCost, MemoryMacro, memory_cost
from tpegen.synth.timing import TimingReport, analyze_timing
from tpegen.synth.yosys import ModuleArea, SynthMemory, SynthReport, synthesize


def ppa_json(synth: SynthReport, energy: EnergyReport | None = None) -> dict:
    """One JSON record: area, cells, delay, timing at the clock period, energy per op, ops per
    cycle, liberty, breakdowns; ``workload`` next to the energy is the GEMM it was measured on
    (``M``, ``K``, ``N``, timing-model ``cycles`` and ``utilization``, ``seed``; None without energy).

    Timing at top level: ``period_ns`` is the requested clock period (``--period-ns``; ABC's delay
    target and the timing engine's clock), ``slack_ns`` the worst slack at it (OpenSTA when
    installed, else the built-in STA; ``timing.engine`` says which) and ``timing_met`` is
    ``slack_ns >= 0``. Without a requested period all three are null: ABC maps for minimum delay and
    ``delay_ns`` (the critical path) is the minimum period; the nested ``timing`` object then shows
    the STA's 10 ns placeholder clock.
    """
    out = synth.to_json()
    out.update({"energy_pj_per_op": None, "workload": None, "ops_per_cycle": None})
    if energy is not None:
        e = energy.to_json()
        out.update(
            {
                k: e[k]
                for k in (
                    "energy_pj_per_op",
                    "workload",
                    "ops_per_cycle",
                    "energy_breakdown_pj_per_op",
                    "energy_by_module_pj_per_op",
                    "energy_by_class_pj_per_op",
                    "ops",
                    "cycles",
                    "power_mw",
                    "checked_against_rtl",
                    "checked_against",
                )
            }
        )
        out["energy_period_ns"] = e["period_ns"]
    return out


__all__ = [
    "BUILTIN_LIBERTY",
    "EnergyReport",
    "Library",
    "MemoryCost",
    "MemoryMacro",
    "ModuleArea",
    "SynthMemory",
    "SynthReport",
    "TimingReport",
    "analyze_timing",
    "gate_level_verilog",
    "measure_energy",
    "memory_cost",
    "ppa_json",
    "read_liberty",
    "synthesize",
]
