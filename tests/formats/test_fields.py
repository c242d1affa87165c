import pytest

from wifm_synth.errors import PatchError
from wifm_synth.formats.fields import FieldReader, read_document


def test_objects_reads_each_item_under_its_indexed_path():
    fields = FieldReader({"zones": [{"key": 1}, {"key": 2.5}]}, "programs[3]", "bank.json")
    zones = fields.objects("zones", 1, 4, "must have 1 to 4 zones")
    assert [zone.path for zone in zones] == ["programs[3].zones[0]", "programs[3].zones[1]"]
    assert zones[0].number("key", integer=True) == 1
    with pytest.raises(PatchError, match=r"^bank.json: programs\[3\].zones\[1\].key: must be an integer$"):
        zones[1].number("key", integer=True)


@pytest.mark.parametrize(("items", "message"), [
    ([], "programs: must have 1 to 2"),
    ([{}, {}, {}], "programs: must have 1 to 2"),
    ([{}, 7], r"programs\[1\]: must be a JSON object"),
])
def test_objects_refuses_wrong_counts_and_non_objects(items, message):
    with pytest.raises(PatchError, match=message):
        FieldReader({"programs": items}, "", None).objects("programs", 1, 2, "must have 1 to 2")


def test_read_document_checks_object_format_and_version():
    assert read_document({"format": "wifm-x", "version": 1}, "a.json", "thing", "wifm-x", 2).source == "a.json"
    with pytest.raises(PatchError, match="^a.json: thing: must be a JSON object$"):
        read_document([], "a.json", "thing", "wifm-x", 2)
    with pytest.raises(PatchError, match='format: must be "wifm-x"'):
        read_document({"format": "wifm-y", "version": 1}, "a.json", "thing", "wifm-x", 2)
    with pytest.raises(PatchError, match=r"version: 3 is newer than this wifm_synth understands \(2\)"):
        read_document({"format": "wifm-x", "version": 3}, "a.json", "thing", "wifm-x", 2)
