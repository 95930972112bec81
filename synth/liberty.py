"""Read Liberty (.lib) cell libraries: area, pins, logic functions, delay and power tables, leakage.

Only what the tpegen flow needs is modelled, but it is read from the file, never assumed:

* ``Cell.area`` (µm²), ``Cell.leakage_nw`` (nW), ``Cell.pins`` with direction, input capacitance
  (pF), Boolean ``function`` (outputs), ``clock`` flag, timing arcs and internal-power arcs;
* ``Cell.ff`` for edge-triggered cells (``ff(IQ, IQN) { next_state, clocked_on, clear, preset }``);
* NLDM lookup tables (:class:`Table`), evaluated by bilinear interpolation with linear
  extrapolation outside the index range (as OpenSTA does);
* library units, normalised by :class:`Library` to ns, pF, nW and volts. Internal-power tables hold
  energy per transition in ``capacitive_load_unit x voltage_unit^2`` (pF·V² = pJ for pF libraries).

:func:`cell_models_verilog` turns the ``function``/``ff`` attributes of the cells used by a netlist
into behavioural Verilog so that Verilator can simulate a mapped gate-level netlist.
:func:`compact_liberty` writes a reduced library (a chosen cell subset, 2x2 tables sampled from a
source library) — that is how the built-in ``tpegen45.lib`` was made from the OSU FreePDK45 library.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from tpegen.errors import TpegenError

BUILTIN_LIBERTY = Path(__file__).with_name("tpegen45.lib")

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'  # quoted string
    r"|[A-Za-z0-9_.+\-!\[\]'&|^*$]+"  # bare word / number / simple expression
    r"|[(){}:;,]"
)


@dataclass
class Group:
    """One Liberty group ``kind (args) { ... }`` with its simple and complex attributes."""

    kind: str
    args: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    complex: dict[str, list[list[str]]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def sub(self, kind: str) -> list[Group]:
        return [g for g in self.groups if g.kind == kind]

    def first(self, kind: str) -> Group | None:
        for g in self.groups:
            if g.kind == kind:
                return g
        return None


def _unquote(tok: str) -> str:
    return tok[1:-1] if tok.startswith('"') else tok


def parse_groups(text: str) -> Group:
    """Parse Liberty text into a tree of :class:`Group` (root = the ``library`` group)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"\\\r?\n", " ", text)
    text = re.sub(r"(?m)//.*$", "", text)
    toks = _TOKEN.findall(text)
    pos = 0
    root = Group("<root>", [])
    stack = [root]
    n = len(toks)
    while pos < n:
        tok = toks[pos]
        if tok == "}":
            if len(stack) == 1:
                raise ValueError("unbalanced '}'")
            stack.pop()
            pos += 1
            continue
        if tok == ";":
            pos += 1
            continue
        name = tok
        if pos + 1 >= n:
            raise ValueError(f"unexpected end of file after {name!r}")
        nxt = toks[pos + 1]
        if nxt == ":":
            # simple attribute: name : value ;   (value may be several tokens, e.g. 1.0 ns)
            end = pos + 2
            while (
                end < n
                and toks[end] not in (";", "}")
                and not (end > pos + 2 and toks[end + 1 : end + 2] == [":"])
            ):
                end += 1
            value = " ".join(_unquote(t) for t in toks[pos + 2 : end])
            stack[-1].attrs[name] = value
            pos = end + 1 if end < n and toks[end] == ";" else end
        elif nxt == "(":
            end = pos + 2
            args: list[str] = []
            while end < n and toks[end] != ")":
                if toks[end] != ",":
                    args.append(_unquote(toks[end]))
                end += 1
            if end >= n:
                raise ValueError(f"unterminated '(' after {name!r}")
            end += 1
            if end < n and toks[end] == "{":
                group = Group(name, args)
                stack[-1].groups.append(group)
                stack.append(group)
                pos = end + 1
            else:
                stack[-1].complex.setdefault(name, []).append(args)
                pos = end
        else:
            raise ValueError(f"unexpected token {nxt!r} after {name!r}")
    if len(stack) != 1:
        raise ValueError(f"unterminated group {stack[-1].kind}({', '.join(stack[-1].args)})")
    return root


# ----------------------------------------------------------------------------------------- tables


def _floats(text: str) -> np.ndarray:
    return np.array([float(x) for x in re.split(r"[,\s]+", text.strip()) if x], dtype=float)


