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
    t = Table(
        title=f"{report.top}: {report.area_um2:.1f} µm², {report.n_cells} cells ({Path(report.liberty).name})"
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
    if report.timing is not None:
        tm = report.timing
        console.print(
            f"critical path {tm.delay_ns:.3f} ns (Fmax {tm.fmax_mhz:.0f} MHz, {tm.engine}), "
            f"clock period {tm.period_ns:.3f} ns, slack {tm.slack_ns:.3f} ns"
        )
        if tm.note:
            console.print(f"note: {tm.note}")


def print_energy(report, console=None) -> None:
    """Energy per op by category and by module of an :class:`EnergyReport`."""
    from rich.table import Table

    console = _console(console)
    t = Table(
        title=f"{report.top}: {report.energy_pj_per_op:.4f} pJ/op over {report.ops} ops, "
        f"{report.cycles} cycles at {report.period_ns:.3f} ns"
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
    ax.set_title(f"{report.top}: {report.area_um2:.0f} µm² ({Path(report.liberty).name})")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
