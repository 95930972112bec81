"""GPTQ weight quantization (tpegen.sw.gptq) against round to nearest, and map_model(weight_method="gptq").
Fast, no RTL."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.errors import ConfigError
from tpegen.sw.gptq import CalibratedWeights, gptq_quantize_weight, hessian
from tpegen.sw.quant import k_groups, operand_ranges, parse_scheme, quantize_weight

K, N, S = 96, 24, 400
CASES = {
    "W4A8 channel": ("W4A8", {}),
    "W4A8 g32": ("W4A8", {"group": 32}),
    "W3A8 g40 (ragged)": ("W3A8", {"group": 40}),
    "W2A8 g32 asym": ("W2A8", {"group": 32, "symmetric": False}),
    "W4A8 tensor": ("W4A8", {"granularity": "tensor"}),
    "W1.58A8": ("W1.58A8", {}),
    "W1A8": ("W1A8", {}),
}


def _layer(seed: int = 0, fresh: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weights (K, N) and strongly correlated inputs (S, K): a few latent factors mixed into K
    features, plus noise and per-feature offsets. ``fresh`` draws other inputs of the same layer."""
    rng = np.random.default_rng(seed)
    mix, offset = rng.standard_normal((8, K)), rng.standard_normal(K)
    w = rng.standard_normal((K, N)) * rng.uniform(0.2, 2.0, N)
    if fresh is not None:
        rng = np.random.default_rng(fresh)
    x = rng.standard_normal((S, 8)) @ mix + 0.2 * rng.standard_normal((S, K)) + offset
    return w.astype(np.float32), x.astype(np.float32)


def _out_err(x: np.ndarray, w: np.ndarray, wq: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(np.linalg.norm(x @ (w.astype(np.float64) - wq)))


@pytest.mark.parametrize("case", CASES)
def test_gptq_has_lower_output_error_than_rtn(case):
    fmt, kw = CASES[case]
    scheme = parse_scheme(fmt, **kw)
    w, x = _layer()
    _, x_new = _layer(fresh=99)  # held-out inputs of the same layer
    rtn = quantize_weight(w, scheme).dequantize()
    gptq = gptq_quantize_weight(w, hessian(x), scheme).dequantize()
    assert _out_err(x, w, gptq) < 0.9 * _out_err(x, w, rtn)
    assert _out_err(x_new, w, gptq) < _out_err(x_new, w, rtn)


@pytest.mark.parametrize("case", CASES)
def test_gptq_codes_scales_and_groups_have_the_quant_weight_layout(case):
    fmt, kw = CASES[case]
    scheme = parse_scheme(fmt, **kw)
    w, x = _layer(1)
    qw = gptq_quantize_weight(w, hessian(x), scheme)
    (_, _), (w_lo, w_hi) = operand_ranges(scheme)
    assert qw.q.shape == (K, N) and qw.q.dtype == np.int64
    assert w_lo <= qw.q.min() and qw.q.max() <= w_hi
    groups = k_groups(K, qw.group_size)
    assert qw.scale.shape == qw.zero.shape == (len(groups), N)
    assert qw.scale.dtype == np.float32 and np.all(qw.scale > 0)
    if scheme.symmetric:
        assert not np.any(qw.zero)
    if scheme.granularity == "group":
        assert qw.group_size == kw["group"]
    else:
        assert qw.group_size == K
    if scheme.granularity == "tensor":
        assert np.all(qw.scale == qw.scale[0, 0])
    again = gptq_quantize_weight(w, hessian(x), scheme)
    assert np.array_equal(again.q, qw.q) and np.array_equal(again.scale, qw.scale)


def test_uncorrelated_inputs_reduce_gptq_to_round_to_nearest():
    """With H a multiple of the identity there is nothing to compensate: the codes are RTN's."""
    w, _ = _layer(2)
    for fmt, kw in CASES.values():
        scheme = parse_scheme(fmt, **kw)
        qw = gptq_quantize_weight(w, 3.0 * np.eye(K), scheme)
        ref = quantize_weight(w, scheme)
        assert np.array_equal(qw.q, ref.q) and np.array_equal(qw.scale, ref.scale)


def test_gptq_error_feedback_matches_the_row_by_row_update():
    """Lazy blocks change nothing: block size 1 (update every row at once) gives the same codes."""
    w, x = _layer(3)
    scheme = parse_scheme("W4A8")
    blocked = gptq_quantize_weight(w, hessian(x), scheme, block_size=32)
    single = gptq_quantize_weight(w, hessian(x), scheme, block_size=1)
    assert np.mean(blocked.q == single.q) > 0.999


def test_calibrated_weights_accumulate_batches_and_reject_float_formats():
    w, x = _layer(4)
    scheme = parse_scheme("W4A8", group=32)
    cw = CalibratedWeights(scheme)
    cw.record("fc", x[:150], w)
    cw.record("fc", x[150:], w)
    whole = gptq_quantize_weight(w, hessian(x), scheme)
    got = cw.quantize("fc", w)
    assert np.array_equal(got.q, whole.q)
    assert cw.quantize("fc", w) is got  # cached
    with pytest.raises(ConfigError, match="calibration"):
        cw.quantize("fc", w + 1)
    with pytest.raises(ConfigError, match="--weights"):
        CalibratedWeights(parse_scheme("BF16"))
    with pytest.raises(ConfigError, match="Hessian"):
        gptq_quantize_weight(w, np.eye(K + 1), scheme)


def test_map_model_with_gptq_weights():
    from tpegen.sw.mapper import map_model

    rtn = map_model("digits_mlp", "int8_os_16x16", "W2A8", backend="golden")
    gptq = map_model("digits_mlp", "int8_os_16x16", "W2A8", backend="golden", weight_method="gptq")
    assert [r.name for r in gptq.layers] == [r.name for r in rtn.layers]
    assert [r.cycles for r in gptq.layers] == [r.cycles for r in rtn.layers]
    assert gptq.output_cosine > rtn.output_cosine
    assert gptq.accuracy["mapped"] > rtn.accuracy["mapped"]
    with pytest.raises(ConfigError, match="--weights"):
        map_model("digits_mlp", "int8_os_16x16", "W4A8", backend="golden", weight_method="awq")
