"""Hierarchical Verilog (tpegen.hw.hierarchy): a cell is written once however many instances use it.

The RTL tests (test_systolic_rtl, test_lean_cells, ...) check that the hierarchical Verilog computes
what the golden model does, cycle for cycle; these tests check its structure and size, and that
the Amaranth simulator (which elaborates the same blocks inline) agrees with the Verilated RTL.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tpegen.cli import main
from tpegen.config import load_config

MODULE = re.compile(r"^module (\S+)\s*\(", re.MULTILINE)


def _modules(verilog: str) -> dict[str, str]:
    """Module name -> its text (``module`` .. ``endmodule``)."""
    starts = [(m.group(1), m.start()) for m in MODULE.finditer(verilog)]
    return {name: verilog[at : verilog.index("endmodule", at)] for name, at in starts}


def test_gen_32x32_writes_each_cell_once_and_lints_clean(tmp_path: Path):
    out = tmp_path / "v"
    assert main(["gen", "configs/int8_os_32x32.yaml", "-o", str(out), "--lint"]) == 0
    (verilog_file,) = out.glob("*.v")
    text = verilog_file.read_text()
    modules = _modules(text)
    cells = [n for n in modules if re.fullmatch(r"tpegen_os_cell_[0-9a-f]{12}", n)]
    assert len(cells) == 1, cells  # one definition of the cell, not one per instance
    cell = cells[0]
    instances = re.findall(rf"^\s*{cell} \S+ \(", text, re.MULTILINE)
    assert len(instances) == 32  # instantiated by the row module; the row is instantiated 32 times
    assert len(modules) < 40, sorted(modules)  # the cell, its datapath, a row, stacks, delay blocks
    # Size: within 2x of one cell (with its submodules) plus the wiring of each of the 1,024 uses.
    cell_lines = sum(body.count("\n") for n, body in modules.items() if n.lstrip("\\").startswith(cell))
    row = next(body for body in modules.values() if f"{cell} pe_0 (" in body)
    use = row[row.index(f"{cell} pe_0 (") :]
    use_lines = use[: use.index(");")].count("\n") + 1
    assert text.count("\n") < 2 * (cell_lines + 32 * 32 * use_lines), (
        text.count("\n"),
        cell_lines,
        use_lines,
    )


@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8"])
def test_no_module_is_written_twice(config):
    text = load_config(config).accelerator().verilog
    names = MODULE.findall(text)
    assert len(names) == len(set(names))
    bodies = [re.sub(r"^module \S+", "", body) for body in _modules(text).values()]
    assert len(bodies) == len(set(bodies))  # no two modules with the same logic under two names


@pytest.mark.rtl
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_inline_amaranth_simulation_equals_hierarchical_rtl(dataflow):
    """The Amaranth simulator runs the blocks inline; the Verilator build runs the written modules.
    Both give the golden result on a 3 x 5 array (odd sizes: a stack of 2 + 1 rows, delay blocks of
    1, 2 and 4 cycles), and the RTL takes the cycles the timing model gives."""
    from tests.test_lean_cells import _ints, _play, _WithReset, design

    acc = design(3, 5, dataflow).accelerator()
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (7, 6))
    w = rng.integers(-128, 128, (6, 9))
    expected = a @ w
    rtl = acc.run_gemm(a, w, backend="rtl")
    assert np.array_equal(rtl.output, expected)
    assert rtl.cycles == acc.cycles(7, 6, 9)
    prog = acc.program(*acc.check_operands(a, w))
    beats = {port: _ints(b) for port, b in prog.stream.inputs.items()}
    got = _play(_WithReset(acc.component()), [(beats, 40, False)])
    nbytes = -(-acc.lane_bits()[2] * 5 // 8)
    payload = np.array([list(g.to_bytes(nbytes, "little")) for g in got], dtype=np.uint8)
    assert np.array_equal(prog.decode({"results": payload}), expected)
