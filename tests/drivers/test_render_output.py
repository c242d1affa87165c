"""``wifm render`` output: formats by extension, stdout, levels, refused options, song endings."""

import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from wifm_synth.cli import _midi_note, instrument_path
from wifm_synth.drivers.render_midi import FADE_S, render_midi_file
from wifm_synth.drivers.render_note import render_note_command
from wifm_synth.drivers.wav import output_format
from wifm_synth.errors import WifmError
from wifm_synth.formats.bank_json import load_bank

DATA = Path(__file__).resolve().parent.parent / "data" / "banks"
TEST_BANK = DATA / "test_bank.json"
PATCH = DATA / "patches" / "fm_bass.json"
RATE = 48000


def run_wifm(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "wifm_synth", *map(str, arguments)], capture_output=True,
                          timeout=300, cwd=cwd, check=False)


def peak_db(audio):
    return 20 * np.log10(np.max(np.abs(audio)))


@pytest.mark.parametrize("extension, container, subtype",
                         [(".wav", "WAV", "PCM_24"), (".flac", "FLAC", "PCM_24"), (".ogg", "OGG", "VORBIS"),
                          (".aiff", "AIFF", "PCM_24")])
def test_each_extension_writes_its_format(tmp_path, extension, container, subtype):
    out = tmp_path / f"note{extension}"
    summary = render_note_command(PATCH, out, 48, hold_s=0.3, tail_s=0.2)
    info = soundfile.info(out)
    assert (info.format, info.subtype) == (container, subtype) == (summary["format"], summary["subtype"])
    assert info.samplerate == RATE and info.frames == pytest.approx(0.5 * RATE, abs=BLOCK_SLACK)


BLOCK_SLACK = 64


def test_format_and_subtype_override_the_extension(tmp_path):
    out = tmp_path / "note.wav"
    render_note_command(PATCH, out, 48, hold_s=0.2, tail_s=0.1, audio_format=output_format(out, "flac", "pcm_16"))
    assert (soundfile.info(out).format, soundfile.info(out).subtype) == ("FLAC", "PCM_16")
    with pytest.raises(WifmError, match="unknown audio extension"):
        output_format(tmp_path / "note.xyz")
    with pytest.raises(WifmError, match="cannot hold --subtype VORBIS"):
        output_format(out, subtype="vorbis")


def test_gain_and_normalize_set_the_level(tmp_path):
    plain, _ = soundfile.read(render_note_command(PATCH, tmp_path / "a.wav", 48, hold_s=0.3)["output"])
    quieter, _ = soundfile.read(render_note_command(PATCH, tmp_path / "b.wav", 48, hold_s=0.3, gain_db=-6)["output"])
    normal, _ = soundfile.read(render_note_command(PATCH, tmp_path / "c.wav", 48, hold_s=0.3,
                                                   normalize_dbfs=-3)["output"])
    assert peak_db(quieter) - peak_db(plain) == pytest.approx(-6, abs=0.01)
    assert peak_db(normal) == pytest.approx(-3, abs=0.01)


def test_song_gain_and_normalize(tmp_path):
    song = _song(tmp_path / "song.mid", pedal=False)
    plain = render_midi_file(PATCH, song, tmp_path / "a.flac", progress=False, notify=lambda message: None)
    normal = render_midi_file(PATCH, song, tmp_path / "b.flac", progress=False, notify=lambda message: None,
                              normalize_dbfs=-1.0)
    quiet = render_midi_file(PATCH, song, tmp_path / "c.flac", progress=False, notify=lambda message: None,
                             gain_db=-12)
    assert peak_db(soundfile.read(tmp_path / "b.flac")[0]) == pytest.approx(-1.0, abs=0.01) == normal["peak_dbfs"]
    assert quiet["peak_dbfs"] == pytest.approx(plain["peak_dbfs"] - 12, abs=0.01)


def _song(path, pedal):
    """One track: (pedal down,) a note on for 0.3 s, note off, the song ends at 0.5 s."""
    messages = [mido.MetaMessage("set_tempo", tempo=500_000)]
    if pedal:
        messages.append(mido.Message("control_change", control=64, value=127))
    messages += [mido.Message("note_on", note=45, velocity=100),
                 mido.Message("note_off", note=45, time=288),
                 mido.MetaMessage("marker", text="end", time=192)]
    mido.MidiFile(type=0, ticks_per_beat=480, tracks=[mido.MidiTrack(messages)]).save(path)
    return path


