"""ONNX and torch.export importers: small PyTorch models exported to files, imported, and run by
:func:`run_graph` must give torch's own output. Skipped (with the reason) without the extras:
``pip install 'tpegen[onnx,torch]'`` (and ``onnxscript`` for the dynamo ONNX exporter test)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from tpegen.errors import TpegenError
from tpegen.sw.graph import gemm_shapes, run_graph

# -- without the extras ----------------------------------------------------------------------


def test_missing_onnx_is_a_one_line_install_hint(monkeypatch, tmp_path):
    from tpegen.sw.frontend.onnx import load_onnx

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(
        TpegenError, match=r"^reading ONNX models needs the onnx package: pip install 'tpegen\[onnx\]'$"
    ):
        load_onnx(tmp_path / "m.onnx")


def test_missing_torch_is_a_one_line_install_hint(monkeypatch, tmp_path):
    from tpegen.sw.frontend.torch import load_pt2

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(
        TpegenError, match=r"^importing PyTorch models needs torch: pip install 'tpegen\[torch\]'$"
    ):
        load_pt2(tmp_path / "m.pt2")


# -- models ----------------------------------------------------------------------------------


def _models():
    torch = pytest.importorskip("torch", reason="the torch importer needs torch: pip install 'tpegen[torch]'")
    nn = torch.nn

    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
            self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)
            self.bn = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(8 * 2 * 2, 16)
            self.fc2 = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = self.pool(torch.relu(self.bn(self.conv2(x))))
            x = torch.flatten(x, 1)
            return self.fc2(torch.relu(self.fc1(x)))

    mlp = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 10), nn.Softmax(-1)
    )
    torch.manual_seed(0)
    cnn = SmallCNN()
    with torch.no_grad():  # non-trivial batch-norm statistics
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
    return torch, {"cnn": cnn.eval(), "mlp": mlp.eval()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model exported with batch 4: to ONNX (TorchScript exporter, dynamic batch) and to .pt2
    (dynamic batch); returns torch, the models and the file paths."""
    torch, models = _models()
    pytest.importorskip("onnx", reason="the ONNX importer needs onnx: pip install 'tpegen[onnx]'")
    folder = tmp_path_factory.mktemp("exported")
    x = torch.rand(4, 1, 8, 8)
    paths = {}
    for name, model in models.items():
        onnx_path, pt2_path = folder / f"{name}.onnx", folder / f"{name}.pt2"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, still works
            torch.onnx.export(
                model, (x,), str(onnx_path), dynamo=False, input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            )  # fmt: skip
            batch = torch.export.Dim("batch")
            torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: batch},)), str(pt2_path))
        paths[name] = (onnx_path, pt2_path)
    return torch, models, paths


def _torch_out(torch, model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_onnx_and_pt2_imports_run_like_torch_and_agree_on_gemm_shapes(exported, name):
    from tpegen.sw.frontend.onnx import load_onnx
    from tpegen.sw.frontend.torch import load_pt2

    torch, models, paths = exported
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)  # another batch than exported
    want = _torch_out(torch, models[name], x)
    shapes = []
    for graph in (load_onnx(paths[name][0]), load_pt2(paths[name][1])):
        assert graph.input_shapes[graph.inputs[0]] == (None, 1, 8, 8)
        (y,) = (run_graph(graph, {graph.inputs[0]: x})[o] for o in graph.outputs)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
        shapes.append([calls for _node, calls in gemm_shapes(graph, {graph.inputs[0]: (7, 1, 8, 8)})])
    assert shapes[0] == shapes[1]
    expect = {
        "cnn": [[(448, 9, 6)], [(112, 27, 4)] * 2, [(7, 32, 16)], [(7, 16, 10)]],
        "mlp": [[(7, 64, 32)], [(7, 32, 10)]],
    }[name]
    assert shapes[0] == expect


def test_from_module_without_a_file(exported):
    from tpegen.sw.frontend.torch import from_module

    torch, models, _ = exported
    x = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    graph = from_module(models["cnn"], (torch.from_numpy(x),))
    assert graph.name == "SmallCNN" and graph.input_shapes == {"x": (3, 1, 8, 8)}
    assert [n.op for n in graph.gemm_nodes] == ["conv2d", "conv2d", "linear", "linear"]
    assert "batchnorm" in [n.op for n in graph.host_nodes]
    (out,) = graph.outputs
    np.testing.assert_allclose(
        run_graph(graph, {"x": x})[out], _torch_out(torch, models["cnn"], x), rtol=1e-5, atol=1e-5
    )


