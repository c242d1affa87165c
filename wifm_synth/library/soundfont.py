"""SoundFont 2 → programs and notes to fit: each chosen preset played by FluidSynth at chosen keys and velocities.

``wifm bank FILE.sf2`` plans one program per preset (its bank and program, its name; bank 128 is a drum kit,
one patch per key), with one entry per (key, velocity). FluidSynth itself, through the ``pyfluidsynth``
binding and offline (no audio driver), plays each note that is not already cached — held ``HOLD_S``, then
``TAIL_S`` of release — into a FLAC file in the bank folder's ``.soundfont/`` (FluidSynth's own 16-bit
stereo output, compressed losslessly: a General MIDI set is about 2000 notes, and the files stay as the
targets ``wifm report`` compares with); from there it is fitted like any sample. An entry's cache key is
the SoundFont's content hash, the preset, key, velocity and the render settings, so a re-run neither
renders nor fits what it already has.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wifm_synth.errors import InputError
from wifm_synth.formats.atomic import atomic_output
from wifm_synth.formats.sf2 import DRUM_BANK, MAX_BANK, Sf2Preset, read_presets
from wifm_synth.library.discover import ProgramPlan, SampleEntry
from wifm_synth.library.naming import note_name

RENDER_FOLDER = ".soundfont"
SAMPLE_RATE = 48000
HOLD_S = 2.0
TAIL_S = 1.0
# FluidSynth's output gain: its default (0.2) leaves one note 30 dB below full scale in 16-bit output.
GAIN = 1.0
# Melodic presets are played from C1 to C8; a drum kit at every key of the GM percussion map and the
# extended kits' keys around it.
MELODIC_KEYS = (24, 108)
DRUM_KEYS = (27, 87)
# A render whose peak stays below this many steps of 16-bit output is silence: the preset has no sample at
# that key or velocity.
SILENT_PEAK = 4
DEFAULT_VELOCITIES = (100,)
MISSING_FLUIDSYNTH = "SoundFont input needs FluidSynth (pip install 'wifm_synth[sf2]' and libfluidsynth)"
_UNSAFE = re.compile(r"[^A-Za-z0-9#._-]+")


def load_fluidsynth(source: Path):
    """The ``fluidsynth`` binding module, or InputError naming what to install."""
    try:
        import fluidsynth
    except (ImportError, OSError):  # the binding, or the library it loads, is missing
        raise InputError(MISSING_FLUIDSYNTH, source) from None
    if not hasattr(fluidsynth, "Synth"):  # an unrelated package of the same name
        raise InputError(MISSING_FLUIDSYNTH, source)
    _silence_fluidsynth_log(fluidsynth)
    return fluidsynth


def _silence_fluidsynth_log(fluidsynth) -> None:
    """Stop libfluidsynth printing its own errors: each becomes one ``wifm: error`` line here instead."""
    library = getattr(fluidsynth, "_fl", None)
    setter = getattr(library, "fluid_set_log_function", None)
    if setter is None:
        return
    setter.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    for level in range(5):  # panic, error, warning, information, debug: a null function drops the level
        setter(level, None, None)


@dataclass
class SoundFontEntry(SampleEntry):
    """A note of a SoundFont preset: the sample is FluidSynth's render, written before it is fitted."""

    preset: Sf2Preset | None = None
    soundfont: Path | None = None
    soundfont_sha256: str = ""

    def identity(self) -> dict:
        """What decides the rendered note (the cache key's stand-in for the rendered file's bytes)."""
        return {"soundfont_sha256": self.soundfont_sha256, "bank": self.preset.bank, "program": self.preset.program,
                "key": self.note, "velocity": self.velocity,
                "render": {"rate": SAMPLE_RATE, "hold_s": HOLD_S, "tail_s": TAIL_S, "gain": GAIN}}


def parse_preset_list(text: str, source: Path) -> set[tuple[int, int]] | None:
    """``0-127,128:0`` → the set of (bank, program) it names (a number alone is bank 0); None for ``all``."""
    if text.strip().lower() in ("", "all"):
        return None
    chosen: set[tuple[int, int]] = set()
    for item in text.split(","):
        match = re.fullmatch(r"\s*(?:(\d+):)?(\d+)(?:-(\d+))?\s*", item)
        if not match:
            raise InputError(f"--presets: {item.strip()!r} is not PROGRAM, FIRST-LAST or BANK:PROGRAM", source)
        bank = int(match[1]) if match[1] is not None else 0
        first, last = int(match[2]), int(match[3]) if match[3] is not None else int(match[2])
        if bank > MAX_BANK or not 0 <= first <= last <= 127:
            raise InputError(f"--presets: {item.strip()!r} is out of range (bank 0..{MAX_BANK}, program 0..127, "
                             f"first ≤ last)", source)
        chosen.update((bank, program) for program in range(first, last + 1))
    return chosen


