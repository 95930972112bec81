"""Floating-point multiply-add PE datapath with exact or approximate normalization (Amaranth).

The hardware is the datapath described in :mod:`tpegen.sim.fp` (read its module docstring for the
numeric policy and the widths ``P``, ``Q``, ``W``, ``N``); :class:`FmaDatapath` matches
:func:`tpegen.sim.fp.fma` bit for bit and :class:`FmaNormalizer` matches
:func:`tpegen.sim.fp.normalize_relaxed`. Both are combinational from ``acc_in`` to ``acc_out``: a
systolic array registers ``acc_out`` and feeds it back to ``acc_in``; the all-zero word is ``+0``.
With ``pipeline_stages: 2`` the datapath registers its product, so operands reach ``acc_out`` one
cycle later (:attr:`FmaPEParams.pipeline_latency`) and the systolic cell delays the beat's token
to match.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError
from tpegen.hw.pe.datapath import Datapath
from tpegen.hw.pe.fp_formats import FloatFormat, FmaConfig, RelaxedFormat, format_by_name

__all__ = ["FmaPEParams", "FmaDatapath", "FmaNormalizer", "float_layout", "relaxed_layout"]


def float_layout(fmt: FloatFormat) -> data.StructLayout:
    """Packed IEEE-like layout, LSB first: ``man``, ``exp``, ``sign`` (bits equal the IEEE encoding)."""
    return data.StructLayout({"man": fmt.man_bits, "exp": fmt.exp_bits, "sign": 1})


def relaxed_layout(rf: RelaxedFormat) -> data.StructLayout:
    """Relaxed partial-sum layout (see :class:`tpegen.sim.fp.RelaxedFormat`), LSB first."""
    return data.StructLayout({"man": rf.man_bits, "exp": rf.exp_bits, "sign": 1, "inf": 1, "nan": 1})


DATAFLOWS = ("os",)
PIPELINE_STAGES = (1, 2)  # pe.pipeline_stages: 2 registers the product (the accumulation loop stays whole)


@dataclass(frozen=True)
class FmaPEParams:
    """Parameters of a floating-point multiply-add PE, as the flat ``pe:`` section of a YAML config.

    Parameters
    ----------
    input_format : format of the A operands (and of W unless ``weight_format`` is given), one of
        :data:`tpegen.sim.fp.FORMATS` (``bf16``, ``fp16``, ``fp32``, ``fp8_e4m3fn`` (OCP, no inf,
        max 448), ``fp8_e4m3_ieee`` (IEEE-like, max 240), ``fp8_e5m2``).
    weight_format : format of the W operands; ``None`` (default) means ``input_format``.
    acc_format : accumulator (and output) format; a format with infinities (not ``fp8_e4m3fn``).
    rounding : ``rne`` (round to nearest, ties to even) or ``trunc`` (toward zero).
    norm_window : approximate normalization: the leading-one detector sees only this many top bits
        of the sum (``None`` = exact, full-width detector). At most the datapath's sum width.
    shift_granularity : normalization shifts are multiples of this power of two (1 = exact).
    normalize_in_pe : ``True``: every PE packs its partial sum into ``acc_format``; ``False``: the
        partial sums stay in the relaxed internal format and one :class:`FmaNormalizer` per column
        rounds them to ``acc_format`` at the array edge.
    relaxed_guard_bits : extra mantissa bits of the relaxed format (``normalize_in_pe: false``): its
        significand has the accumulator's ``man_bits + 1 + relaxed_guard_bits`` bits.
    relaxed_man_bits : ``null`` (default: the rule above) or ``4..40``: the relaxed partial sum's
        significand width (explicit leading bit included) chosen independently of ``acc_format``,
        narrower than the accumulator's significand (e.g. ``12`` with fp32 output: every PE rounds
        its partial sum to 12 bits, the edge normalizer only pads) or wider. Only with
        ``normalize_in_pe: false`` and not together with ``relaxed_guard_bits``; the top of the range
        is lower when the datapath would exceed 61 bits (``36`` with fp16 inputs).
    multiplier : ``exact`` (default: the exact significand multiplier) or ``lmul``: L-Mul of Luo &
        Sun (arXiv:2410.00907, Sec. 2.2), ``(1 + x_m + y_m + 2**-l(m)) * 2**(x_e + y_e)`` with
        ``l(m) = m, 3, 4`` for ``m <= 3, = 4, > 4`` mantissa bits: one adder instead of the
        multiplier; subnormal inputs read as zeros; the accumulate path is unchanged.
    terms : products per PE step, ``1`` (default), ``2``, ``4`` or ``8``: a multi-term
        dot-product PE (tensor-core numerics, :mod:`tpegen.sim.fp_dot`); each ``a``/``w`` lane
        then carries ``terms`` operands and K streams ``terms`` values per beat.
    align_bits : ``null`` (default: the correctly rounded FMA) or ``0..48``: the dot-product step,
        every term truncated to this many bits below the step's largest exponent (``23``: the
        V100/T4 tensor cores with fp32 accumulation). Required when ``terms > 1``; then the
        multiplier is exact, normalization exact and ``normalize_in_pe`` true.
    dataflow : ``os`` only (output-stationary keeps the accumulation chain in order, see
        :mod:`tpegen.hw.arrays.fp_engine`).
    pipeline_stages : ``1`` (default: the multiply-add is one combinational stage in front of the
        accumulator register) or ``2``: the product and its flags are registered, so the PE's
        critical path is the longer of the multiplier and the accumulation loop, at one more cycle
        of latency (:attr:`pipeline_latency`; the timing models add it to the result latency). The
        accumulation loop (alignment against the accumulator, addition, normalization, rounding)
        is not cut: a register inside it would change the numerics. FMA PE only (not with
        ``align_bits``).

    Ports seen by the array: ``a_shape``/``w_shape`` are the input formats' layouts (arrays of
    ``terms`` of them for a dot-product PE); ``acc_shape``
    is the accumulator format (or the relaxed format when ``normalize_in_pe`` is False);
    ``out_shape`` is always the accumulator format. :attr:`fma` is the numeric
    :class:`~tpegen.sim.fp.FmaConfig` shared with the bit-exact model. Python callers may also pass
    an :class:`~tpegen.sim.fp.FmaConfig` as the first argument; it is expanded into the flat fields.
    """

    input_format: str = "bf16"
    acc_format: str = "fp32"
    weight_format: str | None = None
    rounding: str = "rne"
    norm_window: int | None = None
    shift_granularity: int = 1
    normalize_in_pe: bool = True
    relaxed_guard_bits: int = 3
    dataflow: str = "os"
    multiplier: str = "exact"
    terms: int = 1
    align_bits: int | None = None
    pipeline_stages: int = 1
    relaxed_man_bits: int | None = None

    kind = "fma"

    def __repr__(self) -> str:
        """The dataclass repr without ``relaxed_man_bits`` when it is None: the repr names the shared
        Verilog modules of an array (:func:`tpegen.hw.hierarchy.shared_module_name`), so designs that
        predate the field keep byte-identical Verilog."""
        shown = [
            f
            for f in dataclasses.fields(self)
            if f.name != "relaxed_man_bits" or self.relaxed_man_bits is not None
        ]
        return f"{type(self).__qualname__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    def __post_init__(self):
        given = self.input_format
        if isinstance(given, FmaConfig):  # FmaPEParams(FmaConfig(...)): expand into the flat fields
            cfg = given
            for name, value in (
                ("input_format", cfg.a_fmt.name),
                ("weight_format", None if cfg.w_fmt == cfg.a_fmt else cfg.w_fmt.name),
                ("acc_format", cfg.acc_fmt.name),
                ("rounding", cfg.rounding),
                ("norm_window", cfg.norm_window),
                ("shift_granularity", cfg.shift_granularity),
                ("normalize_in_pe", cfg.normalize_in_pe),
                ("relaxed_guard_bits", cfg.relaxed_guard_bits),
                ("multiplier", cfg.multiplier),
                ("terms", cfg.terms),
                ("align_bits", cfg.align_bits),
                ("relaxed_man_bits", cfg.relaxed_man_bits),
            ):
                object.__setattr__(self, name, value)
        else:
            a_fmt = format_by_name("pe.input_format", self.input_format)
            w_fmt = (
                a_fmt
                if self.weight_format is None
                else format_by_name("pe.weight_format", self.weight_format)
            )
            cfg = FmaConfig(
                a_fmt=a_fmt,
                w_fmt=w_fmt,
                acc_fmt=format_by_name("pe.acc_format", self.acc_format),
                rounding=self.rounding,
                norm_window=self.norm_window,
                shift_granularity=self.shift_granularity,
                normalize_in_pe=self.normalize_in_pe,
                relaxed_guard_bits=self.relaxed_guard_bits,
                multiplier=self.multiplier,
                terms=self.terms,
                align_bits=self.align_bits,
                relaxed_man_bits=self.relaxed_man_bits,
            )
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(
                "pe.dataflow",
                "'os' (floating-point accumulation is order-sensitive; weight-stationary would split "
                "the in-order chain over K tiles)",
                self.dataflow,
            )
        if self.pipeline_stages not in PIPELINE_STAGES or isinstance(self.pipeline_stages, bool):
            raise ConfigError(
                "pe.pipeline_stages",
                "1 (combinational multiply-add) or 2 (product registered; the accumulation loop "
                "cannot be pipelined without changing the numerics)",
                self.pipeline_stages,
            )
        if cfg.dot and self.pipeline_stages != 1:
            raise ConfigError(
                "pe.pipeline_stages", "1 in a dot-product PE (pe.align_bits set)", self.pipeline_stages
            )
        object.__setattr__(self, "_fma", cfg)

    @property
    def pipeline_latency(self) -> int:
        """Cycles between an operand beat entering the datapath and its accumulation
        (``pipeline_stages - 1``); the systolic cell delays the beat's token by as many."""
        return self.pipeline_stages - 1

    @property
    def fma(self) -> FmaConfig:
        """The numeric configuration (formats, rounding, normalization) of the datapath."""
        return self._fma

    def _operand_shape(self, fmt: FloatFormat) -> data.Layout:
        if self.fma.dot:
            return data.ArrayLayout(float_layout(fmt), self.fma.terms)
        return float_layout(fmt)

    @property
    def a_shape(self) -> data.Layout:
        return self._operand_shape(self.fma.a_fmt)

    @property
    def w_shape(self) -> data.Layout:
        return self._operand_shape(self.fma.w_fmt)

    @property
    def acc_shape(self) -> data.StructLayout:
        if self.fma.normalize_in_pe:
            return float_layout(self.fma.acc_fmt)
        return relaxed_layout(self.fma.relaxed)

    @property
    def out_shape(self) -> data.StructLayout:
        return float_layout(self.fma.acc_fmt)

    def datapath(self) -> wiring.Component:
        """The PE datapath: :class:`FmaDatapath` (its product registered with ``pipeline_stages: 2``),
        or the dot-product PE's combinational :class:`~tpegen.hw.pe.fp_dot.DotDatapath` when
        ``align_bits`` is set."""
        if self.fma.dot:
            from tpegen.hw.pe.fp_dot import DotDatapath  # it builds on this module's blocks

            return DotDatapath(self)
        return FmaDatapath(self)

    def normalizer(self) -> FmaNormalizer:
        if self.fma.normalize_in_pe:
            raise ConfigError("pe.normalize_in_pe", "false for an array-edge normalizer", True)
        return FmaNormalizer(self)


