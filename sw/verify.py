"""Randomized and edge-case verification of an accelerator's RTL against its golden and timing models.

Every case runs the same GEMM through the numeric golden model and the Verilated RTL (all cases
in one simulation) and requires bit-identical outputs and ``cycles == timing model``. One extra
run replays all cases with random input bubbles and output backpressure and requires the same
outputs (cycle counts are not compared there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tpegen.errors import check_int
from tpegen.sw.accelerator import Accelerator

# Random GEMMs per run: all cases are built and simulated in one Verilator run, and on the largest
# (128 x 128) arrays 500 cases already hold ~0.5 GiB of operands and stream beats. For more
# coverage run again with another seed.
MAX_CASES = 500


@dataclass
class CaseResult:
    label: str
    shape: tuple[int, int, int]
    bit_exact: bool
    cycles_rtl: int | None
    cycles_model: int
    stall_bit_exact: bool | None = None

    @property
    def passed(self) -> bool:
        return self.bit_exact and self.cycles_rtl == self.cycles_model and self.stall_bit_exact is not False


@dataclass
class VerifyReport:
    design: str
    seed: int
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def to_dict(self) -> dict:
        return {
            "design": self.design,
            "seed": self.seed,
            "passed": self.passed,
            "cases": [
                {
                    "label": c.label,
                    "M": c.shape[0],
                    "K": c.shape[1],
                    "N": c.shape[2],
                    "bit_exact": c.bit_exact,
                    "cycles_rtl": c.cycles_rtl,
                    "cycles_model": c.cycles_model,
                    "stall_bit_exact": c.stall_bit_exact,
                }
                for c in self.cases
            ],
        }


def verify(
    acc: Accelerator,
    *,
    cases: int = 8,
    seed: int = 0,
    stall_prob: float = 0.3,
    progress: Callable[[str], None] | None = None,
    vcd_path: Path | None = None,
) -> VerifyReport:
    """Run ``acc.verification_cases`` (edge cases plus ``cases`` random GEMMs, 0..MAX_CASES) on
    golden and RTL. ``vcd_path`` saves the waveform of the run without stalls there."""
    check_int("cases", cases, 0, MAX_CASES)
    rng = np.random.default_rng(seed)
    gemms = acc.verification_cases(rng, cases)
    report = VerifyReport(design=acc.config.name, seed=seed)
    say = progress or (lambda _msg: None)
    say(f"building {acc.top_name} with Verilator (cached after the first build)")
    # The stalled run needs the per-beat testbench's build: the plain run uses it too, so that
    # verify builds the design once (the replay path gives the same outputs and cycles); without
    # stalls run_rtl picks the path by the program's length.
    path = "cocotb" if stall_prob > 0 else "auto"
    if stall_prob > 0 or vcd_path is not None:
        acc.rtl_model(trace=vcd_path is not None)
    say(f"running {len(gemms)} GEMMs on the RTL")
    operands = [(a, w) for _, a, w in gemms]
    rtl = acc.run_rtl(operands, vcd_path=vcd_path, path=path)
    stalled = (
        acc.run_rtl(operands, stall_prob=stall_prob, seed=seed) if stall_prob > 0 else [None] * len(gemms)
    )
    for (label, a, w), r, s in zip(gemms, rtl, stalled, strict=True):
        a_chk, w_chk = acc.check_operands(a, w)
        gold = acc.golden(a_chk, w_chk)
        m, k = a.shape
        n = w.shape[1]
        report.cases.append(
            CaseResult(
                label=label,
                shape=(m, k, n),
                bit_exact=_same(r.output, gold),
                cycles_rtl=r.cycles,
                cycles_model=acc.operand_cycles(a_chk, w_chk),
                stall_bit_exact=None if s is None else _same(s.output, gold),
            )
        )
    return report


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Bit-identical: same shape and dtype kind, equal values (floats compared by bit pattern)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return False
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(y.dtype, np.floating):
        return x.dtype == y.dtype and bool(np.array_equal(x.view(np.uint8), y.view(np.uint8)))
    return bool(np.array_equal(x, y))
