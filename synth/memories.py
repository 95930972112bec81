"""SRAM model for memories that synthesis black-boxes: area, energy per access and leakage.

Every number below is a published data point (with its source) or a least-squares fit of those
points computed at import time; nothing is tuned by hand.

Data
----
* **Area** (µm², FreePDK45 -- the PDK of the OSU cells that ``tpegen45.lib`` was sampled from):
  ``OPENRAM_ICCAD16`` -- Guthaus, Stine, Ataei, Chen, Wu, Sarwar, "OpenRAM: An Open-Source Memory
  Compiler", ICCAD 2016, Fig. "density" (FreePDK45 area of 2/8/32/128 kbit SRAMs with 16/32/64/128-bit
  words); values from the figure's data file ``ICCAD16_openram_paper/figs/density_data/freepdk45_size.dat``
  in https://github.com/VLSIDA/OpenRAM (commit f48272bde6138945f262a11e754c6f85093edd0c). The figure
  script ``Results2.m`` repeats the 16-bit value for 8 kbit/32-bit (0.0135 mm²); the data file's
  12978.9 µm² is used. ``OPENRAM_MACROS`` -- the FreePDK45 macros OpenRAM publishes in ``lib/freepdk45/lib``
  (``sram_1rw_<W>b_<D>w_1bank_freepdk45_TT_1p0V_25C.lib``, 2018): ``area`` and ``leakage_power`` (mW,
  simulated on the untrimmed netlist, TT 1.0 V 25 C).
* **Energy per access** (pJ): CACTI 7.0 (HP Labs, https://github.com/HewlettPackard/cacti, commit
  1ffd8dfb10303d306ecd8d215320aea07651e878) run on the configuration that the BSG black-box SRAM
  generator writes (``scripts/utils/cacti_config.py`` of https://github.com/bespoke-silicon-group/bsg_fakeram,
  commit 04dc5993b45fe11e14df27d85e5a794681ae9ba7, the generator behind OpenROAD's ``fakeram45``
  macros): ``-technology (u) 0.045``, ``-cache type "ram"``, one read-write port, one bank,
  ``-block size`` = word bytes, ``-size`` = word bytes x depth, ITRS-HP cells and periphery
  (Vdd 1.0 V), 300 K. ``CACTI45`` holds CACTI's "Total dynamic read/write energy per access (nJ)"
  for every shape in the fit range (no paper tabulates 45 nm SRAM energy by word width and depth;
  these runs are reproducible from the configuration above).
* Not used: OpenRAM's ``internal_power`` values. Its 2018 characterizer measured them on a trimmed
  netlist (one bit line and one word line kept, ``characterizer/delay.py``), so they miss most of the
  array's switched capacitance (32 x 1024: (0.194 - 0.153 leakage) mW x 5 ns = 0.2 pJ per read,
  12x below CACTI's 2.5 pJ).
* Cross-check only: 5 pJ for a 32-bit read of an 8 KB SRAM in 45 nm (Horowitz, "Computing's energy
  problem", ISSCC 2014; the figure as reproduced in energy tables such as Han et al., "EIE", ISCA 2016,
  Table I): ``HOROWITZ_8KB_32B_PJ``.

Model
-----
A memory of ``W`` bits x ``D`` words is tiled with single-port macros of at most ``MACRO_MAX_WIDTH``
(128, the widest published macro) bits x ``MACRO_MAX_DEPTH`` (1024) words: ``n_w = ceil(W / 128)``
columns of width ``ceil(W / n_w)`` and ``n_d = ceil(D / 1024)`` rows of depth ``ceil(D / n_d)``. Deeper
single macros exist in the data (2048..8192 words), but four of the five are 1.2-1.6x larger than the
same memory tiled from <= 1024-word macros (the fifth, 64 x 2048, is 3 % smaller), so they are left
out of the area fit and never used. Per macro (``W``/``D`` its own shape, bits = ``W*D``):

* area = a0 + a1 * bits  (relative least squares over the OpenRAM points with D <= 1024; within 10 %),
* leakage = l0 + l1 * bits  (OpenRAM macros with D <= 1024; within 7 %),
* read / write energy = e * W**x * D**y  (least squares in log space over the CACTI points; read within
  35 %, write within 21 % -- CACTI's own organisation choices make its energies jump by that much
  between neighbouring shapes).

A read activates one row of ``n_w`` macros, a write likewise. Wires between macros are **not**
included (area, energy): the memory figures are the macros alone.

Ports. Macros are single-port. A memory with ``R`` read ports and ``Wp`` write ports is built as
``max(R, 1)`` replicas (one per read port); every write goes to every replica; each replica serves its
read port and all write ports by time multiplexing, i.e. ``1 + Wp`` accesses per clock cycle
(``accesses_per_cycle``: the macro must cycle that much faster than the system clock -- optimistic
for these macros, whose published minimum periods are 1.1-5.9 ns, ``OPENRAM_MACROS``). Read energy
is one replica's; write energy is all replicas'; area and leakage count all replicas.

Range. The fits cover macro widths 8..128 bits (all data) and depths 32..1024 words (energy) /
16..1024 (area). Shallower macros (a memory with fewer than 32 words) are extrapolations and are
flagged (``extrapolated``). Wider or deeper memories are tiled, not extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np

from tpegen.errors import ConfigError

MODEL_VERSION = "tpegen-sram-1"

SOURCES = {
    "openram-iccad16": (
        "Guthaus et al., OpenRAM: An Open-Source Memory Compiler, ICCAD 2016, FreePDK45 area figure; "
        "https://github.com/VLSIDA/OpenRAM/blob/f48272bde6138945f262a11e754c6f85093edd0c/"
        "ICCAD16_openram_paper/figs/density_data/freepdk45_size.dat"
    ),
    "openram-macros": (
        "OpenRAM FreePDK45 macros, TT 1.0 V 25 C: https://github.com/VLSIDA/OpenRAM/tree/"
        "bf7d846e5f995dd74e02590f105affb4ee51b4e6/lib/freepdk45/lib"
    ),
    "cacti7-45nm": (
        "CACTI 7.0 (github.com/HewlettPackard/cacti@1ffd8df), 45 nm ITRS-HP, scratch RAM, 1 RW port, "
        "configuration of github.com/bespoke-silicon-group/bsg_fakeram@04dc599 scripts/utils/cacti_config.py"
    ),
    "horowitz-isscc14": (
        "Horowitz, Computing's Energy Problem, ISSCC 2014 (45 nm), as tabulated in Han et al., EIE, ISCA 2016, Table I"
    ),
}

# (word width bits, depth words, area µm²): ICCAD'16 FreePDK45 figure data, total bits / word width.
_ICCAD16_BITS = (2048, 8192, 32768, 131072)
_ICCAD16_WORDS = (16, 32, 64, 128)
_ICCAD16_AREA = (
    (4841.3475625, 4809.4391125, 4777.5306625, 5289.7701375),
    (13500.7585125, 12978.9081875, 12928.9229375, 12878.9376875),
    (51075.243575, 43556.8917, 41990.3161125, 41901.9176625),
    (283865.472, 211851.0735, 156997.489175, 151263.5205),
)
OPENRAM_ICCAD16: tuple[tuple[int, int, float], ...] = tuple(
    (w, bits // w, _ICCAD16_AREA[i][j])
    for i, bits in enumerate(_ICCAD16_BITS)
    for j, w in enumerate(_ICCAD16_WORDS)
)

# (word width, depth, area µm², leakage mW, minimum period ns): OpenRAM lib/freepdk45/lib/*.lib.
OPENRAM_MACROS: tuple[tuple[int, int, float, float, float], ...] = (
    (8, 256, 4498.9233125, 0.011168618, 1.055),
    (32, 256, 12335.4213125, 0.040298101, 2.109),
    (32, 512, 22454.71095, 0.077704284, 2.188),
    (32, 1024, 42051.1147875, 0.15279765, 2.188),
    (32, 2048, 116044.35785, 0.306155, 2.344),
    (64, 1024, 76901.5771875, 0.30184115, 3.594),
    (128, 1024, 146602.501987, 0.56084648, 5.938),
)

# (word width, depth, read nJ, write nJ): CACTI 7.0 at 45 nm, configuration in the module docstring.
CACTI45: tuple[tuple[int, int, float, float], ...] = (
    (8, 64, 0.000158486, 0.000245545),
    (8, 128, 0.000272557, 0.000339604),
    (8, 256, 0.00043574, 0.000462762),
    (8, 512, 0.000590922, 0.000659519),
    (8, 1024, 0.000966199, 0.000880836),
    (16, 32, 0.000295714, 0.000372825),
    (16, 64, 0.000322383, 0.000496501),
    (16, 128, 0.000490752, 0.000624845),
    (16, 256, 0.000645934, 0.000937087),
    (16, 512, 0.00103968, 0.00117687),
    (16, 1024, 0.00177632, 0.00160559),
    (32, 32, 0.000547172, 0.000701393),
    (32, 64, 0.000592318, 0.000940554),
    (32, 128, 0.0007475, 0.00148377),
    (32, 256, 0.00116841, 0.00175072),
    (32, 512, 0.00196774, 0.00224213),
    (32, 1024, 0.00254055, 0.00314753),
    (64, 32, 0.00112252, 0.00143096),
    (64, 64, 0.00120462, 0.00190109),
    (64, 128, 0.00143371, 0.00290624),
    (64, 256, 0.00235132, 0.00351593),
    (64, 512, 0.00292412, 0.00534521),
    (64, 1024, 0.00528833, 0.00650229),
    (128, 32, 0.00257801, 0.0031949),
    (128, 64, 0.00273402, 0.00412697),
    (128, 128, 0.00311094, 0.006056),
    (128, 256, 0.00368374, 0.00973303),
    (128, 512, 0.00654203, 0.0113842),
    (128, 1024, 0.00910741, 0.0189755),
)

HOROWITZ_8KB_32B_PJ = 5.0  # cross-check only (see module docstring)

MACRO_MAX_WIDTH = max(w for w, *_ in OPENRAM_MACROS)  # 128: the widest published macro
MACRO_MAX_DEPTH = 1024  # deeper single macros are less dense (docstring); tile instead
MIN_MACRO_BITS = min(w * d for w, d, *_ in OPENRAM_MACROS)  # 2048: the smallest published macro

# Tolerances the fits meet on their own data (checked in tests/test_synth_memories.py).
AREA_FIT_TOLERANCE = 0.10
LEAKAGE_FIT_TOLERANCE = 0.07
READ_FIT_TOLERANCE = 0.35
WRITE_FIT_TOLERANCE = 0.21


def area_points() -> list[tuple[int, int, float, str]]:
    """All published area points ``(width, depth, µm², source key)``."""
    pts = [(w, d, a, "openram-iccad16") for w, d, a in OPENRAM_ICCAD16]
    return pts + [(w, d, a, "openram-macros") for w, d, a, _, _ in OPENRAM_MACROS]


def _relative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients minimising the sum of squared *relative* errors of ``x @ c`` against ``y``."""
    coef, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
    return coef


