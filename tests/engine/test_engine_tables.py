"""compile_instrument: the flat tables the engine reads, from a Patch, a Bank or zone entries."""

import numpy as np
import pytest

from wifm_synth.engine.tables import (
    EVALUATION_ORDER,
    IS_CARRIER,
    MODULATOR_COUNT,
    MODULATORS,
    NO_DRUM_PROGRAM,
    OP_FEEDBACK,
    OP_FIXED_HZ,
    OP_LEVEL,
    OP_SEGMENT_COUNT,
    OP_SEGMENTS,
    OPERATOR_COUNT,
    OPERATOR_WIDTH,
    OPERATORS,
    SEG_END_DB,
    SEG_FUTURE_PEAK_DB,
    SEG_START_S,
    SEGMENT_WIDTH,
    compile_instrument,
)
from wifm_synth.errors import PatchError
from wifm_synth.formats.bank_json import Bank, Program, Zone
from wifm_synth.voice.patch import Envelope, Operator, Patch


def three_operator_patch() -> Patch:
    return Patch(operators=[
        Operator(level=0.3, modulators=[2]),
        Operator(fixed_hz=200.0, level=1.5, carrier=False, feedback=0.4,
                 envelope=Envelope([(0.1, -3.0), (0.2, 2.0), (0.5, -30.0)], 0.2)),
        Operator(level=0.8, carrier=False, modulators=[1]),
    ])


def test_patch_row_holds_operators_envelopes_and_routing():
    compiled = compile_instrument(three_operator_patch())
    row, routing = compiled.patch_table[0], compiled.routing_table[0]
    second = OPERATORS + OPERATOR_WIDTH
    assert row[second + OP_FIXED_HZ] == 200.0 and row[second + OP_LEVEL] == 1.5 and row[second + OP_FEEDBACK] == 0.4
    assert row[second + OP_SEGMENT_COUNT] == 3
    segments = row[second + OP_SEGMENTS: second + OP_SEGMENTS + 3 * SEGMENT_WIDTH].reshape(3, SEGMENT_WIDTH)
    np.testing.assert_allclose(segments[:, SEG_START_S], [0.0, 0.1, 0.3])
    np.testing.assert_allclose(segments[:, SEG_END_DB], [-3.0, 2.0, -30.0])
    np.testing.assert_allclose(segments[:, SEG_FUTURE_PEAK_DB], [2.0, 2.0, -30.0])
    assert routing[OPERATOR_COUNT] == 3
    assert list(routing[EVALUATION_ORDER:EVALUATION_ORDER + 3]) == [1, 2, 0]
    assert list(routing[IS_CARRIER:IS_CARRIER + 3]) == [1, 0, 0]
    assert routing[MODULATOR_COUNT + 2] == 1 and routing[MODULATORS + 2 * 5] == 1
    assert compiled.drum_program == NO_DRUM_PROGRAM
    assert compiled.program_table.tolist() == [[0, 0, 0, 1]]
    assert compiled.zone_table.tolist() == [[0, 127, 1, 127, 0]]


def test_bank_compiles_shared_patches_once_and_finds_the_drum_program():
    piano, kit = three_operator_patch(), Patch(operators=[Operator()])
    bank = Bank(programs=[
        Program(program=4, zones=[Zone("low.json", 50, 0, 60), Zone("low.json", 70, 61, 127)]),
        Program(program=0, bank=128, zones=[Zone("kit.json", 38)]),
    ], drums=(128, 0), patches={"low.json": piano, "kit.json": kit})
    compiled = compile_instrument(bank)
    assert compiled.patches == (piano, kit)
    assert compiled.program_table.tolist() == [[0, 4, 0, 2], [128, 0, 2, 1]]
    assert compiled.zone_table[:, -1].tolist() == [0, 0, 1]
    assert compiled.drum_program == 1


def test_dx7_algorithm_overrides_carrier_and_modulator_fields():
    operators = [Operator(carrier=True, modulators=[]) for _ in range(6)]
    compiled = compile_instrument(Patch(operators=operators, algorithm=5))
    routing = compiled.routing_table[0]
    assert list(routing[IS_CARRIER:IS_CARRIER + 6]) == [1, 0, 1, 0, 1, 0]


def test_feedback_on_an_operator_the_algorithm_does_not_feed_back_is_refused():
    operators = [Operator(feedback=1.0 if index == 0 else 0.0) for index in range(6)]
    with pytest.raises(PatchError, match=r"operators\[0\].feedback"):
        compile_instrument(Patch(operators=operators, algorithm=1))


def test_cycles_and_bad_zone_entries_are_refused():
    with pytest.raises(PatchError, match="cycle"):
        compile_instrument(Patch(operators=[Operator(modulators=[1]), Operator(modulators=[0])]))
    with pytest.raises(PatchError, match=r"zones\[0\]"):
        compile_instrument([(0, 0, 70, 60, 1, 127, Patch(operators=[Operator()]))])
    with pytest.raises(PatchError, match="no zones"):
        compile_instrument([])
    with pytest.raises(PatchError, match="got str"):
        compile_instrument("piano.json")
