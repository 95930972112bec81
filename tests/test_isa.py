"""The instruction set: encoding round trips, the assembler's checks and the generated document."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tpegen.config import load_config
from tpegen.hw.system import isa
from tpegen.hw.system.params import SystemGeometry, SystemParams

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def geom() -> SystemGeometry:
    return SystemGeometry.of(load_config("int8_os_8x8"))


def _random_instruction(rng: np.random.Generator, op: isa.Opcode) -> isa.Instruction:
    args = {f.name: int(rng.integers(0, 1 << f.bits, dtype=np.uint64)) for f in isa.FIELDS[op]}
    return isa.Instruction(op, int(rng.integers(0, 8)), int(rng.integers(0, 8)), args)


@pytest.mark.parametrize("op", list(isa.Opcode))
def test_encode_decode_and_listing_round_trip(op):
    rng = np.random.default_rng(op.value)
    for _ in range(200):
        ins = _random_instruction(rng, op)
        word = ins.encode()
        assert 0 <= word < 1 << isa.WORD_BITS
        assert isa.Instruction.decode(word) == ins
        assert isa.parse_listing(ins.listing()) == [ins]
    assert isa.layout(op).size == isa.WORD_BITS


def test_fields_do_not_overlap_and_start_with_the_header():
    for op in isa.Opcode:
        ins = isa.Instruction(op, 0, 0, {f.name: (1 << f.bits) - 1 for f in isa.FIELDS[op]})
        used = sum(f.bits for f in isa.fields(op))
        assert ins.encode() == ((1 << used) - 1) & ~0x3FF | op.value  # header bits 4..9 are zero


def test_isa_document_is_generated_from_the_code():
    assert (REPO / "docs" / "isa.md").read_text() == isa.instruction_set_markdown()


GOOD = """\
LOAD  signal=E target=0 sp_addr=0 host_addr=0x0 rows=1 seg=4 stride=0x0
LOAD  signal=E target=1 sp_addr=0 host_addr=0x40 rows=1 seg=4 stride=0x0
EXEC  wait=L signal=S a_addr=0 w_addr=0 c_addr=0 c_stride=8 mt=1 nt=1 kt=4 mb=1 acc=0
STORE wait=E c_addr=0 host_addr=0x100 rows=1 seg=8 stride=0x0 format=0
"""


def test_assembler_accepts_a_good_program(geom):
    blob = isa.assemble(GOOD, geom)
    assert len(blob) == 4 * isa.WORD_BYTES
    assert isa.decode_program(blob) == isa.parse_listing(GOOD)


@pytest.mark.parametrize(
    ("line", "index", "message"),
    [
        ("JUMP a=1", 2, "command 2: opcode: must be LOAD, EXEC or STORE, got 'JUMP'"),
        (
            "LOAD target=0 sp_addr=2047 host_addr=0x0 rows=1 seg=2 stride=0",
            2,
            "command 2: LOAD.sp_addr + rows * seg: must be <= 2048 (rows of scratchpad A), got 2049",
        ),
        (
            "EXEC a_addr=0 w_addr=0 c_addr=1020 c_stride=0 mt=1 nt=1 kt=4 mb=1",
            2,
            "command 2: EXEC rows of accumulator: must be <= 1024, got 1028",
        ),
        (
            "LOAD target=3 sp_addr=0 host_addr=0x0 rows=1 seg=1 stride=0",
            2,
            "command 2: LOAD.target: must be 0 (A), 1 (W) or 2 (Q), got 3",
        ),
        (
            "STORE c_addr=0 host_addr=0x8 rows=1 seg=1 stride=0 format=0",
            2,
            "command 2: STORE.host_addr: must be a multiple of the row pitch 32, got 8",
        ),
        (
            "EXEC wait=E a_addr=0 w_addr=0 c_addr=0 c_stride=0 mt=1 nt=1 kt=1 mb=1",
            2,
            "command 2: wait: must be",
        ),
        ("EXEC wait=S a_addr=0 w_addr=0 c_addr=0 c_stride=0 mt=1 nt=1 kt=1 mb=1", 2, "the program deadlocks"),
    ],
)
def test_assembler_names_the_bad_command(geom, line, index, message):
    text = "\n".join(GOOD.splitlines()[:2] + [line] + GOOD.splitlines()[2:]) + "\n"
    with pytest.raises(isa.ProgramError) as err:
        isa.assemble(text, geom)
    assert err.value.index == index
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_opcode_word_decodes_and_is_rejected(geom):
    ins = isa.Instruction.decode(0xF)
    assert ins.opcode == 0xF
    with pytest.raises(isa.ProgramError) as err:
        isa.check_program([ins], geom)
    assert err.value.code is isa.ErrorCode.BAD_OPCODE


def test_family_specific_exec_rules():
    ws = SystemGeometry.of(load_config("int8_ws_8x8"))
    fp = SystemGeometry.of(load_config("bf16_exact"))
    base = {"mt": 1, "nt": 1, "kt": 1, "mb": 1}
    with pytest.raises(isa.ProgramError, match="EXEC.mt: must be 1 on a weight-stationary array"):
        isa.check_instruction(isa.Instruction(isa.Opcode.EXEC, args=base | {"mt": 2}), ws, 0)
    with pytest.raises(isa.ProgramError, match="EXEC.acc: must be 0 on the FMA engine"):
        isa.check_instruction(isa.Instruction(isa.Opcode.EXEC, args=base | {"acc": 1}), fp, 0)
    with pytest.raises(isa.ProgramError, match=r"STORE.format: must be 0 \(raw\) or 2 \(bf16\)"):
        isa.check_instruction(
            isa.Instruction(isa.Opcode.STORE, args={"rows": 1, "seg": 1, "format": 1}), fp, 0
        )


def test_geometry_of_the_shipped_configs():
    g = SystemGeometry.of(load_config("int8_os_16x16"), SystemParams(axi_bytes=16, accumulator_kib=64))
    assert (g.a_row_bits, g.w_row_bits, g.acc_lanes, g.acc_lane_bits) == (128, 128, 16, 32)
    assert g.acc_depth == 64 * 1024 // 64
    assert g.load_pitch("A") == 16 and g.store_pitch("raw") == 64 and g.store_pitch("int8") == 16
    lut = SystemGeometry.of(load_config("lut_w2a8"))
    assert (lut.kind, lut.a_row_bits, lut.w_row_bits, lut.acc_lanes) == ("lut", 256, 1024, 128)