def test_dynamo_onnx_export_imports_too(exported, tmp_path):
    """torch's default (dynamo) ONNX exporter writes other op patterns (Reshape with constant shapes)."""
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    from tpegen.sw.frontend.onnx import load_onnx

    torch, models, _ = exported
    x = np.random.default_rng(2).random((5, 1, 8, 8), dtype=np.float32)
    path = tmp_path / "cnn_dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            models["cnn"],
            (torch.from_numpy(x),),
            str(path),
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    graph = load_onnx(path)
    (out,) = graph.outputs
    np.testing.assert_allclose(
        run_graph(graph, {graph.inputs[0]: x})[out], _torch_out(torch, models["cnn"], x), rtol=1e-5, atol=1e-5
    )


# -- unsupported ops and bad files -----------------------------------------------------------


def test_unsupported_onnx_op_is_one_line_naming_node_and_op(tmp_path):
    onnx = pytest.importorskip("onnx", reason="the ONNX importer needs onnx: pip install 'tpegen[onnx]'")
    from onnx import TensorProto, helper

    from tpegen.sw.frontend.onnx import load_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    node = helper.make_node("Hardmax", ["x"], ["y"], name="head/hardmax")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    path = tmp_path / "hardmax.onnx"
    onnx.save(model, str(path))
    with pytest.raises(TpegenError) as info:
        load_onnx(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(
        "hardmax.onnx: node 'head/hardmax' has op type 'Hardmax', which tpegen cannot map; supported: "
    )
    assert (
        "Conv" in msg and "Gemm" in msg and msg.endswith("export the model with those ops or open an issue")
    )


def test_unsupported_torch_op_is_one_line_naming_node_and_op():
    torch, _ = _models()

    class Sorts(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)

    from tpegen.sw.frontend.torch import from_module

    with pytest.raises(TpegenError) as info:
        from_module(Sorts(), (torch.ones(2, 3),))
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(
        "Sorts: node 'cumsum' has op type 'aten.cumsum', which tpegen cannot map"
    )


def test_files_that_are_not_models_are_one_line_errors(tmp_path):
    pytest.importorskip("onnx", reason="the ONNX importer needs onnx: pip install 'tpegen[onnx]'")
    pytest.importorskip("torch", reason="the torch importer needs torch: pip install 'tpegen[torch]'")
    from tpegen.sw.frontend.onnx import load_onnx
    from tpegen.sw.frontend.torch import load_pt2

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\xffnot a model" * 10)
    for load in (load_onnx, load_pt2):
        with pytest.raises(TpegenError, match=r"junk.bin: not a readable") as info:
            load(junk)
        assert "\n" not in str(info.value)
    with pytest.raises(TpegenError, match="must be a regular file, not a folder"):
        load_onnx(tmp_path)


def test_tpegen_map_gives_the_same_report_for_onnx_and_pt2(exported, run_cli, tmp_path):
    """The same exported CNN as ONNX and as .pt2 maps with --inputs/--labels to the same numbers."""
    import json

    from tpegen.sw.models import load_builtin

    _, x, y = load_builtin("digits_cnn")
    np.save(tmp_path / "x.npy", x[:32])
    np.save(tmp_path / "y.npy", y[:32])
    _, _, paths = exported
    reports = []
    for path in paths["cnn"]:
        code, out, err = run_cli(
            "map", path, "--hw", "int8_os_8x8", "--quant", "W8A8", "--inputs", tmp_path / "x.npy",
            "--labels", tmp_path / "y.npy", "--json",
        )  # fmt: skip
        assert code == 0, err
        reports.append(json.loads(out))
    onnx_report, pt2_report = reports
    assert onnx_report["accuracy"] is not None and set(onnx_report["accuracy"]) == {"float", "mapped"}
    assert onnx_report["accuracy"] == pt2_report["accuracy"]
    assert [r["cycles"] for r in onnx_report["layers"]] == [r["cycles"] for r in pt2_report["layers"]]
    assert onnx_report["total_cycles"] == pt2_report["total_cycles"] > 0
    # the ONNX exporter folds the batch norm into conv2, torch.export keeps it as a host op, so conv2's
    # own output differs; the model's output and every other layer agree
    assert onnx_report["output_cosine"] == pytest.approx(pt2_report["output_cosine"], abs=1e-4)
    for a, b in zip(onnx_report["layers"], pt2_report["layers"], strict=True):
        if a["op"] == "conv2d" and a["N"] == 4:  # conv2 (groups 2: N = 8 / 2)
            continue
        assert a["rel_error"] == pytest.approx(b["rel_error"], rel=1e-3), a["name"]
