"""The registry of hardware families: one table, one entry per family and organization.

Every design tpegen can build is one :class:`Entry` of :data:`ENTRIES`. An entry names, as
``"module:Class"`` strings resolved lazily (so reading the table imports nothing heavy):

* the **parameters** -- ``pe_params`` (the ``pe:`` section) and ``array_params`` (the ``array:``
  section, a dataclass taking ``pe=``; ``None`` when ``pe_params`` holds both sections, its
  ``array:`` fields marked ``field(metadata={"section": "array"})``). Both live in ``tpegen.hw``;
* the **generator** -- the Amaranth component in ``tpegen.hw``, built as ``Generator(config.array)``;
* the **driver** -- the :class:`tpegen.sw.accelerator.Accelerator` subclass in ``tpegen.sw`` that
  carries the numeric model (``golden``), the timing model (``cycles`` and ``schedule``, the
  cycle-level simulator's :class:`~tpegen.sim.cycle.TileSchedule`) and the stream mapping
  (``program``);
* the **system kind** -- the key of :data:`tpegen.hw.system.sequencers.SEQUENCERS` whose EXEC
  sequencer drives the array inside the accelerator top (``None``: no accelerator top yet).

A family (the config's ``pe.type``) has one or several organizations. With several, ``selector``
names the config field whose value is the organization (``"pe.dataflow"`` for the MAC systolic
array: ``os`` or ``ws``); all entries of a family share the parameter classes and the selector.
A family with one organization has ``selector=None``.

Adding a family or an organization is one more :class:`Entry` in the tuple below, e.g.::

    Entry(
        family="dot",                                   # pe.type
        organization="matrix2d",                        # value of the selector field
        selector="array.organization",                  # or None for a single organization
        pe_params="tpegen.hw.pe.mac_params:MacPEParams",
        array_params="tpegen.hw.arrays.dot_tile:DotTileParams",
        generator="tpegen.hw.arrays.dot_tile:DotTile",
        driver="tpegen.sw.dot_tile:DotTileAccelerator",
        system=None,                                    # or a SEQUENCERS kind
        description="2D-Matrix dot-product tile",
    ),

``tests/test_registry.py`` then checks that every reference resolves, that the driver's
``cycles()`` equals the cycle simulator's timeline for every shipped config, and
``tests/test_layering.py`` that nothing under ``hw/`` imports ``tpegen.sim``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from tpegen.errors import ConfigError

__all__ = [
    "ENTRIES",
    "FAMILIES",
    "Entry",
    "combinations",
    "entry_for",
    "family_entries",
    "lookup",
    "organization_of",
    "resolve",
]


@dataclass(frozen=True)
class Entry:
    """One hardware family in one organization (see the module docstring for every field)."""

    family: str  # the config's pe.type
    organization: str  # the selector field's value (the family's only organization if selector is None)
    pe_params: str  # "module:Class" in tpegen.hw: the pe: section
    array_params: str | None  # "module:Class" in tpegen.hw taking pe=...: the array: section; None: combined
    generator: str  # "module:Class" in tpegen.hw: the Amaranth component, Class(config.array)
    driver: str  # "module:Class" in tpegen.sw: the Accelerator subclass (golden, cycles, schedule, program)
    system: str | None  # kind of tpegen.hw.system.sequencers.SEQUENCERS; None: no accelerator top
    selector: str | None = None  # "section.field" whose value is the organization; None: one organization
    description: str = ""

    @property
    def key(self) -> str:
        """``family/organization``, or just ``family`` when the family has one organization."""
        return self.family if self.selector is None else f"{self.family}/{self.organization}"


ENTRIES: tuple[Entry, ...] = (
    Entry(
        family="mac",
        organization="os",
        selector="pe.dataflow",
        pe_params="tpegen.hw.pe.mac_params:MacPEParams",
        array_params="tpegen.hw.arrays.systolic_params:SystolicParams",
        generator="tpegen.hw.arrays.systolic:SystolicArray",
        driver="tpegen.sw.systolic:SystolicAccelerator",
        system="os",
        description="output-stationary systolic array of integer MAC PEs",
    ),
    Entry(
        family="mac",
        organization="ws",
        selector="pe.dataflow",
        pe_params="tpegen.hw.pe.mac_params:MacPEParams",
        array_params="tpegen.hw.arrays.systolic_params:SystolicParams",
        generator="tpegen.hw.arrays.systolic:SystolicArray",
        driver="tpegen.sw.systolic:SystolicAccelerator",
        system="ws",
        description="weight-stationary systolic array of integer MAC PEs",
    ),
    Entry(
        family="fma",
        organization="os",
        selector="pe.dataflow",
        pe_params="tpegen.hw.pe.fma:FmaPEParams",
        array_params="tpegen.hw.arrays.fp_engine:FpEngineParams",
        generator="tpegen.hw.arrays.fp_engine:FpSystolicEngine",
        driver="tpegen.sw.fp:FpAccelerator",
        system="os",
        description="output-stationary systolic array of floating-point FMA PEs",
    ),
    Entry(
        family="lut",
        organization="core",
        pe_params="tpegen.hw.arrays.lut_params:LutCoreParams",
        array_params=None,
        generator="tpegen.hw.arrays.lut_core:LutCore",
        driver="tpegen.sw.lut:LutAccelerator",
        system="lut",
        description="LUT tensor core (bit-serial weights, shared half tables)",
    ),
    # Dot-product tile family (hw/arrays/dot_params.py): one generator and driver, three TPE
    # organizations. matrix2d and cube3d generate the same RTL for the same shape; addertree is the
    # tile_m = 1 case. The accelerator top drives it with the "lut" sequencer (the LUT core's
    # streams, planes = 1; W rows hold plain weights, see tpegen.sim.system_rows.weight_code).
    *(
        Entry(
            family="dot",
            organization=organization,
            selector="pe.organization",
            pe_params="tpegen.hw.arrays.dot_params:DotTileParams",
            array_params=None,
            generator="tpegen.hw.arrays.dot_tile:DotTile",
            driver="tpegen.sw.dot_tile:DotTileAccelerator",
            system="lut",
            description=description,
        )
        for organization, description in (
            ("matrix2d", "2D-Matrix dot-product tile (tensor core): adder trees over K, A and W broadcast"),
            ("addertree", "multiplier-adder tree: dot-product units sharing one activation vector"),
            ("cube3d", "3D-Cube: M x N x K multipliers, reduction trees over K"),
        )
    ),
    Entry(
        family="bitserial",
        organization="tile",
        pe_params="tpegen.hw.arrays.bitserial_params:BitSerialParams",
        array_params=None,
        generator="tpegen.hw.arrays.bitserial:BitSerialTile",
        driver="tpegen.sw.bitserial:BitSerialAccelerator",
        system=None,
        description="bit-serial tile over radix-4 weight digits with zero skipping, columns synchronized",
    ),
)


def _check(entries: tuple[Entry, ...]) -> dict[str, tuple[Entry, ...]]:
    """Group ``entries`` by family; a family's entries must agree on parameters and selector."""
    families: dict[str, list[Entry]] = {}
    for e in entries:
        group = families.setdefault(e.family, [])
        if group:
            first = group[0]
            shared = ("pe_params", "array_params", "selector")
            if any(getattr(e, f) != getattr(first, f) for f in shared):
                raise ValueError(f"registry: {e.key} disagrees with {first.key} on {shared}")
            if e.selector is None:
                raise ValueError(f"registry: family {e.family!r} has several organizations but no selector")
            if any(o.organization == e.organization for o in group):
                raise ValueError(f"registry: {e.key} is registered twice")
        if e.selector is not None and e.selector.split(".")[0] not in ("pe", "array"):
            raise ValueError(f"registry: {e.key}: selector must be 'pe.<field>' or 'array.<field>'")
        group.append(e)
    return {name: tuple(group) for name, group in families.items()}


