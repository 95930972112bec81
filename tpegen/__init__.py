"""tpegen: generate, simulate and evaluate DNN-accelerator datapaths.

Public API::

    from tpegen import load_config, generate_verilog, run_gemm
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_config", "generate_verilog", "run_gemm", "TpegenError", "ConfigError"]


def __getattr__(name: str):  # lazy, so that `import tpegen.hw...` does not pull in the driver
    if name in ("load_config",):
        from tpegen.config import load_config

        return load_config
    if name in ("generate_verilog", "run_gemm"):
        from tpegen import api

        return getattr(api, name)
    if name in ("TpegenError", "ConfigError"):
        from tpegen import errors

        return getattr(errors, name)
    raise AttributeError(name)
