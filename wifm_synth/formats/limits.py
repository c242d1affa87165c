"""Limits on what one command may produce, checked before the work starts.

A tiny MIDI file can name a note-off days away (one 5-byte delta time is about 52 days at 120 bpm);
rendering it would run until the disk is full. Renders therefore stop at a stated length, and WAV
files too large for the 32-bit size fields of RIFF are written as RF64 instead of wrapping them.
"""

from __future__ import annotations

import os

from wifm_synth.errors import MidiFileError

DEFAULT_MAX_SECONDS = 3600.0  # one hour of audio: about 1 GB of 24-bit stereo at 48 kHz
RIFF_LIMIT_BYTES = 2**32 - 1 - 1024  # RIFF sizes are 32-bit; the margin covers the header chunks


def refuse_long_song(song_seconds: float, tail_seconds: float, max_seconds: float,
                     midi_path: str | os.PathLike) -> None:
    """Raise a one-line MidiFileError when the song plus its release tail exceeds ``max_seconds``."""
    if song_seconds + tail_seconds > max_seconds:
        raise MidiFileError(f"the song lasts {song_seconds:.1f} s, longer than --max-seconds {max_seconds:g} "
                            f"(raise it to render this song)", midi_path)


def wav_container(frames: int, channels: int, bytes_per_sample: int) -> str:
    """The soundfile format for ``frames`` of audio: "WAV" while RIFF can hold it, else "RF64"."""
    return "WAV" if frames * channels * bytes_per_sample <= RIFF_LIMIT_BYTES else "RF64"
