"""Model graph executor and built-in models, against references written here with direct loops
(no im2col, no tpegen code on the reference side)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tpegen.errors import ConfigError, TpegenError
from tpegen.sw.graph import GEMM_OPS, Graph, Node, gemm_shapes, run_graph, unsupported_op
from tpegen.sw.models import DATA_DIR, builtin_models, load_builtin

# -- direct references ---------------------------------------------------------------------


def direct_conv2d(x, w, b, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Convolution by the definition: one dot product per output pixel and channel."""
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    t, l, bt, r = padding  # noqa: E741
    xp = np.zeros((n, cin, h + t + bt, wd + l + r), np.float64)
    xp[:, :, t : t + h, l : l + wd] = x
    oh = (h + t + bt - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + l + r - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, cout, oh, ow), np.float64)
    cout_g = cout // groups
    for img, co, i, j in itertools.product(range(n), range(cout), range(oh), range(ow)):
        g = co // cout_g
        acc = 0.0 if b is None else float(b[co])
        for ci, p, q in itertools.product(range(cin_g), range(kh), range(kw)):
            acc += (
                w[co, ci, p, q]
                * xp[img, g * cin_g + ci, i * stride[0] + p * dilation[0], j * stride[1] + q * dilation[1]]
            )
        y[img, co, i, j] = acc
    return y


def direct_pool(x, kernel, stride, padding, reduce, pad_value, ceil_mode=False, count_include_pad=True):
    """Pooling by the definition, windows clipped as PyTorch clips them."""
    n, c, h, w = x.shape
    t, l, b, r = padding  # noqa: E741

    def out_size(size, lo, hi, k, s):
        span = size + lo + hi - k
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= size + lo:
            o -= 1
        return o

    oh, ow = out_size(h, t, b, kernel[0], stride[0]), out_size(w, l, r, kernel[1], stride[1])
    y = np.zeros((n, c, oh, ow))
    for i, j in itertools.product(range(oh), range(ow)):
        r0, c0 = i * stride[0] - t, j * stride[1] - l
        r1, c1 = min(r0 + kernel[0], h + b), min(c0 + kernel[1], w + r)  # window inside the padded input
        vals, pads = [], 0
        for p, q in itertools.product(range(r0, r1), range(c0, c1)):
            if 0 <= p < h and 0 <= q < w:
                vals.append(x[:, :, p, q])
            else:
                pads += 1
        stack = np.stack(vals, -1)
        if reduce == "max":
            y[:, :, i, j] = stack.max(-1) if not pads else np.maximum(stack.max(-1), pad_value)
        else:
            count = len(vals) + (pads if count_include_pad else 0)
            y[:, :, i, j] = stack.sum(-1) / count
    return y


