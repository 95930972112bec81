"""Import an ONNX model file as a :class:`~tpegen.sw.graph.Graph` (needs ``pip install 'tpegen[onnx]'``).

Mapping (ONNX op -> graph op):

* ``MatMul`` with a constant 2-D right operand -> ``linear`` (W as stored, (K, N)); ``MatMul`` of
  two computed tensors -> ``matmul``.
* ``Gemm`` (alpha, beta, transA, transB) with a constant B -> ``linear``: W = alpha * B (transposed
  when transB), bias = beta * C when C is a constant vector; otherwise ``matmul`` plus host
  ``transpose`` / ``mul`` / ``add`` nodes.
* ``Conv`` (2-D, explicit pads or ``auto_pad`` VALID/NOTSET) -> ``conv2d``.
* Host ops: see :data:`SUPPORTED_OPS`. ``Constant`` nodes are folded into initializers,
  ``Dropout`` becomes ``identity``, constant shape/axes inputs (Reshape, Squeeze, Unsqueeze,
  Slice, ReduceMean) become attributes; a Reshape whose shape is computed (Shape -> Gather ->
  Concat, as exporters write a dynamic batch) runs on the host too.

Anything else is a one-line :class:`~tpegen.errors.TpegenError` naming the node and its op type.
Exporting from PyTorch: ``torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"],
dynamic_axes={"x": {0: "batch"}})`` needs only ``onnx``; the default ``dynamo=True`` exporter also
needs ``onnxscript`` and, without ``dynamic_shapes``, bakes the example batch size into Reshapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tpegen._io import check_input_file
from tpegen.errors import TpegenError
from tpegen.sw.graph import Graph, Node, unsupported_op

__all__ = ["load_onnx", "SUPPORTED_OPS", "MAX_ONNX_BYTES"]

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit for one message

_UNARY = {
    "Identity": "identity", "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp",
    "Sqrt": "sqrt", "Neg": "neg", "Erf": "erf", "Abs": "abs", "HardSwish": "hardswish",
    "Dropout": "identity", "GlobalAveragePool": "global_avgpool", "Shape": "shape",
}  # fmt: skip
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow"}
_OTHER = (
    "MatMul", "Gemm", "Conv", "Gelu", "LeakyRelu", "Clip", "Softmax", "LogSoftmax",
    "LayerNormalization", "BatchNormalization", "MaxPool", "AveragePool", "Flatten", "Reshape",
    "Transpose", "Concat", "Squeeze", "Unsqueeze", "ReduceMean", "Gather", "Slice", "Cast", "Constant",
)  # fmt: skip
SUPPORTED_OPS = tuple(sorted((*_UNARY, *_BINARY, *_OTHER)))

_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_INT_TYPES = {2, 3, 4, 5, 6, 7, 12, 13, 9}  # (U)INT8..64, BOOL


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise TpegenError("reading ONNX models needs the onnx package: pip install 'tpegen[onnx]'") from None
    return onnx, numpy_helper


def _as_const(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    return arr.astype(np.float32)


class _Builder:
    """Accumulates graph nodes and initializers while walking the ONNX graph."""

    def __init__(self, model_name: str, opset: int):
        self.model = model_name
        self.opset = opset
        self.nodes: list[Node] = []
        self.inits: dict[str, np.ndarray] = {}
        self.names: set[str] = set()

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def add(self, name: str, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.nodes.append(Node(self.unique(name), op, list(inputs), list(outputs), attrs))

    def const(self, name: str) -> np.ndarray | None:
        return self.inits.get(name) if name else None

    def need_const(self, node_name: str, op: str, tensor: str, what: str) -> np.ndarray:
        value = self.const(tensor)
        if value is None:
            raise TpegenError(
                f"{self.model}: node {node_name!r} ({op}): {what} must be a constant; "
                "re-export the model with constant folding"
            )
        return value

    def new_const(self, base: str, value: np.ndarray) -> str:
        name, i = base, 1
        while name in self.inits:
            name, i = f"{base}_{i}", i + 1
        self.inits[name] = _as_const(value)
        return name


def _attrs(onnx, node) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pair(value, default: int) -> tuple[int, int]:
    if value is None:
        return (default, default)
    value = [int(v) for v in value]
    return (value[0], value[1]) if len(value) == 2 else (value[0], value[0])


def _pads(
    b: _Builder, name: str, op: str, at: dict[str, Any], kernel: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding; ``auto_pad`` SAME_* only with stride 1 (where the
    padding does not depend on the input size)."""
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER") and _pair(at.get("strides"), 1) == (1, 1):
        dil = _pair(at.get("dilations"), 1)
        th, tw = dil[0] * (kernel[0] - 1), dil[1] * (kernel[1] - 1)
        small = (th // 2, tw // 2)
        big = (th - small[0], tw - small[1])
        first, last = (small, big) if auto == "SAME_UPPER" else (big, small)
        return (first[0], first[1], last[0], last[1])
    if auto not in ("NOTSET", "VALID"):
        raise TpegenError(
            f"{b.model}: node {name!r} ({op}): auto_pad {auto} with a stride is not supported; "
            "export with explicit pads"
        )
    pads = [int(p) for p in at.get("pads", [0, 0, 0, 0])] if auto == "NOTSET" else [0, 0, 0, 0]
    if len(pads) != 4:
        raise TpegenError(f"{b.model}: node {name!r} ({op}): only 2-D {op} is supported")
    return (pads[0], pads[1], pads[2], pads[3])


def _convert(onnx, b: _Builder, node, index: int) -> None:
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    name = node.name or f"{node.op_type}_{index}"
    ins, outs = list(node.input), [o for o in node.output]
    at = _attrs(onnx, node)
    out = outs[0]

    def inp(i: int) -> str:
        return ins[i] if i < len(ins) else ""

    if op == "Constant":
        if "value" in at:
            value = onnx.numpy_helper.to_array(at["value"])
        elif "value_float" in at or "value_floats" in at:
            value = np.asarray(at.get("value_float", at.get("value_floats")), np.float32)
        elif "value_int" in at or "value_ints" in at:
            value = np.asarray(at.get("value_int", at.get("value_ints")), np.int64)
        else:
            raise unsupported_op(b.model, name, "Constant (sparse or string value)", SUPPORTED_OPS)
        b.inits[out] = _as_const(value)
    elif op in _UNARY:
        b.add(name, _UNARY[op], [ins[0]], [out])
    elif op in _BINARY:
        b.add(name, _BINARY[op], ins[:2], [out])
    elif op == "MatMul":
        w = b.const(ins[1])
        if w is not None and w.ndim == 2 and b.const(ins[0]) is None:
            b.add(name, "linear", [ins[0], ins[1]], [out])
        else:
            b.add(name, "matmul", ins[:2], [out])
    elif op == "Gemm":
        _gemm(b, name, ins, out, at)
    elif op == "Conv":
        w = b.need_const(name, op, ins[1], "the weight")
        if w.ndim != 4:
            raise TpegenError(f"{b.model}: node {name!r} (Conv): only 2-D convolutions are supported")
        attrs = {
            "stride": _pair(at.get("strides"), 1),
            "padding": _pads(b, name, op, at, (w.shape[2], w.shape[3])),
            "dilation": _pair(at.get("dilations"), 1),
            "groups": int(at.get("group", 1)),
        }
        b.add(name, "conv2d", ins[:3] if inp(2) else ins[:2], [out], **attrs)
    elif op == "Gelu":
        approx = at.get("approximate", b"none")
        b.add(
            name,
            "gelu",
            [ins[0]],
            [out],
            approximate=approx.decode() if isinstance(approx, bytes) else approx,
        )
    elif op == "LeakyRelu":
        b.add(name, "leaky_relu", [ins[0]], [out], alpha=float(at.get("alpha", 0.01)))
    elif op == "Clip":
        lo = b.const(inp(1)) if inp(1) else at.get("min")
        hi = b.const(inp(2)) if inp(2) else at.get("max")
        if (inp(1) and lo is None) or (inp(2) and hi is None):
            b.add(name, "clip", ins[:3], [out])
        else:
            b.add(
                name,
                "clip",
                [ins[0]],
                [out],
                min=None if lo is None else float(lo),
                max=None if hi is None else float(hi),
            )
    elif op in ("Softmax", "LogSoftmax"):
        axis = int(at.get("axis", -1 if b.opset >= 13 else 1))
        b.add(name, "softmax" if op == "Softmax" else "log_softmax", [ins[0]], [out], axis=axis)
    elif op == "LayerNormalization":
        b.add(
            name,
            "layernorm",
            ins[:3],
            [out],
            axis=int(at.get("axis", -1)),
            epsilon=float(at.get("epsilon", 1e-5)),
        )
    elif op == "BatchNormalization":
        for i, what in enumerate(("scale", "bias", "mean", "var"), 1):
            b.need_const(name, op, ins[i], f"the {what}")
        b.add(name, "batchnorm", ins[:5], [out], epsilon=float(at.get("epsilon", 1e-5)))
    elif op in ("MaxPool", "AveragePool"):
        kernel = [int(k) for k in at["kernel_shape"]]
        if len(kernel) != 2:
            raise TpegenError(f"{b.model}: node {name!r} ({op}): only 2-D pooling is supported")
        attrs = {
            "kernel": (kernel[0], kernel[1]),
            "stride": _pair(at.get("strides"), 1),
            "padding": _pads(b, name, op, at, (kernel[0], kernel[1])),
            "ceil_mode": bool(at.get("ceil_mode", 0)),
        }
        if op == "MaxPool":
            b.add(name, "maxpool2d", [ins[0]], [out], dilation=_pair(at.get("dilations"), 1), **attrs)
        else:
            count = bool(at.get("count_include_pad", 0))
            b.add(name, "avgpool2d", [ins[0]], [out], count_include_pad=count, **attrs)
    elif op == "Flatten":
        axis = int(at.get("axis", 1))
        if axis == 0:
            b.add(name, "reshape", [ins[0]], [out], shape=(1, -1))
        elif axis == 1:
            b.add(name, "flatten", [ins[0]], [out], start_dim=1, end_dim=-1)
        else:
            mid = f"{out}::inner"
            b.add(name, "flatten", [ins[0]], [mid], start_dim=axis, end_dim=-1)
            b.add(f"{name}/outer", "flatten", [mid], [out], start_dim=0, end_dim=axis - 1 if axis > 0 else -2)
    elif op == "Reshape":
        allowzero = bool(int(at.get("allowzero", 0)))
        shape = b.const(ins[1])
        if shape is not None:
            b.add(
                name,
                "reshape",
                [ins[0]],
                [out],
                shape=tuple(int(s) for s in shape.reshape(-1)),
                allowzero=allowzero,
            )
        else:
            b.add(name, "reshape", ins[:2], [out], allowzero=allowzero)
    elif op == "Transpose":
        perm = at.get("perm")
        b.add(name, "transpose", [ins[0]], [out], perm=None if perm is None else tuple(int(p) for p in perm))
    elif op == "Concat":
        b.add(name, "concat", ins, [out], axis=int(at["axis"]))
    elif op in ("Squeeze", "Unsqueeze", "ReduceMean"):
        axes = at.get("axes")
        if inp(1):
            axes = b.need_const(name, op, ins[1], "the axes")
        axes = None if axes is None else tuple(int(a) for a in np.asarray(axes).reshape(-1))
        if op == "ReduceMean":
            if axes is None and int(at.get("noop_with_empty_axes", 0)):
                b.add(name, "identity", [ins[0]], [out])
            else:
                b.add(name, "reduce_mean", [ins[0]], [out], axes=axes, keepdims=bool(at.get("keepdims", 1)))
        else:
            b.add(name, op.lower(), [ins[0]], [out], axes=axes)
    elif op == "Gather":
        b.add(name, "gather", ins[:2], [out], axis=int(at.get("axis", 0)))
    elif op == "Slice":
        if b.opset >= 10:
            starts, ends = (b.need_const(name, op, ins[i], w) for i, w in ((1, "starts"), (2, "ends")))
            axes = b.need_const(name, op, ins[3], "axes") if inp(3) else None
            steps = b.need_const(name, op, ins[4], "steps") if inp(4) else None
        else:
            starts, ends, axes, steps = at["starts"], at["ends"], at.get("axes"), None

        def ints(v):
            return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]

        b.add(
            name,
            "slice",
            [ins[0]],
            [out],
            starts=ints(starts),
            ends=ints(ends),
            axes=ints(axes),
            steps=ints(steps),
        )
    elif op == "Cast":
        to = int(at["to"])
        if to in _FLOAT_TYPES:
            b.add(name, "cast", [ins[0]], [out], to="float32")
        elif to in _INT_TYPES:
            b.add(name, "cast", [ins[0]], [out], to="int64")
        else:
            raise TpegenError(f"{b.model}: node {name!r} (Cast): cast to ONNX type {to} is not supported")
    else:
        raise unsupported_op(b.model, name, op, SUPPORTED_OPS)


