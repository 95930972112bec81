"""Clock gating: the built-in ICG cell, synthesis onto gated clocks, timing, and gate-level energy.

The gated netlists are checked against independent references: a Python model of an enable register
with a reset value (cycle by cycle, reset while disabled included), the RTL on Verilator (stream
outputs), OpenSTA, and the Verilator + VCD reference path of the energy flow.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import yaml
from conftest import REPO

from tpegen.config import config_from_dict
from tpegen.errors import ConfigError
from tpegen.synth import measure_energy, ppa_json, read_liberty, synthesize
from tpegen.synth.clock_gating import clock_gate, find_clock_gate
from tpegen.synth.energy import GateSim
from tpegen.synth.gates import load_gates
from tpegen.synth.liberty import BUILTIN_LIBERTY, make_builtin
from tpegen.synth.timing import Netlist, _out_load, sta

GSCL45 = REPO.parent / "shared" / "tech" / "gscl45nm.lib"
needs_gscl45 = pytest.mark.skipif(not GSCL45.exists(), reason="../shared/tech/gscl45nm.lib is not present")

# An enable register whose reset (to a non-zero value) overrides the enable, as Amaranth writes it,
# next to a free-running counter (no enable: never gated).
ENABLE_REG = """
module en_reg (input clk, input rst, input en, input [7:0] d, output reg [7:0] q, output reg [2:0] cnt);
  always @(posedge clk) if (rst) q <= 8'hA5; else if (en) q <= d;
  always @(posedge clk) if (rst) cnt <= 0; else cnt <= cnt + 1;
