"""Any finite float audio is analysable: peaks of 1e300 or 3.4e38, subnormal 1e-310; hostile MIDI meta events."""

import struct

import numpy as np
import pytest
import soundfile

from tests.test_cli_errors import assert_one_line_error, run_wifm
from tests.test_no_overwrite import BANKS
from wifm_synth.analysis.audio import prepare_audio

RATE = 48000
TONE = np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)


@pytest.mark.parametrize("scale", [1e300, -1e300, 3.4e38, 1e-310, -1e-310, 1e-200])
def test_extreme_levels_become_full_scale(scale):
    prepared = prepare_audio(np.stack([TONE * scale, TONE * scale], axis=1), RATE, RATE)
    assert np.all(np.isfinite(prepared))
    assert np.max(np.abs(prepared)) == pytest.approx(1.0, rel=1e-6)


def test_levels_within_full_scale_are_kept():
    for level in (0.5, 8.0, 1e-9):
        assert np.array_equal(prepare_audio(level * TONE, RATE, RATE), level * TONE)


@pytest.mark.parametrize(("scale", "subtype"), [(1e300, "DOUBLE"), (1e-310, "DOUBLE"), (3.4e38, "FLOAT")])
def test_fit_of_an_extreme_float_wav(tmp_path, scale, subtype):
    sample = tmp_path / "note.wav"
    soundfile.write(sample, TONE * scale, RATE, subtype=subtype)
    result = run_wifm("fit", sample, "-o", tmp_path / "out.json")
    assert result.returncode == 0, result.stderr


def test_invalid_key_signature_is_one_line(tmp_path):
    body = b"\x00\xff\x59\x02\x20\x05" + b"\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"  # 32 sharps, mode 5
    song = tmp_path / "song.mid"
    song.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(body)) + body)
    result = run_wifm("render", BANKS / "patches" / "fm_bass.json", "--midi", song, "-o", tmp_path / "out.wav")
    assert_one_line_error(result, song, "malformed midi file")


def test_flac_header_claiming_2_to_the_36_frames_is_refused_before_reading(tmp_path):
    import io

    encoded = io.BytesIO()
    soundfile.write(encoded, 0.5 * TONE, RATE, format="FLAC")
    data = bytearray(encoded.getvalue())
    total = 2**36 - 1  # STREAMINFO's 36-bit total-samples field, after "fLaC" and the block header
    data[21] = (data[21] & 0xF0) | (total >> 32)
    data[22:26] = (total & 0xFFFFFFFF).to_bytes(4, "big")
    sample = tmp_path / "huge.flac"
    sample.write_bytes(bytes(data))
    assert_one_line_error(run_wifm("fit", sample, "-o", tmp_path / "out.json"), sample, "longer than")
