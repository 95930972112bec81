"""The LUT core's table design choices (LUT Tensor Core's ablation): ``pe.table`` (half | full),
``pe.index_complement`` (offline | in_core) and ``pe.precompute`` (in_core | external).

Every variant must compute ``wrap(A @ W)`` on its own path: the numeric model against numpy, the
driver's table beats against tables built by brute force, and the RTL on Verilator (small tiles,
one build per variant) against numpy, with cycles equal to the timing model. The accelerator top
accepts only the default variant.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from tpegen.config import config_from_dict
from tpegen.errors import ConfigError
from tpegen.hw.arrays.lut_core import LutCore
from tpegen.hw.system.params import SystemGeometry
from tpegen.sim.cycle import simulate_shape
from tpegen.sim.lut import (
    LutCoreParams,
    bit_planes,
    core_tables,
    encode_core_weights,
    encode_weights,
    lut_accumulate,
    lut_gemm,
    lut_gemm_plan,
    lut_pe_summary,
    lut_schedule,
    reference_gemm,
    weight_codes,
)
from tpegen.sim.packing import unpack_lanes
from tpegen.sw.verify import verify

VARIANTS = [
    (table, complement, precompute)
    for table, complement, precompute in itertools.product(
        ("half", "full"), ("offline", "in_core"), ("in_core", "external")
    )
    if not (table == "full" and complement == "in_core")
]
# (weight_bits, ternary, act_bits)
MODES = [(1, False, 8), (2, False, 8), (4, False, 8), (2, True, 8), (2, False, 16), (3, False, 16)]


def _params(variant, b=2, ternary=False, act_bits=8, g=4, **kw) -> LutCoreParams:
    table, complement, precompute = variant
    kw = {"tile_m": 2, "tile_n": 3, "tile_k": 2, **kw}
    return LutCoreParams(
        group_size=g,
        weight_bits=b,
        ternary=ternary,
        act_bits=act_bits,
        table=table,
        index_complement=complement,
        precompute=precompute,
        **kw,
    )


def _operands(p: LutCoreParams, rng, M, K, N):
    lo, hi = -(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1
    a = rng.integers(lo, hi + 1, (M, K))
    a[0] = lo  # extremes in every case
    if p.weight_bits == 1:
        w = rng.choice([-1, 1], (K, N))
    else:
        wlo, whi = p.weight_range()
        w = rng.integers(wlo, whi + 1, (K, N))
    return a, w


def _brute_tables(groups: np.ndarray, full: bool) -> np.ndarray:
    """Tables by definition, ``T[u] = sum_j (2 u_j - 1) a_j`` as a matrix product (not the adder
    network): all ``2^g`` entries, or the half with ``u_{g-1} = 1`` (``T[E + v]``)."""
    g = groups.shape[-1]
    u = np.arange(1 << g)
    signs = 2 * ((u[:, None] >> np.arange(g)) & 1) - 1  # (2^g, g)
    t = np.asarray(groups, dtype=np.int64) @ signs.T
    return t if full else t[..., 1 << (g - 1) :]


# ---- numeric model --------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("b", "ternary", "act_bits"), MODES)
def test_golden_equals_reference(variant, b, ternary, act_bits):
    rng = np.random.default_rng(b * 31 + act_bits + ternary)
    for g, (M, K, N) in itertools.product((3, 4), [(1, 1, 1), (5, 13, 7), (3, 29, 4)]):
        p = _params(variant, b, ternary, act_bits, g)
        a, w = _operands(p, rng, M, K, N)
        assert np.array_equal(lut_gemm(a, w, p), reference_gemm(a, w, p.acc_bits)), (p, M, K, N)


def test_golden_wraps_like_reference():
    """A narrow accumulator wraps identically on every variant (the model is not just A @ W)."""
    for variant in VARIANTS:
        p = _params(variant, 2, tile_m=1, tile_n=2, acc_bits=14)
        a, w = np.full((1, 64), -128), np.full((64, 2), -2)
        assert not np.array_equal(reference_gemm(a, w, 14), a @ w)
        assert np.array_equal(lut_gemm(a, w, p), reference_gemm(a, w, 14)), variant


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("g", [1, 2, 4, 6])
def test_tables_match_definition(g, full):
    rng = np.random.default_rng(g)
    groups = rng.integers(-128, 128, (5, g))
    p = _params(("full" if full else "half", "offline", "in_core"), g=g, tile_k=1)
    tables, rowsums = core_tables(p, groups)
    assert tables.shape == (5, 1, p.entries) and p.entries == 1 << (g - (0 if full else 1))
    assert np.array_equal(tables[:, 0], _brute_tables(groups, full))
    assert np.array_equal(rowsums[:, 0], groups.sum(axis=1))


@pytest.mark.parametrize(("b", "ternary", "act_bits"), MODES)
def test_external_table_beats(b, ternary, act_bits):
    """The ``tables`` beats the driver sends hold each block's tables (by definition) and row sums."""
    for table in ("half", "full"):
        p = _params((table, "offline", "external"), b, ternary, act_bits)
        rng = np.random.default_rng(b)
        M, K, N = 3, 11, 4  # 2 M-tiles x 2 K-tiles x 2 N-tiles, partial in every dimension
        a, w = _operands(p, rng, M, K, N)
        plan = lut_gemm_plan(p, a, w)
        assert plan.act_port == "tables" and set(plan.stream_program().inputs) == {"weights", "tables"}
        lanes = p.tile_m * p.tile_k * p.entries
        got = unpack_lanes(plan.acts, p.table_bits, lanes, signed=True)
        ap = np.pad(a, ((0, 4 - M), (0, 16 - K)))  # padded to whole tiles
        blocks = ap.reshape(2, p.tile_m, 2, p.k_tile).transpose(0, 2, 1, 3)  # (mt, kt, tile_m, k_tile)
        expected = _brute_tables(blocks.reshape(2, 2, p.tile_m, p.tile_k, p.group_size), p.full_table)
        per_beat = expected.reshape(4, lanes)  # beats in (m, k) order, repeated per N-tile
        assert np.array_equal(got, np.tile(per_beat, (2, 1)))
        offset = lanes * p.table_bits
        if p.corrected:
            rs = unpack_lanes(plan.acts, p.rowsum_bits, p.tile_m, signed=True, offset=offset)
            assert np.array_equal(rs, np.tile(blocks.sum(axis=-1).reshape(4, p.tile_m), (2, 1)))
            offset += p.tile_m * p.rowsum_bits
        flags = unpack_lanes(plan.acts, 1, 2, signed=False, offset=offset)
        assert flags[:, 0].tolist() == [0, 1] * 4  # last on the second K-tile
        assert offset + 2 == p.tables_payload_bits