@dataclass
class Table:
    """An NLDM table: ``values[i, j]`` at ``(var1 = index_1[i], var2 = index_2[j])``.

    Variables are named as in the Liberty template (``total_output_net_capacitance``,
    ``input_net_transition``, ``input_transition_time``, ...). Scalar tables have no index.
    """

    variables: tuple[str, ...]
    index: tuple[np.ndarray, ...]
    values: np.ndarray

    def lookup(self, *, load: float = 0.0, slew: float = 0.0) -> float:
        """Value at output load ``load`` (lib cap units) and input slew ``slew`` (lib time units)."""
        coords = []
        for var in self.variables:
            coords.append(load if "capacitance" in var else slew)
        v = self.values
        if v.size == 1:
            return float(v.reshape(-1)[0])
        if len(self.index) == 1:
            return _interp1(self.index[0], v.reshape(-1), coords[0])
        rows = np.array([_interp1(self.index[1], v[i], coords[1]) for i in range(v.shape[0])])
        return _interp1(self.index[0], rows, coords[0])


def _interp1(x: np.ndarray, y: np.ndarray, at: float) -> float:
    if len(x) == 1:
        return float(y[0])
    i = int(np.clip(np.searchsorted(x, at) - 1, 0, len(x) - 2))
    x0, x1 = x[i], x[i + 1]
    t = (at - x0) / (x1 - x0) if x1 != x0 else 0.0
    return float(y[i] + t * (y[i + 1] - y[i]))


def _table(group: Group, templates: dict[str, Group]) -> Table:
    tmpl = templates.get(group.args[0]) if group.args else None
    variables = []
    index = []
    for k in (1, 2, 3):
        key = f"index_{k}"
        idx = group.complex.get(key) or (tmpl.complex.get(key) if tmpl else None)
        var = tmpl.attrs.get(f"variable_{k}") if tmpl else None
        if idx is None:
            break
        index.append(_floats(",".join(idx[0])))
        variables.append(var or ("total_output_net_capacitance" if k == 1 else "input_net_transition"))
    vals = group.complex.get("values")
    if vals is None:
        raise ValueError(f"table {group.kind} has no values")
    rows = [_floats(r) for r in vals[0]]
    values = np.array(rows, dtype=float)
    if not index:
        values = values.reshape(1)
    elif len(index) == 1:
        values = values.reshape(-1)
    else:
        values = values.reshape(len(index[0]), len(index[1]))
    return Table(tuple(variables), tuple(index), values)


# ------------------------------------------------------------------------------------ cell model


@dataclass
class TimingArc:
    """A delay arc from ``related_pin`` to the owning output pin (tables may be None)."""

    related_pin: str
    timing_type: str
    cell_rise: Table | None = None
    cell_fall: Table | None = None
    rise_transition: Table | None = None
    fall_transition: Table | None = None
    rise_constraint: Table | None = None
    fall_constraint: Table | None = None

    def delay(self, load: float, slew: float) -> float:
        vals = [t.lookup(load=load, slew=slew) for t in (self.cell_rise, self.cell_fall) if t is not None]
        return max(vals) if vals else 0.0

    def transition(self, load: float, slew: float) -> float:
        vals = [t.lookup(load=load, slew=slew) for t in (self.rise_transition, self.fall_transition) if t]
        return max(vals) if vals else slew

    def constraint(self, slew: float) -> float:
        vals = [t.lookup(load=0.0, slew=slew) for t in (self.rise_constraint, self.fall_constraint) if t]
        return max(vals) if vals else 0.0


@dataclass
class PowerArc:
    """Internal energy per transition (rise/fall tables); ``related_pin`` None for input pins."""

    related_pin: str | None
    rise: Table | None
    fall: Table | None

    def energy(self, load: float, slew: float) -> float:
        """Mean internal energy of one transition (average of rise and fall), lib energy units."""
        vals = [t.lookup(load=load, slew=slew) for t in (self.rise, self.fall) if t is not None]
        return float(np.mean(vals)) if vals else 0.0


@dataclass
class Pin:
    """A cell pin: direction, capacitance (lib units), function, timing and power arcs."""

    name: str
    direction: str
    capacitance: float = 0.0
    function: str | None = None  # ``function``, else ``state_function`` (may name internal nodes)
    clock: bool = False
    three_state: str | None = None
    timing: list[TimingArc] = field(default_factory=list)
    power: list[PowerArc] = field(default_factory=list)
    clock_gate: str | None = None  # role in an ICG: "clock", "enable", "out" or "test"


@dataclass
class FlipFlop:
    """``ff(iq, iqn)`` group of an edge-triggered cell."""

    iq: str
    iqn: str
    clocked_on: str
    next_state: str
    clear: str | None = None
    preset: str | None = None


@dataclass
class Latch:
    """``latch(iq, iqn) { enable; data_in }`` group of a level-sensitive cell."""

    iq: str
    enable: str
    data_in: str


