"""A model as a list of tensor operations, and a numpy float32 executor for it.

A :class:`Graph` is what the importers (:mod:`tpegen.sw.frontend`) and the built-in models
(:mod:`tpegen.sw.models`) produce and what the mapper runs: named tensors flowing through
:class:`Node`\\ s in topological order. Every node is either

* **GEMM-like** (:data:`GEMM_OPS`) -- it runs on the generated hardware: :func:`run_graph` turns it
  into one or more 2-D products ``a (M, K) @ w (K, N)`` and hands each to a ``gemm_fn`` (the
  mapper's quantize -> hardware -> dequantize step; exact float32 ``a @ w`` by default), or
* a **host op** -- it runs on the host in numpy float32 (:data:`HOST_OPS`).

Op semantics (NCHW for images; attribute names as in the node's ``attrs``):

GEMM-like:

``linear``  inputs ``[x, W, b?]``; ``W`` an initializer of shape (K, N) (already transposed from
    PyTorch's / ONNX's (N, K)), ``b`` an optional initializer of shape (N,). ``x`` (..., K): its
    leading dims are flattened into M; ``y = x @ W + b`` of shape (..., N). One GEMM per call.
``matmul``  inputs ``[a, b]`` -- numpy ``matmul`` semantics: a (..., M, K), b (..., K, N) with
    broadcast batch dims (a 1-D operand is promoted as numpy does); every 2-D slice is one GEMM.
    ``w_is_weight`` is true when ``b`` is an initializer.
``conv2d``  inputs ``[x, W, b?]``; x (N, Cin, H, W), W (Cout, Cin/groups, kh, kw), b (Cout,).
    attrs ``stride`` (sh, sw), ``padding`` (top, left, bottom, right; zeros), ``dilation``
    (dh, dw), ``groups``. Lowered by im2col: for each group g one GEMM with
    M = N*OH*OW, K = Cin/groups*kh*kw (ordered channel, row, column -- the order of
    ``W.reshape(Cout, -1)``), N = Cout/groups, where
    OH = (H + top + bottom - dh*(kh-1) - 1) // sh + 1 (likewise OW).

Host ops (all float32 unless they move integer index/shape tensors):

``identity``, ``relu``, ``sigmoid``, ``tanh``, ``exp``, ``sqrt``, ``neg``, ``erf``, ``abs``
    elementwise. ``gelu`` attr ``approximate`` ("none" -> x/2 (1 + erf(x/sqrt 2)), "tanh").
    ``leaky_relu`` attr ``alpha``; ``clip`` attrs ``min``, ``max`` (either may be None);
    ``hardswish`` x * clip(x + 3, 0, 6) / 6.
``add``, ``sub``, ``mul``, ``div``, ``pow``  two inputs, numpy broadcasting.
``softmax``  attr ``axis``. ``log_softmax`` attr ``axis``.
``layernorm``  inputs ``[x, scale?, bias?]``; attrs ``axis`` (normalize over dims axis..end,
    default -1) and ``epsilon``: (x - mean) / sqrt(var + eps) * scale + bias, biased variance.
``batchnorm``  inputs ``[x, scale, bias, mean, var]`` (per channel, dim 1); attr ``epsilon``.
``maxpool2d``  attrs ``kernel`` (kh, kw), ``stride``, ``padding`` (t, l, b, r; padded with -inf),
    ``dilation``, ``ceil_mode`` (windows that start in the bottom/right padding are dropped, as
    PyTorch does).
``avgpool2d``  attrs ``kernel``, ``stride``, ``padding``, ``ceil_mode``, ``count_include_pad``
    (whether the zero padding counts in the divisor; the extra ceil_mode region never counts).
``global_avgpool``  mean over H and W, keeping them as size-1 dims.
``flatten``  attrs ``start_dim``, ``end_dim`` (PyTorch ``torch.flatten`` semantics).
``reshape``  target shape from attr ``shape`` or from a second (int64) input; ONNX rules: 0
    copies the input dim at that position (unless attr ``allowzero``), one -1 is inferred.
``transpose``  attr ``perm``. ``concat`` attr ``axis``, any number of inputs.
``squeeze`` / ``unsqueeze`` attr ``axes``. ``reduce_mean`` attrs ``axes``, ``keepdims``.
``gather``  inputs ``[data, indices]``, attr ``axis`` (``numpy.take``; embedding look-ups).
``slice``  attrs ``starts``, ``ends``, ``axes``, ``steps`` (ONNX Slice; ends clamp).
``shape``  the input's shape as an int64 vector (so exported dynamic reshapes run).
``cast``  attr ``to``: "float32" or "int64".

Integer tensors (indices, shapes) stay int64; every float tensor is float32. Initializers are
float32 except integer constants (indices, shapes), which stay int64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tpegen.errors import TpegenError

__all__ = [
    "GEMM_OPS",
    "HOST_OPS",
    "GemmFn",
    "Graph",
    "Node",
    "default_gemm",
    "gemm_shapes",
    "run_graph",
    "unsupported_op",
]

GEMM_OPS = ("linear", "matmul", "conv2d")
HOST_OPS = (
    "identity", "relu", "gelu", "sigmoid", "tanh", "exp", "sqrt", "neg", "erf", "abs",
    "leaky_relu", "clip", "hardswish",
    "add", "sub", "mul", "div", "pow",
    "softmax", "log_softmax", "layernorm", "batchnorm",
    "maxpool2d", "avgpool2d", "global_avgpool",
    "flatten", "reshape", "transpose", "concat", "squeeze", "unsqueeze",
    "reduce_mean", "gather", "slice", "shape", "cast",
)  # fmt: skip

GemmFn = Callable[["Node", np.ndarray, np.ndarray, bool], np.ndarray]
"""``gemm_fn(node, a (M, K) float32, w (K, N) float32, w_is_weight) -> (M, N) float32``."""


@dataclass
class Node:
    """One operation: ``op`` applied to the tensors named ``inputs`` (``""`` = an absent optional
    input), producing the tensors named ``outputs``; ``attrs`` as documented per op above."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A model: named ``inputs`` (shapes in ``input_shapes``, a ``None`` dim is free -- usually the
    batch), constant ``initializers`` and ``nodes`` in topological order producing ``outputs``.

    Construction checks that every op is known, node names are unique, every tensor is defined
    before it is used and every GEMM weight is an initializer of the right rank.
    """

    name: str
    inputs: list[str]
    input_shapes: dict[str, tuple]
    outputs: list[str]
    initializers: dict[str, np.ndarray]
    nodes: list[Node]

    def __post_init__(self) -> None:
        defined = set(self.inputs) | set(self.initializers)
        names: set[str] = set()
        for node in self.nodes:
            if node.op not in GEMM_OPS and node.op not in HOST_OPS:
                raise TpegenError(f"{self.name}: node {node.name!r} has unknown op {node.op!r}")
            if node.name in names:
                raise TpegenError(f"{self.name}: two nodes are named {node.name!r}")
            names.add(node.name)
            for tensor in node.inputs:
                if tensor and tensor not in defined:
                    raise TpegenError(
                        f"{self.name}: node {node.name!r} reads {tensor!r}, which no earlier node defines"
                    )
            if node.op in ("linear", "conv2d"):
                rank = 2 if node.op == "linear" else 4
                w = self.initializers.get(node.inputs[1])
                if w is None or w.ndim != rank:
                    raise TpegenError(
                        f"{self.name}: node {node.name!r} ({node.op}) needs a constant rank-{rank} weight"
                    )
            if node.op in GEMM_OPS and node.name in self.outputs and node.outputs[0] != node.name:
                raise TpegenError(f"{self.name}: node name {node.name!r} is also the name of another output")
            defined.update(node.outputs)
        for out in self.outputs:
            if out not in defined:
                raise TpegenError(f"{self.name}: output {out!r} is not computed by any node")

    @property
    def gemm_nodes(self) -> list[Node]:
        """The GEMM-like nodes (they run on the hardware), in order."""
        return [n for n in self.nodes if n.op in GEMM_OPS]

    @property
    def host_nodes(self) -> list[Node]:
        """The nodes that run on the host, in order."""
        return [n for n in self.nodes if n.op not in GEMM_OPS]


def unsupported_op(model: str, node: str, op: str, supported: list[str] | tuple[str, ...]) -> TpegenError:
    """The one-line error an importer raises for an op it cannot map."""
    return TpegenError(
        f"{model}: node {node!r} has op type {op!r}, which tpegen cannot map; "
        f"supported: {', '.join(supported)}; export the model with those ops or open an issue"
    )


def default_gemm(node: Node, a: np.ndarray, w: np.ndarray, w_is_weight: bool) -> np.ndarray:
    """Exact float32 ``a @ w`` (the reference ``gemm_fn``)."""
    return np.matmul(a, w, dtype=np.float32)


# -- GEMM-like ops ------------------------------------------------------------------------------


def _call_gemm(gemm_fn: GemmFn, node: Node, a: np.ndarray, w: np.ndarray, is_weight: bool) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    w = np.ascontiguousarray(w, dtype=np.float32)
    y = np.asarray(gemm_fn(node, a, w, is_weight), dtype=np.float32)
    if y.shape != (a.shape[0], w.shape[1]):
        raise TpegenError(
            f"node {node.name!r}: the GEMM backend returned shape {y.shape}, expected "
            f"{(a.shape[0], w.shape[1])}"
        )
    return y


def _linear(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, gemm_fn: GemmFn) -> np.ndarray:
    k, n = w.shape
    if x.shape[-1] != k:
        raise TpegenError(f"node {node.name!r} (linear): input has {x.shape[-1]} features, the weight {k}")
    y = _call_gemm(gemm_fn, node, x.reshape(-1, k), w, True)
    if b is not None:
        y = y + b.astype(np.float32)
    return y.reshape(*x.shape[:-1], n)


def _matmul(node: Node, a: np.ndarray, b: np.ndarray, b_is_weight: bool, gemm_fn: GemmFn) -> np.ndarray:
    squeeze_m, squeeze_n = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if squeeze_m else a
    b2 = b[:, None] if squeeze_n else b
    if a2.shape[-1] != b2.shape[-2]:
        raise TpegenError(f"node {node.name!r} (matmul): cannot multiply {a.shape} by {b.shape}")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a3 = np.broadcast_to(a2, batch + a2.shape[-2:]).reshape(-1, *a2.shape[-2:])
    b3 = np.broadcast_to(b2, batch + b2.shape[-2:]).reshape(-1, *b2.shape[-2:])
    y = np.stack([_call_gemm(gemm_fn, node, a3[i], b3[i], b_is_weight) for i in range(a3.shape[0])])
    y = y.reshape(batch + y.shape[-2:])
    if squeeze_n:
        y = y[..., 0]
    if squeeze_m:
        y = y[..., 0, :] if not squeeze_n else y[..., 0]
    return y


def _windows(x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    """View (N, C, OH, OW, kh, kw) of the kh x kw windows of an already padded NCHW ``x``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if x.shape[2] < span_h or x.shape[3] < span_w:
        raise ValueError(f"the {kh}x{kw} window (dilation {dh}x{dw}) is larger than the input {x.shape[2:]}")
    view = sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def _pad(x: np.ndarray, padding, value: float) -> np.ndarray:
    t, l, b, r = padding  # noqa: E741
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def im2col(x: np.ndarray, kernel, stride, padding, dilation) -> tuple[np.ndarray, int, int]:
    """The im2col matrix of NCHW ``x``: shape (N*OH*OW, C*kh*kw), columns ordered (c, i, j)."""
    win = _windows(_pad(x, padding, 0.0), kernel, stride, dilation)  # N, C, OH, OW, kh, kw
    n, c, oh, ow, kh, kw = win.shape
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw), oh, ow