def test_index_encoding_per_variant():
    """Offline complement only for half tables with index_complement offline; else raw indices."""
    w = np.array([[-2, 1], [0, -1], [1, 0], [-1, -2]])  # K = g = 4, N = 2
    raw = (bit_planes(weight_codes(w, 2), 2) << np.arange(4).reshape(1, 4, 1)).sum(axis=1)  # (b, N)
    for variant in VARIANTS:
        p = _params(variant, 2)
        got = encode_core_weights(p, w)[:, 0]
        if variant[:2] == ("half", "offline"):
            sign = raw >> 3
            expected = np.where(sign == 1, raw, (raw ^ 0b0111) & 0b1111)
        else:
            expected = raw
        assert np.array_equal(got, expected), variant


def test_wrong_encoding_gives_wrong_result():
    """The model follows the variant: offline-complemented indices on an in-core-complement or
    full-table core, or raw indices on the default core, give wrong results."""
    rng = np.random.default_rng(9)
    for b in (1, 2, 4):
        a, w = _operands(_params(VARIANTS[0], b), rng, 4, 8, 3)
        for variant in VARIANTS:
            p = _params(variant, b, tile_k=2, tile_m=4)
            tables, rowsums = core_tables(p, a)
            right = encode_core_weights(p, w)
            assert np.array_equal(lut_accumulate(p, tables, rowsums, right), a @ w)
            other = encode_weights(w, b, 4, complement=not p.offline_complement)
            assert not np.array_equal(lut_accumulate(p, tables, rowsums, other), a @ w), (variant, b)