endmodule
"""

# A 2x2 output-stationary INT8 array whose forwarding registers hold while the token is invalid:
# operand, accumulator and drain registers with enables.
OS_GATED = {
    "name": "cg_os_2x2",
    "pe": {"type": "mac", "act_bits": 8, "weight_bits": 8, "acc_bits": 16, "dataflow": "os"},
    "array": {"rows": 2, "cols": 2, "operand_gating": True},
}


# ---------------------------------------------------------------------------------- the ICG cell


def test_builtin_icg_cell_is_read_and_behaves_as_a_latch_based_clock_gate():
    lib = read_liberty(None)
    cell = lib.cells["ICG_X1"]
    assert cell.clock_gating == "latch_posedge" and cell.sequential
    assert {p.name: p.clock_gate for p in cell.pins.values()} == {
        "CLK": "clock",
        "E": "enable",
        "GCLK": "out",
    }
    assert cell.pins["GCLK"].function == "(CLK IQ)" and cell.pins["CLK"].clock
    assert [p.name for p in cell.inputs] == ["CLK", "E"] and [p.name for p in cell.outputs] == ["GCLK"]
    st = cell.statetable
    assert (st.inputs, st.internal) == (("CLK", "E"), ("IQ",))
    for e in (0, 1):
        for q in (0, 1):
            assert st.next_state({"CLK": 0, "E": e}, (q,)) == (e,)  # transparent while CLK is low
            assert st.next_state({"CLK": 1, "E": e}, (q,)) == (q,)  # holds while CLK is high
    assert [a.timing_type for a in cell.pins["E"].timing] == ["setup_rising"]
    assert cell.pins["E"].timing[0].constraint(0.06) == pytest.approx(0.1875)
    icg = find_clock_gate(lib)
    assert (icg.cell, icg.clock, icg.enable, icg.out, icg.tests) == ("ICG_X1", "CLK", "E", "GCLK", ())
    # its parts, from the same source library: area = INVX1 + LATCH (5.1623 um^2) + AND2X1
    assert cell.area == pytest.approx(lib.cells["INV_X1"].area + 5.1623 + lib.cells["AND2_X1"].area)
    assert cell.pins["CLK"].capacitance == pytest.approx(
        lib.cells["INV_X1"].pins["A"].capacitance + lib.cells["AND2_X1"].pins["A"].capacitance
    )


@needs_gscl45
def test_builtin_library_is_regenerated_byte_for_byte(tmp_path):
    """tpegen45.lib (ICG_X1 included) is what make_builtin writes from gscl45nm.lib, and the ICG's
    area and leakage are the sums of its gscl45nm parts."""
    out = make_builtin(GSCL45, tmp_path / "tpegen45.lib")
    assert out.read_bytes() == BUILTIN_LIBERTY.read_bytes()
    src = read_liberty(GSCL45)
    parts = [src.cells[n] for n in ("INVX1", "LATCH", "AND2X1")]
    icg = read_liberty(None).cells["ICG_X1"]
    assert icg.area == pytest.approx(sum(c.area for c in parts), rel=1e-6)
    assert icg.leakage == pytest.approx(sum(c.leakage for c in parts), rel=1e-5)
    assert find_clock_gate(src) is None  # gscl45nm itself has no ICG


def _variant(tmp_path, old: str, new: str):
    text = BUILTIN_LIBERTY.read_text()
    assert old in text
    path = tmp_path / "variant.lib"
    path.write_text(text.replace(old, new))
    return read_liberty(path).cells["ICG_X1"]


def test_clock_gate_check_reads_the_cells_own_description(tmp_path):
    table = 'table : "L L : - : L, L H : - : H, H - : - : N";'
    # transparent while CLK is high: a glitching gate, not a latch_posedge ICG
    with pytest.raises(ValueError, match="latched while CLK is low"):
        clock_gate(_variant(tmp_path, table, 'table : "H L : - : L, H H : - : H, L - : - : N";'))
    with pytest.raises(ValueError, match="is not CLK & IQ"):
        clock_gate(_variant(tmp_path, 'state_function : "(CLK IQ)"', 'state_function : "(CLK | IQ)"'))
    with pytest.raises(ValueError, match="latch_negedge"):
        clock_gate(_variant(tmp_path, '"latch_posedge"', '"latch_negedge"'))
    # the sky130 style: a latch group and a plain function describe the same cell
    sky = _variant(
        tmp_path,
        'statetable ("CLK E", "IQ") {\n      ' + table + "\n    }",
        'latch ("IQ", "IQN") {\n      enable : "!CLK";\n      data_in : "E";\n    }',
    )
    assert sky.statetable is None and sky.latch_group is not None
    assert clock_gate(sky).out == "GCLK"


# ------------------------------------------------------------------------------------ synthesis


def _drive(sim: GateSim, port: str, value: int) -> None:
    for i, b in enumerate(sim.ports[port][1]):
        sim.v[b] = (value >> i) & 1


def _read(sim: GateSim, port: str) -> int:
    return sum(int(sim.v[b]) << i for i, b in enumerate(sim.ports[port][1]))


@pytest.mark.parametrize("gating", [None, 4])
def test_gated_enable_register_matches_a_reference_model_reset_while_disabled_included(gating):
    """The sync reset overrides the enable: the gated flops must see it on disabled cycles too
    (synthesis rewrites the enable as en | rst before gating)."""
    rep = synthesize(ENABLE_REG, "en_reg", clock_gating=gating)
    if gating:
        assert rep.clock_gating == {
            "min_group": 4,
            "cell": "ICG_X1",
            "icgs": 1,
            "icg_area_um2": rep.library().cells["ICG_X1"].area,
            "gated_flops": 8,
            "flops": 11,
        }
        assert "MUX2_X1" not in rep.cells  # no enable multiplexers left
        assert rep.flow["clock_gating"] == {"min_group": 4, "cell": "ICG_X1"}
    else:
        assert rep.clock_gating is None and "clock_gating" not in rep.flow
    sim = GateSim(load_gates(rep.netlist_json_path, rep.top, rep.library()), rep.library())
    rng = np.random.default_rng(7)
    q = cnt = 0
    for cycle in range(300):
        rst = int(cycle < 2 or rng.random() < 0.1)
        en, d = int(rng.random() < 0.3), int(rng.integers(0, 256))
        for port, value in (("rst", rst), ("en", en), ("d", d)):
            _drive(sim, port, value)
        sim.settle()
        if cycle >= 2:
            assert (_read(sim, "q"), _read(sim, "cnt")) == (q, cnt), cycle
        sim.falling_edge()
        sim.rising_edge()
        q = 0xA5 if rst else (d if en else q)
        cnt = 0 if rst else (cnt + 1) % 8


def test_a_library_without_icg_and_bad_group_sizes_are_one_line_config_errors():
    for bad in (-1, True, 2.5, "8"):
        with pytest.raises(ConfigError, match="clock_gating") as exc:
            synthesize(ENABLE_REG, "en_reg", clock_gating=bad)
        assert "\n" not in str(exc.value)
    if GSCL45.exists():
        with pytest.raises(ConfigError) as exc:
            synthesize(ENABLE_REG, "en_reg", liberty=GSCL45, clock_gating=8)
        msg = str(exc.value)
        assert "--clock-gating" in msg and "--liberty" in msg and "gscl45nm.lib" in msg and "\n" not in msg


@pytest.mark.rtl
def test_gating_lowers_energy_on_an_idle_heavy_workload():
    """A 2x2 OS array with operand gating, inputs valid every 4th cycle: gated and ungated netlists
    both equal the RTL; gating leaves timing about unchanged and lowers the clock and total energy."""
    acc = config_from_dict(OS_GATED).accelerator()
    m, k, n = acc.workload_shape()
    a, w = acc.random_operands(np.random.default_rng(0), m, k, n)
    stream = acc.program(a, w).stream
    reports, energy = {}, {}
    for gating in (None, 8):
        rep = reports[gating] = synthesize(acc.verilog, acc.top_name, clock_gating=gating)
        # the ungated netlist's equality with the RTL is tested in test_synth.py
        energy[gating] = measure_energy(
            rep, [stream], ops=m * k * n, period_ns=2.0, valid_every=4, check=gating is not None
        )
    assert energy[8].checked_against_rtl
    off, on = energy[None], energy[8]
    g = reports[8].clock_gating
    assert g["icgs"] > 0 and g["gated_flops"] > 0.8 * g["flops"] and reports[8].cells["ICG_X1"] == g["icgs"]
    assert (
        ppa_json(reports[8], on)["clock_gating"] == g and ppa_json(reports[None], off)["clock_gating"] is None
    )
    assert 0.8 < reports[8].delay_ns / reports[None].delay_ns < 1.2
    assert on.stream_cycles == off.stream_cycles > 3.5 * acc.cycles(m, k, n)  # idle-heavy: ~4x back to back
    assert on.breakdown_pj["clock"] < 0.75 * off.breakdown_pj["clock"]
    assert on.energy_pj < 0.9 * off.energy_pj


def test_builtin_sta_and_opensta_time_the_enable_not_the_gated_clock(tmp_path):
    acc = config_from_dict(OS_GATED).accelerator()
    off = synthesize(acc.verilog, acc.top_name, timing=False)
    on = synthesize(acc.verilog, acc.top_name, clock_gating=8, timing=False)
    lib = on.library()
    ungated, gated = (
        sta(Netlist.load(r.netlist_json_path, r.top), lib, 10.0, _out_load(r, lib)) for r in (off, on)
    )
    assert not gated.endpoint.endswith(" CLK") and 0.8 < gated.delay_ns / ungated.delay_ns < 1.2
    if shutil.which("sta") is None:
        return
    icgs = [
        name
        for name, (ctype, _) in Netlist.load(on.netlist_json_path, on.top).cells.items()
        if ctype == "ICG_X1"
    ]
    for name in ("cells.lib", "netlist.v"):
        shutil.copyfile(on.work_dir / name, tmp_path / name)
    (tmp_path / "check.tcl").write_text(
        "\n".join(
            [
                "read_liberty cells.lib",
                "read_verilog netlist.v",
                f"link_design {on.top}",
                "create_clock -name clk -period 10 [get_ports clk]",
                "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]",
                "set_output_delay 0 -clock clk [all_outputs]",
                "check_setup -verbose -unconstrained_endpoints -no_clock",
                f"report_checks -path_delay max -to [get_pins {{{' '.join(f'{c}/E' for c in icgs)}}}]",
                "exit",
            ]
        )
    )
    out = subprocess.run(
        ["sta", "-no_splash", "-exit", "check.tcl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "unclocked" not in out.lower() and "unconstrained" not in out.lower(), out
    assert "clock gating" in out and "slack (MET)" in out, out  # the enable's setup check to CLK


def test_synth_cli_clock_gating_flag_and_json(run_cli, tmp_path):
    cfg = tmp_path / "os.yaml"
    cfg.write_text(yaml.safe_dump(OS_GATED))
    code, stdout, err = run_cli("synth", cfg, "--clock-gating", "8", "--no-energy", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    assert record["clock_gating"]["icgs"] > 0 and record["clock_gating"]["min_group"] == 8
    assert record["cells"]["ICG_X1"] == record["clock_gating"]["icgs"]
    code, _, err = run_cli("synth", cfg, "--clock-gating", "-3", "--no-energy", "--json")
    assert code != 0 and "--clock-gating" in err and len(err.strip().splitlines()) == 1
    if GSCL45.exists():
        code, _, err = run_cli("synth", cfg, "--clock-gating", "8", "--liberty", GSCL45, "--no-energy")
        assert code != 0 and "--liberty" in err and len(err.strip().splitlines()) == 1


@pytest.mark.rtl
@pytest.mark.slow
def test_levelized_gate_sim_equals_verilator_on_a_gated_netlist():
    """The Verilator reference path (behavioural ICG model, VCD toggles) gives the levelized
    simulator's toggles and energy exactly on a gated netlist."""
    from tpegen.synth.reference import REFERENCE_BLOCKS

    blk = REFERENCE_BLOCKS["add8"]
    rep = synthesize(blk.verilog(), blk.top, clock_gating=4)
    assert rep.clock_gating["icgs"] == 1
    a, b = blk.random_operands(40, np.random.default_rng(4))
    programs = [blk.program(a, b), blk.program(a[:7], b[:7])]
    fast = measure_energy(rep, programs, 47, method="levelized")
    ref = measure_energy(rep, programs, 47, method="verilator")
    assert fast.checked_against_rtl and fast.to_json() == ref.to_json()
