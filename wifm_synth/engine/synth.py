"""Python face of the engine: ``Synth`` (allocate, send events, load patches, render) and ``render_note``."""

from __future__ import annotations

import numpy as np

from wifm_synth.engine.block import process_block
from wifm_synth.engine.commands import (
    COMMAND_LOAD_INSTRUMENT,
    COMMAND_LOAD_PATCH,
    COMMAND_RESET,
    COMMAND_SET_MASTER,
)
from wifm_synth.engine.kernels import channel_gains
from wifm_synth.engine.layout import (
    CHANNEL_EXPRESSION,
    CHANNEL_PAN,
    CHANNEL_VOLUME,
    ENGINE_DROPPED_NOTES,
    ENGINE_FRAMES_OUT,
    ENGINE_INSTRUMENTS_LOADED,
    ENGINE_LIMITED_PEAK_CENTI_DBFS,
    ENGINE_LIMITED_SAMPLES,
    ENGINE_PEAK_VOICES,
    ENGINE_SILENT_DRUM_NOTES,
    ENGINE_STAGED_DRUM_PROGRAM,
    ENGINE_STAGED_EVERY_PROGRAM,
    ENGINE_STAGED_ZONE_ROWS,
    ENGINE_STOLEN_VOICES,
    ENGINE_UNKNOWN_BANK,
    ENGINE_UNKNOWN_CHANNEL,
    ENGINE_UNKNOWN_PLAYING_ROW,
    ENGINE_UNKNOWN_PROGRAM,
    ENGINE_UNKNOWN_PROGRAMS,
    MASTER_A4_HZ,
    MASTER_GAIN,
    RING_WRITE,
    VOICE_PATCH,
    VOICE_STAGE,
    EngineState,
)
from wifm_synth.engine.ring import ring_publish, ring_queued, ring_read_position
from wifm_synth.engine.safety import limiting_notice
from wifm_synth.engine.state import (
    DEFAULT_EVENT_CAPACITY,
    DEFAULT_POLYPHONY,
    FREE,
    UNUSED_ROW,
    allocate_state,
)
from wifm_synth.engine.tables import (
    PROGRAM_BANK,
    PROGRAM_NUMBER,
    ZONE_PATCH,
    CompiledInstrument,
    Instrument,
    compile_instrument,
)
from wifm_synth.errors import InputError
from wifm_synth.formats.bank_json import Bank
from wifm_synth.midi import (
    A4_HZ_HIGHEST,
    A4_HZ_LOWEST,
    CC_BANK_LSB,
    CC_BANK_MSB,
    CONTROL_CHANGE,
    GAIN_DB_HIGHEST,
    GAIN_DB_LOWEST,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    STANDARD_A4_HZ,
)
from wifm_synth.voice.patch import Patch

LIMIT_NOTICE_INTERVAL_S = 10.0  # a live output that keeps being limited is reported at most this often (audio time)


