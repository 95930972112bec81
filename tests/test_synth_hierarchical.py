"""``synthesize(hierarchical=True)`` / ``tpegen synth --hierarchical``: each distinct module mapped
once and the netlist kept hierarchical (automatic past HIERARCHICAL_MIN_INSTANCES module instances).

The default flow maps hierarchically too but then flattens the netlist for timing and energy; a
32x32 array flattens to 1.45 million cells, past what the WebAssembly Yosys holds in 4 GB. The
hierarchical netlist must give the default flow's area and cells exactly (summed over instance
counts), and OpenSTA must time it like the flattened one. Gate-level energy flattens it into numpy
arrays instead (tpegen.synth.gates): on the default flow's own mapping that must give Yosys's
flattened netlist's energy exactly, and on a separately flattened mapping the issue's 10%.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from tpegen.cli import main
from tpegen.config import load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.synth import measure_energy, synthesize
from tpegen.synth.yosys import HIERARCHICAL_MIN_INSTANCES, module_instances

needs_sta = pytest.mark.skipif(shutil.which("sta") is None, reason="OpenSTA (`sta`) is not installed")


def test_module_instances_counts_every_level():
    verilog = """
module top(input clk);
  mid a (.clk(clk));
  mid b (.clk(clk));
  \\top.own  own (.clk(clk));
endmodule
module mid(input clk);
  leaf x (.clk(clk));
  leaf y (.clk(clk));
  leaf z (.clk(clk));
  DFF_X1 f (.CLK(clk));
