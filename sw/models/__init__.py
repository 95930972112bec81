"""Built-in models that ship with tpegen: small networks trained offline on scikit-learn's bundled
``load_digits`` (8x8 grey-level images of the digits 0-9, 1797 samples).

Each ``<name>.npz`` holds the trained float32 weights in :class:`~tpegen.sw.graph.Graph` layout
(linear weights (K, N), conv weights (Cout, Cin, kh, kw)) and the held-out test split:
``x_test`` (N, 1, 8, 8) float32 in [0, 1] (pixel / 16) and ``y_test`` (N,) int64. The graphs
are defined here; the weights come from :mod:`tpegen.sw.models.train_digits` (needs torch and
scikit-learn; run once, offline). Loading needs only numpy.

Models (input ``x``: (N, 1, 8, 8), output ``logits``: (N, 10)):

* ``digits_cnn`` (default): conv3x3 1->8 (pad 1), relu, conv3x3 8->16 (pad 1), relu, maxpool 2,
  flatten, linear 256->32, relu, linear 32->10.
* ``digits_mlp``: flatten, linear 64->64, relu, linear 64->32, relu, linear 32->10.

Optional models (:func:`optional_models`, :func:`load_optional`) need an optional extra and do
not ship: ``minilm`` (:mod:`tpegen.sw.models.minilm`, sentence embeddings from token ids; no
labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.sw.graph import Graph, Node

__all__ = ["builtin_models", "load_builtin", "optional_models", "load_optional", "build_graph", "DATA_DIR"]

DATA_DIR = Path(__file__).resolve().parent


def _cnn_nodes() -> list[Node]:
    pad = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    return [
        Node("conv1", "conv2d", ["x", "conv1.weight", "conv1.bias"], ["conv1"], dict(pad)),
        Node("relu1", "relu", ["conv1"], ["relu1"]),
        Node("conv2", "conv2d", ["relu1", "conv2.weight", "conv2.bias"], ["conv2"], dict(pad)),
        Node("relu2", "relu", ["conv2"], ["relu2"]),
        Node("pool", "maxpool2d", ["relu2"], ["pool"], {"kernel": (2, 2), "stride": (2, 2)}),
        Node("flatten", "flatten", ["pool"], ["flatten"], {"start_dim": 1, "end_dim": -1}),
        Node("fc1", "linear", ["flatten", "fc1.weight", "fc1.bias"], ["fc1"]),
        Node("relu3", "relu", ["fc1"], ["relu3"]),
        Node("fc2", "linear", ["relu3", "fc2.weight", "fc2.bias"], ["logits"]),
    ]


def _mlp_nodes() -> list[Node]:
    return [
        Node("flatten", "flatten", ["x"], ["flatten"], {"start_dim": 1, "end_dim": -1}),
        Node("fc1", "linear", ["flatten", "fc1.weight", "fc1.bias"], ["fc1"]),
        Node("relu1", "relu", ["fc1"], ["relu1"]),
        Node("fc2", "linear", ["relu1", "fc2.weight", "fc2.bias"], ["fc2"]),
        Node("relu2", "relu", ["fc2"], ["relu2"]),
        Node("fc3", "linear", ["relu2", "fc3.weight", "fc3.bias"], ["logits"]),
    ]


_MODELS = {"digits_cnn": _cnn_nodes, "digits_mlp": _mlp_nodes}  # default first


def builtin_models() -> list[str]:
    """The names of the built-in models, the default first."""
    return list(_MODELS)


def build_graph(name: str, weights: dict[str, np.ndarray]) -> Graph:
    """The graph of built-in model ``name`` with the given weights (name -> array, Graph layout)."""
    nodes = _MODELS[name]()
    computed = {"x"} | {o for n in nodes for o in n.outputs}
    used = {i for n in nodes for i in n.inputs if i and i not in computed}
    missing = sorted(used - set(weights))
    if missing:
        raise TpegenError(f"{name}: the weights lack {', '.join(missing)}")
    inits = {k: np.asarray(weights[k], dtype=np.float32) for k in sorted(used)}
    return Graph(name, ["x"], {"x": (None, 1, 8, 8)}, ["logits"], inits, nodes)


def load_builtin(name: str) -> tuple[Graph, np.ndarray, np.ndarray]:
    """``(graph, x_test, y_test)`` of built-in model ``name`` (see :func:`builtin_models`)."""
    if name not in _MODELS:
        raise ConfigError("model", "one of " + ", ".join(_MODELS), name)
    path = DATA_DIR / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except OSError as exc:
        raise TpegenError(f"{path}: cannot read the built-in model ({exc})") from None
    x_test = arrays.pop("x_test").astype(np.float32)
    y_test = arrays.pop("y_test").astype(np.int64)
    return build_graph(name, arrays), x_test, y_test


_OPTIONAL = ("minilm",)


def optional_models() -> list[str]:
    """Models that need an optional extra (not shipped): each module tells how to install it."""
    return list(_OPTIONAL)


def load_optional(name: str) -> tuple[Graph, np.ndarray, np.ndarray | None]:
    """``(graph, default inputs, labels or None)`` of optional model ``name``; a one-line
    :class:`~tpegen.errors.TpegenError` names the install command when its extra is missing."""
    if name not in _OPTIONAL:
        raise ConfigError("model", "one of " + ", ".join(_OPTIONAL), name)
    from tpegen.sw.models import minilm

    return minilm.load_model()
