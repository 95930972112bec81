"""Floating-point formats and the FMA PE's numeric configuration (pure parameter dataclasses).

:class:`FloatFormat` (IEEE-754-like binary formats and the OCP "fn" variant without infinities,
:data:`FORMATS` by name, :func:`format_by_name`),
:class:`RelaxedFormat` (the partial-sum format between PEs when normalization is deferred to the
array edge) and :class:`FmaConfig` (formats, rounding and the approximate-normalization knobs with
the derived datapath widths). The generator (:mod:`tpegen.hw.pe.fma`) and the bit-exact model
(:mod:`tpegen.sim.fp`, whose module docstring describes the arithmetic) share them; they live in
``hw/`` because ``hw/`` imports nothing from ``sim/``, and :mod:`tpegen.sim.fp` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpegen.errors import ConfigError, check_bool, check_choice, check_int

__all__ = [
    "BF16",
    "FORMATS",
    "FP8_E4M3FN",
    "FP8_E4M3_IEEE",
    "FP8_E5M2",
    "FP16",
    "FP32",
    "RENAMED_FORMATS",
    "MULTIPLIERS",
    "TERMS",
    "ALIGN_BITS",
    "RELAXED_MAN_BITS",
    "ROUNDINGS",
    "FloatFormat",
    "FmaConfig",
    "RelaxedFormat",
    "format_by_name",
]


@dataclass(frozen=True)
class FloatFormat:
    """A binary float format: 1 sign bit, ``exp_bits`` exponent bits, ``man_bits`` fraction bits.

    Packed LSB first: fraction at bit 0, exponent above it, sign on top (equals the IEEE encoding).
    Bias ``2**(exp_bits-1) - 1``; exponent field 0 holds zeros and subnormals.

    ``finite_only=False`` (IEEE-754-like): the all-ones exponent holds ``±inf`` (fraction 0) and
    NaNs. ``finite_only=True`` (the OCP/PyTorch "fn" convention, e.g. ``float8_e4m3fn``): there
    are no infinities; the all-ones exponent holds normal numbers except the all-ones fraction,
    the only NaN pattern (either sign), so the largest finite value has fraction ``1...10``.
    """

    exp_bits: int
    man_bits: int
    name: str = ""
    finite_only: bool = False

    def __post_init__(self):
        check_int("format.exp_bits", self.exp_bits, 2, 11)
        check_int("format.man_bits", self.man_bits, 1, 52)
        check_bool("format.finite_only", self.finite_only)

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number (also the exponent of subnormals' hidden bit)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite number."""
        return self.exp_all_ones - int(not self.finite_only) - self.bias

    @property
    def exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def has_inf(self) -> bool:
        return not self.finite_only

    @property
    def inf_bits(self) -> int:
        """``+inf`` (exponent all ones, fraction 0); a finite-only format has none (ValueError)."""
        if self.finite_only:
            raise ValueError(f"{self.name or 'this format'} has no infinity")
        return self.exp_all_ones << self.man_bits

    @property
    def nan_bits(self) -> int:
        """Canonical NaN, sign 0: IEEE quiet NaN (fraction MSB set) or the finite-only all-ones pattern."""
        if self.finite_only:
            return (self.exp_all_ones << self.man_bits) | ((1 << self.man_bits) - 1)
        return self.inf_bits | (1 << (self.man_bits - 1))

    @property
    def max_finite_bits(self) -> int:
        """Largest finite magnitude; every larger magnitude pattern is inf or NaN."""
        top = self.exp_all_ones if self.finite_only else self.exp_all_ones - 1
        return (top << self.man_bits) | ((1 << self.man_bits) - 1 - int(self.finite_only))

    def overflow_bits(self, rounding: str) -> int:
        """Magnitude pattern of a finite result beyond the range: IEEE ``inf`` when rounding to nearest
        (NaN in a finite-only format, as ml_dtypes and PyTorch convert), the max finite when truncating."""
        if rounding != "rne":
            return self.max_finite_bits
        return self.nan_bits if self.finite_only else self.inf_bits

    @property
    def sign_bit(self) -> int:
        return 1 << (self.width - 1)


