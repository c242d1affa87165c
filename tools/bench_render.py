"""Benchmark: offline MIDI rendering speed (× real time) on a dense General MIDI song.

Generates (with mido, in a temporary folder) a ~60 s type 1 file: 10 channels incl. drums on
channel 10, many overlapping notes, sustain pedals, pitch bends, program changes and tempo changes.
Renders it once to warm the JIT caches, then measures a second render.

    python tools/bench_render.py --json [--instrument BANK_OR_PATCH] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import mido
import numpy as np
from benchmark_info import machine_info

from wifm_synth.drivers.render_midi import render_midi_file
from wifm_synth.formats.bank_json import Bank, load_bank, load_instrument, save_bank
from wifm_synth.midi import DRUM_CHANNEL

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_BANK = REPO_ROOT / "tests" / "data" / "banks" / "test_bank.json"
TICKS_PER_BEAT = 480
GM_PROGRAMS = [0, 4, 33, 56, 73, 24, 40, 48, 19, 81]
TEMPI_BPM = [120, 132, 108, 140, 96]


def dense_song(seconds: float, seed: int = 1) -> mido.MidiFile:
    """A busy 10-channel song: chords, runs and drums, pedals, bends, program and tempo changes."""
    rng = np.random.default_rng(seed)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    beats = int(seconds * np.mean(TEMPI_BPM) / 60)
    conductor = [(0, mido.MetaMessage("time_signature", numerator=4, denominator=4))]
    for index, bpm in enumerate(TEMPI_BPM):  # tempo changes spread evenly over the song
        conductor.append((index * beats * TICKS_PER_BEAT // len(TEMPI_BPM),
                          mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
    midi.tracks.append(_track(conductor))
    for channel in range(10):
        events = []
        for section in range(0, beats, 16):  # a program change every 4 bars
            events.append((section * TICKS_PER_BEAT, mido.Message(
                "program_change", channel=channel, program=int(GM_PROGRAMS[(channel + section // 16) % 10]))))
        for beat in range(beats):
            start = beat * TICKS_PER_BEAT
            if channel != DRUM_CHANNEL and beat % 4 == 0:  # pedal down for each bar
                events.append((start + 10, mido.Message("control_change", channel=channel, control=64, value=127)))
                events.append((start + 4 * TICKS_PER_BEAT - 10,
                               mido.Message("control_change", channel=channel, control=64, value=0)))
            if channel % 3 == 1 and beat % 8 == 4:  # a bend up and back over one beat
                for step in range(9):
                    bend = int(4096 * np.sin(np.pi * step / 8))
                    events.append((start + step * TICKS_PER_BEAT // 8,
                                   mido.Message("pitchwheel", channel=channel, pitch=bend)))
            notes_per_beat = 4 if channel == DRUM_CHANNEL else int(rng.integers(1, 4))
            for step in range(notes_per_beat):
                on = start + step * TICKS_PER_BEAT // notes_per_beat
                length = int(rng.integers(TICKS_PER_BEAT // 4, 3 * TICKS_PER_BEAT))
                low = 35 if channel == DRUM_CHANNEL else 36 + channel * 3  # each channel its own register
                key = int(rng.integers(low, low + 24))
                velocity = int(rng.integers(30, 128))
                events.append((on, mido.Message("note_on", channel=channel, note=key, velocity=velocity)))
                events.append((on + length, mido.Message("note_off", channel=channel, note=key, velocity=64)))
        midi.tracks.append(_track(events))
    return midi


def _track(events: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    track, now = mido.MidiTrack(), 0
    for at, message in sorted(events, key=lambda event: event[0]):
        track.append(message.copy(time=at - now))
        now = at
    return track


def bench_bank(folder: Path) -> Path:
    """The test bank with its bass program also playing channel 10, so the drum channel sounds."""
    bank = load_bank(TEST_BANK)
    with_drums = Bank(programs=bank.programs, name="bench", drums=(0, 33), patches=bank.patches)
    save_bank(with_drums, folder / "bench_bank.json")
    return folder / "bench_bank.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary line")
    parser.add_argument("--instrument", type=Path, help="patch or bank to render with (default: the test bank)")
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate song length")
    parser.add_argument("--sample-rate", type=int, default=48000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        instrument_path = args.instrument or bench_bank(folder)
        song_path = folder / "dense.mid"
        dense_song(args.seconds).save(song_path)
        instrument = load_instrument(instrument_path)
        warm = time.perf_counter()
        render_midi_file(instrument, song_path, folder / "warm.wav", args.sample_rate, progress=False,
                         notify=lambda message: None)
        warm_seconds = time.perf_counter() - warm
        cpu_started = time.process_time()
        summary = render_midi_file(instrument, song_path, folder / "out.wav", args.sample_rate, progress=False,
                                   notify=lambda message: None)
        cpu_seconds = time.process_time() - cpu_started
    result = {
        "benchmark": "render_midi",
        "instrument": str(instrument_path if args.instrument else "tests/data/banks/test_bank.json + drums"),
        "sample_rate": args.sample_rate,
        "seconds_audio": summary["seconds_audio"],
        "seconds_wall": summary["seconds_wall"],
        "realtime_factor": summary["realtime_factor"],
        "engine_realtime_factor": summary["engine_realtime_factor"],
        # CPU time of this process: the figure that holds when other work shares the cores.
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_realtime_factor": round(summary["seconds_audio"] / cpu_seconds, 1),
        "first_run_seconds_incl_jit": round(warm_seconds, 3),
        "events": summary["events"],
        "notes": summary["notes"],
        "peak_voices": summary["peak_voices"],
        "stolen_voices": summary["stolen_voices"],
        "target_realtime_factor": 50,
        "machine": machine_info("mido"),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['seconds_audio']:.1f} s of audio in {result['seconds_wall']:.2f} s: "
              f"{result['realtime_factor']}x real time, {result['events']} events, peak {result['peak_voices']} voices")


if __name__ == "__main__":
    main()
