"""`tpegen synth --period-ns P`: the clock period reaches ABC and the timing engine, and the PPA
record reports at top level the period, the worst slack at it and whether timing is met.

Small designs only (a 2x2 INT8 OS array, and the smallest config of each family, without the
gate-level energy run); the synthesis cache ($TPEGEN_CACHE) makes reruns fast.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tpegen.config import config_from_dict

HAS_OPENSTA = shutil.which("sta") is not None
OLD_FIELDS = ("area_um2", "cells", "delay_ns", "energy_pj_per_op", "ops_per_cycle", "liberty")

MAC_2X2 = {
    "name": "period_mac_os_2x2",
    "pe": {"type": "mac", "act_bits": 8, "weight_bits": 8, "acc_bits": 32, "dataflow": "os"},
    "array": {"rows": 2, "cols": 2},
}
# The smallest config of every family (a few seconds of Yosys each).
FAMILIES = {
    "mac": MAC_2X2,
    "lut": {
        "name": "period_lut_1x1x1",
        "pe": {
            "type": "lut",
            "group_size": 2,
            "act_bits": 8,
            "weight_bits": 1,
            "ternary": False,
            "acc_bits": 16,
        },
        "array": {"tile_m": 1, "tile_n": 1, "tile_k": 1},
    },
    "fma": {
        "name": "period_fma_bf16_1x1",
        "pe": {
            "type": "fma",
            "input_format": "bf16",
            "acc_format": "fp32",
            "rounding": "rne",
            "dataflow": "os",
        },
        "array": {"rows": 1, "cols": 1},
    },
    "dot": {
        "name": "period_dot_addertree_2x2",
        "pe": {"type": "dot", "organization": "addertree", "act_bits": 8, "weight_bits": 8, "acc_bits": 32},
        "array": {"tile_m": 1, "tile_n": 2, "tile_k": 2, "stages": 0},
    },
}
ENGINES = [
    pytest.param(
        "opensta",
        marks=pytest.mark.skipif(not HAS_OPENSTA, reason="OpenSTA ('sta') is not installed"),
    ),
    pytest.param("tpegen"),
]


def _yaml(tmp_path, raw: dict):
    config_from_dict(raw)  # a valid config (fails here, not inside the CLI, if the schema moves)
    path = tmp_path / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _engine(monkeypatch, engine: str) -> None:
    if engine == "tpegen":
        monkeypatch.setenv("TPEGEN_STA", "tpegen")
    else:
        monkeypatch.delenv("TPEGEN_STA", raising=False)


def _record(run_cli, cfg, *extra) -> dict:
    code, stdout, err = run_cli("synth", cfg, "--no-energy", "--json", *extra)
    assert code == 0, err
    return json.loads(stdout)


def _check_consistent(rec: dict, period: float) -> None:
    for key in (*OLD_FIELDS, "period_ns", "slack_ns", "timing_met"):
        assert key in rec, key
    assert rec["period_ns"] == period
    assert rec["timing"]["period_ns"] == period  # the engine was constrained with P, not a default
    assert rec["flow"]["abc_target_ps"] == round(period * 1000)  # and ABC was given P
    assert rec["slack_ns"] == pytest.approx(period - rec["delay_ns"], abs=2e-6)
    assert rec["timing_met"] is (rec["slack_ns"] >= 0)


def _work_dir(raw: dict, period: float | None):
    """The synthesis folder of ``raw`` at ``period`` (the cache makes this a lookup; it re-runs STA)."""
    from tpegen.api import synthesize_design

    return synthesize_design(config_from_dict(raw), period_ns=period, energy=False)[0].work_dir


def _sta_log(raw: dict, period: float) -> tuple[float, float]:
    """The worst slack OpenSTA printed for the design at ``period`` and the clock it was given."""
    work = _work_dir(raw, period)
    log, tcl = (work / "sta.log").read_text(), (work / "sta.tcl").read_text()
    slacks = [float(s) for s in re.findall(r"(-?\d+\.\d+)\s+slack\s+\((?:MET|VIOLATED)\)", log)]
    clock = re.search(r"^create_clock .*-period (\S+)", tcl, flags=re.M)
    return min(slacks), float(clock.group(1))


@pytest.mark.parametrize("engine", ENGINES)
def test_generous_period_is_met_with_slack_period_minus_delay(run_cli, tmp_path, monkeypatch, engine):
    _engine(monkeypatch, engine)
    rec = _record(run_cli, _yaml(tmp_path, MAC_2X2), "--period-ns", "50")
    assert rec["timing"]["engine"] == engine
    _check_consistent(rec, 50.0)
    assert rec["timing_met"] is True
    # a 2x2 INT8 MAC array's critical path is a few ns: slack at 50 ns is far above what a 10 ns
    # default clock could give
    assert 0.3 < rec["delay_ns"] < 10 and rec["slack_ns"] > 40
    if engine == "opensta":  # the slack is OpenSTA's own, at the clock it was given
        slack, clock = _sta_log(MAC_2X2, 50.0)
        assert clock == 50.0 and rec["slack_ns"] == pytest.approx(slack, abs=1e-5)


@pytest.mark.parametrize("engine", ENGINES)
def test_impossible_period_is_violated_with_negative_slack(run_cli, tmp_path, monkeypatch, engine):
    _engine(monkeypatch, engine)
    rec = _record(run_cli, _yaml(tmp_path, MAC_2X2), "--period-ns", "0.05")
    assert rec["timing"]["engine"] == engine
    _check_consistent(rec, 0.05)
    assert rec["timing_met"] is False and rec["slack_ns"] < 0
    assert rec["delay_ns"] > 0.3  # an 8x8 multiplier and a 32-bit adder do not fit 50 ps
    if engine == "opensta":
        slack, clock = _sta_log(MAC_2X2, 0.05)
        assert clock == 0.05 and rec["slack_ns"] == pytest.approx(slack, abs=1e-5) and slack < 0


def test_abc_receives_the_period():
    """The yosys script of each synthesis carries P (in ps) as ABC's -D target; none without P."""
    for period, flag in ((50.0, " -D 50000"), (0.05, " -D 50"), (None, None)):
        script = (_work_dir(MAC_2X2, period) / "flow.ys").read_text()
        abc = next(line for line in script.splitlines() if line.startswith("abc "))
        if flag is None:
            assert " -D " not in abc
        else:
            assert abc.endswith(flag), abc


