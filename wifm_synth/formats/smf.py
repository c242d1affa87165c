"""Standard MIDI files (type 0 and 1) → time-ordered engine events at absolute sample frames.

mido parses the file (running status, meta events, SysEx); this module merges the tracks, converts
ticks to sample frames through the tempo map (tempo changes in any track apply to all tracks, as SMF
type 1 requires) with exact rational arithmetic, and reports problems as one-line MidiFileErrors.
"""

from __future__ import annotations

import heapq
import math
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
from mido.midifiles.meta import KeySignatureError

from wifm_synth.checks import integer_in
from wifm_synth.errors import MidiFileError
from wifm_synth.formats.inputs import open_input
from wifm_synth.midi import DRUM_CHANNEL, NOTE_ON

DEFAULT_TEMPO_US_PER_BEAT = 500_000  # 120 beats per minute until the first set_tempo
# SMPTE division: the high byte is −frames per second; −29 means 29.97 drop-frame.
_SMPTE_FRAMES_PER_SECOND = {24: Fraction(24), 25: Fraction(25), 29: Fraction(30000, 1001), 30: Fraction(30)}
_CHANNEL_MESSAGE_TYPES = frozenset(
    {"note_off", "note_on", "polytouch", "control_change", "program_change", "aftertouch", "pitchwheel"})
# mido's KeySignatureError (a key signature of, e.g., 32 sharps) derives from Exception only.
_PARSE_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, struct.error, UnicodeDecodeError,
                 KeySignatureError)


@dataclass(frozen=True)
class MidiSong:
    """A MIDI file's channel events as parallel arrays, sorted by frame (file order within a frame)."""

    source: str
    sample_rate: int
    frames: np.ndarray  # int64 absolute sample frame
    status: np.ndarray  # uint8 status byte (type | channel)
    data1: np.ndarray  # uint8
    data2: np.ndarray  # uint8 (0 for one-data-byte messages)
    end_frame: int  # frame of the last event, end-of-track included
    sysex: list[tuple[int, bytes]] = field(default_factory=list)  # (frame, F0 … F7), kept aside from the engine

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def channels_used(self) -> list[int]:
        """0-based channels that have any channel event."""
        return sorted({int(status) & 0x0F for status in np.unique(self.status)})

    @property
    def note_count(self) -> int:
        return int(np.count_nonzero(((self.status & 0xF0) == NOTE_ON) & (self.data2 > 0)))

    @property
    def uses_drum_channel(self) -> bool:
        """Whether any note starts on MIDI channel 10 (General MIDI percussion)."""
        return bool(np.any((self.status == NOTE_ON | DRUM_CHANNEL) & (self.data2 > 0)))

    @property
    def duration_s(self) -> float:
        return self.end_frame / self.sample_rate


def _seconds_per_tick(midi: mido.MidiFile, path: Path) -> tuple[Fraction | None, int]:
    """(seconds per tick for SMPTE timing, else None; ticks per beat for metrical timing, else 0)."""
    division = midi.ticks_per_beat  # mido reads the division as a signed 16-bit number
    if division > 0:
        return None, division
    if division == 0:
        raise MidiFileError("header division is 0 ticks per beat", path)
    frames_per_second_code = -(division >> 8)
    ticks_per_frame = division & 0xFF
    if frames_per_second_code not in _SMPTE_FRAMES_PER_SECOND or ticks_per_frame == 0:
        raise MidiFileError(f"unsupported SMPTE division {division & 0xFFFF:#06x}", path)
    return 1 / (_SMPTE_FRAMES_PER_SECOND[frames_per_second_code] * ticks_per_frame), 0