def _conv2d(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, gemm_fn: GemmFn) -> np.ndarray:
    a = node.attrs
    groups = int(a.get("groups", 1))
    cout, cin_g, kh, kw = w.shape
    if x.ndim != 4 or x.shape[1] != cin_g * groups or cout % groups:
        raise TpegenError(
            f"node {node.name!r} (conv2d): input {x.shape} does not fit weight {w.shape} with {groups} groups"
        )
    stride, dilation = tuple(a.get("stride", (1, 1))), tuple(a.get("dilation", (1, 1)))
    padding = tuple(a.get("padding", (0, 0, 0, 0)))
    n = x.shape[0]
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        xg = x[:, g * cin_g : (g + 1) * cin_g]
        try:
            cols, oh, ow = im2col(xg, (kh, kw), stride, padding, dilation)
        except ValueError as exc:
            raise TpegenError(f"node {node.name!r} (conv2d): {exc}") from None
        wg = w[g * cout_g : (g + 1) * cout_g].reshape(cout_g, -1).T
        outs.append(_call_gemm(gemm_fn, node, cols, wg, True).reshape(n, oh, ow, cout_g))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b.astype(np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y)


# -- host ops -----------------------------------------------------------------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    """erf via Abramowitz & Stegun 7.1.26 in float64 (absolute error < 1.5e-7; numpy has no erf)."""
    x64 = np.asarray(x, dtype=np.float64)
    s, z = np.sign(x64), np.abs(x64)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    e = 1.0 - poly * np.exp(-z * z)
    return (s * e).astype(np.float32)


