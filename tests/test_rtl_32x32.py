"""The large arrays on the RTL (issue 14): `tpegen gemm --backend rtl` on a shape that is not a
multiple of the array gives ``A @ W`` in the cycle simulator's cycles, for both dataflows: the
shipped 32x32 OS config in the default run; 32x32 WS, 64x64 and 128x128 under ``-m slow``.

At these sizes the arrays are queued (``array.backpressure: auto``), written hierarchically and
built by Verilator from the replay harness (about two minutes each at 32x32, cold, on two cores).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tpegen.cli import main
from tpegen.config import load_config


@pytest.mark.rtl
@pytest.mark.parametrize(
    "config", ["int8_os_32x32", pytest.param("int8_ws_32x32", marks=pytest.mark.slow)]
)  # WS runs on Verilator at 8x8 and below in the default run
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


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_large_gemm_on_rtl_equals_a_at_w_in_the_simulators_cycles(n, dataflow):
    cfg = load_config(f"int8_{dataflow}_32x32")
    cfg = dataclasses.replace(
        cfg, name=f"int8_{dataflow}_{n}x{n}", array=dataclasses.replace(cfg.array, rows=n, cols=n)
    )
    acc = cfg.accelerator()
    rng = np.random.default_rng(n)
    a = rng.integers(-128, 128, (n + 5, 45)).astype(np.int8)
    w = rng.integers(-128, 128, (45, n + 3)).astype(np.int8)
    rtl = acc.run_gemm(a, w, backend="rtl")
    cycle = acc.run_gemm(a, w, backend="cycle")
    expected = a.astype(np.int64) @ w.astype(np.int64)
    assert np.array_equal(rtl.output, expected) and np.array_equal(cycle.output, expected)
    assert rtl.cycles == cycle.cycles
