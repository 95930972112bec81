"""The 32x32 arrays on the RTL (issue 14): `tpegen gemm --backend rtl` on a shape that is not a
multiple of the array gives ``A @ W`` in the cycle simulator's cycles, for both dataflows.

At this size the arrays are queued (``array.backpressure: auto``), written hierarchically and
built by Verilator from the replay harness (about two minutes each, cold, on two cores).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tpegen.cli import main


@pytest.mark.rtl
@pytest.mark.parametrize("config", ["int8_os_32x32", "int8_ws_32x32"])
def test_32x32_gemm_on_rtl_equals_a_at_w_in_the_simulators_cycles(config, tmp_path, capsys):
    rng = np.random.default_rng(32)
    a = rng.integers(-128, 128, (37, 45)).astype(np.int8)
    w = rng.integers(-128, 128, (45, 41)).astype(np.int8)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "w.npy", w)
    runs = {}
    for backend in ("rtl", "cycle"):
        out = tmp_path / f"c_{backend}.npy"
        args = [
            "gemm",
            f"configs/{config}.yaml",
            "--a",
            str(tmp_path / "a.npy"),
            "--w",
            str(tmp_path / "w.npy"),
        ]
        assert main([*args, "--backend", backend, "-o", str(out), "--json"]) == 0
        runs[backend] = (np.load(out), json.loads(capsys.readouterr().out)["cycles"])
    expected = a.astype(np.int64) @ w.astype(np.int64)
    assert np.array_equal(runs["rtl"][0], expected) and np.array_equal(runs["cycle"][0], expected)
    assert runs["rtl"][1] == runs["cycle"][1]
