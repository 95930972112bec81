"""The default energy workload of every shipped config is a steady-state GEMM: many tiles back to back,
utilization above 90% on the array's timing model (and on the cycle-level simulator's timeline)."""

from __future__ import annotations

import pytest

from tpegen.config import load_config, shipped_configs
from tpegen.sim.cycle import simulate_shape


@pytest.mark.parametrize("name", shipped_configs())
def test_default_workload_is_steady_state(name):
    acc = load_config(name).accelerator()
    m, k, n = acc.workload_shape()
    cycles = acc.cycles(m, k, n)
    utilization = acc.workload_utilization(m, k, n)
    assert utilization == m * k * n / (cycles * acc.macs_per_cycle)
    if acc.family == "bitserial":  # shape-only cycles are its dense bound, 1/dense of the peak rate
        utilization *= acc.dense_cycles_per_step
    assert utilization > 0.9, (name, (m, k, n), cycles)
    # many tiles (a dot-product or LUT tile is one activation beat), and the cycle-level simulator's
    # timeline of the same GEMM (its per-tile schedule, not the closed form) takes the same cycles
    assert len(acc.schedule(m, k, n).macs) >= 16, (name, (m, k, n))
    assert simulate_shape(acc, m, k, n).cycles == cycles
