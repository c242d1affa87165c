"""Compose samples/gm_song.mid: a short General MIDI song with drums on channel 10 (MIT, part of wifm_synth).

Eight bars in A minor at 112 bpm for a whole GM bank (a SoundFont converted with ``wifm bank FONT.sf2``):
acoustic grand piano, string ensemble, fingered bass, a square lead and a drawbar organ, and the standard
kit on channel 10 (kick, snare, closed and open hi-hat, crash, toms). Written by this tool, no one else's
music.

    python tools/make_gm_song.py [--output samples/gm_song.mid]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mido
from make_demo_midi import TICKS_PER_BEAT, Part, channel_part, conductor_part

from wifm_synth.midi import DRUM_CHANNEL

TEMPO_BPM = 112
BARS = 8
# channel: (name, GM program, CC7 volume, CC10 pan)
CHANNELS = {
    0: ("piano", 0, 100, 54),
    1: ("strings", 48, 80, 84),
    2: ("bass", 33, 105, 64),
    3: ("lead", 80, 90, 40),
    4: ("organ", 16, 70, 74),
}
# One chord per bar: bass root and chord tones (MIDI notes): Am, F, C, G, Am, Dm, E, Am.
CHORDS = [(45, (57, 60, 64)), (41, (57, 60, 65)), (48, (55, 60, 64)), (43, (55, 59, 62)),
          (45, (57, 60, 64)), (38, (57, 62, 65)), (40, (56, 59, 64)), (45, (57, 60, 64))]
LEAD = [(4, 1.5, 76, 90), (5.5, 0.5, 74, 76), (6, 2, 72, 84), (8, 1, 71, 80), (9, 1, 72, 84), (10, 2, 74, 90),
        (12, 3, 71, 86), (16, 1.5, 76, 96), (17.5, 0.5, 77, 80), (18, 2, 76, 90), (20, 1, 74, 84),
        (21, 1, 72, 80), (22, 2, 74, 86), (24, 2, 71, 90), (26, 2, 68, 84), (28, 4, 69, 92)]
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, LOW_TOM, MID_TOM, HIGH_TOM = 36, 38, 42, 46, 49, 45, 47, 50


def melodic(channel: int) -> Part:
    part = channel_part(channel, *CHANNELS[channel])
    for bar, (root, tones) in enumerate(CHORDS):
        start = 4.0 * bar
        if channel == 0:  # piano: chord on 1, arpeggio after
            for note in tones:
                part.note(start, 0.9, note, 72)
            for step, note in enumerate((tones[1], tones[2], tones[0] + 12, tones[2], tones[1], tones[0])):
                part.note(start + 1 + 0.5 * step, 0.45, note, 60 + 4 * (step % 2))
        elif channel == 1:  # strings: whole-bar pads
            for note in tones:
                part.note(start, 3.95, note - 12, 58)
        elif channel == 2:  # bass: root, fifth, octave
            for offset, note in ((0, root), (1.5, root + 7), (2, root + 12), (3, root + 7), (3.5, root)):
                part.note(start + offset, 0.45, note - 12 if note > 52 else note, 96)
        elif channel == 4 and bar >= 4:  # organ joins for the second half
            part.note(start, 3.9, tones[0] + 12, 64)
    if channel == 3:
        for beat, length, note, velocity in LEAD:
            part.note(beat, length, note, velocity)
    return part


def drums() -> Part:
    """Standard kit on channel 10: no program change needed, GM players map it to bank 128."""
    part = Part(DRUM_CHANNEL, "drums")
    part.add(0, "control_change", control=7, value=110)
    for bar in range(BARS):
        start = 4.0 * bar
        if bar in (0, 4):
            part.note(start, 0.5, CRASH, 100)
        for eighth in range(8):
            beat = start + 0.5 * eighth
            hat = OPEN_HAT if eighth == 7 and bar % 2 else CLOSED_HAT
            part.note(beat, 0.25, hat, 84 if eighth % 2 == 0 else 62)
            if eighth in (0, 3, 4):
                part.note(beat, 0.25, KICK, 110)
            if eighth in (2, 6):
                part.note(beat, 0.25, SNARE, 104)
        if bar == BARS - 2:  # fill into the last bar
            for step, tom in enumerate((HIGH_TOM, HIGH_TOM, MID_TOM, LOW_TOM)):
                part.note(start + 2 + 0.5 * step, 0.25, tom, 96)
    part.note(4.0 * BARS, 1.0, CRASH, 110)
    part.note(4.0 * BARS, 0.5, KICK, 110)
    return part


def song() -> mido.MidiFile:
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    for part in [conductor_part("wifm GM song", TEMPO_BPM), *(melodic(channel) for channel in CHANNELS), drums()]:
        midi.tracks.append(part.track())
    return midi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "samples" / "gm_song.mid")
    args = parser.parse_args()
    song().save(args.output)
    print(f"{args.output}: {BARS} bars, GM programs {sorted(p for _, p, _, _ in CHANNELS.values())} and drums on channel 10")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
