"""Shared weight encoders (``pe.encoder: per_column``, issue 16 item 1; EN-T, ICCD 2024).

* The edge encoder (:class:`tpegen.hw.pe.radix4.SharedEncoder`, Amaranth simulator) for every
  weight of 2..9 bits, signed and unsigned: its link, read with plain integer arithmetic written
  here (Booth: ``(-1)**neg (one + 2 two)`` per 3-bit digit; EN-T: 2-bit codes, 3 meaning -1, and one
  sign), equals the digits of :mod:`tpegen.sim.radix4` and sums to the weight in Python integers.
* A PE fed that link (edge encoder -> datapath, binary and carry-save accumulation) against
  ``wrap(acc_in + a * w)`` in Python integers, exhaustive at small widths.
* The structure: the PE has no encoder and its weight ports carry the link (9 bits for EN-T int8,
  12 for Booth); the default repr (and so the Verilog) is unchanged.
* ``tpegen verify --formal`` proves edge encoder -> PE against the reference MAC (5-bit operands)
  and catches a PE that drops the link's sign (``-m slow``).
* The config errors, and the ``configs/bitweight/*per_column*`` arrays on Verilator: ``verify`` and
  ``tpegen gemm --backend rtl`` equal ``A @ W`` with the cycle simulator's cycles (one in the default
  run, the rest under ``-m slow``).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from amaranth import Module, Signal, Value
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from tpegen.config import config_from_dict, load_config
from tpegen.hw.pe import mac
from tpegen.hw.pe.cell import OutputStationaryCell, WeightStationaryCell
from tpegen.hw.pe.mac_params import MacPEParams, radix4_digits
from tpegen.hw.pe.radix4 import SharedEncoder, digits_layout
from tpegen.sim.intgemm import operand_range
from tpegen.sim.radix4 import encode
from tpegen.sw.verify import verify
from tpegen.synth.formal import formal_verify

ENCODINGS = ("booth_r4", "en_t")
SIGNEDNESS = list(itertools.product((True, False), repeat=2))  # (act_signed, weight_signed)


def all_values(bits: int, signed: bool) -> list[int]:
    lo, hi = operand_range(bits, signed)
    return list(range(lo, hi + 1))


def link_values(bits: int, signed: bool, encoding: str) -> list[int]:
    """The edge encoder's link (as an integer) for every ``bits``-wide weight."""
    enc = SharedEncoder(MacPEParams(weight_bits=bits, weight_signed=signed).w_shape, encoding)
    out: list[int] = []

    async def bench(ctx):
        for w in all_values(bits, signed):
            ctx.set(enc.w, w)
            out.append(ctx.get(Value.cast(enc.link)))

    sim = Simulator(enc)
    sim.add_testbench(bench)
    sim.run()
    return out


def digits_of_link(link: int, count: int, encoding: str) -> list[int]:
    """The signed digits a link stands for, from its bit layout (least significant digit first)."""
    if encoding == "booth_r4":  # per digit: one, two, neg (bits 3i, 3i+1, 3i+2)
        fields = [(link >> (3 * i)) & 7 for i in range(count)]
        return [(-1 if f & 4 else 1) * ((f & 1) + 2 * ((f >> 1) & 1)) for f in fields]
    sign = -1 if (link >> (2 * count)) & 1 else 1  # EN-T: 2-bit codes, then the sign
    codes = [(link >> (2 * i)) & 3 for i in range(count)]
    return [sign * (c if c <= 2 else -1) for c in codes]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_edge_encoder_link_rebuilds_every_weight(encoding):
    for bits, signed in itertools.product(range(2, 10), (True, False)):
        count = radix4_digits(bits, signed)
        weights = all_values(bits, signed)
        digits = [digits_of_link(x, count, encoding) for x in link_values(bits, signed, encoding)]
        assert [sum(d * 4**i for i, d in enumerate(ds)) for ds in digits] == weights, (bits, signed)
        assert digits == encode(np.array(weights), encoding, bits, signed).tolist(), (bits, signed)


def test_link_widths():
    """EN-T sends 2 bits per digit and one sign (9 bits for int8, 10 for unsigned 8-bit weights with
    their fifth digit, no sign); Booth 3 bits per digit."""
    widths = {
        (enc, signed): MacPEParams(
            multiplier=enc, encoder="per_column", weight_signed=signed
        ).w_link_shape.size
        for enc, signed in itertools.product(ENCODINGS, (True, False))
    }
    assert widths == {("en_t", True): 9, ("en_t", False): 10, ("booth_r4", True): 12, ("booth_r4", False): 15}


