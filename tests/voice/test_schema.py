"""The parameter schema: one declaration per patch field, and everything that is derived from it."""

import copy
import pickle

import numpy as np
import pytest

from wifm_synth.engine import tables
from wifm_synth.errors import PatchError
from wifm_synth.fit import envelope
from wifm_synth.formats.patch_json import patch_from_dict, patch_to_dict, save_patch
from wifm_synth.report.page import _operators_table
from wifm_synth.voice.patch import Envelope, Operator, Patch, patch_classes
from wifm_synth.voice.schema import OPERATOR, PATCH, SCHEMA, Kind, Parameter

# A new per-operator parameter, declared in one place only: this test's extended schema.
TEST_PARAMETER = Parameter(OPERATOR, "test_param", Kind.NUMBER, "a parameter only this test declares",
                           unit="widgets", default=0.25, low=-1.0, high=2.0)


@pytest.fixture(scope="module")
def extended():
    return SCHEMA.with_parameter(TEST_PARAMETER)


def extended_patch(schema, value):
    classes = patch_classes(schema)
    return classes[PATCH](operators=[classes[OPERATOR](test_param=value), classes[OPERATOR](carrier=False)])


def test_a_parameter_declared_once_is_read_checked_defaulted_and_written(extended):
    document = patch_to_dict(extended_patch(extended, 1.5))
    assert list(document["operators"][0])[-1] == "test_param" and document["operators"][0]["test_param"] == 1.5
    assert patch_from_dict(document, "p.json", extended).operators[0].test_param == 1.5

    del document["operators"][1]["test_param"]
    assert patch_from_dict(document, "p.json", extended).operators[1].test_param == 0.25

    document["operators"][1]["test_param"] = 3.0
    with pytest.raises(PatchError, match=r"^p\.json: operators\[1\]\.test_param: must be <= 2$"):
        patch_from_dict(document, "p.json", extended)


def test_a_parameter_declared_once_gets_a_patch_table_column_and_fitter_bounds(extended):
    layout = tables.patch_table_layout(extended)
    assert layout.operator_width == tables.OPERATOR_WIDTH + 1
    column = layout.column("operator.test_param")
    row = tables.patch_row(extended_patch(extended, 1.5), layout)
    second = layout.operators + layout.operator_width
    assert row[layout.operators + column] == 1.5 and row[second + column] == 0.25
    # Columns the engine reads by name still hold their fields.
    assert row[layout.operators + layout.column("operator.level")] == 1.0
    assert row[second + layout.segment_count] == 1

    assert extended["operator.test_param"].clip(np.array([-5.0, 0.5, 5.0])).tolist() == [-1.0, 0.5, 2.0]
    assert "test_param (widgets)" in _operators_table(extended_patch(extended, 1.5))


def test_the_bundled_schema_is_not_changed_by_extending_it(extended):
    with pytest.raises(KeyError):
        SCHEMA["operator.test_param"]
    assert "test_param" not in patch_to_dict(Patch(operators=[Operator()]))["operators"][0]
    assert tables.PATCH_WIDTH == tables.patch_table_layout().patch_width


def test_engine_constants_name_the_schema_fields():
    layout = tables.LAYOUT
    assert (tables.TUNE_CENTS, tables.LFO_AMP_DB) == (layout.column("pitch.tune_cents"), layout.column("lfo.amp_depth_db"))
    assert tables.OP_FIXED_HZ == layout.column("operator.fixed_hz")
    assert tables.OP_RELEASE_S == layout.column("envelope.release_s")
    voice_columns = [column.index for column in layout.voice_columns]
    assert voice_columns == list(range(tables.OPERATORS))
    assert tables.OP_KEY_POINT_COUNT == tables.OP_SEGMENTS + tables.SEGMENT_WIDTH * 8
    assert tables.OPERATOR_WIDTH == tables.OP_KEY_POINTS + tables.KEY_POINT_WIDTH * int(SCHEMA["operator.key_levels"].high)


def test_dataclass_defaults_are_the_schema_defaults():
    operator = Operator()
    for field in SCHEMA.fields(OPERATOR):
        if field.kind in (Kind.NUMBER, Kind.OPTIONAL_NUMBER, Kind.BOOLEAN):
            assert getattr(operator, field.name) == field.default
    assert Envelope().segments == [(0.005, 0.0)] and Envelope().release_s == 0.3
    assert Operator().modulators is not Operator().modulators  # each instance its own list
    assert Patch(operators=[Operator()]).metadata == {}


def test_missing_fields_read_as_their_defaults():
    minimal = {"format": "wifm-patch", "version": 1, "operators": [{"envelope": {"segments": [[0.01, 0.0]]}}]}
    patch = patch_from_dict(copy.deepcopy(minimal))
    assert patch == Patch(operators=[Operator(envelope=Envelope(segments=[(0.01, 0.0)]))])
    with pytest.raises(PatchError, match=r"operators\[0\]\.envelope\.segments: must be a list"):
        patch_from_dict({**minimal, "operators": [{}]})
    with pytest.raises(PatchError, match=r"segments\[0\]: must be \[duration_s, end_level_db\]"):
        patch_from_dict({**minimal, "operators": [{"envelope": {"segments": [[0.01]]}}]})


def test_fitter_limits_come_from_the_schema():
    assert envelope.MAX_SEGMENTS == SCHEMA["envelope.segments"].high
    assert envelope.DEFAULT_RELEASE_S == SCHEMA["envelope.release_s"].default
    assert envelope.RELEASE_RANGE_S[1] == SCHEMA["envelope.release_s"].high


def test_patches_pickle_and_save(tmp_path):
    patch = Patch(operators=[Operator(fixed_hz=100.0)], metadata={"source": "x.wav"})
    assert pickle.loads(pickle.dumps(patch)) == patch
    save_patch(patch, tmp_path / "p.json")


def test_open_low_bound_clips_inside_the_range():
    assert 0.0 < SCHEMA["operator.ratio"].clip(0.0) < 1e-300
