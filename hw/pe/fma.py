"""Floating-point multiply-add PE datapath with exact or approximate normalization (Amaranth).

The hardware is the datapath described in :mod:`tpegen.sim.fp` (read its module docstring for the
numeric policy and the widths ``P``, ``Q``, ``W``, ``N``); :class:`FmaDatapath` matches
:func:`tpegen.sim.fp.fma` bit for bit and :class:`FmaNormalizer` matches
:func:`tpegen.sim.fp.normalize_relaxed`. Both are purely combinational (latency 0): a systolic
array registers ``acc_out`` and feeds it back to ``acc_in``; the all-zero word is ``+0``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tpegen.errors import ConfigError
from tpegen.hw.pe.fp_formats import FloatFormat, FmaConfig, RelaxedFormat, format_by_name

__all__ = ["FmaPEParams", "FmaDatapath", "FmaNormalizer", "float_layout", "relaxed_layout"]

EXP = signed(16)  # every exponent computation fits comfortably (|e| < 2**12 for supported formats)


def float_layout(fmt: FloatFormat) -> data.StructLayout:
    """Packed IEEE-like layout, LSB first: ``man``, ``exp``, ``sign`` (bits equal the IEEE encoding)."""
    return data.StructLayout({"man": fmt.man_bits, "exp": fmt.exp_bits, "sign": 1})


def relaxed_layout(rf: RelaxedFormat) -> data.StructLayout:
    """Relaxed partial-sum layout (see :class:`tpegen.sim.fp.RelaxedFormat`), LSB first."""
    return data.StructLayout({"man": rf.man_bits, "exp": rf.exp_bits, "sign": 1, "inf": 1, "nan": 1})


DATAFLOWS = ("os",)


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
    relaxed_guard_bits : extra mantissa bits of the relaxed format (``normalize_in_pe: false``).
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

    kind = "fma"

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
            )
        if self.dataflow not in DATAFLOWS:
            raise ConfigError(
                "pe.dataflow",
                "'os' (floating-point accumulation is order-sensitive; weight-stationary would split "
                "the in-order chain over K tiles)",
                self.dataflow,
            )
        object.__setattr__(self, "_fma", cfg)

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
        """The combinational PE datapath: :class:`FmaDatapath`, or the dot-product PE's
        :class:`~tpegen.hw.pe.fp_dot.DotDatapath` when ``align_bits`` is set."""
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


def _clz(m: Module, name: str, value, width: int, window: int | None = None):
    """Leading zeros of ``value`` (``width`` bits); with ``window`` only the top bits are looked at
    and the count saturates at ``window``."""
    look = width if window is None else window
    n = Signal(range(look + 1), name=name)
    m.d.comb += n.eq(look)
    for i in range(width - look, width):  # later (more significant) assignments win
        with m.If(value[i]):
            m.d.comb += n.eq(width - 1 - i)
    return n


def _min(a, b):
    return Mux(a < b, a, b)


def _shr_sticky(m: Module, name: str, v, d, width: int):
    """``width``-bit ``v`` >> ``d`` (``d >= 0``), clamped at ``width``; sticky bit appended below."""
    dc = _sig(m, f"{name}_d", range(width + 1), Mux(d > width, width, d))
    kept = _sig(m, f"{name}_kept", width, v >> dc)
    lost = _sig(m, f"{name}_lost", 1, ((kept << dc)[:width] != v))
    return Cat(lost, kept)


def _ieee_fields(m: Module, name: str, view, fmt: FloatFormat, daz: bool = False):
    """-> sign, significand (hidden bit explicit), top exponent, inf, nan of an input/accumulator view.

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
    top = _sig(m, f"{name}_top", EXP, Mux(e == 0, 1, e) - fmt.bias)
    return s, sig, top, inf, nan


def _relaxed_fields(m: Module, name: str, view, rf: RelaxedFormat):
    special = view.inf | view.nan
    sig = _sig(m, f"{name}_sig", rf.man_bits, Mux(special, 0, view.man))
    top = _sig(m, f"{name}_top", EXP, view.exp - rf.bias)
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


def _pack_ieee(m: Module, name: str, sign, q, e_top, p: int, fmt: FloatFormat, rne: bool, renormalize: bool):
    """Pack the exactly representable ``q * 2**(e_top-p+1)`` into ``fmt`` bits (Value of fmt.width)."""
    if renormalize:
        rz = _clz(m, f"{name}_rz", q, p)
        room = _sig(m, f"{name}_room", EXP, e_top - fmt.emin)
        rs = _sig(m, f"{name}_rs", range(p + 1), _min(rz, room))
        q = _sig(m, f"{name}_q3", p, (q << rs)[:p])
        e_top = _sig(m, f"{name}_e3", EXP, e_top - rs)
    normal = q[p - 1]
    biased = _sig(m, f"{name}_biased", EXP, Mux(normal, e_top - fmt.emin + 1, 0))
    over = biased >= fmt.exp_all_ones
    body = Mux(
        over,
        C(fmt.inf_bits if rne else fmt.max_finite_bits, fmt.width - 1),
        Cat(q[: fmt.man_bits], biased[: fmt.exp_bits]),
    )
    return Cat(body, sign)