class EncodedStep(wiring.Component):
    """Edge encoder -> PE datapath (-> edge adder with carry-save accumulation): one MAC step as the
    array computes it."""

    def __init__(self, p: MacPEParams):
        self.p = p
        super().__init__(
            {"a": In(p.a_shape), "w": In(p.w_shape), "acc_in": In(p.out_shape), "acc_out": Out(p.out_shape)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.p
        m.submodules.encoder = enc = p.edge_encoder()
        m.submodules.datapath = dp = p.datapath()
        m.d.comb += [enc.w.eq(self.w), dp.w.eq(enc.link), dp.a.eq(self.a)]
        if p.carry_save:  # the accumulator as a pair (acc_in, 0); the edge adder resolves it
            m.submodules.edge = edge = p.normalizer()
            m.d.comb += [
                dp.acc_in.sum.eq(self.acc_in),
                edge.acc_in.eq(dp.acc_out),
                self.acc_out.eq(edge.acc_out),
            ]
        else:
            m.d.comb += [dp.acc_in.eq(self.acc_in), self.acc_out.eq(dp.acc_out)]
        return m


@pytest.mark.parametrize("accumulation", ("binary", "carry_save"))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_pe_behind_edge_encoder_exhaustive(encoding, accumulation):
    """Every (a, w) at 4x4 and 3x5 bits, all signedness pairs, against Python integers; the
    accumulator one bit wider than the product and set to edge values, so sums wrap."""
    for (ab, wb), (sa, sw) in itertools.product(((4, 4), (3, 5)), SIGNEDNESS):
        p = MacPEParams(
            act_bits=ab,
            weight_bits=wb,
            act_signed=sa,
            weight_signed=sw,
            acc_bits=ab + wb + 1,
            multiplier=encoding,
            accumulation=accumulation,
            encoder="per_column",
        )
        lo, hi = operand_range(p.acc_bits, True)
        cases = [(a, w, acc) for a in all_values(ab, sa) for w in all_values(wb, sw) for acc in (lo, hi)]
        step, got = EncodedStep(p), []

        async def bench(ctx, step=step, cases=cases, got=got):
            for a, w, acc in cases:
                ctx.set(step.a, a)
                ctx.set(step.w, w)
                ctx.set(step.acc_in, acc)
                got.append(ctx.get(step.acc_out))

        sim = Simulator(step)
        sim.add_testbench(bench)
        sim.run()
        half = 1 << (p.acc_bits - 1)
        assert got == [(acc + a * w + half) % (2 * half) - half for a, w, acc in cases], p


@pytest.mark.parametrize("dataflow,cell", (("os", OutputStationaryCell), ("ws", WeightStationaryCell)))
def test_cells_carry_the_link_and_pes_have_no_encoder(dataflow, cell):
    p = MacPEParams(multiplier="en_t", encoder="per_column", dataflow=dataflow)
    ports = ("w_in", "w_out") if dataflow == "os" else ("load_in", "load_out")
    c = cell(p)
    assert [c.signature.members[port].shape.size for port in ports] == [9, 9]
    assert "magnitude" not in rtlil.convert(c)  # the encoder's magnitude lives at the edge only
    assert "magnitude" in rtlil.convert(cell(dataclasses.replace(p, encoder="per_pe")))


def test_default_encoder_leaves_existing_designs_alone():
    pe = load_config("bitweight/systolic_os_en_t_4x4").pe
    assert pe.encoder == "per_pe" and "encoder" not in repr(pe) and pe.w_link_shape == pe.w_shape
    assert "encoder='per_column'" in repr(dataclasses.replace(pe, encoder="per_column"))


# ---------------------------------------------------------------------------------- formal


@pytest.mark.slow  # a Yosys SAT proof (15-30 s); the knob stays on Verilator in the default run
def test_formal_proves_the_pe_behind_its_edge_encoder():
    """``tpegen verify --formal``: edge encoder -> datapath equals the reference MAC for every raw
    weight (at 5-bit operands, as the report says) and the netlist equals the RTL."""
    report = formal_verify(load_config("bitweight/systolic_os_en_t_per_column_4x4"))
    assert report.passed, list(report.lines())
    assert all(c.statement.startswith("with w = edge_encoder(w):") for c in report.checks[:-1])
    assert report.checks[0].widths == "a s5 x w s5, acc 26" and report.checks[0].reduced


@pytest.mark.slow
def test_formal_catches_a_pe_that_drops_the_links_sign(monkeypatch):
    """A PE decode that ignores the EN-T link's sign bit gives |w| for negative weights."""

    def unsigned_link_digits(m, link, w_shape, encoding):
        digits = Signal(digits_layout(w_shape), name="digits")
        for digit, code in zip(digits, link.code, strict=True):
            m.d.comb += [
                digit.one.eq(code[0]),
                digit.two.eq(code[1] & ~code[0]),
                digit.neg.eq(code[1] & code[0]),
            ]
        return digits

    monkeypatch.setattr(mac, "link_digits", unsigned_link_digits)
    report = formal_verify(load_config("bitweight/systolic_os_en_t_per_column_4x4"), timeout_s=120)
    bad = report.checks[0]
    assert (bad.proved, bad.status) == (False, "not equivalent")
    w = bad.counterexample.inputs["w"]
    assert w >= 16  # a negative 5-bit weight


# ---------------------------------------------------------------------------------- config


def _raw(**pe) -> dict:
    return {"pe": {"type": "mac", **pe}, "array": {"rows": 2, "cols": 2}}


def test_invalid_encoder_is_a_one_line_config_error(bad_config):
    bad_config(_raw(multiplier="en_t", encoder="per_chip"), "pe.encoder", "'per_pe', 'per_row', 'per_column'")


def test_shared_encoder_needs_a_recoded_multiplier(bad_config):
    bad_config(_raw(encoder="per_column"), "pe.encoder", "pe.multiplier 'booth_r4' or 'en_t'")


@pytest.mark.parametrize("dataflow", ("os", "ws"))
def test_per_row_names_the_dataflow(bad_config, dataflow):
    bad_config(
        _raw(multiplier="booth_r4", encoder="per_row", dataflow=dataflow),
        "pe.encoder",
        f"'per_pe' or 'per_column' with pe.dataflow '{dataflow}'",
    )


def test_encoder_is_not_a_dot_tile_field(bad_config):
    raw = {"pe": {"type": "dot", "encoder": "per_column"}, "array": {}}
    bad_config(raw, "pe.encoder", "unknown")


# ------------------------------------------------------------------------------ RTL arrays

# One array in the default run (a Verilator build is ~20 s of CPU); the rest under -m slow.
SHARED = [
    "bitweight/systolic_os_en_t_per_column_4x4",
    pytest.param("bitweight/systolic_ws_en_t_per_column_4x4", marks=pytest.mark.slow),
    pytest.param("bitweight/systolic_os_booth_r4_per_column_4x4", marks=pytest.mark.slow),
    pytest.param("bitweight/systolic_ws_booth_r4_per_column_4x4", marks=pytest.mark.slow),
]


@pytest.mark.rtl
@pytest.mark.parametrize("name", SHARED)
def test_shared_encoder_config_verifies_on_verilator(name, knob_array_check):
    rng = np.random.default_rng(5)
    a, w = rng.integers(-128, 128, (7, 13)), rng.integers(-128, 128, (13, 6))
    a[0, :], w[:, 0], w[0, :] = -128, -128, 127  # the extremes reach every PE
    # sharing the encoder changes no latency: the per-PE array takes as many cycles
    knob_array_check(name, a, w, {"encoder": "per_pe"}, verify_seed=16)


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.parametrize("dataflow", ("os", "ws"))
def test_shared_encoder_with_carry_save_and_lean_cells_on_verilator(dataflow):
    """With carry-save accumulation, operand gating and reset-less datapath registers (the skew
    stages then load one by one and hold the link)."""
    raw = load_config(f"bitweight/systolic_{dataflow}_en_t_per_column_4x4").to_dict()
    raw["pe"]["accumulation"] = "carry_save"
    raw["array"].update(rows=3, cols=2, operand_gating=True, reset_less_datapath=True)
    report = verify(config_from_dict(raw).accelerator(), cases=3, seed=7)
    assert report.passed, [c for c in report.cases if not c.passed]