class Synth:
    """A polyphonic FM synthesizer playing a Patch, a Bank, or a list of zone entries.

    ``send`` queues a MIDI message for an absolute frame; ``render`` produces the next frames;
    ``load_patch`` replaces a patch through the same queue, ``set_gain``/``set_tuning``/``reset`` change
    the master settings or reset every channel, and (with ``loadable``) ``load_instrument`` swaps in
    another instrument. The engine state (``self.state``) is what a live driver hands to its audio
    callback. The queue has one producer: call these from one thread at a time.
    """

    def __init__(self, instrument: Instrument, sample_rate: int = 48000, polyphony: int = DEFAULT_POLYPHONY,
                 event_capacity: int = DEFAULT_EVENT_CAPACITY, *, a4_hz: float = STANDARD_A4_HZ,
                 gain_db: float = 0.0, loadable: bool = False):
        compiled = compile_instrument(instrument)
        self.sample_rate = sample_rate
        self.state: EngineState = allocate_state(compiled, sample_rate, polyphony, event_capacity, loadable)
        # patches: one entry per patch_table row (None where no instrument put one)
        self.compiled = compiled._replace(
            patches=compiled.patches + (None,) * (len(self.state.patch_table) - len(compiled.patches)))
        self.state.master[MASTER_A4_HZ] = checked_a4_hz(a4_hz)
        self.state.master[MASTER_GAIN] = gain_amplitude(gain_db)
        self._instrument_loads_posted = 0
        self._reported_unknown_programs = 0
        self._reported_silent_drums = 0
        self._reported_limited = 0
        self._limited_reported_at = -(1 << 62)
        # ring write index at which each staging row was last posted; reusable once the engine read past it
        self._staged_posted_at = [-1] * len(self.state.staged_patches)
        self._next_staged_row = 0

    @property
    def frame(self) -> int:
        """Frames rendered so far (the absolute frame of the next rendered sample)."""
        return int(self.state.engine[ENGINE_FRAMES_OUT])

    @property
    def active_voices(self) -> int:
        return int(np.count_nonzero(self.state.voice_ints[VOICE_STAGE] != FREE))

    @property
    def peak_voices(self) -> int:
        return int(self.state.engine[ENGINE_PEAK_VOICES])

    @property
    def stolen_voices(self) -> int:
        return int(self.state.engine[ENGINE_STOLEN_VOICES])

    @property
    def dropped_notes(self) -> int:
        return int(self.state.engine[ENGINE_DROPPED_NOTES])

    @property
    def limited_samples(self) -> int:
        """Live output samples the safety stage changed (engine/safety.py); 0 for ``render``, which has none."""
        return int(self.state.engine[ENGINE_LIMITED_SAMPLES])

    def limiting_report(self) -> str | None:
        """The safety stage's notice line for everything limited so far, or None."""
        samples = self.limited_samples
        return limiting_notice(samples, int(self.state.engine[ENGINE_LIMITED_PEAK_CENTI_DBFS])) if samples else None

    @property
    def queued_events(self) -> int:
        return int(ring_queued(self.state.ring_indices))

    def send(self, frame: int, status: int, data1: int = 0, data2: int = 0) -> None:
        """Queue one MIDI message (status byte incl. channel) to apply at absolute ``frame``.

        Events are applied in the order sent; one stamped before the current position applies at once.
        """
        for name, value, low, high in (("frame", frame, 0, 1 << 62), ("status", status, 0x80, 0xFF),
                                       ("data1", data1, 0, 127), ("data2", data2, 0, 127)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise InputError(f"MIDI event {name}: must be an integer {low}..{high}, got {value!r}")
        self._publish(frame, status, data1, data2)

    def _publish(self, frame: int, status: int, data1: int, data2: int) -> None:
        if not ring_publish(self.state.ring_events, self.state.ring_indices, frame, status, data1, data2):
            capacity = len(self.state.ring_events)
            raise InputError(f"event queue full ({capacity} events): render before sending more")

    def load_patch(self, row: int, patch: Patch, frame: int | None = None) -> None:
        """Replace patch row ``row`` (``self.compiled.patches[row]``) by ``patch`` at ``frame`` (default: the
        next frame rendered). The audio thread copies it from a staging row when it reaches the command:
        notes already sounding on that row keep sounding, later notes play the new patch."""
        patch_count = len(self.state.patch_table)
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < patch_count:
            raise InputError(f"patch row: must be an integer 0..{patch_count - 1}, got {row!r}")
        if not isinstance(patch, Patch):
            raise InputError(f"load_patch: patch must be a Patch, got {type(patch).__name__}")
        frame = self._frame_or_next(frame, "patch load")
        compiled = compile_instrument(patch)
        staged = self._next_staged_row
        if self._staged_posted_at[staged] >= ring_read_position(self.state.ring_indices):
            raise InputError(f"patch loads queue full ({len(self._staged_posted_at)} loads): render before "
                             f"loading more")
        self.state.staged_patches[staged] = compiled.patch_table[0]
        self.state.staged_routing[staged] = compiled.routing_table[0]
        posted_at = int(self.state.ring_indices[RING_WRITE])
        self._publish(frame, COMMAND_LOAD_PATCH, staged, row)  # its release fence orders the staging writes
        self._staged_posted_at[staged] = posted_at
        self._next_staged_row = (staged + 1) % len(self._staged_posted_at)
        patches = list(self.compiled.patches)
        patches[row] = patch
        self.compiled = self.compiled._replace(patches=tuple(patches))

    def _frame_or_next(self, frame: int | None, what: str) -> int:
        frame = self.frame if frame is None else frame
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or not 0 <= frame <= 1 << 62:
            raise InputError(f"{what} frame: must be an integer 0..{1 << 62}, got {frame!r}")
        return frame

    def set_gain(self, gain_db: float, frame: int | None = None) -> None:
        """Master gain in dB from ``frame`` (default: the next frame rendered), ramped like a volume change."""
        value = np.float64(gain_amplitude(gain_db))
        self._publish(self._frame_or_next(frame, "gain"), COMMAND_SET_MASTER, MASTER_GAIN, int(value.view(np.int64)))

    def set_tuning(self, a4_hz: float, frame: int | None = None) -> None:
        """Tune every voice, sounding or new, so that A4 is ``a4_hz`` from ``frame``."""
        value = np.float64(checked_a4_hz(a4_hz))
        self._publish(self._frame_or_next(frame, "tuning"), COMMAND_SET_MASTER, MASTER_A4_HZ,
                      int(value.view(np.int64)))

    def reset(self, frame: int | None = None) -> None:
        """What a GM System On / GS Reset message does: every channel back to power-on, notes released."""
        self._publish(self._frame_or_next(frame, "reset"), COMMAND_RESET, 0, 0)

    def load_instrument(self, compiled: CompiledInstrument, frame: int | None = None) -> None:
        """Swap in another instrument (``compile_instrument``'s result) at ``frame``, without a gap.

        Its patches are written now into patch rows that neither the playing instrument nor a sounding
        note uses; its program and zone tables are staged and the engine copies them in at the command.
        Sounding notes keep their own rows and ring on; each channel keeps its bank and program number
        and plays that program of the new instrument. Raises InputError when the new instrument does not
        fit the room allocated (``loadable``) or a previous load is still in flight.
        """
        state, engine = self.state, self.state.engine
        frame = self._frame_or_next(frame, "instrument load")
        if engine[ENGINE_INSTRUMENTS_LOADED] != self._instrument_loads_posted:
            raise InputError("an instrument load is still in progress: try again in a moment")
        for what, needed, room in (("programs", len(compiled.program_table), len(state.program_table)),
                                   ("zones", len(compiled.zone_table), len(state.zone_table))):
            if needed > room:
                raise InputError(f"it has {needed} {what}; this player has room for {room}: start "
                                 f"wifm play with it instead")
        in_use = set(self.compiled.zone_table[:, ZONE_PATCH].tolist())
        in_use |= set(state.voice_ints[VOICE_PATCH, state.voice_ints[VOICE_STAGE] != FREE].tolist())
        free_rows = [row for row in range(len(state.patch_table)) if row not in in_use]
        if len(compiled.patch_table) > len(free_rows):
            raise InputError(f"it has {len(compiled.patch_table)} patches; {len(free_rows)} patch rows are free "
                             f"(of {len(state.patch_table)}; notes of earlier instruments may still ring)")
        rows = np.asarray(free_rows[:len(compiled.patch_table)], dtype=np.int64)
        state.patch_table[rows] = compiled.patch_table  # rows no note reads: the audio thread never sees them half-written
        state.routing_table[rows] = compiled.routing_table
        zone_table = compiled.zone_table.copy()
        zone_table[:, ZONE_PATCH] = rows[compiled.zone_table[:, ZONE_PATCH]]
        state.staged_programs[:] = UNUSED_ROW
        state.staged_programs[:len(compiled.program_table)] = compiled.program_table
        state.staged_zones[:len(zone_table)] = zone_table
        engine[ENGINE_STAGED_ZONE_ROWS] = len(zone_table)
        engine[ENGINE_STAGED_DRUM_PROGRAM] = compiled.drum_program
        engine[ENGINE_STAGED_EVERY_PROGRAM] = compiled.plays_every_program
        self._publish(frame, COMMAND_LOAD_INSTRUMENT, 0, 0)  # its release fence orders the writes above
        self._instrument_loads_posted += 1
        patches = list(self.compiled.patches)
        for row, patch in zip(rows.tolist(), compiled.patches, strict=True):
            patches[row] = patch
        self.compiled = compiled._replace(patch_table=state.patch_table, routing_table=state.routing_table,
                                          zone_table=zone_table, patches=tuple(patches))

    def render(self, n_frames: int, dtype=np.float32) -> np.ndarray:
        """The next ``n_frames`` stereo frames as an (n_frames, 2) array."""
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
            raise InputError(f"frame count: must be a non-negative integer, got {n_frames!r}")
        left = np.empty(n_frames, dtype=dtype)
        right = np.empty(n_frames, dtype=dtype)
        process_block(self.state, left, right, n_frames)
        return np.stack([left, right], axis=1)

    def notices(self) -> list[str]:
        """One-line notices the engine raised since the last call (unknown programs, silent drums)."""
        engine = self.state.engine
        lines = []
        unknown = int(engine[ENGINE_UNKNOWN_PROGRAMS])
        if unknown > self._reported_unknown_programs:
            row = int(engine[ENGINE_UNKNOWN_PLAYING_ROW])
            playing = self.compiled.program_table[row]
            more = unknown - self._reported_unknown_programs - 1
            lines.append(f"channel {engine[ENGINE_UNKNOWN_CHANNEL] + 1}: no program {engine[ENGINE_UNKNOWN_BANK]}:"
                         f"{engine[ENGINE_UNKNOWN_PROGRAM]} in the instrument, playing "
                         f"{playing[PROGRAM_BANK]}:{playing[PROGRAM_NUMBER]} instead"
                         + (f" (and {more} more program changes like it)" if more else ""))
            self._reported_unknown_programs = unknown
        silent = int(engine[ENGINE_SILENT_DRUM_NOTES])
        if silent > self._reported_silent_drums:
            if self._reported_silent_drums == 0:
                lines.append("channel 10 (drums): the instrument has no drum program, its notes are silent")
            self._reported_silent_drums = silent
        frame = self.frame
        if self.limited_samples > self._reported_limited and \
                frame - self._limited_reported_at >= LIMIT_NOTICE_INTERVAL_S * self.sample_rate:
            lines.append(f"{self.limiting_report()} so far")
            self._reported_limited, self._limited_reported_at = self.limited_samples, frame
        return lines


def checked_a4_hz(a4_hz: float) -> float:
    if isinstance(a4_hz, bool) or not isinstance(a4_hz, (int, float, np.integer, np.floating)) \
            or not A4_HZ_LOWEST <= a4_hz <= A4_HZ_HIGHEST:
        raise InputError(f"tuning: A4 must be {A4_HZ_LOWEST:g}..{A4_HZ_HIGHEST:g} Hz, got {a4_hz!r}")
    return float(a4_hz)


def gain_amplitude(gain_db: float) -> float:
    """A master gain in dB as an amplitude factor."""
    if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float, np.integer, np.floating)) \
            or not GAIN_DB_LOWEST <= gain_db <= GAIN_DB_HIGHEST:
        raise InputError(f"gain: must be {GAIN_DB_LOWEST:g}..{GAIN_DB_HIGHEST:g} dB, got {gain_db!r}")
    return 10.0 ** (gain_db / 20.0)


