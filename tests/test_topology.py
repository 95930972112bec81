"""SCALE-Sim topology import (GEMM and conv formats, im2col lowering, one-line errors) and the
``tpegen sim`` command line."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import CONFIGS

from tpegen.config import load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.sim.topology import ConvShape, im2col_shape, load_topology, parse_topology, to_gemm_csv

TOPOLOGIES = CONFIGS / "topologies"


def test_gemm_format_columns_are_m_n_k():
    layers = parse_topology("Layer, M, N, K,\nfc1, 128, 1536, 384,\n\nfc2,7,3,5\n")
    assert [(x.name, x.m, x.k, x.n) for x in layers] == [("fc1", 128, 384, 1536), ("fc2", 7, 5, 3)]
    assert layers[0].macs == 128 * 384 * 1536 and layers[0].conv is None
    assert parse_topology(to_gemm_csv(layers)) == layers


def test_conv_format_lowered_by_im2col():
    text = (
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "c1, 227, 227, 11, 11, 3, 96, 4,\n"
        "c2, 9, 7, 3, 2, 5, 6, 2, 1:1,\n"
        "DP_c3, 6, 6, 3, 3, 4, 4, 1,\n"
    )
    layers = parse_topology(text)
    c1, c2 = layers[0], layers[1]
    assert (c1.m, c1.k, c1.n) == (55 * 55, 11 * 11 * 3, 96)
    # SCALE-Sim's OFMAP = ceil((IFMAP - Filter + Stride) / Stride): (9-3+2)/2 = 4, (7-2+2)/2 -> 4.
    assert c2.conv.ofmap == (4, 4) and (c2.m, c2.k, c2.n) == (16, 3 * 2 * 5, 6)
    # Depth-wise layers become one single-channel GEMM per channel, as in SCALE-Sim.
    dp = layers[2:]
    assert [x.name for x in dp] == [f"DP_c3Channel_{c}" for c in range(4)]
    assert all((x.m, x.k, x.n) == (16, 9, 4) for x in dp)
    assert im2col_shape(ConvShape(5, 5, 5, 5, 2, 3, 1)) == (1, 50, 3)


def test_shipped_topologies():
    bert = load_topology(TOPOLOGIES / "bert_encoder_6x384.csv")
    assert len(bert) == 36
    shapes = [(x.m, x.k, x.n) for x in bert]
    assert shapes.count((128, 384, 384)) == 24
    assert shapes.count((128, 384, 1536)) == shapes.count((128, 1536, 384)) == 6
    resnet = load_topology(TOPOLOGIES / "resnet18_conv.csv")
    assert (resnet[0].conv.ofmap, resnet[0].m, resnet[0].k, resnet[0].n) == ((112, 112), 112 * 112, 147, 64)
    assert resnet[-1].name == "fc" and (resnet[-1].m, resnet[-1].k, resnet[-1].n) == (1, 512, 1000)
    alex = load_topology(TOPOLOGIES / "alexnet_conv.csv")
    assert [x.conv.ofmap for x in alex] == [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]


GEMM_HEAD = "Layer, M, N, K,\n"
CONV_HEAD = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
)
BAD_ROWS = [
    (GEMM_HEAD + "ok, 1, 2, 3,\nfc, 4, 5,\n", "row 3, column 'K'"),
    (GEMM_HEAD + "fc, 4, -5, 3,\n", "row 2, column 'N'"),
    (GEMM_HEAD + "fc, 0, 5, 3,\n", "row 2, column 'M'"),
    (GEMM_HEAD + "fc, 4, 5, 2.5,\n", "row 2, column 'K'"),
    (GEMM_HEAD + "fc, four, 5, 2,\n", "row 2, column 'M'"),
    (GEMM_HEAD + "fc, 4, , 2,\n", "row 2, column 'N'"),
    (GEMM_HEAD + "fc, 4, 5, 2, 2:4,\n", "row 2, column 5 (sparsity)"),
    (CONV_HEAD + "c, 8, 8, 3, 3, 4, 0, 1,\n", "row 2, column 'Num Filter'"),
    (CONV_HEAD + "c, 8, 8, 3, 3, 4, 2,\n", "row 2, column 'Strides'"),
    (CONV_HEAD + "\nc, 8, 2, 3, 3, 4, 2, 1,\n", "row 3, column 'Filter Width'"),
    ("Layer, X, Y,\nfc, 1, 2,\n", "row 1 (header)"),
]


@pytest.mark.parametrize("text,where", BAD_ROWS)
def test_bad_rows_are_one_line_errors_naming_file_row_column(tmp_path, text, where):
    path = tmp_path / "topo.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {where}"), msg


def test_unreadable_or_empty_topology(tmp_path):
    with pytest.raises(TpegenError, match="missing.csv: no such file"):
        load_topology(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(TpegenError, match="empty"):
        load_topology(tmp_path / "empty.csv")
    (tmp_path / "head.csv").write_text(GEMM_HEAD)
    with pytest.raises(TpegenError, match="no layers"):
        load_topology(tmp_path / "head.csv")


def test_cli_sim_json_contract_and_files(run_cli, tmp_path):
    topo = TOPOLOGIES / "alexnet_conv.csv"
    cfg = CONFIGS / "int8_ws_32x32.yaml"
    out = tmp_path / "out"
    code, stdout, err = run_cli("sim", "--hw", cfg, "--topology", topo, "--json", "-o", out, "--seed", 3)
    assert code == 0, err
    report = json.loads(stdout)
    assert {"layers", "total_cycles"} <= set(report)
    acc = load_config(cfg).accelerator()
    layers = load_topology(topo)
    assert [x["name"] for x in report["layers"]] == [x.name for x in layers]
    for row, layer in zip(report["layers"], layers, strict=True):
        assert {"name", "M", "K", "N", "cycles", "utilization"} <= set(row)
        assert (row["M"], row["K"], row["N"]) == (layer.m, layer.k, layer.n)
        assert row["cycles"] == acc.cycles(layer.m, layer.k, layer.n)  # RTL-verified timing model
        assert row["utilization"] == pytest.approx(layer.macs / (row["cycles"] * 1024))
    assert report["total_cycles"] == sum(x["cycles"] for x in report["layers"])
    assert json.loads((out / "sim.json").read_text())["total_cycles"] == report["total_cycles"]
    rows = list(csv.DictReader((out / "sim.csv").open()))
    assert [int(r["cycles"]) for r in rows] == [x["cycles"] for x in report["layers"]]
    assert sorted(p.name for p in out.iterdir()) == [".tpegen-output", "sim.csv", "sim.json"]
    # A finite bandwidth only adds cycles; the table mode prints and writes nothing when no -o.
    code, stdout, _ = run_cli("sim", "--hw", cfg, "--topology", topo, "--json", "--bandwidth", "A=4,W=4,C=8")
    slow = json.loads(stdout)
    assert code == 0 and slow["total_cycles"] > report["total_cycles"]
    assert all(x["stall_cycles"] >= 0 for x in slow["layers"])
    code, stdout, _ = run_cli("sim", "--hw", CONFIGS / "int8_os_8x8.yaml", "--topology", TOPOLOGIES / "bert_encoder_6x384.csv")  # fmt: skip
    assert code == 0 and "enc5_ffn_down" in stdout and "total" in stdout


def test_cli_sim_errors_are_one_line(run_cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(GEMM_HEAD + "fc, 4, 5, x,\n")
    code, stdout, err = run_cli("sim", "--hw", CONFIGS / "int8_os_8x8.yaml", "--topology", bad)
    assert code == 2 and stdout == ""
    assert err.strip().count("\n") == 0 and f"{bad}: row 2, column 'K'" in err
    out = tmp_path / "never"
    code, _, err = run_cli(
        "sim", "--hw", CONFIGS / "int8_os_8x8.yaml", "--topology", TOPOLOGIES / "alexnet_conv.csv",
        "--bandwidth", "Q=3", "-o", out,
    )  # fmt: skip
    assert code == 2 and "--bandwidth" in err and not out.exists()


def test_sim_is_timing_only_unless_outputs_are_asked_for(run_cli, monkeypatch):
    """Cycles depend only on shapes: the default run never calls the numeric model; --outputs does,
    and both report the same cycles."""
    import json

    from tpegen.sw.systolic import SystolicAccelerator

    calls = []
    golden = SystolicAccelerator.golden
    monkeypatch.setattr(
        SystolicAccelerator, "golden", lambda self, a, w: calls.append(1) or golden(self, a, w)
    )
    code, out, err = run_cli("sim", "int8_os_8x8", "--topology", "resnet18_conv", "--json")
    assert code == 0, err
    timing_only = json.loads(out)
    assert timing_only["outputs"] is False and not calls
    code, out, err = run_cli("sim", "int8_os_8x8", "--topology", "resnet18_conv", "--json", "--outputs")
    assert code == 0, err
    with_outputs = json.loads(out)
    assert with_outputs["outputs"] is True and len(calls) == len(with_outputs["layers"])
    assert [x["cycles"] for x in with_outputs["layers"]] == [x["cycles"] for x in timing_only["layers"]]