def _pool_geometry(x: np.ndarray, a: Mapping[str, Any]) -> tuple:
    kernel = tuple(a["kernel"])
    stride = tuple(a.get("stride") or kernel)
    dilation = tuple(a.get("dilation", (1, 1)))
    t, l, b, r = tuple(a.get("padding", (0, 0, 0, 0)))  # noqa: E741
    extra = [0, 0]
    if a.get("ceil_mode", False):
        for d, (size, lo, hi) in enumerate(((x.shape[2], t, b), (x.shape[3], l, r))):
            span = dilation[d] * (kernel[d] - 1) + 1
            total = size + lo + hi - span
            out = -(-total // stride[d]) + 1
            if (out - 1) * stride[d] >= size + lo:  # last window would start in the padding
                out -= 1
            extra[d] = max(0, (out - 1) * stride[d] + span - (size + lo + hi))
    return kernel, stride, dilation, (t, l, b, r), extra


def _maxpool(x: np.ndarray, a: Mapping[str, Any]) -> np.ndarray:
    kernel, stride, dilation, (t, l, b, r), (eh, ew) = _pool_geometry(x, a)  # noqa: E741
    xp = _pad(x, (t, l, b + eh, r + ew), -np.inf)
    return _windows(xp, kernel, stride, dilation).max(axis=(4, 5))


def _avgpool(x: np.ndarray, a: Mapping[str, Any]) -> np.ndarray:
    kernel, stride, dilation, (t, l, b, r), (eh, ew) = _pool_geometry(x, a)  # noqa: E741
    pad = (t, l, b + eh, r + ew)
    sums = _windows(_pad(x, pad, 0.0), kernel, stride, dilation).sum(axis=(4, 5), dtype=np.float32)
    if a.get("count_include_pad", True):
        ones = np.ones((1, 1, x.shape[2] + t + b, x.shape[3] + l + r), np.float32)
        mask = np.pad(ones, ((0, 0), (0, 0), (0, eh), (0, ew)))
    else:
        mask = _pad(np.ones((1, 1) + x.shape[2:], np.float32), pad, 0.0)
    counts = _windows(mask, kernel, stride, dilation).sum(axis=(4, 5), dtype=np.float32)
    return sums / counts


def _reshape(node: Node, x: np.ndarray, shape, allowzero: bool = False) -> np.ndarray:
    shape = [int(s) for s in shape]
    target = [x.shape[i] if s == 0 and i < x.ndim and not allowzero else s for i, s in enumerate(shape)]
    try:
        return x.reshape(target)
    except ValueError:
        hint = ""
        if x.ndim and target and target[0] > 0 and target[0] != x.shape[0]:
            hint = (
                f"; the model may have been exported with a fixed batch size of {target[0]}: export it"
                " with a dynamic batch dimension or feed batches of that size"
            )
        raise TpegenError(
            f"node {node.name!r} (reshape): cannot reshape {x.shape} to {tuple(shape)}{hint}"
        ) from None


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _layernorm(x: np.ndarray, scale, bias, a: Mapping[str, Any]) -> np.ndarray:
    axis = int(a.get("axis", -1))
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def _slice(x: np.ndarray, a: Mapping[str, Any]) -> np.ndarray:
    axes = a.get("axes") or list(range(len(a["starts"])))
    steps = a.get("steps") or [1] * len(axes)
    index = [slice(None)] * x.ndim
    for ax, start, end, step in zip(axes, a["starts"], a["ends"], steps, strict=True):
        index[int(ax)] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _host(node: Node, args: list[np.ndarray | None]) -> np.ndarray:
    op, a = node.op, node.attrs
    x = args[0]
    if op == "identity":
        return x
    if op == "relu":
        return np.maximum(x, np.float32(0))
    if op == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if op in ("tanh", "exp", "sqrt", "abs"):
        return getattr(np, op)(x)
    if op == "neg":
        return -x
    if op == "erf":
        return _erf(x)
    if op == "gelu":
        if a.get("approximate", "none") == "tanh":
            return 0.5 * x * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)))
        return 0.5 * x * (1 + _erf(x / np.float32(np.sqrt(2))))
    if op == "leaky_relu":
        return np.where(x >= 0, x, x * np.float32(a.get("alpha", 0.01)))
    if op == "clip":
        lo = args[1] if len(args) > 1 and args[1] is not None else a.get("min")
        hi = args[2] if len(args) > 2 and args[2] is not None else a.get("max")
        return np.clip(x, lo, hi) if lo is not None or hi is not None else x
    if op == "hardswish":
        return x * np.clip(x + 3, 0, 6) / np.float32(6)
    if op in ("add", "sub", "mul", "div", "pow"):
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power}[op]
        if op == "div" and x.dtype.kind == "i" and args[1].dtype.kind == "i":
            return np.floor_divide(x, args[1])
        return fn(x, args[1])
    if op == "softmax":
        return _softmax(x, int(a.get("axis", -1)))
    if op == "log_softmax":
        z = x - x.max(axis=int(a.get("axis", -1)), keepdims=True)
        return z - np.log(np.exp(z).sum(axis=int(a.get("axis", -1)), keepdims=True))
    if op == "layernorm":
        return _layernorm(x, *(args[1:3] + [None] * (3 - len(args))), a)
    if op == "batchnorm":
        scale, bias, mean, var = (v.reshape(1, -1, *([1] * (x.ndim - 2))) for v in args[1:5])
        return (x - mean) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5))) * scale + bias
    if op == "maxpool2d":
        return _maxpool(x, a)
    if op == "avgpool2d":
        return _avgpool(x, a)
    if op == "global_avgpool":
        return x.mean(axis=(2, 3), keepdims=True)
    if op == "flatten":
        start, end = int(a.get("start_dim", 1)) % max(x.ndim, 1), int(a.get("end_dim", -1)) % max(x.ndim, 1)
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :]) if x.ndim else x.reshape(1)
    if op == "reshape":
        shape = args[1] if len(args) > 1 and args[1] is not None else a["shape"]
        return _reshape(node, x, np.asarray(shape).reshape(-1), bool(a.get("allowzero", False)))
    if op == "transpose":
        return np.transpose(x, a.get("perm"))
    if op == "concat":
        return np.concatenate([v for v in args if v is not None], axis=int(a["axis"]))
    if op == "squeeze":
        axes = a.get("axes")
        return np.squeeze(x, axis=None if axes is None else tuple(int(i) for i in axes))
    if op == "unsqueeze":
        return np.expand_dims(x, tuple(int(i) for i in a["axes"]))
    if op == "reduce_mean":
        axes = a.get("axes")
        axes = None if axes is None else tuple(int(i) for i in axes)
        return x.mean(axis=axes, keepdims=bool(a.get("keepdims", True)))
    if op == "gather":
        return np.take(x, args[1].astype(np.int64), axis=int(a.get("axis", 0)))
    if op == "slice":
        return _slice(x, a)
    if op == "shape":
        return np.asarray(x.shape, dtype=np.int64)
    if op == "cast":
        return x.astype(np.int64 if a["to"] == "int64" else np.float32)
    raise TpegenError(f"node {node.name!r}: op {op!r} is not implemented")  # unreachable after Graph checks


