"""Offline rendering of a MIDI file through the live engine (``Synth``) to a stereo audio file.

The song is fed to the engine's event ring chunk by chunk and the audio streamed to a temporary float
file; once everything succeeded it is levelled (gain or normalisation) and written in the output's
format, replacing the output (or going to stdout) only then, so a failed render leaves nothing behind.
Notes still sounding when the song ends (held keys, a pedal left down) are released there and rendered
until silence, faded out if they outlast MAX_TAIL_S: a render never stops with a click.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from wifm_synth.drivers.wav import (
    AudioFormat,
    convert_render,
    delivered,
    level_gain,
    output_format,
    peak_dbfs,
    sound_write_failure,
)
from wifm_synth.engine import Synth
from wifm_synth.engine.layout import BLOCK, VOICE_STAGE
from wifm_synth.engine.state import DEFAULT_POLYPHONY, HELD, SUSTAINED
from wifm_synth.errors import MidiFileError, OutputError, PatchError
from wifm_synth.formats.atomic import scratch_folder
from wifm_synth.formats.bank_json import Bank, load_instrument
from wifm_synth.formats.limits import (
    DEFAULT_MAX_SECONDS,
    refuse_long_song,
    wav_container,
)
from wifm_synth.formats.smf import MidiSong, read_midi_file
from wifm_synth.guards import raise_if_interrupted
from wifm_synth.midi import (
    CC_ALL_NOTES_OFF,
    CC_BANK_LSB,
    CC_BANK_MSB,
    CC_SOSTENUTO,
    CC_SUSTAIN,
    CONTROL_CHANGE,
    DRUM_CHANNEL,
    MIDI_CHANNELS,
    PROGRAM_CHANGE,
    STANDARD_A4_HZ,
    is_system_reset,
)
from wifm_synth.voice.patch import Patch

CHUNK_FRAMES = 4096  # the events of one chunk go into the engine's ring, then the chunk is rendered
MAX_TAIL_S = 10.0  # sound after the song's end: at most this long, its last FADE_S faded out
FADE_S = 1.0  # long enough not to click, short enough not to smear the song's ending
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


def with_program(song: MidiSong, bank: int, program: int) -> MidiSong:
    """The song with (bank, program) forced on every channel but 10: its own program changes and bank
    selects on those channels are dropped, and the forced ones sent at frame 0."""
    kinds, channels = song.status & 0xF0, song.status & 0x0F
    selects = (kinds == PROGRAM_CHANGE) | ((kinds == CONTROL_CHANGE) & np.isin(song.data1, BANK_SELECT_CCS))
    keep = ~selects | (channels == DRUM_CHANNEL)
    melodic = [channel for channel in range(MIDI_CHANNELS) if channel != DRUM_CHANNEL]
    forced = [(CONTROL_CHANGE | channel, CC_BANK_MSB, bank >> 7) for channel in melodic]
    forced += [(CONTROL_CHANGE | channel, CC_BANK_LSB, bank & 0x7F) for channel in melodic]
    forced += [(PROGRAM_CHANGE | channel, program, 0) for channel in melodic]
    status, data1, data2 = (np.array(column, dtype=np.uint8) for column in zip(*forced))
    return MidiSong(
        source=song.source, sample_rate=song.sample_rate,
        frames=np.concatenate([np.zeros(len(forced), dtype=np.int64), song.frames[keep]]),
        status=np.concatenate([status, song.status[keep]]),
        data1=np.concatenate([data1, song.data1[keep]]),
        data2=np.concatenate([data2, song.data2[keep]]),
        end_frame=song.end_frame, sysex=song.sysex,
    )


def _release_everything(synth: Synth, frame: int) -> None:
    """Pedals up and all notes off on every channel: what a player does when the piece is over."""
    for channel in range(MIDI_CHANNELS):
        for controller in (CC_SUSTAIN, CC_SOSTENUTO, CC_ALL_NOTES_OFF):
            synth.send(frame, CONTROL_CHANGE | channel, controller, 0)


def _stream(synth: Synth, song: MidiSong, sound: soundfile.SoundFile, bar: tqdm,
            notice: Callable[[str], None]) -> tuple[int, float, float]:
    """Feed the song to the engine chunk by chunk, writing the audio, until the end of the song and every
    voice has died away. Voices still sounding at the end are released there (with a notice) and faded
    out over the last FADE_S of MAX_TAIL_S. Returns (frames written, peak level, engine seconds)."""
    ring_capacity = len(synth.state.ring_events)
    rate = song.sample_rate
    max_frames = song.end_frame + int(MAX_TAIL_S * rate)
    fade_start, fade_frames = max_frames - int(FADE_S * rate), int(FADE_S * rate)
    peak = engine_seconds = 0.0
    rendered = next_event = 0
    # one block past the last event, so that the engine has applied the events at the song's very end
    release_frame = song.end_frame + BLOCK
    released = False
    # GM/GS resets go into the ring between the song's channel messages, where the file has them
    resets = [(int(np.searchsorted(song.frames, frame, side="left")), frame) for frame, message in song.sysex
              if is_system_reset(message)]  # (index of the channel message it comes before, frame)
    next_reset = 0
    while rendered < max_frames:
        raise_if_interrupted()
        if rendered >= release_frame and not released:
            released = True
            stages = synth.state.voice_ints[VOICE_STAGE]
            held = int(np.count_nonzero((stages == HELD) | (stages == SUSTAINED)))
            if held:  # voices merely releasing die away on their own, without a notice
                notice(f"{Path(song.source).name}: {held} note(s) still held at the end of the song (keys or "
                       f"pedal down) were released there and rendered until silence "
                       f"(at most {MAX_TAIL_S:g} s, then faded out)")
                _release_everything(synth, rendered)
        # the song's end is a chunk boundary, so that the release above lands on it
        chunk_end = min(rendered + CHUNK_FRAMES, max_frames)
        if rendered < release_frame:  # a chunk boundary, so that the release above lands on it
            chunk_end = min(chunk_end, release_frame)
        stop = int(np.searchsorted(song.frames, chunk_end, side="left"))
        room = ring_capacity - synth.queued_events - len(resets)
        if stop - next_event > room:  # a flood: render up to the block of the first event that does not fit
            stop = next_event + room
            # stay on the engine's block grid: a chunk ending inside a block would render that whole block
            # before the next chunk's events are queued, applying them late
            chunk_end = max(int(song.frames[stop]) // BLOCK * BLOCK, rendered + BLOCK)
        for index in range(next_event, stop + (1 if stop == len(song.frames) else 0)):
            while next_reset < len(resets) and resets[next_reset][0] <= index:
                synth.reset(resets[next_reset][1])
                next_reset += 1
            if index == len(song.frames):
                break
            synth.send(int(song.frames[index]), int(song.status[index]), int(song.data1[index]),
                       int(song.data2[index]))
        next_event = stop
        engine_started = time.perf_counter()
        block = synth.render(chunk_end - rendered)
        engine_seconds += time.perf_counter() - engine_started
        if chunk_end > fade_start:
            frame_numbers = np.arange(rendered, chunk_end)
            block = block * np.clip((max_frames - frame_numbers) / fade_frames, 0.0, 1.0)[:, None]
        peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
        sound.write(block)
        bar.update(min(chunk_end, song.end_frame) - bar.n)
        rendered = chunk_end
        if released and synth.active_voices == 0:
            break
    if rendered >= max_frames:
        notice(f"{Path(song.source).name}: still sounding {MAX_TAIL_S:g} s after the end of the song; "
               f"faded out over the last {FADE_S:g} s")
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
    audio_format: AudioFormat | None = None,
    gain_db: float = 0.0,
    normalize_dbfs: float | None = None,
    program: int | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    a4_hz: float = STANDARD_A4_HZ,
    strict_syx: bool = False,
) -> dict:
    """Render ``midi_path`` with a patch or bank (object or file; ``strict_syx``: a .syx file's checksum
    and values are checked as ``wifm syx import --strict`` does) into a stereo file at ``out_path``
    (``-`` = stdout) in ``audio_format`` (default: from the extension, 24-bit PCM).

    Renders to the end of the song, then on until every voice has died away (see the module docstring).
    ``gain_db`` scales the whole render; ``normalize_dbfs`` instead sets its peak to that level.
    ``a4_hz`` tunes it. ``program`` forces that program (of the bank's first bank number that has it) on every channel but 10.
    One-line notices (drum channel without drums, unknown programs, tails, clipping) go to ``notify``.
    Returns a summary (seconds of audio, wall time incl. reading and writing, × real time overall and
    for the engine alone, events, peak voices, peak level after gain, notices).
    """
    started = time.perf_counter()
    audio_format = audio_format or output_format(out_path)
    song = read_midi_file(midi_path, sample_rate)
    if song.note_count == 0:
        raise MidiFileError("has no notes to render", midi_path)
    refuse_long_song(song.end_frame / sample_rate, MAX_TAIL_S, max_seconds, midi_path)
    if not isinstance(instrument, (Patch, Bank)):
        instrument = load_instrument(instrument, strict_syx=strict_syx)
    if program is not None:
        song = with_program(song, *program_in(instrument, program, instrument_path=None))
    notices: list[str] = []

    def notice(message: str) -> None:
        notices.append(message)
        notify(message)

    with delivered(out_path, audio_format) as final, scratch_folder("render") as work:
        # checks the output folder (in delivered) before any notice is given
        for message in _song_notices(song, instrument):
            notice(message)
        synth = Synth(instrument, sample_rate=sample_rate, polyphony=polyphony, a4_hz=a4_hz)
        float_render = work / "render.wav"
        try:  # RF64 when the float render would pass the 4 GiB limit of WAV
            sound = soundfile.SoundFile(float_render, "w", samplerate=sample_rate, channels=2, subtype="FLOAT",
                                        format=wav_container(song.end_frame + int(MAX_TAIL_S * sample_rate),
                                                             2, 4))
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise OutputError(f"cannot write ({sound_write_failure(exc, float_render)})", out_path) from None
        try:
            with sound, tqdm(total=song.end_frame, unit_scale=1 / sample_rate, unit="s",
                             desc=Path(midi_path).name, delay=PROGRESS_DELAY_S, disable=not progress,
                             file=sys.stderr,
                             bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]") \
                    as bar:
                rendered, peak, engine_seconds = _stream(synth, song, sound, bar, notice)
        except soundfile.LibsndfileError as exc:  # the scratch folder's disk filled, say
            raise OutputError(f"cannot write ({sound_write_failure(exc, float_render)})", out_path) from None
        gain = level_gain(peak, gain_db, normalize_dbfs)
        level = convert_render(float_render, final, audio_format, gain)
    if level.limited_samples:
        notice(f"{level.notice(out_path)}; lower CC7 volumes or velocities, or use --gain/--normalize")
    seconds_wall = time.perf_counter() - started
    seconds_audio = rendered / sample_rate
    return {
        "output": os.fspath(out_path),
        "format": audio_format.container,
        "subtype": audio_format.subtype,
        "instrument": instrument.name,
        "midi": os.fspath(midi_path),
        "sample_rate": sample_rate,
        "frames": rendered,
        "seconds_audio": round(seconds_audio, 3),
        "seconds_song": round(song.duration_s, 3),
        "seconds_wall": round(seconds_wall, 3),
        "realtime_factor": round(seconds_audio / seconds_wall, 1),
        "engine_realtime_factor": round(seconds_audio / max(engine_seconds, 1e-9), 1),
        "events": len(song),
        "notes": song.note_count,
        "channels": [channel + 1 for channel in song.channels_used],
        "peak_voices": synth.peak_voices,
        "stolen_voices": synth.stolen_voices,
        "peak_dbfs": peak_dbfs(level.written_peak),
        "peak_before_limiting_dbfs": peak_dbfs(level.peak),
        "limited_samples": level.limited_samples,
        "notices": notices,
    }


def program_in(instrument: Patch | Bank, program: int, instrument_path: str | os.PathLike | None) -> tuple[int, int]:
    """(bank, program) of the instrument's ``program`` (its lowest bank number that has it).

    A single patch plays every program, so it gives (0, program)."""
    if isinstance(instrument, Patch):
        return 0, program
    matches = sorted((entry.bank, entry.program) for entry in instrument.programs if entry.program == program)
    if not matches:
        available = ", ".join(str(entry.program) for entry in instrument.programs)
        raise PatchError(f"the bank has no program {program} (it has {available})",
                         instrument_path or instrument.name)
    return matches[0]


def render_midi_command(instrument: str | os.PathLike, midi: str | os.PathLike, out: str | os.PathLike,
                        sample_rate: int = 48000, **options) -> dict:
    """``wifm render INSTRUMENT --midi SONG.mid -o OUT``: notices on stderr, a progress bar on a terminal."""
    return render_midi_file(instrument, midi, out, sample_rate=sample_rate, progress=sys.stderr.isatty(), **options)