FAMILIES: dict[str, tuple[Entry, ...]] = _check(ENTRIES)
"""Entries by family (``pe.type``), in table order."""


def resolve(ref: str) -> Any:
    """The object a ``"module:Name"`` reference names (imports the module)."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def combinations() -> list[str]:
    """Every registered family/organization, e.g. ``['mac/os', 'mac/ws', 'fma/os', 'lut']``."""
    return [e.key for e in ENTRIES]


def family_entries(family: Any) -> tuple[Entry, ...]:
    """The entries of ``family``; a :class:`ConfigError` on ``pe.type`` names the families."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ConfigError("pe.type", "one of " + ", ".join(repr(f) for f in FAMILIES), family)
    return FAMILIES[family]


def lookup(family: Any, organization: Any = None) -> Entry:
    """The entry of ``family`` in ``organization`` (``None``: the family's only organization).

    An unknown family or organization is a :class:`ConfigError` naming the field (``pe.type`` or
    the selector) and every allowed combination."""
    entries = family_entries(family)
    if entries[0].selector is None and organization in (None, entries[0].organization):
        return entries[0]
    for e in entries:
        if e.organization == organization:
            return e
    field = entries[0].selector or "organization"
    allowed = ", ".join(repr(e.organization) for e in entries)
    raise ConfigError(
        field,
        f"one of {allowed} for pe.type {family!r} (registered: {', '.join(combinations())})",
        organization,
    )


def organization_of(family: str, pe: Any, array: Any) -> str:
    """The organization a family's built parameters select (the selector field's value)."""
    entries = family_entries(family)
    selector = entries[0].selector
    if selector is None:
        return entries[0].organization
    section, name = selector.split(".", 1)
    return getattr(pe if section == "pe" else array, name)


def entry_for(config: Any) -> Entry:
    """The entry of a :class:`tpegen.config.DesignConfig` (its family and organization)."""
    return lookup(config.family, organization_of(config.family, config.pe, config.array))
