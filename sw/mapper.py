"""Map a model onto a generated accelerator: quantize, run every GEMM on the hardware, report per layer.

:func:`map_model` takes a model graph (:mod:`tpegen.sw.graph`: the built-in model, an imported
ONNX or PyTorch model), a hardware design and a quantization format (:mod:`tpegen.sw.quant`), and
runs the model twice on the same inputs:

* the **float32 reference**: every op in numpy float32;
* the **mapped model**: every GEMM-like op (``linear``, ``matmul``, ``conv2d`` lowered by im2col)
  quantizes its operands, runs the integer (or bf16/fp8) GEMM on the chosen backend of the
  hardware -- ``golden`` (numeric model, cycles from the timing model), ``cycle`` (the cycle-level
  simulator) or ``rtl`` (Verilator) -- and dequantizes on the host; all other ops run on the host
  in float32, as in the reference.

Per layer it reports the GEMM shape, the hardware cycles (exactly what ``tpegen gemm`` reports for
the same operands), PE utilization, host work (dequantization, zero-point and group-scale
corrections), energy when a synthesized PPA record is given, and the relative RMS error of the
layer's output against the float32 reference (errors of earlier layers included: the mapped model
feeds its own outputs forward). With labels it reports top-1 accuracy of both models.

Energy per layer comes from a ``tpegen synth`` record (``ppa``) through
:func:`tpegen.synth.ppa.energy_model`; the host's work is not included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, TpegenError, check_choice

BACKENDS = ("golden", "cycle", "rtl")
WEIGHT_METHODS = ("rtn", "gptq")  # map_model(weight_method=...): round to nearest or GPTQ (sw/gptq.py)
INT_FAMILIES = ("mac", "lut", "dot", "bitserial")
FLOAT_FAMILIES = ("fma",)


@dataclass
class LayerReport:
    """One GEMM-like layer of the mapped model.

    ``M, K, N`` is the shape of one hardware GEMM of the layer; ``gemms`` counts them (conv groups,
    batched matmul slices and K-groups of group-wise quantization each run one GEMM).
    """

    name: str
    op: str
    M: int
    K: int
    N: int
    gemms: int = 0
    macs: int = 0
    cycles: int = 0
    utilization: float = 0.0
    host_ops: int = 0
    rel_error: float = 0.0
    energy_pj: float | None = None
    rtl_check: bool | None = None  # the layer re-run on the RTL equalled this backend bit for bit
    on_host: bool = False  # an activation x activation matmul the hardware cannot take ran on the host


@dataclass
class MapReport:
    """The result of :func:`map_model` (see :meth:`to_dict` for the JSON form)."""

    model: str
    hw: str
    quant: str
    backend: str
    layers: list[LayerReport]
    host_ops_other: list[str]
    total_cycles: int
    total_macs: int
    utilization: float
    accuracy: dict[str, float] | None
    output_cosine: float
    energy_pj: float | None
    samples: int
    seconds: float
    macs_per_cycle: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``tpegen map --json`` prints (``layers`` with the documented keys first)."""
        return {
            "model": self.model,
            "hw": self.hw,
            "quant": self.quant,
            "backend": self.backend,
            "layers": [asdict(layer) for layer in self.layers],
            "host_ops": self.host_ops_other,
            "total_cycles": self.total_cycles,
            "total_macs": self.total_macs,
            "utilization": self.utilization,
            "accuracy": self.accuracy,
            "output_cosine": self.output_cosine,
            "energy_pj": self.energy_pj,
            "samples": self.samples,
            "macs_per_cycle": self.macs_per_cycle,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


# -- inputs ---------------------------------------------------------------------------------------


def load_model(model: Any, example_inputs: Any = None):
    """``(graph, default_inputs, default_labels)`` for a built-in name, an optional model's name
    (``minilm``: needs its extra), an ``.onnx``/``.pt2`` path, a :class:`~tpegen.sw.graph.Graph`,
    or a PyTorch ``nn.Module`` (with ``example_inputs``)."""
    from tpegen.sw.graph import Graph
    from tpegen.sw.models import builtin_models, load_builtin, load_optional, optional_models

    if isinstance(model, Graph):
        return model, None, None
    if isinstance(model, (str, Path)):
        text = str(model)
        if text in builtin_models():
            return load_builtin(text)
        if text in optional_models():
            return load_optional(text)
        suffix = Path(text).suffix.lower()
        if suffix == ".onnx":
            from tpegen.sw.frontend.onnx import load_onnx

            return load_onnx(text), None, None
        if suffix == ".pt2":
            from tpegen.sw.frontend.torch import load_pt2

            return load_pt2(text), None, None
        raise ConfigError(
            "MODEL",
            f"a built-in model ({', '.join(builtin_models() + optional_models())}), an .onnx or a .pt2 file",
            text,
        )
    if hasattr(model, "forward") and hasattr(model, "parameters"):
        from tpegen.sw.frontend.torch import from_module

        if example_inputs is None:
            raise ConfigError("example_inputs", "example inputs for the nn.Module (a tensor or a tuple)")
        return from_module(model, example_inputs), None, None
    raise ConfigError("model", "a built-in name, a path, a Graph or an nn.Module", type(model).__name__)


def _check_batch(
    graph, inputs: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    name = graph.inputs[0]
    shape = graph.input_shapes.get(name)
    x = np.asarray(inputs)
    if x.dtype.kind not in "iuf":
        raise ConfigError("--inputs", "a numeric array", f"dtype {x.dtype}")
    if shape is not None:
        want = tuple(shape)
        if x.ndim != len(want) or any(
            s is not None and s != d for s, d in zip(want[1:], x.shape[1:], strict=False)
        ):
            pretty = "x".join("N" if s is None else str(s) for s in want)
            raise ConfigError(
                "--inputs", f"a batch of shape {pretty} (the model's input {name!r})", f"shape {x.shape}"
            )
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ConfigError("--inputs", "finite values", "NaN or infinity")
    if labels is not None:
        y = np.asarray(labels)
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ConfigError(
                "--labels", "a 1-D integer array of class indices", f"{y.dtype} array of shape {y.shape}"
            )
        if len(y) != len(x):
            raise ConfigError("--labels", f"one label per input ({len(x)} inputs)", f"{len(y)} labels")
        labels = y.astype(np.int64)
    return x, labels


# -- hardware ---------------------------------------------------------------------------------


class HardwareGemm:
    """Runs quantized GEMMs of one layer after another on one accelerator backend and keeps the
    per-layer counts (cycles, MACs, GEMM calls)."""

    def __init__(self, acc, backend: str):
        self.acc = acc  # ``backend`` was checked by map_model (and again by Accelerator.run_gemm)
        self.backend = backend

    def run(self, a: np.ndarray, w: np.ndarray, backend: str | None = None) -> tuple[np.ndarray, int]:
        """``(C, cycles)`` of one GEMM; ``cycles`` equals ``tpegen gemm --backend B``'s."""
        backend = backend or self.backend
        result = self.acc.run_gemm(a, w, backend)
        cycles = result.cycles if result.cycles is not None else self.acc.operand_cycles(a, w)
        return result.output, int(cycles)


def _check_compatible(acc, family: str, scheme) -> None:
    """Reject a format the hardware cannot run, naming both (checked once, before any work)."""
    floating = scheme.weight_bits is None
    if floating and family not in FLOAT_FAMILIES:
        raise ConfigError(
            "--quant", f"an integer format for the {family!r} hardware (e.g. W8A8)", scheme.name
        )
    if not floating and family not in INT_FAMILIES:
        raise ConfigError(
            "--quant", f"a floating-point format for the {family!r} hardware (BF16, FP16 or FP8)", scheme.name
        )
    refused = _refused_codes(acc, scheme)
    if refused is not None:
        raise TpegenError(f"--quant {scheme.name} does not fit this hardware: {refused}")


def _refused_codes(acc, scheme) -> ConfigError | None:
    """Why ``acc`` refuses the extreme integer codes of ``scheme`` (its operand check on a 1x2 @ 2x1
    GEMM of them), or None if it takes them (or the scheme is a float format)."""
    from tpegen.sw.quant import operand_ranges

    ranges = operand_ranges(scheme)
    if ranges is None:
        return _refused_float_codes(acc, scheme)
    (a_lo, a_hi), (w_lo, w_hi) = ranges
    try:
        acc.check_operands(
            np.array([[a_lo, a_hi]], dtype=np.int64), np.array([[w_lo], [w_hi]], dtype=np.int64)
        )
    except ConfigError as exc:
        return exc
    return None


def _refused_float_codes(acc, scheme) -> ConfigError | None:
    """Why the FP engine's input formats cannot hold every value of the float scheme's codes exactly
    (e.g. e5m2 codes beyond 448 on fp8_e4m3fn inputs would become NaN), or None if they can."""
    from tpegen.sim import fp
    from tpegen.sw.quant import float_code_values

    cfg = acc.cfg
    for port, kind, fmt in (
        ("pe.input_format", scheme.act, cfg.a_fmt),
        ("pe.weight_format", scheme.weight, cfg.w_fmt),
    ):
        values = float_code_values(kind)
        with np.errstate(all="ignore"):  # codes beyond the format's range become inf or NaN
            held = fp.decode(fp.quantize(values, fmt), fmt)
        if not np.array_equal(held, values):
            return ConfigError(port, f"a format that holds every {kind} value exactly", fmt.name)
    return None


def _activation_operand_scheme(scheme, acc):
    """How the second operand of an activation x activation matmul (attention) is quantized: as an
    activation (the scheme's activation format, one scale per tensor) -- or None if the hardware's
    weight port cannot take such values (e.g. a LUT core with 2-bit weights), so it runs on the host."""
    import dataclasses

    operand = dataclasses.replace(
        scheme, weight=scheme.act, weight_bits=scheme.act_bits, granularity="tensor", group_size=None,
        symmetric=scheme.act_symmetric,
    )  # fmt: skip
    return None if _refused_codes(acc, operand) is not None else operand


# -- the mapping ----------------------------------------------------------------------------------


def _cosine(x: np.ndarray, y: np.ndarray) -> float:
    x = x.reshape(len(x), -1).astype(np.float64)
    y = y.reshape(len(y), -1).astype(np.float64)
    num = np.sum(x * y, axis=1)
    den = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1), 1.0)
    return float(np.mean(cos))


