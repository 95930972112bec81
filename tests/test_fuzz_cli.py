"""Property-based fuzzing of the command line with malformed inputs (hypothesis).

Every run goes through ``tpegen.cli.main`` in-process, in a fresh folder, and must either succeed
with a correct result, or fail cleanly: non-zero exit, exactly one line on stderr that starts with
``tpegen: error:``, no traceback, no "internal error", and no file or folder left behind.

The default profile keeps the whole file under a minute; ``-m slow`` runs the same properties
with many more examples.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CONFIGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tpegen.cli import main

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

MAC_8x8 = yaml.safe_load((CONFIGS / "int8_os_8x8.yaml").read_text())
TINY = {
    "name": "tiny",
    "pe": {"type": "mac", "act_bits": 4, "weight_bits": 4, "acc_bits": 12, "dataflow": "os"},
    "array": {"rows": 1, "cols": 2},
}


@contextlib.contextmanager
def _workdir():
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(capsys, args, root: Path, inputs: set[str]):
    """Run the CLI; on failure check the error contract, including that nothing was written."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"expected one stderr line for {args}, got:\n{err}"
        assert lines[0].startswith("tpegen: error: "), err
        assert "Traceback" not in err and "internal error" not in err, err
        assert _listing(root) == inputs, f"{args} left files behind: {_listing(root) - inputs}"
    return code, out, err


# -- configs -----------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [("pe", k) for k in MAC_8x8["pe"]] + [("array", k) for k in MAC_8x8["array"]] + [(None, "name")]


@st.composite
def mutated_configs(draw) -> bytes:
    """A valid config with one to three fields replaced, removed or added, or raw garbage."""
    kind = draw(st.sampled_from(["fields", "garbage", "yaml"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200))
    if kind == "yaml":
        return draw(
            st.sampled_from(
                [
                    b"pe: !!int x\n",
                    b"pe: !!float [1]\n",
                    b"[" * 3000 + b"]" * 3000,
                    b"a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                    b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                    b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nname: *e\n",
                    "name: caf\u00e9\n".encode("latin-1"),
                    yaml.safe_dump(MAC_8x8).encode("utf-16"),
                    b"pe: {type: !!python/object:os.system ls}\n",
                ]
            )
        )
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    for _ in range(draw(st.integers(1, 3))):
        section, key = draw(st.sampled_from(FIELDS + [("pe", "bogus"), (None, "bogus")]))
        holder = cfg if section is None else cfg.setdefault(section, {})
        if not isinstance(holder, dict):
            break
        if draw(st.booleans()) and key in holder:
            del holder[key]
        else:
            holder[key] = draw(VALUES)
    try:
        return yaml.safe_dump(cfg, allow_unicode=True).encode()
    except yaml.YAMLError:
        return b"pe: {type: mac"


def _check_config(capsys, data: bytes):
    with _workdir() as root:
        (root / "cfg.yaml").write_bytes(data)
        a, w = np.ones((2, 3), dtype=np.int8), np.ones((3, 2), dtype=np.int8)
        np.save(root / "A.npy", a)
        np.save(root / "W.npy", w)
        inputs = _listing(root)
        code, _, _ = _run(
            capsys, ["gemm", "--hw", "cfg.yaml", "--a", "A.npy", "--w", "W.npy", "-o", "C.npy"], root, inputs
        )
        if code == 0:  # the mutation happened to give a valid design: the result must be right
            assert np.array_equal(np.load(root / "C.npy"), a.astype(np.int64) @ w)


@FAST
@given(mutated_configs())
def test_malformed_configs_fail_cleanly(capsys, data):
    _check_config(capsys, data)


@pytest.mark.slow
@LONG
@given(mutated_configs())
def test_malformed_configs_fail_cleanly_long(capsys, data):
    _check_config(capsys, data)


# -- operand files -----------------------------------------------------------------------------

DTYPES = [
    "int8",
    "int16",
    "int64",
    "uint8",
    "uint64",
    "float32",
    "float64",
    "bool",
    "complex64",
    "m8[s]",
    "U3",
    "float16",
]


@st.composite
def operand_files(draw) -> tuple[bytes, np.ndarray | None]:
    """An .npy file (maybe corrupted) and the array it holds, or None where it holds none."""
    kind = draw(st.sampled_from(["array", "truncated", "garbage", "header"]))
    if kind == "garbage":
        return draw(st.binary(max_size=100)), None
    if kind == "header":
        shape = draw(st.tuples(st.integers(-1, 2**40), st.integers(-1, 2**40)))
        header = {"descr": "<i8", "fortran_order": False, "shape": shape}
        import io

        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        return buf.getvalue(), None
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([2, 2, 2, 0, 1, 3]))
    shape = tuple(draw(st.integers(0, 5)) for _ in range(ndim))
    if ndim == 2 and 0 not in shape:
        shape = (shape[0], 3)
    values = draw(
        st.sampled_from([np.int64(1), np.int64(-129), np.int64(200), 1e20, float("nan"), 2**64 - 1, 0.5])
    )
    import io

    with np.errstate(all="ignore"):
        try:
            x = np.full(shape, values).astype(dtype)
        except (OverflowError, ValueError, TypeError):
            x = np.zeros(shape, dtype=dtype)
    buf = io.BytesIO()
    np.save(buf, x)
    data = buf.getvalue()
    if kind == "truncated":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))], None
    return data, x