def _gemm(b: _Builder, name: str, ins: list[str], out: str, at: dict[str, Any]) -> None:
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    trans_a, trans_b = int(at.get("transA", 0)), int(at.get("transB", 0))
    a = ins[0]
    if trans_a:
        a = f"{out}::aT"
        b.add(f"{name}/transA", "transpose", [ins[0]], [a], perm=(1, 0))
    w = b.const(ins[1])
    c_name = ins[2] if len(ins) > 2 else ""
    c = b.const(c_name)
    y = out if not c_name else f"{out}::ab"
    if w is not None:
        w = (w.T if trans_b else w) * np.float32(alpha)
        wname = ins[1] if not trans_b and alpha == 1.0 else b.new_const(f"{ins[1]}::gemm", w)
        if c is not None and c.size == w.shape[1] and (c.ndim == 1 or (c.ndim == 2 and c.shape[0] == 1)):
            bname = b.new_const(f"{c_name}::bias", c.reshape(-1) * np.float32(beta))
            b.add(name, "linear", [a, wname, bname], [out])
            return
        b.add(name, "linear", [a, wname], [y])
    else:
        wt = ins[1]
        if trans_b:
            wt = f"{out}::bT"
            b.add(f"{name}/transB", "transpose", [ins[1]], [wt], perm=(1, 0))
        ab = y if alpha == 1.0 else f"{out}::ab0"
        b.add(name, "matmul", [a, wt], [ab])
        if alpha != 1.0:
            b.add(f"{name}/alpha", "mul", [ab, b.new_const(f"{name}::alpha", np.float32(alpha))], [y])
    if c_name:
        cc = c_name
        if beta != 1.0:
            cc = f"{out}::c"
            b.add(f"{name}/beta", "mul", [c_name, b.new_const(f"{name}::beta", np.float32(beta))], [cc])
        b.add(f"{name}/bias", "add", [y, cc], [out])


