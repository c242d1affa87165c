"""``wifm render INSTRUMENT --note KEY``: one note of a patch or bank program to an audio file."""

from __future__ import annotations

import os

from wifm_synth.drivers.render_midi import print_notice, program_in
from wifm_synth.drivers.wav import (
    AudioFormat,
    level_gain,
    output_format,
    peak_dbfs,
    write_audio,
)
from wifm_synth.engine import render_note
from wifm_synth.errors import WifmError
from wifm_synth.formats.bank_json import Bank, load_instrument
from wifm_synth.midi import STANDARD_A4_HZ


def render_note_command(instrument_file: str | os.PathLike, out: str | os.PathLike, note: int, *, velocity: int = 100,
                        hold_s: float = 2.0, tail_s: float = 1.0, sample_rate: int = 48000,
                        program: int | None = None, audio_format: AudioFormat | None = None,
                        gain_db: float = 0.0, normalize_dbfs: float | None = None,
                        a4_hz: float = STANDARD_A4_HZ, strict_syx: bool = False) -> dict:
    """Render the note and write it (mono) to ``out`` (``-`` = stdout); returns a summary like a song's."""
    audio_format = audio_format or output_format(out)
    instrument = load_instrument(instrument_file, strict_syx=strict_syx)
    selected = None
    if program is not None:
        if not isinstance(instrument, Bank):
            raise WifmError("--program applies to banks; this is a single patch", instrument_file)
        selected = program_in(instrument, program, instrument_file)
    audio = render_note(instrument, note, velocity=velocity, hold_s=hold_s, tail_s=tail_s,
                        sample_rate=sample_rate, program=selected, a4_hz=a4_hz)
    peak = float(abs(audio).max()) if audio.size else 0.0
    level = write_audio(out, audio, sample_rate, audio_format, level_gain(peak, gain_db, normalize_dbfs))
    notice = level.notice(out)
    if notice:
        print_notice(f"{notice}; lower --gain or use --normalize")
    return {
        "output": os.fspath(out),
        "format": audio_format.container,
        "subtype": audio_format.subtype,
        "instrument": instrument.name,
        "note": note,
        "sample_rate": sample_rate,
        "seconds_audio": round(len(audio) / sample_rate, 3),
        "peak_dbfs": peak_dbfs(level.written_peak),
        "peak_before_limiting_dbfs": peak_dbfs(level.peak),
        "limited_samples": level.limited_samples,
    }