def _check_operands(capsys, data: bytes, x):
    with _workdir() as root:
        (root / "A.npy").write_bytes(data)
        w = np.ones((3, 2), dtype=np.int64)
        np.save(root / "W.npy", w)
        inputs = _listing(root)
        code, _, _ = _run(
            capsys,
            ["gemm", "--hw", CONFIGS / "int8_os_8x8.yaml", "--a", "A.npy", "--w", "W.npy", "-o", "C.npy"],
            root,
            inputs,
        )
        if code == 0:  # only a real 2-D matrix of in-range integers may succeed, with the right result
            assert x is not None and x.ndim == 2
            assert np.all((x >= -128) & (x <= 127)) and np.all(x == np.round(x))
            assert np.array_equal(np.load(root / "C.npy"), x.astype(np.int64) @ w)


@FAST
@given(operand_files())
def test_malformed_operands_fail_cleanly(capsys, file):
    _check_operands(capsys, *file)


@pytest.mark.slow
@LONG
@given(operand_files())
def test_malformed_operands_fail_cleanly_long(capsys, file):
    _check_operands(capsys, *file)


# -- topologies --------------------------------------------------------------------------------

DIMS = st.one_of(
    st.integers(-3, 40), st.integers(2**20, 2**62), st.sampled_from(["x", "", "1.5", "1e9", "nan"])
)