def reference_digits(name: str, weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The built-in models' forward pass from their documented architecture."""
    if name == "digits_cnn":
        h = np.maximum(
            direct_conv2d(x, weights["conv1.weight"], weights["conv1.bias"], padding=(1, 1, 1, 1)), 0
        )
        h = np.maximum(
            direct_conv2d(h, weights["conv2.weight"], weights["conv2.bias"], padding=(1, 1, 1, 1)), 0
        )
        h = h.reshape(len(x), 16, 4, 2, 4, 2).max(axis=(3, 5)).reshape(len(x), -1)
        h = np.maximum(h @ weights["fc1.weight"] + weights["fc1.bias"], 0)
        return h @ weights["fc2.weight"] + weights["fc2.bias"]
    h = x.reshape(len(x), -1).astype(np.float64)
    h = np.maximum(h @ weights["fc1.weight"] + weights["fc1.bias"], 0)
    h = np.maximum(h @ weights["fc2.weight"] + weights["fc2.bias"], 0)
    return h @ weights["fc3.weight"] + weights["fc3.bias"]


# -- built-in models -----------------------------------------------------------------------


def test_builtin_registry_lists_the_default_first_and_rejects_unknown_names():
    assert builtin_models()[0] == "digits_cnn"
    assert "digits_mlp" in builtin_models()
    with pytest.raises(ConfigError, match="model: must be one of digits_cnn, digits_mlp"):
        load_builtin("resnet50")


@pytest.mark.parametrize("name", ["digits_cnn", "digits_mlp"])
def test_builtin_model_matches_a_direct_forward_and_is_accurate(name):
    graph, x_test, y_test = load_builtin(name)
    assert (DATA_DIR / f"{name}.npz").stat().st_size < 200_000
    assert x_test.dtype == np.float32 and x_test.shape[1:] == (1, 8, 8) and y_test.dtype == np.int64
    assert x_test.min() >= 0.0 and x_test.max() <= 1.0 and len(x_test) == len(y_test) == 450
    assert np.bincount(y_test, minlength=10).min() >= 43  # stratified: ~25% of each class (174-183)
    logits = run_graph(graph, {"x": x_test})["logits"]
    assert logits.shape == (450, 10) and logits.dtype == np.float32
    want = reference_digits(name, graph.initializers, x_test[:3].astype(np.float64))
    np.testing.assert_allclose(logits[:3], want, rtol=1e-5, atol=1e-5)
    top1 = float((logits.argmax(1) == y_test).mean())
    assert top1 >= 0.95, f"{name}: float32 top-1 {top1:.4f}"


def test_builtin_cnn_gemm_shapes_and_gemm_fn_calls():
    graph, x_test, _ = load_builtin("digits_cnn")
    shapes = [(node.name, calls) for node, calls in gemm_shapes(graph, {"x": (5, 1, 8, 8)})]
    assert shapes == [
        ("conv1", [(320, 9, 8)]),
        ("conv2", [(320, 72, 16)]),
        ("fc1", [(5, 256, 32)]),
        ("fc2", [(5, 32, 10)]),
    ]
    seen = []

    def gemm(node, a, w, is_weight):
        seen.append((node.name, a.shape, w.shape, is_weight))
        return np.zeros((a.shape[0], w.shape[1]), np.float32)  # a "hardware" that returns zeros

    out = run_graph(graph, {"x": x_test[:5]}, gemm, capture=True)
    assert seen == [(n, (m, k), (k, nn), True) for n, [(m, k, nn)] in shapes]
    # zero GEMMs leave only the biases: fc2's output is relu(fc1 bias) @ W2 + b2 computed with zeros
    np.testing.assert_array_equal(out["fc2"], np.broadcast_to(graph.initializers["fc2.bias"], (5, 10)))
    assert out["logits"] is out["fc2"] and set(out) == {"logits", "conv1", "conv2", "fc1", "fc2"}


# -- ops -----------------------------------------------------------------------------------


def one_node_graph(op, x_shape, inits=None, **attrs) -> Graph:
    inits = {k: np.asarray(v, np.float32) for k, v in (inits or {}).items()}
    return Graph("t", ["x"], {"x": x_shape}, ["y"], inits, [Node("n", op, ["x", *inits], ["y"], attrs)])


@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [((1, 1), (1, 1, 1, 1), (1, 1), 1), ((2, 1), (0, 2, 1, 0), (1, 2), 2), ((2, 3), (2, 1, 0, 1), (2, 1), 6)],
)
def test_conv2d_matches_the_direct_definition(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 7, 9)).astype(np.float32)
    w = rng.standard_normal((12, 6 // groups, 3, 2)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    graph = one_node_graph("conv2d", (None, 6, 7, 9), {"w": w, "b": b}, **attrs)
    y = run_graph(graph, {"x": x})["y"]
    want = direct_conv2d(x.astype(np.float64), w, b, stride, padding, dilation, groups)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    ((node, calls),) = gemm_shapes(graph, {"x": (2, 6, 7, 9)})
    oh, ow = want.shape[2:]
    assert calls == [(2 * oh * ow, 6 // groups * 3 * 2, 12 // groups)] * groups


@pytest.mark.parametrize(
    "kernel, stride, padding, ceil_mode",
    [
        ((2, 2), (2, 2), (0, 0, 0, 0), False),
        ((3, 3), (2, 2), (1, 1, 1, 1), True),
        ((2, 2), (3, 3), (1, 1, 1, 1), True),  # the last window would start in the padding
        ((3, 2), (2, 1), (1, 0, 1, 0), True),
    ],
)
def test_pools_match_the_direct_definition(kernel, stride, padding, ceil_mode):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 8)).astype(np.float32)
    attrs = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    got = run_graph(one_node_graph("maxpool2d", (None, 3, 7, 8), **attrs), {"x": x})["y"]
    np.testing.assert_array_equal(got, direct_pool(x, kernel, stride, padding, "max", -np.inf, ceil_mode))
    for include in (True, False):
        g = one_node_graph("avgpool2d", (None, 3, 7, 8), count_include_pad=include, **attrs)
        want = direct_pool(x, kernel, stride, padding, "avg", 0.0, ceil_mode, include)
        np.testing.assert_allclose(run_graph(g, {"x": x})["y"], want, rtol=1e-6, atol=1e-6)


def test_batched_matmul_is_one_gemm_per_slice_and_linear_flattens_leading_dims():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 5, 6))
    w = rng.standard_normal((6, 7)).astype(np.float32)
    graph = Graph(
        "mm", ["a", "b"], {"a": (None, 3, 4, 5), "b": (3, 5, 6)}, ["y"], {"w": w},
        [Node("mm", "matmul", ["a", "b"], ["ab"]), Node("fc", "linear", ["ab", "w"], ["y"])],
    )  # fmt: skip
    y = run_graph(graph, {"a": a, "b": b})["y"]
    np.testing.assert_allclose(y, np.einsum("xhmk,hkn,nj->xhmj", a, b, w), rtol=1e-5, atol=1e-5)
    assert [(n.name, calls) for n, calls in gemm_shapes(graph, {"a": (2, 3, 4, 5)})] == [
        ("mm", [(4, 5, 6)] * 6),
        ("fc", [(24, 6, 7)]),
    ]


