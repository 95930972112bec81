"""Shared fixtures: tests run the CLI in-process and compare against numpy references."""

from __future__ import annotations

from pathlib import Path

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
