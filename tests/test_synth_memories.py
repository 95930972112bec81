"""SRAM model (tpegen.synth.memories) and black-boxed memories in the synthesis flow.

The model is checked against its own cited data (OpenRAM FreePDK45 areas/leakage, CACTI 45 nm
energies) and one independent published figure; the flow is checked against the same design
synthesized with memories mapped to logic (``memories="logic"``), which turns every bit into a flop. (No ``from __future__ import annotations``: Amaranth reads the
components' port annotations at class creation.)
"""

import json

import pytest
from amaranth import Module, unsigned
from amaranth.back import verilog as amaranth_verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError, TpegenError
from tpegen.synth import measure_energy, memory_cost, read_liberty, synthesize
from tpegen.synth import memories as mm
from tpegen.synth.timing import Netlist, sta
from tpegen.synth.yosys import has_memory_arrays

# -- the model against its data ------------------------------------------------------------------


def test_area_reproduces_openram_points():
    """Every OpenRAM FreePDK45 point of <= 1024 words is one macro and within 10 %; deeper memories
    are tiled from <= 1024-word macros, which is smaller than (or, for 64 x 2048, close to) the
    published deep single macros."""
    checked = 0
    for w, d, area, _src in mm.area_points():
        cost = memory_cost(w, d, 1, 1)
        if d <= mm.MACRO_MAX_DEPTH:
            assert cost.macros == 1
            assert cost.area_um2 == pytest.approx(area, rel=mm.AREA_FIT_TOLERANCE), (w, d)
            checked += 1
        else:
            assert cost.rows > 1 and 0.6 * area < cost.area_um2 < (1 + mm.AREA_FIT_TOLERANCE) * area, (w, d)
    assert checked == 18


def test_leakage_reproduces_openram_macros():
    for w, d, _area, leak_mw, _period in mm.OPENRAM_MACROS:
        if d <= mm.MACRO_MAX_DEPTH:
            got = memory_cost(w, d, 1, 1).leakage_uw
            assert got == pytest.approx(leak_mw * 1000, rel=mm.LEAKAGE_FIT_TOLERANCE), (w, d)


def test_energy_reproduces_cacti_points():
    for w, d, read_nj, write_nj in mm.CACTI45:
        cost = memory_cost(w, d, 1, 1)
        assert cost.read_energy_pj == pytest.approx(read_nj * 1000, rel=mm.READ_FIT_TOLERANCE), (w, d)
        assert cost.write_energy_pj == pytest.approx(write_nj * 1000, rel=mm.WRITE_FIT_TOLERANCE), (w, d)
        assert not cost.extrapolated


def test_read_energy_agrees_with_horowitz_within_2x():
    """Independent figure: a 32-bit read of an 8 KB SRAM costs about 5 pJ in 45 nm."""
    pj = memory_cost(32, 2048, 1, 1).read_energy_pj
    assert mm.HOROWITZ_8KB_32B_PJ / 2 < pj < 2 * mm.HOROWITZ_8KB_32B_PJ


def test_tiling_ports_and_extrapolation():
    macro = mm.MemoryMacro.of(128, 1024)
    c = memory_cost(1024, 4096, read_ports=2, write_ports=1)  # an accumulator-like memory
    assert (c.columns, c.rows, c.copies, c.macros, c.accesses_per_cycle) == (8, 4, 2, 64, 2)
    assert c.area_um2 == pytest.approx(64 * macro.area_um2)
    assert c.leakage_uw == pytest.approx(64 * macro.leakage_uw)
    assert c.read_energy_pj == pytest.approx(8 * macro.read_energy_pj)  # one row of macros, one replica
    assert c.write_energy_pj == pytest.approx(16 * macro.write_energy_pj)  # every replica is written
    assert not c.extrapolated
    q = memory_cost(1024, 4, 1, 1)  # requant-parameter memory: 4 words, below the data range
    assert (q.macro.width, q.macro.depth) == (128, 4) and q.extrapolated
    odd = memory_cost(200, 1500, 1, 1)  # split evenly: 2 x 100 bits, 2 x 750 words
    assert (odd.columns, odd.rows, odd.macro.width, odd.macro.depth) == (2, 2, 100, 750)
    j = c.to_json()
    assert j["macros"] == 64 and j["model"] == mm.MODEL_VERSION and "OpenRAM" in j["source"]