def test_host_ops_against_numpy_definitions():
    x = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    run = lambda op, **a: run_graph(one_node_graph(op, (None, 3, 4), **a), {"x": x})["y"]  # noqa: E731
    e = np.exp(x - x.max(-1, keepdims=True))
    np.testing.assert_allclose(run("softmax", axis=-1), e / e.sum(-1, keepdims=True), rtol=1e-6)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(
        run("layernorm", epsilon=1e-5), (x - mu) / np.sqrt(var + 1e-5), rtol=1e-5, atol=1e-6
    )
    from math import erf, sqrt, tanh  # scalar definitions

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / sqrt(2))))(x.astype(np.float64))
    np.testing.assert_allclose(run("gelu"), gelu, rtol=1e-6, atol=1e-6)
    gelu_t = np.vectorize(lambda v: 0.5 * v * (1 + tanh(sqrt(2 / np.pi) * (v + 0.044715 * v**3))))(
        x.astype(np.float64)
    )
    np.testing.assert_allclose(run("gelu", approximate="tanh"), gelu_t, rtol=1e-5, atol=1e-6)
    assert run("flatten", start_dim=1, end_dim=-1).shape == (2, 12)
    assert run("reshape", shape=(0, -1, 2)).shape == (2, 6, 2)
    np.testing.assert_array_equal(run("transpose", perm=(2, 0, 1)), x.transpose(2, 0, 1))


def test_graph_construction_rejects_unknown_ops_and_dangling_tensors():
    with pytest.raises(TpegenError, match="node 'n' has unknown op 'lstm'"):
        one_node_graph("lstm", (None, 3))
    with pytest.raises(TpegenError, match="reads 'z', which no earlier node defines"):
        Graph("t", ["x"], {"x": (1,)}, ["y"], {}, [Node("n", "relu", ["z"], ["y"])])
    with pytest.raises(TpegenError, match="needs a constant rank-2 weight"):
        Graph(
            "t", ["x", "w"], {"x": (1, 2), "w": (2, 2)}, ["y"], {}, [Node("n", "linear", ["x", "w"], ["y"])]
        )
    assert set(GEMM_OPS) == {"linear", "matmul", "conv2d"}


def test_unsupported_op_message_is_one_line_naming_node_and_op():
    msg = str(unsupported_op("net.onnx", "/block/TopK", "TopK", ["Conv", "Gemm"]))
    assert msg == (
        "net.onnx: node '/block/TopK' has op type 'TopK', which tpegen cannot map; "
        "supported: Conv, Gemm; export the model with those ops or open an issue"
    )


def test_run_errors_are_one_line_and_name_the_model_and_node():
    graph, x_test, _ = load_builtin("digits_cnn")
    with pytest.raises(
        TpegenError, match=r"digits_cnn: input 'x' has shape \(2, 1, 7, 8\), expected Nx1x8x8"
    ):
        run_graph(graph, {"x": np.zeros((2, 1, 7, 8))})
    fixed = one_node_graph("reshape", (None, 4, 4), shape=(2, 16))
    with pytest.raises(TpegenError, match="t: node 'n' .*fixed batch size of 2") as info:
        run_graph(fixed, {"x": np.zeros((3, 4, 4))})
    assert "\n" not in str(info.value)
    add = Graph(
        "t",
        ["x"],
        {"x": (None, 3)},
        ["y"],
        {"c": np.ones(4, np.float32)},
        [Node("a", "add", ["x", "c"], ["y"])],
    )
    with pytest.raises(TpegenError, match="t: node 'a' \\(add\\): operands could not be broadcast"):
        run_graph(add, {"x": np.zeros((2, 3))})