def load_onnx(path: str | Path) -> Graph:
    """Read the ONNX model at ``path`` and return it as a :class:`~tpegen.sw.graph.Graph`."""
    onnx, numpy_helper = _import_onnx()
    p, _ = check_input_file(path, "ONNX model", limit=MAX_ONNX_BYTES)
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # protobuf DecodeError and friends
        raise TpegenError(f"{p}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    b = _Builder(p.name, opset)
    g = model.graph
    for init in g.initializer:
        b.inits[init.name] = _as_const(numpy_helper.to_array(init))
    inputs, shapes = [], {}
    for vi in g.input:
        if vi.name in b.inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        inputs.append(vi.name)
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    for i, node in enumerate(g.node):
        _convert(onnx, b, node, i)
    outputs = [o.name for o in g.output]
    for o in outputs:  # an output that is a constant still needs a node
        if o in b.inits and not any(o in n.outputs for n in b.nodes):
            b.add(f"{o}/const", "identity", [b.new_const(f"{o}::value", b.inits.pop(o))], [o])
    used = {t for n in b.nodes for t in n.inputs}
    inits = {k: v for k, v in b.inits.items() if k in used}
    for node in b.nodes:  # keep node names apart from other outputs' names (capture keys)
        if node.name in outputs and node.outputs[0] != node.name:
            node.name = b.unique(f"{node.name}/node")
    return Graph(p.stem, inputs, shapes, outputs, inits, b.nodes)
