"""Load design configurations (YAML) into validated, frozen parameter dataclasses.

A config file has the sections::

    name: int8_os_16x16          # optional; defaults to the file name
    description: ...             # optional
    pe:    {type: mac, act_bits: 8, weight_bits: 8, acc_bits: 32, dataflow: os, ...}
    array: {rows: 16, cols: 16}

``pe.type`` selects the hardware family and, for a family with several organizations, a field
such as ``pe.dataflow`` the organization: the table of :mod:`tpegen.registry` (re-exported here as
``FAMILIES``) names the parameter classes, the generator and the driver of each. Unknown keys,
wrong types and out-of-range values are rejected with a :class:`~tpegen.errors.ConfigError`
naming the field and the allowed values.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tpegen.errors import ConfigError, TpegenError, short_repr
from tpegen.hw.system.params import SystemParams
from tpegen.registry import FAMILIES as FAMILIES  # re-exported: the families by pe.type
from tpegen.registry import entry_for, family_entries, lookup, organization_of, resolve

# A family whose parameters are one dataclass for both sections ("combined") marks the fields of the
# ``array:`` section with ``field(metadata={"section": "array"})``; all other fields are ``pe:``.
SECTION = "section"

TOP_KEYS = ("name", "description", "pe", "array", "system")
MAX_NAME_LENGTH = 64

DEFAULT_CONFIG: dict[str, Any] = {
    "name": "int8_os_16x16",
    "description": "16x16 output-stationary systolic array of INT8 x INT8 MACs, 32-bit accumulators "
    "(the default design)",
    "pe": {
        "type": "mac",
        "act_bits": 8,
        "weight_bits": 8,
        "act_signed": True,
        "weight_signed": True,
        "acc_bits": 32,
        "dataflow": "os",
    },
    "array": {"rows": 16, "cols": 16},
}


def _type_name(tp: Any) -> str:
    return {int: "an integer", bool: "true or false", float: "a number", str: "a string"}.get(tp, str(tp))


def _section_fields(cls: type, section: str, *, combined: bool, exclude=()) -> list[dataclasses.Field]:
    return [
        f
        for f in dataclasses.fields(cls)
        if f.init and f.name not in exclude and (not combined or f.metadata.get(SECTION, "pe") == section)
    ]


def _check_section(cls: type, values: Any, section: str, fields: list[dataclasses.Field]) -> dict[str, Any]:
    """Reject unknown keys, missing required keys and values of the wrong type in one section."""
    if not isinstance(values, dict):
        raise ConfigError(section, "a mapping of keys to values", values)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields]
    for key in values:
        if key not in names:
            raise ConfigError(f"{section}.{key}", "one of the keys " + ", ".join(names) + " (unknown key)")
    for f in fields:
        if f.name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{section}.{f.name}", f"given ({_type_name(hints[f.name])}; required)")
            continue
        value, tp = values[f.name], hints[f.name]
        allowed = tuple(t for t in (typing.get_args(tp) or (tp,)) if isinstance(t, type))
        if type(None) in allowed and value is None:
            continue
        ok = not allowed or any(
            (t is int and isinstance(value, int) and not isinstance(value, bool))
            or (t is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (t not in (int, float) and isinstance(value, t))
            for t in allowed
        )
        if not ok:
            raise ConfigError(
                f"{section}.{f.name}",
                " or ".join(_type_name(t) for t in allowed if t is not type(None)),
                value,
            )
    return dict(values)


def dataclass_from_dict(cls: type, values: dict[str, Any], section: str, **inject: Any) -> Any:
    """Build ``cls`` from a YAML mapping, rejecting unknown keys and values of the wrong type."""
    fields = _section_fields(cls, section, combined=False, exclude=inject)
    return cls(**_check_section(cls, values, section, fields), **inject)


@dataclass(frozen=True)
class DesignConfig:
    """A validated hardware design: name, family, PE parameters and array parameters."""

    name: str
    family: str
    pe: Any
    array: Any
    description: str = ""
    system: SystemParams = dataclasses.field(default_factory=SystemParams)

    def to_dict(self) -> dict[str, Any]:
        combined = self.pe is self.array
        sections = {}
        for section, params in (("pe", self.pe), ("array", self.array)):
            fields = _section_fields(type(params), section, combined=combined, exclude=("pe",))
            sections[section] = {f.name: getattr(params, f.name) for f in fields}
        pe = {"type": self.family, **sections["pe"]}
        out = {"name": self.name, "description": self.description, "pe": pe, "array": sections["array"]}
        if self.system != SystemParams():
            out["system"] = self.system.to_dict()
        return out

    def accelerator(self):
        """The :class:`tpegen.sw.accelerator.Accelerator` that drives this design."""
        return resolve(entry_for(self).driver)(self)


def config_from_dict(raw: Any, *, default_name: str = "design") -> DesignConfig:
    if not isinstance(raw, dict):
        raise ConfigError("config", "a mapping with sections " + ", ".join(TOP_KEYS), type(raw).__name__)
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(str(key), "one of the top-level keys " + ", ".join(TOP_KEYS) + " (unknown key)")
    for section in ("pe", "array"):
        if section not in raw:
            raise ConfigError(section, "present (a mapping)")
        if not isinstance(raw[section], dict):
            raise ConfigError(section, "a mapping of keys to values", raw[section])
    pe_raw = dict(raw["pe"])
    family = pe_raw.pop("type", None)
    fam = family_entries(family)[0]  # the family's parameter classes (shared by its organizations)
    if "accumulation" in pe_raw and family != "mac":
        raise ConfigError(
            "pe.accumulation",
            f"left out for pe.type {family!r} (carry-save accumulation needs a systolic column's edge "
            "adder: pe.type 'mac' only)",
            pe_raw["accumulation"],
        )
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise ConfigError(
            "name", f"a string of 1..{MAX_NAME_LENGTH} characters (it names the Verilog top)", name
        )
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError("description", "a string", description)
    if fam.array_params is None:
        cls = resolve(fam.pe_params)
        pe_vals = _check_section(cls, pe_raw, "pe", _section_fields(cls, "pe", combined=True))
        array_vals = _check_section(cls, raw["array"], "array", _section_fields(cls, "array", combined=True))
        pe = array = cls(**pe_vals, **array_vals)
    else:
        pe = dataclass_from_dict(resolve(fam.pe_params), pe_raw, "pe")
        array = dataclass_from_dict(resolve(fam.array_params), raw["array"], "array", pe=pe)
    lookup(family, organization_of(family, pe, array))  # a registered family/organization
    system = SystemParams.from_dict(raw.get("system"))
    return DesignConfig(name=name, family=family, pe=pe, array=array, description=description, system=system)


MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config is a few hundred bytes
MAX_YAML_NODES = 100_000  # nodes after expanding aliases (a YAML "billion laughs" stays bounded)


def _expanded_nodes(root: yaml.Node) -> int:
    """Number of nodes ``root`` stands for once every alias is expanded (memoized, iterative)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_YAML_NODES + 1)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def parse_yaml(text: str, where: str) -> Any:
    """Parse one YAML document with PyYAML's safe loader, bounded in nesting and alias expansion.

    Every failure -- syntax, an unknown or malformed tag, nesting too deep, an alias bomb -- is a
    one-line :class:`TpegenError` naming ``where``.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            return None
        if _expanded_nodes(root) > MAX_YAML_NODES:
            raise TpegenError(
                f"{where}: YAML has more than {MAX_YAML_NODES:,} nodes once its aliases are expanded"
            )
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where_line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or ""
        raise TpegenError(
            f"{where}: not valid YAML{where_line}" + (f": {problem}" if problem else "")
        ) from None
    except RecursionError:
        raise TpegenError(f"{where}: YAML nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. "!!int x", "!!float []"
        raise TpegenError(
            f"{where}: not valid YAML: a tagged value cannot be read ({short_repr(str(exc))})"
        ) from None


SWEEPS_FOLDER = "sweeps"  # configs/sweeps/ holds sweep specs (tpegen.sweep), not design configs


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with tpegen (package data), by name: ``int8_os_16x16``,
    ``compare/lut_w2a8_128``, ... (the path below the configs folder without ``.yaml``; the sweep
    specs in ``configs/sweeps/`` are not design configs)."""
    from importlib.resources import files

    root = Path(str(files("tpegen.configs")))
    paths = [p for p in sorted(root.rglob("*.yaml")) if p.relative_to(root).parts[0] != SWEEPS_FOLDER]
    return {str(p.relative_to(root).with_suffix("")): p for p in paths}


def resolve_config_path(path: str | Path) -> Path:
    """``path`` itself if it exists (or looks like a path), else the shipped config of that name."""
    p = Path(path)
    if p.exists() or p.suffix in (".yaml", ".yml") or str(path) == "":
        return p
    shipped = shipped_configs()
    if str(path) in shipped:
        return shipped[str(path)]
    raise TpegenError(
        f"{path}: no such config file, and no shipped config of that name (see 'tpegen configs')"
    )


def load_config(path: str | Path | None = None) -> DesignConfig:
    """Load and validate a YAML design config; ``None`` gives the built-in default (int8_os_16x16).

    ``path`` is a file or the name of a shipped config (:func:`shipped_configs`)."""
    if path is None:
        return config_from_dict(DEFAULT_CONFIG)
    from tpegen._io import read_text_file

    path = resolve_config_path(path)

    text = read_text_file(path, "config file", limit=MAX_CONFIG_BYTES)
    path = Path(path)
    raw = parse_yaml(text, str(path))
    try:
        return config_from_dict(raw, default_name=path.stem)
    except ConfigError as exc:
        raise ConfigError(exc.field, exc.allowed, exc.got, where=str(path)) from None
