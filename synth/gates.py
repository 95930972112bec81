"""A mapped gate-level netlist, flat or hierarchical, as numpy arrays over one flat net space.

Yosys writes a hierarchical netlist as one JSON module per distinct module, with library cells and
instances of other modules; a 32x32 array flattens to 1.45 million cells, which neither the
WebAssembly Yosys (4 GB) nor a Python dict per cell holds comfortably. :func:`load_gates` flattens
it here instead, with numpy: each distinct module becomes a *template* once (its library cells as
``(cells, pins)`` arrays of local net ids, its sub-instances composed from their templates by an
offset, and nets joined across ports by a vectorized union-find), so the cost grows with the number
of cells, not with Python objects per cell. A flat netlist is the one-module case of the same code.

Each cell also records which top-level instance it sits under (``scope``: the per-instance energy
breakdown) and which module defines it (``module``: the per-class breakdown, e.g. every systolic cell
instance of a 32x32 array in one line). Black-boxed memory cells (:mod:`tpegen.synth.memories`) are
kept with their multi-bit ports (:class:`MemoryCells`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tpegen.errors import TpegenError

_CONST = {"0": 0, "1": 1, "x": 0, "z": 0}  # 'x'/'z' read as 0, as in a two-state simulator


@dataclass
class CellGroup:
    """Every instance of one library cell type: ``nets[i, j]`` is the net on pin ``pins[j]`` of
    instance ``i`` (-1: unconnected); ``scope[i]`` indexes :attr:`GateNetlist.scopes`,
    ``module[i]`` :attr:`GateNetlist.modules`."""

    ctype: str
    pins: tuple[str, ...]
    nets: np.ndarray
    scope: np.ndarray
    module: np.ndarray

    def __len__(self) -> int:
        return len(self.nets)

    def pin(self, name: str) -> np.ndarray:
        """The nets on pin ``name`` (-1 where unconnected, all -1 if the type has no such pin)."""
        if name not in self.pins:
            return np.full(len(self.nets), -1, dtype=np.int64)
        return self.nets[:, self.pins.index(name)]


@dataclass
class MemoryCells:
    """Every instance of one black-boxed memory type: ``ports[name]`` is ``(instances, width)``."""

    ctype: str
    ports: dict[str, np.ndarray]
    scope: np.ndarray
    module: np.ndarray

    def __len__(self) -> int:
        return len(self.scope)


@dataclass
class GateNetlist:
    """A flattened mapped netlist: nets ``0..n_nets-1`` (0 and 1 are the constants), library cells
    grouped by type, black-boxed memories, and the top's ports (``name -> (direction, nets)``).
    ``top_nets[b]`` is the net of the top module's Yosys bit ``b`` (the VCD path maps names with it)."""

    top: str
    n_nets: int
    groups: dict[str, CellGroup]
    memories: dict[str, MemoryCells]
    ports: dict[str, tuple[str, list[int]]]
    scopes: list[str]
    modules: list[str]
    top_nets: np.ndarray = field(repr=False)

    @property
    def cells(self) -> int:
        return sum(len(g) for g in self.groups.values()) + sum(len(m) for m in self.memories.values())


@dataclass
class _Template:
    """One module, flattened: ``n`` local nets, its ports' nets, cells per type (``inst``: index of
    the module's own sub-instance the cell sits under, 0 for its own cells)."""

    n: int
    ports: dict[str, tuple[str, np.ndarray]]
    cells: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # type -> (nets, inst, module)
    instances: list[str]
    yosys: np.ndarray  # local net of each of the module's own Yosys bits


def _bits(bits: list) -> np.ndarray:
    return np.array([b if isinstance(b, int) else _CONST[b] for b in bits], dtype=np.int64)


def _scope(attrs: dict) -> str:
    """The top-level submodule a cell of a netlist flattened by ``flatten -scopename`` came from."""
    name = attrs.get("scopename") or attrs.get("hdlname") or ""
    if attrs.get("hdlname") and not attrs.get("scopename"):
        name = " ".join(str(name).split(" ")[:-1])
    parts = str(name).split(" ")
    return parts[0] if parts and parts[0] else ""


