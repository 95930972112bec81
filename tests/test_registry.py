"""The family registry: every shipped config resolves to a registered family/organization, and
each driver's closed-form ``cycles()`` equals the cycle simulator's timeline of its ``schedule()``
(and the per-tile recurrence the simulator steps through under limited bandwidth)."""

from __future__ import annotations

import numpy as np
import pytest

from tpegen import registry
from tpegen.config import FAMILIES, config_from_dict, load_config, shipped_configs
from tpegen.errors import ConfigError
from tpegen.sim.cycle import simulate_shape

SHIPPED = shipped_configs()


def _shapes(acc) -> list[tuple[int, int, int]]:
    """(M, K, N): 1x1x1, one full tile, odd sizes around it, and a long K."""
    m, k, n = acc.workload_shape()
    return [
        (1, 1, 1),
        (m, k, n),
        (2 * m + 1, k + 3, 2 * n + 1),
        (m + 1, 5 * k + 1, max(1, n - 1)),
        (3, 37, 5),
    ]


def _recurrence_total(timing) -> int:
    """Total cycles of the simulator's per-tile recurrence (``TileTiming.step``) with every operand
    ready at cycle 0, an independent path from the closed-form ``timeline()``."""
    state, starts, ends = None, [], []
    for t in range(len(timing.timeline().end)):
        state, start, _, end = timing.step(state, t, 0)
        starts.append(start)
        ends.append(end)
    return max(ends) - min(starts) + 1


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_cycles_equal_simulated_timeline(name):
    cfg = load_config(SHIPPED[name])
    acc = cfg.accelerator()
    assert type(acc) is registry.resolve(registry.entry_for(cfg).driver)
    for m, k, n in _shapes(acc):
        sched = acc.schedule(m, k, n)
        sim = simulate_shape(acc, m, k, n)
        cycles = acc.cycles(m, k, n)
        assert sim.cycles == sim.ideal_cycles == sched.timing.timeline().total == cycles, (m, k, n)
        assert _recurrence_total(sched.timing) == cycles, (m, k, n)
        assert int(sched.macs.sum()) == m * k * n  # every useful MAC once (real, unpadded extents)


def test_every_registered_organization_ships_a_config():
    shipped = {registry.entry_for(load_config(p)).key for p in SHIPPED.values()}
    assert shipped == set(registry.combinations())


def test_registry_lists_every_family_once():
    families = [e.family for e in registry.ENTRIES]
    assert list(FAMILIES) == list(dict.fromkeys(families))  # each family once, in table order
    for family, entries in FAMILIES.items():
        assert [e.family for e in entries] == [family] * len(entries)
        assert len({e.organization for e in entries}) == len(entries)
        assert len(entries) == 1 or entries[0].selector is not None
    assert sum(len(v) for v in FAMILIES.values()) == len(registry.ENTRIES)


def test_unregistered_combination_names_the_allowed_ones():
    with pytest.raises(ConfigError) as info:
        registry.lookup("fma", "ws")
    msg = str(info.value)
    assert msg.startswith("pe.dataflow:") and "'os'" in msg
    assert all(key in msg for key in registry.combinations())
    with pytest.raises(ConfigError, match=r"pe\.type: must be one of 'mac'"):
        config_from_dict({"pe": {"type": "nope"}, "array": {}})


def test_config_selects_organization():
    base = {"pe": {"type": "mac", "act_bits": 8, "weight_bits": 8}, "array": {"rows": 2, "cols": 3}}
    for dataflow in ("os", "ws"):
        cfg = config_from_dict({**base, "pe": {**base["pe"], "dataflow": dataflow}})
        entry = registry.entry_for(cfg)
        assert (entry.family, entry.organization, entry.system) == ("mac", dataflow, dataflow)
        assert isinstance(cfg.accelerator().component(), registry.resolve(entry.generator))
    assert np.all([registry.lookup(e.family, e.organization) is e for e in registry.ENTRIES])


def test_system_geometry_kind_comes_from_the_registry(monkeypatch):
    from dataclasses import replace

    from tpegen.hw.system.params import SystemGeometry
    from tpegen.hw.system.sequencers import sequencer_for

    for path in SHIPPED.values():
        cfg = load_config(path)
        entry = registry.entry_for(cfg)
        if entry.system is not None and cfg.family == "fma" and cfg.pe.fma.dot:
            with pytest.raises(ConfigError, match=r"pe\.terms: must be 1 on the accelerator top"):
                SystemGeometry.of(cfg)  # a dot-product FP PE has no accelerator top (yet)
        elif entry.system is not None:
            g = SystemGeometry.of(cfg)
            assert g.kind == entry.system and sequencer_for(g).kind == entry.system
    cfg = load_config("int8_ws_8x8")
    real = registry.entry_for
    monkeypatch.setattr(registry, "entry_for", lambda c: replace(real(c), system=None))
    with pytest.raises(ConfigError, match=r"pe\.type: must be a family with an accelerator top \(.*mac/ws"):
        SystemGeometry.of(cfg)
