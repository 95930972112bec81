"""The ports every PE datapath shares (the contract :mod:`tpegen.hw.pe.cell` builds on)."""

from __future__ import annotations

from typing import Any

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Datapath(wiring.Component):
    """Base of the PE datapaths: ``acc_out = acc_in (+) a (x) w`` for one PE.

    Ports: ``a`` (``params.a_shape``), ``w`` (``params.w_shape``), ``acc_in`` and ``acc_out``
    (``params.acc_shape``). Subclasses (integer MAC, FP FMA, FP dot product) give the arithmetic in
    ``elaborate`` and document their latency (combinational unless they say otherwise) and
    throughput (one operation per cycle). ``params`` is kept as ``self.params``.
    """

    def __init__(self, params: Any):
        self.params = params
        super().__init__(
            {
                "a": In(params.a_shape),
                "w": In(params.w_shape),
                "acc_in": In(params.acc_shape),
                "acc_out": Out(params.acc_shape),
            }
        )