@dataclass
class StateTable:
    """``statetable("inputs", "internal") { table }`` group of a cell: its input and internal-node
    names and the ``table`` text (rows ``inputs : current : next`` of ``L``, ``H``, ``-``, ``N``)."""

    inputs: tuple[str, ...]
    internal: tuple[str, ...]
    table: str

    def next_state(self, values: dict[str, int], current: tuple[int, ...]) -> tuple[int | None, ...] | None:
        """Next values of the internal nodes for input ``values`` and ``current`` internal values:
        the first matching row (``N``: unchanged; ``-``: None); None if no row matches. Raises
        ValueError for a malformed row or a symbol other than ``L``, ``H``, ``-``, ``N``."""
        for row in self.table.split(","):
            parts = [x.split() for x in row.split(":")]
            if len(parts) != 3 or [len(x) for x in parts] != [len(self.inputs), *[len(self.internal)] * 2]:
                raise ValueError(f"statetable row {row.strip()!r} does not match ({' '.join(self.inputs)})")
            ins, cur, nxt = parts
            if all(_matches(s, values[n]) for s, n in zip(ins, self.inputs, strict=True)) and all(
                _matches(s, v) for s, v in zip(cur, current, strict=True)
            ):
                return tuple({"L": 0, "H": 1, "N": c}.get(s) for s, c in zip(nxt, current, strict=True))
        return None


def _matches(sym: str, value: int) -> bool:
    if sym not in ("L", "H", "-"):
        raise ValueError(f"statetable symbol {sym!r} is not supported")
    return sym == "-" or (sym == "H") == bool(value)


@dataclass
class Cell:
    """A library cell. ``latch`` is set for cells with a ``latch`` group (``latch_group`` holds it),
    ``statetable`` for cells described by one; ``clock_gating`` is the cell's
    ``clock_gating_integrated_cell`` kind (e.g. ``latch_posedge``) for integrated clock-gating cells,
    whose pins say their role in ``Pin.clock_gate`` (see :mod:`tpegen.synth.clock_gating`)."""

    name: str
    area: float
    leakage: float
    pins: dict[str, Pin]
    ff: FlipFlop | None = None
    latch: bool = False
    dont_use: bool = False
    latch_group: Latch | None = None
    statetable: StateTable | None = None
    clock_gating: str | None = None

    @property
    def inputs(self) -> list[Pin]:
        return [p for p in self.pins.values() if p.direction == "input"]

    @property
    def outputs(self) -> list[Pin]:
        return [p for p in self.pins.values() if p.direction in ("output", "inout")]

    @property
    def sequential(self) -> bool:
        """Holds state: a flip-flop, a latch, a statetable cell or a clock-gating cell."""
        return (
            self.ff is not None or self.latch or self.statetable is not None or self.clock_gating is not None
        )

    def pin_role(self, role: str) -> list[Pin]:
        """The pins of an integrated clock-gating cell with ``clock_gate`` role ``role``."""
        return [p for p in self.pins.values() if p.clock_gate == role]


_TIME = {"1ps": 1e-3, "10ps": 1e-2, "100ps": 0.1, "1ns": 1.0, "10ns": 10.0}
_POWER = {
    "1pw": 1e-3,
    "10pw": 1e-2,
    "100pw": 0.1,
    "1nw": 1.0,
    "10nw": 10.0,
    "100nw": 100.0,
    "1uw": 1e3,
    "10uw": 1e4,
    "100uw": 1e5,
    "1mw": 1e6,
    "1w": 1e9,
}
_CAP = {"ff": 1e-3, "pf": 1.0}


@dataclass
class Library:
    """A parsed Liberty library with units normalised: ``time_ns``, ``cap_pf``, ``leak_nw`` are the
    size of one library unit in ns, pF and nW; ``energy_pj`` of one internal-power unit in pJ."""

    name: str
    path: Path
    sha256: str
    cells: dict[str, Cell]
    voltage: float
    time_ns: float
    cap_pf: float
    leak_nw: float
    default_wire_cap: float = 0.0

    @property
    def energy_pj(self) -> float:
        return self.cap_pf  # cap unit x V^2: pF·V² = pJ

    def cell(self, name: str) -> Cell:
        try:
            return self.cells[name]
        except KeyError:
            raise TpegenError(
                f"{self.path}: netlist uses cell {name!r} that the library does not define"
            ) from None

    def find(self, function: str, n_inputs: int) -> Cell | None:
        """The smallest combinational cell whose single output has ``function`` (e.g. 'BUF', 'INV')."""
        best = None
        for c in self.cells.values():
            if c.sequential or len(c.outputs) != 1 or len(c.inputs) != n_inputs or c.dont_use:
                continue
            f = (c.outputs[0].function or "").replace(" ", "").replace("(", "").replace(")", "")
            a = c.inputs[0].name if c.inputs else ""
            want = {"BUF": a, "INV": f"!{a}"}.get(function, function)
            if (f == want or (function == "INV" and f == f"{a}'")) and (best is None or c.area < best.area):
                best = c
        return best