def test_costs_grow_with_size_over_the_system_range():
    for w in (64, 256, 1024, 8192):
        prev = None
        for d in (4, 64, 1024, 4096, 65535):
            c = memory_cost(w, d, 1, 1)
            if prev is not None:
                assert c.area_um2 > prev.area_um2 and c.leakage_uw > prev.leakage_uw
                assert c.read_energy_pj >= prev.read_energy_pj and c.write_energy_pj >= prev.write_energy_pj
            prev = c
    assert memory_cost(8192, 1024).read_energy_pj > memory_cost(64, 1024).read_energy_pj


@pytest.mark.parametrize(
    "args, field",
    [
        ((0, 32), "width_bits"),
        ((64, 0), "depth"),
        ((64, 32, -1, 1), "read_ports"),
        ((64, 32, 0, 0), "read_ports"),
    ],
)
def test_bad_shapes_name_the_field(args, field):
    with pytest.raises(ConfigError, match=field):
        memory_cost(*args)


def test_array_declaration_detection():
    assert has_memory_arrays("  reg [63:0] mem [31:0];\n")
    assert has_memory_arrays("reg [7:0] \\a.b  [0:15];")
    assert not has_memory_arrays("  reg [63:0] q = 64'h0;\n  wire [3:0] x;\n  reg [7:0] \\$2 ;\n")


# -- the flow ------------------------------------------------------------------------------------


class MemTop(wiring.Component):
    """A 64x32 memory (one write port, one synchronous read port) whose read data is added to an
    input and registered, plus an 8x16 memory (128 bits, below the black-box threshold) XORed in."""

    waddr: In(5)
    wdata: In(64)
    wen: In(1)
    raddr: In(5)
    add: In(64)
    q: Out(64)

    def elaborate(self, platform):
        m = Module()
        m.submodules.big = big = Memory(shape=unsigned(64), depth=32, init=[])
        m.submodules.small = small = Memory(shape=unsigned(8), depth=16, init=[])
        bw, br = big.write_port(), big.read_port()
        sw, sr = small.write_port(), small.read_port()
        m.d.comb += [
            bw.addr.eq(self.waddr), bw.data.eq(self.wdata), bw.en.eq(self.wen), br.addr.eq(self.raddr),
            sw.addr.eq(self.waddr[:4]), sw.data.eq(self.wdata[:8]), sw.en.eq(self.wen), sr.addr.eq(self.raddr[:4]),
        ]  # fmt: skip
        m.d.sync += self.q.eq((br.data + self.add) ^ sr.data)
        return m


class AccTop(wiring.Component):
    """An accumulator-like 32x128 memory: one write port, a read port transparent to it and a
    second read port."""

    waddr: In(7)
    wdata: In(32)
    wen: In(1)
    raddr: In(7)
    raddr2: In(7)
    q: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = acc = Memory(shape=unsigned(32), depth=128, init=[])
        wp = acc.write_port()
        r1, r2 = acc.read_port(transparent_for=[wp]), acc.read_port()
        m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.wen)]
        m.d.comb += [r1.addr.eq(self.raddr), r2.addr.eq(self.raddr2)]
        m.d.sync += self.q.eq(r1.data + r2.data)
        return m


def _flops(rep) -> int:
    lib = read_liberty(None)
    return sum(n for c, n in rep.cells.items() if lib.cells[c].ff is not None)


@pytest.fixture(scope="module")
def memtop_verilog() -> str:
    return amaranth_verilog.convert(MemTop(), name="memtop")


