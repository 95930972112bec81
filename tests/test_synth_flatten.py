"""``synthesize(flatten=True)`` / ``tpegen synth --flatten``: one module mapped as a whole.

Hierarchically, ABC maps each submodule on its own and never sees that a net entering many
instances drives the logic behind each of them; flat, it buffers such nets. Checked on a small LUT
core (its control nets fan out into every dot-product unit) and on a one-module dot tile.
"""

from __future__ import annotations

import pytest

from tpegen.config import config_from_dict
from tpegen.errors import ConfigError
from tpegen.synth import synthesize

LUT = {
    "name": "flat_lut",
    "pe": {"type": "lut", "group_size": 2, "act_bits": 8, "weight_bits": 2, "acc_bits": 16},
    "array": {"tile_m": 2, "tile_n": 8, "tile_k": 1},
}
DOT = {
    "name": "flat_dot",
    "pe": {"type": "dot", "organization": "matrix2d", "act_bits": 4, "weight_bits": 2, "acc_bits": 12},
    "array": {"tile_m": 2, "tile_n": 2, "tile_k": 2},
}


def _design(raw):
    acc = config_from_dict(raw).accelerator()
    return acc.verilog, acc.top_name


def test_flat_mapping_drops_the_submodules_and_buffers_their_fanout():
    verilog, top = _design(LUT)
    hier = synthesize(verilog, top, timing=False)
    flat = synthesize(verilog, top, timing=False, flatten=True)
    assert len(hier.modules) > 8 and set(flat.modules) == {top}  # one per unit vs the top alone
    assert flat.flow.get("flatten") is True and "flatten" not in hier.flow
    assert flat.work_dir != hier.work_dir
    # the flat netlist buffers the nets that enter the dot-product units (hierarchically mapped,
    # each unit's ports are assumed driven by one buffer)
    assert flat.cells.get("BUF_X2", 0) + flat.cells.get("BUF_X4", 0) > hier.cells.get(
        "BUF_X2", 0
    ) + hier.cells.get("BUF_X4", 0)


def test_a_one_module_design_is_unchanged_and_keeps_its_cache_entry():
    verilog, top = _design(DOT)
    assert (
        synthesize(verilog, top, timing=False, flatten=True).work_dir
        == synthesize(verilog, top, timing=False).work_dir
    )


def test_flatten_must_be_a_bool():
    verilog, top = _design(DOT)
    with pytest.raises(ConfigError, match="^flatten: "):
        synthesize(verilog, top, flatten="yes")