def _unit(value: str | None, table: dict[str, float], default: float) -> float:
    if not value:
        return default
    return table.get(value.replace(" ", "").replace('"', "").lower(), default)


def _pin(group: Group, templates: dict[str, Group]) -> list[Pin]:
    names = group.args
    a = group.attrs
    arcs = []
    for t in group.sub("timing"):
        kw = {
            k: _table(g, templates)
            for k in (
                "cell_rise",
                "cell_fall",
                "rise_transition",
                "fall_transition",
                "rise_constraint",
                "fall_constraint",
            )
            if (g := t.first(k))
        }
        arcs.append(
            TimingArc(t.attrs.get("related_pin", ""), t.attrs.get("timing_type", "combinational"), **kw)
        )
    power = []
    for p in group.sub("internal_power"):
        rise, fall = p.first("rise_power"), p.first("fall_power")
        power.append(
            PowerArc(
                p.attrs.get("related_pin"),
                _table(rise, templates) if rise else None,
                _table(fall, templates) if fall else None,
            )
        )
    roles = [r for r in ("clock", "enable", "out", "test") if a.get(f"clock_gate_{r}_pin", "false") == "true"]
    pins = []
    for n in names:
        pins.append(
            Pin(
                name=n,
                direction=a.get("direction", "input"),
                capacitance=float(a.get("capacitance", 0) or 0),
                function=a.get("function") or a.get("state_function"),
                clock=a.get("clock", "false") == "true",
                three_state=a.get("three_state"),
                timing=arcs,
                power=power,
                clock_gate=roles[0] if roles else None,
            )
        )
    return pins


# Largest Liberty file tpegen reads (a full commercial corner is ~10-40 MiB; the parser holds a
# few times the file size in tokens).
MAX_LIBERTY_BYTES = 64 << 20


def _read(path: Path) -> Library:
    from tpegen._io import read_text_file

    text = read_text_file(path, "Liberty file", limit=MAX_LIBERTY_BYTES)
    if not text.strip():
        raise TpegenError(f"{path}: empty Liberty file")
    try:
        root = parse_groups(text)
        lib = root.first("library")
        if lib is None:
            raise ValueError("no library group")
        templates = {g.args[0]: g for g in lib.groups if g.kind.endswith("_template") and g.args}
        cells: dict[str, Cell] = {}
        for cg in lib.sub("cell"):
            pins: dict[str, Pin] = {}
            for pg in cg.groups:
                if pg.kind == "pin" and pg.attrs.get("direction") != "internal":  # internal nodes are no pins
                    for p in _pin(pg, templates):
                        pins[p.name] = p
                elif pg.kind == "bus":
                    raise ValueError(f"cell {cg.args[0]}: bus pins are not supported")
            ffg = cg.first("ff")
            ff = None
            if ffg is not None:
                ff = FlipFlop(
                    ffg.args[0],
                    ffg.args[1] if len(ffg.args) > 1 else ffg.args[0] + "_N",
                    ffg.attrs["clocked_on"],
                    ffg.attrs["next_state"],
                    ffg.attrs.get("clear"),
                    ffg.attrs.get("preset"),
                )
            lg = cg.first("latch")
            latch = None
            if lg is not None and lg.args and "enable" in lg.attrs and "data_in" in lg.attrs:
                latch = Latch(lg.args[0], lg.attrs["enable"], lg.attrs["data_in"])
            stg = cg.first("statetable")
            cells[cg.args[0]] = Cell(
                name=cg.args[0],
                area=float(cg.attrs.get("area", 0)),
                leakage=float(cg.attrs.get("cell_leakage_power", 0) or 0),
                pins=pins,
                ff=ff,
                latch=lg is not None,
                dont_use=cg.attrs.get("dont_use", "false") == "true",
                latch_group=latch,
                statetable=StateTable(
                    *(tuple(a.split()) for a in (stg.args + ["", ""])[:2]), stg.attrs.get("table", "")
                )
                if stg is not None
                else None,
                clock_gating=cg.attrs.get("clock_gating_integrated_cell"),
            )
        if not cells:
            raise ValueError("no cells")
        cap = lib.complex.get("capacitive_load_unit")
        cap_pf = float(cap[0][0]) * _CAP.get(cap[0][1].lower(), 1.0) if cap else 1.0
        voltage = float(lib.attrs.get("nom_voltage", 0) or 0)
        if voltage <= 0:
            oc = lib.first("operating_conditions")
            voltage = float(oc.attrs.get("voltage", 0)) if oc else 0.0
        if voltage <= 0:
            raise ValueError("no nom_voltage")
        wire = float(lib.attrs.get("default_wire_load_capacitance", 0) or 0)
    except (ValueError, KeyError, IndexError) as exc:
        raise TpegenError(f"cannot parse Liberty file {path}: {exc}") from None
    return Library(
        name=lib.args[0] if lib.args else path.stem,
        path=path,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        cells=cells,
        voltage=voltage,
        time_ns=_unit(lib.attrs.get("time_unit"), _TIME, 1.0),
        cap_pf=cap_pf,
        leak_nw=_unit(lib.attrs.get("leakage_power_unit"), _POWER, 1.0),
        default_wire_cap=wire,
    )


