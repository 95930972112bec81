"""Results of a sweep: constraints, Pareto fronts, and the files (CSV, JSON, Markdown, plots).

Rows are dicts: ``point`` (index), one column per axis, ``workload``, the metric columns, ``status``
(``ok`` or ``failed``), ``error`` (one line, empty when ok) and ``feasible``. A point is feasible
when it has no failed row and every constraint holds in every row where its column has a value.
A Pareto front is computed per objective pair over the feasible rows, per workload -- or once over
the points when both columns are properties of the design alone (area, delay, energy per op).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from tpegen.sweep_spec import METRICS, UNITS, SweepSpec
from tpegen.sweep_tasks import SYNTH_COLUMNS, versions

ANY_WORKLOAD = "(any)"


def mark_feasible(spec: SweepSpec, rows: list[dict[str, Any]]) -> None:
    """Set every row's ``feasible`` (see the module docstring)."""
    bad: set[int] = set()
    for row in rows:
        if row["status"] != "ok":
            bad.add(row["point"])
        for c in spec.constraints:
            if row.get(c.column) is not None and not c.holds(row[c.column]):
                bad.add(row["point"])
    for row in rows:
        row["feasible"] = row["point"] not in bad


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (n x 2, to be minimized) that no other row dominates (<= in both, < in one)."""
    le = np.all(values[None, :, :] <= values[:, None, :], axis=2)
    lt = np.any(values[None, :, :] < values[:, None, :], axis=2)
    return ~np.any(le & lt, axis=1)


def fronts(spec: SweepSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per objective pair and workload group: ``objective`` (``"area:min cycles:min"``),
    ``columns``, ``senses``, ``workload``, ``candidates`` and ``front`` (row indices, the front
    sorted by its first column)."""
    out = []
    for (cx, sx), (cy, sy) in spec.objectives:
        design_only = cx in SYNTH_COLUMNS and cy in SYNTH_COLUMNS
        groups: dict[str, list[int]] = {}
        seen: set[int] = set()
        for i, row in enumerate(rows):
            if design_only:
                if row["point"] in seen:
                    continue
                seen.add(row["point"])
            groups.setdefault(ANY_WORKLOAD if design_only else row["workload"], []).append(i)
        for workload, members in groups.items():
            cand = [
                i
                for i in members
                if rows[i]["feasible"] and rows[i].get(cx) is not None and rows[i].get(cy) is not None
            ]
            front: list[int] = []
            if cand:
                signs = np.array([1.0 if sx == "min" else -1.0, 1.0 if sy == "min" else -1.0])
                vals = np.array([[rows[i][cx], rows[i][cy]] for i in cand], dtype=float) * signs
                front = sorted(
                    (i for i, keep in zip(cand, pareto_mask(vals), strict=True) if keep),
                    key=lambda i: (rows[i][cx], rows[i][cy]),
                )
            out.append(
                {
                    "objective": f"{cx}:{sx} {cy}:{sy}",
                    "columns": (cx, cy),
                    "senses": (sx, sy),
                    "workload": workload,
                    "candidates": cand,
                    "front": front,
                }
            )
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _axis_cell(value: Any) -> str:
    return "null" if value is None else _cell(value)


def header(spec: SweepSpec) -> list[str]:
    return ["point", *spec.axes, "workload", *spec.columns, "status", "error", "feasible"]


def to_csv(
    spec: SweepSpec, rows: list[dict[str, Any]], prefix: list[tuple[str, list[str]]] | None = None
) -> str:
    """The rows as CSV (``prefix``: extra leading columns, name and one value per row)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = header(spec)
    writer.writerow([name for name, _ in prefix or []] + cols)
    for i, row in enumerate(rows):
        cells = [_axis_cell(row[c]) if c in spec.axes else _cell(row.get(c)) for c in cols]
        writer.writerow([values[i] for _, values in prefix or []] + cells)
    return buf.getvalue()


def pareto_csv(spec: SweepSpec, rows: list[dict[str, Any]], fronts_: list[dict[str, Any]]) -> str:
    picked = [(f, i) for f in fronts_ for i in f["front"]]
    prefix = [
        ("objective", [f["objective"] for f, _ in picked]),
        ("front_of", [f["workload"] for f, _ in picked]),
    ]
    return to_csv(spec, [rows[i] for _, i in picked], prefix)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "all"


def _pareto_plot_name(k: int, f: dict[str, Any]) -> str:
    cx, cy = f["columns"]
    return f"pareto_{k}_{_slug(cx)}_{_slug(cy)}_{_slug(f['workload'])}.png"


MAX_LABELS = 24  # a scatter names its points when it has at most this many
LOG_SPAN = 30  # an axis whose values span more than this factor is drawn on a log scale


def _point_label(spec: SweepSpec, row: dict[str, Any]) -> str:
    """A short name of a row's point on a plot: its listed name, else its axis values."""
    if row.get("name"):
        return str(row["name"])
    return "/".join(_axis_cell(row[a]) for a, values in spec.axes.items() if len(values) > 1) or str(
        row["point"]
    )


