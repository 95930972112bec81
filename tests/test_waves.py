"""``--waves FILE.vcd`` on ``verify`` and ``gemm --backend rtl`` writes the RTL waveform."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

TINY = {
    "name": "tiny_waves",
    "pe": {"type": "mac", "act_bits": 4, "weight_bits": 4, "acc_bits": 12, "dataflow": "os"},
    "array": {"rows": 2, "cols": 2},
}


@pytest.mark.rtl
def test_gemm_and_verify_write_a_vcd(run_cli, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    a = np.arange(6).reshape(2, 3) - 3
    w = np.arange(6).reshape(3, 2) - 2
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "W.npy", w)
    vcd = tmp_path / "gemm.vcd"
    code, _, err = run_cli(
        "gemm", cfg, "--a", tmp_path / "A.npy", "--w", tmp_path / "W.npy", "--backend", "rtl",
        "-o", tmp_path / "C.npy", "--waves", vcd,
    )  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "C.npy"), a @ w)
    text = vcd.read_text()
    assert "$enddefinitions" in text and "operands__valid" in text and "results__payload" in text
    code, _, err = run_cli("verify", cfg, "--cases", "1", "--waves", tmp_path / "verify.vcd")
    assert code == 0, err
    assert "$enddefinitions" in (tmp_path / "verify.vcd").read_text()


def test_waves_needs_the_rtl_backend(run_cli, tmp_path):
    np.save(tmp_path / "A.npy", np.ones((2, 2), dtype=np.int8))
    code, _, err = run_cli(
        "gemm", "int8_os_8x8", "--a", tmp_path / "A.npy", "--w", tmp_path / "A.npy", "-o", tmp_path / "C.npy",
        "--waves", tmp_path / "x.vcd",
    )  # fmt: skip
    assert code != 0 and "--waves: must be used with --backend rtl" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.npy"]
