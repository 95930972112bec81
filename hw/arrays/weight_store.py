"""Stream plumbing shared by the weight-stationary tile cores (LUT core, dot-product tile).

Both cores take the same three streams (``weights``, ``acts``, ``results``) and must run the same
beat sequences: one result register behind a global clock enable, and one two-bank weight store
filled by a loader and freed by the last activation beat using it. This module builds both into the
core's own :class:`amaranth.hdl.Module` (no extra hierarchy, so the Verilog keeps its flat names).
"""

from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, Value
from amaranth.hdl import ShapeLike

__all__ = ["ResultRegister", "WeightStore"]


class ResultRegister:
    """Result register of a tile core with the global stall.

    ``ce`` (clock enable) is high unless a result is held and ``results`` is not ready; every
    register of the core updates only under ``ce``, so no beat is ever dropped. ``results.valid``
    and ``results.payload`` come straight from the register (no combinational path from inputs).

    Parameters: ``m`` the core's module, ``results`` its ``Out(stream.Signature(...))`` port.
    """

    def __init__(self, m: Module, results) -> None:
        self.results = results
        self.out_valid = Signal(name="out_valid")
        self.out_data = Signal(results.payload.shape(), name="out_data")
        self.ce = Signal(name="ce")
        m.d.comb += [
            self.ce.eq(~self.out_valid | results.ready),
            results.valid.eq(self.out_valid),
            results.payload.eq(self.out_data),
        ]

    def load(self, m: Module, emit: Value, value: Value) -> None:
        """Under ``ce``: drop the held result once taken, load ``value`` when ``emit`` (which wins)."""
        with m.If(self.ce):
            with m.If(self.out_valid & self.results.ready):
                m.d.sync += self.out_valid.eq(0)
            with m.If(emit):
                m.d.sync += [self.out_valid.eq(1), self.out_data.eq(value)]


class WeightStore:
    """Double-buffered weight store and its loader: two banks of ``beats`` words of ``shape``.

    The loader writes ``weights`` beats into the write bank in order; after ``beats`` beats the bank
    is full and the write bank flips. ``weights.ready`` is ``ce`` and the write bank free, where a
    bank being released in this very cycle counts as free (the release is ordered before the
    loader's fill, so a same-cycle release and fill leaves the bank full). The read bank flips on
    ``advance`` (the last activation beat of a weight tile accepted); :attr:`loaded` says whether it
    holds a whole tile. Latency: a tile is readable the cycle after its last beat is accepted.

    Parameters: ``shape`` of one stored word (one weights beat), ``beats`` words per tile.
    """

    def __init__(self, shape: ShapeLike, beats: int) -> None:
        self.beats = beats
        self.banks = [
            [Signal(shape, name=f"wbuf{bank}" if beats == 1 else f"wbuf{bank}_p{q}") for q in range(beats)]
            for bank in range(2)
        ]
        self.full = Signal(2, name="full")
        self.wr_bank = Signal(name="wr_bank")
        self.wr_beat = Signal(range(max(beats, 2)), name="wr_plane")  # >= 1 bit for Verilator; unused if 1
        self.rd_bank = Signal(name="rd_bank")
        self.bank_free = Signal(name="bank_free")

    @property
    def loaded(self) -> Value:
        """The read bank holds a whole tile."""
        return self.full.bit_select(self.rd_bank, 1)

    def read(self, bank: Value, beat: Value | None = None) -> Value:
        """Word ``beat`` of ``bank`` (``beat`` None: word 0, for one-beat tiles)."""
        if beat is None:
            return Mux(bank, Value.cast(self.banks[1][0]), Value.cast(self.banks[0][0]))
        # pad each bank's word list to a power of two so that the word mux is a full case
        padded = [words + [words[-1]] * ((1 << len(beat)) - self.beats) for words in self.banks]
        return Mux(bank, Array(padded[1])[beat], Array(padded[0])[beat])

    def build(
        self, m: Module, weights, ce: Value, release: Value, release_bank: Value, advance: Value
    ) -> None:
        """Add the loader to ``m``: ``weights`` the core's ``In`` stream, ``ce`` the global clock
        enable, ``release`` frees ``release_bank`` (its last reader is done), ``advance`` flips the
        read bank."""
        full, wr_bank = self.full, self.wr_bank
        m.d.comb += [
            self.bank_free.eq(~full.bit_select(wr_bank, 1) | (release & (release_bank == wr_bank))),
            weights.ready.eq(ce & self.bank_free),
        ]
        with m.If(ce):
            with m.If(advance):
                m.d.sync += self.rd_bank.eq(~self.rd_bank)
            # bank release before the loader, whose "full" update must win when both hit one bank
            with m.If(release):
                m.d.sync += full.bit_select(release_bank, 1).eq(0)
            with m.If(weights.valid & weights.ready):
                if self.beats == 1:  # one beat is one whole tile
                    for bank in range(2):
                        with m.If(wr_bank == bank):
                            m.d.sync += self.banks[bank][0].eq(weights.payload)
                    m.d.sync += [full.bit_select(wr_bank, 1).eq(1), wr_bank.eq(~wr_bank)]
                    return
                for bank in range(2):
                    for q in range(self.beats):
                        with m.If((wr_bank == bank) & (self.wr_beat == q)):
                            m.d.sync += self.banks[bank][q].eq(weights.payload)
                with m.If(self.wr_beat == self.beats - 1):
                    m.d.sync += [self.wr_beat.eq(0), full.bit_select(wr_bank, 1).eq(1), wr_bank.eq(~wr_bank)]
                with m.Else():
                    m.d.sync += self.wr_beat.eq(self.wr_beat + 1)
