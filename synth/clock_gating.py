"""Integrated clock gating (ICG): which Liberty cells tpegen can use, the built-in ICG, gating counts.

An integrated clock-gating cell of kind ``latch_posedge`` (Liberty ``clock_gating_integrated_cell``)
drives ``GCLK = CLK & IQ``, where ``IQ`` is a latch that is transparent while ``CLK`` is low and
holds the enable ``E``: a flop clocked by ``GCLK`` captures at a rising ``CLK`` edge exactly when
``E`` was 1 just before that edge, which is a flop with enable ``E`` (glitch-free, since ``IQ``
cannot change while ``CLK`` is high). :func:`clock_gate` accepts a cell only if its own Liberty
description says so: the ``statetable`` (or ``latch`` group) and the out pin's ``state_function``
(or ``function``) are evaluated for every input combination, with any test pin (``clock_gate_test_pin``,
tied low by synthesis) at 0. The synthesis flow (:func:`tpegen.synth.synthesize` with
``clock_gating=N``) uses the smallest such cell (:func:`find_clock_gate`), the gate-level simulator
(:mod:`tpegen.synth.energy`) and both timing engines model it as that.

The built-in library's ``ICG_X1`` (:func:`builtin_icg_liberty`) is composed from OSU FreePDK45
``gscl45nm`` cells, which have no ICG: ``INVX1`` (CLK -> CLKN), ``LATCH`` (transparent while its CLK
is high, so clocked by CLKN; D = E, Q = IQ) and ``AND2X1`` (A = CLK, B = IQ, Y = GCLK). Numbers:

* area and leakage: the sums of the three cells';
* pin ``CLK``: capacitance ``INVX1.A + AND2X1.A``; internal energy per transition (charged on every
  clock edge, enabled or not) = ``INVX1`` internal energy at the load ``LATCH.CLK`` + ``LATCH.CLK``'s
  internal energy + 1/2 C V^2 of the internal CLKN net (C = ``LATCH.CLK``), the opposite
  ``INVX1``/``LATCH`` edge for each ``CLK`` edge, all at the ``CLK`` pin's input slew;
* pin ``E``: capacitance ``LATCH.D``; internal energy per transition = ``LATCH`` Q energy (related to
  D) at the load ``AND2X1.B`` + 1/2 C V^2 of the internal IQ net (C = ``AND2X1.B``): IQ follows E
  through the open latch, so this is an upper bound (IQ toggles at most as often as E);
  setup to ``CLK`` rising = ``LATCH.D`` ``setup_falling`` (the latch closes when CLKN falls) at the
  smallest characterised clock slew. The source's ``fall_constraint`` table has characterisation
  outliers (3.2-6.1 ns in rows whose other entries are 0.14-0.5 ns), so its ``rise_constraint``
  values serve for both edges; the inverter delay is not subtracted (pessimistic by ~0.03 ns);
* pin ``GCLK``: the ``AND2X1`` A -> Y delay, transition and internal-energy tables (CLK -> GCLK is
  exactly that arc; ``IQ`` is stable whenever CLK rises).

Every table is sampled on the same 2x2 grid as the rest of the built-in library
(:func:`tpegen.synth.liberty.compact_liberty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tpegen.synth.liberty import Cell, Library, Table, _fmt, _interp1, function_evaluator

# Parts of the built-in ICG in gscl45nm, by role.
ICG_PARTS = {"inv": "INVX1", "latch": "LATCH", "and2": "AND2X1"}
ICG_NAME = "ICG_X1"


@dataclass(frozen=True)
class ClockGate:
    """An integrated clock-gating cell tpegen can use: ``GCLK = CLK & IQ`` with ``IQ`` = ``E``
    latched while ``CLK`` is low; pin names by role and ``tests``, the test pins to tie low."""

    cell: str
    clock: str
    enable: str
    out: str
    tests: tuple[str, ...]
    area: float


def clock_gate(cell: Cell) -> ClockGate:
    """``cell`` as a :class:`ClockGate`; ValueError naming the reason if it is not a ``latch_posedge``
    ICG whose Liberty description behaves as one (module docstring)."""
    kind = cell.clock_gating
    if kind is None:
        raise ValueError("no clock_gating_integrated_cell attribute")
    if kind != "latch_posedge" and not kind.startswith("latch_posedge_"):
        raise ValueError(f"clock_gating_integrated_cell {kind!r} (tpegen uses latch_posedge cells)")
    roles = {r: cell.pin_role(r) for r in ("clock", "enable", "out")}
    if any(len(pins) != 1 for pins in roles.values()):
        raise ValueError(
            "it needs exactly one clock_gate_clock_pin, clock_gate_enable_pin and clock_gate_out_pin"
        )
    clk, en, out = (roles[r][0].name for r in ("clock", "enable", "out"))
    tests = tuple(p.name for p in cell.pin_role("test"))
    ins = [p.name for p in cell.inputs]
    if sorted(ins) != sorted([clk, en, *tests]) or [p.name for p in cell.outputs] != [out]:
        raise ValueError("pins other than clock, enable, test and out")
    if not cell.pins[out].function:
        raise ValueError(f"out pin {out} has no function or state_function")
    if cell.statetable is not None and len(cell.statetable.internal) == 1:
        table = cell.statetable
        iq = table.internal[0]
        if not set(table.inputs) <= set(ins):
            raise ValueError("its statetable reads names that are not input pins")

        def latched(values: dict[str, int], q: int) -> int | None:
            nxt = table.next_state(values, (q,))
            return None if nxt is None else nxt[0]
    elif cell.latch_group is not None:
        iq = cell.latch_group.iq
        (en_names, enable), (d_names, data) = (
            function_evaluator(f) for f in (cell.latch_group.enable, cell.latch_group.data_in)
        )
        if not set(en_names) | set(d_names) <= set(ins):
            raise ValueError("its latch group reads names that are not input pins")

        def latched(values: dict[str, int], q: int) -> int | None:
            return data(values) if enable(values) else q
    else:
        raise ValueError("no statetable with one internal node and no latch group")
    names, gclk = function_evaluator(cell.pins[out].function)
    if not set(names) <= {*ins, iq}:
        raise ValueError(f"the function of {out} reads names other than its inputs and {iq}")
    for c in (0, 1):
        for e in (0, 1):
            for q in (0, 1):
                values = {**dict.fromkeys(ins, 0), clk: c, en: e}
                if latched(values, q) != (q if c else e):
                    raise ValueError(f"{iq} is not {en} latched while {clk} is low (test pins at 0)")
                if gclk({**values, iq: q}) != (c & q):
                    raise ValueError(f"{out} is not {clk} & {iq} (test pins at 0)")
    return ClockGate(cell.name, clk, en, out, tests, cell.area)


def find_clock_gate(lib: Library) -> ClockGate | None:
    """The ICG synthesis uses: of the library's usable ``latch_posedge`` ICGs (:func:`clock_gate`,
    not ``dont_use``), the one with the fewest test pins, then the smallest area; None if none."""
    best = None
    for c in lib.cells.values():
        if c.clock_gating is None or c.dont_use:
            continue
        try:
            icg = clock_gate(c)
        except ValueError:
            continue
        if best is None or (len(icg.tests), icg.area) < (len(best.tests), best.area):
            best = icg
    return best


def gating_summary(netlist: Any, lib: Library) -> dict[str, int]:
    """``icgs`` (clock-gating cell instances), ``gated_flops`` (flops clocked by an ICG output) and
    ``flops`` (all) of a flat ``netlist`` (:class:`tpegen.synth.timing.Netlist`)."""
    gclk: set[int] = set()
    icgs = 0
    for ctype, conns in netlist.cells.values():
        cell = lib.cell(ctype)
        if cell.clock_gating is not None:
            icgs += 1
            gclk.update(b for p in cell.pin_role("out") for b in conns.get(p.name, []) if isinstance(b, int))
    flops = gated = 0
    for ctype, conns in netlist.cells.values():
        cell = lib.cell(ctype)
        if cell.ff is None:
            continue
        flops += 1
        clock_pins = [p.name for p in cell.inputs if p.clock] or list(
            function_evaluator(cell.ff.clocked_on)[0]
        )
        gated += any(b in gclk for p in clock_pins for b in conns.get(p, []))
    return {"icgs": icgs, "gated_flops": gated, "flops": flops}


# ------------------------------------------------------------------------------- built-in ICG


def builtin_icg_liberty(src: Library, *, loads: tuple[float, float], slews: tuple[float, float]) -> list[str]:
    """Liberty text (lines, indented for the library group) of the built-in ``ICG_X1`` composed from
    ``src``'s (gscl45nm) ``INVX1``, ``LATCH`` and ``AND2X1`` (module docstring); tables on the
    ``loads`` x ``slews`` grid of :func:`tpegen.synth.liberty.compact_liberty`."""
    inv, latch, and2 = (src.cell(ICG_PARTS[k]) for k in ("inv", "latch", "and2"))
    half_cv2 = 0.5 * src.voltage**2  # x C (pF) = pJ per transition
    c_clkn, c_iq = latch.pins["CLK"].capacitance, and2.pins["B"].capacitance
    inv_pw = _arc(inv.pins["Y"].power, "A")
    latch_clk_pw = _arc(latch.pins["CLK"].power, None)
    latch_q_pw = _arc(latch.pins["Q"].power, "D")
    and_pw = _arc(and2.pins["Y"].power, "A")
    and_t = next(a for a in and2.pins["Y"].timing if a.related_pin == "A")
    setup = next(a for a in latch.pins["D"].timing if a.timing_type == "setup_falling").rise_constraint

    def row(f) -> str:
        return '"' + ", ".join(_fmt(f(s)) for s in slews) + '"'

    def grid(t: Table) -> str:
        return ", ".join(
            '"' + ", ".join(_fmt(t.lookup(load=ld, slew=s)) for s in slews) + '"' for ld in loads
        )

    def table(kind: str, template: str, values: str) -> list[str]:
        return [f"{kind} ({template}) {{", f"  values ({values});", "}"]

    def clk_energy(inv_edge: Table, latch_edge: Table) -> str:
        return row(
            lambda s: inv_edge.lookup(load=c_clkn, slew=s) + latch_edge.lookup(slew=s) + half_cv2 * c_clkn
        )

    # CLK rising: CLKN falls (INVX1 fall energy, LATCH.CLK fall energy); CLK falling: the opposite
    clk_rise = clk_energy(inv_pw.fall, latch_clk_pw.fall)
    clk_fall = clk_energy(inv_pw.rise, latch_clk_pw.rise)
    e_rise = row(lambda s: latch_q_pw.rise.lookup(load=c_iq, slew=s) + half_cv2 * c_iq)
    e_fall = row(lambda s: latch_q_pw.fall.lookup(load=c_iq, slew=s) + half_cv2 * c_iq)
    setup_row = row(lambda s: _interp1(setup.index[1], setup.values[0], s))  # clock slew = index_1[0]
    cell = [
        f"cell ({ICG_NAME}) {{  /* = gscl45nm INVX1 + LATCH + AND2X1 (tpegen.synth.clock_gating) */",
        f"  area : {_fmt(inv.area + latch.area + and2.area)};",
        f"  cell_leakage_power : {_fmt((inv.leakage + latch.leakage + and2.leakage) * src.leak_nw)};",
        '  clock_gating_integrated_cell : "latch_posedge";',
        '  statetable ("CLK E", "IQ") {',
        '    table : "L L : - : L, L H : - : H, H - : - : N";',
        "  }",
        "  pin (IQ) {",
        "    direction : internal;",
        '    internal_node : "IQ";',
        "  }",
        "  pin (CLK) {",
        "    direction : input;",
        f"    capacitance : {_fmt(inv.pins['A'].capacitance + and2.pins['A'].capacitance)};",
        "    clock : true;",
        "    clock_gate_clock_pin : true;",
        "    internal_power () {",
        *[f"      {x}" for x in table("rise_power", "energy_2x2_1d", clk_rise)],
        *[f"      {x}" for x in table("fall_power", "energy_2x2_1d", clk_fall)],
        "    }",
        "  }",
        "  pin (E) {",
        "    direction : input;",
        f"    capacitance : {_fmt(latch.pins['D'].capacitance)};",
        "    clock_gate_enable_pin : true;",
        "    timing () {",
        '      related_pin : "CLK";',
        "      timing_type : setup_rising;",
        *[f"      {x}" for x in table("rise_constraint", "constraint_2x2_1d", setup_row)],
        *[f"      {x}" for x in table("fall_constraint", "constraint_2x2_1d", setup_row)],
        "    }",
        "    internal_power () {",
        *[f"      {x}" for x in table("rise_power", "energy_2x2_1d", e_rise)],
        *[f"      {x}" for x in table("fall_power", "energy_2x2_1d", e_fall)],
        "    }",
        "  }",
        "  pin (GCLK) {",
        "    direction : output;",
        "    clock_gate_out_pin : true;",
        '    state_function : "(CLK IQ)";',
        "    timing () {",
        '      related_pin : "CLK";',
        "      timing_sense : positive_unate;",
        *[
            f"      {x}"
            for k in ("cell_rise", "rise_transition", "cell_fall", "fall_transition")
            for x in table(k, "delay_2x2", grid(getattr(and_t, k)))
        ],
        "    }",
        "    internal_power () {",
        '      related_pin : "CLK";',
        *[f"      {x}" for x in table("rise_power", "energy_2x2", grid(and_pw.rise))],
        *[f"      {x}" for x in table("fall_power", "energy_2x2", grid(and_pw.fall))],
        "    }",
        "  }",
        "}",
    ]
    return ["  " + line for line in cell]


def _arc(arcs, related: str | None):
    return next(a for a in arcs if a.related_pin == related)
