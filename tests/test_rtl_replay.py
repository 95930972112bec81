"""The replay harness (:mod:`tpegen.sim.replay`) against the per-beat cocotb testbench.

The same stream programs (several GEMMs back to back, shapes that are not multiples of the array)
run through both testbenches on the same design: outputs, cycle counts and the cycle stamp of every
input and output handshake must be identical, and the decoded outputs must equal ``A @ W``
computed here with numpy (integer families: wrapped to the accumulator width) or the FP golden
model. A program whose output never comes must end in the harness's idle check, not hang.
Default run: a small output-stationary and a small weight-stationary array (the same designs as
``tests/test_cycle_sim.py``, so their per-beat builds are shared); ``-m slow``: the shipped
``int8_os_8x8`` and ``int8_ws_8x8``, the two-register OS cell with the lean options,
``bf16_exact``, the dot-product tile and the LUT core.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.packing import wrap
from tpegen.sim.replay import replay_depth
from tpegen.sim.verilator import StreamProgram


def cyc_design(dataflow: str, rows: int, cols: int):
    """The arrays of tests/test_cycle_sim.py (same config, same Verilog, shared per-beat build)."""
    pe = {"type": "mac", "dataflow": dataflow, "acc_bits": 17}
    raw = {"name": f"cyc_{dataflow}_{rows}x{cols}", "pe": pe, "array": {"rows": rows, "cols": cols}}
    return config_from_dict(raw).accelerator()


def shipped(name: str, **array):
    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    if array:
        raw["name"] = f"{name}_" + "_".join(sorted(array))
        raw["array"] = {**raw["array"], **array}
    return config_from_dict(raw).accelerator() if array else load_config(name).accelerator()


def reference(acc, a, w) -> np.ndarray:
    """C = A @ W: numpy, wrapped to the accumulator, for MAC arrays; the golden model otherwise."""
    if acc.family == "mac":
        return wrap(np.asarray(a, dtype=np.int64) @ np.asarray(w, dtype=np.int64), acc.params.pe.acc_bits)
    return acc.golden(*acc.check_operands(a, w))


def gemms_for(acc, rng, unit: int):
    """Shapes around the array size ``unit``: partial tiles, K below and above it, 1x1x1."""
    shapes = [(2 * unit + 1, unit + 3, unit + 2), (1, 1, 1), (unit - 1 or 1, 3 * unit + 1, 2 * unit + 1)]
    return [acc.random_operands(rng, *s) for s in shapes]


def both_paths(acc, gemms):
    """Run ``gemms`` through both testbenches; assert identical results; return the outputs."""
    programs = [acc.program(*acc.check_operands(a, w)) for a, w in gemms]
    streams = [p.stream for p in programs]
    fast = acc.replay_model(replay_depth(streams), optimize=False).run(streams)
    slow = acc.rtl_model().run(streams)
    for n, (f, s) in enumerate(zip(fast, slow, strict=True)):
        assert f.cycles == s.cycles, n
        for got, want in ((f.outputs, s.outputs), (f.in_cycles, s.in_cycles), (f.out_cycles, s.out_cycles)):
            assert set(got) == set(want)
            for port in want:
                assert np.array_equal(got[port], want[port]), (n, port)
                assert got[port].dtype == want[port].dtype, (n, port)
    return [p.decode(f.outputs) for p, f in zip(programs, fast, strict=True)], streams


def check_design(acc, unit: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    gemms = gemms_for(acc, rng, unit)
    outputs, _ = both_paths(acc, gemms)
    for (a, w), c in zip(gemms, outputs, strict=True):
        want = reference(acc, a, w)
        assert c.shape == want.shape and c.dtype == want.dtype
        assert np.array_equal(c.view(np.uint8), want.view(np.uint8))  # floats: bit patterns


SMALL = [("os", 2, 3), ("ws", 2, 3)]


@pytest.mark.rtl
@pytest.mark.parametrize("dataflow,rows,cols", SMALL, ids=[f"{d}_{r}x{c}" for d, r, c in SMALL])
def test_replay_equals_per_beat_small_arrays(dataflow, rows, cols):
    acc = cyc_design(dataflow, rows, cols)
    check_design(acc, rows)
    # A program that waits for a result beat that never comes ends in the idle check.
    a, w = acc.random_operands(np.random.default_rng(1), rows, 2, cols)
    stream = acc.program(a, w).stream
    hung = StreamProgram(inputs=stream.inputs, outputs={p: n + 1 for p, n in stream.outputs.items()})
    with pytest.raises(TpegenError, match="no handshake for 40 cycles"):
        acc.replay_model(replay_depth([hung]), optimize=False).run([hung], max_idle_cycles=40)


def test_replay_path_is_refused_with_stalls_or_waves(tmp_path):
    acc = cyc_design("os", 2, 3)
    a, w = acc.random_operands(np.random.default_rng(0), 2, 2, 3)
    with pytest.raises(ConfigError, match="path"):
        acc.run_rtl([(a, w)], stall_prob=0.1, path="replay")
    with pytest.raises(ConfigError, match="path"):
        acc.run_rtl([(a, w)], vcd_path=tmp_path / "x.vcd", path="replay")
    with pytest.raises(ConfigError, match="auto, replay, cocotb"):
        acc.run_rtl([(a, w)], path="fast")


def test_replay_depth_is_a_power_of_two_and_covers_every_port():
    prog = StreamProgram(inputs={"x": np.zeros((5000, 2), np.uint8)}, outputs={"y": 9000})
    assert replay_depth([prog]) == 16384
    assert replay_depth([StreamProgram(inputs={"x": np.zeros((3, 1), np.uint8)}, outputs={"y": 1})]) == 4096


SHIPPED = {
    "int8_os_8x8": lambda: shipped("int8_os_8x8"),
    "int8_ws_8x8": lambda: shipped("int8_ws_8x8"),
    "two_register_os_8x8": lambda: shipped(
        "int8_os_8x8", os_cell="two_register", reset_less_datapath=True, operand_gating=True
    ),
    "bf16_exact": lambda: shipped("bf16_exact"),
    "matrix2d_int8_4x4x8": lambda: shipped("matrix2d_int8_4x4x8"),
    "lut_w2a8": lambda: shipped("lut_w2a8"),
}


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHIPPED))
def test_replay_equals_per_beat_shipped_configs(name):
    check_design(SHIPPED[name](), 8)