@cache
def _read_cached(path: str, mtime: float) -> Library:
    return _read(Path(path))


def read_liberty(path: str | Path | None = None) -> Library:
    """Parse a Liberty file (``None`` = the built-in library); raises a one-line TpegenError."""
    from tpegen._io import check_input_file

    p = Path(path).expanduser().resolve() if path is not None else BUILTIN_LIBERTY
    p, _ = check_input_file(p, "Liberty file", limit=MAX_LIBERTY_BYTES)
    info = p.stat()
    return _read_cached(str(p), info.st_mtime)


def check_usable(lib: Library) -> Library:
    """Raise a one-line :class:`TpegenError` naming the file unless ``lib`` has what the synthesis
    flow needs: a D flip-flop for ``dfflibmap`` and, for ABC, an inverter, a buffer and at least one
    multi-input combinational cell with a ``function`` (all not ``dont_use``)."""
    usable = [c for c in lib.cells.values() if not c.dont_use]
    if not any(c.ff is not None and c.ff.next_state and c.ff.clocked_on for c in usable):
        raise TpegenError(
            f"{lib.path}: no flip-flop cell (ff group with next_state and clocked_on); "
            "the library needs at least one D flip-flop"
        )
    comb = [c for c in usable if not c.sequential and c.outputs and all(p.function for p in c.outputs)]
    if not comb:
        raise TpegenError(f"{lib.path}: no combinational cell with a function; ABC has nothing to map onto")
    if lib.find("INV", 1) is None:
        raise TpegenError(f'{lib.path}: no inverter (a 1-input cell with function "!A"); ABC needs one')
    if lib.find("BUF", 1) is None:
        raise TpegenError(f'{lib.path}: no buffer (a 1-input cell with function "A"); ABC needs one')
    if not any(len(c.inputs) >= 2 for c in comb):
        raise TpegenError(f"{lib.path}: no combinational cell with two or more inputs; ABC cannot map logic")
    return lib


# ------------------------------------------------------------------------ functions -> Verilog

_FN_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[!'&*|+^()])")


def function_to_verilog(expr: str) -> str:
    """Translate a Liberty Boolean ``function`` (``!``/``'`` not, ``&``/``*``/space and,
    ``|``/``+`` or, ``^`` xor) into a Verilog expression."""
    toks: list[str] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _FN_TOKEN.match(expr, pos)
        if not m:
            if expr[pos:].strip() == "":
                break
            raise ValueError(f"bad function {expr!r}")
        toks.append(m.group(1))
        pos = m.end()
    i = 0

    def peek():
        return toks[i] if i < len(toks) else None

    def take():
        nonlocal i
        if i >= len(toks):
            raise ValueError(f"bad function {expr!r}")
        i += 1
        return toks[i - 1]

    def primary() -> str:
        t = take()
        if t == "!":
            out = f"~{primary()}"
        elif t == "(":
            out = f"({or_()})"
            if take() != ")":
                raise ValueError(f"bad function {expr!r}")
        elif t in ("0", "1"):
            out = f"1'b{t}"
        elif t is not None and re.match(r"[A-Za-z_]", t):
            out = t
        else:
            raise ValueError(f"bad function {expr!r}")
        while peek() == "'":
            take()
            out = f"~({out})"
        return out

    def and_() -> str:
        terms = [primary()]
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            terms.append(primary())
        return " & ".join(terms) if len(terms) == 1 else "(" + " & ".join(terms) + ")"

    def xor_() -> str:
        terms = [and_()]
        while peek() == "^":
            take()
            terms.append(and_())
        return terms[0] if len(terms) == 1 else "(" + " ^ ".join(terms) + ")"

    def or_() -> str:
        terms = [xor_()]
        while peek() in ("|", "+"):
            take()
            terms.append(xor_())
        return terms[0] if len(terms) == 1 else "(" + " | ".join(terms) + ")"

    out = or_()
    if i != len(toks):
        raise ValueError(f"bad function {expr!r}")
    return out


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\[\]]*")


