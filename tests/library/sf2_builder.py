"""A tiny SoundFont 2 written by hand: RIFF sfbk with INFO, sdta (16-bit samples) and the pdta hydra.

Each preset has one zone pointing at one instrument; each instrument has one zone per sample, with only
the generators a player needs: keyRange, overridingRootKey, sampleModes (loop the sustain for melodic
notes) and sampleID. The layout follows the SoundFont 2.01 chunk order and record sizes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 44100
# Generator operators (SoundFont 2.01 section 8.1.2).
GEN_KEY_RANGE = 43
GEN_INSTRUMENT = 41
GEN_SAMPLE_MODES = 54
GEN_OVERRIDING_ROOT_KEY = 58
GEN_SAMPLE_ID = 53
GEN_RELEASE_VOL_ENV = 38
SAMPLE_PADDING = 46  # zero frames the format requires after each sample


@dataclass
class TinySample:
    name: str
    audio: np.ndarray  # float, ±1
    root_key: int
    loop: bool  # loop the whole sample (sustained melodic notes); drums play once


@dataclass
class TinyInstrument:
    name: str
    zones: list[tuple[int, int, int]]  # (key_lo, key_hi, sample index)


@dataclass
class TinyPreset:
    name: str
    bank: int
    program: int
    instrument: int


@dataclass
class TinySoundFont:
    samples: list[TinySample] = field(default_factory=list)
    instruments: list[TinyInstrument] = field(default_factory=list)
    presets: list[TinyPreset] = field(default_factory=list)


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _list(list_type: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", list_type + b"".join(chunks))


def _name(text: str) -> bytes:
    return text.encode("latin-1")[:19].ljust(20, b"\0")


def _generator(operator: int, amount: int | tuple[int, int]) -> bytes:
    if isinstance(amount, tuple):
        return struct.pack("<HBB", operator, *amount)
    return struct.pack("<Hh", operator, amount)


def sf2_bytes(font: TinySoundFont) -> bytes:
    """The file's bytes."""
    pcm, headers, start = [], [], 0
    for sample in font.samples:
        frames = np.round(np.clip(sample.audio, -1.0, 1.0) * 32767).astype("<i2")
        pcm.append(frames.tobytes() + b"\0\0" * SAMPLE_PADDING)
        end = start + frames.size
        loop_start, loop_end = (start + 8, end - 8) if sample.loop else (start, end)
        headers.append(_name(sample.name) + struct.pack("<IIIIIBbHH", start, end, loop_start, loop_end, RATE,
                                                        sample.root_key, 0, 0, 1))
        start = end + SAMPLE_PADDING
    headers.append(_name("EOS") + bytes(26))

    instrument_headers, bags, generators = [], [], []
    for instrument in font.instruments:
        instrument_headers.append(_name(instrument.name) + struct.pack("<H", len(bags)))
        for key_lo, key_hi, sample_index in instrument.zones:
            bags.append(struct.pack("<HH", len(generators), 0))
            sample = font.samples[sample_index]
            generators.append(_generator(GEN_KEY_RANGE, (key_lo, key_hi)))  # keyRange must come first
            generators.append(_generator(GEN_OVERRIDING_ROOT_KEY, sample.root_key))
            generators.append(_generator(GEN_RELEASE_VOL_ENV, -2400))  # 1/4 s release (timecents)
            generators.append(_generator(GEN_SAMPLE_MODES, 1 if sample.loop else 0))
            generators.append(_generator(GEN_SAMPLE_ID, sample_index))  # sampleID must come last
    instrument_headers.append(_name("EOI") + struct.pack("<H", len(bags)))
    bags.append(struct.pack("<HH", len(generators), 0))
    generators.append(bytes(4))

    preset_headers, preset_bags, preset_generators = [], [], []
    for preset in font.presets:
        preset_headers.append(_name(preset.name) + struct.pack("<HHHIII", preset.program, preset.bank,
                                                              len(preset_bags), 0, 0, 0))
        preset_bags.append(struct.pack("<HH", len(preset_generators), 0))
        preset_generators.append(_generator(GEN_INSTRUMENT, preset.instrument))
    preset_headers.append(_name("EOP") + struct.pack("<HHHIII", 0, 0, len(preset_bags), 0, 0, 0))
    preset_bags.append(struct.pack("<HH", len(preset_generators), 0))
    preset_generators.append(bytes(4))
    no_modulators = bytes(10)  # the terminal modulator record only

    info = _list(b"INFO", _chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", b"EMU8000\0"),
                 _chunk(b"INAM", b"tiny test font\0\0"))
    sdta = _list(b"sdta", _chunk(b"smpl", b"".join(pcm)))
    pdta = _list(b"pdta", _chunk(b"phdr", b"".join(preset_headers)), _chunk(b"pbag", b"".join(preset_bags)),
                 _chunk(b"pmod", no_modulators), _chunk(b"pgen", b"".join(preset_generators)),
                 _chunk(b"inst", b"".join(instrument_headers)), _chunk(b"ibag", b"".join(bags)),
                 _chunk(b"imod", no_modulators), _chunk(b"igen", b"".join(generators)),
                 _chunk(b"shdr", b"".join(headers)))
    return _chunk(b"RIFF", b"sfbk" + info + sdta + pdta)


def _tone(root_key: int, seconds: float, partials: dict[int, float]) -> np.ndarray:
    """A harmonic tone at ``root_key`` whose length holds whole periods (so its loop does not click)."""
    f0 = 440.0 * 2.0 ** ((root_key - 69) / 12)
    t = np.arange(round(seconds * RATE)) / RATE
    return 0.6 * sum(level * np.sin(2 * np.pi * k * f0 * t) for k, level in partials.items())


def tiny_font() -> TinySoundFont:
    """Two melodic presets (a sine-like flute, a brighter organ) and a standard kit (kick, snare, hat)."""
    rng = np.random.default_rng(7)
    t = np.arange(round(0.5 * RATE)) / RATE
    kick = 0.9 * np.sin(2 * np.pi * (55.0 * t + 40.0 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.12)
    snare = (0.5 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.08)
    hat = np.diff(rng.standard_normal(t.size + 1)) * 0.3 * np.exp(-t / 0.04)
    samples = [
        TinySample("flute60", _tone(60, 0.5, {1: 1.0, 2: 0.1}), 60, loop=True),
        TinySample("organ60", _tone(60, 0.5, {1: 0.6, 2: 0.4, 3: 0.3, 4: 0.2}), 60, loop=True),
        TinySample("kick", kick, 36, loop=False),
        TinySample("snare", snare, 38, loop=False),
        TinySample("hat", hat, 42, loop=False),
    ]
    instruments = [
        TinyInstrument("flute", [(0, 127, 0)]),
        TinyInstrument("organ", [(0, 127, 1)]),
        TinyInstrument("kit", [(36, 36, 2), (38, 38, 3), (42, 42, 4)]),
    ]
    presets = [TinyPreset("Tiny Flute", 0, 73, 0), TinyPreset("Tiny Organ", 0, 16, 1),
               TinyPreset("Tiny Kit", 128, 0, 2)]
    return TinySoundFont(samples, instruments, presets)


def write_tiny_sf2(path: Path, font: TinySoundFont | None = None) -> Path:
    path.write_bytes(sf2_bytes(font or tiny_font()))
    return path
