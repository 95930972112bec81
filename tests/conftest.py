"""Shared fixtures: tests run the CLI in-process and compare against numpy references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture
def run_cli(capsys):
    """Run ``tpegen ARGS`` in-process; return (exit code, stdout, stderr)."""
    from tpegen.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def gemm_cli(run_cli, tmp_path):
    """Run ``tpegen gemm --json`` on in-memory A and W; return (its JSON report, C as written)."""

    def run(hw, a, w, backend: str = "golden"):
        pa, pw, out = tmp_path / "A.npy", tmp_path / "W.npy", tmp_path / f"C_{backend}.npy"
        np.save(pa, a)
        np.save(pw, w)
        code, stdout, err = run_cli(
            "gemm", "--hw", hw, "--a", pa, "--w", pw, "--backend", backend, "-o", out, "--json"
        )
        assert code == 0, err
        return json.loads(stdout), np.load(out)

    return run


@pytest.fixture
def knob_array_check(gemm_cli):
    """Check an integer array config that adds a bit-weight knob: ``verify`` passes, ``tpegen gemm
    --backend rtl`` on ``a``/``w`` equals ``A @ W`` in the cycle backend's cycles, and the same array
    with ``baseline_pe`` fields (the knob undone) takes as many cycles (the knob adds no latency)."""
    from tpegen.config import config_from_dict, load_config
    from tpegen.sw.verify import verify

    def check(name: str, a: np.ndarray, w: np.ndarray, baseline_pe: dict, verify_seed: int) -> None:
        cfg = load_config(name)
        report = verify(cfg.accelerator(), cases=3, seed=verify_seed)
        assert report.passed, [c for c in report.cases if not c.passed]
        rtl, out = gemm_cli(name, a, w, "rtl")
        cycle, _ = gemm_cli(name, a, w, "cycle")
        assert np.array_equal(out, a @ w)
        assert rtl["cycles"] == cycle["cycles"]
        raw = cfg.to_dict()
        baseline = config_from_dict({**raw, "pe": {**raw["pe"], **baseline_pe}})
        assert baseline.accelerator().cycles(a.shape[0], a.shape[1], w.shape[1]) == rtl["cycles"]

    return check


@pytest.fixture
def bad_config(run_cli, tmp_path):
    """Check that config mapping ``raw`` is refused: ``config_from_dict`` raises a ConfigError
    naming ``field`` with ``allowed`` in its message, and ``tpegen gen`` on it as a YAML file exits
    non-zero with one line naming the field and writes no output folder."""
    import yaml

    from tpegen.config import config_from_dict
    from tpegen.errors import ConfigError

    def check(raw: dict, field: str, allowed: str) -> None:
        with pytest.raises(ConfigError) as info:
            config_from_dict(raw)
        assert info.value.field == field and allowed in str(info.value)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(raw))
        code, _, err = run_cli("gen", path, "-o", tmp_path / "out")
        assert code != 0 and err.count("\n") == 1 and field in err
        assert not (tmp_path / "out").exists()

    return check