def render_note(patch: Patch | Bank, note: int, velocity: int = 100, hold_s: float = 2.0, tail_s: float = 1.0,
                sample_rate: int = 48000, program: tuple[int, int] | None = None,
                a4_hz: float = STANDARD_A4_HZ) -> np.ndarray:
    """One note of ``patch`` through the live engine: key down for ``hold_s``, then ``tail_s`` of release.

    ``patch`` may be a Bank: ``program`` = (bank, program) is selected first (default: the bank's first
    program), and the zone for the key and velocity plays. Returns mono float64 at the patch's own scale
    (a carrier of level 1.0 peaks at 1.0): the channel's default volume and centre pan are divided out.
    """
    if not isinstance(patch, (Patch, Bank)):
        raise InputError(f"render_note: patch must be a Patch or Bank, got {type(patch).__name__}")
    if isinstance(note, bool) or not isinstance(note, (int, np.integer)) or not 0 <= note <= 127:
        raise InputError(f"note: must be a MIDI note 0..127, got {note!r}")
    if isinstance(velocity, bool) or not isinstance(velocity, (int, np.integer)) or not 1 <= velocity <= 127:
        raise InputError(f"velocity: must be 1..127, got {velocity!r}")
    for name, seconds in (("hold_s", hold_s), ("tail_s", tail_s)):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
                or not 0.0 <= seconds <= 600.0:
            raise InputError(f"{name}: must be 0..600 seconds, got {seconds!r}")
    synth = Synth(patch, sample_rate=sample_rate, polyphony=2, event_capacity=8, a4_hz=a4_hz)
    if isinstance(patch, Bank):
        bank_number, program_number = program if program is not None else \
            (patch.programs[0].bank, patch.programs[0].program)
        synth.send(0, CONTROL_CHANGE, CC_BANK_MSB, bank_number >> 7)
        synth.send(0, CONTROL_CHANGE, CC_BANK_LSB, bank_number & 0x7F)
        synth.send(0, PROGRAM_CHANGE, program_number)
    hold_frames = round(hold_s * sample_rate)
    synth.send(0, NOTE_ON, int(note), int(velocity))
    synth.send(hold_frames, NOTE_OFF, int(note), 0)
    stereo = synth.render(hold_frames + round(tail_s * sample_rate), dtype=np.float64)
    channel_ints = synth.state.channel_ints
    left_gain, right_gain = channel_gains(float(channel_ints[CHANNEL_VOLUME, 0]),
                                          float(channel_ints[CHANNEL_EXPRESSION, 0]),
                                          float(channel_ints[CHANNEL_PAN, 0]))
    return (stereo[:, 0] + stereo[:, 1]) / (left_gain + right_gain)
