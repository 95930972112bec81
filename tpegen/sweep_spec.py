"""Sweep specs: load and validate the YAML that describes a design-space sweep, and expand its points.

The format is documented in :mod:`tpegen.sweep`. Every mistake is a one-line
:class:`~tpegen.errors.ConfigError` naming the field (``axes.array.rows``, ``metrics[2]``,
``constraints[0]``, ...) and the allowed values, as for design configs (:mod:`tpegen.config`). A
point whose design config is invalid is not a spec error: :func:`point_config` raises it per point
and the sweep records that point as failed.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpegen.config import DesignConfig, config_from_dict, parse_yaml, resolve_config_path
from tpegen.errors import ConfigError, TpegenError

SPEC_KEYS = ("name", "description", "base", "fixed", "axes", "points", "mode", "workloads", "metrics")
SPEC_KEYS += ("period_ns", "liberty", "constraints", "objectives")
MODES = ("product", "zip")  # "points" is the mode of a spec with an explicit point list
# metric -> (columns it adds to a row, whether it depends on the workload)
METRICS: dict[str, tuple[tuple[str, ...], bool]] = {
    "area": (("area", "memory_area"), False),
    "delay": (("delay",), False),
    "energy_per_op": (("energy_per_op",), False),
    "energy": (("energy",), True),
    "time": (("time",), True),
    "cycles": (("cycles",), True),
    "utilization": (("utilization",), True),
    "accuracy": (("accuracy", "accuracy_float", "accuracy_drop"), True),
}
UNITS = {  # column -> (unit on a plot axis, what the column counts, for summary.md)
    "area": ("um^2", "um^2, logic + black-boxed memories"),
    "memory_area": ("um^2", "um^2, black-boxed memories (SRAM model), part of area"),
    "delay": ("ns", "ns, critical path"),
    "energy_per_op": ("pJ/MAC", "pJ per MAC on the design's steady-state GEMM"),
    "energy": ("uJ", "uJ on the workload"),
    "time": ("ms", "ms on the workload, at period_ns or else at the design's delay"),
    "cycles": ("cycles", "cycles"),
    "utilization": ("of peak", "fraction of peak"),
    "accuracy": ("top-1", "top-1, mapped"),
    "accuracy_float": ("top-1", "top-1, float32"),
    "accuracy_drop": ("points", "float - mapped"),
}
SENSES = ("min", "max")
OPERATORS = ("<=", ">=", "<", ">", "==")
BASE_AXIS = "base"
NAME_AXIS = "name"  # a point's label in an explicit point list
MODEL_SUFFIXES = (".onnx", ".pt2")
NATIVE_QUANT = "native"  # a model workload's quant that follows each point's operand format
FP_QUANT = {"bf16": "BF16", "fp16": "FP16", "fp8_e4m3fn": "FP8"}  # by an FP engine's input format


def native_quant(config: dict[str, Any]) -> str:
    """The quantization format that matches a design's operands (a resolved config dict): BF16,
    FP16 or FP8 by a floating-point engine's input format, else ``W{weight_bits}A{act_bits}``."""
    pe = config["pe"]
    if "input_format" in pe:
        return FP_QUANT.get(pe["input_format"], pe["input_format"])
    return f"W{pe['weight_bits']}A{pe['act_bits']}"


MAX_POINTS = 100_000
MAX_SPEC_BYTES = 1 << 20
_GEMM = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Workload:
    """One workload of a sweep: a GEMM ``M x K x N``, a model (built-in, or an ``.onnx`` / ``.pt2``
    file: ``model`` is then its absolute path and ``digest`` the SHA-256 of its bytes, with an input
    batch and optional labels) mapped at a quantization format, or a SCALE-Sim topology (its GEMM
    shapes, read when the spec is loaded)."""

    label: str
    kind: str  # "gemm" | "model" | "topology"
    shape: tuple[int, int, int] | None = None
    model: str | None = None
    quant: str | None = None
    layers: tuple[tuple[str, int, int, int], ...] = ()
    digest: str | None = None
    inputs: tuple[str, str] | None = None  # a model file's input batch (.npy): (path, SHA-256)
    labels: tuple[str, str] | None = None  # and its class labels, for accuracy


