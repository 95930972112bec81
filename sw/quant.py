"""Post-training quantization of GEMM operands, and the host-side dequantization of GEMM results.

A layer ``Y = A @ W`` (A: M x K activations, W: K x N weights) is mapped in three steps:

1. :func:`quantize_weight` turns W into codes ``Wq`` with scales and zero points,
   ``W ~= s_w * (Wq - z_w)``; :func:`quantize_act` does the same for A, ``A ~= s_a * (Aq - z_a)``.
2. The hardware computes, for every K-group ``g`` of the weights (rows ``QuantWeight.groups[g]``),
   the exact GEMM of the codes ``acc[g] = Aq[:, Kg] @ Wq[Kg, :]`` -- integer codes on the integer
   arrays and the LUT core, BF16/FP8 values on the FP engine.
3. :func:`dequantize_gemm` turns the ``acc[g]`` into ``Y``.

**Group scales, zero-point corrections and the sum over K-groups are applied on the host**, in
:func:`dequantize_gemm`; no generated accelerator has a rescaling output stage. Per K-group::

    C_g = acc[g] - z_a * colsum(Wq_g) - z_w[g] * rowsum(Aq_g) + Kg * z_a * z_w[g]     (exact integers)
    Y   = s_a * sum_g s_w[g] * C_g

It returns the host work as ``host_ops``: one op per multiply, add or multiply-add on an element,
counting only work that is needed (a zero point of 0 or a scale of 1 costs nothing):

* activation zero point (any ``z_a != 0``), per group: ``Kg*N`` (column sums of ``Wq_g``) + ``M*N``
  (subtract ``z_a * colsum``), plus ``N`` when the weight zero point is non-zero too (the
  ``Kg*z_a*z_w`` term is folded into the column sums);
* weight zero point (any ``z_w[g] != 0``), per group: ``M*Kg`` (row sums of ``Aq_g``) + ``M*N``;
* scales: ``G*M*N`` for scaling and summing the groups (``s_w[g] * C_g``; 0 when ``G == 1`` and
  every scale is 1, as for BF16), plus ``M*N`` for a per-token ``s_a`` (dynamic) or ``G*N`` for a
  per-tensor ``s_a`` (static, folded into ``s_w``).

For the usual symmetric W8A8 per-channel, dynamic per-token scheme that is ``2*M*N`` -- two
multiplies per output, against ``M*K*N`` multiply-adds on the accelerator. The weight column sums
depend only on the weights and could be precomputed once per layer; they are counted on every call.

Formats (:data:`FORMATS`, named as the field names them; :func:`parse_scheme`):

======== ======================================= =====================================
format   weights                                 activations
======== ======================================= =====================================
W8A8     INT8                                    INT8
W4A8     INT4 (W3A8: INT3, W2A8: INT2)           INT8
W4A16    INT4                                    INT16
W1A8     binary {-1, +1}, scale mean abs(w)      INT8
W1.58A8  ternary {-1, 0, +1}, scale mean abs(w)  INT8
BF16     bfloat16, no scaling                    bfloat16, no scaling
FP16     IEEE half, no scaling, clipped at 65504 IEEE half, no scaling
FP8      OCP e4m3fn (``FP8_E5M2``: e5m2),        the same FP8 format, scale max abs(x) /
         scale max abs(w) / max of the format    max of the format (per token or tensor)
======== ======================================= =====================================

Conventions: rounding is to nearest, ties to even (``np.rint``; FP8 and BF16 by ``ml_dtypes``
casts of the float64 quotient), then clipping (saturation) to the range. Symmetric integer codes
use ``[-(2^(b-1)-1), 2^(b-1)-1]`` with ``s = max abs / (2^(b-1)-1)`` and ``z = 0``; asymmetric
codes use ``[-2^(b-1), 2^(b-1)-1]`` with ``s = (max - min) / (2^b - 1)`` over a range widened to
include 0 and ``z = -2^(b-1) - rint(min / s)`` (so 0 is exact and ``z`` lies in the code range).
A block whose values are all 0 gets ``s = 1``. Codes are computed with the stored float32 scale,
so ``abs(w - s * (q - z)) <= s / 2`` holds for every value inside the clip range. Note that
symmetric W2 has three levels ``{-1, 0, 1} * s`` with ``s = max abs`` (ternary codes with a
max-abs scale); ``symmetric=False`` uses all four codes ``-2..1``.

Weight granularity: ``tensor`` (one scale), ``channel`` (one per output column n) or ``group`` (one
per output column and block of ``group_size`` consecutive rows of K). ``group_size`` need not
divide K: the last group is shorter (``ceil(K / group_size)`` groups). Activations are scaled per
token (row of A, ``dynamic``) or per tensor with a scale calibrated on a batch (``static``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tpegen.errors import ConfigError, check_bool, check_choice, check_int
from tpegen.sim.intgemm import operand_range

__all__ = [
    "FORMATS",
    "QuantScheme",
    "QuantWeight",
    "QuantAct",
    "parse_scheme",
    "float_code_values",
    "k_groups",
    "quantize_weight",
    "calibrate_act",
    "quantize_act",
    "dequantize_gemm",
    "operand_ranges",
]

FORMATS = ("W8A8", "W4A8", "W4A16", "W3A8", "W2A8", "W1A8", "W1.58A8", "BF16", "FP16", "FP8")
WEIGHT_KINDS = ("int", "binary", "ternary", "bf16", "fp16", "fp8_e4m3fn", "fp8_e5m2")
ACT_KINDS = ("int", "bf16", "fp16", "fp8_e4m3fn", "fp8_e5m2")
GRANULARITIES = ("tensor", "channel", "group")
ACT_MODES = ("static", "dynamic")

_FLOAT_DTYPES = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "fp8_e4m3fn": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2",
}


def _float_dtype(kind: str):
    """The ml_dtypes type of a float format (imported here: ml_dtypes takes most of a second to load,
    which integer formats need not pay)."""
    if kind == "fp16":
        return np.float16
    import ml_dtypes

    return getattr(ml_dtypes, _FLOAT_DTYPES[kind])


def float_code_values(kind: str) -> np.ndarray:
    """Every finite value (float64) of the float code kind ``kind`` (``bf16``, ``fp16``, ``fp8_e4m3fn``,
    ``fp8_e5m2``)."""
    width = 16 if kind in _UNSCALED_FLOATS else 8
    codes = np.arange(1 << width, dtype=np.uint16 if width == 16 else np.uint8)
    with np.errstate(invalid="ignore"):  # the NaN codes
        values = codes.view(_float_dtype(kind)).astype(np.float64)
    return values[np.isfinite(values)]


_SCALED_FLOATS = ("fp8_e4m3fn", "fp8_e5m2")  # scaled into the format's range
_UNSCALED_FLOATS = ("bf16", "fp16")  # rounded as they are

# upper-case name -> (weight, weight_bits, act, act_bits); the FP8_* names select the FP8 variant
_FORMAT_TABLE: dict[str, tuple[str, int | None, str, int | None]] = {
    "W8A8": ("int", 8, "int", 8),
    "W4A8": ("int", 4, "int", 8),
    "W4A16": ("int", 4, "int", 16),
    "W3A8": ("int", 3, "int", 8),
    "W2A8": ("int", 2, "int", 8),
    "W1A8": ("binary", 1, "int", 8),
    "W1.58A8": ("ternary", 2, "int", 8),
    "BF16": ("bf16", None, "bf16", None),
    "FP16": ("fp16", None, "fp16", None),
    "FP8": ("fp8_e4m3fn", None, "fp8_e4m3fn", None),
    "FP8_E4M3FN": ("fp8_e4m3fn", None, "fp8_e4m3fn", None),
    "FP8_E4M3": ("fp8_e4m3fn", None, "fp8_e4m3fn", None),
    "FP8_E5M2": ("fp8_e5m2", None, "fp8_e5m2", None),
}
_FORMAT_CHOICES = "one of " + ", ".join(FORMATS) + " (or FP8_E5M2 for OCP e5m2)"


def _code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """Integer code range: symmetric ``[-(2^(b-1)-1), 2^(b-1)-1]``, asymmetric the full signed range."""
    lo, hi = operand_range(bits, True)
    return (lo + 1, hi) if symmetric else (lo, hi)


@dataclass(frozen=True)
class QuantScheme:
    """How the operands of every GEMM of a model are quantized (see the module docstring).

    ``weight``/``act`` are the code kinds (``int``, ``binary``, ``ternary``, ``bf16``, ``fp16``, ``fp8_e4m3fn``,
    ``fp8_e5m2``; activations not binary/ternary), ``weight_bits``/``act_bits`` their integer
    widths (binary 1, ternary 2 -- stored on 2 bits --, ``None`` for float kinds). ``granularity``
    and ``group_size`` set the weight scales, ``symmetric`` the weight zero points, ``act_mode`` and
    ``act_symmetric`` the activation scales. Validated on construction (:class:`ConfigError`).
    """

    name: str
    weight: str
    weight_bits: int | None
    act: str
    act_bits: int | None
    granularity: str = "channel"
    group_size: int | None = None
    symmetric: bool = True
    act_mode: str = "dynamic"
    act_symmetric: bool = True

    def __post_init__(self) -> None:
        f = "QuantScheme."
        check_choice(f + "weight", self.weight, WEIGHT_KINDS)
        check_choice(f + "act", self.act, ACT_KINDS)
        fixed_bits = {"binary": 1, "ternary": 2}
        if self.weight == "int":
            check_int(f + "weight_bits", self.weight_bits, 2, 8)
        elif self.weight in fixed_bits:
            check_choice(f + "weight_bits", self.weight_bits, [fixed_bits[self.weight]])
        else:
            check_choice(f + "weight_bits", self.weight_bits, [None])
        if self.act == "int":
            check_int(f + "act_bits", self.act_bits, 2, 16)
        else:
            check_choice(f + "act_bits", self.act_bits, [None])
        check_choice(f + "granularity", self.granularity, GRANULARITIES)
        if self.granularity == "group":
            check_int(f + "group_size", self.group_size, 1, 1 << 30)
        elif self.group_size is not None:
            raise ConfigError(f + "group_size", "None unless granularity is 'group'", self.group_size)
        if self.weight in _UNSCALED_FLOATS and self.granularity != "tensor":
            raise ConfigError(
                f + "granularity", f"'tensor' for {self.weight} weights (not scaled)", self.granularity
            )
        check_bool(f + "symmetric", self.symmetric)
        if not self.symmetric and self.weight != "int":
            raise ConfigError(f + "symmetric", f"true for {self.weight} weights (no zero point)", False)
        check_choice(f + "act_mode", self.act_mode, ACT_MODES)
        check_bool(f + "act_symmetric", self.act_symmetric)
        if not self.act_symmetric and self.act != "int":
            raise ConfigError(f + "act_symmetric", f"true for {self.act} activations (no zero point)", False)

    @property
    def is_integer(self) -> bool:
        """True when both operands are integer codes (integer arrays, LUT core); False for BF16/FP8."""
        return self.weight in ("int", "binary", "ternary") and self.act == "int"


def parse_scheme(
    fmt: str,
    *,
    group: int | None = None,
    granularity: str | None = None,
    symmetric: bool = True,
    act_mode: str = "dynamic",
) -> QuantScheme:
    """The :class:`QuantScheme` of a format name (``--quant``), e.g. ``parse_scheme("W4A8", group=128)``.

    ``fmt`` is one of :data:`FORMATS`, case-insensitive (``FP8`` is OCP e4m3fn; ``FP8_E5M2`` selects
    e5m2). ``group=G`` means granularity ``group`` with ``G`` rows of K per group. Default
    granularity: ``channel`` for integer, binary and ternary weights, ``tensor`` for FP8 (one scale
    into the format's range, as PyTorch's float8 recipes do) and BF16 (no scaling).
    """
    key = fmt.strip().upper().replace("-", "_") if isinstance(fmt, str) else None
    if key not in _FORMAT_TABLE:
        raise ConfigError("--quant", _FORMAT_CHOICES, fmt)
    weight, wbits, act, abits = _FORMAT_TABLE[key]
    if group is not None:
        check_int("--group", group, 1, 1 << 30)
        if weight in _UNSCALED_FLOATS:
            raise ConfigError("--group", f"omitted for {fmt} (not scaled)", group)
        if granularity not in (None, "group"):
            raise ConfigError("--granularity", "'group' (or omitted) when --group is given", granularity)
        granularity = "group"
    elif granularity == "group":
        raise ConfigError("--group", "a group size (rows of K per scale) with granularity 'group'", None)
    if granularity is None:
        granularity = "tensor" if weight in _FLOAT_DTYPES else "channel"
    check_choice("--granularity", granularity, GRANULARITIES)
    return QuantScheme(
        name=fmt,
        weight=weight,
        weight_bits=wbits,
        act=act,
        act_bits=abits,
        granularity=granularity,
        group_size=group,
        symmetric=symmetric,
        act_mode=act_mode,
    )


def k_groups(k: int, group_size: int) -> list[slice]:
    """Row slices of the K-groups: ``[0, gs), [gs, 2 gs), ...``; the last one is shorter if ``gs`` does not divide K."""
    return [slice(s, min(s + group_size, k)) for s in range(0, k, group_size)]


@dataclass
class QuantWeight:
    """Quantized weights: ``W[k, n] ~= scale[g, n] * (q[k, n] - zero[g, n])`` for k in K-group g.

    ``q`` (K, N) holds int64 codes (binary {-1, +1}, ternary {-1, 0, +1}) or, for BF16/FP8, float32
    values already rounded to the format. ``scale`` (G, N) float32, ``zero`` (G, N) int64 (0 when
    symmetric). ``group_size`` is the number of K rows per group (K when G == 1; the last group
    may be shorter).
    """

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    group_size: int

    @property
    def groups(self) -> list[slice]:
        """Row slices of the K-groups; the hardware computes one GEMM per slice (``acc[g]``)."""
        return k_groups(self.q.shape[0], self.group_size)

    def dequantize(self) -> np.ndarray:
        """The float64 weights the codes stand for, ``scale * (q - zero)`` (K, N)."""
        rows = np.array([s.stop - s.start for s in self.groups])
        scale = np.repeat(self.scale.astype(np.float64), rows, axis=0)
        return scale * (self.q.astype(np.float64) - np.repeat(self.zero, rows, axis=0))


@dataclass
class QuantAct:
    """Quantized activations: ``A[m, k] ~= scale[m or 0, 0] * (q[m, k] - zero[m or 0, 0])``.

    ``q`` (M, K) int64 codes or float32 values rounded to BF16/FP8; ``scale`` float32 and ``zero``
    int64 of shape (M, 1) per token (dynamic) or (1, 1) per tensor (static).
    """

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray

    def dequantize(self) -> np.ndarray:
        """The float64 activations the codes stand for, ``scale * (q - zero)`` (M, K)."""
        return self.scale.astype(np.float64) * (self.q.astype(np.float64) - self.zero)


def _real_array(name: str, x: Any, ndim: int | None) -> np.ndarray:
    """``x`` as float64 after checking it is a non-empty real array (``ndim``-D) of finite values."""
    x = np.asarray(x)
    if (ndim is not None and x.ndim != ndim) or x.size == 0:
        what = f"a non-empty {ndim}-D matrix" if ndim else "a non-empty array"
        raise ConfigError(name, what, f"array of shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise ConfigError(name, "an array of real numbers (float or integer dtype)", f"dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ConfigError(name, "finite values (quantization needs a range)", "NaN or inf")
    return x


def _scale_zero(
    kind: str, bits: int | None, symmetric: bool, lo_v: np.ndarray, hi_v: np.ndarray, mean_abs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-block (scale float32, zero int64) from the block's min, max and mean abs (same shapes)."""
    amax = np.maximum(-lo_v, hi_v)
    if kind == "int" and not symmetric:
        lo_v, hi_v = np.minimum(lo_v, 0.0), np.maximum(hi_v, 0.0)  # 0 must be exact
    if kind == "int":
        qlo, qhi = _code_range(bits, symmetric)
        scale = amax / qhi if symmetric else (hi_v - lo_v) / (qhi - qlo)
    elif kind in ("binary", "ternary"):
        scale = mean_abs
    elif kind in _SCALED_FLOATS:
        import ml_dtypes

        scale = amax / float(ml_dtypes.finfo(_float_dtype(kind)).max)
    else:  # bf16, fp16: not scaled
        scale = np.ones(amax.shape)
    scale = np.asarray(scale, dtype=np.float32)
    scale[~(scale > 0)] = 1.0  # all-zero block (or a scale below float32's range)
    zero = np.zeros(amax.shape, dtype=np.int64)
    if kind == "int" and not symmetric:
        zero = np.clip(qlo - np.rint(lo_v / scale.astype(np.float64)), qlo, qhi).astype(np.int64)
    return scale, zero