@st.composite
def topologies(draw) -> bytes:
    kind = draw(st.sampled_from(["gemm", "conv", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=120))
    header = (
        "Layer, M, N, K,"
        if kind == "gemm"
        else (
            "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
        )
    )
    width = 3 if kind == "gemm" else 7
    rows = [header]
    for i in range(draw(st.integers(0, 3))):
        cells = [str(draw(DIMS)) for _ in range(draw(st.sampled_from([width, width, width - 1, width + 1])))]
        rows.append(f"l{i}, " + ", ".join(cells) + ",")
    return ("\n".join(rows) + "\n").encode()


def _check_topology(capsys, data: bytes):
    with _workdir() as root:
        (root / "topo.csv").write_bytes(data)
        inputs = _listing(root)
        _run(
            capsys,
            ["sim", "--hw", CONFIGS / "int8_os_8x8.yaml", "--topology", "topo.csv", "-o", "out", "--json"],
            root,
            inputs,
        )


@FAST
@given(topologies())
def test_malformed_topologies_fail_cleanly(capsys, data):
    _check_topology(capsys, data)


@pytest.mark.slow
@LONG
@given(topologies())
def test_malformed_topologies_fail_cleanly_long(capsys, data):
    _check_topology(capsys, data)


# -- output paths ------------------------------------------------------------------------------

OUTPUTS = st.sampled_from(
    [
        "",
        "afile",
        "afile/below",
        "userdir",
        "new/deep/" + "x" * 300,
        "link_to_file",
        "/dev/null",
        "ok_new",
        "emptydir",
    ]
)


def _check_output(capsys, target: str, command: str):
    with _workdir() as root:
        (root / "afile").write_text("user data\n")
        (root / "userdir").mkdir()
        (root / "userdir" / "mine.txt").write_text("user data\n")
        (root / "emptydir").mkdir()
        (root / "link_to_file").symlink_to(root / "afile")
        np.save(root / "A.npy", np.ones((2, 3), dtype=np.int64))
        np.save(root / "W.npy", np.ones((3, 2), dtype=np.int64))
        (root / "cfg.yaml").write_text(yaml.safe_dump(TINY))
        inputs = _listing(root)
        if command == "gen":
            args = ["gen", "cfg.yaml", "-o", target]
        else:
            args = ["gemm", "--hw", "cfg.yaml", "--a", "A.npy", "--w", "W.npy", "-o", target]
        code, _, _ = _run(capsys, args, root, inputs)
        # gemm writes one named file and replaces a regular file of that name, as numpy.save does
        allowed = ("ok_new", "emptydir") if command == "gen" else ("ok_new", "afile")
        if code == 0:
            assert target in allowed, f"{command} -o {target!r} should have been refused"
        if target != "afile" or code != 0:
            assert (root / "afile").read_text() == "user data\n"
        assert (root / "userdir" / "mine.txt").read_text() == "user data\n"
        assert (root / "link_to_file").is_symlink() and (root / "userdir").is_dir()


@FAST
@given(OUTPUTS, st.sampled_from(["gen", "gemm"]))
def test_bad_output_paths_fail_cleanly(capsys, target, command):
    _check_output(capsys, target, command)


# -- Liberty files -----------------------------------------------------------------------------


@st.composite
def liberty_files(draw) -> bytes:
    """The built-in library, damaged: truncated, a cell removed, a function garbled, bytes flipped."""
    from tpegen.synth.liberty import BUILTIN_LIBERTY

    text = BUILTIN_LIBERTY.read_text()
    kind = draw(st.sampled_from(["truncate", "drop cell", "garble function", "flip bytes", "garbage"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text) - 1))].encode()
    if kind == "drop cell":
        cells = [i for i in range(len(text)) if text.startswith("cell (", i)]
        start = draw(st.sampled_from(cells))
        end = text.find("cell (", start + 1)
        return (text[:start] + (text[end:] if end != -1 else "}\n")).encode()
    if kind == "garble function":
        functions = [i for i in range(len(text)) if text.startswith("function :", i)]
        at = draw(st.sampled_from(functions))
        junk = draw(st.sampled_from(['"A @@ B"', '"(A"', '""', "12", '"!!!"']))
        end = text.index(";", at)
        return (text[:at] + "function : " + junk + text[end:]).encode()
    if kind == "flip bytes":
        data = bytearray(text.encode())
        for _ in range(draw(st.integers(1, 5))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    return draw(st.binary(max_size=200))


def _check_liberty(capsys, data: bytes):
    with _workdir() as root:
        (root / "cells.lib").write_bytes(data)
        (root / "cfg.yaml").write_text(yaml.safe_dump(TINY))
        inputs = _listing(root)
        _run(
            capsys, ["synth", "cfg.yaml", "--liberty", "cells.lib", "--no-energy", "-o", "ppa"], root, inputs
        )


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(liberty_files())
def test_malformed_liberty_files_fail_cleanly(capsys, data):
    _check_liberty(capsys, data)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(liberty_files())
def test_malformed_liberty_files_fail_cleanly_long(capsys, data):
    _check_liberty(capsys, data)