@dataclass(frozen=True)
class Constraint:
    """``column op value``, e.g. ``accuracy_drop <= 0.01``; a point must satisfy it in every row
    that has the column."""

    column: str
    op: str
    value: float
    text: str

    def holds(self, x: float) -> bool:
        return {
            "<=": x <= self.value,
            ">=": x >= self.value,
            "<": x < self.value,
            ">": x > self.value,
            "==": x == self.value,
        }[self.op]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see :mod:`tpegen.sweep` for the YAML format).

    ``bases`` maps a base label to its raw config dict; ``axes`` maps a dotted config field (or
    ``base``) to its values; ``fixed`` holds dotted fields set on every point. With an explicit
    point list (``mode == "points"``), ``explicit`` holds each point's fields and ``axes`` the
    columns they fill (``name``, ``base`` and every field some point sets; None where a point keeps
    its base's value). ``liberty`` is ``(absolute path, SHA-256)`` of the Liberty file, or None for
    the built-in library.
    """

    name: str
    description: str
    bases: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]
    mode: str
    workloads: tuple[Workload, ...]
    metrics: tuple[str, ...]
    period_ns: float | None
    constraints: tuple[Constraint, ...]
    objectives: tuple[tuple[tuple[str, str], tuple[str, str]], ...]
    liberty: tuple[str, str] | None = None
    explicit: tuple[dict[str, Any], ...] = ()
    source: str = "spec"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def columns(self) -> list[str]:
        """The metric columns of a result row, in order."""
        return [c for m in self.metrics for c in METRICS[m][0]]

    def points(self) -> list[dict[str, Any]]:
        """The axis values of every point, in sweep order (``product``: the last axis fastest; an
        explicit list: the fields each point sets)."""
        if self.mode == "points":
            return [dict(p) for p in self.explicit]
        names = list(self.axes)
        if self.mode == "zip" and self.axes:
            combos = zip(*self.axes.values(), strict=True)
        else:
            combos = itertools.product(*self.axes.values())
        return [dict(zip(names, combo, strict=True)) for combo in combos]


def _fail(where: str, field_name: str, allowed: str, got: Any = None) -> ConfigError:
    return ConfigError(field_name, allowed, got, where=where)


def _set_dotted(raw: dict[str, Any], path: str, value: Any) -> None:
    section, key = path.split(".", 1)
    if not isinstance(raw.get(section), dict):
        raw[section] = {}
    raw[section][key] = value


def point_config(spec: SweepSpec, values: dict[str, Any]) -> DesignConfig:
    """The design config of one point: its base, then ``fixed``, then its axis values.

    Raises :class:`ConfigError` (one line naming the field) if that config is invalid."""
    base = values.get(BASE_AXIS, next(iter(spec.bases)))
    raw = copy.deepcopy(spec.bases[base])
    for path, value in [*spec.fixed.items(), *values.items()]:
        if path not in (BASE_AXIS, NAME_AXIS):
            _set_dotted(raw, path, value)
    return config_from_dict(raw, default_name=Path(base).stem)


def _load_base(where: str, name: Any, field_name: str, root: Path | None) -> tuple[str, dict[str, Any]]:
    """``(name, raw config)`` of a base: a path (relative to the working directory, else to the
    spec's folder ``root``) or a shipped config's name."""
    from tpegen._io import read_text_file
    from tpegen.config import MAX_CONFIG_BYTES

    if not isinstance(name, str) or not name:
        raise _fail(where, field_name, "a config path or a shipped config name (tpegen configs)", name)
    beside_spec = root / name if root is not None else None
    try:
        path = beside_spec if beside_spec and not Path(name).exists() and beside_spec.is_file() else None
        path = path or resolve_config_path(name)
        raw = parse_yaml(read_text_file(path, "config file", limit=MAX_CONFIG_BYTES), str(path))
        config_from_dict(raw, default_name=Path(path).stem)  # the base itself must be valid
    except TpegenError as exc:
        raise TpegenError(f"{where}: {field_name}: {exc}") from None
    raw = dict(raw)
    raw.setdefault("name", Path(path).stem)
    raw.pop("description", None)  # not part of the design (nor of the cache keys)
    return name, raw


def _user_file(
    where: str, field_name: str, name: Any, root: Path | None, what: str, limit: int
) -> tuple[str, str]:
    """``(absolute path, SHA-256 of its bytes)`` of a user file named in the spec: a path relative
    to the working directory, else to the spec's folder ``root``. The digest goes into the cache
    keys, so a changed file is computed anew."""
    from tpegen._io import check_input_file

    if not isinstance(name, str) or not name:
        raise _fail(where, field_name, f"a path to {what}", name)
    path = Path(name).expanduser()
    if not path.exists() and root is not None and (root / path).exists():
        path = root / path
    try:
        path, _ = check_input_file(path, what, limit=limit)
    except TpegenError as exc:
        raise TpegenError(f"{where}: {field_name}: {exc}") from None
    from tpegen.sweep_tasks import file_digest

    return str(path.resolve()), file_digest(path)


def _known_fields(bases: dict[str, dict[str, Any]]) -> set[str]:
    """Dotted fields a point may set: every field of a base's family, ``pe.type`` and ``system.*``."""
    from tpegen.hw.system.params import SystemParams

    known = {"pe.type"} | {f"system.{k}" for k in SystemParams().to_dict()}
    for raw in bases.values():
        cfg = config_from_dict(raw).to_dict()
        known |= {f"{section}.{k}" for section in ("pe", "array") for k in cfg[section]}
    return known


def _check_field(where: str, what: str, path: Any, known: set[str]) -> str:
    if not isinstance(path, str) or path not in known:
        allowed = "a config field of the base: " + ", ".join(sorted(known)) + " (unknown field)"
        raise _fail(where, what, allowed, path)
    return path


def _number(where: str, field_name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, field_name, "a finite number", value)
    return value


def _axis_values(where: str, name: str, values: Any) -> list[Any]:
    what = f"axes.{name}"
    if isinstance(values, list):
        if not values:
            raise _fail(where, what, "a non-empty list of values or a range {start, stop, step|factor}", [])
        return values
    if not isinstance(values, dict):
        raise _fail(where, what, "a non-empty list of values or a range {start, stop, step|factor}", values)
    unknown = set(values) - {"start", "stop", "step", "factor"}
    if unknown:
        raise _fail(
            where, f"{what}.{sorted(map(str, unknown))[0]}", "one of start, stop, step, factor (unknown key)"
        )
    if "start" not in values or "stop" not in values or ("step" in values) == ("factor" in values):
        raise _fail(
            where, what, "a range with start, stop (inclusive) and exactly one of step or factor", values
        )
    start = _number(where, f"{what}.start", values["start"])
    stop = _number(where, f"{what}.stop", values["stop"])
    ints = all(isinstance(v, int) for v in values.values())
    out: list[Any] = []
    if "step" in values:
        step = _number(where, f"{what}.step", values["step"])
        if step <= 0:
            raise _fail(where, f"{what}.step", "a number above 0", step)
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_POINTS:
            raise _fail(where, what, f"a range of at most {MAX_POINTS:,} values", values)
        out = [start + i * step if ints else round(start + i * step, 12) for i in range(max(count, 0))]
    else:
        factor = _number(where, f"{what}.factor", values["factor"])
        if factor <= 1 or start <= 0:
            raise _fail(where, what, "a geometric range with start above 0 and factor above 1", values)
        x = start
        while x <= stop * (1 + 1e-12) and len(out) <= MAX_POINTS:
            out.append(x if ints else round(x, 12))
            x *= factor
    if not out:
        raise _fail(where, what, "a range with at least one value (start <= stop)", values)
    return out


def _workload(where: str, i: int, item: Any, root: Path | None = None) -> Workload:
    from tpegen.sw.models import builtin_models

    what = f"workloads[{i}]"
    models = builtin_models()
    allowed = (
        "a GEMM shape 'MxKxN', a built-in model name (" + ", ".join(models) + "), "
        "{model: NAME, quant: FORMAT}, {model: FILE.onnx|.pt2, inputs: X.npy, labels: Y.npy, quant: FORMAT} "
        "or {topology: NAME_OR_CSV}"
    )
    if isinstance(item, str) and _GEMM.match(item):
        m, k, n = (int(x) for x in _GEMM.match(item).groups())
        for dim, value in zip("MKN", (m, k, n), strict=True):
            if not 1 <= value <= 1 << 24:
                raise _fail(where, f"{what}.{dim}", "an integer in 1..2^24", value)
        return Workload(label=f"{m}x{k}x{n}", kind="gemm", shape=(m, k, n))
    if isinstance(item, str):
        if item not in models:
            raise _fail(where, what, allowed, item)
        item = {"model": item}
    if not isinstance(item, dict):
        raise _fail(where, what, allowed, item)
    if "topology" in item:
        if set(item) != {"topology"}:
            raise _fail(where, what, "{topology: NAME_OR_CSV} with no other key", item)
        from tpegen.sim.topology import load_topology

        try:
            layers = load_topology(item["topology"]) if isinstance(item["topology"], str) else None
        except TpegenError as exc:
            raise TpegenError(f"{where}: {what}.topology: {exc}") from None
        if layers is None:
            raise _fail(where, f"{what}.topology", "a topology CSV path or a shipped topology name", item)
        shapes = tuple((layer.name, layer.m, layer.k, layer.n) for layer in layers)
        return Workload(label=f"topology:{Path(item['topology']).stem}", kind="topology", layers=shapes)
    unknown = set(item) - {"model", "quant", "inputs", "labels"}
    if unknown or "model" not in item:
        raise _fail(where, what, allowed, item)
    model, digest, files = item["model"], None, {}
    if isinstance(model, str) and model.endswith(MODEL_SUFFIXES):
        from tpegen._io import MAX_MATRIX_ELEMENTS
        from tpegen.sw.frontend.onnx import MAX_ONNX_BYTES

        model, digest = _user_file(where, f"{what}.model", model, root, "model file", MAX_ONNX_BYTES)
        if "inputs" not in item:
            raise _fail(where, f"{what}.inputs", "an input batch (.npy) for the model file")
        for key in ("inputs", "labels"):
            if key in item:
                limit = 16 * MAX_MATRIX_ELEMENTS
                files[key] = _user_file(where, f"{what}.{key}", item[key], root, f"{key} (.npy)", limit)
    elif model not in models:
        allowed_models = "a built-in model (" + ", ".join(models) + ") or an .onnx or .pt2 file"
        raise _fail(where, f"{what}.model", allowed_models, model)
    elif {"inputs", "labels"} & set(item):
        key = sorted({"inputs", "labels"} & set(item))[0]
        raise _fail(where, f"{what}.{key}", "omitted for a built-in model (it brings its test split)")
    from tpegen.sw.quant import parse_scheme

    quant = item.get("quant", "W8A8")
    if quant != NATIVE_QUANT:
        try:
            quant = parse_scheme(quant).name
        except ConfigError as exc:
            allowed_quant = f"{exc.allowed}, or {NATIVE_QUANT} (each point's own operand format)"
            raise _fail(where, f"{what}.quant", allowed_quant, quant) from None
    label = f"{Path(model).name if digest else model}:{quant}"
    return Workload(label=label, kind="model", model=model, quant=quant, digest=digest, **files)


def _explicit_points(
    where: str, raw: Any, bases: dict[str, dict[str, Any]], known: set[str], fixed: dict[str, Any]
) -> tuple[tuple[dict[str, Any], ...], dict[str, list[Any]]]:
    """The validated ``points:`` list and the columns it fills (see :class:`SweepSpec`)."""
    allowed = "a non-empty list of points, each a mapping of dotted config fields (and name, base)"
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "points", allowed, raw)
    if len(raw) > MAX_POINTS:
        raise _fail(where, "points", f"at most {MAX_POINTS:,} points", len(raw))
    points: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        what = f"points[{i}]"
        if not isinstance(item, dict) or not item:
            raise _fail(where, what, "a mapping of dotted config fields (and name, base) to values", item)
        for key, value in item.items():
            if key == NAME_AXIS:
                if not isinstance(value, str) or not 0 < len(value) <= 64:
                    raise _fail(where, f"{what}.name", "a string of 1..64 characters", value)
            elif key == BASE_AXIS:
                if value not in bases:
                    raise _fail(where, f"{what}.base", "one of the spec's bases: " + ", ".join(bases), value)
            else:
                _check_field(where, f"{what}.{key}", key, known)
                if key in fixed:
                    raise _fail(where, f"{what}.{key}", "a field not also in fixed", key)
        points.append(dict(item))
    names = [p[NAME_AXIS] for p in points if NAME_AXIS in p]
    if len(set(names)) != len(names):
        raise _fail(
            where, "points", "points of distinct names", sorted({n for n in names if names.count(n) > 1})
        )
    columns = [NAME_AXIS] if names else []
    columns += [BASE_AXIS] if len(bases) > 1 else []
    columns += list(dict.fromkeys(k for p in points for k in p if k not in (NAME_AXIS, BASE_AXIS)))
    return tuple(points), {c: [p.get(c) for p in points] for c in columns}


def _objective(where: str, i: int, item: Any, columns: list[str]) -> tuple[tuple[str, str], tuple[str, str]]:
    what = f"objectives[{i}]"
    allowed = "a mapping of two metric columns to min or max, e.g. {area: min, cycles: min}"
    if not isinstance(item, dict) or len(item) != 2:
        raise _fail(where, what, allowed, item)
    pair = []
    for column, sense in item.items():
        if column not in columns:
            raise _fail(where, f"{what}.{column}", "a metric column of this sweep: " + ", ".join(columns))
        if sense not in SENSES:
            raise _fail(where, f"{what}.{column}", "min or max", sense)
        pair.append((column, sense))
    return pair[0], pair[1]


def _constraint(where: str, i: int, item: Any, columns: list[str]) -> Constraint:
    what = f"constraints[{i}]"
    match = _CONSTRAINT.match(item) if isinstance(item, str) else None
    if match is None:
        raise _fail(where, what, "'COLUMN OP NUMBER' with OP one of " + " ".join(OPERATORS), item)
    column, op, number = match.groups()
    if column not in columns:
        raise _fail(
            where, what, "a constraint on a metric column of this sweep: " + ", ".join(columns), column
        )
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _fail(where, what, "a finite number after the operator", number)
    return Constraint(column=column, op=op, value=value, text=f"{column} {op} {number}")


def parse_sweep_spec(raw: Any, where: str = "sweep spec", root: Path | None = None) -> SweepSpec:
    """Validate a parsed sweep spec (a mapping, as loaded from YAML) into a :class:`SweepSpec`;
    ``root`` is the spec's folder (base config paths are also looked up there)."""
    if not isinstance(raw, dict):
        raise _fail(where, "spec", "a mapping with keys " + ", ".join(SPEC_KEYS), type(raw).__name__)
    for key in raw:
        if key not in SPEC_KEYS:
            raise _fail(where, str(key), "one of the keys " + ", ".join(SPEC_KEYS) + " (unknown key)")
    name = raw.get("name", Path(where).stem)
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise _fail(where, "name", "a string of 1..64 characters", name)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description", "a string", description)

    base = raw.get("base")
    names = base if isinstance(base, list) else [base]
    if not names or base is None:
        raise _fail(where, "base", "a config path or shipped config name, or a non-empty list of them", base)
    bases = dict(
        _load_base(where, b, "base" if len(names) == 1 else f"base[{i}]", root) for i, b in enumerate(names)
    )
    if len(bases) != len(names):
        raise _fail(where, "base", "a list of distinct configs", base)
    known = _known_fields(bases)

    fixed_raw = raw.get("fixed", {}) or {}
    if not isinstance(fixed_raw, dict):
        raise _fail(where, "fixed", "a mapping of dotted config fields to values", fixed_raw)
    fixed = {_check_field(where, f"fixed.{k}", k, known): v for k, v in fixed_raw.items()}

    explicit: tuple[dict[str, Any], ...] = ()
    if "points" in raw:
        for other in ("axes", "mode"):
            if other in raw:
                raise _fail(where, other, "omitted when the spec lists its points")
        explicit, points_axes = _explicit_points(where, raw["points"], bases, known, fixed)
    axes_raw = raw.get("axes", {}) or {}
    if not isinstance(axes_raw, dict):
        raise _fail(where, "axes", "a mapping of dotted config fields (e.g. array.rows) to values", axes_raw)
    axes: dict[str, list[Any]] = {}
    if isinstance(base, list):
        axes[BASE_AXIS] = list(bases)
    for key, values in axes_raw.items():
        _check_field(where, f"axes.{key}", key, known)
        if key in fixed:
            raise _fail(where, f"axes.{key}", "a field not also in fixed", key)
        axes[key] = _axis_values(where, key, values)
    mode = raw.get("mode", "product")
    if mode not in MODES:
        raise _fail(where, "mode", "product or zip", mode)
    if mode == "zip" and len({len(v) for v in axes.values()}) > 1:
        lengths = ", ".join(f"{k}: {len(v)}" for k, v in axes.items())
        raise _fail(where, "axes", f"axes of one length with mode zip ({lengths})")
    count = (
        math.prod(len(v) for v in axes.values()) if mode == "product" else len(next(iter(axes.values()), [0]))
    )
    if count > MAX_POINTS:
        raise _fail(where, "axes", f"at most {MAX_POINTS:,} points", count)
    if explicit:
        mode, axes = "points", points_axes

    metrics_raw = raw.get("metrics")
    if not isinstance(metrics_raw, list) or not metrics_raw:
        raise _fail(where, "metrics", "a non-empty list of " + ", ".join(METRICS), metrics_raw)
    for i, m in enumerate(metrics_raw):
        if m not in METRICS:
            raise _fail(where, f"metrics[{i}]", "one of " + ", ".join(METRICS), m)
    metrics = tuple(m for m in METRICS if m in metrics_raw)  # canonical order, no duplicates

    workloads_raw = raw.get("workloads", []) or []
    if not isinstance(workloads_raw, list):
        raise _fail(where, "workloads", "a list of workloads", workloads_raw)
    workloads = tuple(_workload(where, i, w, root) for i, w in enumerate(workloads_raw))
    if len({w.label for w in workloads}) != len(workloads):
        raise _fail(where, "workloads", "a list of distinct workloads", [w.label for w in workloads])
    needs = [m for m in metrics if METRICS[m][1]]
    if needs and not workloads:
        raise _fail(
            where, "workloads", f"given for the metrics {', '.join(needs)} (a GEMM 'MxKxN' or a model)"
        )
    if "accuracy" in metrics and not any(w.kind == "model" for w in workloads):
        raise _fail(where, "workloads", "a model workload (e.g. digits_cnn) for the metric accuracy")

    from tpegen.synth.yosys import check_period

    period_ns = check_period(raw.get("period_ns"), "period_ns")
    liberty = None
    if raw.get("liberty") is not None:
        from tpegen.synth.liberty import MAX_LIBERTY_BYTES

        liberty = _user_file(where, "liberty", raw["liberty"], root, "Liberty file", MAX_LIBERTY_BYTES)
    columns = [c for m in metrics for c in METRICS[m][0]]
    constraints_raw = raw.get("constraints", []) or []
    if not isinstance(constraints_raw, list):
        raise _fail(where, "constraints", "a list of 'COLUMN OP NUMBER' strings", constraints_raw)
    constraints = tuple(_constraint(where, i, c, columns) for i, c in enumerate(constraints_raw))
    objectives_raw = raw.get("objectives", []) or []
    if not isinstance(objectives_raw, list):
        raise _fail(
            where, "objectives", "a list of metric pairs, e.g. [{area: min, cycles: min}]", objectives_raw
        )
    objectives = tuple(_objective(where, i, o, columns) for i, o in enumerate(objectives_raw))
    return SweepSpec(
        name=name,
        description=description,
        bases=bases,
        fixed=fixed,
        axes=axes,
        mode=mode,
        workloads=workloads,
        metrics=metrics,
        period_ns=period_ns,
        constraints=constraints,
        objectives=objectives,
        liberty=liberty,
        explicit=explicit,
        source=where,
        raw=raw,
    )


def shipped_sweeps() -> dict[str, Path]:
    """The sweep specs that ship with tpegen (``configs/sweeps/*.yaml``), by name."""
    from importlib.resources import files

    root = Path(str(files("tpegen.configs"))) / "sweeps"
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}


def load_sweep_spec(spec: str | Path | dict[str, Any] | SweepSpec) -> SweepSpec:
    """A :class:`SweepSpec` from a YAML path, a shipped sweep's name (``array_size``), a mapping
    or a spec; a relative base config path is looked up in the working directory, then beside the spec."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        return parse_sweep_spec(spec)
    from tpegen._io import read_text_file

    path = Path(spec)
    if not path.exists() and path.suffix == "" and str(spec) in shipped_sweeps():
        path = shipped_sweeps()[str(spec)]
    text = read_text_file(path, "sweep spec", limit=MAX_SPEC_BYTES)
    return parse_sweep_spec(parse_yaml(text, str(path)), str(path), path.parent)
