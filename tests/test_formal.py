"""Formal equivalence (tpegen.synth.formal): one PE per family proved, and broken datapaths caught.

Every "not equivalent" test checks the counterexample by evaluating the reference in Python on the
reported inputs: the reference side must equal it and the design side must not.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from amaranth import Module
from conftest import CONFIGS

from tpegen.config import config_from_dict, load_config
from tpegen.errors import ConfigError, TpegenError
from tpegen.hw.pe import lut as lut_hw
from tpegen.hw.pe.mac import MacDatapath
from tpegen.hw.pe.mac_params import MacPEParams
from tpegen.synth import formal, yosys
from tpegen.synth.formal import formal_verify


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def field(value: int, index: int, bits: int, *, is_signed: bool = True) -> int:
    raw = (value >> (index * bits)) & ((1 << bits) - 1)
    return signed(raw, bits) if is_signed else raw


def mac_config(act_bits=4, weight_bits=4, acc_bits=10, act_signed=True, weight_signed=False):
    pe = {
        "type": "mac",
        "act_bits": act_bits,
        "weight_bits": weight_bits,
        "act_signed": act_signed,
        "weight_signed": weight_signed,
        "acc_bits": acc_bits,
        "dataflow": "os",
    }
    return config_from_dict({"name": "mac_small", "pe": pe, "array": {"rows": 2, "cols": 2}})


def check(report, name):
    [found] = [c for c in report.checks if c.name == name]
    return found


def test_mac_int8_config_is_proved_at_its_own_widths():
    report = formal_verify(load_config(CONFIGS / "int8_os_8x8.yaml"))
    assert report.passed, list(report.lines())
    ref = check(report, "mac datapath == reference")
    assert (ref.widths, ref.reduced) == ("a s8 x w s8, acc 32", False)
    gate = check(report, "mac datapath gate level == RTL")
    assert gate.proved and not gate.reduced
    # all four signedness pairs at 4 bits, with a 10-bit accumulator so that the sum wraps
    assert {c.name for c in report.checks} >= {
        f"mac datapath == reference ({t}4)" for t in ("ss", "su", "us", "uu")
    }
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True
    lines = list(report.lines())
    assert lines[-1].startswith("formal int8_os_8x8 (mac): all proved")
    assert all(ln.startswith("PROVED") for ln in lines[:-1])


def test_lut_config_is_proved():
    report = formal_verify(load_config(CONFIGS / "lut_w2a8.yaml"))
    assert report.passed, list(report.lines())
    unit = check(report, "lut dot-product unit == multiply-add")
    assert unit.reduced and "tile_k 1" in unit.widths and "W2" in unit.widths
    assert any("2-bit activations" in n for n in report.notes)
    gate = check(report, "lut table precompute gate level == RTL")
    assert gate.widths == "g 4, A8"


def test_lut_table_variants_are_refused_not_proved_as_the_default():
    """The proof builds the default unit; a config with another table design must not pass it."""
    raw = load_config(CONFIGS / "lut_w2a8.yaml").to_dict()
    raw["pe"]["precompute"] = "external"
    with pytest.raises(ConfigError, match=r"^pe\.precompute: .*tpegen verify --formal"):
        formal_verify(config_from_dict(raw))


def test_fma_bf16_gate_level_is_proved_at_full_size():
    report = formal_verify(load_config(CONFIGS / "bf16_exact.yaml"))
    assert report.passed, list(report.lines())
    [gate] = report.checks
    assert gate.name == "fma datapath gate level == RTL"
    assert gate.widths.startswith("bf16 x bf16 + fp32") and not gate.reduced


class OffByOneMac(MacDatapath):
    """A broken MAC: ``acc_in + a * w + 1`` when ``a == 3`` (one input pattern)."""

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.acc_out.eq(self.acc_in + self.a * self.w + (self.a == 3))
        return m


def test_broken_mac_datapath_is_not_equivalent_with_a_real_counterexample(monkeypatch):
    monkeypatch.setattr(MacPEParams, "datapath", lambda self: OffByOneMac(self))
    report = formal_verify(mac_config(act_signed=True, weight_signed=False))
    assert not report.passed
    bad = check(report, "mac datapath == reference")
    assert (bad.proved, bad.status) == (False, "not equivalent")
    cex = bad.counterexample
    assert cex is not None and set(cex.inputs) == {"a", "w", "acc_in"}
    a, w, acc_in = signed(cex.inputs["a"], 4), cex.inputs["w"], signed(cex.inputs["acc_in"], 10)
    expected = signed(acc_in + a * w, 10)  # README: the product is exact, the sum wraps
    assert signed(cex.reference["acc_out"], 10) == expected
    assert signed(cex.design["acc_out"], 10) != expected
    assert a == 3 and signed(cex.design["acc_out"], 10) == signed(expected + 1, 10)
    assert any(ln.startswith("  counterexample a=") for ln in report.lines())
    # the synthesized netlist is faithful to the (broken) RTL, so that proof still holds
    assert check(report, "mac datapath gate level == RTL").proved


def test_dropped_sign_extension_is_caught(monkeypatch):
    class UnsignedProduct(MacDatapath):
        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.acc_out.eq(self.acc_in + self.a.as_unsigned() * self.w)
            return m

    monkeypatch.setattr(MacPEParams, "datapath", lambda self: UnsignedProduct(self))
    report = formal_verify(mac_config(act_signed=True, weight_signed=True))
    cex = check(report, "mac datapath == reference").counterexample
    a, w, acc_in = (signed(cex.inputs[k], n) for k, n in (("a", 4), ("w", 4), ("acc_in", 10)))
    assert a < 0  # only a negative activation tells the two apart
    assert signed(cex.reference["acc_out"], 10) == signed(acc_in + a * w, 10)
    assert signed(cex.design["acc_out"], 10) != signed(acc_in + a * w, 10)


def test_broken_lut_rowsum_width_is_caught(monkeypatch):
    """A row-sum register one bit too narrow overflows for some activations: caught, with values."""
    monkeypatch.setattr(lut_hw, "rowsum_bits", lambda g, act_bits, tile_k: act_bits + 1)
    cfg = load_config(CONFIGS / "lut_w2a8.yaml")
    report = formal_verify(cfg)
    bad = check(report, "lut dot-product unit == multiply-add")
    assert bad.status == "not equivalent"
    cex = bad.counterexample
    g, act_bits, b, acc = 4, 2, 2, cfg.pe.acc_bits
    a = [field(cex.inputs["a"], i, act_bits) for i in range(g)]
    w = [field(cex.inputs["w"], i, b) for i in range(g)]
    start = signed(cex.inputs["acc0"], acc + 1) >> 1  # the unit holds 2 * C
    expected = signed(start + sum(x * y for x, y in zip(a, w, strict=True)), acc)
    assert signed(cex.reference["out"], acc) == expected
    assert signed(cex.design["out"], acc) != expected
    assert not -4 <= sum(a) <= 3  # the true row sum does not fit act_bits + 1 = 3 bits


def test_corrupted_gate_netlist_is_caught(monkeypatch, tmp_path):
    """One XOR cell turned into an XNOR in a copy of the netlist: the gate-level proof fails."""
    real = yosys.synthesize

    def corrupted(verilog, top, **kw):
        rep = real(verilog, top, **kw)
        work = tmp_path / "synth"
        shutil.copytree(rep.work_dir, work)
        text = (work / "netlist.v").read_text()
        assert "XOR2_X1 " in text
        (work / "netlist.v").write_text(text.replace("XOR2_X1 ", "XNOR2_X1 ", 1))
        return dataclasses.replace(rep, work_dir=work)

    monkeypatch.setattr(yosys, "synthesize", corrupted)
    report = formal_verify(mac_config(act_signed=False, weight_signed=True))
    assert check(report, "mac datapath == reference").proved
    gate = check(report, "mac datapath gate level == RTL")
    assert gate.status == "not equivalent"
    cex = gate.counterexample
    a, w, acc_in = cex.inputs["a"], signed(cex.inputs["w"], 4), signed(cex.inputs["acc_in"], 10)
    expected = signed(acc_in + a * w, 10)
    assert signed(cex.reference["acc_out"], 10) == expected  # the RTL side
    assert signed(cex.design["acc_out"], 10) != expected  # the corrupted netlist


def test_timeouts_are_reported_not_proved():
    report = formal_verify(mac_config(), timeout_s=0.05)
    assert not report.passed
    assert {c.status for c in report.checks} == {"timeout"}
    assert all(c.counterexample is None for c in report.checks)


def test_bad_arguments_and_yosys_failures_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="timeout_s"):
        formal_verify(mac_config(), timeout_s=0)
    with pytest.raises(ConfigError, match="pe.type"):
        formal_verify(dataclasses.replace(mac_config(), family="nope"))
    with pytest.raises(TpegenError, match="yosys failed"):
        formal._run_proof({"x.v": "module broken("}, ["read_verilog x.v"], 60)
