import importlib.util
import json
import shutil
import sys

import pytest
from analysis_signals import BUNDLED_NOTES, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))  # eval_fit imports its sibling benchmark_info, as when run as a script
spec = importlib.util.spec_from_file_location("eval_fit", REPO_ROOT / "tools" / "eval_fit.py")
eval_fit = importlib.util.module_from_spec(spec)
sys.modules["eval_fit"] = eval_fit  # worker processes find evaluate() by module name
spec.loader.exec_module(eval_fit)


@pytest.fixture
def one_note(tmp_path):
    shutil.copy(next(BUNDLED_NOTES.rglob("epiano_67_100.wav")), tmp_path)
    return tmp_path


def test_eval_scores_a_fit_between_floor_and_limit(one_note, capsys):
    assert eval_fit.main([str(one_note), "--json", "--methods", "wifm-w1", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["rows"]
    assert row["note"] == "epiano_67_100.wav" and row["method"] == "wifm-w1" and "error" not in row
    stft = row["stft_db"]
    assert stft["limit"] < stft["fit"] < stft["floor"]
    assert 0.0 < row["position"] < 1.0
    assert abs(row["f0_cents"]["fit"]) < 5.0
    median = report["medians"]["wifm-w1"]
    assert median["notes"] == 1 and median["stft_db"] == stft and median["beats_floor"] == 1


def test_markdown_and_table_list_every_note_and_the_medians(one_note, capsys):
    rows = [eval_fit.evaluate(next(one_note.iterdir()), 67, "wifm-w1"),
            {"note": "epiano_67_100.wav", "method": "seed", "error": "render has no measurable pitch"}]
    summary = eval_fit.medians(rows, ["wifm-w1", "seed"])
    assert summary["seed"] == {"notes": 0, "failed": 1}
    markdown = eval_fit.markdown(rows, summary, ["wifm-w1", "seed"]).splitlines()
    assert markdown[0].startswith("| note | floor | limit | wifm-w1 dB (pos.) | seed dB (pos.)")
    assert markdown[2].startswith("| epiano_67_100 |") and "failed" in markdown[2]
    assert markdown[3].startswith("| **median** |")
    text = eval_fit.table(rows, summary)
    assert "error: render has no measurable pitch" in text and "median (1 notes)" in text


def test_unknown_method_is_a_usage_error(one_note):
    with pytest.raises(SystemExit) as stopped:
        eval_fit.main([str(one_note), "--methods", "wifm-w2"])
    assert stopped.value.code == 2
