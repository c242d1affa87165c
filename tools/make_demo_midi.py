"""Compose samples/demo.mid: a short five-instrument piece for the demo bank (MIT, part of wifm_synth).

General MIDI programs 0 piano, 4 electric piano, 33 finger bass, 56 trumpet, 73 flute — the
instruments of the bundled samples. Ten bars in F major at 96 bpm with a ritardando at the end; the
piano uses the sustain pedal, the trumpet scoops into notes with pitch bend, dynamics vary throughout.

    python tools/make_demo_midi.py [--output samples/demo.mid]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mido

TICKS_PER_BEAT = 480
BEATS_PER_BAR = 4
TEMPO_BPM = 96
RITARDANDO_BPM = [(36.0, 88), (37.0, 80), (38.0, 72), (39.0, 64)]  # (beat, bpm) in the last bar

PIANO, EPIANO, BASS, TRUMPET, FLUTE = range(5)
# channel: (name, GM program, CC7 volume, CC10 pan); volumes balance the bank fitted from samples/freepats
CHANNELS = {
    PIANO: ("piano", 0, 110, 64),
    EPIANO: ("electric piano", 4, 85, 40),
    BASS: ("bass", 33, 100, 64),
    TRUMPET: ("trumpet", 56, 127, 84),
    FLUTE: ("flute", 73, 100, 48),
}

# One chord per half bar: (root for the bass, chord tones for the keyboards), MIDI notes.
F, DM, BB, C, AM, C7 = (
    (41, (53, 57, 60)), (38, (50, 53, 57)), (34, (50, 53, 58)), (36, (52, 55, 60)), (33, (52, 57, 60)),
    (36, (52, 55, 58, 60)),
)
HALF_BAR_CHORDS = [F, F, DM, DM, BB, BB, C, C, F, F, AM, AM, BB, BB, C7, C7, DM, BB, C, F]

# Melodies as (start beat, length in beats, note, velocity).
FLUTE_MELODY = [
    (0, 1.5, 81, 72), (1.5, 0.5, 79, 60), (2, 1, 77, 66), (3, 1, 84, 80),
    (4, 2, 81, 76), (6, 1, 77, 62), (7, 1, 74, 58),
    (8, 1.5, 77, 70), (9.5, 0.5, 79, 64), (10, 1, 81, 78), (11, 1, 82, 84),
    (12, 3, 79, 74),
    (32, 1, 81, 64), (33, 1, 77, 58), (34, 1, 74, 60), (35, 1, 77, 70),
    (36, 2, 76, 66), (38, 2.5, 77, 54),
]
TRUMPET_MELODY = [
    (16, 1, 72, 96), (17, 1, 69, 78), (18, 1, 65, 72), (19, 1, 69, 84),
    (20, 2, 72, 100), (22, 1, 64, 70), (23, 1, 69, 80),
    (24, 1.5, 74, 110), (25.5, 0.5, 72, 84), (26, 1, 70, 80), (27, 1, 74, 92),
    (28, 3, 72, 104), (31, 1, 70, 76),
    (36, 4.5, 69, 60),
]
SCOOPED_BEATS = (16, 24)  # trumpet notes that start a whole tone flat and bend up over half a beat


def tick(beat: float) -> int:
    return round(beat * TICKS_PER_BEAT)


class Part:
    """Events of one track at absolute ticks, written out with delta times."""

    def __init__(self, channel: int | None, name: str):
        self.channel = channel
        self.events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []
        self.meta(0, "track_name", name=name)

    def add(self, beat: float, kind: str, priority: int = 1, **fields) -> None:
        # At equal ticks, note-offs (priority 0) go before other events so re-struck notes are not cut.
        self.events.append((tick(beat), priority, mido.Message(kind, channel=self.channel, **fields)))

    def meta(self, beat: float, kind: str, **fields) -> None:
        self.events.append((tick(beat), 1, mido.MetaMessage(kind, **fields)))

    def note(self, beat: float, length: float, note: int, velocity: int) -> None:
        self.add(beat, "note_on", note=note, velocity=velocity)
        self.add(beat + length, "note_off", priority=0, note=note, velocity=64)

    def track(self) -> mido.MidiTrack:
        track, now = mido.MidiTrack(), 0
        for at, _, message in sorted(self.events, key=lambda event: event[:2]):
            track.append(message.copy(time=at - now))
            now = at
        return track


def conductor_part(title: str, bpm: float) -> Part:
    """The first track: the song's title, 4/4 and its tempo."""
    part = Part(None, title)
    part.meta(0, "time_signature", numerator=4, denominator=4)
    part.meta(0, "set_tempo", tempo=mido.bpm2tempo(bpm))
    return part