def function_evaluator(expr: str, subst: dict[str, str] | None = None):
    """``(names, f)`` for a Liberty Boolean ``function``: the names it reads and ``f(values) -> 0/1``
    for a ``{name: 0/1}`` dict. ``subst`` maps names to other expressions (Verilog syntax)."""
    text = function_to_verilog(expr).replace("1'b0", "0").replace("1'b1", "1")
    for k, v in (subst or {}).items():
        text = re.sub(rf"(?<![A-Za-z0-9_\[\]]){re.escape(k)}(?![A-Za-z0-9_\[\]])", f"({v})", text)
    names = tuple(sorted(set(_NAME.findall(text))))
    alias = {n: f"_p{i}" for i, n in enumerate(names)}
    code = compile(_NAME.sub(lambda m: alias[m.group(0)], text), "<liberty function>", "eval")

    def f(values: dict[str, int]) -> int:
        env = {alias[n]: values[n] & 1 for n in names}
        return eval(code, {"__builtins__": {}}, env) & 1  # noqa: S307 - our own translated expression

    return names, f


def cell_models_verilog(lib: Library, names: set[str] | list[str]) -> str:
    """Behavioural Verilog for the given cells, from their ``function`` and ``ff`` attributes."""
    out = ["// Cell models generated by tpegen from Liberty functions of " + lib.path.name]
    for name in sorted(names):
        c = lib.cell(name)
        if c.clock_gating is not None:
            out.append(_clock_gate_verilog(lib, c))
            continue
        if c.latch or c.statetable is not None or any(p.three_state for p in c.outputs):
            raise TpegenError(f"{lib.path}: cell {name} (latch/tri-state) cannot be simulated by tpegen")
        ports = [p.name for p in c.pins.values()]
        lines = [f"module {name} ({', '.join(ports)});"]
        lines += [f"  input {p.name};" for p in c.inputs]
        lines += [f"  output {p.name};" for p in c.outputs]
        try:
            if c.ff is not None:
                ff = c.ff
                lines.append(f"  reg {ff.iq} = 1'b0;")
                lines.append(f"  wire {ff.iqn} = ~{ff.iq};")
                lines.append(f"  wire tpegen_clk = {function_to_verilog(ff.clocked_on)};")
                events = ["posedge tpegen_clk"]
                body = []
                if ff.clear:
                    lines.append(f"  wire tpegen_clr = {function_to_verilog(ff.clear)};")
                    events.append("posedge tpegen_clr")
                    body.append(f"if (tpegen_clr) {ff.iq} <= 1'b0;")
                if ff.preset:
                    lines.append(f"  wire tpegen_pre = {function_to_verilog(ff.preset)};")
                    events.append("posedge tpegen_pre")
                    body.append(("else " if body else "") + f"if (tpegen_pre) {ff.iq} <= 1'b1;")
                body.append(("else " if body else "") + f"{ff.iq} <= {function_to_verilog(ff.next_state)};")
                lines.append(f"  always @({' or '.join(events)}) begin")
                lines += [f"    {b}" for b in body]
                lines.append("  end")
            for p in c.outputs:
                if not p.function:
                    raise TpegenError(f"{lib.path}: output {name}.{p.name} has no function")
                lines.append(f"  assign {p.name} = {function_to_verilog(p.function)};")
        except ValueError as exc:
            raise TpegenError(f"{lib.path}: cell {name}: {exc}") from None
        lines.append("endmodule")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _clock_gate_verilog(lib: Library, c: Cell) -> str:
    """Behavioural model of an integrated clock-gating cell (:func:`tpegen.synth.clock_gating.clock_gate`):
    a latch open while the clock is low, ANDed with the clock; test pins are assumed tied low."""
    from tpegen.synth.clock_gating import clock_gate

    try:
        icg = clock_gate(c)
    except ValueError as exc:
        raise TpegenError(
            f"{lib.path}: clock-gating cell {c.name} cannot be simulated by tpegen: {exc}"
        ) from None
    ports = [p.name for p in c.pins.values()]
    return "\n".join(
        [
            f"module {c.name} ({', '.join(ports)});",
            *[f"  input {p.name};" for p in c.inputs],
            f"  output {icg.out};",
            "  reg tpegen_iq = 1'b0;",
            f"  always @({icg.clock} or {icg.enable}) if (!{icg.clock}) tpegen_iq = {icg.enable};",
            f"  assign {icg.out} = {icg.clock} & tpegen_iq;",
            "endmodule",
        ]
    )


