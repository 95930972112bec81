"""The LUT tensor core behind the common interfaces: configs, `tpegen gemm` (golden and RTL), verify."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError
from tpegen.sw.verify import verify

LUT_CONFIGS = ["lut_w1a8", "lut_w2a8", "lut_w4a8", "lut_ternary_a8", "lut_w2a16"]


def _operands(name, m=17, k=64, n=40, seed=0):
    acc = load_config(CONFIGS / f"{name}.yaml").accelerator()
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (acc.params.act_bits - 1)), (1 << (acc.params.act_bits - 1))
    a = rng.integers(lo, hi, (m, k))
    a[0, :] = lo  # extremes in every run
    a[1, :] = hi - 1
    w = rng.choice(acc.weight_values(), (k, n))
    return a, w


@pytest.mark.parametrize("name", LUT_CONFIGS)
def test_golden_backend_is_exact(gemm_cli, name):
    a, w = _operands(name)
    report, c = gemm_cli(CONFIGS / f"{name}.yaml", a, w, "golden")
    assert np.array_equal(c, a.astype(np.int64) @ w)
    assert (report["M"], report["K"], report["N"]) == (17, 64, 40)


def _rtl_case(gemm_cli, name):
    a, w = _operands(name)
    rtl, c_rtl = gemm_cli(CONFIGS / f"{name}.yaml", a, w, "rtl")
    golden, _ = gemm_cli(CONFIGS / f"{name}.yaml", a, w, "golden")
    cycle, c_cycle = gemm_cli(CONFIGS / f"{name}.yaml", a, w, "cycle")
    assert np.array_equal(c_rtl, a.astype(np.int64) @ w) and np.array_equal(c_cycle, c_rtl)
    assert rtl["cycles"] == golden["cycles"] == cycle["cycles"]


@pytest.mark.rtl
def test_rtl_w2a8_is_exact_and_cycle_exact(gemm_cli):
    _rtl_case(gemm_cli, "lut_w2a8")


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in LUT_CONFIGS if n != "lut_w2a8"])
def test_rtl_other_configs(gemm_cli, name):
    _rtl_case(gemm_cli, name)


@pytest.mark.rtl
def test_verify_small_lut_core():
    cfg = config_from_dict(
        {
            "name": "lut_w3a8_small",
            "pe": {"type": "lut", "group_size": 3, "act_bits": 8, "weight_bits": 3},
            "array": {"tile_m": 2, "tile_n": 3, "tile_k": 2},
        }
    )
    report = verify(cfg.accelerator(), cases=4, seed=3)
    assert report.passed, report.to_dict()


@pytest.mark.parametrize(
    "key,value,field,allowed",
    [
        ("weight_bits", 5, "pe.weight_bits", "1..4"),
        ("group_size", 0, "pe.group_size", "1..6"),
        ("act_bits", 12, "pe.act_bits", "8, 16"),
        ("lanes", 4, "pe.lanes", "group_size"),
    ],
)
def test_invalid_lut_configs(bad_config, key, value, field, allowed):
    raw = yaml.safe_load((CONFIGS / "lut_w2a8.yaml").read_text())
    raw["pe"][key] = value
    bad_config(raw, field, allowed)


def test_array_section_keys_are_checked():
    raw = yaml.safe_load((CONFIGS / "lut_w2a8.yaml").read_text())
    raw["array"]["rows"] = 4
    with pytest.raises(ConfigError, match="array.rows: must be one of the keys tile_m, tile_n, tile_k"):
        config_from_dict(raw)


def test_wrong_weights_are_rejected(run_cli, tmp_path):
    a, w = _operands("lut_ternary_a8")
    w[3, 3] = 2
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    code, _, err = run_cli(
        "gemm",
        "--hw",
        CONFIGS / "lut_ternary_a8.yaml",
        "--a",
        tmp_path / "A.npy",
        "--w",
        tmp_path / "W.npy",
        "-o",
        tmp_path / "C.npy",
    )
    assert code != 0 and "W: must be -1, 0 or +1 (ternary)" in err and err.count("\n") == 1
    assert not (tmp_path / "C.npy").exists()


def test_sim_command_on_lut_core(run_cli, tmp_path):
    topo = tmp_path / "gemms.csv"
    topo.write_text("Layer, M, N, K,\nqkv, 16, 96, 64,\nffn, 16, 128, 96,\n")
    code, stdout, err = run_cli("sim", "--hw", CONFIGS / "lut_w2a8.yaml", "--topology", topo, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert [layer["name"] for layer in report["layers"]] == ["qkv", "ffn"]
    acc = load_config(CONFIGS / "lut_w2a8.yaml").accelerator()
    assert report["layers"][0]["cycles"] == acc.cycles(16, 64, 96)
    assert report["total_cycles"] == sum(layer["cycles"] for layer in report["layers"])