# ------------------------------------------------------------------------------------------------
class FmaDatapath(wiring.Component):
    """Combinational floating-point multiply-add ``acc_out = fl(acc_in + a*w)`` (latency 0).

    Ports: ``a`` (``a_shape``), ``w`` (``w_shape``), ``acc_in``/``acc_out`` (``acc_shape``: the
    accumulator format, or the relaxed format when ``normalize_in_pe`` is False). Hardware: exact
    ``P``-bit significand multiplier (``multiplier='lmul'``: one fraction adder, see
    :func:`_lmul_significand`), right-shift alignment into a ``W``-bit window plus sticky,
    ``W+3``-bit signed adder, leading-zero detector (full, or windowed/coarse when approximate),
    left shifter, fixed-position rounder (RNE or truncation), and in approximate IEEE mode a short
    ``p``-bit renormalizer. Bit-exact with :func:`tpegen.sim.fp.fma` for ``params.fma``.
    """

    def __init__(self, params: FmaPEParams):
        self.params = params
        super().__init__(
            {
                "a": In(params.a_shape),
                "w": In(params.w_shape),
                "acc_in": In(params.acc_shape),
                "acc_out": Out(params.acc_shape),
            }
        )

    def elaborate(self, platform):
        cfg = self.params.fma
        m = Module()
        P, Q, W, N, p = cfg.prod_width, cfg.addend_width, cfg.window, cfg.sum_width, cfg.out_sig_width
        rne = cfg.rounding == "rne"

        lmul = cfg.multiplier == "lmul"
        sa, siga, ta, infa, nana = _ieee_fields(m, "a", self.a, cfg.a_fmt, daz=lmul)
        sw, sigw, tw, infw, nanw = _ieee_fields(m, "w", self.w, cfg.w_fmt, daz=lmul)
        if cfg.normalize_in_pe:
            sc, sigc, tc, infc, nanc = _ieee_fields(m, "c", self.acc_in, cfg.acc_fmt)
        else:
            sc, sigc, tc, infc, nanc = _relaxed_fields(m, "c", self.acc_in, cfg.relaxed)

        # multiply
        sp = _sig(m, "sp", 1, sa ^ sw)
        sigp = _sig(m, "sigp", P, _lmul_significand(m, siga, sigw, cfg) if lmul else siga * sigw)
        tp = _sig(m, "tp", EXP, ta + tw + 1)
        # align
        anchor = _sig(m, "anchor", EXP, Mux(sigp == 0, tc, Mux(tp > tc, tp, tc)))
        dp = _sig(m, "dp", EXP, anchor - tp)
        dc = _sig(m, "dc", EXP, anchor - tc)
        xp = _sig(m, "xp", W + 1, _shr_sticky(m, "alp", Cat(C(0, W - P), sigp), Mux(dp < 0, 0, dp), W))
        xc = _sig(m, "xc", W + 1, _shr_sticky(m, "alc", Cat(C(0, W - Q), sigc), dc, W))
        # add
        total = _sig(m, "total", signed(W + 3), Mux(sp, -xp, xp) + Mux(sc, -xc, xc))
        neg = total[-1]
        mag = _sig(m, "mag", N, Mux(neg, -total, total))
        t = _sig(m, "t", EXP, anchor + 1)
        # normalize
        lz = _clz(m, "lz", mag, N, cfg.norm_window)
        lim = _sig(m, "lim", EXP, t - cfg.out_emin)
        sh = _sig(m, "sh", range(N + 1), _min(lz, lim))
        if cfg.shift_granularity > 1:
            k = cfg.shift_granularity.bit_length() - 1
            sh = _sig(m, "sh_coarse", range(N + 1), Cat(C(0, k), sh[k:]))
        m2 = _sig(m, "m2", N, (mag << sh)[:N])
        # round
        q, carry = _round_fixed(m, "rnd", m2, N, p, rne)
        e_top = _sig(m, "e_top", EXP, t - sh + carry)
        sign = _sig(m, "sign", 1, Mux(mag == 0, sp & sc, neg))
        # specials
        infp = _sig(m, "infp", 1, (infa | infw) & ~nana & ~nanw)
        nan = _sig(
            m,
            "nan",
            1,
            nana
            | nanw
            | nanc
            | (infa & (sigw == 0) & ~infw)
            | (infw & (siga == 0) & ~infa)
            | (infp & infc & (sp != sc)),
        )
        out = self.acc_out.as_value()
        if cfg.normalize_in_pe:
            fmt = cfg.acc_fmt
            packed = _pack_ieee(m, "pk", sign, q, e_top, p, fmt, rne, renormalize=not cfg.exact)
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
            ef = _sig(m, "ef", EXP, e_top + rf.bias)
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
        return m


class FmaNormalizer(wiring.Component):
    """Combinational array-edge normalizer: relaxed partial sum -> accumulator format (latency 0).

    Ports: ``acc_in`` (relaxed layout), ``acc_out`` (``out_shape``, the accumulator format).
    Hardware: full leading-zero count and left shift of the relaxed mantissa, right shift with
    sticky into the subnormal range, one RNE/truncation rounding, overflow and special handling.
    Matches :func:`tpegen.sim.fp.normalize_relaxed` (correct rounding of the relaxed value).
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
        lead = _sig(m, "lead", EXP, top - lzm)
        under = lead < fmt.emin
        rs = _sig(m, "rs", EXP, Mux(under, fmt.emin - lead, 0))
        frame = _sig(m, "frame", R + 2, _shr_sticky(m, "sub", Cat(C(0, 1), mn), rs, R + 1))
        q, carry = _round_fixed(m, "rnd", frame, R + 2, p, rne)
        e_top = _sig(m, "e_top", EXP, Mux(under, fmt.emin, lead) + carry)
        packed = _pack_ieee(m, "pk", s, q, e_top, p, fmt, rne, renormalize=False)
        out = self.acc_out.as_value()
        with m.If(nan):
            m.d.comb += out.eq(fmt.nan_bits)
        with m.Elif(inf):
            m.d.comb += out.eq(Cat(C(fmt.inf_bits, fmt.width - 1), s))
        with m.Elif(q == 0):
            m.d.comb += out.eq(Cat(C(0, fmt.width - 1), s))
        with m.Else():
            m.d.comb += out.eq(packed)
        return m
