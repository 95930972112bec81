"""Rich tables and an optional matplotlib plot for synthesis and energy reports."""

from __future__ import annotations

from pathlib import Path

from tpegen.errors import TpegenError


def _console(console):
    if console is None:
        from rich.console import Console

        console = Console()
    return console


def print_synth(report, console=None) -> None:
    """Area by module, cell counts and the critical path of a :class:`SynthReport`."""
    from rich.table import Table

    console = _console(console)
    what = "logic " if report.memories else ""
    t = Table(
        title=f"{report.top}: {what}{report.area_um2:.1f} µm², {report.n_cells} cells ({Path(report.liberty).name})"
    )
    for col in ("module", "instances", "own µm²", "incl. submodules µm²"):
        t.add_column(col, justify="left" if col == "module" else "right")
    for name, m in sorted(report.modules.items(), key=lambda kv: -kv[1].total_um2):
        t.add_row(name, str(m.instances), f"{m.self_um2:.1f}", f"{m.total_um2:.1f}")
    console.print(t)
    c = Table(title="cells")
    c.add_column("cell")
    c.add_column("count", justify="right")
    for name, n in sorted(report.cells.items(), key=lambda kv: -kv[1]):
        c.add_row(name, str(n))
    console.print(c)
    if report.memories or report.memories_as_logic:
        print_memories(report, console)
    if report.clock_gating is not None:
        g = report.clock_gating
        console.print(
            f"clock gating: {g['icgs']} {g['cell']} cells gate {g['gated_flops']} of {g['flops']} flops "
            f"(groups of at least {g['min_group']} flops sharing an enable)"
        )
    if report.timing is not None:
        tm = report.timing
        console.print(f"critical path {tm.delay_ns:.3f} ns (Fmax {tm.fmax_mhz:.0f} MHz, {tm.engine})")
        if report.period_ns is None:
            console.print("clock period: none given (--period-ns); ABC mapped for minimum delay")
        else:
            met = "timing met" if report.timing_met else "timing NOT met"
            console.print(
                f"clock period {report.period_ns:.3f} ns: slack {report.slack_ns:.3f} ns, {met}",
                markup=False,
            )
        if tm.note:
            console.print(f"note: {tm.note}")
    elif report.flow.get("hierarchical"):
        console.print(
            "critical path: not analysed (a hierarchical netlist is timed by OpenSTA, not installed)"
        )
    if report.flow.get("hierarchical"):
        console.print(
            "hierarchical netlist: each distinct module mapped once, area summed over its instances; "
            "gate-level energy simulates it flattened into arrays"
        )


def print_memories(report, console=None) -> None:
    """Black-boxed memories of a :class:`SynthReport` (SRAM model, per instance), memories mapped to
    logic, and the logic and memory areas side by side."""
    from rich.table import Table

    console = _console(console)
    if report.memories:
        t = Table(title="memories (black-boxed; SRAM model: tpegen.synth.memories)")
        cols = (
            "memory",
            "inst",
            "width x depth",
            "ports r/w",
            "macros",
            "µm² each",
            "read pJ",
            "write pJ",
            "leak µW",
        )
        for col in cols:
            t.add_column(col, justify="left" if col in ("memory", "width x depth", "macros") else "right")
        for m in report.memories:
            c = m.cost
            macros = f"{c.copies}x{c.columns}x{c.rows} of {c.macro.width}x{c.macro.depth}"
            t.add_row(
                m.name, str(m.instances), f"{c.width_bits} x {c.depth}", f"{c.read_ports}/{c.write_ports}", macros,
                f"{c.area_um2:.0f}", f"{c.read_energy_pj:.2f}", f"{c.write_energy_pj:.2f}", f"{c.leakage_uw:.1f}",
            )  # fmt: skip
        console.print(t)
        for m in report.memories:
            for note in (*m.cost.extrapolated, *m.notes):
                console.print(f"note: {m.name}: {note}")
        console.print(f"source: {report.memories[0].cost.source}")
    for e in report.memories_as_logic:
        console.print(f"memory {e['name']} ({e['width_bits']} x {e['depth']}): {e['reason']}")
    mem = report.memory_area_um2
    console.print(
        f"logic area {report.logic_area_um2:.1f} µm² | memory area {mem:.1f} µm² | "
        f"logic + memories {report.logic_area_um2 + mem:.1f} µm²"
    )


def _workload_note(w: dict | None) -> str:
    """`` (a MxKxN GEMM, utilization U%)`` of an energy report's workload, or nothing."""
    if not w:
        return ""
    return f" (a {w['M']}x{w['K']}x{w['N']} GEMM, utilization {w['utilization']:.1%})"


def print_energy(report, console=None) -> None:
    """Energy per op by category and by module of an :class:`EnergyReport`."""
    from rich.table import Table

    console = _console(console)
    t = Table(
        title=f"{report.top}: {report.energy_pj_per_op:.4f} pJ/op over {report.ops} ops, "
        f"{report.cycles} cycles at {report.period_ns:.3f} ns" + _workload_note(report.workload)
    )
    t.add_column("category")
    t.add_column("pJ/op", justify="right")
    t.add_column("share", justify="right")
    for k, v in report.breakdown_pj.items():
        t.add_row(
            k, f"{v / report.ops:.4f}", f"{100 * v / report.energy_pj:.1f}%" if report.energy_pj else "-"
        )
    console.print(t)
    m = Table(title="by module instance")
    m.add_column("instance")
    m.add_column("pJ/op", justify="right")
    for k, v in sorted(report.by_module_pj.items(), key=lambda kv: -kv[1]):
        m.add_row(k or "(top)", f"{v / report.ops:.4f}")
    console.print(m)
    if report.by_class_pj:  # hierarchical: every instance of a module in one row
        c = Table(title="by module (all its instances; the cells it defines itself)")
        c.add_column("module")
        c.add_column("instances", justify="right")
        c.add_column("pJ/op", justify="right")
        c.add_column("pJ per instance per cycle", justify="right")
        for k, v in sorted(report.by_class_pj.items(), key=lambda kv: -kv[1]):
            if v <= 0:
                continue
            n = report.instances.get(k, 1)
            c.add_row(
                k, str(n), f"{v / report.ops:.4f}", f"{v / n / report.cycles:.4f}" if report.cycles else "-"
            )
        console.print(c)
    if report.checked_against == "golden":
        console.print("outputs and cycles of the gate-level simulation checked against the golden model")


def plot_area(report, path: str | Path | None = None):
    """Horizontal bar chart of each module's own area; saved to ``path`` when given."""
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TpegenError("plotting needs matplotlib: pip install 'tpegen[plot]'") from None
    items = sorted(((n, m.self_um2 * m.instances) for n, m in report.modules.items()), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(items) + 1.5))
    ax.barh([n for n, _ in items], [a for _, a in items])
    ax.set_xlabel("area (µm², all instances)")
    what = "logic " if report.memories else ""
    ax.set_title(f"{report.top}: {what}{report.area_um2:.0f} µm² ({Path(report.liberty).name})")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
