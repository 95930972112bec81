"""Import workloads from SCALE-Sim topology CSV files as a list of GEMMs.

Two formats, told apart by the header row (SCALE-Sim 3.0's ``topology_utils``; every row may end
with a trailing comma, blank lines are skipped):

* **GEMM**: ``Layer, M, N, K,`` -- C (M x N) = A (M x K) @ W (K x N).
* **Convolution**: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
  Channels, Num Filter, Strides,`` -- a valid (unpadded) convolution with the same stride in both
  directions; padding is expressed, as in SCALE-Sim, by giving the padded IFMAP size. It is
  lowered by im2col to ``M = OFMAP_h x OFMAP_w`` output pixels, ``K = Filter_h x Filter_w x
  Channels`` and ``N = Num Filter``, with ``OFMAP = ceil((IFMAP - Filter + Stride) / Stride)``
  (SCALE-Sim's formula). A layer whose name contains ``DP`` is depth-wise and, as in SCALE-Sim,
  becomes one single-channel GEMM per channel.

An optional last column holds SCALE-Sim's N:M sparsity ratio; only dense ``1:1`` is supported.
Any bad row raises :class:`~tpegen.errors.ConfigError` whose one-line message names the file,
the row (1-based line number) and the column.

**Limits** (checked while parsing, before anything is allocated): a file of at most
:data:`MAX_FILE_BYTES` (16 MiB), numbers of at most :data:`MAX_VALUE` (2^24) and at most
:data:`MAX_GEMMS` (2^16) GEMMs per topology, depth-wise channels included. The timing model needs
only the shapes (the cycle-level simulator bounds the tiles per GEMM); runs that materialize a
layer's operands (exact outputs, the accelerator top's compiler) also check
:func:`check_operand_elements`: at most :data:`MAX_ELEMENTS` (2^22) elements in A, W and C of one
GEMM together (M*K + K*N + M*N; this also bounds such a layer to about 1.6e9 MACs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tpegen.errors import ConfigError, TpegenError

GEMM_COLUMNS = ("Layer", "M", "N", "K")
CONV_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)


MAX_FILE_BYTES = 16 << 20  # a topology file (a 2^16-layer topology is a few MiB)
MAX_VALUE = 1 << 24  # any number in a row
MAX_ELEMENTS = 1 << 22  # M*K + K*N + M*N of one GEMM (~200 MiB peak in the numeric models)
MAX_GEMMS = 1 << 16  # GEMMs in one topology (a depth-wise layer counts one per channel)


@dataclass(frozen=True)
class ConvShape:
    """A convolution layer as given in a SCALE-Sim conv topology (padding folded into the IFMAP)."""

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int

    @property
    def ofmap(self) -> tuple[int, int]:
        s = self.stride
        return (
            math.ceil((self.ifmap_h - self.filter_h + s) / s),
            math.ceil((self.ifmap_w - self.filter_w + s) / s),
        )


@dataclass(frozen=True)
class Layer:
    """One GEMM of a workload: ``C (M x N) = A (M x K) @ W (K x N)``, and the conv it came from."""

    name: str
    m: int
    k: int
    n: int
    conv: ConvShape | None = None

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def check_layer(layer: Layer, where: str = "topology") -> Layer:
    """Return ``layer`` if its dimensions are integers in 1..:data:`MAX_VALUE`; otherwise raise
    :class:`~tpegen.errors.ConfigError` naming the layer and the limit."""
    for dim, value in (("M", layer.m), ("K", layer.k), ("N", layer.n)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VALUE:
            raise ConfigError(
                f"layer {layer.name[:60]!r}: {dim}",
                f"an integer in 1..{MAX_VALUE} (2^24)",
                value,
                where=where,
            )
    return layer


def check_operand_elements(layers: list[Layer], where: str, why: str) -> None:
    """Raise :class:`~tpegen.errors.ConfigError` naming the first layer whose A, W and C together hold
    more than :data:`MAX_ELEMENTS` elements; ``why`` says what materializes them."""
    for layer in layers:
        m, k, n = layer.m, layer.k, layer.n
        elements = m * k + k * n + m * n
        if elements > MAX_ELEMENTS:
            raise ConfigError(
                f"layer {layer.name[:60]!r}: M*K + K*N + M*N (elements of A, W and C)",
                f"<= {MAX_ELEMENTS} (2^22; {why} materializes the operands)",
                f"{m}*{k} + {k}*{n} + {m}*{n} = {elements}",
                where=where,
            )


def check_layers(layers: list[Layer], where: str = "topology") -> list[Layer]:
    """Check a list of :class:`Layer` given directly (not parsed): types, count and every layer's
    dimensions (:func:`check_layer`)."""
    if not layers or len(layers) > MAX_GEMMS:
        raise ConfigError(where, f"1..{MAX_GEMMS} (2^16) layers", f"{len(layers)} layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ConfigError(f"{where}[{i}]", "a tpegen.sim.topology.Layer", layer)
        check_layer(layer, where)
    return layers


def im2col_shape(conv: ConvShape) -> tuple[int, int, int]:
    """``(M, K, N)`` of a convolution lowered by im2col."""
    oh, ow = conv.ofmap
    return oh * ow, conv.filter_h * conv.filter_w * conv.channels, conv.filters


def _fields(line: str) -> list[str]:
    fields = [f.strip() for f in line.split(",")]
    while fields and fields[-1] == "":
        fields.pop()
    return fields


def _detect(header: list[str], where: str) -> str:
    low = [h.lower().replace(" ", "") for h in header]
    if any("ifmap" in h or "filter" in h for h in low):
        return "conv"
    if low[1:4] == ["m", "n", "k"]:
        return "gemm"
    raise ConfigError(
        "row 1 (header)",
        "a SCALE-Sim GEMM header (" + ", ".join(GEMM_COLUMNS) + ") or conv header ("
        "" + ", ".join(CONV_COLUMNS) + ")",
        ",".join(header),
        where=where,
    )


def parse_topology(text: str, *, where: str = "topology") -> list[Layer]:
    """Parse the text of a SCALE-Sim topology CSV (GEMM or conv format, see module docstring)."""
    lines = text.splitlines()
    rows = [(n + 1, _fields(line)) for n, line in enumerate(lines) if line.strip()]
    if not rows:
        raise TpegenError(f"{where}: empty topology file (expected a header row and layers)")
    (_, header), body = rows[0], rows[1:]
    kind = _detect(header, where)
    columns = GEMM_COLUMNS if kind == "gemm" else CONV_COLUMNS
    if not body:
        raise TpegenError(f"{where}: no layers after the header row")
    layers: list[Layer] = []
    for row, fields in body:
        if len(fields) < len(columns) or any(f == "" for f in fields[: len(columns)]):
            missing = next(
                (c for i, c in enumerate(columns) if i >= len(fields) or fields[i] == ""), columns[-1]
            )
            raise ConfigError(f"row {row}, column '{missing}'", "present", where=where)
        extra = fields[len(columns) :]
        if len(extra) > 1 or (extra and extra[0] != "1:1"):
            raise ConfigError(
                f"row {row}, column {len(columns) + 1} (sparsity)",
                "absent or 1:1 (only dense layers are supported)",
                ",".join(extra),
                where=where,
            )
        values = []
        for col, text_value in zip(columns[1:], fields[1 : len(columns)], strict=True):
            try:
                value = int(text_value)
            except ValueError:
                value = None
            if value is None or not 1 <= value <= MAX_VALUE:
                allowed = f"an integer in 1..{MAX_VALUE} (2^24)"
                raise ConfigError(f"row {row}, column '{col}'", allowed, text_value, where=where)
            values.append(value)
        name = fields[0]
        if kind == "gemm":
            m, n, k = values
            layers.append(check_layer(Layer(name, m, k, n), f"{where}: row {row}"))
            _check_count(len(layers), where, row)
            continue
        conv = ConvShape(*values)
        for dim, filt, col in ((conv.ifmap_h, conv.filter_h, "Filter Height"), (conv.ifmap_w, conv.filter_w, "Filter Width")):  # fmt: skip
            if filt > dim:
                raise ConfigError(
                    f"row {row}, column '{col}'", f"at most the IFMAP size {dim}", filt, where=where
                )
        if "DP" in name:  # depth-wise: one single-channel GEMM per channel (as SCALE-Sim does)
            one = ConvShape(*values[:4], 1, *values[5:])
            m, k, n = im2col_shape(one)
            check_layer(Layer(name, m, k, n, one), f"{where}: row {row}")
            _check_count(len(layers) + conv.channels, where, row)
            layers.extend(Layer(f"{name}Channel_{c}", m, k, n, one) for c in range(conv.channels))
        else:
            m, k, n = im2col_shape(conv)
            layers.append(check_layer(Layer(name, m, k, n, conv), f"{where}: row {row}"))
            _check_count(len(layers), where, row)
    return layers


def _check_count(gemms: int, where: str, row: int) -> None:
    if gemms > MAX_GEMMS:
        raise ConfigError(
            f"row {row}",
            f"within {MAX_GEMMS} (2^16) GEMMs per topology (a depth-wise layer counts one per channel)",
            f"{gemms} GEMMs up to this row",
            where=where,
        )


def shipped_topologies() -> dict[str, Path]:
    """The topologies that ship with tpegen (package data), by file name without ``.csv``."""
    from importlib.resources import files

    root = Path(str(files("tpegen.configs"))) / "topologies"
    return {p.stem: p for p in sorted(root.glob("*.csv"))}


def load_topology(path: str | Path) -> list[Layer]:
    """Read a SCALE-Sim topology CSV file (or a shipped topology by name, e.g. ``resnet18_conv``)
    into GEMM layers; errors name the file, row and column."""
    from tpegen._io import read_text_file

    p = Path(path)
    if not p.exists() and p.suffix == "" and str(path) in shipped_topologies():
        p = shipped_topologies()[str(path)]
    text = read_text_file(p, "topology file", limit=MAX_FILE_BYTES)
    return parse_topology(text, where=str(p))


def to_gemm_csv(layers: list[Layer]) -> str:
    """The layers as a SCALE-Sim GEMM topology (``Layer, M, N, K,``)."""
    out = ["Layer, M, N, K,"]
    out += [f"{layer.name}, {layer.m}, {layer.n}, {layer.k}," for layer in layers]
    return "\n".join(out) + "\n"