def test_memory_is_one_black_box_not_flops(memtop_verilog):
    assert has_memory_arrays(memtop_verilog)
    rep = synthesize(memtop_verilog, "memtop")
    ref = synthesize(memtop_verilog, "memtop", memories="logic")
    # reference: memories as logic turn all 2048 + 128 bits into flops
    assert not ref.memories and _flops(ref) >= 64 + 2048 + 128
    assert len(rep.memories) == 1
    mem = rep.memories[0]
    assert (mem.cost.width_bits, mem.cost.depth, mem.cost.read_ports, mem.cost.write_ports) == (64, 32, 1, 1)
    assert mem.instances == 1 and mem.name == "big" and mem.cost == memory_cost(64, 32, 1, 1)
    assert [e["name"] for e in rep.memories_as_logic] == ["small"]
    assert "memory_min_bits" in rep.memories_as_logic[0]["reason"]
    # the 64x32 memory is not flops: 64 output flops + the small memory's 128 bits (+ its read register)
    assert 64 + 128 <= _flops(rep) <= 64 + 128 + 16
    assert rep.n_cells < ref.n_cells / 5 and rep.area_um2 < ref.area_um2 / 5
    # logic and memory areas are reported side by side, never silently summed
    js = rep.to_json()
    assert js["area_um2"] == js["logic_area_um2"] == rep.area_um2
    assert js["memory_area_um2"] == pytest.approx(mem.cost.area_um2)
    assert js["logic_plus_memories_area_um2"] == pytest.approx(rep.area_um2 + mem.cost.area_um2)
    assert js["memories"][0]["width_bits"] == 64 and js["memories"][0]["read_energy_pj"] > 0
    json.dumps(js)
    # the memory's pins are top-level ports of the logic netlist; the black-box netlist keeps the instance
    net = Netlist.load(rep.netlist_json_path, "memtop")
    assert net.ports["big__RD_DATA"][0] == "input" and len(net.ports["big__RD_DATA"][1]) == 64
    assert net.ports["big__WR_DATA"][0] == "output" and "big__RD_CLK" not in net.ports
    assert "tpegen_mem_64x32_1r1w" in (rep.work_dir / "netlist_blackbox.v").read_text()
    # timing: both engines see only standard cells (the read data -> adder -> flop path)
    assert rep.timing is not None and rep.delay_ns > 0.2
    assert sta(net, rep.library(), 10.0).delay_ns > 0.2


def test_report_prints_memories_and_both_areas(memtop_verilog):
    from rich.console import Console

    rep = synthesize(memtop_verilog, "memtop")
    console = Console(record=True, width=200)
    rep.print(console)
    text = console.export_text()
    assert "memories (black-boxed" in text and "64 x 32" in text and "logic + memories" in text
    assert "memtop: logic " in text


def test_energy_measurement_refuses_black_boxed_memories(memtop_verilog):
    rep = synthesize(memtop_verilog, "memtop", timing=False)
    with pytest.raises(TpegenError, match="black-boxed memories"):
        measure_energy(rep, [], 1)


def test_multi_port_memory_and_transparency_note():
    v = amaranth_verilog.convert(AccTop(), name="acctop")
    rep = synthesize(v, "acctop", timing=False)
    assert len(rep.memories) == 1
    c = rep.memories[0].cost
    assert (c.width_bits, c.depth, c.read_ports, c.write_ports, c.copies) == (32, 128, 2, 1, 2)
    assert any("transparent" in n for n in rep.memories[0].notes)
    assert _flops(rep) == 32


def test_memory_free_designs_keep_their_flow():
    adder = (
        "module adder(input clk, input [7:0] a, input [7:0] b, output reg [8:0] q);\n"
        "  always @(posedge clk) q <= a + b;\nendmodule\n"
    )
    assert not has_memory_arrays(adder)
    rep = synthesize(adder, "adder", timing=False)
    assert "memories" not in rep.flow and not rep.memories and "memories" not in rep.to_json()
    assert synthesize(adder, "adder", timing=False, memories="logic").work_dir == rep.work_dir


def test_bad_memories_option():
    with pytest.raises(ConfigError, match="memories"):
        synthesize("module t; endmodule", "t", memories="sram")
    with pytest.raises(ConfigError, match="memory_min_bits"):
        synthesize("module t; endmodule", "t", memory_min_bits=0)
