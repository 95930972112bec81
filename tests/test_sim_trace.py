"""``tpegen sim --trace``: SCALE-Sim-format SRAM traces from our timeline (tpegen.sim.trace), the
timing-only default of ``tpegen sim`` and its imports (issue #14 item 6).

The traces are checked against hand-derived files (small arrays, every row worked out from the
RTL's handshake rules in the module docstrings of hw/arrays/systolic.py and sim/systolic_timing.py),
against SCALE-Sim's own address formula for convolutions, and against the driver's stream encoding
(what sw/systolic.py really sends into the RTL, beat by beat) on random shapes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tpegen
from tpegen.errors import ConfigError, TpegenError
from tpegen.sim import trace as trace_mod
from tpegen.sim.packing import pack_fields, unpack_lanes
from tpegen.sim.topology import ConvShape, Layer, im2col_shape

FILES = ("IFMAP_SRAM_TRACE.csv", "FILTER_SRAM_TRACE.csv", "OFMAP_SRAM_TRACE.csv")


def _config(tmp_path: Path, dataflow: str, rows: int, cols: int, **extra) -> Path:
    pe = {"type": "mac", "dataflow": dataflow, **extra.pop("pe", {})}
    text = json.dumps(
        {"name": f"t_{dataflow}_{rows}x{cols}", "pe": pe, "array": {"rows": rows, "cols": cols, **extra}}
    )
    path = tmp_path / f"{dataflow}_{rows}x{cols}_{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(text)  # JSON is YAML
    return path


def _traces(cfg, layer: Layer, out: Path, **kwargs) -> tuple[dict, list[str]]:
    report = tpegen.simulate_topology(cfg, [layer], trace=out, **kwargs)
    return report, [(out / "layer0" / f).read_text() for f in FILES]


def _rows(text: str) -> str:
    return "\n".join(" ".join(line.split(",")) for line in text.splitlines())


# -- hand-derived cases ---------------------------------------------------------------------------
def test_output_stationary_by_hand(tmp_path):
    """3x2 OS array, M=4, K=2, N=2: two tiles (rows 0-2, row 3), one column block.

    G = rows = 3, D = rows + cols = 5. Tile 0: beats at 0, 1 (`last` at L0 = 1). Tile 1: beat 0 at
    L0 + 1 = 2, its `last` beat waits for L0 + G = 4 (cycle 3 idle). Results: row q of a tile at
    L + D + q: 6, 7, 8 and 9 (rows 10, 11 are padding). 12 cycles. A[m, k] at m*2 + k, W[k, n] at
    1e7 + n*2 + k, C[m, n] at 2e7 + m*2 + n."""
    report, (ifmap, filt, ofmap) = _traces(_config(tmp_path, "os", 3, 2), Layer("g", 4, 2, 2), tmp_path / "t")
    assert report["layers"][0]["cycles"] == 12
    idle3, idle2 = [f"{c} -1 -1 -1" for c in range(12)], [f"{c} -1 -1" for c in range(12)]
    exp_a = ["0 0 2 4", "1 1 3 5", "2 6 -1 -1", idle3[3], "4 7 -1 -1", *idle3[5:]]
    exp_w = ["0 10000000 10000002", "1 10000001 10000003", "2 10000000 10000002", idle2[3],
             "4 10000001 10000003", *idle2[5:]]  # fmt: skip
    exp_c = [*idle2[:6], "6 20000000 20000001", "7 20000002 20000003", "8 20000004 20000005",
             "9 20000006 20000007", *idle2[10:]]  # fmt: skip
    assert _rows(ifmap).splitlines() == exp_a
    assert _rows(filt).splitlines() == exp_w
    assert _rows(ofmap).splitlines() == exp_c
    assert ifmap.startswith("0,0,2,4\n1,1,3,5\n") and ifmap.endswith("\n11,-1,-1,-1\n")  # SCALE-Sim's text


def test_weight_stationary_by_hand(tmp_path):
    """2x2 WS array, M=2, K=3, N=2: tiles K rows 0-1 and K row 2 (padded), one column block.

    Tile 0 loads its weights at 0, 1 (bottom row first: W row 1, then row 0); its activations are
    accepted from F0 = rows = 2; the next weights load from F0 + rows + cols - 1 = 5 (row 3 is
    padding, so cycle 5 moves nothing; W row 2 at 6); F1 = F0 + max(M, 2 rows + cols - 1) = 7.
    Partial-sum row m leaves at F + m + rows + cols - 1: 5, 6 and 10, 11. 12 cycles."""
    report, (ifmap, filt, ofmap) = _traces(_config(tmp_path, "ws", 2, 2), Layer("g", 2, 3, 2), tmp_path / "t")
    assert report["layers"][0]["cycles"] == 12
    idle = [f"{c} -1 -1" for c in range(12)]
    assert _rows(ifmap).splitlines() == [
        *idle[:2],
        "2 0 1",
        "3 3 4",
        *idle[4:7],
        "7 2 -1",
        "8 5 -1",
        *idle[9:],
    ]
    assert _rows(filt).splitlines() == [
        "0 10000001 10000004", "1 10000000 10000003", *idle[2:6], "6 10000002 10000005", *idle[7:]
    ]  # fmt: skip
    assert _rows(ofmap).splitlines() == [
        *idle[:5], "5 20000000 20000001", "6 20000002 20000003", *idle[7:10],
        "10 20000000 20000001", "11 20000002 20000003",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "stride, expected",
    [  # IFMAP 3x3 (one channel), 2x2 filter: A[m, k] is IFMAP pixel (y*S + fy, x*S + fx), row-major
        (1, ["0 0 1 3 4", "1 1 2 4 5", "2 3 4 6 7", "3 4 5 7 8"]),
        (2, ["0 0 2 6 8", "1 1 -1 7 -1", "2 3 5 -1 -1", "3 4 -1 -1 -1"]),  # windows past the edge: -1
    ],
)
def test_convolution_addresses_are_scalesims(tmp_path, stride, expected):
    """A 4x1 OS array holds the 2x2 OFMAP's four pixels in one tile: cycle k reads window element k
    of every pixel. Expected rows are SCALE-Sim 3.0.0's operand_matrix.calc_ifmap_elem_addr for
    this layer (transposed), worked out by hand."""
    conv = ConvShape(3, 3, 2, 2, 1, 1, stride)
    m, k, n = im2col_shape(conv)
    _, (ifmap, _, _) = _traces(_config(tmp_path, "os", 4, 1), Layer("c", m, k, n, conv), tmp_path / "t")
    assert _rows(ifmap).splitlines()[:4] == expected


# -- against the driver's streams -----------------------------------------------------------------
def _stream_rows(acc, m: int, k: int, n: int) -> dict[str, list[list[int]]]:
    """Per trace file, the addresses of every non-empty beat the driver streams, in stream order.

    Operands encode their SCALE-Sim address + 1 (0 is padding); result beats are mapped to C
    elements by running the driver's own decoder on one tile's beats at a time."""
    p = acc.params
    R, C = p.rows, p.cols
    a = 1 + np.arange(m)[:, None] * k + np.arange(k)[None, :]
    w = 1 + np.arange(n)[None, :] * k + np.arange(k)[:, None]
    prog = acc.program(a, w)
    a_bits, w_bits, c_bits = acc.lane_bits()
    ins = prog.stream.inputs
    if p.dataflow == "os":
        a_lanes = unpack_lanes(ins["operands"], a_bits, R, signed=False)
        w_lanes = unpack_lanes(ins["operands"], w_bits, C, signed=False, offset=R * a_bits)
        per_tile = R
    else:
        a_lanes = unpack_lanes(ins["activations"], a_bits, R, signed=False)
        w_lanes = unpack_lanes(ins["weights"], w_bits, C, signed=False)
        per_tile = m
    beats = prog.stream.outputs["results"]
    c_of = np.full((beats, C), -1)
    for t in range(prog.tiles):
        ids = np.zeros((beats, C), dtype=np.int64)
        ids[t * per_tile : (t + 1) * per_tile] = 1 + np.arange(per_tile * C).reshape(per_tile, C)
        got = prog.decode({"results": pack_fields([(ids, c_bits)])})
        mm, nn = np.nonzero(got)
        j, c = np.divmod(got[mm, nn] - 1, C)
        c_of[t * per_tile + j, c] = 20_000_000 + mm * n + nn

    def addresses(lanes, offset):
        rows = np.where(lanes > 0, lanes - 1 + offset, -1)
        return [list(r) for r in rows if (r >= 0).any()]

    return {
        "A": addresses(a_lanes, 0),
        "W": addresses(w_lanes, 10_000_000),
        "C": [list(r) for r in c_of if (r >= 0).any()],
    }


@pytest.mark.parametrize(
    "dataflow, rows, cols, extra, shape, bandwidth",
    [
        ("os", 3, 2, {}, (7, 5, 5), None),
        ("os", 4, 3, {"os_cell": "two_register"}, (9, 2, 7), None),
        ("os", 2, 3, {}, (5, 1, 4), None),  # K = 1: every beat is a `last` beat
        ("ws", 3, 2, {}, (4, 7, 5), None),
        ("ws", 2, 4, {}, (9, 5, 3), None),
        ("os", 3, 3, {}, (7, 6, 5), 1.0),  # fetch stalls
        ("ws", 3, 2, {}, (4, 7, 5), {"A": 2.0, "W": 1.0, "C": 3.0}),
    ],
)
def test_traces_follow_the_driver_streams(tmp_path, dataflow, rows, cols, extra, shape, bandwidth):
    """Every beat the driver streams appears once, in order, with the element addresses it carries;
    one row per simulated cycle; non-idle entries count the simulator's traffic."""
    pe = {"act_bits": 16, "weight_bits": 16, "act_signed": False, "weight_signed": False}
    cfg = _config(tmp_path, dataflow, rows, cols, pe=pe, **extra)
    acc = tpegen.load_config(cfg).accelerator()
    m, k, n = shape
    report, texts = _traces(cfg, Layer("g", m, k, n), tmp_path / "t", bandwidth=bandwidth)
    layer = report["layers"][0]
    expected = _stream_rows(acc, m, k, n)
    traffic = layer["traffic"]
    for op, text, ports in zip("AWC", texts, (rows, cols, cols), strict=True):
        got = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
        assert got.shape == (layer["cycles"], 1 + ports)
        assert np.array_equal(got[:, 0], np.arange(layer["cycles"]))
        body = got[:, 1:]
        assert [list(r) for r in body if (r >= 0).any()] == expected[op], op
        assert (body >= 0).sum() == (traffic[op]["writes"] if op == "C" else traffic[op]["reads"])
    if bandwidth is None:  # unlimited bandwidth: the last result leaves in the last cycle
        ofmap = np.loadtxt(io.StringIO(texts[2]), delimiter=",", dtype=np.int64, ndmin=2)
        assert (ofmap[-1, 1:] >= 0).any() or m % rows  # (a padded last row of an OS tile is empty)