def _codes(kind: str, bits: int | None, symmetric: bool, x: np.ndarray, scale: Any, zero: Any) -> np.ndarray:
    """Codes of the float64 values ``x`` for (broadcast) scales and zero points: int64, or float32 for floats."""
    s = np.asarray(scale, dtype=np.float64)
    if kind == "binary":
        return np.where(x >= 0, 1, -1).astype(np.int64)
    if kind == "ternary":
        return np.clip(np.rint(x / s), -1, 1).astype(np.int64)
    if kind == "int":
        qlo, qhi = _code_range(bits, symmetric)
        return np.clip(np.rint(x / s) + zero, qlo, qhi).astype(np.int64)
    import ml_dtypes

    dtype = _float_dtype(kind)
    fmax = float(ml_dtypes.finfo(dtype).max)  # saturate: e4m3fn has no inf, and PyTorch clamps too
    return np.clip(x / s, -fmax, fmax).astype(dtype).astype(np.float32)


def quantize_weight(w: np.ndarray, scheme: QuantScheme, *, name: str = "W") -> QuantWeight:
    """Quantize weights ``w`` (K, N) per ``scheme`` (granularity tensor, channel or group along K).

    ``name`` labels the tensor in errors (e.g. the layer's weight name). Raises :class:`ConfigError`
    for a non-2-D, empty, non-real or non-finite ``w``.
    """
    x = _real_array(name, w, 2)
    k, n = x.shape
    gs = min(scheme.group_size, k) if scheme.granularity == "group" else k
    starts = np.arange(0, k, gs)
    rows = np.diff(np.append(starts, k))  # rows per K-group (the last may be shorter)
    lo_v = np.minimum.reduceat(x, starts, axis=0)  # (G, N)
    hi_v = np.maximum.reduceat(x, starts, axis=0)
    mean_abs = np.add.reduceat(np.abs(x), starts, axis=0) / rows[:, None]
    if scheme.granularity == "tensor":
        lo_v, hi_v, mean_abs = (np.full((1, n), v) for v in (lo_v.min(), hi_v.max(), np.abs(x).mean()))
    scale, zero = _scale_zero(scheme.weight, scheme.weight_bits, scheme.symmetric, lo_v, hi_v, mean_abs)
    per_row = {"scale": np.repeat(scale, rows, axis=0), "zero": np.repeat(zero, rows, axis=0)}
    q = _codes(scheme.weight, scheme.weight_bits, scheme.symmetric, x, **per_row)
    return QuantWeight(q=q, scale=scale, zero=zero, group_size=int(gs))