@dataclass(frozen=True)
class Fits:
    """Fitted coefficients (see the module docstring), computed from the data tables."""

    area: tuple[float, float]  # µm² = a0 + a1 * bits
    leakage: tuple[float, float]  # µW = l0 + l1 * bits
    read: tuple[float, float, float]  # pJ = e * W**x * D**y
    write: tuple[float, float, float]
    area_depths: tuple[int, int]
    energy_depths: tuple[int, int]
    widths: tuple[int, int]


@cache
def fits() -> Fits:
    """The model's coefficients, fitted to ``area_points()``, ``OPENRAM_MACROS`` and ``CACTI45``."""
    pts = [(w, d, a) for w, d, a, _ in area_points() if d <= MACRO_MAX_DEPTH]
    bits = np.array([w * d for w, d, _ in pts], float)
    area = _relative_lstsq(np.c_[np.ones_like(bits), bits], np.array([a for *_, a in pts]))
    mac = [(w * d, leak * 1000.0) for w, d, _, leak, _ in OPENRAM_MACROS if d <= MACRO_MAX_DEPTH]
    mb = np.array([b for b, _ in mac], float)
    leak = _relative_lstsq(np.c_[np.ones_like(mb), mb], np.array([v for _, v in mac]))
    w = np.array([p[0] for p in CACTI45], float)
    d = np.array([p[1] for p in CACTI45], float)
    x = np.c_[np.ones_like(w), np.log(w), np.log(d)]
    energy = []
    for col in (2, 3):
        c, *_ = np.linalg.lstsq(x, np.log([p[col] * 1000.0 for p in CACTI45]), rcond=None)
        energy.append((float(np.exp(c[0])), float(c[1]), float(c[2])))
    return Fits(
        area=(float(area[0]), float(area[1])),
        leakage=(float(leak[0]), float(leak[1])),
        read=energy[0],
        write=energy[1],
        area_depths=(min(p[1] for p in pts), max(p[1] for p in pts)),
        energy_depths=(int(d.min()), int(d.max())),
        widths=(int(min(w.min(), min(p[0] for p in pts))), MACRO_MAX_WIDTH),
    )