def _sensitivity(spec: SweepSpec, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The axes with more than one value and the metric columns with a value: the sensitivity grid."""
    if spec.mode == "points":  # not a grid: no per-axis means
        return [], []
    axes = [a for a, values in spec.axes.items() if len(values) > 1]
    columns = [c for c in spec.columns if any(isinstance(r.get(c), (int, float)) for r in rows)]
    return (axes, columns) if axes and columns else ([], [])


def plot_names(spec: SweepSpec, rows: list[dict[str, Any]], fronts_: list[dict[str, Any]]) -> list[str]:
    """The plot files of these results: one scatter per front, and ``sensitivity.png``."""
    names = [_pareto_plot_name(k, f) for k, f in enumerate(fronts_)]
    return names + (["sensitivity.png"] if _sensitivity(spec, rows)[0] else [])


def write_plots(
    spec: SweepSpec, rows: list[dict[str, Any]], fronts_: list[dict[str, Any]], folder: Path
) -> None:
    """Draw :func:`plot_names` into ``folder`` (matplotlib): scatter plots with the front
    highlighted (one per objective and workload group) and the sensitivity grid (each metric's mean
    over the other axes, per axis value and workload)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for k, f in enumerate(fronts_):
        (cx, cy), (sx, sy) = f["columns"], f["senses"]
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        infeasible = [i for i in range(len(rows)) if not rows[i]["feasible"] and rows[i].get(cx) is not None
                      and rows[i].get(cy) is not None and (f["workload"] in (ANY_WORKLOAD, rows[i]["workload"]))]  # fmt: skip
        for group, style in ((f["candidates"], dict(c="0.6", s=18, label="feasible")),
                             (infeasible, dict(c="tab:red", marker="x", s=18, label="violates a constraint"))):  # fmt: skip
            if group:
                ax.scatter([rows[i][cx] for i in group], [rows[i][cy] for i in group], **style)
        if f["front"]:
            xs, ys = [rows[i][cx] for i in f["front"]], [rows[i][cy] for i in f["front"]]
            ax.plot(xs, ys, "-o", c="tab:orange", ms=6, label="Pareto front", drawstyle="steps-post")
        shown = f["candidates"] + infeasible
        if len(shown) <= MAX_LABELS:  # few points: name each by its axis values
            for i in shown:
                ax.annotate(_point_label(spec, rows[i]), (rows[i][cx], rows[i][cy]), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")  # fmt: skip
        for column, scale in ((cx, ax.set_xscale), (cy, ax.set_yscale)):
            values = [rows[i][column] for i in shown]
            if values and min(values) > 0 and max(values) / min(values) > LOG_SPAN:
                scale("log")
        ax.set_xlabel(f"{cx} [{UNITS.get(cx, ('',))[0]}] ({sx})")
        ax.set_ylabel(f"{cy} [{UNITS.get(cy, ('',))[0]}] ({sy})")
        ax.set_title(f"{spec.name}: {f['workload']}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / _pareto_plot_name(k, f), dpi=110)
        plt.close(fig)
    axes, columns = _sensitivity(spec, rows)
    if not axes:
        return
    workloads = sorted({row["workload"] for row in rows})
    fig, grid = plt.subplots(
        len(columns), len(axes), figsize=(3.6 * len(axes), 2.6 * len(columns)), squeeze=False
    )
    for r, c in enumerate(columns):
        per_workload = c not in SYNTH_COLUMNS
        for j, a in enumerate(axes):
            ax = grid[r][j]
            labels = [_axis_cell(v) for v in spec.axes[a]]
            for workload in workloads if per_workload else [None]:
                means = []
                for v in spec.axes[a]:
                    vals = [row[c] for row in rows if row[a] == v and row.get(c) is not None
                            and (workload is None or row["workload"] == workload)]  # fmt: skip
                    means.append(float(np.mean(vals)) if vals else np.nan)
                ax.plot(range(len(labels)), means, "-o", ms=4, label=workload)
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_xlabel(a, fontsize=8)
            ax.set_ylabel(c, fontsize=8)
            if per_workload and j == 0 and len(workloads) > 1:
                ax.legend(fontsize=6)
    fig.suptitle(f"{spec.name}: mean over the other axes", fontsize=10)
    fig.tight_layout()
    fig.savefig(folder / "sensitivity.png", dpi=100)
    plt.close(fig)


def _layout(spec: SweepSpec) -> str:
    if spec.mode == "points":
        return "listed; a field a point does not set shows its base's value"
    return f"{spec.mode} of {', '.join(spec.axes) or 'no axes'}"


def _md_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in body)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return "null" if value is None else str(value)


def summary_markdown(
    spec: SweepSpec,
    rows: list[dict[str, Any]],
    fronts_: list[dict[str, Any]],
    stats: dict[str, Any],
    plots: str,
) -> str:
    ok = sum(r["status"] == "ok" for r in rows)
    parts = [f"# Sweep {spec.name}", ""]
    if spec.description:
        parts += [spec.description.strip(), ""]
    parts += [
        f"- points: {stats['points']} ({_layout(spec)}); "
        f"workloads: {', '.join(w.label for w in spec.workloads) or 'none'}; rows: {len(rows)} "
        f"({ok} ok, {len(rows) - ok} failed, {sum(r['feasible'] for r in rows)} feasible)",
        f"- tasks: {stats['tasks']} ({stats['computed']} computed, {stats['cached']} cached, "
        f"{stats['failed']} failed) in {stats['seconds']:.1f} s",
        "- metrics: " + ", ".join(f"{c} [{UNITS[c][1]}]" for m in spec.metrics for c in METRICS[m][0]),
        f"- clock target: {spec.period_ns} ns" if spec.period_ns else "- clock target: none (minimum delay)",
        f"- Liberty: {spec.liberty[0]}" if spec.liberty else "- Liberty: tpegen's built-in library",
        "- constraints: " + ("; ".join(c.text for c in spec.constraints) or "none"),
        "",
    ]
    cols = ["point", *spec.axes, "workload", *spec.columns]
    for f in fronts_:
        parts += [f"## Pareto front: {f['objective']} ({f['workload']})", ""]
        if not f["front"]:
            parts += ["No feasible point has both values.", ""]
            continue
        body = [[_fmt(rows[i].get(c)) for c in cols] for i in f["front"]]
        parts += [_md_table(cols, body), ""]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        parts += ["## Failed rows", ""]
        body = [
            [str(r["point"]), *(_fmt(r[a]) for a in spec.axes), r["workload"], r["error"]]
            for r in failed[:50]
        ]
        parts += [_md_table(["point", *spec.axes, "workload", "error"], body), ""]
        if len(failed) > 50:
            parts += [f"... and {len(failed) - 50} more (results.csv)", ""]
    parts += [
        "Plots: " + plots,
        "",
    ]
    return "\n".join(parts)


def _same_results(previous: Path, table: str) -> bool:
    """Whether ``previous`` holds this results.csv, written by this tpegen (so its plots are current)."""
    try:
        same_table = (previous / "results.csv").read_text() == table
        doc = json.loads((previous / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return same_table and isinstance(doc, dict) and doc.get("versions") == versions()


def write_results(
    spec: SweepSpec,
    rows: list[dict[str, Any]],
    fronts_: list[dict[str, Any]],
    stats: dict[str, Any],
    folder: Path,
    *,
    previous: Path | None = None,
    plots: bool = True,
) -> list[str]:
    """Write results.csv, results.json, pareto.csv, summary.md and (``plots``, with matplotlib) the
    plots into ``folder``. Plots that ``previous`` (the output folder) holds for the same results.csv
    are kept instead of drawn again (drawing takes longer than a cached re-run), unless another
    tpegen drew them."""
    import importlib.util

    table = to_csv(spec, rows)
    (folder / "results.csv").write_text(table)
    doc = {
        "spec": spec.raw,
        "rows": rows,
        "fronts": [
            {
                "objective": f["objective"],
                "workload": f["workload"],
                "points": [rows[i]["point"] for i in f["front"]],
            }
            for f in fronts_
        ],
        "stats": stats,
        "versions": versions(),
    }
    (folder / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (folder / "pareto.csv").write_text(pareto_csv(spec, rows, fronts_))
    names = plot_names(spec, rows, fronts_) if plots and importlib.util.find_spec("matplotlib") else []
    drawn = previous is not None and _same_results(previous, table)
    if names and not (drawn and all((previous / n).is_file() for n in names)):
        write_plots(spec, rows, fronts_, folder)
    if names:
        listed = ", ".join(names)
    else:
        listed = "none (install matplotlib: pip install 'tpegen[plot]')" if plots else "none (turned off)"
    (folder / "summary.md").write_text(summary_markdown(spec, rows, fronts_, stats, listed))
    return ["results.csv", "results.json", "pareto.csv", "summary.md", *names]
