"""The command line: help, gen, gemm (golden and RTL), demo, and one-line errors with no leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CONFIGS

from tpegen.config import DEFAULT_CONFIG


def test_help_lists_commands(run_cli, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli("--help")
    assert info.value.code == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("usage: tpegen")
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert {"demo", "gen", "verify", "gemm", "sim", "synth"} <= listed, listed


def test_no_command_prints_help(run_cli):
    code, out, _ = run_cli()
    assert code == 2 and "demo" in out and "gemm" in out


def _write(tmp_path, name, x):
    path = tmp_path / name
    np.save(path, x)
    return path


def test_gemm_golden_json_contract(gemm_cli):
    rng = np.random.default_rng(0)
    a, w = rng.integers(-128, 128, (33, 70)), rng.integers(-128, 128, (70, 21))
    report, c = gemm_cli(CONFIGS / "int8_os_8x8.yaml", a, w, "golden")
    assert set(report) == {"backend", "M", "K", "N", "cycles", "output"}
    assert (report["M"], report["K"], report["N"], report["backend"]) == (33, 70, 21, "golden")
    assert c.dtype == np.int64 and np.array_equal(c, a.astype(np.int64) @ w)
    # 5 x 3 output tiles of 70 beats each, spaced max(70, 8) apart, plus fill and drain.
    assert report["cycles"] == 15 * 70 + 2 * 8 + 8 - 1


@pytest.mark.rtl
@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8"])
def test_gemm_rtl_matches_numpy_and_timing_model(gemm_cli, config):
    rng = np.random.default_rng(1)
    a, w = (
        rng.integers(-128, 128, (33, 70)).astype(np.int8),
        rng.integers(-128, 128, (70, 21)).astype(np.int8),
    )
    results = {}
    for backend in ("rtl", "golden"):
        results[backend], c = gemm_cli(CONFIGS / f"{config}.yaml", a, w, backend)
        assert np.array_equal(c, a.astype(np.int64) @ w)
    assert results["rtl"]["cycles"] == results["golden"]["cycles"]


@pytest.mark.rtl
@pytest.mark.parametrize("config", ["int8_ws_8x8", "w4a8_os_16x16"])
def test_gen_verilog_lints_clean(run_cli, tmp_path, config):
    out = tmp_path / "out"
    code, stdout, err = run_cli("gen", CONFIGS / f"{config}.yaml", "-o", out, "--lint", "--json")
    assert code == 0, err
    paths = json.loads(stdout)
    manifest = json.loads(Path(paths["manifest"]).read_text())
    assert manifest["config"]["name"] == config
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert widths["results__valid"] == 1
    rows = manifest["config"]["array"]["rows"]
    cols = manifest["config"]["array"]["cols"]
    assert widths["results__payload"] == cols * 32 + 1
    if config.startswith("w4a8"):
        assert widths["operands__payload"] == rows * 8 + cols * 4 + 1
    assert "module " + manifest["top"] in Path(paths["verilog"]).read_text()


@pytest.mark.rtl
def test_demo_runs_default_job(run_cli):
    """The default job maps the built-in CNN on the 16x16 INT8 OS array and checks fc1 on the RTL."""
    code, stdout, err = run_cli("demo", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["hw"] == "int8_os_16x16" and summary["quant"] == "W8A8" and summary["backend"] == "cycle"
    checked = {x["name"]: x["rtl_check"] for x in summary["layers"]}
    assert checked == {"conv1": None, "conv2": None, "fc1": True, "fc2": None}
    assert summary["accuracy"]["float"] - summary["accuracy"]["mapped"] <= 0.005


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"array": {"rows": 0, "cols": 8}}, "array.rows"),
        ({"array": {"rows": 8, "cols": 8, "banks": 2}}, "array.banks"),
        ({"color": "red"}, "color"),
    ],
)
def test_bad_config_one_line_error_and_no_output(run_cli, tmp_path, patch, field):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({**DEFAULT_CONFIG, **patch}))
    out = tmp_path / "gen_out"
    code, stdout, err = run_cli("gen", cfg, "-o", out)
    assert code != 0
    assert err.count("\n") == 1 and field in err and "must be" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [cfg]


def test_gemm_bad_operands(run_cli, tmp_path):
    hw = CONFIGS / "int8_os_8x8.yaml"
    ok = _write(tmp_path, "ok.npy", np.ones((4, 4), dtype=np.int64))
    big = _write(tmp_path, "big.npy", np.full((4, 4), 200))
    wide = _write(tmp_path, "wide.npy", np.ones((5, 4), dtype=np.int64))
    out = tmp_path / "C.npy"
    for a, w, needle in [
        (big, ok, "A: must be signed 8-bit values in -128..127"),
        (ok, wide, "same K"),
        (tmp_path / "nope.npy", ok, "nope.npy: no such file"),
    ]:
        code, _, err = run_cli("gemm", "--hw", hw, "--a", a, "--w", w, "-o", out)
        assert code != 0 and needle in err and err.count("\n") == 1
        assert not out.exists()


def _tiny_config(tmp_path, dataflow):
    cfg = tmp_path / f"tiny_{dataflow}.yaml"
    raw = {**DEFAULT_CONFIG, "name": f"tiny_{dataflow}", "array": {"rows": 3, "cols": 2}}
    raw["pe"] = {**DEFAULT_CONFIG["pe"], "dataflow": dataflow, "acc_bits": 18}
    cfg.write_text(yaml.safe_dump(raw))
    return cfg


@pytest.mark.rtl
def test_verify_command_passes_and_reports_json(run_cli, tmp_path):
    code, stdout, err = run_cli(
        "verify", _tiny_config(tmp_path, "ws"), "--cases", "3", "--seed", "5", "--json"
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["passed"] and len(report["cases"]) >= 11
    assert all(
        c["bit_exact"] and c["stall_bit_exact"] and c["cycles_rtl"] == c["cycles_model"]
        for c in report["cases"]
    )


@pytest.mark.rtl
def test_verify_command_fails_on_a_wrong_timing_model(run_cli, tmp_path, monkeypatch):
    """The verification can fail: a timing model that is off by one cycle is caught (exit 1)."""
    from tpegen.sw.systolic import SystolicAccelerator

    real = SystolicAccelerator.cycles
    monkeypatch.setattr(SystolicAccelerator, "cycles", lambda self, m, k, n: real(self, m, k, n) + 1)
    code, stdout, _ = run_cli("verify", _tiny_config(tmp_path, "os"), "--cases", "1", "--json")
    assert code == 1
    report = json.loads(stdout)
    assert not report["passed"] and all(c["bit_exact"] for c in report["cases"])


def test_usage_errors_are_one_line(run_cli, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(
            "gemm",
            "--hw",
            CONFIGS / "int8_os_8x8.yaml",
            "--a",
            "A.npy",
            "--w",
            "W.npy",
            "-o",
            "C.npy",
            "--backend",
            "spice",
        )
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tpegen gemm: error: argument --backend: invalid choice: 'spice'")


def test_verify_formal_reports_a_proof(run_cli):
    code, out, err = run_cli("verify", "int8_os_8x8", "--formal", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["passed"] and report["family"] == "mac"
    assert all(c["proved"] for c in report["checks"]) and len(report["checks"]) >= 2
