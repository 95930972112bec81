"""The ports every PE datapath shares (the contract :mod:`tpegen.hw.pe.cell` builds on)."""

from __future__ import annotations

from typing import Any

from amaranth import ShapeLike
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def w_link_shape(params: Any) -> ShapeLike:
    """The weight as it travels between cells and enters the datapath: ``params.w_link_shape`` if
    the PE encodes its weights at the array's edge (an integer MAC PE's shared encoder), else
    ``params.w_shape``."""
    return getattr(params, "w_link_shape", params.w_shape)


class Datapath(wiring.Component):
    """Base of the PE datapaths: ``acc_out = acc_in (+) a (x) w`` for one PE.

    Ports: ``a`` (``params.a_shape``), ``w`` (:func:`w_link_shape`: ``params.w_shape``, or the
    encoded form of a weight a shared encoder sends), ``acc_in`` and ``acc_out`` (``params.acc_shape``). Subclasses (integer MAC, FP FMA, FP dot product) give the arithmetic in
    ``elaborate`` and document their latency (combinational unless they say otherwise) and
    throughput (one operation per cycle). ``params`` is kept as ``self.params``.
    """

    def __init__(self, params: Any):
        self.params = params
        super().__init__(
            {
                "a": In(params.a_shape),
                "w": In(w_link_shape(params)),
                "acc_in": In(params.acc_shape),
                "acc_out": Out(params.acc_shape),
            }
        )