def test_windows_and_chunks_do_not_change_the_text(tmp_path, monkeypatch):
    """Text built a few cycles and addresses at a time equals the default build and
    np.savetxt(fmt='%i', delimiter=',') of the same numbers (SCALE-Sim's writer)."""
    cfg = _config(tmp_path, "os", 8, 8)
    layer = Layer("g", 20, 1300, 21)  # 5-digit cycles, 8-digit addresses
    _, whole = _traces(cfg, layer, tmp_path / "a")
    monkeypatch.setattr(trace_mod, "WINDOW", 97)
    monkeypatch.setattr(trace_mod, "CHUNK", 5)
    _, pieces = _traces(cfg, layer, tmp_path / "b")
    assert pieces == whole
    for text in whole:
        buf = io.StringIO()
        np.savetxt(buf, np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64), fmt="%i", delimiter=",")
        assert buf.getvalue() == text


# -- the command line -----------------------------------------------------------------------------
def _topology(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("Layer, M, N, K,\nfc1, 9, 5, 7,\nfc2, 3, 17, 12,\n")
    return path


def test_cli_trace_folder(run_cli, tmp_path):
    out = tmp_path / "traces"
    code, stdout, err = run_cli(
        "sim", "int8_ws_8x8", "--topology", _topology(tmp_path), "--json", "--trace", out
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["trace"] == str(out) and report["outputs"] is False
    assert sorted(p.name for p in out.iterdir()) == [".tpegen-output", "layer0", "layer1"]
    for i, row in enumerate(report["layers"]):
        for name in FILES:
            lines = (out / f"layer{i}" / name).read_text().splitlines()
            assert len(lines) == row["cycles"] and lines[-1].split(",")[0] == str(row["cycles"] - 1)
    code, stdout, err = run_cli("sim", "int8_ws_8x8", "--topology", _topology(tmp_path), "--json")
    assert code == 0 and json.loads(stdout)["trace"] is None


def test_cli_trace_errors_are_one_line_and_write_nothing(run_cli, tmp_path, monkeypatch):
    topo = _topology(tmp_path)

    def fails(*args, names=()):
        code, stdout, err = run_cli("sim", "--topology", topo, *args)
        assert code == 2 and stdout == "" and err.count("\n") == 1, err
        for name in names:
            assert name in err, err
        return err

    taken = tmp_path / "taken"
    (taken / "layer1").mkdir(parents=True)
    (taken / ".tpegen-output").write_text("")
    fails("int8_os_8x8", "--trace", taken, names=("layer1", "--trace"))
    assert sorted(p.name for p in taken.iterdir()) == [".tpegen-output", "layer1"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    fails("int8_os_8x8", "--trace", foreign, names=("not empty", "--force"))
    fails("lut_w2a8", "--trace", tmp_path / "lut", names=("--trace", "systolic", "'lut'"))
    fails("int8_os_8x8", "--system", "--trace", tmp_path / "sys", names=("--trace", "--system"))
    fails("int8_os_8x8", "--trace", "", names=("--trace",))
    monkeypatch.setattr(trace_mod, "MAX_TRACE_ENTRIES", 1100)  # fc1: 38 cycles x 27 numbers fit, fc2 not
    out = tmp_path / "big"
    fails("int8_os_8x8", "--trace", out, names=("t.csv", "fc2", "2^28"))
    for path in (tmp_path / "lut", tmp_path / "sys", out):
        assert not path.exists()
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    # --force adds the traces next to the user's file and touches nothing else
    monkeypatch.setattr(trace_mod, "MAX_TRACE_ENTRIES", 1 << 28)
    code, _, err = run_cli("sim", "int8_os_8x8", "--topology", topo, "--json", "--trace", foreign, "--force")
    assert code == 0, err
    assert (foreign / "notes.txt").read_text() == "mine" and (foreign / "layer1" / FILES[2]).is_file()


def test_api_trace_errors(tmp_path):
    for cfg in ("matrix2d_int8_4x4x8", "lut_w1a8"):
        with pytest.raises(ConfigError, match="--trace.*systolic"):
            tpegen.simulate_topology(cfg, [Layer("g", 2, 2, 2)], trace=tmp_path / "x")
    assert not (tmp_path / "x").exists()


# -- timing only by default; --outputs exact ------------------------------------------------------
def test_timing_only_takes_layers_past_the_operand_limit(run_cli, tmp_path):
    """A 1 x 4096 x 4096 GEMV has 16.8M operand elements: fine for the timing model, refused (one
    line, before anything is simulated) only when outputs are asked for."""
    topo = tmp_path / "gemv.csv"
    topo.write_text("Layer, M, N, K,\ngemv, 1, 4096, 4096,\n")
    code, stdout, err = run_cli("sim", "int8_os_32x32", "--topology", topo, "--json")
    assert code == 0, err
    assert json.loads(stdout)["layers"][0]["cycles"] == tpegen.load_config(
        "int8_os_32x32"
    ).accelerator().cycles(1, 4096, 4096)
    code, stdout, err = run_cli("sim", "int8_os_32x32", "--topology", topo, "--outputs")
    assert code == 2 and stdout == "" and err.count("\n") == 1
    assert "'gemv'" in err and "2^22" in err and "computing outputs" in err
    with pytest.raises(TpegenError, match="2\\^22"):
        tpegen.simulate_system_topology("int8_os_8x8", [Layer("gemv", 1, 4096, 4096)])


def test_outputs_are_exact(monkeypatch):
    """--outputs runs every layer's GEMM through the numeric model on the seeded operands; each
    output equals numpy's and the reported fields equal the timing-only run's."""
    from tpegen.sim import cycle

    seen = []
    simulate = cycle.simulate
    monkeypatch.setattr(
        cycle, "simulate", lambda acc, a, w, **kw: seen.append((a, w, r := simulate(acc, a, w, **kw))) or r
    )
    layers = [Layer("a", 9, 40, 5), Layer("b", 17, 3, 33)]
    exact = tpegen.simulate_topology("int8_os_8x8", layers, outputs=True, seed=5)
    timing = tpegen.simulate_topology("int8_os_8x8", layers)
    assert len(seen) == 2 and exact["outputs"] is True and timing["outputs"] is False
    for a, w, res in seen:
        assert np.array_equal(res.output, a.astype(np.int64) @ w.astype(np.int64))
    assert {**exact, "outputs": None, "seed": None} == {**timing, "outputs": None, "seed": None}


def test_topology_sim_does_not_import_the_hardware_stack(tmp_path):
    """`import tpegen.cli` and a timing-only topology run (also with --trace) import no Amaranth,
    cocotb or synthesis code."""
    topo = _topology(tmp_path)
    script = f"""
import sys

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("amaranth", "cocotb", "cocotb_tools")
                  or m.startswith("tpegen.synth"))

import tpegen.cli
assert not heavy(), heavy()
for hw in ("int8_os_8x8", "int8_ws_8x8", "lut_w2a8", "matrix2d_int8_4x4x8"):
    assert tpegen.cli.main(["sim", hw, "--topology", {str(topo)!r}, "--json"]) == 0
assert tpegen.cli.main(["sim", "int8_os_8x8", "--topology", {str(topo)!r}, "--trace", {str(tmp_path / "tr")!r}]) == 0
assert not heavy(), heavy()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