# ------------------------------------------------------------------------------------------------
# combinational building blocks (each returns a Value and adds statements to m.d.comb)
# ------------------------------------------------------------------------------------------------
def _sig(m: Module, name: str, shape, value):
    s = Signal(shape, name=name)
    m.d.comb += s.eq(value)
    return s


def _exp(m: Module, name: str, lo: int, hi: int, value):
    """An exponent signal holding ``value`` in ``lo..hi``: the narrowest (signed if ``lo < 0``) shape."""
    return _sig(m, name, range(lo, hi + 1), value)


def top_range(fmt: FloatFormat) -> tuple[int, int]:
    """``lo, hi`` of the weight exponent of a ``fmt`` field's significand MSB, as
    :func:`_ieee_fields` forms it (subnormals at ``emin``, the all-ones exponent included)."""
    return fmt.emin, fmt.exp_all_ones - fmt.bias


def _clz(m: Module, name: str, value, width: int, window: int | None = None):
    """Leading zeros of ``value`` (``width`` bits) by a log-depth tree; with ``window`` only the
    top ``window`` bits are looked at and the count saturates at ``window``.

    The looked-at bits are padded below with ones to a power of two (so an all-zero field counts
    its own width); each tree node combines its halves' (any-one, count) pairs as ``any = hi | lo``,
    ``count = Cat(hi ? count_hi : count_lo, ~hi)``: one multiplexer level per bit of the count."""
    look = width if window is None else window
    bits = value[width - look :]
    size = 1 << (look - 1).bit_length()  # power of two >= look
    n = Signal(range(look + 1), name=name)
    if size == 1:
        m.d.comb += n.eq(~bits[0])
        return n
    pad = size - look
    nodes = [(b, None) for b in (Cat(C(-1, pad), bits) if pad else bits)]  # (any one, count), LSB first
    level = 0
    while len(nodes) > 1:
        nxt = []
        for j in range(0, len(nodes), 2):
            (v_lo, c_lo), (v_hi, c_hi) = nodes[j], nodes[j + 1]
            count = ~v_hi if c_hi is None else Cat(Mux(v_hi, c_hi, c_lo), ~v_hi)
            nxt.append((v_hi | v_lo, _sig(m, f"{name}_c{level}_{j // 2}", len(Value.cast(count)), count)))
        nodes, level = nxt, level + 1
    ((any_one, count),) = nodes
    # padded: the pad's ones stop the count at `look`; a power of two: all zeros count `look`
    m.d.comb += n.eq(count if pad else Mux(any_one, count, look))
    return n


