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


# The points of a spec listed instead of a grid: a field a point does not set keeps its base's value.
LISTED = {
    "name": "listed",
    "base": ["int8_os_8x8", "int8_ws_8x8"],
    "fixed": {"array.cols": 2},
    "points": [{"name": "os2", "array.rows": 2}, {"name": "ws3", "base": "int8_ws_8x8", "array.rows": 3}, {"name": "os"}],
    "workloads": ["5x7x6"],
    "metrics": ["cycles"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points": [{"array.rowz": 2}]}, "points[0].array.rowz"),
        ({"points": []}, "points"),
        ({"points": [{"name": "a"}, {"name": "a"}]}, "points"),
        ({"points": [{"base": "int8_os_16x16"}]}, "points[0].base"),
        ({"points": [{"array.cols": 4}]}, "points[0].array.cols"),
        ({"axes": {"array.rows": [2]}}, "axes"),
        ({"mode": "zip"}, "mode"),
    ],
)
def test_listed_points_errors_name_the_field(change, field):
    with pytest.raises(Exception) as info:
        load_sweep_spec({**LISTED, **change})
    assert f"{field}: must be" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"workloads": [{"model": "absent.onnx", "inputs": "x.npy"}]}, "workloads[0].model"),
        ({"workloads": [{"model": "net.onnx"}]}, "workloads[0].inputs"),
        ({"workloads": [{"model": "digits_mlp", "inputs": "x.npy"}]}, "workloads[0].inputs"),
        ({"liberty": "absent.lib"}, "liberty"),
    ],
)
def test_file_errors_name_the_field(run_cli, tmp_path, change, field):
    (tmp_path / "net.onnx").write_bytes(b"not read before the inputs are checked")
    path = _spec(tmp_path, {**TINY, **change})
    code, out, err = run_cli("sweep", path, "-o", tmp_path / "out", "--serial", "--no-plots")
    assert code == 2 and out == "" and err.count("\n") == 1 and f": {field}: " in err, err
    assert not (tmp_path / "out").exists()


def test_listed_points_show_the_base_values_and_run_their_own_configs(tmp_path):
    listed = run_sweep(LISTED, tmp_path / "listed", serial=True, plots=False)
    assert [(r["name"], r["base"], r["array.rows"]) for r in listed.rows] == [
        ("os2", "int8_os_8x8", 2), ("ws3", "int8_ws_8x8", 3), ("os", "int8_os_8x8", 8)]  # fmt: skip
    for row in listed.rows:
        raw = load_config(row["base"]).to_dict()
        raw["array"].update(rows=row["array.rows"], cols=2)
        from tpegen.config import config_from_dict

        acc = config_from_dict(raw).accelerator()
        rng = np.random.default_rng(1)
        res = acc.run_gemm(rng.integers(-9, 9, (5, 7)), rng.integers(-9, 9, (7, 6)), "cycle")
        assert row["cycles"] == res.cycles
    assert "listed" in (tmp_path / "listed" / "summary.md").read_text()


def test_workload_energy_reproduces_the_measured_total_on_the_energy_gemm(tmp_path):
    """The workload energy model (dynamic per MAC x MACs + clock and leakage per cycle x cycles)
    gives back the gate-level total on the GEMM that energy was measured on, and scales a small
    GEMM by its own MACs and cycles."""
    from tpegen.api import synthesize_design
    from tpegen.config import config_from_dict

    raw = load_config("int8_os_8x8").to_dict()
    raw["array"].update(rows=2, cols=2)
    cfg = config_from_dict(raw)
    m, k, n = cfg.accelerator().workload_shape()
    spec = {
        "base": "int8_os_8x8",
        "fixed": {"array.rows": 2, "array.cols": 2},
        "workloads": [f"{m}x{k}x{n}", "5x7x6"],
        "metrics": ["energy_per_op", "energy", "time", "cycles"],
    }
    res = run_sweep(spec, tmp_path / "o", serial=True, plots=False)
    steady, small = res.rows
    synth, e = synthesize_design(cfg)
    assert small["time"] == pytest.approx(small["cycles"] * synth.delay_ns / 1e6, rel=1e-12)
    clocked = run_sweep(
        {**spec, "metrics": ["time"], "period_ns": 5.0}, tmp_path / "p", serial=True, plots=False
    )
    assert clocked.tasks == 2 and clocked.rows[1]["time"] == small["cycles"] * 5.0 / 1e6  # no synthesis
    assert steady["energy_per_op"] == small["energy_per_op"] == pytest.approx(e.energy_pj_per_op, rel=1e-9)
    assert steady["energy"] * 1e6 == pytest.approx(e.energy_pj, rel=0.03)
    static = e.breakdown_pj["clock"] + e.breakdown_pj["leakage"]
    assert 0 < static < e.energy_pj
    expect = (e.energy_pj - static) / e.ops * 5 * 7 * 6 + static / e.cycles * small["cycles"]
    assert small["energy"] * 1e6 == pytest.approx(expect, rel=1e-9)


GSCL45 = Path(__file__).resolve().parents[2] / "shared" / "tech" / "gscl45nm.lib"


