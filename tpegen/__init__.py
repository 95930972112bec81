"""tpegen: generate, simulate and evaluate DNN-accelerator datapaths.

Public API (the same operations as the command line, usable from a notebook)::

    import tpegen
    cfg = tpegen.load_config("int8_os_16x16")          # a shipped config name or a YAML path
    tpegen.generate_verilog(cfg, "out/")               # Verilog + JSON manifest
    res = tpegen.run_gemm(cfg, A, W, backend="cycle")  # golden | cycle | rtl
    tpegen.verify(cfg, cases=8)                        # RTL vs golden and timing models
    tpegen.simulate_topology(cfg, "resnet18_conv")     # per-layer cycles and traffic
    synth, energy = tpegen.synthesize(cfg)             # area, timing, energy per MAC
    report = tpegen.map_model("digits_cnn", cfg, "W8A8")  # a model, layer by layer
    top = tpegen.run_system_gemm(cfg, A, W, backend="cycle")  # through the accelerator top

Every user-facing failure raises :class:`TpegenError` (a :class:`ConfigError` names the field).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "TpegenError",
    "generate_verilog",
    "load_config",
    "map_model",
    "run_gemm",
    "run_system_gemm",
    "shipped_configs",
    "simulate_system_topology",
    "simulate_topology",
    "synthesize",
    "verify",
]

_LAZY = {  # lazy, so that `import tpegen.hw...` does not pull in the driver
    "load_config": ("tpegen.config", "load_config"),
    "shipped_configs": ("tpegen.config", "shipped_configs"),
    "generate_verilog": ("tpegen.api", "generate_verilog"),
    "run_gemm": ("tpegen.api", "run_gemm"),
    "verify": ("tpegen.api", "verify"),
    "simulate_topology": ("tpegen.api", "simulate_topology"),
    "run_system_gemm": ("tpegen.api", "run_system_gemm"),
    "simulate_system_topology": ("tpegen.api", "simulate_system_topology"),
    "synthesize": ("tpegen.api", "synthesize_design"),
    "map_model": ("tpegen.sw.mapper", "map_model"),
    "TpegenError": ("tpegen.errors", "TpegenError"),
    "ConfigError": ("tpegen.errors", "ConfigError"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tpegen' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
