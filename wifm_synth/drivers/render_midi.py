"""Offline rendering of a MIDI file through the live engine (``Synth``) to a stereo WAV file.

The song is fed to the engine's event ring chunk by chunk and the audio streamed to a temporary file
that replaces the output only when everything succeeded, so a failed render leaves nothing behind.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from wifm_synth.drivers.wav import WAV_SUBTYPE
from wifm_synth.engine import Synth
from wifm_synth.engine.layout import BLOCK
from wifm_synth.engine.state import DEFAULT_POLYPHONY
from wifm_synth.errors import MidiFileError, OutputError
from wifm_synth.formats.atomic import atomic_output
from wifm_synth.formats.bank_json import Bank, load_instrument
from wifm_synth.formats.limits import (
    DEFAULT_MAX_SECONDS,
    refuse_long_song,
    wav_container,
)
from wifm_synth.formats.smf import MidiSong, read_midi_file
from wifm_synth.midi import (
    CC_BANK_LSB,
    CC_BANK_MSB,
    CONTROL_CHANGE,
    DRUM_CHANNEL,
    MIDI_CHANNELS,
    PROGRAM_CHANGE,
)
from wifm_synth.voice.patch import Patch

CHUNK_FRAMES = 4096  # the events of one chunk go into the engine's ring, then the chunk is rendered
MAX_TAIL_S = 5.0  # release tails longer than this are cut
PROGRESS_DELAY_S = 2.0  # renders that finish sooner show no progress bar
BANK_SELECT_CCS = (CC_BANK_MSB, CC_BANK_LSB)


def print_notice(message: str) -> None:
    print(f"wifm: notice: {message}", file=sys.stderr)


def _song_notices(song: MidiSong, instrument: Patch | Bank) -> list[str]:
    """Notices about what the instrument cannot play: channel 10 without drums, programs it lacks.

    Each missing (bank, program) is named once, with its channels and what plays instead. Bank select
    follows the engine: bank = CC0 · 128 + CC32 at the time of the program change; channel 10 ignores
    program changes. A single patch plays every program, so only banks can lack one.
    """
    name = Path(song.source).name
    notices = []
    if song.uses_drum_channel and (isinstance(instrument, Patch) or instrument.drums is None):
        notices.append(f"{name}: channel 10 (drums) is used but {instrument.name} has no drum program; "
                       f"its notes are silent")
    if isinstance(instrument, Patch):
        return notices
    bank_select = np.zeros((MIDI_CHANNELS, 2), dtype=np.int64)  # (MSB, LSB) per channel
    requested: dict[tuple[int, int], set[int]] = {}
    kinds, channels = song.status & 0xF0, song.status & 0x0F
    bank_selects = (kinds == CONTROL_CHANGE) & np.isin(song.data1, BANK_SELECT_CCS)
    for index in np.flatnonzero((kinds == PROGRAM_CHANGE) | bank_selects):
        channel, data1 = int(channels[index]), int(song.data1[index])
        if kinds[index] == CONTROL_CHANGE:
            bank_select[channel, BANK_SELECT_CCS.index(data1)] = song.data2[index]
        elif channel != DRUM_CHANNEL:
            number = (int(bank_select[channel, 0]) * 128 + int(bank_select[channel, 1]), data1)
            requested.setdefault(number, set()).add(channel + 1)
    for (bank, program), used_on in sorted(requested.items()):
        playing, exact = instrument.program_for(bank, program)
        if not exact:
            channel_list = ("channel " if len(used_on) == 1 else "channels ") + ", ".join(map(str, sorted(used_on)))
            notices.append(f"{name}: bank {bank} program {program} ({channel_list}) is not in "
                           f"{instrument.name}; playing bank {playing.bank} program {playing.program} "
                           f"{playing.name!r} instead")
    return notices


def _stream(synth: Synth, song: MidiSong, wav: soundfile.SoundFile, bar: tqdm) -> tuple[int, float, float]:
    """Feed the song to the engine chunk by chunk, writing the audio, until the end of the song and every
    voice has died away (at most MAX_TAIL_S later). Returns (frames written, peak level, engine seconds)."""
    ring_capacity = len(synth.state.ring_events)
    max_frames = song.end_frame + int(MAX_TAIL_S * song.sample_rate)
    peak = engine_seconds = 0.0
    rendered = next_event = 0
    while rendered < max_frames:
        chunk_end = min(rendered + CHUNK_FRAMES, max_frames)
        stop = int(np.searchsorted(song.frames, chunk_end, side="left"))
        room = ring_capacity - synth.queued_events
        if stop - next_event > room:  # a flood: render up to the block of the first event that does not fit
            stop = next_event + room
            # stay on the engine's block grid: a chunk ending inside a block would render that whole block
            # before the next chunk's events are queued, applying them late
            chunk_end = max(int(song.frames[stop]) // BLOCK * BLOCK, rendered + BLOCK)
        for index in range(next_event, stop):
            synth.send(int(song.frames[index]), int(song.status[index]), int(song.data1[index]),
                       int(song.data2[index]))
        next_event = stop
        engine_started = time.perf_counter()
        block = synth.render(chunk_end - rendered)
        engine_seconds += time.perf_counter() - engine_started
        block_peak = max(float(block.max()), -float(block.min()))
        peak = max(peak, block_peak)
        wav.write(np.clip(block, -1.0, 1.0) if block_peak > 1.0 else block)
        bar.update(min(chunk_end, song.end_frame) - bar.n)
        rendered = chunk_end
        if rendered >= song.end_frame and synth.active_voices == 0:
            break
    return rendered, peak, engine_seconds


def render_midi_file(
    instrument: Patch | Bank | str | os.PathLike,
    midi_path: str | os.PathLike,
    out_path: str | os.PathLike,
    sample_rate: int = 48000,
    progress: bool = True,
    *,
    polyphony: int = DEFAULT_POLYPHONY,
    notify: Callable[[str], None] = print_notice,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> dict:
    """Render ``midi_path`` with a patch or bank (object or file) into a stereo 24-bit WAV at ``out_path``.

    Renders to the end of the song, then on until every voice has died away (at most MAX_TAIL_S).
    One-line notices (drum channel without drums, unknown programs, clipping) go to ``notify``.
    Returns a summary (seconds of audio, wall time incl. reading and writing, × real time overall and
    for the engine alone, events, peak voices, peak level, notices).
    """
    started = time.perf_counter()
    song = read_midi_file(midi_path, sample_rate)
    if song.note_count == 0:
        raise MidiFileError("has no notes to render", midi_path)
    refuse_long_song(song.end_frame / sample_rate, MAX_TAIL_S, max_seconds, midi_path)
    if not isinstance(instrument, (Patch, Bank)):
        instrument = load_instrument(instrument)
    notices: list[str] = []

    def notice(message: str) -> None:
        notices.append(message)
        notify(message)

    with atomic_output(out_path) as temp:  # checks the output folder before any notice is given
        for message in _song_notices(song, instrument):
            notice(message)
        synth = Synth(instrument, sample_rate=sample_rate, polyphony=polyphony)
        try:
            wav = soundfile.SoundFile(temp, "w", samplerate=sample_rate, channels=2, subtype=WAV_SUBTYPE,
                                     format=wav_container(song.end_frame + int(MAX_TAIL_S * sample_rate), 2, 3))
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise OutputError(f"cannot write WAV ({exc})", out_path) from None
        with wav, tqdm(total=song.end_frame, unit_scale=1 / sample_rate, unit="s", desc=Path(midi_path).name,
                       delay=PROGRESS_DELAY_S, disable=not progress, file=sys.stderr,
                       bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]") as bar:
            rendered, peak, engine_seconds = _stream(synth, song, wav, bar)
    if peak > 1.0:
        notice(f"{Path(out_path).name}: peak level {20 * math.log10(peak):+.1f} dBFS was clipped to 0 dBFS "
               f"(lower CC7 volumes or velocities)")
    seconds_wall = time.perf_counter() - started
    seconds_audio = rendered / sample_rate
    return {
        "output": os.fspath(out_path),
        "instrument": instrument.name,
        "midi": os.fspath(midi_path),
        "sample_rate": sample_rate,
        "frames": rendered,
        "seconds_audio": round(seconds_audio, 3),
        "seconds_song": round(song.duration_s, 3),
        "seconds_wall": round(seconds_wall, 3),
        "realtime_factor": round(seconds_audio / seconds_wall, 1),
        "engine_realtime_factor": round(seconds_audio / engine_seconds, 1),
        "events": len(song),
        "notes": song.note_count,
        "channels": [channel + 1 for channel in song.channels_used],
        "peak_voices": synth.peak_voices,
        "stolen_voices": synth.stolen_voices,
        "peak_dbfs": round(20 * math.log10(peak), 2) if peak > 0 else None,
        "notices": notices,
    }


def render_midi_command(instrument: str | os.PathLike, midi: str | os.PathLike, out: str | os.PathLike,
                        sample_rate: int = 48000, max_seconds: float = DEFAULT_MAX_SECONDS) -> dict:
    """``wifm render INSTRUMENT --midi SONG.mid -o OUT.wav``: notices on stderr, a progress bar on a terminal."""
    return render_midi_file(instrument, midi, out, sample_rate=sample_rate, progress=sys.stderr.isatty(),
                            max_seconds=max_seconds)
