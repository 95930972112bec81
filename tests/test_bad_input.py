"""Regression tests for every class of bad input found by hand-fuzzing the CLI (configs, .npy
operands, output paths, standard output): one stderr line naming the file or field, a non-zero
exit, bounded time and memory, and nothing written or overwritten."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS

from tpegen._io import MARKER

CFG = CONFIGS / "int8_os_8x8.yaml"
BASE = (CONFIGS / "int8_os_8x8.yaml").read_text()


def _fails(run_cli, *args, match: str) -> str:
    code, out, err = run_cli(*args)
    assert code != 0, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tpegen: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert match in lines[0], lines[0]
    return lines[0]


def _operands(tmp_path: Path) -> tuple[Path, Path]:
    np.save(tmp_path / "A.npy", np.ones((2, 3), dtype=np.int8))
    np.save(tmp_path / "W.npy", np.ones((3, 2), dtype=np.int8))
    return tmp_path / "A.npy", tmp_path / "W.npy"


def _alias_bomb() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in "bcdefghi":
        prev = chr(ord(level) - 1)
        text += f"{level}: &{level} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    return text + "name: *i\n"


CONFIG_CASES = {
    "binary": (b"\x00\x01\x02\xff binary", "holds NUL bytes"),
    "utf16": (BASE.encode("utf-16"), "must be UTF-8 text"),
    "latin1": (("description: caf\xe9\n" + BASE).encode("latin-1"), "byte 0xe9 at offset 16 is not"),
    "deep": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    "bad int tag": (b"name: !!int x\n", "a tagged value cannot be read"),
    "python tag": (BASE.replace("rows: 8", "rows: !!python/object:os.system ls").encode(), "not valid YAML"),
    "type list": (BASE.replace("type: mac", "type: [mac]").encode(), "pe.type: must be one of"),
    "type mapping": (BASE.replace("type: mac", "type: {a: 1}").encode(), "pe.type: must be one of"),
    "alias bomb": (_alias_bomb().encode(), "nodes once its aliases are expanded"),
    "two documents": ((BASE + "---\n" + BASE).encode(), "not valid YAML"),
    "long name": (
        BASE.replace("name: int8_os_8x8", "name: " + "n" * 300).encode(),
        "name: must be a string of 1..64",
    ),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_files(run_cli, tmp_path, case):
    data, match = CONFIG_CASES[case]
    (tmp_path / "cfg.yaml").write_bytes(data)
    line = _fails(run_cli, "gen", tmp_path / "cfg.yaml", "-o", tmp_path / "out", match=match)
    assert "cfg.yaml" in line and len(line) < 300
    assert not (tmp_path / "out").exists()


def test_huge_values_are_not_echoed(run_cli, tmp_path):
    (tmp_path / "cfg.yaml").write_text(BASE.replace("rows: 8", "rows: [" + "1, " * 50_000 + "1]"))
    line = _fails(run_cli, "gen", tmp_path / "cfg.yaml", "-o", tmp_path / "out", match="array.rows: must be")
    assert len(line) < 300


def test_oversized_config_is_refused_before_reading(run_cli, tmp_path):
    (tmp_path / "cfg.yaml").write_text(BASE + "#" * (2 << 20))
    _fails(
        run_cli, "gen", tmp_path / "cfg.yaml", "-o", tmp_path / "out", match="the limit is 1,048,576 bytes"
    )


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_config_that_is_not_a_regular_file(run_cli, tmp_path, special):
    path = tmp_path / "cfg.yaml"
    if special == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif special == "folder":
        path.mkdir()
    else:
        path = Path(special)
    kind = {"fifo": "a FIFO", "/dev/zero": "a device", "folder": "a folder"}[special]
    _fails(run_cli, "gen", path, "-o", tmp_path / "out", match=f"must be a regular file, not {kind}")


# -- .npy operands -----------------------------------------------------------------------------


def _npy_header(shape, descr="<i8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npy(x) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


NPY_CASES = {
    "empty file": (b"", "not a .npy file"),
    "text file": (b"hello, world\n", "not a .npy file"),
    "terabyte header": (_npy_header((1 << 20, 1 << 20)), "the limit is 16,777,216"),
    "truncated data": (_npy(np.ones((4, 3), dtype=np.int64))[:-8], "truncated or padded"),
    "timedelta": (_npy(np.ones((2, 3), dtype="m8[s]")), "must hold integers or floats"),
    "object": (b"", None),  # filled below: pickled object arrays are never loaded
    "1e20": (_npy(np.full((2, 3), 1e20)), "A: must be signed 8-bit values in -128..127, got 1e+20"),
    "uint64 max": (_npy(np.full((2, 3), 2**64 - 1, dtype=np.uint64)), "got 18446744073709551615"),
    "3-D": (_npy(np.ones((2, 3, 1), dtype=np.int8)), "must be a 2-D matrix"),
    "nan": (_npy(np.full((2, 3), np.nan)), "non-integral or non-finite"),
}
_obj = io.BytesIO()
np.save(_obj, np.array([[1, None]], dtype=object), allow_pickle=True)
NPY_CASES["object"] = (_obj.getvalue(), "must hold integers or floats")


@pytest.mark.parametrize("case", NPY_CASES)
def test_bad_operand_files(run_cli, tmp_path, case):
    data, match = NPY_CASES[case]
    _, w = _operands(tmp_path)
    (tmp_path / "bad.npy").write_bytes(data)
    _fails(
        run_cli,
        "gemm",
        "--hw",
        CFG,
        "--a",
        tmp_path / "bad.npy",
        "--w",
        w,
        "-o",
        tmp_path / "C.npy",
        match=match,
    )
    assert not (tmp_path / "C.npy").exists()


def test_lut_weights_out_of_range_in_a_wide_dtype(run_cli, tmp_path):
    """2**64-1 used to wrap to -1, a valid W1 weight: a silently wrong success."""
    a, _ = _operands(tmp_path)
    np.save(tmp_path / "W.npy", np.full((3, 2), 2**64 - 1, dtype=np.uint64))
    _fails(
        run_cli, "gemm", "--hw", CONFIGS / "lut_w1a8.yaml", "--a", a, "--w", tmp_path / "W.npy", "-o",
        tmp_path / "C.npy", match="W: must be -1 or +1",
    )  # fmt: skip


# -- output paths ------------------------------------------------------------------------------


def test_gen_refuses_a_folder_with_user_files_and_force_keeps_them(run_cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    _fails(run_cli, "gen", CFG, "-o", out, match="was not written by tpegen")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    code, _, err = run_cli("gen", CFG, "-o", out, "--force")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine\n"
    assert {p.name for p in out.iterdir()} == {
        "notes.txt",
        MARKER,
        "tpegen_int8_os_8x8.v",
        "tpegen_int8_os_8x8.json",
    }
    code, _, err = run_cli("gen", CFG, "-o", out)  # tpegen wrote it now: re-running updates it
    assert code == 0, err


@pytest.mark.parametrize(
    ("command", "target", "match"),
    [
        ("gen", "afile", "exists and is a file, not a folder"),
        ("gen", "afile/below", "afile is not a folder"),
        ("gen", "", "-o: must be a non-empty path"),
        ("gen", "new/" + "x" * 300, "longer than 255 bytes"),
        ("gemm", "folder", "exists and is a folder"),
        ("gemm", "afile/below.npy", "afile is not a folder"),
        ("gemm", "link.npy", "is a symlink"),
        ("gemm", "/dev/null", "exists and is a device"),
        ("gemm", "", "-o: must be a non-empty path"),
    ],
)
def test_bad_output_paths(run_cli, tmp_path, monkeypatch, command, target, match):
    monkeypatch.chdir(tmp_path)
    a, w = _operands(tmp_path)
    Path("afile").write_text("mine\n")
    Path("folder").mkdir()
    Path("link.npy").symlink_to(tmp_path / "afile")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    args = (
        ["gen", CFG, "-o", target]
        if command == "gen"
        else ["gemm", "--hw", CFG, "--a", a, "--w", w, "-o", target]
    )
    _fails(run_cli, *args, match=match)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing created, not even new/
    assert Path("afile").read_text() == "mine\n"


def test_outputs_get_the_users_umask(run_cli, tmp_path):
    a, w = _operands(tmp_path)
    old = os.umask(0o027)
    try:
        assert run_cli("gemm", "--hw", CFG, "--a", a, "--w", w, "-o", tmp_path / "C.npy")[0] == 0
        assert run_cli("gen", CFG, "-o", tmp_path / "v")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "C.npy").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "v").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "v" / "tpegen_int8_os_8x8.v").stat().st_mode) == 0o640


# -- standard output ---------------------------------------------------------------------------


def _tpegen(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tpegen.cli", *map(str, args)], capture_output=False, **kw)


def test_full_stdout_is_an_error_and_leaves_no_files(tmp_path):
    a, w = _operands(tmp_path)
    with open("/dev/full", "w") as full:
        proc = _tpegen("gemm", "--hw", CFG, "--a", a, "--w", w, "-o", tmp_path / "C.npy", stdout=full, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "tpegen: error: cannot write the report to standard output (No space left on device); no files were written"
    ]
    assert not (tmp_path / "C.npy").exists()


def test_closed_pipe_is_an_error_and_leaves_no_files(tmp_path):
    a, w = _operands(tmp_path)
    read, write = os.pipe()
    os.close(read)  # nobody reads: every write fails with EPIPE
    try:
        proc = _tpegen(
            "gen", CFG, "-o", tmp_path / "out", "--json", stdout=write, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Broken pipe" in proc.stderr
    assert not (tmp_path / "out").exists()