def test_params_report_the_variant():
    g = 4
    for variant in VARIANTS:
        p = _params(variant, 2, g=g)
        full, ext = variant[0] == "full", variant[2] == "external"
        assert p.entries == (16 if full else 8)
        assert p.full_table == full and p.external_tables == ext
        assert p.offline_complement == (variant[:2] == ("half", "offline"))
        assert p.input_port == ("tables" if ext else "acts")
        table_bits = p.tile_m * p.tile_k * p.entries * p.table_bits
        assert p.tables_payload_bits == table_bits + p.tile_m * p.rowsum_bits + 2
        assert p.input_payload_bits == (p.tables_payload_bits if ext else p.act_payload_bits)
        core = LutCore(p)
        port = getattr(core, p.input_port)
        assert len(port.payload.as_value()) == p.input_payload_bits
        assert not hasattr(core, "acts" if ext else "tables")
        summary = lut_pe_summary(p)
        adders = 0 if ext else (2 * 16 - 4 if full else 2 * 8 - 2)
        assert summary["precompute_adders"] == p.tile_m * p.tile_k * adders
    w1 = _params(("half", "offline", "external"), 1)  # no row-sum correction: no row sums sent
    assert w1.tables_payload_bits == w1.tile_m * w1.tile_k * 8 * w1.table_bits + 2


def test_timing_and_traffic():
    """Cycles are the same for every variant; external precompute reads tables from the A buffer."""
    shapes = [(1, 1, 1), (5, 13, 7), (8, 64, 12)]
    base = load_variant("lut_base", VARIANTS[0]).accelerator()
    for variant in VARIANTS:
        acc = load_variant("lut_v", variant).accelerator()
        p = acc.params
        for m, k, n in shapes:
            assert acc.cycles(m, k, n) == base.cycles(m, k, n) == simulate_shape(acc, m, k, n).cycles
        sched = lut_schedule(p, 4, 16, 6)  # whole tiles: every beat carries full tables
        if p.external_tables:
            assert sched.bits["A"] == 1
            assert sched.reads["A"].tolist() == [p.tables_payload_bits - 2] * len(sched.macs)
            # partial tiles: M = 3 (rows 2, 1), K = 11 (K-tiles of 8 and 3 real activations: 2, 1 groups)
            table = p.entries * p.table_bits
            per_row = [2 * table + p.rowsum_bits, table + p.rowsum_bits]
            expected = [2 * per_row[0], 2 * per_row[1], per_row[0], per_row[1]]
            assert lut_schedule(p, 3, 11, 4).reads["A"].tolist() == expected
        else:
            assert sched.bits["A"] == 8 and int(sched.reads["A"].sum()) == 4 * 16 * 2


# ---- configs --------------------------------------------------------------------------------


def load_variant(name: str, variant, **pe):
    table, complement, precompute = variant
    return config_from_dict(_variant_raw(name, table, complement, precompute, **pe))


def _variant_raw(name, table, complement, precompute, *, weight_bits=2, ternary=False):
    return {
        "name": name,
        "pe": {
            "type": "lut",
            "group_size": 4,
            "act_bits": 8,
            "weight_bits": weight_bits,
            "ternary": ternary,
            "table": table,
            "index_complement": complement,
            "precompute": precompute,
        },
        "array": {"tile_m": 2, "tile_n": 4, "tile_k": 2},
    }


@pytest.mark.parametrize(
    ("key", "value", "field", "allowed"),
    [
        ("table", "quarter", "pe.table", "one of 'half', 'full'"),
        ("index_complement", "none", "pe.index_complement", "one of 'offline', 'in_core'"),
        ("precompute", "host", "pe.precompute", "one of 'in_core', 'external'"),
        ("precompute", True, "pe.precompute", "a string"),
    ],
)
def test_bad_variant_values(bad_config, key, value, field, allowed):
    raw = _variant_raw("lut_bad", "half", "offline", "in_core")
    raw["pe"][key] = value
    bad_config(raw, field, allowed)


def test_full_table_requires_offline_complement():
    with pytest.raises(ConfigError) as info:
        load_variant("lut_bad", ("full", "in_core", "in_core"))
    assert info.value.field == "pe.index_complement"
    assert str(info.value).startswith("pe.index_complement: must be 'offline' when pe.table is 'full'")