@pytest.mark.skipif(not GSCL45.exists(), reason="../shared/tech/gscl45nm.lib is not present")
def test_liberty_choice_is_synthesized_and_keyed_by_content(tmp_path):
    import shutil

    from tpegen.api import synthesize_design
    from tpegen.config import config_from_dict
    from tpegen.sweep_tasks import run_task

    lib = tmp_path / "cells.lib"
    shutil.copy(GSCL45, lib)
    spec = {"base": "int8_os_8x8", "fixed": {"array.rows": 2, "array.cols": 2}, "metrics": ["area"]}
    builtin = run_sweep(spec, tmp_path / "builtin", serial=True, plots=False)
    res = run_sweep({**spec, "liberty": str(lib)}, tmp_path / "o", serial=True, plots=False)
    raw = load_config("int8_os_8x8").to_dict()
    raw["array"].update(rows=2, cols=2)
    synth, _ = synthesize_design(config_from_dict(raw), liberty=lib, energy=False)
    assert res.rows[0]["area"] == synth.area_um2 != builtin.rows[0]["area"]
    assert "cells.lib" in (tmp_path / "o" / "summary.md").read_text()
    again = run_sweep({**spec, "liberty": str(lib)}, tmp_path / "o", serial=True, plots=False)
    assert (again.computed, again.cached) == (0, 1)
    with lib.open("a") as fh:  # the same path, other bytes: a new key
        fh.write("\n/* edited */\n")
    edited = run_sweep({**spec, "liberty": str(lib)}, tmp_path / "o", serial=True, plots=False)
    assert (edited.computed, edited.rows[0]["area"]) == (1, synth.area_um2)
    task = json.loads(next((tmp_path / "o" / "cache").rglob("*.json")).read_text())["task"]
    task["liberty"][1] = "0" * 64  # a worker that sees other bytes at that path refuses the task
    out = run_task(task)
    assert out["status"] == "failed" and not out["cacheable"] and "differs" in out["error"]


def test_onnx_model_file_workload(tmp_path):
    """An ONNX file with an input batch and labels: mapped on each point, keyed by the file's bytes."""
    onnx = pytest.importorskip("onnx", reason="pip install -e '.[onnx]'")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"])],
        "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fc.onnx")
    x = rng.standard_normal((40, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", (x @ w).argmax(1))
    path = _spec(tmp_path, {
        "base": "int8_os_8x8", "axes": {"array.rows": [2, 4]}, "metrics": ["cycles", "accuracy"],
        "workloads": [{"model": "fc.onnx", "inputs": "x.npy", "labels": "y.npy", "quant": "W4A8"}]})  # fmt: skip
    res = run_sweep(path, tmp_path / "o", serial=True, plots=False)
    assert [r["workload"] for r in res.rows] == ["fc.onnx:W4A8"] * 2
    assert all(r["status"] == "ok" and r["accuracy_float"] == 1.0 for r in res.rows)
    assert 0.5 < res.rows[0]["accuracy"] == res.rows[1]["accuracy"] < 1.0
    assert res.rows[0]["cycles"] > res.rows[1]["cycles"]  # 2 rows of PEs take longer than 4
    for row in res.rows:
        raw = load_config("int8_os_8x8").to_dict()
        raw["array"]["rows"] = row["array.rows"]
        from tpegen.config import config_from_dict

        acc = config_from_dict(raw).accelerator()
        assert row["cycles"] == acc.cycles(40, 16, 8)
    assert run_sweep(path, tmp_path / "o", serial=True, plots=False).computed == 0
    np.save(tmp_path / "y.npy", np.zeros(40, dtype=np.int64))  # other labels: mapped anew
    relabeled = run_sweep(path, tmp_path / "o", serial=True, plots=False)
    assert relabeled.computed == 2 and relabeled.rows[0]["accuracy_float"] < 1.0


def test_native_quant_follows_each_points_format(tmp_path):
    spec = {
        "base": ["int8_os_8x8", "bf16_exact"],
        "fixed": {"array.rows": 2, "array.cols": 2},
        "workloads": [{"model": "digits_mlp", "quant": "native"}],
        "metrics": ["accuracy"],
    }
    res = run_sweep(spec, tmp_path / "o", serial=True, plots=False)
    assert [r["workload"] for r in res.rows] == ["digits_mlp:native"] * 2
    tasks = [json.loads(p.read_text())["task"] for p in sorted((tmp_path / "o" / "cache").rglob("*.json"))]
    assert sorted(t["quant"] for t in tasks) == ["BF16", "W8A8"]
    assert all(r["status"] == "ok" and 0.5 < r["accuracy"] <= 1 for r in res.rows)


def test_help_names_every_shipped_sweep(run_cli, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli("sweep", "--help")
    out = capsys.readouterr().out
    listed = " ".join(out.split()).split("configs/sweeps/: ", 1)[1].split(")", 1)[0]
    assert info.value.code == 0 and sorted(listed.split(", ")) == sorted(shipped_sweeps())


def test_progress_counts_points_done(tmp_path):
    seen = []
    run_sweep(
        TINY,
        tmp_path / "o",
        serial=True,
        plots=False,
        progress=lambda s: seen.append((s.points_done, s.done)),
    )
    # the invalid point has no task (done from the start); each valid point has one task per workload
    assert seen == [(1, 0), (1, 1), (2, 2), (2, 3), (3, 4)]


def test_plots_are_kept_for_the_same_results_and_redrawn_by_another_tpegen(tmp_path):
    pytest.importorskip("matplotlib", reason="pip install -e '.[plot]'")
    run_sweep(TINY, tmp_path / "o", serial=True)
    plot = tmp_path / "o" / "sensitivity.png"
    plot.write_bytes(b"kept")  # the same results by the same tpegen: not drawn again
    run_sweep(TINY, tmp_path / "o", serial=True)
    assert plot.read_bytes() == b"kept"
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    doc["versions"]["tpegen"] = "0.0.0"  # as if an older tpegen had drawn them
    (tmp_path / "o" / "results.json").write_text(json.dumps(doc))
    run_sweep(TINY, tmp_path / "o", serial=True)
    assert plot.read_bytes().startswith(b"\x89PNG")