def test_song_ending_with_the_pedal_down_ends_in_silence(tmp_path):
    notices = []
    summary = render_midi_file(PATCH, _song(tmp_path / "pedal.mid", pedal=True), tmp_path / "out.wav",
                               progress=False, notify=notices.append)
    audio, _ = soundfile.read(tmp_path / "out.wav", always_2d=True)
    assert len(notices) == 1 and "still held at the end of the song" in notices[0]
    at_end = audio[int(0.45 * RATE): int(0.5 * RATE)]
    assert np.sqrt(np.mean(at_end ** 2)) > 1e-3  # the sustained note is still sounding when the song ends ...
    assert summary["seconds_audio"] > 0.5
    assert np.max(np.abs(audio[-RATE // 100:])) < 1e-4  # ... and the file ends in silence, not a cut


def test_endless_sound_is_faded_not_cut(tmp_path, monkeypatch):
    from wifm_synth.drivers import render_midi

    monkeypatch.setattr(render_midi, "MAX_TAIL_S", 0.1)  # shorter than the release: the fade must act
    monkeypatch.setattr(render_midi, "FADE_S", 0.05)
    notices = []
    render_midi_file(PATCH, _song(tmp_path / "pedal.mid", pedal=True), tmp_path / "out.wav", progress=False,
                     notify=notices.append)
    audio, _ = soundfile.read(tmp_path / "out.wav", always_2d=True)
    assert len(audio) == int(0.6 * RATE) and FADE_S > 0.05
    before_fade = np.max(np.abs(audio[int(0.5 * RATE): int(0.55 * RATE)]))
    assert before_fade > 1e-3 and np.max(np.abs(audio[-48:])) < 0.01 * before_fade
    assert any("faded out over the last 0.05 s" in message for message in notices)


def test_program_forces_every_channel_but_ten(tmp_path):
    bank = load_bank(TEST_BANK)
    messages = [mido.Message("program_change", channel=1, program=0),
                mido.Message("note_on", channel=1, note=48, velocity=100),
                mido.Message("note_off", channel=1, note=48, time=240)]
    song = tmp_path / "song.mid"
    mido.MidiFile(type=0, tracks=[mido.MidiTrack(messages)]).save(song)
    render_midi_file(bank, song, tmp_path / "forced.wav", progress=False, program=33, notify=lambda message: None)
    messages[0] = mido.Message("program_change", channel=1, program=33)
    mido.MidiFile(type=0, tracks=[mido.MidiTrack(messages)]).save(song)
    render_midi_file(bank, song, tmp_path / "asked.wav", progress=False, notify=lambda message: None)
    forced, asked = (soundfile.read(tmp_path / name)[0] for name in ("forced.wav", "asked.wav"))
    np.testing.assert_array_equal(forced, asked)


def test_note_names_and_bank_folders_are_accepted(tmp_path):
    assert (_midi_note("C4"), _midi_note("F#3"), _midi_note("Db5"), _midi_note("60")) == (60, 54, 73, 60)
    assert instrument_path(Path(__file__).resolve().parents[2] / "patches" / "freepats").name == "bank.json"
    for name, hint in (("a.wav", "wifm fit"), ("a.sfz", "wifm bank")):
        with pytest.raises(WifmError, match=hint):
            instrument_path(tmp_path / name)


def test_stdout_gets_a_wav_and_refused_options_are_one_line(tmp_path):
    result = run_wifm("render", PATCH, "--note", "A2", "--hold", "0.2", "--tail", "0.1", "-o", "-")
    assert result.returncode == 0 and result.stdout[:4] == b"RIFF"
    assert b"s of WAV PCM_24" in result.stderr
    song = _song(tmp_path / "song.mid", pedal=False)
    for extra in (["--note", "60"], ["--velocity", "30"], ["--hold", "1"], ["--gain", "-3", "--normalize"]):
        result = run_wifm("render", PATCH, "--midi", song, "-o", "out.wav", *extra, cwd=tmp_path)
        lines = result.stderr.decode().strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("wifm: error: "), lines
    assert sorted(path.name for path in tmp_path.iterdir()) == ["song.mid"]


def test_a_reader_closing_the_pipe_early_ends_the_render_quietly():
    command = [sys.executable, "-m", "wifm_synth", "render", str(PATCH), "--note", "48", "-o", "-"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.read(4) == b"RIFF"
        process.stdout.close()  # as `| head -c 4` does
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=300) == 141
    assert "Traceback" not in stderr and "Error" not in stderr


def test_normalizing_to_the_limiter_threshold_never_sets_it_off():
    """--normalize (−1 dBFS by default) puts the peak at the safety stage's threshold, never a rounding above it."""
    from wifm_synth.drivers.wav import level_gain
    from wifm_synth.engine.safety import LIMIT_THRESHOLD, LIMIT_THRESHOLD_DBFS

    rng = np.random.default_rng(7)
    above = 0
    for _ in range(2000):
        audio = rng.standard_normal(64).astype(np.float32) * rng.uniform(1e-4, 4.0)
        peak = float(np.max(np.abs(audio)))
        levelled = np.multiply(audio, level_gain(peak, normalize_dbfs=LIMIT_THRESHOLD_DBFS), dtype=np.float64)
        above += int(np.max(np.abs(levelled)) > LIMIT_THRESHOLD)
        assert np.max(np.abs(levelled)) >= LIMIT_THRESHOLD * (1 - 1e-12)
    assert above == 0