def calibrate_act(x: np.ndarray, scheme: QuantScheme, *, name: str = "A") -> tuple[float, int]:
    """Static per-tensor activation ``(scale, zero)`` from a calibration batch ``x`` (any shape).

    Min/max calibration: the range of the whole batch maps onto the code range (symmetric: zero 0).
    Pass the result to :func:`quantize_act` as ``static``.
    """
    v = _real_array(name, x, None)
    lo_v, hi_v = np.array([[v.min()]]), np.array([[v.max()]])
    mean_abs = np.array([[np.abs(v).mean()]])
    scale, zero = _scale_zero(scheme.act, scheme.act_bits, scheme.act_symmetric, lo_v, hi_v, mean_abs)
    return float(scale[0, 0]), int(zero[0, 0])


def quantize_act(
    x: np.ndarray, scheme: QuantScheme, static: tuple[float, int] | None = None, *, name: str = "A"
) -> QuantAct:
    """Quantize activations ``x`` (M, K): per token (scales (M, 1)) or, with ``static``, per tensor.

    ``static`` is ``(scale, zero)`` from :func:`calibrate_act`; values outside its range saturate.
    With ``scheme.act_mode == "static"`` it is required (calibrate first): a missing calibration
    is a :class:`ConfigError`, not a silent fall-back to per-token scales.
    """
    v = _real_array(name, x, 2)
    kind, bits, sym = scheme.act, scheme.act_bits, scheme.act_symmetric
    if static is None:
        if scheme.act_mode == "static":
            raise ConfigError(
                "static", "a (scale, zero) calibration from calibrate_act for act_mode 'static'"
            )
        lo_v, hi_v = v.min(axis=1, keepdims=True), v.max(axis=1, keepdims=True)
        scale, zero = _scale_zero(kind, bits, sym, lo_v, hi_v, np.abs(v).mean(axis=1, keepdims=True))
    else:
        scale, zero = _check_static(static, scheme)
    return QuantAct(q=_codes(kind, bits, sym, v, scale, zero), scale=scale, zero=zero)