def _rel_rms(y: np.ndarray, ref: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    den = math.sqrt(float(np.mean(ref * ref)))
    err = math.sqrt(float(np.mean((y.astype(np.float64) - ref) ** 2)))
    return err / den if den > 0 else err


def map_model(
    model: Any,
    hw: Any = None,
    quant: str = "W8A8",
    *,
    group: int | None = None,
    granularity: str | None = None,
    symmetric: bool = True,
    act_mode: str = "dynamic",
    backend: str = "cycle",
    inputs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    ppa: dict | str | Path | None = None,
    rtl_check: str | None = None,
    example_inputs: Any = None,
    calibration: int = 32,
    weight_method: str = "rtn",
    calibration_inputs: np.ndarray | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> MapReport:
    """Map ``model`` onto the hardware ``hw`` at quantization ``quant`` (see the module docstring).

    ``model``: a built-in name (:func:`tpegen.sw.models.builtin_models`), an ``.onnx`` or ``.pt2``
    path, a :class:`~tpegen.sw.graph.Graph` or a PyTorch ``nn.Module`` with ``example_inputs``.
    ``hw``: a config path, a shipped config name or a :class:`~tpegen.config.DesignConfig`
    (default: the built-in 16x16 INT8 array). ``inputs``/``labels``: a batch in the model's input
    layout and its class labels (a built-in model brings its test split). ``act_mode="static"``
    calibrates per-tensor activation scales on the first ``calibration`` inputs.
    ``weight_method``: ``"rtn"`` (round to nearest, :func:`~tpegen.sw.quant.quantize_weight`) or
    ``"gptq"`` (:mod:`tpegen.sw.gptq`: each weight calibrated on the inputs its layer gets in the
    float32 model on the first ``calibration`` inputs; integer, binary and ternary weights only).
    ``calibration_inputs``: a separate calibration batch (the model's input layout) used instead of
    the first ``calibration`` inputs, so the reported accuracy is not measured on the calibration data.
    ``rtl_check`` names one layer to re-run on the RTL and compare bit for bit and cycle for cycle.
    ``progress(done, total, layer)`` is called after each GEMM-like layer.
    """
    from tpegen.config import DesignConfig, load_config
    from tpegen.sw.gptq import CalibratedWeights
    from tpegen.sw.graph import GEMM_OPS, run_graph
    from tpegen.sw.quant import (
        calibrate_act,
        dequantize_gemm,
        k_groups,
        parse_scheme,
        quantize_act,
        quantize_weight,
    )
    from tpegen.synth.ppa import energy_model

    t0 = time.perf_counter()
    scheme = parse_scheme(quant, group=group, granularity=granularity, symmetric=symmetric, act_mode=act_mode)
    check_choice("--weights", weight_method, WEIGHT_METHODS)
    gptq = CalibratedWeights(scheme) if weight_method == "gptq" else None
    cfg = hw if isinstance(hw, DesignConfig) else load_config(hw)
    acc = cfg.accelerator()
    _check_compatible(acc, cfg.family, scheme)
    energy_of, energy_note = energy_model(ppa, cfg.name)
    if backend not in BACKENDS:
        raise ConfigError("--backend", "one of " + ", ".join(BACKENDS), backend)
    graph, default_x, default_y = load_model(model, example_inputs)
    if inputs is None:
        if default_x is None:
            raise ConfigError("--inputs", "a batch of inputs (.npy) for this model")
        inputs, labels = default_x, default_y if labels is None else labels
    x, labels = _check_batch(graph, inputs, labels)
    gemm_nodes = [n for n in graph.nodes if n.op in GEMM_OPS]
    if rtl_check is not None and rtl_check not in {n.name for n in gemm_nodes}:
        raise ConfigError(
            "--rtl-check",
            "the name of a GEMM-like layer: " + ", ".join(n.name for n in gemm_nodes),
            rtl_check,
        )
    feed = {graph.inputs[0]: x}

    ref = run_graph(graph, feed, capture=True)
    static: dict[str, tuple[float, int]] = {}
    if scheme.act_mode == "static" or gptq is not None:
        batches: dict[str, list[np.ndarray]] = {}

        def record(node, a, w, is_weight):
            batches.setdefault(node.name, []).append(a)
            if is_weight and gptq is not None:
                gptq.record(node.name, a, w)
            return a @ w

        if calibration_inputs is not None:
            calib, _ = _check_batch(graph, calibration_inputs, None)
        else:
            calib = x[:calibration]
        run_graph(graph, {graph.inputs[0]: calib}, record)
        if scheme.act_mode == "static":
            static = {name: calibrate_act(np.concatenate(parts), scheme) for name, parts in batches.items()}

    hardware = HardwareGemm(acc, backend)
    layers: dict[str, LayerReport | None] = {n.name: None for n in gemm_nodes}
    act_operand = _activation_operand_scheme(scheme, acc)
    done: list[str] = []

    def gemm(node, a: np.ndarray, w: np.ndarray, is_weight: bool) -> np.ndarray:
        rep = layers[node.name]
        if rep is None:
            rep = layers[node.name] = LayerReport(node.name, node.op, a.shape[0], a.shape[1], w.shape[1])
        if not is_weight and act_operand is None:  # activation x activation the hardware cannot take
            rep.on_host = True
            rep.host_ops += a.shape[0] * a.shape[1] * w.shape[1]
            return a @ w
        if is_weight and gptq is not None:
            qw = gptq.quantize(node.name, w)
        else:
            qw = quantize_weight(w, scheme if is_weight else act_operand, name=f"{node.name}.weight")
        qa = quantize_act(a, scheme, static.get(node.name), name=f"{node.name}.input")
        g = qw.group_size
        k = a.shape[1]
        rep.K = min(g, k)
        accs = []
        for rows in k_groups(k, g):
            qa_g, qw_g = qa.q[:, rows], qw.q[rows]
            out, cycles = hardware.run(qa_g, qw_g)
            if node.name == rtl_check:
                rtl_out, rtl_cycles = hardware.run(qa_g, qw_g, "rtl")
                same = bool(np.array_equal(rtl_out, out)) and rtl_cycles == cycles
                rep.rtl_check = same if rep.rtl_check is None else (rep.rtl_check and same)
            accs.append(out)
            rep.gemms += 1
            rep.cycles += cycles
            rep.macs += qa_g.shape[0] * qa_g.shape[1] * qw_g.shape[1]
        y, host_ops = dequantize_gemm(accs, qa, qw)
        rep.host_ops += host_ops
        if progress and node.name not in done:
            done.append(node.name)
            progress(len(done), len(gemm_nodes), node.name)
        return y

    mapped = run_graph(graph, feed, gemm, capture=True)

    reports = [layers[n.name] for n in gemm_nodes if layers[n.name] is not None]
    for rep in reports:
        rep.utilization = rep.macs / (rep.cycles * acc.macs_per_cycle) if rep.cycles else 0.0
        rep.rel_error = _rel_rms(mapped[rep.name], ref[rep.name])
        if energy_of is not None:
            rep.energy_pj = energy_of(rep.macs, rep.cycles)
    out_name = graph.outputs[0]
    accuracy = None
    if labels is not None:
        accuracy = {
            "float": float(np.mean(np.argmax(ref[out_name].reshape(len(x), -1), axis=1) == labels)),
            "mapped": float(np.mean(np.argmax(mapped[out_name].reshape(len(x), -1), axis=1) == labels)),
        }
    total_cycles = sum(r.cycles for r in reports)
    total_macs = sum(r.macs for r in reports)
    notes = [energy_note] if energy_note else []
    return MapReport(
        model=graph.name,
        hw=cfg.name,
        quant=scheme.name,
        backend=backend,
        layers=reports,
        host_ops_other=sorted({n.op for n in graph.nodes if n.op not in GEMM_OPS}),
        total_cycles=total_cycles,
        total_macs=total_macs,
        utilization=total_macs / (total_cycles * acc.macs_per_cycle) if total_cycles else 0.0,
        accuracy=accuracy,
        output_cosine=_cosine(mapped[out_name], ref[out_name]),
        energy_pj=sum(r.energy_pj for r in reports) if energy_of is not None else None,
        samples=len(x),
        seconds=time.perf_counter() - t0,
        macs_per_cycle=acc.macs_per_cycle,
        notes=notes,
    )
