"""Compiler for the accelerator system: GEMMs and chains of layers -> command programs.

:func:`compile_gemm` maps ``C = A @ W`` and :func:`compile_mlp` a chain of integer layers
(GEMM -> requantize (+ReLU) -> GEMM ...) onto one design's accelerator top
(:mod:`tpegen.hw.system`). The result, a :class:`CompiledProgram`, holds the commands
(:mod:`tpegen.hw.system.isa`), the initial host-memory image (operands, requantization
parameters, zeroed output areas), where each output lives and the host traffic the program will
cause. Run it with :func:`tpegen.sw.runtime.run_program`.

Modules: :mod:`.layout` (host image per family), :mod:`.tiling` (block sizes and loop orders),
:mod:`.emit` (commands of the EXEC steps), :mod:`.tokens` (token waits from hazards),
:mod:`.program` (the result types).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError
from tpegen.hw.system import isa
from tpegen.hw.system.isa import Format
from tpegen.hw.system.params import SystemGeometry, SystemParams
from tpegen.sim.intgemm import check_operand
from tpegen.sw.compiler.emit import Emitter
from tpegen.sw.compiler.layout import HostImage, a_lanes, out_tensor, place, q_table, units, w_lanes
from tpegen.sw.compiler.program import CompiledProgram, HostTensor, Layer, Requant, Traffic
from tpegen.sw.compiler.tiling import Op, Src, Tiling, c_rows_per_unit


def _finish(config, g, em: Emitter, host: HostImage, outputs, macs: int, head: list[str]) -> CompiledProgram:
    b = em.b
    program = b.instructions()
    isa.check_program(program, g)
    traffic = Traffic(b.read_bytes, b.written_bytes, dict(b.traffic))
    per = ", ".join(f"{k} {v}" for k, v in traffic.by_tensor.items())
    notes = [
        *head,
        *em.notes,
        f"expected host traffic: read {traffic.read} B, written {traffic.written} B ({per})",
        f"{len(program)} commands, {macs} MACs",
    ]
    return CompiledProgram(config, g, program, host.image(), outputs, traffic, macs, notes)


def _header(config, g: SystemGeometry) -> list[str]:
    s = g.system
    return [
        f"tpegen system program for {config.name} ({g.kind}{' fma' if g.fp else ''}, "
        f"{g.rows}x{g.cols}), axi {s.axi_bytes} B, queues {s.queue_depth}",
        f"memories: A {g.a_depth} x {g.a_row_bits} b, W {g.w_depth} x {g.w_row_bits} b, "
        f"C {g.acc_depth} x {g.acc_row_bits} b, Q {g.q_depth} x {g.q_row_bits} b",
    ]


def compile_gemm(
    config: Any,
    a: np.ndarray,
    w: np.ndarray,
    *,
    out_format: str = "raw",
    requant: Requant | None = None,
    relu: bool = False,
    system: SystemParams | None = None,
) -> CompiledProgram:
    """Program computing ``C = A @ W`` on ``config``'s accelerator; output ``"C"``.

    ``out_format``: ``raw`` (accumulator lanes), ``int8`` (integer families; needs ``requant``,
    per output channel, optional ``relu``) or ``bf16`` (FMA). ``system`` overrides the config's
    ``system:`` section."""
    g = SystemGeometry.of(config, system)
    if out_format not in g.output_formats():
        raise ConfigError("out_format", "one of " + ", ".join(g.output_formats()), out_format)
    if (requant is not None) != (out_format == "int8"):
        raise ConfigError("requant", "given exactly when out_format is int8", requant)
    if relu and out_format != "int8":
        raise ConfigError("relu", "used with out_format int8", relu)
    a, w = config.accelerator().check_operands(a, w)
    m, k = a.shape
    n = w.shape[1]
    host = HostImage()
    mu, ku, nu = units(g, m, k, n)
    a_rows, sa = a_lanes(config, g, a)
    w_rows, sw = w_lanes(config, g, w)
    a_src = Src("A", place(host, config, g, "A", a_rows), sa, g.load_pitch("A"))
    w_src = Src("W", place(host, config, g, "W", w_rows), sw, g.load_pitch("W"))
    q = q_table(host, g, requant.entries(n), per_row=False) if requant is not None else None
    out, tensor = out_tensor(host, g, "C", mu, nu, mu * c_rows_per_unit(g), (m, n), out_format)
    op = Op("gemm", mu, nu, ku, a_src, w_src, out, Format[out_format.upper()], relu, q)
    em = Emitter(g, config)
    em.op(op)
    head = [*_header(config, g), f"gemm: M={m} K={k} N={n} -> {out_format}, units m{mu} k{ku} n{nu}"]
    return _finish(config, g, em, host, {"C": tensor}, m * k * n, head)


def compile_mlp(
    config: Any, x: np.ndarray, layers: Sequence[Layer], system: SystemParams | None = None
) -> CompiledProgram:
    """Program running a chain of integer layers on a MAC array: ``x @ W0 -> requant (+ReLU) ->
    @ W1 -> ...``; each layer's stored int8 output is the next layer's input in host memory.

    WS keeps activations batch-major (an output row = C channels of one sample, requantized per
    lane); OS computes ``Y^T = W^T X^T`` (A operand = weights, W operand = X^T, an output row =
    one channel, requantized per row), so each stored output is exactly the next input's layout.
    Outputs: ``"Y"`` (last layer) and ``"layer<l>"`` for the others."""
    g = SystemGeometry.of(config, system)
    if config.family != "mac":
        raise ConfigError("pe.type", "mac (layer chains run on integer MAC arrays)", config.family)
    if not layers:
        raise ConfigError("layers", "at least one layer", 0)
    pe = config.array.pe
    # roles: the activations travel in the a lanes (WS) or the w lanes (OS, transposed)
    act_bits, act_signed, wt_bits, wt_signed = (
        (pe.act_bits, pe.act_signed, pe.weight_bits, pe.weight_signed)
        if g.kind == "ws"
        else (pe.weight_bits, pe.weight_signed, pe.act_bits, pe.act_signed)
    )
    if len(layers) > 1 and not (act_bits == 8 and act_signed):
        lanes = "pe.act_bits" if g.kind == "ws" else "pe.weight_bits"
        raise ConfigError(
            lanes, "8 (signed) so that an int8 layer output is the next layer's input", act_bits
        )
    if g.kind == "ws" and len(layers) > 1 and g.rows != g.cols:
        raise ConfigError("array.rows", f"equal to array.cols ({g.cols}) for a WS layer chain", g.rows)
    chained = "A" if g.kind == "ws" else "W"  # the memory a stored layer output is loaded into
    if len(layers) > 1 and g.store_pitch("int8") != g.load_pitch(chained):  # follows from the checks above
        raise TpegenError(f"int8 output rows and {chained} rows have different host pitches")
    x = check_operand("x", x, act_bits, act_signed)
    m = x.shape[0]
    host = HostImage()
    em = Emitter(g, config)
    outputs: dict[str, HostTensor] = {}
    macs = 0
    head = _header(config, g)
    prev: Src | None = None
    k = x.shape[1]
    for li, layer in enumerate(layers):
        w = check_operand(f"layers[{li}].w", layer.w, wt_bits, wt_signed)
        if w.shape[0] != k:
            raise ConfigError(f"layers[{li}].w", f"{k} rows (the previous width)", w.shape)
        n = w.shape[1]
        last = li == len(layers) - 1
        if layer.requant is None and not last:
            raise ConfigError(f"layers[{li}].requant", "given (an int8 output feeds the next layer)", None)
        if layer.relu and layer.requant is None:
            raise ConfigError(f"layers[{li}].relu", "used with a requantized (int8) output", layer.relu)
        fmt = "int8" if layer.requant is not None else "raw"
        name = "Y" if last else f"layer{li}"
        label = f"L{li}"
        if g.kind == "ws":
            mu, ku, nu = units(g, m, k, n)
            if prev is None:
                lanes, sa = a_lanes(config, g, x)
                prev = Src("x", place(host, config, g, "A", lanes), sa, g.load_pitch("A"))
            a_src = prev
            w_rows, sw = w_lanes(config, g, w)
            w_src = Src(f"{label}.W", place(host, config, g, "W", w_rows), sw, g.load_pitch("W"))
            out, tensor = out_tensor(host, g, name, mu, nu, m, (m, n), fmt)
            per_row = False
        else:  # OS: Y^T (n x m) = W^T (n x k) @ X^T (k x m)
            mu, ku, nu = units(g, n, k, m)
            a_rows, sa = a_lanes(config, g, w.T)
            a_src = Src(f"{label}.W", place(host, config, g, "A", a_rows), sa, g.load_pitch("A"))
            if prev is None:
                lanes, sw = w_lanes(config, g, x.T)
                prev = Src("x", place(host, config, g, "W", lanes), sw, g.load_pitch("W"))
            w_src = prev
            out, tensor = out_tensor(host, g, name, mu, nu, mu * g.rows, (m, n), fmt, transposed=True)
            per_row = True
        q = None
        if layer.requant is not None:
            entries = layer.requant.entries(n)
            if per_row:  # padded channels of the last tile get zero entries
                entries = np.concatenate([entries, np.zeros(mu * g.rows - n, dtype=np.uint64)])
            q = q_table(host, g, entries, per_row)
        out = Src(out.name, out.addr, out.stride, out.pitch, produced=not last)
        op = Op(label, mu, nu, ku, a_src, w_src, out, Format[fmt.upper()], layer.relu, q)
        em.op(op)
        head.append(
            f"{label}: M={m} K={k} N={n} -> {fmt}{' relu' if layer.relu else ''}, units m{mu} k{ku} n{nu}"
        )
        outputs[name] = tensor
        macs += m * k * n
        prev, k = out, n
    return _finish(config, g, em, host, outputs, macs, head)


__all__ = [
    "CompiledProgram",
    "HostTensor",
    "Layer",
    "Requant",
    "Tiling",
    "Traffic",
    "compile_gemm",
    "compile_mlp",
]