def test_without_a_period_the_top_level_timing_fields_are_null(run_cli, tmp_path):
    rec = _record(run_cli, _yaml(tmp_path, MAC_2X2))
    for key in OLD_FIELDS:
        assert key in rec, key
    assert rec["period_ns"] is None and rec["slack_ns"] is None and rec["timing_met"] is None
    assert rec["flow"]["abc_target_ps"] is None and rec["delay_ns"] > 0
    assert rec["timing"]["period_ns"] == 10.0  # the STA's placeholder clock, documented as such


def test_human_readable_output_states_period_slack_and_verdict(run_cli, tmp_path):
    cfg = _yaml(tmp_path, MAC_2X2)
    records = {p: _record(run_cli, cfg, "--period-ns", p) for p in ("50", "0.05")}
    for period, verdict in (("50", "timing met"), ("0.05", "timing NOT met")):
        code, out, err = run_cli("synth", cfg, "--no-energy", "--period-ns", period)
        assert code == 0, err
        line = next(x for x in out.splitlines() if x.startswith("clock period"))
        slack = records[period]["slack_ns"]
        assert line == f"clock period {float(period):.3f} ns: slack {slack:.3f} ns, {verdict}", line
    code, out, err = run_cli("synth", cfg, "--no-energy")
    assert code == 0, err
    assert "clock period: none given (--period-ns)" in out and "slack" not in out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_reports_period_slack_and_timing_met(run_cli, tmp_path, family):
    rec = _record(run_cli, _yaml(tmp_path, FAMILIES[family]), "--period-ns", "5")
    _check_consistent(rec, 5.0)
    assert rec["area_um2"] > 0 and rec["delay_ns"] > 0 and sum(rec["cells"].values()) > 10
    assert rec["energy_pj_per_op"] is None and rec["ops_per_cycle"] is None  # --no-energy


def test_opensta_worst_slack_over_path_groups(monkeypatch, tmp_path):
    """With several path groups in OpenSTA's report, the worst slack (not the first) is the design's."""
    from tpegen.synth import synthesize
    from tpegen.synth import timing as timing_mod

    rep = synthesize(
        "module g(input clk, input [3:0] a, output reg [3:0] q); always @(posedge clk) q <= a + 1; endmodule",
        "g",
        period_ns=4.0,
        timing=False,
    )
    out = (
        "Startpoint: a (input port clocked by clk)\nEndpoint: n_1 (rising edge-triggered flip-flop)\n"
        "Path Group: clk\n   0.10000    0.10000 ^ a (in)\n              3.50000   slack (MET)\n\n"
        "Startpoint: n_2 (rising edge-triggered flip-flop)\nEndpoint: n_3 (recovery check)\n"
        "Path Group: asynchronous\n   0.20000    0.20000 v n_2/Q (DFF_X1)\n"
        "              -0.25000   slack (VIOLATED)\n"
    )
    monkeypatch.setattr(
        timing_mod.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=out, stderr="")
    )
    t = timing_mod._opensta(rep, rep.library(), 4.0)
    assert t.slack_ns == pytest.approx(-0.25) and t.delay_ns == pytest.approx(4.25)
    assert (t.startpoint, t.endpoint) == ("n_2", "n_3") and t.path == ["n_2/Q (DFF_X1)"]


TINY_TOP = """\
name: period_os_2x2_top
pe: {type: mac, act_bits: 8, weight_bits: 8, act_signed: true, weight_signed: true, acc_bits: 32, dataflow: os}
array: {rows: 2, cols: 2}
system: {axi_bytes: 4, scratchpad_a_kib: 1, scratchpad_w_kib: 1, accumulator_kib: 1, qparam_rows: 1, queue_depth: 2}
"""


@pytest.mark.slow
def test_system_top_reports_period_slack_and_timing_met(run_cli, tmp_path):
    """The accelerator top (about 6 minutes of Yosys at 2x2) at a generous period."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_TOP)
    code, stdout, err = run_cli("synth", cfg, "--system", "--no-energy", "--json", "--period-ns", "40")
    assert code == 0, err
    rec = json.loads(stdout)
    _check_consistent(rec, 40.0)
    assert rec["timing_met"] is True and rec["memories"]