BF16 = FloatFormat(8, 7, "bf16")
FP16 = FloatFormat(5, 10, "fp16")
FP32 = FloatFormat(8, 23, "fp32")
FP8_E4M3FN = FloatFormat(4, 3, "fp8_e4m3fn", finite_only=True)  # OCP / PyTorch float8_e4m3fn, max 448
FP8_E4M3_IEEE = FloatFormat(4, 3, "fp8_e4m3_ieee")  # IEEE-like: has inf/NaN, max finite 240
FP8_E5M2 = FloatFormat(5, 2, "fp8_e5m2")  # IEEE-like; equals OCP / PyTorch float8_e5m2
FORMATS = {f.name: f for f in (BF16, FP16, FP32, FP8_E4M3FN, FP8_E4M3_IEEE, FP8_E5M2)}
RENAMED_FORMATS = {
    "fp8_e4m3": "fp8_e4m3_ieee (the IEEE-like e4m3 with inf, max 240) or fp8_e4m3fn (OCP, no inf, max 448)"
}


def format_by_name(field: str, name: str) -> FloatFormat:
    """The format called ``name`` (a key of :data:`FORMATS`); ConfigError naming ``field`` otherwise."""
    if name in RENAMED_FORMATS:
        raise ConfigError(field, f"{RENAMED_FORMATS[name]} ({name!r} was renamed)", name)
    check_choice(field, name, tuple(FORMATS))
    return FORMATS[name]


@dataclass(frozen=True)
class RelaxedFormat:
    """Internal partial-sum format between PEs when ``normalize_in_pe=False``.

    Fields LSB first: ``man`` (``man_bits`` bits, *explicit* leading bit, may have leading zeros),
    ``exp`` (``exp_bits`` bits, biased by ``bias``: weight of ``man``'s MSB is ``2**(exp - bias)``),
    ``sign``, ``inf``, ``nan``. Value ``(-1)**sign * man * 2**(exp - bias - man_bits + 1)``.
    ``exp == 0`` is an ordinary exponent (no subnormal special case); zeros are canonical
    (``man == 0`` implies ``exp == 0``) so the all-zero word is ``+0``. ``inf``/``nan`` flags
    override the rest (a NaN is canonical: only the ``nan`` flag set).
    """

    exp_bits: int
    man_bits: int

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        """Smallest weight exponent of ``man``'s MSB (exp field 0)."""
        return -self.bias

    @property
    def emax(self) -> int:
        return (1 << self.exp_bits) - 1 - self.bias

    @property
    def width(self) -> int:
        return self.man_bits + self.exp_bits + 3

    @property
    def exp_offset(self) -> int:
        return self.man_bits

    @property
    def sign_offset(self) -> int:
        return self.man_bits + self.exp_bits

    @property
    def inf_offset(self) -> int:
        return self.sign_offset + 1

    @property
    def nan_offset(self) -> int:
        return self.sign_offset + 2


ROUNDINGS = ("rne", "trunc")
MULTIPLIERS = ("exact", "lmul")
TERMS = (1, 2, 4, 8)  # products per step of a multi-term dot-product PE (pe.terms)
ALIGN_BITS = (0, 48)  # range of pe.align_bits: bits kept below the largest exponent of a step
RELAXED_MAN_BITS = (4, 40)  # range of pe.relaxed_man_bits (the 61-bit datapath may lower the top)


def lmul_offset_exponent(man_bits: int) -> int:
    """``l(m)`` of L-Mul (Luo & Sun, "Addition is All You Need for Energy-efficient Language Models",
    arXiv:2410.00907, Sec. 2.2): the offset ``2**-l(m)`` stands in for the mantissa product
    ``x_m * y_m``; ``l(m) = m`` for ``m <= 3``, ``3`` for ``m = 4``, ``4`` for ``m > 4``."""
    return man_bits if man_bits <= 3 else (3 if man_bits == 4 else 4)