@dataclass(frozen=True)
class MemoryMacro:
    """One single-port SRAM macro of ``width`` bits x ``depth`` words, from the fits.

    ``area_um2``, ``read_energy_pj`` / ``write_energy_pj`` (one access), ``leakage_uw``;
    ``extrapolated`` lists the reasons when the shape lies outside the data range.
    """

    width: int
    depth: int
    area_um2: float
    read_energy_pj: float
    write_energy_pj: float
    leakage_uw: float
    extrapolated: tuple[str, ...] = ()

    @classmethod
    def of(cls, width: int, depth: int) -> MemoryMacro:
        f = fits()
        bits = width * depth
        why = []
        if width < f.widths[0]:
            why.append(f"macro width {width} < {f.widths[0]} bits (smallest in the data)")
        if depth < f.energy_depths[0]:
            why.append(f"macro depth {depth} < {f.energy_depths[0]} words (smallest CACTI point)")
        if depth < f.area_depths[0]:
            why.append(f"macro depth {depth} < {f.area_depths[0]} words (smallest OpenRAM point)")
        if width > MACRO_MAX_WIDTH or depth > MACRO_MAX_DEPTH:
            raise ConfigError(
                "macro shape", f"at most {MACRO_MAX_WIDTH} bits x {MACRO_MAX_DEPTH} words", f"{width}x{depth}"
            )
        e, x, y = f.read
        ew, xw, yw = f.write
        return cls(
            width=width,
            depth=depth,
            area_um2=f.area[0] + f.area[1] * bits,
            read_energy_pj=e * width**x * depth**y,
            write_energy_pj=ew * width**xw * depth**yw,
            leakage_uw=f.leakage[0] + f.leakage[1] * bits,
            extrapolated=tuple(why),
        )