# ----------------------------------------------------------------------------- compact library


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def compact_liberty(
    src: Library,
    cells: dict[str, str],
    *,
    name: str,
    loads: tuple[float, float],
    slews: tuple[float, float],
    header: str = "",
    extra: list[str] | tuple[str, ...] = (),
) -> str:
    """Write a reduced Liberty library: cells ``{new_name: source_cell}``, every table resampled to
    2x2 (``loads`` x ``slews``, library units) — linear in load and slew, exact at the samples.
    ``extra`` lines (more cells, using the same table templates) end the library group."""

    def tbl(kind: str, t: Table, template: str) -> list[str]:
        if len(t.variables) == 1:
            vals = ", ".join(_fmt(t.lookup(slew=s)) for s in slews)
            return [f"{kind} ({template}_1d) {{", f'  values ("{vals}");', "}"]
        rows = ", ".join(
            '"' + ", ".join(_fmt(t.lookup(load=ld, slew=s)) for s in slews) + '"' for ld in loads
        )
        return [f"{kind} ({template}) {{", f"  values ({rows});", "}"]

    def ind(lines: list[str], n: int) -> list[str]:
        return [" " * n + s for s in lines]

    ld = ", ".join(_fmt(x) for x in loads)
    sl = ", ".join(_fmt(x) for x in slews)
    out = [
        header.rstrip(),
        f"library ({name}) {{",
        "  delay_model : table_lookup;",
        '  time_unit : "1ns";',
        '  voltage_unit : "1V";',
        '  current_unit : "1uA";',
        '  leakage_power_unit : "1nW";',
        "  capacitive_load_unit (1, pf);",
        f"  nom_voltage : {_fmt(src.voltage)};",
        "  nom_process : 1;",
        "  nom_temperature : 27;",
        "  slew_lower_threshold_pct_rise : 20; slew_upper_threshold_pct_rise : 80;",
        "  slew_lower_threshold_pct_fall : 20; slew_upper_threshold_pct_fall : 80;",
        "  input_threshold_pct_rise : 50; input_threshold_pct_fall : 50;",
        "  output_threshold_pct_rise : 50; output_threshold_pct_fall : 50;",
        "  lu_table_template (delay_2x2) {",
        "    variable_1 : total_output_net_capacitance;",
        "    variable_2 : input_net_transition;",
        f'    index_1 ("{ld}");',
        f'    index_2 ("{sl}");',
        "  }",
        "  lu_table_template (delay_2x2_1d) {",
        "    variable_1 : input_net_transition;",
        f'    index_1 ("{sl}");',
        "  }",
        "  lu_table_template (constraint_2x2_1d) {",
        "    variable_1 : constrained_pin_transition;",
        f'    index_1 ("{sl}");',
        "  }",
        "  power_lut_template (energy_2x2) {",
        "    variable_1 : total_output_net_capacitance;",
        "    variable_2 : input_transition_time;",
        f'    index_1 ("{ld}");',
        f'    index_2 ("{sl}");',
        "  }",
        "  power_lut_template (energy_2x2_1d) {",
        "    variable_1 : input_transition_time;",
        f'    index_1 ("{sl}");',
        "  }",
    ]
    # scale factors from the source units to ns / pF / nW
    tscale, cscale = src.time_ns, src.cap_pf
    if abs(tscale - 1) > 1e-12 or abs(cscale - 1) > 1e-12:
        raise TpegenError("compact_liberty expects a source library in ns and pF units")
    for new, old in cells.items():
        c = src.cell(old)
        out.append(f"  cell ({new}) {{  /* = {src.name} {old} */")
        out.append(f"    area : {_fmt(c.area)};")
        out.append(f"    cell_leakage_power : {_fmt(c.leakage * src.leak_nw)};")
        if c.ff:
            ff = c.ff
            out.append(f"    ff ({ff.iq}, {ff.iqn}) {{")
            out.append(f'      next_state : "{ff.next_state}";')
            out.append(f'      clocked_on : "{ff.clocked_on}";')
            if ff.clear:
                out.append(f'      clear : "{ff.clear}";')
            if ff.preset:
                out.append(f'      preset : "{ff.preset}";')
            out.append("    }")
        for p in c.pins.values():
            out.append(f"    pin ({p.name}) {{")
            out.append(f"      direction : {p.direction};")
            if p.direction == "input":
                out.append(f"      capacitance : {_fmt(p.capacitance)};")
            if p.clock:
                out.append("      clock : true;")
            if p.function:
                out.append(f'      function : "{p.function}";')
            if p.direction != "input":
                for arc in p.timing:
                    out.append("      timing () {")
                    out.append(f'        related_pin : "{arc.related_pin}";')
                    if arc.timing_type != "combinational":
                        out.append(f"        timing_type : {arc.timing_type};")
                    for k in ("cell_rise", "rise_transition", "cell_fall", "fall_transition"):
                        t = getattr(arc, k)
                        if t is not None:
                            out += ind(tbl(k, t, "delay_2x2"), 8)
                    out.append("      }")
            else:
                for arc in p.timing:
                    if arc.timing_type not in ("setup_rising", "setup_falling"):
                        continue
                    out.append("      timing () {")
                    out.append(f'        related_pin : "{arc.related_pin}";')
                    out.append(f"        timing_type : {arc.timing_type};")
                    for k in ("rise_constraint", "fall_constraint"):
                        t = getattr(arc, k)
                        if t is not None:
                            vals = ", ".join(_fmt(t.lookup(slew=s)) for s in slews)
                            out += [
                                f"        {k} (constraint_2x2_1d) {{",
                                f'          values ("{vals}");',
                                "        }",
                            ]
                    out.append("      }")
            for pw in p.power:
                out.append("      internal_power () {")
                if pw.related_pin:
                    out.append(f'        related_pin : "{pw.related_pin}";')
                for k, t in (("rise_power", pw.rise), ("fall_power", pw.fall)):
                    if t is not None:
                        out += ind(tbl(k, t, "energy_2x2"), 8)
                out.append("      }")
            out.append("    }")
        out.append("  }")
    out += extra
    out.append("}")
    return "\n".join(out) + "\n"


