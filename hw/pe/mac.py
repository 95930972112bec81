"""Integer multiply-accumulate datapath: the PE arithmetic of the TPU/Gemmini-style baseline."""

from __future__ import annotations

from amaranth import Module

from tpegen.hw.pe.datapath import Datapath
from tpegen.hw.pe.radix4 import Radix4Encoder, Radix4MultiplyAdd, link_digits


class MacDatapath(Datapath):
    """Combinational integer multiply-add: ``acc_out = wrap(acc_in + a * w, acc_bits)``.

    Ports: ``a`` (act operand), ``w`` (weight operand), ``acc_in`` / ``acc_out`` (signed
    ``acc_bits``). Latency: combinational; the enclosing cell registers the result.
    The product ``a * w`` is exact (``act_bits + weight_bits`` wide); only the sum wraps.
    ``params.multiplier`` picks how the product is formed: ``array`` writes ``a * w`` and leaves
    the multiplier to synthesis; ``booth_r4`` and ``en_t`` recode the weight inside the PE
    (submodule ``encoder``, :class:`~tpegen.hw.pe.radix4.Radix4Encoder`) and add the selected
    partial products and ``acc_in`` in one adder tree (submodule ``multiply_add``,
    :class:`~tpegen.hw.pe.radix4.Radix4MultiplyAdd`). With a shared encoder (``params.encoder``
    ``per_column``) ``w`` is the weight's link form from the array's edge encoder
    (``params.w_link_shape``) and the PE only decodes it (:func:`~tpegen.hw.pe.radix4.link_digits`).
    Same latency and results either way.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self.params
        if p.multiplier == "array":
            m.d.comb += self.acc_out.eq(self.acc_in + self.a * self.w)
            return m
        if p.shared_encoder:
            m.submodules.multiply_add = mac = Radix4MultiplyAdd(p.a_shape, p.w_shape, p.acc_shape)
            digits = link_digits(m, self.w, p.w_shape, p.multiplier)
        else:
            m.submodules.encoder = encoder = Radix4Encoder(p.w_shape, p.multiplier)
            m.submodules.multiply_add = mac = Radix4MultiplyAdd(p.a_shape, p.w_shape, p.acc_shape)
            m.d.comb += encoder.w.eq(self.w)
            digits = encoder.digits
        m.d.comb += [
            mac.a.eq(self.a),
            mac.digits.eq(digits),
            mac.acc_in.eq(self.acc_in),
            self.acc_out.eq(mac.acc_out),
        ]
        return m
