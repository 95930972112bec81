"""Hierarchical Verilog: a repeated submodule (a PE cell) is written once and instantiated N times.

Amaranth writes one Verilog module per submodule *instance*, so an R x C array becomes R x C
copies of the cell's module and the generator's time, memory and output grow with the logic of
every cell (a 32x32 INT8 array: 19.6 s and 2,050 modules). Chisel/FIRRTL deduplicate identical
modules; tpegen does the same at the source: a generator adds a repeated submodule through
:func:`shared_submodule`, and :func:`to_verilog` -- the one place tpegen turns a component into
Verilog -- elaborates that submodule *once per distinct key*, emits it as its own module and
gives the parent an ``Instance`` of it per use. The file then grows with the number of instances
(a line per port connection), not with the logic behind them.

Outside :func:`to_verilog` (the Amaranth simulator, a plain ``amaranth.back.verilog.convert``)
:func:`shared_submodule` adds the component itself, so the design is the same either way: the
written module is exactly the component, behind a wrapper that adds ``clk``, ``rst`` and an
enable ``en`` standing for the parent's ``EnableInserter`` (which cannot reach into an instance).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from amaranth import ClockSignal, EnableInserter, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

# Module name -> (RTLIL text, signature, clock/reset ports it has) of every shared module written
# during the current to_verilog call; None when no to_verilog call is in progress (shared submodules
# are then inline).
_written: ContextVar[dict[str, tuple[str, wiring.Signature, set[str]]] | None] = ContextVar(
    "tpegen_shared_modules", default=None
)

# Amaranth marks the module it was asked to convert as the design's top; a shared module is not.
_TOP_ATTRIBUTE = re.compile(r"^attribute \\top 1\n", re.MULTILINE)


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog of ``component`` as module ``name``, each shared submodule written once after it.

    Every module is converted to RTLIL by Amaranth and the whole design to Verilog by one Yosys
    run, with the options of ``amaranth.back.verilog.convert`` (Amaranth 0.5's internal
    ``_convert_rtlil_text``, the function that ``convert`` itself ends with)."""
    from amaranth.back import rtlil, verilog

    token = _written.set({})
    try:
        text = rtlil.convert(component, name=name, emit_src=False)
        shared = _written.get()
    finally:
        _written.reset(token)
    return verilog._convert_rtlil_text("\n".join([text, *(module for module, _, _ in shared.values())]))


def signature_of(factory: Callable[[], wiring.Component]) -> wiring.Signature:
    """The signature of the components ``factory`` makes (one is made and discarded unelaborated)."""
    component = factory()
    component._MustUse__used = True  # made for its signature only: no "created but never used" warning
    return component.signature


def binary_blocks(n: int) -> list[int]:
    """The powers of two that sum to ``n``, largest first (its binary digits): how a chain of ``n``
    repeated things is built from shared blocks of 2^k of them."""
    return [1 << bit for bit in reversed(range(n.bit_length())) if n >> bit & 1]


def shared_module_name(kind: str, key: Any) -> str:
    """The Verilog name of the shared module for ``kind`` (e.g. ``"os_cell"``) and ``key`` (any
    value whose ``repr`` fixes the module's logic, e.g. its frozen parameters dataclass)."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
    return f"tpegen_{kind}_{digest}"


class _Enabled(wiring.Component):
    """``inner`` with an explicit enable port ``en`` (every register of it holds while low): the
    module that :func:`shared_submodule` writes. Ports: ``inner``'s, plus ``en``."""

    def __init__(self, inner: wiring.Component):
        self.inner = inner
        super().__init__({**dict(inner.signature.members.items()), "en": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.cell = EnableInserter(self.en)(self.inner)
        outer = (v for p, _, v in self.signature.flatten(self) if p != ("en",))
        for (_, member, inner), value in zip(self.inner.signature.flatten(self.inner), outer, strict=True):
            if member.flow == In:
                m.d.comb += inner.eq(value)
            else:
                m.d.comb += value.eq(inner)
        return m


def shared_submodule(
    m: Module,
    name: str,
    factory: Callable[[], wiring.Component],
    *,
    kind: str,
    key: Any,
    enable: Value | None,
) -> Any:
    """Add ``factory()`` to ``m`` as submodule ``name`` and return an object with its ports.

    Inside :func:`to_verilog`, the component is written once per ``(kind, key)`` as module
    :func:`shared_module_name` and ``m`` gets an ``Instance`` of it whose ports are fresh signals
    (named ``<name>__<port>``) on the returned object. Shared submodules may nest (a row module of
    shared cells): each distinct one is written once.

    ``enable`` is the signal of the ``EnableInserter`` that the caller wraps ``m`` in: the written
    module gets an ``en`` port for it and its registers hold while it is low, as the inline
    component's do. ``None``: the component is written as it is (registers that never hold, or an
    ``en`` port of its own that the caller drives).
    """
    written = _written.get()
    if written is None:
        m.submodules[name] = component = factory()
        return component
    module = shared_module_name(kind, (key, enable is not None))
    if module not in written:
        from amaranth.back import rtlil

        component = factory()
        text = rtlil.convert(
            component if enable is None else _Enabled(component), name=module, emit_src=False
        )
        clocked = {
            port for port in ("clk", "rst") if re.search(rf"^ *wire width 1 input \d+ +\\{port}$", text, re.M)
        }
        written[module] = (_TOP_ATTRIBUTE.sub("", text), component.signature, clocked)
    _, signature, clocked = written[module]
    ports = signature.create(path=(name,))
    connections = {
        f"i_{port}": signal
        for port, signal in (("clk", ClockSignal()), ("rst", ResetSignal()))
        if port in clocked
    }
    if enable is not None:
        connections["i_en"] = enable
    for path, member, value in signature.flatten(ports):
        direction = "i" if member.flow == In else "o"
        connections[f"{direction}_{'__'.join(str(p) for p in path)}"] = Value.cast(value)
    m.submodules[name] = Instance(module, **connections)
    return ports
