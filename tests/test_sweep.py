"""tpegen sweep: spec errors, serial vs Dask (local cluster and an external scheduler), caching."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tpegen.config import load_config
from tpegen.sweep import load_sweep_spec, run_sweep, shipped_sweeps

# Two valid 8-bit OS arrays, and a point whose config is invalid (rows above the limit of 128).
TINY = {
    "name": "tiny",
    "base": "int8_os_8x8",
    "axes": {"array.rows": [2, 3, 200], "array.cols": [2]},
    "workloads": ["5x7x6", "9x3x4"],
    "metrics": ["cycles", "utilization"],
    "constraints": ["utilization >= 0.3"],
    "objectives": [{"cycles": "min", "utilization": "max"}],
}


def _spec(tmp_path: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _table(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((folder / "results.csv").read_text())))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"axes": {"array.rowz": [2]}}, "axes.array.rowz"),
        ({"axes": {"array.rows": []}}, "axes.array.rows"),
        ({"axes": {"array.rows": {"start": 8, "stop": 4, "step": 2}}}, "axes.array.rows"),
        ({"metrics": ["cycles", "power"]}, "metrics[1]"),
        ({"objectives": [{"cycles": "min", "area": "min"}]}, "objectives[0].area"),
        ({"constraints": ["utilization >> 2"]}, "constraints[0]"),
        ({"workloads": ["5x7"]}, "workloads[0]"),
        ({"mode": "zip", "axes": {"array.rows": [2, 3], "array.cols": [2]}}, "axes"),
        ({"colour": 1}, "colour"),
    ],
)
def test_spec_error_is_one_line_naming_the_field(run_cli, tmp_path, change, field):
    path = _spec(tmp_path, {**TINY, **change})
    code, out, err = run_cli("sweep", path, "-o", tmp_path / "out", "--serial", "--no-plots")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("tpegen: error: ") and f"{field}: must be" in err, err
    assert not (tmp_path / "out").exists()


def test_ranges_and_zip_expand_as_documented():
    spec = load_sweep_spec(
        {
            **TINY,
            "mode": "zip",
            "axes": {
                "array.rows": {"start": 2, "stop": 8, "factor": 2},
                "array.cols": {"start": 1, "stop": 5, "step": 2},
            },
        }  # fmt: skip
    )
    assert spec.points() == [{"array.rows": r, "array.cols": c} for r, c in ((2, 1), (4, 3), (8, 5))]


def test_serial_sweep_cycles_failure_and_cached_rerun(run_cli, tmp_path):
    path = _spec(tmp_path, TINY)
    code, out, err = run_cli("sweep", path, "-o", tmp_path / "out", "--serial")
    assert code == 0, err
    rows = _table(tmp_path / "out")
    assert len(rows) == 6 and [r["point"] for r in rows] == ["0", "0", "1", "1", "2", "2"]
    for row in rows[:4]:  # every cycle count equals the cycle-level simulator's on real operands
        rows_, (m, k, n) = int(row["array.rows"]), map(int, row["workload"].split("x"))
        raw = load_config("int8_os_8x8").to_dict()
        raw["array"].update(rows=rows_, cols=2)
        from tpegen.config import config_from_dict

        cfg = config_from_dict(raw)
        rng = np.random.default_rng(0)
        res = cfg.accelerator().run_gemm(rng.integers(-9, 9, (m, k)), rng.integers(-9, 9, (k, n)), "cycle")
        assert (row["status"], int(row["cycles"])) == ("ok", res.cycles)
        assert float(row["utilization"]) == pytest.approx(m * k * n / (res.cycles * rows_ * 2))
        assert row["feasible"] == ("true" if all(
            float(r["utilization"]) >= 0.3 for r in rows if r["point"] == row["point"]) else "false")  # fmt: skip
    for row in rows[4:]:  # the invalid point is recorded, one line, and did not stop the sweep
        assert row["status"] == "failed" and row["cycles"] == "" and row["feasible"] == "false"
        assert row["error"] == "array.rows: must be an integer in 1..128, got 200"
    assert "4 computed, 0 cached" in out
    plots = [
        "pareto_0_cycles_utilization_5x7x6.png",
        "pareto_1_cycles_utilization_9x3x4.png",
        "sensitivity.png",
    ]
    for name in ["results.json", "pareto.csv", "summary.md"] + (
        plots if importlib.util.find_spec("matplotlib") else []
    ):
        assert (tmp_path / "out" / name).is_file(), name
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["cycles"] for r in doc["rows"]] == [int(r["cycles"]) if r["cycles"] else None for r in rows]
    t0 = time.perf_counter()
    code, out, err = run_cli("sweep", path, "-o", tmp_path / "out", "--serial")
    assert code == 0 and "all cached" in out and time.perf_counter() - t0 < 5
    assert _table(tmp_path / "out") == rows


def test_extended_sweep_computes_only_the_new_points(tmp_path):
    first = run_sweep({**TINY, "axes": {"array.rows": [2, 3]}}, tmp_path / "o", serial=True, plots=False)
    assert (first.computed, first.cached) == (4, 0)
    more = run_sweep({**TINY, "axes": {"array.rows": [2, 3, 4]}}, tmp_path / "o", serial=True, plots=False)
    assert (more.computed, more.cached) == (2, 4)
    assert more.rows[:4] == first.rows


def test_interrupted_sweep_resumes(tmp_path):
    def stop_after_two(state):
        if state.done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY, tmp_path / "o", serial=True, plots=False, progress=stop_after_two)
    resumed = run_sweep(TINY, tmp_path / "o", serial=True, plots=False)
    assert (resumed.computed, resumed.cached) == (2, 2)
    assert resumed.rows == run_sweep(TINY, tmp_path / "fresh", serial=True, plots=False).rows


def test_pareto_front_is_the_nondominated_feasible_rows(tmp_path):
    res = run_sweep(
        {**TINY, "axes": {"array.rows": [1, 2, 3, 4], "array.cols": [1, 2]}},
        tmp_path / "o",
        serial=True,
        plots=False,
    )
    for f in res.fronts:
        cand = [(res.rows[i]["cycles"], -res.rows[i]["utilization"]) for i in f["candidates"]]
        expect = sorted(
            (c, -u) for c, u in cand if not any(c2 <= c and u2 <= u and (c2, u2) != (c, u) for c2, u2 in cand)
        )
        assert [(res.rows[i]["cycles"], res.rows[i]["utilization"]) for i in f["front"]] == expect
        assert all(res.rows[i]["utilization"] >= 0.3 for i in f["front"])
    if importlib.util.find_spec("pandas"):
        df = res.to_dataframe()
        assert list(df["cycles"].dropna()) == [r["cycles"] for r in res.rows if r["cycles"] is not None]


def test_local_dask_cluster_gives_the_serial_table(run_cli, tmp_path):
    pytest.importorskip("distributed", reason="pip install -e '.[sweep]'")
    path = _spec(tmp_path, TINY)
    assert run_cli("sweep", path, "-o", tmp_path / "serial", "--serial", "--no-plots")[0] == 0
    code, out, err = run_cli("sweep", path, "-o", tmp_path / "dask", "--workers", "2", "--no-plots", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["points"], doc["rows"][4]["error"], doc["computed"]) == (
        3,
        "array.rows: must be an integer in 1..128, got 200",
        4,
    )
    assert (tmp_path / "dask" / "results.csv").read_text() == (
        tmp_path / "serial" / "results.csv"
    ).read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_external_scheduler_gives_the_serial_table(run_cli, tmp_path):
    """A `dask scheduler` and one `dask worker`, as a user starts them, run the sweep."""
    pytest.importorskip("distributed", reason="pip install -e '.[sweep]'")
    path = _spec(tmp_path, TINY)
    assert run_cli("sweep", path, "-o", tmp_path / "serial", "--serial", "--no-plots")[0] == 0
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
        )
    ]
    try:
        procs.append(
            subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"], **quiet)
        )
        code, out, err = run_cli(
            "sweep", path, "-o", tmp_path / "remote", "--scheduler", address, "--no-plots"
        )
        assert code == 0, err
        assert "4 computed" in out
        assert (tmp_path / "remote" / "results.csv").read_text() == (
            tmp_path / "serial" / "results.csv"
        ).read_text()
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_tiny_synthesis_point(tmp_path):
    """Area and delay of a 2x2 array come from synthesis; a second workload reuses the same task."""
    from tpegen.api import synthesize_design

    spec = {**TINY, "axes": {"array.rows": [2], "array.cols": [2]}, "metrics": ["area", "delay", "cycles"]}
    spec.pop("constraints"), spec.pop("objectives")
    res = run_sweep(spec, tmp_path / "o", serial=True, plots=False)
    assert res.tasks == 3 and [r["status"] for r in res.rows] == ["ok", "ok"]
    raw = load_config("int8_os_8x8").to_dict()
    raw["array"].update(rows=2, cols=2)
    from tpegen.config import config_from_dict

    synth, _ = synthesize_design(config_from_dict(raw), energy=False)
    assert {(r["area"], r["delay"]) for r in res.rows} == {(synth.area_um2, synth.delay_ns)}


def test_model_and_topology_workloads(tmp_path):
    """A topology's cycles are the sum of its GEMMs'; a model row has accuracy, a GEMM row none."""
    topology = tmp_path / "two.csv"
    topology.write_text("Layer, M, N, K,\nfc1, 5, 6, 7,\nfc2, 9, 4, 3,\n")
    spec = {
        "base": "int8_os_8x8",
        "axes": {"array.rows": [2, 4]},
        "workloads": [
            "5x7x6",
            "9x3x4",
            {"topology": str(topology)},
            "digits_mlp",
            {"model": "digits_mlp", "quant": "W2A8"},
        ],
        "metrics": ["cycles", "accuracy"],
        "constraints": ["accuracy_drop <= 0.02"],
    }
    res = run_sweep(spec, tmp_path / "o", serial=True, plots=False)
    assert all(r["status"] == "ok" for r in res.rows)
    for point in (0, 1):
        rows = {r["workload"]: r for r in res.rows if r["point"] == point}
        assert rows["topology:two"]["cycles"] == rows["5x7x6"]["cycles"] + rows["9x3x4"]["cycles"]
        assert rows["5x7x6"]["accuracy"] is None and rows["topology:two"]["accuracy_drop"] is None
        for label in ("digits_mlp:W8A8", "digits_mlp:W2A8"):
            r = rows[label]
            assert 0.5 < r["accuracy"] <= 1 and r["accuracy_drop"] == pytest.approx(
                r["accuracy_float"] - r["accuracy"]
            )
        feasible = all(r["accuracy_drop"] <= 0.02 for r in rows.values() if r["accuracy_drop"] is not None)
        assert {r["feasible"] for r in rows.values()} == {feasible}


def test_shipped_sweeps_load():
    names = shipped_sweeps()
    assert {"array_size", "lut_vs_mac", "approx_fp"} <= set(names)
    for name in names:
        spec = load_sweep_spec(name)
        assert spec.points() and spec.objectives


@pytest.mark.slow
def test_synthesis_sweep_on_two_workers_equals_serial(tmp_path):
    """Area, delay and gate-level energy of three small arrays: the same table on 2 Dask workers."""
    pytest.importorskip("distributed", reason="pip install -e '.[sweep]'")
    spec = {
        "base": "int8_os_8x8",
        "axes": {"array.rows": [2, 3, 4], "array.cols": [2]},
        "workloads": ["16x16x16"],
        "metrics": ["area", "delay", "energy_per_op", "cycles"],
        "objectives": [{"area": "min", "energy_per_op": "min"}],
    }
    serial = run_sweep(spec, tmp_path / "serial", serial=True, plots=False)
    dask = run_sweep(spec, tmp_path / "dask", workers=2, plots=False)
    assert all(r["status"] == "ok" for r in serial.rows)
    assert (tmp_path / "dask" / "results.csv").read_text() == (
        tmp_path / "serial" / "results.csv"
    ).read_text()
    assert dask.computed == serial.computed == 6