def channel_part(channel: int, name: str, program: int, volume: int, pan: int) -> Part:
    """A track for one channel, starting with its GM program, volume (CC7) and pan (CC10)."""
    part = Part(channel, name)
    part.add(0, "program_change", program=program)
    part.add(0, "control_change", control=7, value=volume)
    part.add(0, "control_change", control=10, value=pan)
    return part


def conductor() -> Part:
    part = conductor_part("wifm demo", TEMPO_BPM)
    for beat, bpm in RITARDANDO_BPM:
        part.meta(beat, "set_tempo", tempo=mido.bpm2tempo(bpm))
    return part


def instrument_part(channel: int) -> Part:
    return channel_part(channel, *CHANNELS[channel])


def piano() -> Part:
    """Eighth-note arpeggios, pedal changed with every chord (lifted just before, pressed just after)."""
    part = instrument_part(PIANO)
    for half_bar, (_, tones) in enumerate(HALF_BAR_CHORDS):
        start = half_bar * 2.0
        part.add(start + 0.05, "control_change", control=64, value=127)
        part.add(start + 1.95, "control_change", control=64, value=0)
        pattern = [tones[0], tones[1], tones[2], tones[1] + 12]
        crescendo = 48 + 2 * half_bar
        for step, note in enumerate(pattern):
            accent = 14 if step == 0 else 0
            part.note(start + 0.5 * step, 0.45, note, min(crescendo + accent, 110))
    last = len(HALF_BAR_CHORDS) * 2.0
    part.note(last, 3.0, 41, 70)  # final low F under the last flute note
    part.add(last + 3.5, "control_change", control=64, value=0)
    return part


def electric_piano() -> Part:
    """Off-beat chords from bar 5 on, softer on the 'and'."""
    part = instrument_part(EPIANO)
    for half_bar, (_, tones) in enumerate(HALF_BAR_CHORDS[8:], start=8):
        start = half_bar * 2.0
        for offset, velocity in ((1.0, 62), (1.5, 44)):
            for note in tones:
                part.note(start + offset, 0.4, note + 12, velocity)
    return part


def bass() -> Part:
    """Roots on beats 1 and 3, with a chromatic approach note into each new bar."""
    part = instrument_part(BASS)
    for half_bar, (root, _) in enumerate(HALF_BAR_CHORDS):
        start = half_bar * 2.0
        if half_bar % 2 == 0:
            part.note(start, 1.9, root, 108)
        else:
            part.note(start, 1.4, root + 12 if root < 36 else root, 88)
            next_root = HALF_BAR_CHORDS[(half_bar + 1) % len(HALF_BAR_CHORDS)][0]
            part.note(start + 1.5, 0.45, next_root - 1, 74)
    part.note(len(HALF_BAR_CHORDS) * 2.0, 3.0, 29, 96)
    return part


def trumpet() -> Part:
    part = instrument_part(TRUMPET)
    for start, length, note, velocity in TRUMPET_MELODY:
        if start in SCOOPED_BEATS:
            # Pitch bend −4096 is a whole tone down with the default ±2 semitone range.
            part.add(start, "pitchwheel", priority=0, pitch=-4096)
            for step in range(1, 9):
                part.add(start + step / 16, "pitchwheel", pitch=-4096 + 512 * step)
        part.note(start, length, note, velocity)
    return part


def flute() -> Part:
    part = instrument_part(FLUTE)
    for start, length, note, velocity in FLUTE_MELODY:
        part.note(start, length, note, velocity)
    return part


def compose() -> mido.MidiFile:
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    for part in (conductor(), piano(), electric_piano(), bass(), trumpet(), flute()):
        midi.tracks.append(part.track())
    return midi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "samples" / "demo.mid")
    args = parser.parse_args()
    midi = compose()
    midi.save(args.output)
    print(f"{args.output}: {midi.length:.1f} s, {sum(len(track) for track in midi.tracks)} events")


if __name__ == "__main__":
    main()
