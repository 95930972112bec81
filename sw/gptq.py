"""GPTQ: calibrated post-training weight quantization (Frantar et al., 2022, arXiv:2210.17323).

Round-to-nearest (:func:`tpegen.sw.quant.quantize_weight`) rounds every weight on its own. GPTQ
quantizes the rows of ``W`` (K x N) one after another along K and, after each row, moves that
row's rounding error onto the rows not yet quantized so that the layer *output* ``X @ W`` on
calibration inputs ``X`` (S x K) changes as little as possible. With the Hessian of that squared
error, ``H = 2 X^T X / S + lambda I`` (damping ``lambda = damp * mean(diag(2 X^T X / S))``), and
``U`` the upper Cholesky factor of ``H^-1`` (``H^-1 = U^T U``), row ``k`` is rounded and the rows
after it are corrected::

    q_k   = round(W_k)                     (codes of the row's current values, per column n)
    e_k   = (W_k - deq(q_k)) / U[k, k]
    W_j  -= U[k, j] * e_k                  for j > k

The corrections are applied lazily per block of rows (one rank-B update of the remaining rows per
block) as the paper's reference implementation does; the result is the same as row by row up to
float64 rounding. Scales and zero points follow :func:`~tpegen.sw.quant.quantize_weight`'s rules
(min/max of a block, symmetric or asymmetric, mean abs for binary/ternary) but are computed from
the weights *as GPTQ reaches them*: per tensor and per output channel from the original ``W``
(before any correction), per K-group from the group's current values when its first row is
reached (so the group absorbs the corrections from earlier groups). Rows are processed in
their natural order (no activation reordering), so K-groups stay contiguous.

The result is an ordinary :class:`~tpegen.sw.quant.QuantWeight` (codes, scales, zero points,
group size): the hardware GEMMs and :func:`~tpegen.sw.quant.dequantize_gemm` are unchanged.
Integer, binary and ternary weights are supported; BF16/FP8 weights are not (use round to nearest).
"""

from __future__ import annotations

import hashlib

import numpy as np

from tpegen.errors import ConfigError
from tpegen.sw.quant import QuantScheme, QuantWeight, _codes, _real_array, _scale_zero

__all__ = ["GPTQ_WEIGHTS", "hessian", "gptq_quantize_weight", "CalibratedWeights"]

GPTQ_WEIGHTS = ("int", "binary", "ternary")
DEFAULT_DAMP = 0.01  # the reference implementation's default (fraction of the mean diagonal)
DEFAULT_BLOCK = 128  # rows per lazy update (the reference's default)


def hessian(x: np.ndarray, *, name: str = "X") -> np.ndarray:
    """``2 X^T X / S`` (K x K float64) of calibration inputs ``x`` (S x K, or any shape ending in K)."""
    v = _real_array(name, x, None)
    v = v.reshape(-1, v.shape[-1])
    return 2.0 * (v.T @ v) / v.shape[0]


def _check_scheme(scheme: QuantScheme) -> None:
    if scheme.weight not in GPTQ_WEIGHTS:
        raise ConfigError("--weights", f"'rtn' for {scheme.name} (GPTQ needs integer weight codes)", "gptq")


def _block_params(scheme: QuantScheme, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, zero) of shape (1, N) for the rows ``block`` (R x N), by quantize_weight's rules."""
    lo_v = block.min(axis=0, keepdims=True)
    hi_v = block.max(axis=0, keepdims=True)
    mean_abs = np.abs(block).mean(axis=0, keepdims=True)
    return _scale_zero(scheme.weight, scheme.weight_bits, scheme.symmetric, lo_v, hi_v, mean_abs)