endmodule
module leaf(input clk);
endmodule
module \\top.own (input clk);
endmodule
"""
    assert module_instances(verilog, "top") == 2 * (1 + 3) + 1  # DFF_X1 is a library cell
    acc = load_config("int8_os_8x8").accelerator()
    assert module_instances(acc.verilog, acc.top_name) < HIERARCHICAL_MIN_INSTANCES
    big = load_config("int8_os_32x32").accelerator()
    assert module_instances(big.verilog, big.top_name) > HIERARCHICAL_MIN_INSTANCES


@needs_sta
def test_hierarchical_netlist_has_the_flat_flows_area_cells_and_delay():
    acc = load_config("int8_os_8x8").accelerator()
    flat = synthesize(acc.verilog, acc.top_name)
    hier = synthesize(acc.verilog, acc.top_name, hierarchical=True)
    assert hier.flow.get("hierarchical") is True and "hierarchical" not in flat.flow
    modules = json.loads(hier.netlist_json_path.read_text())["modules"]
    assert len(modules) > 10 and sum(len(m.get("cells", {})) for m in modules.values()) < 10_000  # not flat
    assert hier.area_um2 == pytest.approx(flat.area_um2, rel=1e-9)
    assert hier.cells == flat.cells
    assert flat.timing.engine == hier.timing.engine == "opensta"
    assert hier.delay_ns == pytest.approx(flat.delay_ns, rel=0.01)


@pytest.fixture(scope="module")
def queued8():
    """The 8x8 output-stationary array with a result queue (an array that never stalls has no enable
    to fan out across module boundaries), its steady-state workload, and a check of gate-level
    results against the golden model and the timing model."""
    cfg = load_config("int8_os_8x8")
    cfg = dataclasses.replace(cfg, array=dataclasses.replace(cfg.array, backpressure="queue"))
    return _with_workload(cfg.accelerator())


def _with_workload(acc):
    a, w = acc.random_operands(np.random.default_rng(0), *acc.workload_shape())
    program = acc.program(a, w)

    def check(results):
        assert np.array_equal(program.decode(results[0].outputs), acc.golden(a, w))
        assert results[0].cycles == acc.cycles(a.shape[0], a.shape[1], w.shape[1])

    return acc, program.stream, a.shape[0] * a.shape[1] * w.shape[1], check


@needs_sta
@pytest.mark.slow
def test_hierarchical_is_within_5_percent_area_and_10_percent_delay_of_flat(queued8):
    """The issue's check on 8x8: one module mapped once vs the whole design mapped as one (memories
    as logic in both, a flat netlist cannot black-box them). Slow: mapping the whole design as one
    module takes ABC about 100 s on two busy cores; the default run keeps the exact checks (the
    hierarchical netlist has the default flow's cells, and its energy Yosys's flattened one's)."""
    acc = queued8[0]
    hier = synthesize(acc.verilog, acc.top_name, hierarchical=True, memories="logic")
    flat = synthesize(acc.verilog, acc.top_name, flatten=True, memories="logic")
    assert hier.area_um2 == pytest.approx(flat.area_um2, rel=0.05)
    assert hier.delay_ns == pytest.approx(flat.delay_ns, rel=0.10)


@pytest.mark.slow
def test_hierarchical_energy_is_within_10_percent_of_a_flat_mapping(queued8):
    """The issue's energy check on 8x8: every instance of the hierarchical netlist simulated with its
    own port activity and summed, against the gate-level simulation of the whole design mapped as one
    module, on the same workload (measured: +2.9%, ABC maps the two differently)."""
    acc, stream, ops, check = queued8
    hier = synthesize(acc.verilog, acc.top_name, hierarchical=True, memories="logic")
    flat = synthesize(acc.verilog, acc.top_name, flatten=True, memories="logic")
    eh = measure_energy(hier, [stream], ops, check=check)
    ef = measure_energy(flat, [stream], ops, check=check)
    assert eh.checked_against == ef.checked_against == "golden"
    assert eh.energy_pj == pytest.approx(ef.energy_pj, rel=0.10)
    assert eh.energy_pj != ef.energy_pj  # two mappings, two netlists
    cell = next(
        m for m, n in eh.instances.items() if n == 64 and "os_cell_" in m and "row" not in m and "." not in m
    )
    assert 0.4 * eh.energy_pj < eh.by_class_pj[cell] + eh.by_class_pj[f"{cell}.datapath"] < 0.9 * eh.energy_pj
    assert sum(eh.by_class_pj.values()) == pytest.approx(eh.energy_pj, rel=1e-9)
    assert not ef.by_class_pj  # one module: no per-class split


def test_energy_of_the_hierarchical_netlist_equals_yosys_flattening_it():
    """The default flow maps each module once and then lets Yosys flatten the netlist; simulating the
    hierarchical netlist flattened into arrays must toggle every net the same and charge the same."""
    acc, stream, ops, check = _with_workload(load_config("int8_os_8x8").accelerator())
    flat = synthesize(acc.verilog, acc.top_name)
    hier = synthesize(acc.verilog, acc.top_name, hierarchical=True)
    ef = measure_energy(flat, [stream], ops, check=check)
    eh = measure_energy(hier, [stream], ops, check=check)
    assert (eh.toggles, eh.cycles) == (ef.toggles, ef.cycles)
    assert eh.breakdown_pj == pytest.approx(ef.breakdown_pj, rel=1e-9)
    assert eh.by_module_pj == pytest.approx(ef.by_module_pj, rel=1e-9)


def test_black_boxed_memory_is_simulated_and_charged_per_access(queued8):
    """The result queue's memory stays a black box (SRAM model): the gate-level simulation models its
    words, and with a consumer taking results on every third cycle only (the queue fills) the
    outputs equal the golden model's (the RTL's on Verilator too, checked when this was written);
    its reads and writes are charged at the model's energies. With results always taken they
    bypass the queue: no write."""
    acc, stream, ops, _ = queued8
    a, w = acc.random_operands(np.random.default_rng(0), *acc.workload_shape())  # queued8's operands
    program = acc.program(a, w)

    def outputs_equal_golden(results):
        assert np.array_equal(program.decode(results[0].outputs), acc.golden(a, w))

    rep = synthesize(acc.verilog, acc.top_name, hierarchical=True)
    (mem,) = rep.memories
    slow = measure_energy(rep, [stream], ops, check=outputs_equal_golden, ready_every=3)
    assert slow.checked_against == "golden"
    reads, writes = slow.memory_accesses[mem.cell_type]
    assert writes > stream.outputs["results"] // 2 and reads > writes // 2
    expected = reads * mem.cost.read_energy_pj + writes * mem.cost.write_energy_pj
    assert slow.breakdown_pj["memory"] == pytest.approx(expected, rel=1e-12)
    fast = measure_energy(rep, [stream], ops, check=False)
    assert fast.memory_accesses[mem.cell_type][1] == 0 and fast.cycles < slow.cycles
    with pytest.raises(TpegenError, match="hierarchical"):
        measure_energy(synthesize(acc.verilog, acc.top_name), [stream], ops, check=False)


def test_hierarchical_refuses_what_it_cannot_do():
    acc = load_config("int8_os_8x8").accelerator()
    for kwargs in ({"flatten": True}, {"clock_gating": 4}):
        with pytest.raises(ConfigError, match="hierarchical"):
            synthesize(acc.verilog, acc.top_name, hierarchical=True, **kwargs)
    with pytest.raises(ConfigError, match="hierarchical"):
        synthesize(acc.verilog, acc.top_name, hierarchical="yes")


@needs_sta
def test_synth_32x32_reports_area_delay_and_energy(capsys, tmp_path):
    """The issue's check: `tpegen synth configs/int8_os_32x32.yaml --json` finishes (hierarchical by
    itself) and reports area, delay and energy (every instance simulated, checked against the golden
    model; a Verilator build of the RTL is not paid for here). The workload is a 64x96x64 GEMM to
    keep the suite short; bench/scale.py measures the default steady-state one."""
    rng = np.random.default_rng(32)
    np.save(tmp_path / "a.npy", rng.integers(-128, 128, (64, 96)).astype(np.int8))
    np.save(tmp_path / "w.npy", rng.integers(-128, 128, (96, 64)).astype(np.int8))
    args = ["synth", "configs/int8_os_32x32.yaml", "--json", "--workload", str(tmp_path / "a.npy")]
    assert main([*args, str(tmp_path / "w.npy")]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["flow"]["hierarchical"] is True
    assert 4e6 < rec["area_um2"] < 6e6  # 1,024 cells of ~4,000 um2 (8x8: 316,000 um2 for 64)
    assert rec["delay_ns"] > 0 and rec["timing"]["engine"] == "opensta"
    assert 3 < rec["energy_pj_per_op"] < 15 and rec["checked_against"] == "golden"  # 8x8: 7.4
    assert rec["ops"] == 64 * 96 * 64 and rec["workload"]["seed"] is None
    by_class = rec["energy_by_class_pj_per_op"]
    cells = [m for m, n in rec["modules"].items() if n["instances"] == 1024]
    assert cells and sum(by_class.get(m, 0) for m in cells) > 0.5 * rec["energy_pj_per_op"]