def _open(path: Path) -> mido.MidiFile:
    with open_input(path, "a MIDI file", MidiFileError) as stream:
        header = stream.read(4)
        if not header:
            raise MidiFileError("empty file, not a MIDI file", path)
        if header != b"MThd":
            raise MidiFileError("not a MIDI file (no MThd header)", path)
        stream.seek(0)
        try:
            midi = mido.MidiFile(file=stream)
        except EOFError:
            raise MidiFileError("truncated MIDI file (ends in the middle of a chunk)", path) from None
        except _PARSE_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise MidiFileError(f"malformed MIDI file ({reason})", path) from None
    if midi.type not in (0, 1):
        raise MidiFileError(f"SMF type {midi.type} is not supported (only type 0 and 1)", path)
    if not midi.tracks:
        raise MidiFileError("has no tracks", path)
    return midi


class _TempoMap:
    """Tick → sample frame with exact integer arithmetic (no rounding drift over long songs).

    Within a tempo segment, ``frame = round(rate · (segment_seconds + (tick − segment_tick) · seconds_per_tick))``;
    both terms are kept as integers over one common denominator.
    """

    def __init__(self, sample_rate: int, seconds_per_tick: Fraction):
        self.sample_rate = sample_rate
        self.segment_tick = 0
        self.segment_seconds = Fraction(0)
        self._start(seconds_per_tick)

    def _start(self, seconds_per_tick: Fraction) -> None:
        self.seconds_per_tick = seconds_per_tick
        start = self.segment_seconds * self.sample_rate
        step = seconds_per_tick * self.sample_rate
        self.denominator = math.lcm(start.denominator, step.denominator)
        self.start = start.numerator * (self.denominator // start.denominator)
        self.step = step.numerator * (self.denominator // step.denominator)

    def change(self, tick: int, seconds_per_tick: Fraction) -> None:
        self.segment_seconds += (tick - self.segment_tick) * self.seconds_per_tick
        self.segment_tick = tick
        self._start(seconds_per_tick)

    def frame(self, tick: int) -> int:
        numerator = self.start + (tick - self.segment_tick) * self.step
        return (2 * numerator + self.denominator) // (2 * self.denominator)  # round half up


def _merged(tracks: list[mido.MidiTrack]):
    """(absolute tick, message) of all tracks in time order; simultaneous events keep track, then file order."""
    def absolute(track_index: int, track: mido.MidiTrack):
        tick = 0
        for order, message in enumerate(track):
            tick += message.time
            yield tick, track_index, order, message

    for tick, _, _, message in heapq.merge(*(absolute(index, track) for index, track in enumerate(tracks))):
        yield tick, message


def read_midi_file(path: str | os.PathLike, sample_rate: int = 48000) -> MidiSong:
    """Read an SMF type 0/1 file into engine events at ``sample_rate`` (frame 0 = start of the song)."""
    path = Path(path)
    integer_in(sample_rate, "sample rate", 1, unit=" Hz", error=MidiFileError, path=path)
    midi = _open(path)
    smpte_seconds_per_tick, ticks_per_beat = _seconds_per_tick(midi, path)
    tempo_map = _TempoMap(int(sample_rate), smpte_seconds_per_tick
                          or Fraction(DEFAULT_TEMPO_US_PER_BEAT, 1_000_000 * ticks_per_beat))
    rows: list[tuple[int, int, int, int]] = []
    sysex: list[tuple[int, bytes]] = []
    tick = 0
    for tick, message in _merged(midi.tracks):
        kind = message.type
        if kind in _CHANNEL_MESSAGE_TYPES:
            data = message.bytes()
            rows.append((tempo_map.frame(tick), data[0], data[1], data[2] if len(data) > 2 else 0))
        elif kind == "set_tempo" and smpte_seconds_per_tick is None:  # SMPTE timing ignores tempo
            tempo_map.change(tick, Fraction(message.tempo, 1_000_000 * ticks_per_beat))
        elif kind == "sysex":
            sysex.append((tempo_map.frame(tick), bytes(message.bin())))
    events = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return MidiSong(
        source=str(path),
        sample_rate=int(sample_rate),
        frames=np.ascontiguousarray(events[:, 0]),
        status=events[:, 1].astype(np.uint8),
        data1=events[:, 2].astype(np.uint8),
        data2=events[:, 3].astype(np.uint8),
        end_frame=tempo_map.frame(tick),
        sysex=sysex,
    )