def _as_tensor(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    return arr.astype(np.float32, copy=False)


def _run_node(graph: Graph, node: Node, args: list, gemm_fn: GemmFn) -> np.ndarray:
    bias = args[2] if len(args) > 2 else None
    if node.op == "linear":
        return _linear(node, args[0], args[1], bias, gemm_fn)
    if node.op == "conv2d":
        return _conv2d(node, args[0], args[1], bias, gemm_fn)
    if node.op == "matmul":
        return _matmul(node, args[0], args[1], node.inputs[1] in graph.initializers, gemm_fn)
    try:
        return _host(node, args)
    except (ValueError, IndexError) as exc:  # shapes that do not fit (broadcast, axis, index)
        raise TpegenError(f"node {node.name!r} ({node.op}): {exc}") from None


def run_graph(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    gemm_fn: GemmFn | None = None,
    *,
    capture: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` (one array per graph input); return ``{output name: array}``.

    GEMM-like nodes call ``gemm_fn`` (default :func:`default_gemm`) once per 2-D product; biases
    are added on the host afterwards. With ``capture=True`` the result also holds every GEMM-like
    node's output tensor keyed by the node's name (node names never collide with other output
    names: :class:`Graph` checks that). Every dim of an input must match ``graph.input_shapes``
    except the leading (batch) dim and dims given as None.
    """
    gemm_fn = gemm_fn or default_gemm
    env: dict[str, np.ndarray] = dict(graph.initializers)
    for name in graph.inputs:
        if name not in inputs:
            raise TpegenError(f"{graph.name}: missing input {name!r}")
        x = _as_tensor(inputs[name])
        want = graph.input_shapes.get(name)
        if want is not None:
            ok = len(want) == x.ndim and all(
                w is None or i == 0 or int(w) == d for i, (w, d) in enumerate(zip(want, x.shape, strict=True))
            )
            if not ok:
                expect = "x".join("N" if i == 0 or w is None else str(w) for i, w in enumerate(want))
                raise TpegenError(f"{graph.name}: input {name!r} has shape {x.shape}, expected {expect}")
        env[name] = x
    captured: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for node in graph.nodes:
            args = [env[i] if i else None for i in node.inputs]
            try:
                y = _as_tensor(_run_node(graph, node, args, gemm_fn))
            except TpegenError as exc:
                if str(exc).startswith("node "):  # raised by an op here, not by gemm_fn
                    raise TpegenError(f"{graph.name}: {exc}") from None
                raise
            env[node.outputs[0]] = y
            if capture and node.op in GEMM_OPS:
                captured[node.name] = y
    result = {name: env[name] for name in graph.outputs}
    result.update(captured)
    return result


def gemm_shapes(
    graph: Graph, input_shapes: Mapping[str, tuple] | None = None
) -> list[tuple[Node, list[tuple[int, int, int]]]]:
    """The (M, K, N) of every GEMM call of every GEMM-like node, in execution order.

    ``input_shapes`` defaults to ``graph.input_shapes`` with free (None) dims set to 1. Shapes
    come from running the graph on zeros with a GEMM stub that records the shapes and returns
    zeros, so every op's shape rule is the executor's own.
    """
    shapes = dict(graph.input_shapes)
    shapes.update(input_shapes or {})
    zeros = {}
    for name in graph.inputs:
        shape = tuple(1 if d is None else int(d) for d in shapes[name])
        zeros[name] = np.zeros(shape, np.float32)
    calls: dict[str, list[tuple[int, int, int]]] = {n.name: [] for n in graph.gemm_nodes}

    def record(node: Node, a: np.ndarray, w: np.ndarray, is_weight: bool) -> np.ndarray:
        calls[node.name].append((a.shape[0], a.shape[1], w.shape[1]))
        return np.zeros((a.shape[0], w.shape[1]), np.float32)

    run_graph(graph, zeros, record)
    return [(node, calls[node.name]) for node in graph.gemm_nodes]