def _union(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Labels of the classes of nets joined by the pairs ``(a[i], b[i])``: each class is labelled by
    its smallest member, so a class holding a constant (0 or 1) keeps it."""
    lab = np.arange(n, dtype=np.int64)
    while True:
        ra, rb = lab[a], lab[b]
        low = np.minimum(ra, rb)
        if np.array_equal(ra, rb):
            return lab
        np.minimum.at(lab, ra, low)
        np.minimum.at(lab, rb, low)
        while True:  # pointer jumping: every entry points at its root
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt


class _Flattener:
    def __init__(self, modules: dict, pins_of) -> None:
        self.json = modules
        self.pins_of = pins_of  # library cell type -> its pins (None: not a library cell)
        self.names: list[str] = []
        self.done: dict[str, _Template] = {}

    def module_index(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def template(self, name: str, stack: tuple[str, ...] = ()) -> _Template:
        if name in self.done:
            return self.done[name]
        if name in stack:
            raise TpegenError(f"netlist: module {name} instantiates itself")
        mod = self.json[name]
        me = self.module_index(name)
        ports = {p: (d["direction"], _bits(d["bits"])) for p, d in mod.get("ports", {}).items()}
        own = [b for p in mod.get("ports", {}).values() for b in p["bits"] if isinstance(b, int)]
        own += [
            b
            for c in mod.get("cells", {}).values()
            for bs in c["connections"].values()
            for b in bs
            if isinstance(b, int)
        ]
        own += [b for v in mod.get("netnames", {}).values() for b in v["bits"] if isinstance(b, int)]
        n = max(own + [1]) + 1
        yosys = np.arange(n, dtype=np.int64)
        cells: dict[str, list] = {}
        instances: list[str] = [""]
        join_a: list[np.ndarray] = []
        join_b: list[np.ndarray] = []
        for cname, c in mod.get("cells", {}).items():
            ctype, conns = c["type"], c["connections"]
            pins = self.pins_of(ctype)
            if pins is not None:
                row = np.array([_bits(conns[p])[0] if conns.get(p) else -1 for p in pins], dtype=np.int64)
            elif self.json.get(ctype, {}).get("attributes", {}).get("blackbox"):  # a memory macro
                row = np.concatenate(
                    [
                        _bits(conns[p]) if conns.get(p) else np.full(len(d["bits"]), -1, dtype=np.int64)
                        for p, d in self.json[ctype].get("ports", {}).items()
                    ]
                )
            elif ctype in self.json:
                child = self.template(ctype, (*stack, name))
                instances.append(cname)
                remap = np.concatenate([[0, 1], n + np.arange(child.n - 2, dtype=np.int64)])
                n += child.n - 2
                for port, (_, cbits) in child.ports.items():
                    if port in conns:
                        pbits = _bits(conns[port])
                        if len(pbits) != len(cbits):
                            raise TpegenError(
                                f"netlist: {name}.{cname}.{port} has {len(pbits)} bits, not {len(cbits)}"
                            )
                        join_a.append(remap[cbits])
                        join_b.append(pbits)
                inst = len(instances) - 1
                for t, (nets, _, mods) in child.cells.items():
                    mapped = np.where(nets >= 0, remap[np.maximum(nets, 0)], -1)
                    cells.setdefault(t, []).append((mapped, np.full(len(nets), inst, dtype=np.int32), mods))
                continue
            else:
                raise TpegenError(
                    f"netlist: cell {cname} of {name} has type {ctype}: not a library cell or a module"
                )
            scope = _scope(c.get("attributes", {}))  # a flattened netlist's submodule instance
            if scope and scope not in instances:
                instances.append(scope)
            inst = instances.index(scope) if scope else 0
            cells.setdefault(ctype, []).append(
                (row[None, :], np.full(1, inst, dtype=np.int32), np.full(1, me, dtype=np.int32))
            )
        merged = {
            t: tuple(np.concatenate(parts) for parts in zip(*lst, strict=True)) for t, lst in cells.items()
        }
        if join_a:
            lab = _union(n, np.concatenate(join_a), np.concatenate(join_b))
            keep, lab = np.unique(lab, return_inverse=True)  # classes renumbered, constants stay 0 and 1
            if keep[0] != 0 or keep[1] != 1:
                raise TpegenError(f"netlist: module {name} ties the constants 0 and 1 together")
            n = len(keep)
            merged = {
                t: (np.where(nets >= 0, lab[np.maximum(nets, 0)], -1), i, m)
                for t, (nets, i, m) in merged.items()
            }
            ports = {p: (d, lab[b]) for p, (d, b) in ports.items()}
            yosys = lab[yosys]
        tpl = _Template(n, ports, merged, instances, yosys)
        self.done[name] = tpl
        return tpl


def load_gates(path: Path, top: str, lib) -> GateNetlist:
    """Flatten the Yosys JSON netlist ``path`` below ``top`` onto library ``lib``'s cells (module
    docstring). Instances of black-box modules are memories; their nets are kept per port."""
    data = json.loads(Path(path).read_text())
    modules = data.get("modules", {})
    if top not in modules:
        raise TpegenError(f"{path}: no module {top}")

    def pins_of(ctype: str):
        cell = lib.cells.get(ctype)
        return None if cell is None else tuple(cell.pins)

    flat = _Flattener(modules, pins_of)
    tpl = flat.template(top)
    groups: dict[str, CellGroup] = {}
    memories: dict[str, MemoryCells] = {}
    for ctype, (nets, inst, mods) in tpl.cells.items():
        pins = pins_of(ctype)
        if pins is not None:
            groups[ctype] = CellGroup(ctype, pins, nets, inst, mods)
            continue
        stub = modules[ctype].get("ports", {})
        cuts = np.cumsum([0, *(len(d["bits"]) for d in stub.values())])
        memories[ctype] = MemoryCells(
            ctype, {p: nets[:, cuts[i] : cuts[i + 1]] for i, p in enumerate(stub)}, inst, mods
        )
    ports = {p: (d, [int(b) for b in bits]) for p, (d, bits) in tpl.ports.items()}
    return GateNetlist(top, tpl.n, groups, memories, ports, tpl.instances, flat.names, tpl.yosys)
