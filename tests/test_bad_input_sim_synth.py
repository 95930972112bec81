"""Bad input to ``tpegen sim``, ``synth`` and ``verify`` (issue #10): every case is one stderr line
naming the argument or file and the allowed values, a non-zero exit, no traceback, nothing written;
the library functions behind them reject the same values."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS

from tpegen.errors import ConfigError, TpegenError

INT8 = CONFIGS / "int8_os_8x8.yaml"
CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
)


@pytest.fixture
def bad(run_cli, capsys):
    """Run the CLI, expect a clean failure; return its one stderr line."""

    def run(*args, names: tuple[str, ...] = (), absent: tuple[Path, ...] = ()) -> str:
        try:
            code, out, err = run_cli(*args)
        except SystemExit as exc:  # argparse usage errors exit from the parser
            code = exc.code
            out, err = capsys.readouterr()
        assert code not in (0, None), (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "Traceback" not in err and "internal error" not in err, err
        for name in names:
            assert name in lines[0], lines[0]
        assert out == ""
        for path in absent:
            assert not Path(path).exists(), path
        return lines[0]

    return run


@pytest.fixture
def topo(tmp_path):
    """Write a topology CSV (text or bytes) and return its path."""

    def write(content: str | bytes, name: str = "t.csv") -> Path:
        p = tmp_path / name
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    return write


def _tiny_mac(tmp_path, rows: int = 1, cols: int = 1) -> Path:
    p = tmp_path / f"mac_{rows}x{cols}.yaml"
    p.write_text(
        "pe: {type: mac, act_bits: 4, weight_bits: 4, acc_bits: 12, dataflow: os}\n"
        f"array: {{rows: {rows}, cols: {cols}}}\n"
    )
    return p


# -- --seed ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["-1", str(2**63), "1.5", "x", "9" * 5000])
@pytest.mark.parametrize("command", ["sim", "verify", "synth"])  # demo maps a fixed test split: no seed
def test_every_seed_rejects_out_of_range(bad, command, seed, tmp_path):
    args = {
        "sim": ["sim", "--hw", INT8, "--topology", CONFIGS / "topologies" / "alexnet_conv.csv"],
        "verify": ["verify", INT8],
        "synth": ["synth", INT8],
    }[command]
    msg = bad(*args, "--seed", seed, names=("--seed", "0..2^63-1"))
    assert len(msg) < 300


def test_largest_seed_is_accepted(run_cli, topo):
    t = topo("Layer, M, N, K,\nfc, 3, 4, 5,\n")
    code, out, err = run_cli("sim", "--hw", INT8, "--topology", t, "--json", "--seed", str(2**63 - 1))
    assert code == 0, err
    assert '"seed": 9223372036854775807' in out


def test_api_checks_the_seed():
    from tpegen.api import check_seed, simulate_topology
    from tpegen.sim.topology import Layer

    assert check_seed(np.int64(7)) == 7 and check_seed(2**63 - 1) == 2**63 - 1
    for seed in (-1, 2**63, 1.0, True, "3"):
        with pytest.raises(ConfigError, match="seed"):
            check_seed(seed)
    with pytest.raises(ConfigError, match="seed"):
        simulate_topology(INT8, [Layer("fc", 2, 2, 2)], seed=-5)


# -- verify --cases -------------------------------------------------------------------------------
@pytest.mark.parametrize("cases", ["1000000000", "501", "-1"])
def test_verify_cases_are_bounded(bad, cases):
    bad("verify", INT8, "--cases", cases, names=("--cases", "0..500"))


def test_verify_api_bounds_cases_before_building():
    from tpegen.api import verify

    with pytest.raises(ConfigError, match=r"cases: must be an integer in 0\.\.500"):
        verify(INT8, cases=10**9)


# -- --bandwidth ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bw, names",
    [
        ("1e-300", ("--bandwidth", "1/1024")),
        ("0.0009", ("--bandwidth", "1/1024")),
        ("nan", ("--bandwidth", "finite")),
        ("inf", ("--bandwidth", "finite")),
        ("-4", ("--bandwidth", "1/1024")),
        ("", ("--bandwidth",)),
        ("A=1e-300", ("--bandwidth A", "1/1024")),
        ("W=inf", ("--bandwidth W", "finite")),
        ("A=1,A=2", ("--bandwidth", "at most once")),
        ("Q=3", ("--bandwidth", "A, W, C")),
    ],
)
def test_cli_bandwidth_is_bounded(bad, bw, names, tmp_path):
    out = tmp_path / "out"
    topology = CONFIGS / "topologies" / "alexnet_conv.csv"
    bad("sim", "--hw", INT8, "--topology", topology, "--bandwidth", bw, "-o", out, names=names, absent=(out,))


def test_smallest_bandwidth_stalls_instead_of_overflowing():
    from tpegen.config import load_config
    from tpegen.sim.cycle import MIN_BANDWIDTH, simulate_shape

    acc = load_config(INT8).accelerator()
    ideal = simulate_shape(acc, 64, 64, 64)
    slow = simulate_shape(acc, 64, 64, 64, bandwidth=MIN_BANDWIDTH)
    # 64 x 64 8-bit A elements per 8-row tile block: 8 * 64 bytes at 1/1024 B/cycle per tile.
    assert slow.stall_cycles > 8 * 64 * 1024 and slow.cycles > ideal.cycles
    for bw in (1e-300, MIN_BANDWIDTH / 2, float("nan"), float("inf"), 0, True, "8", {"A": -1}):
        with pytest.raises(ConfigError, match="bandwidth"):
            simulate_shape(acc, 4, 4, 4, bandwidth=bw)


# -- topology files -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, names",
    [
        ("Layer, M, N, K,\nbig, 1000000000000, 4, 4,\n", ("t.csv", "row 2", "'M'", "2^24")),
        (CONV_HEADER + "DP_x, 8, 8, 3, 3, 1000000000, 1, 1,\n", ("t.csv", "row 2", "'Channels'", "2^24")),
        (CONV_HEADER + "DP_x, 8, 8, 3, 3, 70000, 1, 1,\n", ("t.csv", "row 2", "2^16", "GEMMs")),
        ("", ("t.csv", "empty")),
        ("Layer, M, N, K,\n", ("t.csv", "no layers")),
        ("Layer, M, N, K,\nx, a, 1, 1\n", ("t.csv", "row 2", "'M'", "integer")),
        ("Layer, M, N, K,\nx, 1.5, 1, 1\n", ("t.csv", "row 2", "'M'", "integer")),
        ("Layer, M, N, K,\nx, 0, 1, 1\n", ("t.csv", "row 2", "'M'", "1..")),
        ("Layer, M, N, K,\nx, 4, -1, 1\n", ("t.csv", "row 2", "'N'", "1..")),
        ("Layer, M, N, K,\nx, 3, 1\n", ("t.csv", "row 2", "'K'", "present")),
        ("Layer, M, N, K,\nx, 3, 1, " + "9" * 6000 + "\n", ("t.csv", "row 2", "'K'")),
        ("a,b,c\n1,2,3\n", ("t.csv", "row 1 (header)", "Layer, M, N, K")),
        (b"\x00\x01\x02\xff\xfe" * 100, ("t.csv", "NUL bytes")),
        ("Layer, M, N, K,\nx\x00, 3, 1, 1\n", ("t.csv", "NUL")),
        ("Layer, M, N, K,\n".encode("utf-16"), ("t.csv", "UTF-8")),
    ],
)
def test_malformed_topology_is_one_line(bad, topo, tmp_path, content, names):
    out = tmp_path / "out"
    msg = bad("sim", "--hw", INT8, "--topology", topo(content), "-o", out, names=names, absent=(out,))
    assert len(msg) < 400


@pytest.mark.parametrize(
    "content, name",
    [
        ("Layer, M, N, K,\nok, 2, 2, 2,\nbig, 4096, 4096, 4096,\n", "'big'"),
        (CONV_HEADER + "c, 3000, 3000, 1, 1, 1, 1, 1,\n", "'c'"),
    ],
)
def test_operand_limit_with_outputs(bad, topo, tmp_path, content, name):
    """Computing outputs materializes the operands: at most 2^22 elements per layer, checked before
    any layer runs (the timing model alone takes these layers)."""
    out = tmp_path / "out"
    names = ("t.csv", name, "M*K + K*N + M*N", "2^22", "computing outputs")
    bad("sim", "--hw", INT8, "--topology", topo(content), "--outputs", "-o", out, names=names, absent=(out,))


def test_topology_that_is_not_a_regular_file(bad, tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # reading it would block forever
    (tmp_path / "dir.csv").mkdir()
    for path, what in ((fifo, "not a FIFO"), (tmp_path / "dir.csv", "not a folder"),
                       ("/dev/zero", "not a device"), (tmp_path / "none.csv", "no such file")):  # fmt: skip
        bad("sim", "--hw", INT8, "--topology", path, names=(str(path), what))


def test_oversized_topology_file(bad, topo, monkeypatch):
    from tpegen.sim import topology

    monkeypatch.setattr(topology, "MAX_FILE_BYTES", 64)
    bad(
        "sim",
        "--hw",
        INT8,
        "--topology",
        topo("Layer, M, N, K,\n" + "x, 1, 1, 1\n" * 10),
        names=("t.csv", "bytes"),
    )


def test_too_many_tiles_names_file_and_layer(bad, topo, tmp_path):
    # 2000 x 2000 outputs on a 1x1 output-stationary array: 4e6 tiles, within the operand limit.
    t = topo("Layer, M, N, K,\nwide, 2000, 2000, 1,\n")
    bad("sim", "--hw", _tiny_mac(tmp_path), "--topology", t, names=("t.csv", "'wide'", "2^20", "tiles"))


def test_api_checks_layer_lists():
    from tpegen.api import simulate_topology
    from tpegen.sim.topology import Layer

    for layers, match, outputs in (
        ([Layer("huge", 10**12, 4, 4)], "huge.*M", False),
        ([Layer("big", 4096, 4096, 4096)], "M\\*K", True),
        ([Layer("zero", 0, 4, 4)], "zero.*M", False),
        ([], "1..65536", False),
        (["fc, 1, 2, 3"], "Layer", False),
    ):
        with pytest.raises(ConfigError, match=match):
            simulate_topology(INT8, layers, outputs=outputs)


def test_fp_model_blocks_are_exact(monkeypatch):
    """quantize and gemm_chain process big operands in blocks; the blocks must not change a bit."""
    from tpegen.config import load_config
    from tpegen.sim import fp

    acc = load_config(CONFIGS / "bf16_approx_w8.yaml").accelerator()
    rng = np.random.default_rng(1)
    a, w = acc.random_operands(rng, 37, 9, 11)
    a[0, 0], a[1, 1], w[2, 2] = np.inf, np.nan, 1e30
    whole_a, whole_w = acc.check_operands(a, w)
    whole = fp.gemm_chain(whole_a, whole_w, acc.cfg)
    monkeypatch.setattr(fp, "_BLOCK", 5)  # blocks of 5 elements, 1 output row
    blk_a, blk_w = acc.check_operands(a, w)
    assert np.array_equal(blk_a, whole_a) and np.array_equal(blk_w, whole_w)
    assert np.array_equal(fp.gemm_chain(blk_a, blk_w, acc.cfg), whole)


def test_layer_error_is_a_tpegen_error():
    from tpegen.sim.topology import parse_topology

    with pytest.raises(TpegenError, match="where.csv: row 3"):
        parse_topology("Layer, M, N, K\nok, 1, 1, 1\nbad, 1, 1, 0\n", where="where.csv")


# -- synth --period-ns ----------------------------------------------------------------------------
@pytest.mark.parametrize("period", ["inf", "nan", "1e300", "1e-9", "0.005", "0", "-1", "1e7"])
def test_synth_period_is_bounded_before_synthesis(bad, period, tmp_path):
    out = tmp_path / "out"
    bad(
        "synth",
        INT8,
        f"--period-ns={period}",
        "-o",
        out,
        names=("--period-ns", "0.01..1e6 ns"),
        absent=(out,),
    )


def test_synth_api_checks_the_period():
    from tpegen.synth import measure_energy, synthesize
    from tpegen.synth.yosys import check_period

    assert check_period(0.01) == 0.01 and check_period(None) is None and check_period(np.float32(2)) == 2.0
    for period in (float("inf"), 1e-9, 1e300, "5", True):
        with pytest.raises(ConfigError, match="period_ns"):
            synthesize("module t; endmodule", "t", period_ns=period)
    with pytest.raises(ConfigError, match="period_ns"):
        measure_energy(None, [], ops=1, period_ns=float("nan"))


# -- synth --liberty ------------------------------------------------------------------------------
def _builtin_cells() -> tuple[str, dict[str, str]]:
    import re

    from tpegen.synth.liberty import BUILTIN_LIBERTY

    src = BUILTIN_LIBERTY.read_text()
    start = src.index("  cell (")
    blocks = re.findall(r"(  cell \((\w+)\) \{.*?\n  \}\n)", src[start:], flags=re.S)
    return src[:start], {name: block for block, name in blocks}


def _lib(tmp_path, keep=None, fix=lambda block: block) -> Path:
    head, cells = _builtin_cells()
    body = "".join(fix(block) for name, block in cells.items() if keep is None or keep(name))
    p = tmp_path / "cells.lib"
    p.write_text(head + body + "}\n")
    return p


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda t: _lib(t, keep=lambda c: c != "DFF_X1"), ("no flip-flop cell", "D flip-flop")),
        (lambda t: _lib(t, keep=lambda c: not c.startswith("INV")), ("no inverter",)),
        (lambda t: _lib(t, keep=lambda c: not c.startswith("BUF")), ("no buffer",)),
        (lambda t: _lib(t, keep=lambda c: c in ("INV_X1", "BUF_X2", "DFF_X1")), ("two or more inputs",)),
        (
            lambda t: _lib(t, fix=lambda b: b if "ff (" in b else b.replace("function :", "comment :")),
            ("no combinational cell with a function",),
        ),
        (lambda t: _lib(t, keep=lambda c: False), ("no cells",)),
    ],
)
def test_liberty_abc_cannot_use_fails_before_synthesis(bad, tmp_path, make, names, monkeypatch):
    import tpegen.synth.yosys as yosys

    monkeypatch.setattr(yosys, "run_yosys", lambda *a, **k: pytest.fail("yosys ran on an unusable library"))
    lib = make(tmp_path)
    out = tmp_path / "out"
    bad("synth", INT8, "--liberty", lib, "--no-energy", "-o", out, names=(str(lib), *names), absent=(out,))


@pytest.mark.parametrize(
    "content, names",
    [
        (b"", ("empty Liberty file",)),
        (b"   \n\n", ("empty Liberty file",)),
        (bytes(range(256)) * 20, ("NUL bytes",)),
        (b"library (x) { /* caf\xe9 */ }", ("must be UTF-8", "byte 0xe9")),
        ("library (x) {".encode("utf-16"), ("NUL bytes",)),
        (b"library (x) { nom_voltage : 1.1; }\n", ("no cells",)),
        (b"library (x) { cell (a) { area : 1; }", ("unterminated",)),
        (b"library (x) { cell (a) { area : one; } nom_voltage : 1; }", ("could not convert",)),
    ],
)
def test_malformed_liberty_files(bad, tmp_path, content, names):
    lib = tmp_path / "bad.lib"
    lib.write_bytes(content)
    bad("synth", INT8, "--liberty", lib, "--no-energy", names=(str(lib), *names))


def test_liberty_that_is_not_a_regular_file(bad, tmp_path, monkeypatch):
    from tpegen.synth import liberty

    fifo = tmp_path / "fifo.lib"
    os.mkfifo(fifo)
    big = tmp_path / "big.lib"
    big.write_bytes(b" " * 100)
    monkeypatch.setattr(liberty, "MAX_LIBERTY_BYTES", 64)
    for path, what in ((fifo, "not a FIFO"), (tmp_path, "not a folder"), ("/dev/zero", "not a device"),
                       (tmp_path / "none.lib", "no such file"), (big, "the limit is 64 bytes")):  # fmt: skip
        bad("synth", INT8, "--liberty", path, "--no-energy", names=(str(path), what))


def test_liberty_abc_rejects_names_the_file(bad, tmp_path):
    """A library that passes the checks but that ABC cannot map onto: the yosys error names the file."""
    lib = _lib(tmp_path, fix=lambda b: b.replace('function : "(!(A B))"', 'function : "A @@ B"'))
    tiny = _tiny_mac(tmp_path)
    bad("synth", tiny, "--liberty", lib, "--no-energy", "--json", names=(str(lib), "could not map"))


# -- -o of sim and synth: checked before the work, '' is an error -----------------------------------
def test_sim_and_synth_check_the_output_folder_first(bad, tmp_path, monkeypatch):
    import tpegen.api
    import tpegen.synth.yosys as yosys

    monkeypatch.setattr(tpegen.api, "simulate_topology", lambda *a, **k: pytest.fail("simulated first"))
    monkeypatch.setattr(yosys, "run_yosys", lambda *a, **k: pytest.fail("synthesized first"))
    afile = tmp_path / "file"
    afile.write_text("keep")
    topology = CONFIGS / "topologies" / "alexnet_conv.csv"
    for out, names in (("", ("-o", "non-empty")), (afile, (str(afile), "not a folder"))):
        bad("sim", "--hw", INT8, "--topology", topology, "-o", out, names=names)
        bad("synth", INT8, "--no-energy", "-o", out, names=names)
    assert afile.read_text() == "keep"