def _register(m: Module, name: str, value):
    """``value`` one cycle later (a reset-less pipeline register, loaded every cycle)."""
    reg = Signal.like(value, name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg


def _min(a, b):
    return Mux(a < b, a, b)


def _shr_sticky(m: Module, name: str, v, d, width: int):
    """``width``-bit ``v`` >> ``d`` (``d >= 0``), clamped at ``width``; sticky bit appended below.

    The sticky bit is the OR of the bits shifted out, ``v & mask`` with the thermometer mask of the
    ``d`` lowest bits, computed beside the shifter (not by shifting back and comparing)."""
    dc = _sig(m, f"{name}_d", range(width + 1), Mux(d > width, width, d))
    kept = _sig(m, f"{name}_kept", width, v >> dc)
    mask = _sig(m, f"{name}_mask", width, ~(C(-1, width) << dc)[:width])
    lost = _sig(m, f"{name}_lost", 1, (v & mask).any())
    return Cat(lost, kept)


def _ieee_fields(m: Module, name: str, view, fmt: FloatFormat, daz: bool = False):
    """-> sign, significand (hidden bit explicit), top exponent (:func:`top_range`), inf, nan of an
    input/accumulator view.

    ``daz``: subnormals read as zeros (significand 0), as the L-Mul multiplier takes them."""
    bits = view.as_value()
    f, e, s = bits[: fmt.man_bits], bits[fmt.man_bits : fmt.man_bits + fmt.exp_bits], bits[-1]
    if fmt.finite_only:  # the all-ones exponent is a normal binade; only the all-ones fraction is NaN
        special = _sig(m, f"{name}_special", 1, (e == fmt.exp_all_ones) & f.all())
        inf = C(0, 1)
        nan = special
    else:
        special = _sig(m, f"{name}_special", 1, e == fmt.exp_all_ones)
        inf = _sig(m, f"{name}_inf", 1, special & (f == 0))
        nan = _sig(m, f"{name}_nan", 1, special & (f != 0))
    sub = 0 if daz else f
    sig = _sig(m, f"{name}_sig", fmt.man_bits + 1, Mux(special, 0, Mux(e == 0, sub, Cat(f, C(1, 1)))))
    top = _exp(m, f"{name}_top", *top_range(fmt), Mux(e == 0, 1, e) - fmt.bias)
    return s, sig, top, inf, nan


def _relaxed_fields(m: Module, name: str, view, rf: RelaxedFormat):
    """-> sign, mantissa, top exponent (``rf.emin .. rf.emax``), inf, nan of a relaxed partial sum."""
    special = view.inf | view.nan
    sig = _sig(m, f"{name}_sig", rf.man_bits, Mux(special, 0, view.man))
    top = _exp(m, f"{name}_top", rf.emin, rf.emax, view.exp - rf.bias)
    inf = _sig(m, f"{name}_inf", 1, view.inf & ~view.nan)
    return view.sign, sig, top, inf, view.nan


def _round_fixed(m: Module, name: str, value, width: int, p: int, rne: bool):
    """Round ``width``-bit ``value`` to its top ``p`` bits -> (q, carry)."""
    q = value[width - p :]
    if rne:
        g = value[width - p - 1]
        st = value[: width - p - 1].any()
        q1 = _sig(m, f"{name}_q1", p + 1, q + (g & (st | q[0])))
    else:
        q1 = _sig(m, f"{name}_q1", p + 1, q)
    carry = q1[p]
    return _sig(m, f"{name}_q", p, Mux(carry, q1[1:], q1[:p])), carry


def _lmul_significand(m: Module, siga, sigw, cfg: FmaConfig):
    """L-Mul significand ``1 + x_m + y_m + 2**-l`` as one adder, on the exact product's ``P``-bit grid
    (zero unless both operands are normal: their hidden bits are the significands' MSBs)."""
    ma, mw = cfg.a_fmt.man_bits, cfg.w_fmt.man_bits
    f = max(ma, mw)
    const = C((1 << f) + (1 << (f - cfg.lmul_offset)), f + 2)
    s = _sig(m, "lmul_s", f + 2, (siga[:ma] << (f - ma)) + (sigw[:mw] << (f - mw)) + const)
    return Mux(siga[ma] & sigw[mw], s << (ma + mw - f), 0)


def _select_special(m: Module, out, fmt: FloatFormat, nan, inf, inf_sign, zero, zero_sign, packed) -> None:
    """Drive ``out`` (an IEEE-like word of ``fmt``) with NaN, a signed infinity, a signed zero or
    ``packed``, in that priority."""
    with m.If(nan):
        m.d.comb += out.eq(fmt.nan_bits)
    with m.Elif(inf):
        m.d.comb += out.eq(Cat(C(fmt.inf_bits, fmt.width - 1), inf_sign))
    with m.Elif(zero):
        m.d.comb += out.eq(Cat(C(0, fmt.width - 1), zero_sign))
    with m.Else():
        m.d.comb += out.eq(packed)


def _pack_ieee(
    m: Module,
    name: str,
    sign,
    q,
    e_top,
    e_max: int,
    p: int,
    fmt: FloatFormat,
    rne: bool,
    renormalize: bool,
):
    """Pack the exactly representable ``q * 2**(e_top-p+1)`` into ``fmt`` bits (Value of fmt.width);
    ``e_top`` lies in ``fmt.emin .. e_max``."""
    hi = e_max
    if renormalize:
        rz = _clz(m, f"{name}_rz", q, p)
        room = _exp(m, f"{name}_room", 0, hi - fmt.emin, e_top - fmt.emin)
        rs = _sig(m, f"{name}_rs", range(p + 1), _min(rz, room))
        q = _sig(m, f"{name}_q3", p, (q << rs)[:p])
        e_top = _exp(m, f"{name}_e3", fmt.emin, hi, e_top - rs)
    normal = q[p - 1]
    biased = _exp(m, f"{name}_biased", 0, max(0, hi - fmt.emin + 1), Mux(normal, e_top - fmt.emin + 1, 0))
    over = biased >= fmt.exp_all_ones
    body = Mux(
        over,
        C(fmt.inf_bits if rne else fmt.max_finite_bits, fmt.width - 1),
        Cat(q[: fmt.man_bits], biased[: fmt.exp_bits]),
    )
    return Cat(body, sign)


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Product:
    """The multiply stage's result: sign, significand (``P`` bits), exponent of its MSB minus one
    (``Ta + Tw``, plus one = ``tp``), zero, inf and NaN (``inf * 0`` included) flags."""

    sign: Value
    sig: Value
    tp: Value
    zero: Value
    inf: Value
    nan: Value


class FmaDatapath(Datapath):
    """Floating-point multiply-add ``acc_out = fl(acc_in + a*w)``: combinational, or with the
    product registered (``pipeline_stages = 2``).

    Ports: ``a`` (``a_shape``), ``w`` (``w_shape``), ``acc_in``/``acc_out`` (``acc_shape``: the
    accumulator format, or the relaxed format when ``normalize_in_pe`` is False). Hardware: exact
    ``P``-bit significand multiplier (``multiplier='lmul'``: one fraction adder, see
    :func:`_lmul_significand`); one exponent subtractor ``Tp - Tc`` whose sign picks the operand
    to shift and the shift amount; right-shift alignment into a ``W``-bit window with the sticky
    bit OR-ed from the shifted-out bits; the sum's magnitude picked from ``c + p``, ``c - p`` and ``p - c``); a log-depth leading-zero
    counter (full, or windowed when approximate) stopped at the subnormal limit by a one OR-ed into
    its input, and a left shifter (coarse steps when approximate); a fixed-position
    rounder (RNE or truncation); and in approximate IEEE mode a short ``p``-bit renormalizer.
    Exponents are only as wide as the formats' ranges need (:func:`top_range`, ``RelaxedFormat``).
    Bit-exact with :func:`tpegen.sim.fp.fma` for ``params.fma``.

    Latency: ``params.pipeline_latency`` cycles from ``a``/``w`` to the ``acc_out`` they enter
    (0: combinational; 1: the product and its flags are registered, reset-less, every cycle),
    ``acc_in`` to ``acc_out`` always combinational: the accumulation loop ``acc_out -> acc_in``
    (alignment against the accumulator's exponent, addition, normalization, rounding) cannot be cut
    without changing the numerics, so only the multiply stage is pipelined. One FMA per cycle.
    """

    def elaborate(self, platform):
        m = Module()
        prod = self._multiply(m)
        for n in range(self.params.pipeline_latency):
            prod = _Product(*(_register(m, f"{name}_r{n}", value) for name, value in vars(prod).items()))
        self._accumulate(m, prod)
        return m

    def _multiply(self, m: Module) -> _Product:
        cfg = self.params.fma
        lmul = cfg.multiplier == "lmul"
        sa, siga, ta, infa, nana = _ieee_fields(m, "a", self.a, cfg.a_fmt, daz=lmul)
        sw, sigw, tw, infw, nanw = _ieee_fields(m, "w", self.w, cfg.w_fmt, daz=lmul)
        (alo, ahi), (wlo, whi) = top_range(cfg.a_fmt), top_range(cfg.w_fmt)
        # an L-Mul product is nonzero exactly when both operands are normal (hidden bits set)
        zero = ~(siga[cfg.a_fmt.man_bits] & sigw[cfg.w_fmt.man_bits]) if lmul else (siga == 0) | (sigw == 0)
        return _Product(
            sign=_sig(m, "sp", 1, sa ^ sw),
            sig=_sig(
                m, "sigp", cfg.prod_width, _lmul_significand(m, siga, sigw, cfg) if lmul else siga * sigw
            ),
            tp=_exp(m, "tp", alo + wlo + 1, ahi + whi + 1, ta + tw + 1),
            zero=_sig(m, "pz", 1, zero),
            inf=_sig(m, "infp", 1, (infa | infw) & ~nana & ~nanw),
            nan=_sig(m, "nanp", 1, nana | nanw | (infa & (sigw == 0) & ~infw) | (infw & (siga == 0) & ~infa)),
        )

    def _accumulate(self, m: Module, prod: _Product) -> None:
        cfg = self.params.fma
        P, Q, W, N, p = cfg.prod_width, cfg.addend_width, cfg.window, cfg.sum_width, cfg.out_sig_width
        rne = cfg.rounding == "rne"
        if cfg.normalize_in_pe:
            sc, sigc, tc, infc, nanc = _ieee_fields(m, "c", self.acc_in, cfg.acc_fmt)
            clo, chi = top_range(cfg.acc_fmt)
        else:
            sc, sigc, tc, infc, nanc = _relaxed_fields(m, "c", self.acc_in, cfg.relaxed)
            clo, chi = cfg.relaxed.emin, cfg.relaxed.emax
        (alo, ahi), (wlo, whi) = top_range(cfg.a_fmt), top_range(cfg.w_fmt)
        plo, phi = alo + wlo + 1, ahi + whi + 1
        sp, sigp, tp = prod.sign, prod.sig, prod.tp

        # align: anchor = max(Tp, Tc) (Tc for a zero product); the other operand shifts right
        diff = _exp(m, "diff", plo - chi, phi - clo, tp - tc)
        ahead = _sig(m, "ahead", 1, ~prod.zero & (diff > 0))  # the product sets the anchor
        dp = _exp(m, "dp", 0, max(0, chi - plo), Mux(diff < 0, -diff, 0))
        dc = _exp(m, "dc", 0, max(0, phi - clo), Mux(ahead, diff, 0))
        t = _exp(m, "t", clo + 1, max(phi, chi) + 1, Mux(ahead, tp, tc) + 1)  # weight of the sum's MSB
        xp = _sig(m, "xp", W + 1, _shr_sticky(m, "alp", Cat(C(0, W - P), sigp), dp, W))
        xc = _sig(m, "xc", W + 1, _shr_sticky(m, "alc", Cat(C(0, W - Q), sigc), dc, W))
        # add: |c + (-1)**(sp ^ sc) * p| from three adders side by side (c + p, c - p, p - c), the
        # difference picked by the borrow of c - p (no negation after the adder); the sum's sign is
        # sc, flipped when p outweighs c in a subtraction
        sub = _sig(m, "sub", 1, sp ^ sc)
        plus = _sig(m, "plus", W + 2, xc + xp)
        c_minus_p = _sig(m, "c_minus_p", signed(W + 2), xc - xp)
        p_minus_c = _sig(m, "p_minus_c", W + 1, xp - xc)
        borrow = c_minus_p[-1]
        mag = _sig(m, "mag", N, Mux(sub, Mux(borrow, p_minus_c, c_minus_p[: W + 1]), plus))
        # normalize: shift out the leading zeros, but at most lim = t - out_emin (then the result is
        # subnormal): a one OR-ed into mag at position N-1-lim stops the count there
        lim = _exp(m, "lim", 1, max(phi, chi) + 1 - cfg.out_emin, t - cfg.out_emin)
        stop = _sig(m, "stop", N, C(1 << (N - 1), N) >> lim)
        sh = _clz(m, "sh", mag | stop, N, cfg.norm_window)
        if cfg.shift_granularity > 1:
            k = cfg.shift_granularity.bit_length() - 1
            sh = _sig(m, "sh_coarse", range(N + 1), Cat(C(0, k), sh[k:]))
        m2 = _sig(m, "m2", N, (mag << sh)[:N])
        # round; the result's exponent stays >= out_emin because sh <= lim
        q, carry = _round_fixed(m, "rnd", m2, N, p, rne)
        e_max = max(phi, chi) + 2
        e_top = _exp(m, "e_top", cfg.out_emin, e_max, t - sh + carry)
        sign = _sig(m, "sign", 1, Mux(mag == 0, sp & sc, sc ^ (sub & borrow)))
        # specials
        infp = prod.inf
        nan = _sig(m, "nan", 1, prod.nan | nanc | (infp & infc & sub))
        out = self.acc_out.as_value()
        if cfg.normalize_in_pe:
            fmt = cfg.acc_fmt
            packed = _pack_ieee(m, "pk", sign, q, e_top, e_max, p, fmt, rne, renormalize=not cfg.exact)
            inf_body = C(fmt.inf_bits, fmt.width - 1)
            with m.If(nan):
                m.d.comb += out.eq(fmt.nan_bits)
            with m.Elif(infp):
                m.d.comb += out.eq(Cat(inf_body, sp))
            with m.Elif(infc):
                m.d.comb += out.eq(Cat(inf_body, sc))
            with m.Elif(q == 0):
                m.d.comb += out.eq(Cat(C(0, fmt.width - 1), sign))
            with m.Else():
                m.d.comb += out.eq(packed)
        else:
            rf = cfg.relaxed
            o = self.acc_out
            ef = _exp(m, "ef", cfg.out_emin + rf.bias, e_max + rf.bias, e_top + rf.bias)
            over = ef > (1 << rf.exp_bits) - 1
            with m.If(nan):
                m.d.comb += o.nan.eq(1)
            with m.Elif(infp):
                m.d.comb += [o.inf.eq(1), o.sign.eq(sp)]
            with m.Elif(infc):
                m.d.comb += [o.inf.eq(1), o.sign.eq(sc)]
            with m.Elif(q == 0):
                m.d.comb += o.sign.eq(sign)
            with m.Elif(over):
                if rne:
                    m.d.comb += [o.inf.eq(1), o.sign.eq(sign)]
                else:
                    m.d.comb += [o.man.eq(-1), o.exp.eq(-1), o.sign.eq(sign)]
            with m.Else():
                m.d.comb += [o.man.eq(q), o.exp.eq(ef[: rf.exp_bits]), o.sign.eq(sign)]


class FmaNormalizer(wiring.Component):
    """Combinational array-edge normalizer: relaxed partial sum -> accumulator format (latency 0).

    Ports: ``acc_in`` (relaxed layout), ``acc_out`` (``out_shape``, the accumulator format).
    Hardware: log-depth leading-zero count and left shift of the relaxed mantissa, right shift with
    sticky into the subnormal range, one RNE/truncation rounding, overflow and special handling,
    exponents at the relaxed format's width. A relaxed significand narrower than the output's
    (``relaxed_man_bits``) is zero-padded below, so only subnormal results round. Matches
    :func:`tpegen.sim.fp.normalize_relaxed` (correct rounding of the relaxed value).
    """

    def __init__(self, params: FmaPEParams):
        self.params = params
        super().__init__({"acc_in": In(params.acc_shape), "acc_out": Out(params.out_shape)})

    def elaborate(self, platform):
        cfg = self.params.fma
        rf, fmt = cfg.relaxed, cfg.acc_fmt
        R, p = rf.man_bits, fmt.man_bits + 1
        rne = cfg.rounding == "rne"
        m = Module()
        s, man, top, inf, nan = _relaxed_fields(m, "c", self.acc_in, rf)
        lzm = _clz(m, "lzm", man, R)
        mn = _sig(m, "mn", R, (man << lzm)[:R])
        lead = _exp(m, "lead", rf.emin - R, rf.emax, top - lzm)
        under = lead < fmt.emin
        rs = _exp(m, "rs", 0, max(0, fmt.emin - (rf.emin - R)), Mux(under, fmt.emin - lead, 0))
        # the normalized mantissa at the top of an F-bit field with a guard position below the p
        # result bits (zero-padded when the relaxed significand is narrower than the output's), shifted
        # into the subnormal range with the sticky bit appended
        F = max(R, p) + 1
        frame = _sig(m, "frame", F + 1, _shr_sticky(m, "sub", Cat(C(0, F - R), mn), rs, F))
        q, carry = _round_fixed(m, "rnd", frame, F + 1, p, rne)
        e_max = max(rf.emax, fmt.emin) + 1
        e_top = _exp(m, "e_top", fmt.emin, e_max, Mux(under, fmt.emin, lead) + carry)
        packed = _pack_ieee(m, "pk", s, q, e_top, e_max, p, fmt, rne, renormalize=False)
        _select_special(m, self.acc_out.as_value(), fmt, nan, inf, s, q == 0, s, packed)
        return m