def _check_static(static: Any, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """A static ``(scale, zero)`` as (1, 1) float32 / int64 arrays after range checks."""
    try:
        s, z = static
        s = float(s)
    except (TypeError, ValueError):
        raise ConfigError("static", "a (scale, zero) pair from calibrate_act", static) from None
    if not (np.isfinite(s) and np.float32(s) > 0):
        raise ConfigError("static", "a positive finite scale", s)
    if isinstance(z, bool) or not isinstance(z, int | np.integer):
        raise ConfigError("static zero point", "an integer", z)
    if scheme.act == "int" and not scheme.act_symmetric:
        check_int("static zero point", int(z), *_code_range(scheme.act_bits, False))
    elif z != 0:
        raise ConfigError("static zero point", "0 for symmetric or float activations", z)
    return np.full((1, 1), s, dtype=np.float32), np.full((1, 1), int(z), dtype=np.int64)


def _group_acc(acc: Any, g: int, m: int, n: int) -> np.ndarray:
    """``acc[g]`` as int64 (integer results) or float64, after a shape check."""
    a = np.asarray(acc)
    if a.shape != (m, n):
        raise ConfigError(f"acc[{g}]", f"an {m} x {n} matrix (M x N)", f"shape {a.shape}")
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind != "f":
        raise ConfigError(f"acc[{g}]", "an integer or float matrix", f"dtype {a.dtype}")
    return a.astype(np.float64)


def dequantize_gemm(acc: list[np.ndarray], qa: QuantAct, qw: QuantWeight) -> tuple[np.ndarray, int]:
    """``(Y, host_ops)``: the float32 (M, N) result ``~= A @ W`` from the per-K-group GEMMs of the codes.

    ``acc[g]`` is ``qa.q[:, Kg] @ qw.q[Kg, :]`` for ``Kg = qw.groups[g]`` (what the hardware
    returns: integers, or floats from the FP engine; a single (M, N) array is accepted when there is
    one group). Zero-point corrections are done in exact integer arithmetic (for integer ``acc``),
    the scales in float64, and the result is rounded once to float32. ``host_ops`` follows the
    formula in the module docstring.
    """
    m, k = qa.q.shape
    kw, n = qw.q.shape
    if k != kw:
        raise ConfigError(
            "qa/qw", "activations M x K and weights K x N with the same K", (qa.q.shape, qw.q.shape)
        )
    slices = qw.groups
    if isinstance(acc, np.ndarray) and acc.ndim == 2:
        acc = [acc]
    if len(acc) != len(slices):
        raise ConfigError("acc", f"{len(slices)} group results (one per K-group)", f"{len(acc)}")
    a_scale = qa.scale.astype(np.float64)
    a_zero = qa.zero.astype(np.int64)
    per_tensor = a_scale.shape == (1, 1)
    a_zp = bool(np.any(a_zero))
    y: np.ndarray | None = None
    ops = 0
    for g, sl in enumerate(slices):
        c = _group_acc(acc[g], g, m, n)
        kg = sl.stop - sl.start
        w_zero = qw.zero[g].astype(np.int64)
        w_zp = bool(np.any(w_zero))
        if a_zp:
            col = qw.q[sl].sum(axis=0)
            ops += kg * n
            if w_zp:
                col = col - kg * w_zero
                ops += n
            c = c - a_zero * col
            ops += m * n
        if w_zp:
            c = c - qa.q[:, sl].sum(axis=1, keepdims=True) * w_zero
            ops += m * kg + m * n
        col_scale = qw.scale[g].astype(np.float64)
        if per_tensor and a_scale[0, 0] != 1:
            col_scale = col_scale * a_scale[0, 0]
            ops += n
        term = c.astype(np.float64)
        if len(slices) > 1 or np.any(col_scale != 1):
            term = term * col_scale
            ops += m * n
        y = term if y is None else y + term
    if not per_tensor and np.any(a_scale != 1):
        y = y * a_scale
        ops += m * n
    return y.astype(np.float32), ops


def operand_ranges(scheme: QuantScheme) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """``((A lo, A hi), (W lo, W hi))``: the integer codes the hardware must accept; None for BF16/FP8."""
    if not scheme.is_integer:
        return None
    a_range = _code_range(scheme.act_bits, scheme.act_symmetric)
    if scheme.weight in ("binary", "ternary"):
        return a_range, (-1, 1)
    return a_range, _code_range(scheme.weight_bits, scheme.symmetric)