def parse_velocities(text: str, source: Path) -> tuple[int, ...]:
    """``40,100`` → (40, 100)."""
    try:
        velocities = tuple(sorted({int(item) for item in text.split(",")}))
    except ValueError:
        raise InputError(f"--velocities: expected numbers separated by commas, got {text!r}", source) from None
    if not velocities or not all(1 <= velocity <= 127 for velocity in velocities):
        raise InputError(f"--velocities: each must be 1..127, got {text!r}", source)
    return velocities


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._") or "preset"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_soundfont(source: Path, out_dir: Path, *, presets: str | None = None, keys_every: int = 6,
                   velocities: str | None = None) -> list[ProgramPlan]:
    """One program per chosen preset of ``source`` (drum kits: is_drums, every key), nothing written yet."""
    load_fluidsynth(source)
    if not 1 <= keys_every <= 127:
        raise InputError(f"--keys must be 1..127 semitones, got {keys_every}", source)
    available = read_presets(source)
    wanted = parse_preset_list(presets or "", source)
    chosen = [preset for preset in available if wanted is None or (preset.bank, preset.program) in wanted]
    if not chosen:
        have = ", ".join(f"{preset.bank}:{preset.program}" for preset in available[:8])
        raise InputError(f"--presets {presets} selects none of its {len(available)} presets ({have}…)", source)
    levels = parse_velocities(velocities, source) if velocities else DEFAULT_VELOCITIES
    NoteRenderer(source).close()  # FluidSynth must accept the file before anything is written
    digest = _file_sha256(source)
    plans = []
    for preset in chosen:
        folder = f"{preset.bank:03d}-{preset.program:03d}_{_safe(preset.name)}"
        low, high = DRUM_KEYS if preset.is_drum_kit else MELODIC_KEYS
        keys = range(low, high + 1) if preset.is_drum_kit else range(low, high + 1, keys_every)
        entries = [
            SoundFontEntry(
                label=f"{preset.bank}:{preset.program} {preset.name} {note_name(key)} v{velocity}",
                path=out_dir / RENDER_FOLDER / folder / f"{key:03d}_v{velocity:03d}.flac",
                patch_file=f"{folder}/{note_name(key)}_{key}_v{velocity}.json", note=key, velocity=velocity,
                layer_velocity=velocity, preset=preset, soundfont=source, soundfont_sha256=digest)
            for key in keys for velocity in levels]
        plans.append(ProgramPlan(name=preset.name, program=preset.program, folder=folder, entries=entries,
                                 bank=preset.bank, is_drums=preset.bank == DRUM_BANK))
    return plans


class NoteRenderer:
    """One FluidSynth instance with the SoundFont loaded, rendering single notes offline."""

    def __init__(self, source: Path):
        fluidsynth = load_fluidsynth(source)
        self._synth = fluidsynth.Synth(gain=GAIN, samplerate=float(SAMPLE_RATE),
                                       **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        self._font = self._synth.sfload(str(source))
        if self._font < 0:
            self._synth.delete()
            raise InputError("FluidSynth cannot load this SoundFont", source)

    def render(self, preset: Sf2Preset, key: int, velocity: int) -> np.ndarray:
        """FluidSynth's 16-bit stereo frames (frames × 2) at SAMPLE_RATE: the key held HOLD_S, then TAIL_S
        after note-off."""
        channel = 9 if preset.is_drum_kit else 0  # FluidSynth's drum channel, as GM players use for kits
        self._synth.program_select(channel, self._font, preset.bank, preset.program)
        self._synth.noteon(channel, key, velocity)
        held = self._synth.get_samples(round(HOLD_S * SAMPLE_RATE))
        self._synth.noteoff(channel, key)
        tail = self._synth.get_samples(round(TAIL_S * SAMPLE_RATE))
        self._synth.all_sounds_off(channel)  # the next note starts from silence
        self._synth.get_samples(256)
        return np.concatenate([held, tail]).astype(np.int16).reshape(-1, 2)

    def close(self) -> None:
        self._synth.delete()


def render_entries(entries: list[SoundFontEntry]) -> list[SoundFontEntry]:
    """Write the audio file of each entry that has none yet; entries whose render is silent are marked skipped
    (the preset has no sample there) and returned."""
    import soundfile

    silent = []
    renderers: dict[Path, NoteRenderer] = {}
    try:
        for entry in entries:
            if entry.path.is_file():
                continue
            if entry.soundfont not in renderers:
                renderers[entry.soundfont] = NoteRenderer(entry.soundfont)
            frames = renderers[entry.soundfont].render(entry.preset, entry.note, entry.velocity)
            if np.abs(frames.astype(np.int32)).max() < SILENT_PEAK:
                entry.status, entry.detail = "skipped", f"silent at key {entry.note} velocity {entry.velocity}"
                silent.append(entry)
                continue
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(entry.path) as temporary:
                soundfile.write(temporary, frames, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    finally:
        for renderer in renderers.values():
            renderer.close()
    return silent
