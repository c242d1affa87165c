import numpy as np
import pytest
import soundfile

from wifm_synth.analysis import analyze, load_audio
from wifm_synth.errors import AnalysisError, InputError

RATE = 48000


def _sine(freq, seconds, rate, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def test_bundled_note_loads_as_mono_float64(bundled_notes):
    audio, rate = load_audio(bundled_notes[0])
    assert rate == RATE
    assert audio.dtype == np.float64 and audio.ndim == 1
    assert audio.size == 3 * RATE
    assert 0.01 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize(
    "suffix, subtype", [(".flac", "PCM_16"), (".aiff", "PCM_24"), (".ogg", "VORBIS"), (".wav", "FLOAT")]
)
def test_formats_are_read(tmp_path, suffix, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, _sine(440.0, 0.5, RATE), RATE, subtype=subtype)
    audio, rate = load_audio(path)
    assert rate == RATE and audio.size == pytest.approx(RATE // 2, abs=2)
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.02)


def test_channels_are_mixed_to_mono(tmp_path):
    left = _sine(440.0, 0.2, RATE)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack((left, 0.5 * left), axis=1), RATE, subtype="FLOAT")
    audio, _ = load_audio(path)
    np.testing.assert_allclose(audio, 0.75 * left, atol=1e-6)


def test_other_rates_are_resampled_keeping_pitch(tmp_path):
    path = tmp_path / "cd.wav"
    soundfile.write(path, _sine(440.0, 1.0, 44100), 44100, subtype="FLOAT")
    audio, rate = load_audio(path)
    assert rate == RATE and audio.size == RATE
    assert analyze(path).f0_hz == pytest.approx(440.0, rel=1e-4)


def test_analysis_rate_can_be_chosen(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, _sine(440.0, 1.0, RATE), RATE)
    audio, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000 and audio.size == 16000


def _write_wav(path, samples, rate=RATE, subtype="FLOAT"):
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


def _with_sample(value):
    """One second of a constant level with ``value`` at sample 100."""
    return np.where(np.arange(RATE) == 100, value, 0.1)


def _write_text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make, error, reason",
    [
        (lambda p: p / "missing.wav", InputError, "no such file"),
        (lambda p: p, InputError, "is a folder"),
        (lambda p: _write_text(p / "notes.wav", "not audio at all"), InputError, "not a readable audio file"),
        (lambda p: _write_wav(p / "empty.wav", np.zeros(0)), AnalysisError, "no audio samples"),
        (lambda p: _write_wav(p / "zeros.wav", np.zeros(RATE), subtype="PCM_16"), AnalysisError, "digital silence"),
        (lambda p: _write_wav(p / "nan.wav", _with_sample(np.nan)), AnalysisError, "NaN or infinite"),
        (lambda p: _write_wav(p / "inf.wav", _with_sample(np.inf)), AnalysisError, "NaN or infinite"),
        (lambda p: _write_wav(p / "short.wav", _sine(440.0, 0.03, RATE)), AnalysisError, "too short"),
    ],
)
def test_unusable_input_gives_one_line_error_naming_the_file(tmp_path, make, error, reason):
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        load_audio(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and reason in message
    assert "\n" not in message


def test_array_input_is_validated():
    with pytest.raises(AnalysisError, match="NaN or infinite"):
        analyze((np.full(RATE, np.nan), RATE))
    with pytest.raises(InputError, match="sample rate"):
        analyze((_sine(440.0, 0.5, RATE), 0))
    with pytest.raises(InputError, match="numeric array"):
        analyze((np.zeros((2, 2, 2)), RATE))


def test_invalid_analysis_rate_is_rejected(tmp_path):
    path = _write_wav(tmp_path / "tone.wav", _sine(440.0, 0.2, RATE))
    with pytest.raises(InputError, match="sample rate"):
        load_audio(path, sample_rate=44.1)


def test_integer_pcm_arrays_are_scaled_to_full_scale():
    tone = _sine(440.0, 0.2, RATE)
    analysis = analyze(((tone * 32767).astype(np.int16), RATE))
    np.testing.assert_allclose(analysis.audio, tone, atol=3 / 32768)  # 32767 vs 32768, truncation


def test_only_the_first_analysed_seconds_of_a_long_sample_are_read(tmp_path):
    from wifm_synth.analysis.audio import ANALYSED_SECONDS

    rate = 8000  # a low rate keeps the file small; the analysis rate makes the bound matter
    path = tmp_path / "long.wav"
    soundfile.write(path, _sine(220.0, ANALYSED_SECONDS + 5.0, rate), rate, subtype="PCM_16")
    warnings = []
    audio, _ = load_audio(path, warnings=warnings)
    assert audio.size == pytest.approx(ANALYSED_SECONDS * RATE, abs=8)
    expected = f"lasts {ANALYSED_SECONDS + 5:.1f} s; only its first {ANALYSED_SECONDS:g} s are analysed and fitted"
    assert warnings == [expected]
    # an SFZ region's part starts at its offset and is bounded from there
    audio, _ = load_audio(path, frames=(rate * 2, None))
    assert audio.size == pytest.approx(ANALYSED_SECONDS * RATE, abs=8)
    short_warnings = []
    audio, _ = load_audio(path, frames=(rate * 10, rate * 20), warnings=short_warnings)
    assert audio.size == pytest.approx(10 * RATE, abs=8) and short_warnings == []


def test_a_ten_minute_sample_is_read_in_bounded_memory(tmp_path):
    """Reading and resampling the whole of ten minutes to 48 kHz would take > 300 MB (28.8 M float64 samples,
    twice); the bounded read stays near the interpreter's own size."""
    import subprocess
    import sys

    rate = 8000
    path = tmp_path / "ten_minutes.wav"
    soundfile.write(path, _sine(220.0, 600.0, rate, amplitude=0.3), rate, subtype="PCM_16")
    # VmHWM, the peak of this process's own memory (ru_maxrss would start from the parent's at fork)
    script = ("import re, sys; from wifm_synth.analysis import load_audio; "
              "audio, _ = load_audio(sys.argv[1]); "
              "status = open('/proc/self/status').read(); "
              "print(audio.size, int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                            timeout=300, check=True)
    frames, peak_mb = map(int, result.stdout.split())
    assert frames == 60 * RATE
    assert peak_mb < 250, peak_mb
