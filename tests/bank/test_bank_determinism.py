"""The same sample gives the same patch and metrics whatever its folder, the process that fits it, the
order of the fits or the load on the machine."""

import json
import threading

import numpy as np
import soundfile

from tests.bank.test_bank_build import RATE, write_note
from wifm_synth.bank.build import build_bank

COPIES = ("alto", "tenor", "bari")


def _spin(stop: threading.Event) -> None:
    """A busy Python thread: it takes the GIL from the fitting thread at arbitrary points."""
    count = 0
    while not stop.is_set():
        count += 1


def _copies_of_one_note(root):
    """One note in three program folders, its audio identical but each file's bytes different (a title
    chunk), so that the bank's content-hash cache cannot share one fit among them: each is fitted anew."""
    original = write_note(root / "original.wav", 57, seconds=0.6)
    audio, rate = soundfile.read(original, dtype="int16")
    for name in COPIES:
        (root / "src" / name).mkdir(parents=True)
        with soundfile.SoundFile(root / "src" / name / "Sax_A3.wav", "w", samplerate=rate, channels=1,
                                 subtype="PCM_16") as sound:
            sound.title = f"copy for {name}"
            sound.write(audio)
    assert rate == RATE
    for key in (50, 64):  # other fits between the copies: whatever each process fitted before must not matter
        write_note(root / "src" / "flute" / f"Flute_{key}.wav", key, seconds=0.6, index=0.7)
    return root / "src"


def _fitted(out_dir, name):
    document = json.loads((out_dir / name / "Sax_A3.json").read_text())
    for key in ("seconds", "date", "source"):
        document["metadata"].pop(key, None)
    return document


def test_one_sample_fitted_three_times_in_one_bank_gives_identical_patches_and_metrics(tmp_path):
    source = _copies_of_one_note(tmp_path)
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        build = build_bank(source, tmp_path / "bank", jobs=2, progress=False)  # 2 operators: the default
    finally:
        stop.set()
        spinner.join()
    statuses = [entry.status for entry in build.entries]
    assert statuses == ["fitted"] * (len(COPIES) + 2), statuses
    keys = {entry.cache_key for entry in build.entries}
    assert len(keys) == len(COPIES) + 2  # three fits of the note, not one shared from the cache
    documents = [_fitted(tmp_path / "bank", name) for name in COPIES]
    assert documents[0]["metadata"]["metrics"], documents[0]["metadata"]
    for document in documents[1:]:
        assert document == documents[0]  # exactly: not a bit of difference in any parameter or metric
    assert np.isfinite(documents[0]["metadata"]["metrics"]["envelope_db"])
