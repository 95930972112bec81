"""AXI4 master signatures of the accelerator top (read half for the load unit, write half for the store).

Members are named exactly as in the AXI4 specification (``awaddr``, ``wdata``, ``rready``, ...), so
a top-level port ``m_axi`` flattens to Verilog ``m_axi__awaddr`` etc. and cocotbext-axi's
``AxiBus.from_prefix(dut, "m_axi_")`` binds it (its separator ``_`` plus Amaranth's ``__``).
Directions are those of the master: ``Out`` = driven by the accelerator. Only the subset the
accelerator uses is present: INCR bursts (``burst = 1``), ``size = log2(data_bytes)``, full write
strobes, id 0; no lock/cache/prot/qos/region/user signals (cocotbext-axi treats them as optional).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from tpegen.errors import ConfigError

BURST_INCR = 1
MAX_BURST_BEATS = 256  # AXI4 INCR burst length limit
PAGE_BYTES = 4096  # an AXI burst never crosses a 4 KiB boundary


def _check(addr_width: int, data_bytes: int, id_width: int) -> None:
    if not 12 <= addr_width <= 64:
        raise ConfigError("axi.addr_width", "an integer in 12..64", addr_width)
    if data_bytes not in (1, 2, 4, 8, 16, 32, 64, 128):
        raise ConfigError("axi.data_bytes", "a power of two in 1..128", data_bytes)
    if not 1 <= id_width <= 32:
        raise ConfigError("axi.id_width", "an integer in 1..32", id_width)


def axi4_read_members(addr_width: int = 32, data_bytes: int = 16, id_width: int = 1) -> dict:
    """AR and R channel members (master view)."""
    _check(addr_width, data_bytes, id_width)
    return {
        "arid": Out(id_width),
        "araddr": Out(addr_width),
        "arlen": Out(8),
        "arsize": Out(3),
        "arburst": Out(2),
        "arvalid": Out(1),
        "arready": In(1),
        "rid": In(id_width),
        "rdata": In(8 * data_bytes),
        "rresp": In(2),
        "rlast": In(1),
        "rvalid": In(1),
        "rready": Out(1),
    }


def axi4_write_members(addr_width: int = 32, data_bytes: int = 16, id_width: int = 1) -> dict:
    """AW, W and B channel members (master view)."""
    _check(addr_width, data_bytes, id_width)
    return {
        "awid": Out(id_width),
        "awaddr": Out(addr_width),
        "awlen": Out(8),
        "awsize": Out(3),
        "awburst": Out(2),
        "awvalid": Out(1),
        "awready": In(1),
        "wdata": Out(8 * data_bytes),
        "wstrb": Out(data_bytes),
        "wlast": Out(1),
        "wvalid": Out(1),
        "wready": In(1),
        "bid": In(id_width),
        "bresp": In(2),
        "bvalid": In(1),
        "bready": Out(1),
    }


class AXI4Signature(wiring.Signature):
    """Signature of an AXI4 master port (or of its read or write half).

    Parameters
    ----------
    addr_width : address bits (default 32).
    data_bytes : bytes per data beat ``D`` (``xDATA`` is ``8 D`` bits, ``wstrb`` ``D`` bits).
    id_width : transaction id bits (the accelerator always drives id 0).
    channels : ``"rw"`` (all five channels), ``"r"`` (AR, R) or ``"w"`` (AW, W, B).
    """

    def __init__(self, addr_width: int = 32, data_bytes: int = 16, id_width: int = 1, channels: str = "rw"):
        if channels not in ("rw", "r", "w"):
            raise ConfigError("axi.channels", "'rw', 'r' or 'w'", channels)
        self.addr_width, self.data_bytes, self.id_width, self.channels = (
            addr_width,
            data_bytes,
            id_width,
            channels,
        )
        members: dict = {}
        if "w" in channels:
            members |= axi4_write_members(addr_width, data_bytes, id_width)
        if "r" in channels:
            members |= axi4_read_members(addr_width, data_bytes, id_width)
        super().__init__(members)

    @property
    def size(self) -> int:
        """Value of ``arsize``/``awsize``: log2 of the bytes per beat."""
        return exact_log2(self.data_bytes)

    def __eq__(self, other) -> bool:
        return isinstance(other, AXI4Signature) and (
            self.addr_width,
            self.data_bytes,
            self.id_width,
            self.channels,
        ) == (other.addr_width, other.data_bytes, other.id_width, other.channels)

    def __hash__(self) -> int:
        return hash((self.addr_width, self.data_bytes, self.id_width, self.channels))

    def __repr__(self) -> str:
        return (
            f"AXI4Signature(addr_width={self.addr_width}, data_bytes={self.data_bytes}, "
            f"id_width={self.id_width}, channels={self.channels!r})"
        )


def axi4_signature(addr_width: int = 32, data_bytes: int = 16, id_width: int = 1) -> AXI4Signature:
    """The full AXI4 master signature (all five channels)."""
    return AXI4Signature(addr_width, data_bytes, id_width, "rw")


def connect_halves(m, master, read, write) -> None:
    """Drive the full ``master`` port (an ``Out(AXI4Signature)`` of a top) from a read-half and a
    write-half master port of two units (in ``m.d.comb``)."""
    for half in (read, write):
        for name, member in half.signature.members.items():
            if member.flow == Out:
                m.d.comb += getattr(master, name).eq(getattr(half, name))
            else:
                m.d.comb += getattr(half, name).eq(getattr(master, name))