@dataclass(frozen=True)
class FmaConfig:
    """Numeric configuration of one FMA PE: formats, rounding and approximate-normalization knobs.

    ``norm_window`` (``S``, None = exact) and ``shift_granularity`` (``G``, a power of two, 1 = exact)
    describe the normalizer (see the module docstring); ``normalize_in_pe=False`` makes the PE emit
    the :attr:`relaxed` format (``Ec + 2`` exponent bits), normalized and rounded to ``acc_fmt`` once
    at the array edge. Its significand (explicit leading bit) has ``relaxed_man_bits`` bits
    (:data:`RELAXED_MAN_BITS`, independent of ``acc_fmt``: narrower than the accumulator's
    significand, e.g. 12 bits with fp32 output, or wider), or with ``relaxed_man_bits=None``
    ``Mc + 1 + relaxed_guard_bits`` bits; the two knobs exclude each other and need
    ``normalize_in_pe=False``.

    ``multiplier='lmul'`` replaces the exact significand product by the L-Mul approximation
    ``(1 + x_m + y_m + 2**-l(m)) * 2**(x_e + y_e)`` (:func:`lmul_offset_exponent`, ``m`` the wider
    of the two mantissa widths); subnormal operands read as signed zeros. The product feeds the same
    accumulate path (see :mod:`tpegen.sim.fp`, "L-Mul products").

    ``align_bits`` (``B``, None = the correctly rounded FMA above) selects the multi-term
    dot-product step of :mod:`tpegen.sim.fp_dot`: ``acc + sum`` of ``terms`` exact products, every
    term truncated to ``B`` bits below the largest exponent of the step, one addition, one
    normalization and one rounding. ``terms > 1`` needs ``align_bits``; the dot-product step has
    the exact multiplier, exact normalization and ``normalize_in_pe`` only.
    """

    a_fmt: FloatFormat = BF16
    w_fmt: FloatFormat = BF16
    acc_fmt: FloatFormat = FP32
    rounding: str = "rne"
    norm_window: int | None = None
    shift_granularity: int = 1
    normalize_in_pe: bool = True
    relaxed_guard_bits: int = 3
    multiplier: str = "exact"
    terms: int = 1
    align_bits: int | None = None
    relaxed_man_bits: int | None = None

    def __post_init__(self):
        for name in ("a_fmt", "w_fmt", "acc_fmt"):
            if not isinstance(getattr(self, name), FloatFormat):
                raise ConfigError(
                    f"pe.{name}", "a FloatFormat (one of " + ", ".join(FORMATS) + ")", getattr(self, name)
                )
        if self.acc_fmt.finite_only:
            raise ConfigError(
                "pe.acc_format",
                "a format with infinities (finite-only formats such as fp8_e4m3fn are input formats)",
                self.acc_fmt.name,
            )
        check_choice("pe.rounding", self.rounding, ROUNDINGS)
        check_choice("pe.multiplier", self.multiplier, MULTIPLIERS)
        check_bool("pe.normalize_in_pe", self.normalize_in_pe)
        check_int("pe.relaxed_guard_bits", self.relaxed_guard_bits, 0, 16)
        self._check_relaxed_man_bits()
        check_int("pe.shift_granularity", self.shift_granularity, 1, 64)
        if self.shift_granularity & (self.shift_granularity - 1):
            raise ConfigError("pe.shift_granularity", "a power of two in 1..64", self.shift_granularity)
        if self.norm_window is not None:
            check_int("pe.norm_window", self.norm_window, 1, self.sum_width)
            if self.norm_window % self.shift_granularity:
                raise ConfigError(
                    "pe.norm_window",
                    f"a multiple of pe.shift_granularity ({self.shift_granularity})",
                    self.norm_window,
                )
        self._check_dot()
        if self.sum_width + 2 > 63:
            if self.relaxed_man_bits is not None:  # N = P + Q + 3 <= 61
                raise ConfigError(
                    "pe.relaxed_man_bits",
                    f"an integer in {RELAXED_MAN_BITS[0]}..{61 - 3 - self.prod_width} with "
                    f"{self.a_fmt.name} x {self.w_fmt.name} inputs (the datapath fits 61 bits)",
                    self.relaxed_man_bits,
                )
            raise ConfigError(
                "pe.acc_fmt",
                "formats whose datapath fits 61 bits (e.g. bf16/fp16/fp8 "
                f"inputs with up to fp32 accumulation); needs {self.sum_width} bits",
                self.acc_fmt.name,
            )

    def _check_relaxed_man_bits(self) -> None:
        """``relaxed_man_bits``: in range, only for relaxed partial sums, not with ``relaxed_guard_bits``."""
        if self.relaxed_man_bits is None:
            return
        check_int("pe.relaxed_man_bits", self.relaxed_man_bits, *RELAXED_MAN_BITS)
        if self.normalize_in_pe:
            raise ConfigError(
                "pe.relaxed_man_bits",
                "null when pe.normalize_in_pe is true (it sizes the relaxed partial sums of "
                "pe.normalize_in_pe: false)",
                self.relaxed_man_bits,
            )
        default_guard = self.__dataclass_fields__["relaxed_guard_bits"].default
        if self.relaxed_guard_bits != default_guard:
            raise ConfigError(
                "pe.relaxed_man_bits",
                f"null when pe.relaxed_guard_bits is given (pe.relaxed_guard_bits: {self.relaxed_guard_bits}; "
                "give only one: relaxed_man_bits replaces acc mantissa + 1 + relaxed_guard_bits)",
                self.relaxed_man_bits,
            )

    def _check_dot(self) -> None:
        """The multi-term dot-product knobs (``terms``, ``align_bits``) and what they exclude."""
        check_choice("pe.terms", self.terms, TERMS)
        if self.align_bits is None:
            if self.terms > 1:
                raise ConfigError(
                    "pe.align_bits", f"an integer in {ALIGN_BITS[0]}..{ALIGN_BITS[1]} when pe.terms > 1", None
                )
            return
        check_int("pe.align_bits", self.align_bits, *ALIGN_BITS)
        for name, value, default in (
            ("multiplier", self.multiplier, "'exact'"),
            ("norm_window", self.norm_window, "null"),
            ("shift_granularity", self.shift_granularity, "1"),
            ("normalize_in_pe", self.normalize_in_pe, "true"),
        ):
            if value != self.__dataclass_fields__[name].default:
                raise ConfigError(f"pe.{name}", f"{default} in a dot-product PE (pe.align_bits set)", value)

    # --- derived datapath description (the RTL uses exactly these) ---------------------------
    @property
    def dot(self) -> bool:
        """True for the multi-term dot-product step (``align_bits`` set), False for the FMA."""
        return self.align_bits is not None

    @property
    def dot_sum_width(self) -> int:
        """Signed width of the dot-product step's aligned sum: ``terms`` products below ``2**(B+2)``
        and the accumulator below ``2**(B+1)`` (in units of ``2**(E-B)``), so ``|sum| < (2 terms + 1)
        2**(B+1)``, plus the sign bit."""
        return self.align_bits + 2 + (2 * self.terms).bit_length()

    @property
    def exact(self) -> bool:
        return self.norm_window is None and self.shift_granularity == 1

    @property
    def lmul_offset(self) -> int:
        """``l(m)`` of the L-Mul multiplier, ``m = max(Ma, Mw)`` (used only when ``multiplier='lmul'``)."""
        return lmul_offset_exponent(max(self.a_fmt.man_bits, self.w_fmt.man_bits))

    @property
    def relaxed(self) -> RelaxedFormat:
        """The relaxed partial-sum format: ``Ec + 2`` exponent bits, ``relaxed_man_bits`` significand
        bits (``Mc + 1 + relaxed_guard_bits`` when None)."""
        man = self.relaxed_man_bits
        if man is None:
            man = self.acc_fmt.man_bits + 1 + self.relaxed_guard_bits
        return RelaxedFormat(self.acc_fmt.exp_bits + 2, man)

    @property
    def prod_width(self) -> int:
        """P: exact product significand width."""
        return self.a_fmt.man_bits + self.w_fmt.man_bits + 2

    @property
    def addend_width(self) -> int:
        """Q: significand width of the accumulator operand (hidden bit made explicit)."""
        return self.relaxed.man_bits if not self.normalize_in_pe else self.acc_fmt.man_bits + 1

    @property
    def window(self) -> int:
        """W: alignment window width (without the sticky bit)."""
        return self.prod_width + self.addend_width + 1

    @property
    def sum_width(self) -> int:
        """N: magnitude width after the add: carry + W window bits + sticky."""
        return self.window + 2

    @property
    def out_sig_width(self) -> int:
        """p: significand bits kept by the in-PE rounding."""
        return self.addend_width

    @property
    def out_emin(self) -> int:
        return self.acc_fmt.emin if self.normalize_in_pe else self.relaxed.emin

    @property
    def acc_width(self) -> int:
        return self.acc_fmt.width if self.normalize_in_pe else self.relaxed.width