# Cells of the built-in library and the OSU FreePDK45 (gscl45nm) cells they are sampled from.
BUILTIN_CELLS = {
    "INV_X1": "INVX1",
    "INV_X4": "INVX4",
    "BUF_X2": "BUFX2",
    "BUF_X4": "BUFX4",
    "NAND2_X1": "NAND2X1",
    "NOR2_X1": "NOR2X1",
    "AND2_X1": "AND2X1",
    "OR2_X1": "OR2X1",
    "XOR2_X1": "XOR2X1",
    "XNOR2_X1": "XNOR2X1",
    "AOI21_X1": "AOI21X1",
    "OAI21_X1": "OAI21X1",
    "MUX2_X1": "MUX2X1",
    "DFF_X1": "DFFPOSX1",
}

BUILTIN_HEADER = """/*
 * tpegen45 -- compact 45 nm cell library shipped with tpegen (typical corner, 1.1 V, 27 C).
 *
 * Every number in this file is sampled from the OSU FreePDK45 standard-cell library
 * "gscl45nm.lib" (Oklahoma State University, FreePDK45 OSU cells, typical corner, 1.1 V;
 * distributed with the OSU FreePDK45 design flow, https://vlsiarch.ecen.okstate.edu/flows/):
 *   area, cell_leakage_power, pin capacitance, function and ff groups: copied verbatim from the
 *     source cell named in the comment after each "cell (...)";
 *   every delay/transition/internal-power/setup table: the source table evaluated (bilinear,
 *     exactly as tpegen.synth.liberty.Table.lookup) at output loads {0.1, 0.5} pF and input slews
 *     {0.06, 0.24} ns -- the first grid points of the source tables, so linear extrapolation to the
 *     small loads of real nets gives the same values as the source library.
 * ICG_X1, the integrated clock-gating cell (gscl45nm has none), is composed from gscl45nm INVX1,
 *   LATCH and AND2X1 (GCLK = CLK & IQ, IQ = E latched while CLK is low): area and leakage are the
 *   parts' sums, pin capacitances, delays, setup and internal energies are composed from the parts'
 *   tables as documented in tpegen/synth/clock_gating.py.
 * Regenerate with: python -c "from tpegen.synth.liberty import make_builtin; make_builtin('gscl45nm.lib')"
 * Synchronous resets are mapped by yosys into logic in front of DFF_X1 (no reset flop is needed).
 */
"""


def make_builtin(source: str | Path, dest: str | Path = BUILTIN_LIBERTY) -> Path:
    """Regenerate the built-in ``tpegen45.lib`` from the OSU FreePDK45 ``gscl45nm.lib`` (with the
    integrated clock-gating cell of :func:`tpegen.synth.clock_gating.builtin_icg_liberty`)."""
    from tpegen.synth.clock_gating import builtin_icg_liberty

    src = read_liberty(source)
    loads, slews = (0.1, 0.5), (0.06, 0.24)
    text = compact_liberty(
        src,
        BUILTIN_CELLS,
        name="tpegen45",
        loads=loads,
        slews=slews,
        header=BUILTIN_HEADER + f"/* source sha256: {src.sha256} */\n",
        extra=builtin_icg_liberty(src, loads=loads, slews=slews),
    )
    Path(dest).write_text(text)
    return Path(dest)
