"""Layering: ``hw/`` imports nothing from ``sim/``, and every registered family resolves to a
parameter class and generator in ``hw/`` and a driver in ``sw/``."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from amaranth.lib import wiring

import tpegen.hw
from tpegen import registry
from tpegen.hw.system.sequencers import SEQUENCERS
from tpegen.sw.accelerator import Accelerator

HW_ROOT = Path(tpegen.hw.__file__).parent


def _imported_modules(path: Path, root: Path = HW_ROOT) -> list[tuple[int, str]]:
    """Every module ``path`` imports (anywhere: module level, functions, TYPE_CHECKING blocks),
    relative imports resolved against the module's package, as ``(line, dotted name)``."""
    package = ["tpegen", "hw", *path.relative_to(root).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(x for x in (base, node.module or "") if x)
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]  # from tpegen import sim
    return out


def _is_sim(module: str) -> bool:
    return module == "tpegen.sim" or module.startswith("tpegen.sim.")


def test_hw_imports_nothing_from_sim():
    modules = sorted(HW_ROOT.rglob("*.py"))
    assert len(modules) > 10  # the walk found the hardware package
    bad = [
        f"{path.relative_to(HW_ROOT.parent)}:{line}: imports {name}"
        for path in modules
        for line, name in _imported_modules(path)
        if _is_sim(name)
    ]
    assert not bad, "hw/ must not import sim/:\n" + "\n".join(bad)


def test_import_scanner_catches_sim_imports(tmp_path):
    """The scanner sees every spelling of an import of tpegen.sim (so the test above can fail)."""
    fake = tmp_path / "arrays" / "x.py"
    fake.parent.mkdir()
    fake.write_text(
        "import tpegen.sim.lut\n"
        "from tpegen import sim\n"
        "def f():\n    from tpegen.sim.fp import FORMATS\n"
        "from ...sim import cycle\n"
        "from ..pe import mac\n"
        "import tpegen.simulation_helpers\n"
    )
    found = [line for line, name in _imported_modules(fake, tmp_path) if _is_sim(name)]
    assert sorted(set(found)) == [1, 2, 4, 5]


@pytest.mark.parametrize("entry", registry.ENTRIES, ids=lambda e: e.key)
def test_registered_family_resolves(entry):
    pe_cls = registry.resolve(entry.pe_params)
    assert dataclasses.is_dataclass(pe_cls) and pe_cls.__module__.startswith("tpegen.hw.")
    if entry.array_params is not None:
        arr_cls = registry.resolve(entry.array_params)
        assert dataclasses.is_dataclass(arr_cls) and arr_cls.__module__.startswith("tpegen.hw.")
        assert "pe" in {f.name for f in dataclasses.fields(arr_cls)}
    gen = registry.resolve(entry.generator)
    assert issubclass(gen, wiring.Component) and gen.__module__.startswith("tpegen.hw.")
    driver = registry.resolve(entry.driver)
    assert issubclass(driver, Accelerator) and driver.__module__.startswith("tpegen.sw.")
    assert driver.family == entry.family
    assert "schedule" in {n for cls in driver.__mro__ if cls is not Accelerator for n in vars(cls)}
    assert entry.system is None or entry.system in SEQUENCERS
    if entry.selector is not None:
        section, name = entry.selector.split(".")
        cls = pe_cls if section == "pe" else registry.resolve(entry.array_params)
        assert name in {f.name for f in dataclasses.fields(cls)}
    assert registry.lookup(entry.family, entry.organization) is entry


def test_registry_lists_each_combination_once():
    keys = registry.combinations()
    assert len(keys) == len(set(keys)) == len(registry.ENTRIES)
    assert set(registry.FAMILIES) == {e.family for e in registry.ENTRIES}
    assert {"mac/os", "mac/ws", "fma/os", "lut"} <= set(keys)
