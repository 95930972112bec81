"""`tpegen synth`: the PPA record of a generated design, from Yosys and gate-level simulation."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import REPO

GSCL45 = REPO.parent / "shared" / "tech" / "gscl45nm.lib"


def _config(tmp_path, rows=1, cols=1):
    path = tmp_path / "mac.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": f"synth_mac_{rows}x{cols}",
                "pe": {"type": "mac", "act_bits": 8, "weight_bits": 8, "acc_bits": 24, "dataflow": "os"},
                "array": {"rows": rows, "cols": cols},
            }
        )
    )
    return path


@pytest.mark.rtl
def test_synth_json_record_with_energy(run_cli, tmp_path):
    out = tmp_path / "ppa"
    code, stdout, err = run_cli("synth", _config(tmp_path, 2, 1), "--json", "-o", out)
    assert code == 0, err
    record = json.loads(stdout)
    for key in ("area_um2", "cells", "delay_ns", "energy_pj_per_op", "ops_per_cycle", "liberty"):
        assert key in record, key
    assert record["area_um2"] > 0 and record["delay_ns"] > 0 and record["energy_pj_per_op"] > 0
    assert record["checked_against_rtl"] is True
    assert sum(record["cells"].values()) > 100  # an 8x8 multiplier alone is hundreds of cells
    # The default workload is the array's steady-state GEMM, stated next to the energy: a 2x1 OS array
    # runs 4 x 4 C tiles of K = 8 (8x8x4) back to back: 8 cycles per tile plus one fill and drain
    # (a single 2x8x1 tile takes 8 + 4 cycles); the cycles are those of the gate-level simulation.
    w = record["workload"]
    assert (w["M"], w["K"], w["N"], w["seed"]) == (8, 8, 4, 0)
    assert record["ops"] == 8 * 8 * 4 and record["ops"] / record["ops_per_cycle"] == w["cycles"]
    assert w["cycles"] == 16 * 8 + 4 and w["utilization"] == 256 / (2 * w["cycles"]) > 0.9
    assert json.loads((out / "ppa.json").read_text())["area_um2"] == record["area_um2"]


@pytest.mark.skipif(not GSCL45.exists(), reason="../shared/tech/gscl45nm.lib not present")
def test_synth_with_freepdk45_liberty(run_cli, tmp_path):
    code, stdout, err = run_cli("synth", _config(tmp_path), "--liberty", GSCL45, "--no-energy", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    assert record["area_um2"] > 0 and "gscl45nm" in record["liberty"]
    assert record["energy_pj_per_op"] is None


@pytest.mark.parametrize("content", [None, "library (broken { cell (X) {"])
def test_bad_liberty_is_one_line_error(run_cli, tmp_path, content):
    lib = tmp_path / "cells.lib"
    if content is not None:
        lib.write_text(content)
    out = tmp_path / "ppa"
    code, _, err = run_cli("synth", _config(tmp_path), "--liberty", lib, "--no-energy", "-o", out)
    # Progress lines may precede it; the error itself is one line, the last one.
    lines = err.splitlines()
    assert code != 0 and lines[-1].startswith("tpegen: error:") and "cells.lib" in lines[-1], err
    assert sum("error" in line for line in lines) == 1
    assert "Traceback" not in err and not out.exists()
