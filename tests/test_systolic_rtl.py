"""Integer MAC PEs and systolic arrays on Verilator (cocotb): bit-exact and cycle-exact.

A PE is tested as a 1 x 1 array (the cell with its stream control); arrays as R x C with
non-square shapes so that rows/cols mix-ups cannot pass. Each check compares the RTL with the
independent numpy reference ``wrap(A @ W)`` and the measured cycles with the timing model.
"""

from __future__ import annotations

import numpy as np
import pytest

from tpegen.config import config_from_dict
from tpegen.sim.intgemm import operand_range
from tpegen.sim.packing import wrap
from tpegen.sw.verify import verify

pytestmark = pytest.mark.rtl


def design(name, dataflow, rows, cols, **pe):
    pe = {"type": "mac", "dataflow": dataflow, **pe}
    return config_from_dict({"name": name, "pe": pe, "array": {"rows": rows, "cols": cols}}).accelerator()


PES = [
    # (name, dataflow, PE parameters): narrow accumulators make wrap-around reachable.
    ("pe_os_s8s4_acc12", "os", {"act_bits": 8, "weight_bits": 4, "acc_bits": 12}),
    ("pe_ws_u5s16_acc21", "ws", {"act_bits": 5, "act_signed": False, "weight_bits": 16, "acc_bits": 21}),
]


@pytest.mark.parametrize("name,dataflow,pe", PES, ids=[p[0] for p in PES])
def test_pe_exhaustive_extremes_and_wrap(name, dataflow, pe):
    acc = design(name, dataflow, 1, 1, **pe)
    p = acc.params.pe
    a_lo, a_hi = operand_range(p.act_bits, p.act_signed)
    w_lo, w_hi = operand_range(p.weight_bits, p.weight_signed)
    a_vals = np.array(sorted({a_lo, a_lo + 1, -1 if p.act_signed else 1, 0, 1, a_hi - 1, a_hi}))
    w_vals = np.array(sorted({w_lo, w_lo + 1, -1, 0, 1, w_hi - 1, w_hi}))
    # Every pair of extreme operands as a K=1 GEMM, then long chains that wrap the accumulator.
    pairs = [(np.array([[x]]), np.array([[y]])) for x in a_vals for y in w_vals]
    k = (1 << p.acc_bits) // max(abs(a_lo * w_lo), abs(a_hi * w_hi)) + 3
    chains = [(np.full((1, k), a_lo), np.full((k, 1), w_lo)), (np.full((1, k), a_hi), np.full((k, 1), w_hi))]
    rng = np.random.default_rng(7)
    rand = [(rng.integers(a_lo, a_hi + 1, (3, 40)), rng.integers(w_lo, w_hi + 1, (40, 2))) for _ in range(4)]
    gemms = pairs + chains + rand
    results = acc.run_rtl(gemms)
    wrapped = 0
    for (a, w), r in zip(gemms, results, strict=True):
        exact = a.astype(np.int64) @ w
        assert np.array_equal(r.output, wrap(exact, p.acc_bits)), (a, w)
        wrapped += not np.array_equal(r.output, exact)
        assert r.cycles == acc.cycles(*a.shape, w.shape[1])
    assert wrapped >= 2, "the wrap-around chains must actually overflow the accumulator"


@pytest.mark.parametrize("dataflow,rows,cols", [("os", 4, 3), ("ws", 3, 4)])
def test_array_verify_random_and_edge_cases(dataflow, rows, cols):
    acc = design(f"int8_{dataflow}_{rows}x{cols}", dataflow, rows, cols, acc_bits=20)
    report = verify(acc, cases=6, seed=11)
    labels = {c.label for c in report.cases}
    assert {"K=1, one full tile", "K >> array", "all zeros", "accumulator wrap-around"} <= labels
    for case in report.cases:
        assert case.bit_exact, case
        assert case.cycles_rtl == case.cycles_model, case
        assert case.stall_bit_exact, case
    assert report.passed
