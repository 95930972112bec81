"""Config loading: every shipped config loads; bad configs fail with one line naming the field."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import DEFAULT_CONFIG, config_from_dict, load_config
from tpegen.errors import ConfigError

REQUIRED = ["int8_os_16x16", "int8_os_8x8", "int8_ws_8x8", "int8_os_32x32", "int8_ws_32x32", "w4a8_os_16x16"]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_configs_exist_and_load(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.name == name
    assert dataclasses.is_dataclass(cfg.pe) and dataclasses.is_dataclass(cfg.array)


def test_every_shipped_config_loads():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        if path.relative_to(CONFIGS).parts[0] != "sweeps":  # sweep specs (tests/test_sweep.py)
            load_config(path)


def test_default_is_int8_os_16x16_file():
    assert load_config(None) == load_config(CONFIGS / "int8_os_16x16.yaml")


def test_w4a8_has_4_bit_signed_weights():
    pe = load_config(CONFIGS / "w4a8_os_16x16.yaml").pe
    assert (pe.weight_bits, pe.weight_signed, pe.act_bits, pe.act_signed) == (4, True, 8, True)


def test_params_are_frozen():
    cfg = load_config(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.array.rows = 3  # type: ignore[misc]


def _with(section, key, value):
    raw = yaml.safe_load(yaml.safe_dump(DEFAULT_CONFIG))
    if section is None:
        raw[key] = value
    else:
        raw[section][key] = value
    return raw


@pytest.mark.parametrize(
    "section,key,value,field,allowed",
    [
        ("array", "rows", 0, "array.rows", "1..128"),
        ("array", "cols", 129, "array.cols", "1..128"),
        ("array", "rows", "16", "array.rows", "integer"),
        ("array", "rows", True, "array.rows", "integer"),
        ("array", "depth", 3, "array.depth", "rows, cols"),
        ("pe", "act_bits", 1, "pe.act_bits", "2..16"),
        ("pe", "weight_bits", 17, "pe.weight_bits", "2..16"),
        ("pe", "acc_bits", 12, "pe.acc_bits", "16..64"),
        ("pe", "dataflow", "rs", "pe.dataflow", "'os', 'ws'"),
        ("pe", "act_signed", "yes", "pe.act_signed", "true or false"),
        ("pe", "type", "tpu", "pe.type", "'mac'"),
        ("pe", "multiplier", "booth", "pe.multiplier", "'array', 'booth_r4', 'en_t'"),
        ("pe", "booth", True, "pe.booth", "act_bits"),
        (None, "arrays", {}, "arrays", "pe, array"),
    ],
)
def test_bad_values_name_field_and_allowed_values(section, key, value, field, allowed):
    with pytest.raises(ConfigError) as info:
        config_from_dict(_with(section, key, value))
    message = str(info.value)
    assert info.value.field == field
    assert message.startswith(field) and allowed in message and "\n" not in message


def test_missing_section():
    raw = dict(DEFAULT_CONFIG)
    del raw["array"]
    with pytest.raises(ConfigError, match="^array: must be present"):
        config_from_dict(raw)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pe: [unclosed\n")
    with pytest.raises(Exception, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(Exception, match="missing.yaml: no such file"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump(_with("array", "rows", 0)))
    with pytest.raises(ConfigError, match=r"^.*bad.yaml: array.rows: must be an integer in 1..128, got 0$"):
        load_config(bad)


def test_comparison_pair_has_equal_peak_macs():
    lut = load_config(CONFIGS / "compare" / "lut_w2a8_128.yaml").accelerator()
    mac = load_config(CONFIGS / "compare" / "mac_w2a8_8x16.yaml").accelerator()
    assert lut.macs_per_cycle == mac.macs_per_cycle == 128
    assert (lut.params.weight_bits, lut.params.act_bits) == (
        mac.params.pe.weight_bits,
        mac.params.pe.act_bits,
    )