def gptq_quantize_weight(
    w: np.ndarray,
    h: np.ndarray,
    scheme: QuantScheme,
    *,
    damp: float = DEFAULT_DAMP,
    block_size: int = DEFAULT_BLOCK,
    name: str = "W",
) -> QuantWeight:
    """Quantize ``w`` (K, N) with GPTQ for the Hessian ``h`` (K, K) of its calibration inputs.

    ``h`` is :func:`hessian` of the inputs (or a sum of such terms over batches, see
    :class:`CalibratedWeights`); it is not modified.

    ``scheme`` sets the code format and granularity exactly as for
    :func:`~tpegen.sw.quant.quantize_weight`; ``damp`` is the Hessian damping as a fraction of its
    mean diagonal; ``block_size`` the rows per lazy update (rounded up to a multiple of the group
    size, so a K-group never straddles two blocks). Deterministic (no randomness). Raises
    :class:`ConfigError` for float weight formats, a non-positive ``damp`` or mismatched shapes.
    """
    _check_scheme(scheme)
    if not (isinstance(damp, float | int) and damp > 0):
        raise ConfigError("damp", "a positive fraction of the Hessian's mean diagonal (e.g. 0.01)", damp)
    wt = _real_array(name, w, 2)
    k, n = wt.shape
    h = np.array(h, dtype=np.float64)
    if h.shape != (k, k):
        raise ConfigError(f"{name} Hessian", f"a {k} x {k} matrix (the weight's K)", f"shape {h.shape}")

    dead = np.diag(h) == 0  # inputs that were always 0: their rows move nothing else
    h[dead, dead] = 1.0
    h[np.diag_indices(k)] += damp * float(np.mean(np.diag(h)))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: H^-1 = U^T U

    gs = min(scheme.group_size, k) if scheme.granularity == "group" else k
    if scheme.granularity == "group":
        block = gs * max(1, -(-int(block_size) // gs))
    else:
        block = max(1, int(block_size))
        whole = wt if scheme.granularity == "channel" else wt.reshape(-1, 1)
        scale, zero = _block_params(scheme, whole)
        if scheme.granularity == "tensor":
            scale, zero = np.repeat(scale, n, axis=1), np.repeat(zero, n, axis=1)
    n_groups = -(-k // gs)
    scales = np.empty((n_groups, n), dtype=np.float32)
    zeros = np.empty((n_groups, n), dtype=np.int64)
    q = np.empty((k, n), dtype=np.int64)
    kind, bits, sym = scheme.weight, scheme.weight_bits, scheme.symmetric

    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        wb = wt[b0:b1].copy()
        err = np.zeros_like(wb)
        ub = u[b0:b1, b0:b1]
        for i in range(b1 - b0):
            row = b0 + i
            if row % gs == 0:
                g = row // gs
                if scheme.granularity == "group":
                    scale, zero = _block_params(scheme, wb[i : i + gs])
                scales[g], zeros[g] = scale[0], zero[0]
            s64 = scale[0].astype(np.float64)
            q[row] = _codes(kind, bits, sym, wb[i], s64, zero[0])
            e = (wb[i] - s64 * (q[row] - zero[0])) / ub[i, i]
            wb[i + 1 :] -= np.outer(ub[i, i + 1 :], e)
            err[i] = e
        wt[b1:] -= u[b0:b1, b1:].T @ err
    return QuantWeight(q=q, scale=scales, zero=zeros, group_size=int(gs))


class CalibratedWeights:
    """GPTQ for every weight of a model: collects each weight's calibration inputs during a float32
    pass (:meth:`record`), then quantizes each weight once (:meth:`quantize`, cached).

    A weight is identified by its layer's name and its contents, so the GEMMs of one layer with
    different weights (conv groups) get their own Hessians and a weight shared by several GEMMs
    (batched matmul slices) gets one over all of them. Only ``2 X^T X`` and the sample count are
    kept, not the inputs.
    """

    def __init__(self, scheme: QuantScheme, *, damp: float = DEFAULT_DAMP, block_size: int = DEFAULT_BLOCK):
        _check_scheme(scheme)
        self.scheme = scheme
        self.damp = damp
        self.block_size = block_size
        self._sums: dict[tuple, list] = {}  # key -> [sum of 2 X^T X, samples]
        self._done: dict[tuple, QuantWeight] = {}

    @staticmethod
    def _key(layer: str, w: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
        w = np.ascontiguousarray(w)
        return layer, w.shape, hashlib.blake2b(w.tobytes(), digest_size=16).digest()

    def record(self, layer: str, a: np.ndarray, w: np.ndarray) -> None:
        """Add the inputs ``a`` (M, K) of one GEMM ``a @ w`` of ``layer`` to ``w``'s Hessian."""
        entry = self._sums.setdefault(self._key(layer, w), [0.0, 0])
        entry[0] = entry[0] + hessian(a, name=f"{layer}.input") * len(a)
        entry[1] += len(a)

    def quantize(self, layer: str, w: np.ndarray) -> QuantWeight:
        """The GPTQ codes of ``w``; a weight never seen by :meth:`record` is a :class:`ConfigError`."""
        key = self._key(layer, w)
        if key not in self._done:
            if key not in self._sums:
                raise ConfigError(f"{layer}.weight", "a weight seen in the calibration pass", "a new weight")
            total, samples = self._sums.pop(key)
            self._done[key] = gptq_quantize_weight(
                w, total / samples, self.scheme, damp=self.damp, block_size=self.block_size,
                name=f"{layer}.weight",
            )  # fmt: skip
        return self._done[key]