@dataclass(frozen=True)
class MemoryCost:
    """Cost of one memory (``width_bits`` x ``depth``, ``read_ports`` / ``write_ports``) built from
    :class:`MemoryMacro` tiles: ``copies`` replicas of ``columns`` x ``rows`` macros of ``macro``'s shape.

    ``area_um2`` and ``leakage_uw`` cover all macros; ``read_energy_pj`` is one read on one port,
    ``write_energy_pj`` one write (to every replica). ``accesses_per_cycle``: macro accesses per system
    clock cycle (time-multiplexed ports). ``source``: where the numbers come from.
    """

    width_bits: int
    depth: int
    read_ports: int
    write_ports: int
    macro: MemoryMacro
    columns: int
    rows: int
    copies: int
    accesses_per_cycle: int
    area_um2: float
    read_energy_pj: float
    write_energy_pj: float
    leakage_uw: float
    extrapolated: tuple[str, ...] = ()
    source: str = field(
        default="area/leakage: OpenRAM FreePDK45 (ICCAD 2016 + published macros); energy: CACTI 7 45 nm; "
        "fits and port/tiling assumptions: tpegen.synth.memories"
    )

    @property
    def macros(self) -> int:
        return self.copies * self.columns * self.rows

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["macro"] = asdict(self.macro)
        out["macros"] = self.macros
        out["model"] = MODEL_VERSION
        return out


def _count(value: Any, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(name, f"an integer >= {low}", value)
    return int(value)


def memory_cost(width_bits: int, depth: int, read_ports: int = 1, write_ports: int = 1) -> MemoryCost:
    """Area, energy per access and leakage of a ``width_bits`` x ``depth`` memory (module docstring)."""
    width_bits = _count(width_bits, "width_bits", 1)
    depth = _count(depth, "depth", 1)
    read_ports = _count(read_ports, "read_ports", 0)
    write_ports = _count(write_ports, "write_ports", 0)
    if read_ports + write_ports == 0:
        raise ConfigError("read_ports/write_ports", "at least one port", 0)
    columns = math.ceil(width_bits / MACRO_MAX_WIDTH)
    rows = math.ceil(depth / MACRO_MAX_DEPTH)
    macro = MemoryMacro.of(math.ceil(width_bits / columns), math.ceil(depth / rows))
    copies = max(read_ports, 1)
    accesses = (1 if read_ports else 0) + write_ports
    n = copies * columns * rows
    return MemoryCost(
        width_bits=width_bits,
        depth=depth,
        read_ports=read_ports,
        write_ports=write_ports,
        macro=macro,
        columns=columns,
        rows=rows,
        copies=copies,
        accesses_per_cycle=accesses,
        area_um2=n * macro.area_um2,
        read_energy_pj=columns * macro.read_energy_pj,
        write_energy_pj=copies * columns * macro.write_energy_pj,
        leakage_uw=n * macro.leakage_uw,
        extrapolated=macro.extrapolated,
    )
