"""Issue #11's chain criterion: a two-layer int8 MLP (GEMM -> requantize + ReLU -> GEMM) runs from
one compiled program on the RTL; every byte of host memory equals the golden ISA simulator's and
the system simulator's cycle count equals the RTL's."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.sim.requant import quantize_multiplier, requantize
from tpegen.sim.system_timing import MemoryTiming
from tpegen.sw.compiler import Layer, Requant, compile_mlp
from tpegen.sw.runtime import run_program


def _requant(rng: np.random.Generator, channels: int, k: int) -> Requant:
    # scales that map a K-long int8 dot product back into int8 (a realistic layer)
    scales = rng.uniform(0.3, 1.0, channels) / (128 * np.sqrt(k))
    pairs = [quantize_multiplier(float(s)) for s in scales]
    return Requant(
        np.array([m for m, _ in pairs]), np.array([s for _, s in pairs]), int(rng.integers(-10, 10))
    )


def _reference(x, layers):
    """Plain numpy: int64 GEMMs (no wrap is reachable at these sizes) and the gemmlowp requantization."""
    h = np.asarray(x, dtype=np.int64)
    for layer in layers:
        h = h @ layer.w
        if layer.requant is not None:
            r = layer.requant
            h = requantize(h, r.multiplier[None], r.shift[None], r.zero_point, relu=layer.relu)
    return h


@pytest.mark.rtl
@pytest.mark.parametrize("name", ["int8_ws_8x8", "int8_os_8x8"])
def test_two_layer_mlp_on_the_rtl(name):
    config = load_config(name)
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (20, 48))
    layers = [
        Layer(rng.integers(-128, 128, (48, 40)), _requant(rng, 40, 48), relu=True),
        Layer(rng.integers(-128, 128, (40, 24))),
    ]
    program = compile_mlp(config, x, layers)
    memory = MemoryTiming(read_latency=9, write_latency=5)
    golden = run_program(config, program, "golden")
    cycle = run_program(config, program, "cycle", memory=memory)
    rtl = run_program(config, program, "rtl", memory=memory)
    np.testing.assert_array_equal(rtl.host, golden.host)  # every byte of host memory
    assert rtl.cycles == cycle.cycles
    hidden = rtl.outputs["layer0"]
    assert hidden.min() >= layers[0].requant.zero_point  # ReLU at the zero point
    assert len(np.unique(hidden)) > 10  # the scales keep the hidden layer informative
    np.testing.assert_array_equal(rtl.outputs["Y"], _reference(x, layers))
