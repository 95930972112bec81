"""``array.backpressure: queue``: the array never stops; results pass through a credit-managed queue.

With results always taken the queued array must take exactly the timing model's cycles (so the
queue depth, :attr:`SystolicParams.result_queue_depth`, is enough: one beat less and the credits
hold inputs back); with random stalls its outputs must still be exact; and ``results.ready`` must
reach only the queue, not the array's registers.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.errors import ConfigError
from tpegen.hw.arrays.systolic_params import SystolicParams

# Non-square arrays (wider and taller) and both output-stationary cells: the depth formula depends
# on rows, cols and the drain interval.
CASES = [
    ("int8_os_8x8", 3, 5, {}),
    ("int8_os_8x8", 5, 3, {"os_cell": "two_register"}),
    ("int8_ws_8x8", 3, 5, {}),
]


def design(name: str, rows: int, cols: int, **array):
    cfg = load_config(name)
    arr = dataclasses.replace(cfg.array, rows=rows, cols=cols, backpressure="queue", **array)
    return dataclasses.replace(cfg, name=f"{cfg.name}_q{rows}x{cols}", array=arr).accelerator()


def gemms(rng, rows):
    """K = 1 and K < rows (tiles back to back at the drain interval: the most results in flight),
    K > rows, and shapes that are not multiples of the array."""
    shapes = [(2 * rows + 1, 1, 7), (3 * rows, max(1, rows // 2), 11), (rows, 3 * rows + 2, 4), (1, 5, 1)]
    return [(rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n))) for m, k, n in shapes]


@pytest.mark.rtl
@pytest.mark.parametrize("name,rows,cols,opts", CASES)
def test_queued_array_is_exact_and_takes_the_models_cycles(name, rows, cols, opts):
    acc = design(name, rows, cols, **opts)
    work = gemms(np.random.default_rng(rows * cols), rows)
    for (a, w), r in zip(work, acc.run_rtl(work), strict=True):
        assert np.array_equal(r.output, a @ w)
        assert r.cycles == acc.cycles(a.shape[0], a.shape[1], w.shape[1])
    for (a, w), r in zip(work, acc.run_rtl(work, stall_prob=0.4, seed=rows), strict=True):
        assert np.array_equal(r.output, a @ w)  # random input bubbles and output stalls


@pytest.mark.rtl
def test_one_beat_less_of_queue_costs_cycles(monkeypatch):
    """The depth is the least that never holds inputs back: one beat less and back-to-back tiles
    of K = 1 take longer than the model says."""
    depth = SystolicParams.result_queue_depth.fget
    monkeypatch.setattr(SystolicParams, "result_queue_depth", property(lambda p: depth(p) - 1))
    acc = design("int8_os_8x8", 3, 5)
    a, w = (np.ones((12, 1), dtype=np.int64), np.ones((1, 5), dtype=np.int64))
    (r,) = acc.run_rtl([(a, w)])
    assert np.array_equal(r.output, a @ w)
    assert r.cycles > acc.cycles(12, 1, 5)


@pytest.mark.parametrize("name", ["int8_os_8x8", "int8_ws_8x8"])
def test_results_ready_reaches_only_the_queue(name):
    queued = load_config(name)
    queued = dataclasses.replace(queued, array=dataclasses.replace(queued.array, backpressure="queue"))
    text = queued.accelerator().verilog
    modules = dict(re.findall(r"^module (\S+)\s*\((.*?)^endmodule", text, re.MULTILINE | re.DOTALL))
    users = [n for n, body in modules.items() if "results__ready" in body or "advance" in body]
    assert users == [queued.accelerator().top_name]  # the top: the queue's read and bypass
    stalled = load_config(name).accelerator().verilog  # the default at 8x8: a global stall
    assert re.search(r"\.en\(advance\)|advance", stalled)


def test_auto_queues_arrays_past_256_cells():
    assert not load_config("int8_os_16x16").array.queued
    assert load_config("int8_os_32x32").array.queued and load_config("int8_ws_32x32").array.queued
    with pytest.raises(ConfigError, match="array.backpressure"):
        dataclasses.replace(load_config("int8_os_8x8").array, backpressure="credit")
