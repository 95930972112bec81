"""Import PyTorch models via ``torch.export`` (needs ``pip install 'tpegen[torch]'``).

* :func:`load_pt2` reads a ``.pt2`` file written by ``torch.export.save(torch.export.export(model,
  (x,)), path)``;
* :func:`from_module` exports an ``nn.Module`` with example inputs itself.

The exported ATen graph (not decomposed further) maps onto :class:`~tpegen.sw.graph.Graph` ops:
``aten.linear`` -> ``linear`` (weight transposed to (K, N)), ``aten.conv2d`` / ``convolution`` ->
``conv2d``, ``aten.matmul`` / ``mm`` / ``bmm`` -> ``matmul`` (or ``linear`` when the right operand is
a 2-D parameter), and the host ops listed in :data:`SUPPORTED_OPS`. Parameters, buffers and
lifted constants become initializers. A ``view`` / ``reshape`` whose size is symbolic (an export
with a dynamic batch, ``dynamic_shapes={"x": {0: torch.export.Dim("batch")}}``) keeps that dim
free; a static export fixes the batch size wherever the model reshapes with ``x.size(0)``.
Anything else is a one-line :class:`~tpegen.errors.TpegenError` naming the node and its op.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tpegen._io import check_input_file
from tpegen.errors import TpegenError
from tpegen.sw.graph import Graph, Node, unsupported_op

__all__ = ["load_pt2", "from_module", "SUPPORTED_OPS", "MAX_PT2_BYTES"]

MAX_PT2_BYTES = 4 << 30

_UNARY = {
    "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "sqrt": "sqrt",
    "neg": "neg", "erf": "erf", "abs": "abs", "hardswish": "hardswish", "hardswish_": "hardswish",
    "dropout": "identity", "contiguous": "identity", "clone": "identity", "alias": "identity",
    "detach": "identity", "_to_copy": "identity", "to": "identity",
}  # fmt: skip
_BINARY = {"add": "add", "add_": "add", "sub": "sub", "mul": "mul", "mul_": "mul", "div": "div", "pow": "pow"}
_OTHER = (
    "linear", "conv2d", "convolution", "matmul", "mm", "bmm", "gelu", "leaky_relu", "hardtanh", "relu6",
    "clamp", "softmax", "_softmax", "log_softmax", "_log_softmax", "layer_norm", "batch_norm",
    "_native_batch_norm_legit_no_training", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d",
    "adaptive_avg_pool2d", "flatten", "view", "reshape", "_unsafe_view", "permute", "transpose", "t",
    "cat", "squeeze", "unsqueeze", "mean", "embedding", "select", "slice",
)  # fmt: skip
SUPPORTED_OPS = tuple(sorted({*_UNARY, *_BINARY, *_OTHER}))
_SKIP = {"sym_size", "_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}


def _import_torch():
    try:
        import torch
    except ImportError:
        raise TpegenError("importing PyTorch models needs torch: pip install 'tpegen[torch]'") from None
    return torch


def _ints(value: Any, n: int = 2) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _shape_of(node) -> tuple | None:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    shape = getattr(val, "shape", None)
    if shape is None:
        return None
    return tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in shape)


class _Converter:
    """Walks an ``ExportedProgram``'s graph and emits graph nodes."""

    def __init__(self, torch, model: str, ep):
        self.torch, self.model, self.ep = torch, model, ep
        self.nodes: list[Node] = []
        self.inits: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}  # fx node name -> tensor name (getitem, no-op)

    # -- helpers ---------------------------------------------------------------------------
    def fail(self, node, why: str) -> TpegenError:
        return TpegenError(f"{self.model}: node {node.name!r} ({self.opname(node)}): {why}")

    @staticmethod
    def opname(node) -> str:
        target = node.target
        packet = getattr(target, "_overloadpacket", None)
        if packet is not None:
            return packet.__name__
        return getattr(target, "__name__", str(target))

    def ref(self, arg) -> str:
        name = arg.name
        return self.alias.get(name, name)

    def const(self, base: str, value: Any) -> str:
        name, i = base, 1
        while name in self.inits:
            name, i = f"{base}_{i}", i + 1
        arr = np.asarray(value)
        self.inits[name] = arr.astype(np.int64) if arr.dtype.kind in "iub" else arr.astype(np.float32)
        return name

    def tensor(self, node, arg, what: str = "operand") -> str:
        """The tensor name of an argument: an fx node or a Python scalar (made a constant)."""
        if hasattr(arg, "name") and hasattr(arg, "op"):
            return self.ref(arg)
        if isinstance(arg, (int, float, bool)):
            return self.const(f"{node.name}::{what}", np.float32(arg))
        raise self.fail(node, f"unsupported {what} {arg!r}")

    def param(self, node, arg, what: str) -> np.ndarray:
        name = self.ref(arg) if hasattr(arg, "name") else None
        if name is None or name not in self.inits:
            raise self.fail(node, f"the {what} must be a parameter or constant")
        return self.inits[name]

    def emit(self, node, op: str, inputs: list[str], **attrs: Any) -> None:
        self.nodes.append(Node(node.name, op, inputs, [node.name], attrs))

    # -- conversion ------------------------------------------------------------------------
    def placeholders(self) -> tuple[list[str], dict[str, tuple]]:
        sig = self.ep.graph_signature
        lifted = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
        lifted.update(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
        inputs, shapes = [], {}
        for node in self.ep.graph.nodes:
            if node.op != "placeholder":
                continue
            if node.name in lifted:
                key = lifted[node.name]
                value = self.ep.state_dict.get(key)
                if value is None:
                    value = self.ep.constants[key]
                arr = value.detach().cpu()
                arr = arr.float().numpy() if arr.is_floating_point() else arr.numpy().astype(np.int64)
                self.inits[node.name] = arr
            else:
                inputs.append(node.name)
                shapes[node.name] = _shape_of(node) or ()
        return inputs, shapes

    def convert(self, node) -> None:
        op = self.opname(node)
        args, kw = list(node.args), dict(node.kwargs)

        def arg(i: int, key: str, default: Any = None) -> Any:
            if i < len(args):
                return args[i]
            return kw.get(key, default)

        if node.target is operator.getitem:
            src, index = args
            if index != 0:
                raise self.fail(node, "only the first output of a multi-output op is supported")
            self.alias[node.name] = self.ref(src)
            return
        if op in _SKIP or (not node.users and op.startswith("_assert")):
            return
        if op in _UNARY:
            self.emit(node, _UNARY[op], [self.ref(args[0])])
        elif op in _BINARY:
            a, b = self.tensor(node, args[0], "lhs"), self.tensor(node, args[1], "rhs")
            alpha = kw.get("alpha", 1)
            if alpha != 1:
                raise self.fail(node, "alpha != 1 is not supported")
            if op == "div" and kw.get("rounding_mode") is not None:
                raise self.fail(node, f"rounding_mode {kw['rounding_mode']!r} is not supported")
            self.emit(node, _BINARY[op], [a, b])
        elif op == "linear":
            w = self.param(node, args[1], "weight")
            wname = self.const(f"{self.ref(args[1])}::T", w.T)
            bias = arg(2, "bias")
            self.emit(
                node, "linear", [self.ref(args[0]), wname] + ([self.ref(bias)] if bias is not None else [])
            )
        elif op in ("conv2d", "convolution"):
            self.conv(node, op, arg)
        elif op in ("matmul", "mm", "bmm"):
            b = self.ref(args[1])
            if b in self.inits and self.inits[b].ndim == 2 and self.ref(args[0]) not in self.inits:
                self.emit(node, "linear", [self.ref(args[0]), b])
            else:
                self.emit(node, "matmul", [self.ref(args[0]), b])
        elif op == "gelu":
            self.emit(node, "gelu", [self.ref(args[0])], approximate=str(arg(1, "approximate", "none")))
        elif op == "leaky_relu":
            self.emit(node, "leaky_relu", [self.ref(args[0])], alpha=float(arg(1, "negative_slope", 0.01)))
        elif op in ("hardtanh", "relu6", "clamp"):
            if op == "relu6":
                lo, hi = 0.0, 6.0
            elif op == "hardtanh":
                lo, hi = arg(1, "min_val", -1.0), arg(2, "max_val", 1.0)
            else:
                lo, hi = arg(1, "min"), arg(2, "max")
            if any(hasattr(v, "op") for v in (lo, hi)):
                raise self.fail(node, "tensor bounds are not supported")
            self.emit(node, "clip", [self.ref(args[0])], min=lo, max=hi)
        elif op in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
            kind = "log_softmax" if "log" in op else "softmax"
            self.emit(node, kind, [self.ref(args[0])], axis=int(arg(1, "dim")))
        elif op == "layer_norm":
            shape = _ints(arg(1, "normalized_shape"), 1)
            w, b = arg(2, "weight"), arg(3, "bias")
            ins = [
                self.ref(args[0]),
                self.ref(w) if w is not None else "",
                self.ref(b) if b is not None else "",
            ]
            self.emit(node, "layernorm", ins, axis=-len(shape), epsilon=float(arg(4, "eps", 1e-5)))
        elif op in ("batch_norm", "_native_batch_norm_legit_no_training"):
            self.batchnorm(node, op, arg)
        elif op in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
            self.pool(node, op, arg)
        elif op == "adaptive_avg_pool2d":
            self.adaptive_pool(node, arg)
        elif op == "flatten":
            self.emit(
                node,
                "flatten",
                [self.ref(args[0])],
                start_dim=int(arg(1, "start_dim", 0)),
                end_dim=int(arg(2, "end_dim", -1)),
            )
        elif op in ("view", "reshape", "_unsafe_view"):
            self.emit(node, "reshape", [self.ref(args[0])], shape=self.reshape_target(node, args[0], args[1]))
        elif op == "permute":
            self.emit(node, "transpose", [self.ref(args[0])], perm=tuple(int(d) for d in args[1]))
        elif op in ("transpose", "t"):
            rank = len(_shape_of(args[0]) or ())
            d0, d1 = (0, 1) if op == "t" else (int(args[1]) % rank, int(args[2]) % rank)
            perm = list(range(rank))
            perm[d0], perm[d1] = perm[d1], perm[d0]
            self.emit(node, "transpose", [self.ref(args[0])], perm=tuple(perm))
        elif op == "cat":
            self.emit(node, "concat", [self.ref(t) for t in args[0]], axis=int(arg(1, "dim", 0)))
        elif op in ("squeeze", "unsqueeze"):
            dims = arg(1, "dim")
            axes = None if dims is None else _ints(dims, 1)
            self.emit(node, op, [self.ref(args[0])], axes=axes)
        elif op == "mean":
            dims = arg(1, "dim")
            axes = None if dims is None else _ints(dims, 1)
            self.emit(
                node, "reduce_mean", [self.ref(args[0])], axes=axes, keepdims=bool(arg(2, "keepdim", False))
            )
        elif op == "embedding":
            self.emit(node, "gather", [self.ref(args[0]), self.ref(args[1])], axis=0)
        elif op == "select":
            idx = self.const(f"{node.name}::index", np.int64(arg(2, "index")))
            self.emit(node, "gather", [self.ref(args[0]), idx], axis=int(arg(1, "dim")))
        elif op == "slice":
            start, end = arg(2, "start"), arg(3, "end")
            start = 0 if start is None else int(start)
            end = np.iinfo(np.int64).max if end is None else int(end)
            self.emit(
                node,
                "slice",
                [self.ref(args[0])],
                starts=[start],
                ends=[end],
                axes=[int(arg(1, "dim", 0))],
                steps=[int(arg(4, "step", 1))],
            )
        else:
            raise unsupported_op(self.model, node.name, f"aten.{op}", SUPPORTED_OPS)

    def conv(self, node, op: str, arg) -> None:
        w = self.param(node, arg(1, "weight"), "weight")
        if w.ndim != 4:
            raise self.fail(node, "only 2-D convolutions are supported")
        if op == "convolution" and (arg(6, "transposed", False)):
            raise self.fail(node, "transposed convolutions are not supported")
        groups_at = 8 if op == "convolution" else 6
        stride = _ints(arg(3, "stride", 1))
        padding = arg(4, "padding", 0)
        dilation = _ints(arg(5, "dilation", 1))
        kh, kw = w.shape[2:]
        if padding == "valid":
            padding = (0, 0)
        if padding == "same":
            th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        else:
            ph, pw = _ints(padding)
            pads = (ph, pw, ph, pw)
        bias = arg(2, "bias")
        ins = [self.ref(arg(0, "input")), self.ref(arg(1, "weight"))] + (
            [self.ref(bias)] if bias is not None else []
        )
        groups = int(arg(groups_at, "groups", 1))
        self.emit(node, "conv2d", ins, stride=stride, padding=pads, dilation=dilation, groups=groups)

    def batchnorm(self, node, op: str, arg) -> None:
        mean = self.param(node, arg(3, "running_mean"), "running mean")
        if op == "batch_norm" and arg(5, "training", False):
            raise self.fail(node, "training-mode batch norm; export the model in eval() mode")
        eps = float(arg(7, "eps", 1e-5)) if op == "batch_norm" else float(arg(6, "eps", 1e-5))
        w, b = arg(1, "weight"), arg(2, "bias")
        c = mean.shape[0]
        wname = self.ref(w) if w is not None else self.const(f"{node.name}::scale", np.ones(c))
        bname = self.ref(b) if b is not None else self.const(f"{node.name}::bias", np.zeros(c))
        ins = [
            self.ref(arg(0, "input")),
            wname,
            bname,
            self.ref(arg(3, "running_mean")),
            self.ref(arg(4, "running_var")),
        ]
        self.emit(node, "batchnorm", ins, epsilon=eps)

    def pool(self, node, op: str, arg) -> None:
        kernel = _ints(arg(1, "kernel_size"))
        stride = arg(2, "stride", None)
        stride = kernel if not stride else _ints(stride)
        ph, pw = _ints(arg(3, "padding", 0))
        attrs = {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw)}
        if op == "avg_pool2d":
            if arg(6, "divisor_override") is not None:
                raise self.fail(node, "divisor_override is not supported")
            attrs.update(
                ceil_mode=bool(arg(4, "ceil_mode", False)),
                count_include_pad=bool(arg(5, "count_include_pad", True)),
            )
            self.emit(node, "avgpool2d", [self.ref(arg(0, "input"))], **attrs)
        else:
            attrs.update(dilation=_ints(arg(4, "dilation", 1)), ceil_mode=bool(arg(5, "ceil_mode", False)))
            self.emit(node, "maxpool2d", [self.ref(arg(0, "input"))], **attrs)

    def adaptive_pool(self, node, arg) -> None:
        out = _ints(arg(1, "output_size"))
        shape = _shape_of(arg(0, "input")) or ()
        if out == (1, 1):
            self.emit(node, "global_avgpool", [self.ref(arg(0, "input"))])
            return
        if len(shape) != 4 or None in shape[2:] or shape[2] % out[0] or shape[3] % out[1]:
            raise self.fail(node, f"output size {out} must divide the input size {shape[2:]}")
        k = (shape[2] // out[0], shape[3] // out[1])
        self.emit(node, "avgpool2d", [self.ref(arg(0, "input"))], kernel=k, stride=k, padding=(0, 0, 0, 0))

    def reshape_target(self, node, src, size: Sequence[Any]) -> tuple[int, ...]:
        """Concrete ints stay; a symbolic size equal to the input's dim at that position becomes 0
        (copy), any other symbolic size -1 (inferred) -- at most one of those."""
        in_shape = getattr(src.meta.get("val"), "shape", ())
        out: list[int] = []
        for i, s in enumerate(size):
            if isinstance(s, int):
                out.append(s)
                continue
            sym = str(s.meta.get("val")) if hasattr(s, "meta") else str(s)
            out.append(0 if i < len(in_shape) and str(in_shape[i]) == sym else -1)
        if out.count(-1) > 1:
            raise self.fail(node, f"cannot express the symbolic size {list(size)} with one inferred dim")
        return tuple(out)


def _convert_program(torch, ep, model: str) -> Graph:
    conv = _Converter(torch, model, ep)
    inputs, shapes = conv.placeholders()
    outputs: list[str] = []
    for node in ep.graph.nodes:
        if node.op == "call_function":
            conv.convert(node)
        elif node.op == "output":
            flat, _ = torch.utils._pytree.tree_flatten(node.args[0])
            for o in flat:
                if not hasattr(o, "name"):
                    raise TpegenError(f"{model}: the model returns a non-tensor output {o!r}")
                outputs.append(conv.ref(o))
        elif node.op not in ("placeholder", "get_attr"):
            raise unsupported_op(model, node.name, node.op, SUPPORTED_OPS)
    for o in list(outputs):  # an output that is an input or constant still needs a node
        if o in conv.inits or o in inputs:
            alias = f"{o}::out"
            conv.nodes.append(Node(alias, "identity", [o], [alias]))
            outputs[outputs.index(o)] = alias
    used = {t for n in conv.nodes for t in n.inputs}
    inits = {k: v for k, v in conv.inits.items() if k in used}
    return Graph(model, inputs, shapes, outputs, inits, conv.nodes)


def load_pt2(path: str | Path) -> Graph:
    """Read a ``torch.export.save``-d program (``.pt2``) and return it as a Graph."""
    torch = _import_torch()
    p, _ = check_input_file(path, "PyTorch program", limit=MAX_PT2_BYTES)
    try:
        ep = torch.export.load(str(p))
    except Exception as exc:  # zip, pickle-free deserialization and version errors
        raise TpegenError(f"{p}: not a readable torch.export program ({type(exc).__name__}: {exc})") from None
    return _convert_program(torch, ep, p.stem)


def from_module(
    module: Any, example_inputs: Sequence[Any], *, dynamic_shapes: Any = None, name: str | None = None
) -> Graph:
    """Export ``module`` (in eval mode) with ``torch.export.export`` and return it as a Graph.

    ``example_inputs`` is the tuple of positional inputs; ``dynamic_shapes`` is passed through
    (e.g. ``{"x": {0: torch.export.Dim("batch")}}`` to keep the batch size free)."""
    torch = _import_torch()
    module.eval()
    with torch.no_grad():
        ep = torch.export.export(module, tuple(example_inputs), dynamic_shapes=dynamic_shapes)
    return _convert_program(torch, ep, name or type(module).__name__)