@pytest.mark.parametrize(
    ("variant", "field"),
    [
        (("full", "offline", "in_core"), "pe.table"),
        (("half", "in_core", "in_core"), "pe.index_complement"),
        (("half", "offline", "external"), "pe.precompute"),
        (("full", "offline", "external"), "pe.table"),
    ],
)
def test_accelerator_top_rejects_variants(run_cli, tmp_path, variant, field):
    cfg = load_variant("lut_top", variant)
    with pytest.raises(ConfigError) as info:
        SystemGeometry.of(cfg)
    assert info.value.field == field and "on the accelerator top (system:)" in str(info.value)
    path = tmp_path / "top.yaml"
    path.write_text(yaml.safe_dump(_variant_raw("lut_top", *variant)))
    code, _, err = run_cli("gen", path, "--system", "-o", tmp_path / "out")
    assert code != 0 and err.count("\n") == 1 and f"{field}: must be" in err
    assert not (tmp_path / "out").exists()
    SystemGeometry.of(load_variant("lut_top", VARIANTS[0]))  # the default still builds


# ---- RTL on Verilator -----------------------------------------------------------------------

RTL_VARIANTS = {  # name -> (variant, weight_bits); one Verilator build each
    "lut_var_full": (("full", "offline", "in_core"), 2),
    "lut_var_xor": (("half", "in_core", "in_core"), 2),
    "lut_var_ext": (("half", "offline", "external"), 2),
}
SLOW_RTL_VARIANTS = {  # the default run builds each knob once; these add W1, W4 and combinations
    "lut_var_full_w1": (("full", "offline", "in_core"), 1),
    "lut_var_full_ext": (("full", "offline", "external"), 2),
    "lut_var_xor_ext_w1": (("half", "in_core", "external"), 1),
    "lut_var_xor_w4": (("half", "in_core", "in_core"), 4),
}


def _check_rtl(name: str, variant, weight_bits: int) -> None:
    """verify (RTL == golden bit for bit, cycles == timing model, random stalls) on edge cases and
    random GEMMs, golden == numpy on the same cases, and the input port's handshake cycles."""
    acc = load_variant(name, variant, weight_bits=weight_bits).accelerator()
    p = acc.params
    report = verify(acc, cases=3, seed=1)
    assert report.passed, report.to_dict()
    for label, a, w in acc.verification_cases(np.random.default_rng(1), 3):
        assert np.array_equal(acc.golden(a, w), reference_gemm(a, w, p.acc_bits)), label
    rng = np.random.default_rng(2)
    a, w = _operands(p, rng, 2 * p.tile_m + 1, 2 * p.k_tile + 3, p.tile_n + 1)
    prog = acc.program(a, w)
    (res,) = acc.rtl_model().run([prog.stream])
    assert np.array_equal(prog.decode(res.outputs), a @ w)
    M, K, N = a.shape[0], a.shape[1], w.shape[1]
    assert res.cycles == acc.cycles(M, K, N) == simulate_shape(acc, M, K, N).cycles
    beats = len(prog.stream.inputs[p.input_port])
    assert np.array_equal(res.in_cycles[p.input_port], p.planes * (np.arange(beats) + 1))


@pytest.mark.rtl
@pytest.mark.parametrize("name", list(RTL_VARIANTS))
def test_variant_rtl(name):
    _check_rtl(name, *RTL_VARIANTS[name])


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW_RTL_VARIANTS))
def test_variant_rtl_slow(name):
    _check_rtl(name, *SLOW_RTL_VARIANTS[name])


@pytest.mark.rtl
def test_variant_cli_gemm_rtl(gemm_cli, tmp_path):
    """``tpegen gemm`` on the RTL, golden and cycle backends agree for an external-table core with
    ternary weights (the W2 build of lut_var_ext: ternary does not change the Verilog)."""
    raw = _variant_raw("lut_var_ext", "half", "offline", "external", ternary=True)
    path = tmp_path / "ext.yaml"
    path.write_text(yaml.safe_dump(raw))
    rng = np.random.default_rng(4)
    a, w = rng.integers(-128, 128, (5, 21)), rng.integers(-1, 2, (21, 9))
    results = {backend: gemm_cli(path, a, w, backend) for backend in ("rtl", "golden", "cycle")}
    for _, c in results.values():
        assert np.array_equal(c, a @ w)
    assert results["rtl"][0]["cycles"] == results["golden"][0]["cycles"] == results["cycle"][0]["cycles"]
