"""The accelerator top from the command line: gen/gemm/sim --system and asm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tpegen.hw.system import isa


def _operands(tmp_path, m, k, n, seed=0, lo=-128, hi=128):
    rng = np.random.default_rng(seed)
    a, w = rng.integers(lo, hi, (m, k)), rng.integers(lo, hi, (k, n))
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    return a, w


@pytest.mark.parametrize("config", ["int8_os_8x8", "int8_ws_8x8"])
def test_gemm_system_golden_and_cycle(run_cli, tmp_path, config):
    a, w = _operands(tmp_path, 37, 90, 21)
    reports = {}
    for backend in ("golden", "cycle"):
        out, listing = tmp_path / f"C_{backend}.npy", tmp_path / f"{backend}.lst"
        code, stdout, err = run_cli(
            "gemm", config, "--a", tmp_path / "A.npy", "--w", tmp_path / "W.npy", "--system",
            "--backend", backend, "-o", out, "--listing", listing, "--json",
        )  # fmt: skip
        assert code == 0, err
        reports[backend] = json.loads(stdout)
        np.testing.assert_array_equal(np.load(out), a @ w)
        assert listing.read_text().startswith("#")
        program = isa.parse_listing(listing.read_text())
        assert len(program) == reports[backend]["commands"]
    assert reports["golden"]["cycles"] == reports["cycle"]["cycles"] > 0
    assert reports["cycle"]["host_bytes"] == reports["cycle"]["expected_host_bytes"]
    assert reports["cycle"]["host_bytes"] >= a.size + w.size + 4 * a.shape[0] * w.shape[1]


def test_gemm_system_rejects_system_options_without_system(run_cli, tmp_path):
    _operands(tmp_path, 4, 4, 4)
    args = (
        "gemm",
        "int8_os_8x8",
        "--a",
        tmp_path / "A.npy",
        "--w",
        tmp_path / "W.npy",
        "-o",
        tmp_path / "C.npy",
    )
    code, _, err = run_cli(*args, "--listing", tmp_path / "p.lst")
    assert code != 0 and "--listing: must be used with --system" in err
    code, _, err = run_cli(*args, "--mem-latency", "4")
    assert code != 0 and "--mem-latency: must be used with --system" in err
    code, _, err = run_cli(*args, "--system", "--mem-latency", "0", "--backend", "cycle")
    assert code != 0 and "latency" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "C.npy").exists()


def test_gen_system_writes_the_top_and_its_manifest(run_cli, tmp_path):
    code, stdout, err = run_cli("gen", "int8_ws_8x8", "--system", "-o", tmp_path / "out", "--json")
    assert code == 0, err
    paths = json.loads(stdout)
    verilog = Path(paths["verilog"]).read_text()
    manifest = json.loads(Path(paths["manifest"]).read_text())
    assert manifest["top"] == "tpegen_int8_ws_8x8_system" in verilog
    names = {p["name"] for p in manifest["ports"]}
    assert {
        "cmd__payload",
        "cmd__valid",
        "cmd__ready",
        "m_axi__araddr",
        "m_axi__wdata",
        "status",
    } <= names
    assert manifest["memories"]["A"]["rows"] > 0 and manifest["axi_bytes"] == 16


def test_sim_system_reports_per_layer(run_cli, tmp_path):
    topo = tmp_path / "t.csv"
    topo.write_text("Layer, M, N, K,\nfc1, 64, 48, 96,\nfc2, 64, 16, 48,\n")
    code, stdout, err = run_cli(
        "sim", "int8_os_8x8", "--topology", topo, "--system", "--bandwidth", "8", "--json"
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert [r["name"] for r in report["layers"]] == ["fc1", "fc2"]
    assert report["system"]["axi_bytes"] == 8
    for r in report["layers"]:
        assert 0 < r["utilization"] <= r["array_utilization"] <= 1
        assert r["read_bytes"] >= r["M"] * r["K"] + r["K"] * r["N"]
    code, _, err = run_cli("sim", "int8_os_8x8", "--topology", topo, "--system", "--bandwidth", "A=8")
    assert code != 0 and "--bandwidth" in err


def test_asm_checks_a_listing_and_names_the_bad_command(run_cli, tmp_path):
    good = tmp_path / "good.lst"
    good.write_text(
        "LOAD signal=E target=0 sp_addr=0 host_addr=0x0 rows=1 seg=4 stride=0\n"
        "LOAD signal=E target=1 sp_addr=0 host_addr=0x40 rows=1 seg=4 stride=0\n"
        "EXEC wait=L signal=S a_addr=0 w_addr=0 c_addr=0 c_stride=8 mt=1 nt=1 kt=4 mb=1 acc=0\n"
        "STORE wait=E c_addr=0 host_addr=0x100 rows=1 seg=8 stride=0 format=0\n"
    )
    code, stdout, err = run_cli("asm", good, "int8_os_8x8", "-o", tmp_path / "p.bin", "--json")
    assert code == 0, err
    assert json.loads(stdout)["commands"] == 4 and (tmp_path / "p.bin").stat().st_size == 64
    bad = tmp_path / "bad.lst"
    bad.write_text(good.read_text().replace("sp_addr=0 host_addr=0x40", "sp_addr=2047 host_addr=0x40"))
    code, _, err = run_cli("asm", bad, "int8_os_8x8", "-o", tmp_path / "q.bin")
    assert code != 0
    assert err.strip().splitlines() == [
        "tpegen: error: command 1: LOAD.sp_addr + rows * seg: must be <= 2048 (rows of scratchpad W), got 2051"
    ]
    assert not (tmp_path / "q.bin").exists()


TINY_TOP = """\
name: int8_os_2x2_top
pe: {type: mac, act_bits: 8, weight_bits: 8, act_signed: true, weight_signed: true, acc_bits: 32, dataflow: os}
array: {rows: 2, cols: 2}
system: {axi_bytes: 4, scratchpad_a_kib: 1, scratchpad_w_kib: 1, accumulator_kib: 1, qparam_rows: 1, queue_depth: 2}
"""


def test_synth_system_needs_no_energy(run_cli, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TOP)
    code, _, err = run_cli("synth", cfg, "--system")
    assert code != 0
    assert (
        err.strip()
        == "tpegen: error: --no-energy: must be given with --system (gate-level energy of the top is not modelled yet)"
    )


@pytest.mark.slow
def test_synth_system_reports_logic_and_memories_apart(run_cli, tmp_path):
    """The accelerator top through Yosys (about 6 minutes even at 2x2: the output stage's 32x32
    requantization multipliers dominate): scratchpads and accumulator black-boxed and costed by
    the SRAM model, on their own lines; small FIFOs stay logic."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TOP)
    code, stdout, err = run_cli("synth", cfg, "--system", "--no-energy", "--json")
    assert code == 0, err
    rep = json.loads(stdout)
    mems = {m["name"]: m for m in rep["memories"]}
    assert set(mems) == {"mem_a", "mem_w", "mem_c"}
    assert (mems["mem_a"]["width_bits"], mems["mem_a"]["depth"]) == (16, 512)
    assert mems["mem_c"]["read_ports"] == 2 and "OpenRAM" in mems["mem_c"]["cost"]["source"]
    assert rep["area_um2"] == rep["logic_area_um2"] > 0
    assert rep["logic_plus_memories_area_um2"] == pytest.approx(
        rep["logic_area_um2"] + rep["memory_area_um2"]
    )
    assert rep["cells"].get("DFF_X1", 0) < 4000  # 2 x 8 KiB of scratchpad did not become flip-flops
