"""The ``wifm play`` command shell (when stdin is a terminal), modelled on FluidSynth's.

Lines are read by a daemon thread and carried out by the main thread, which also prints the player's
notices; events for the engine (program changes, panic) go through the MIDI pump, the event ring's only
producer, so the shell never writes to the ring itself. Every answer is one line or a short table;
an unknown command or bad argument is answered in one line and the shell goes on.
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from wifm_synth.drivers.midi_in import POSTED_ANSWER_S
from wifm_synth.engine.synth import checked_a4_hz, gain_amplitude
from wifm_synth.errors import WifmError
from wifm_synth.formats.bank_json import Bank, load_instrument
from wifm_synth.formats.inputs import instrument_path
from wifm_synth.midi import DRUM_CHANNEL, MIDI_CHANNELS, PROGRAM_CHANGE, STANDARD_A4_HZ

HELP = """commands:
  help               this list
  programs           the instrument's programs
  prog CH N          program N (0-127) on MIDI channel CH (1-16)
  gain DB            master gain in dB (-120..60; 0 = unity)
  tuning A4_HZ       master tuning: the frequency of A4 (400..480; 440 = standard)
  load PATH          play another patch, bank, bank folder or .syx cartridge (no gap; sounding notes ring on)
  voices             voices sounding now
  panic              release every note, reset controllers, on every channel
  status             voices, DSP load, audio underflows, engine-late periods and output limiting since start
  quit               stop playing (also Ctrl-C, Ctrl-D)"""


class PlayShell:
    """Carries out shell lines on a running LivePlayer; ``handle`` returns False on ``quit``."""

    def __init__(self, player, instrument, write: Callable[[str], None] = print,
                 describe_instrument: Callable[[object], str] | None = None):
        self.player = player
        self.instrument = instrument
        self.write = write
        self.describe_instrument = describe_instrument

    def handle(self, line: str) -> bool:
        words = line.split()
        if not words:
            return True
        command, arguments = words[0].lower(), words[1:]
        if command in ("quit", "exit"):
            return False
        handler = getattr(self, f"_command_{command}", None)
        if handler is None:
            self.write(f"unknown command '{command}' (type help)")
            return True
        if command == "load" and arguments:
            arguments = [line.strip()[len(words[0]):].strip()]  # a path may hold spaces
        try:
            handler(*arguments)
        except WifmError as error:
            self.write(f"{command}: {error}")
        except (TypeError, ValueError):
            self.write(f"usage: {next(row.strip() for row in HELP.splitlines() if row.strip().startswith(command))}")
        return True

    def _command_help(self) -> None:
        self.write(HELP)

    def _command_programs(self) -> None:
        if not isinstance(self.instrument, Bank):
            self.write(f"one patch, '{self.instrument.name}', plays every program")
            return
        for program in self.instrument.programs:
            self.write(f"  bank {program.bank} program {program.program:>3} {program.name}")

    def _command_prog(self, channel: str, program: str) -> None:
        channel_number, program_number = int(channel), int(program)
        if not 1 <= channel_number <= MIDI_CHANNELS or not 0 <= program_number <= 127:
            raise ValueError
        if not self._sent(self.player.midi.post_event(PROGRAM_CHANGE | (channel_number - 1), program_number, 0)):
            return
        if channel_number - 1 == DRUM_CHANNEL:
            self.write("channel 10 ignores program changes (it plays the drum program)")
        else:
            self.write(f"channel {channel_number}: program {program_number}")

    def _sent(self, done: threading.Event) -> bool:
        """Whether the MIDI pump took a posted event: the shell answers once it is sent, so that what the
        user plays next comes after it."""
        if done.wait(POSTED_ANSWER_S):
            return True
        self.write("the MIDI thread did not take it (is it stuck?)")
        return False

    def _command_gain(self, decibels: str) -> None:
        gain_db = float(decibels)
        gain_amplitude(gain_db)  # checks the range
        self.player.set_gain(gain_db)
        self.write(f"master gain {gain_db:+.1f} dB")

    def _command_tuning(self, hertz: str) -> None:
        a4_hz = checked_a4_hz(float(hertz))
        self.player.set_tuning(a4_hz)
        self.write(f"tuning A4 = {a4_hz:g} Hz ({1200 * math.log2(a4_hz / STANDARD_A4_HZ):+.2f} cents)")

    def _command_load(self, path: str) -> None:
        instrument = load_instrument(instrument_path(Path(path).expanduser()))
        refusal = self.player.load_instrument(instrument)
        if refusal is not None:
            self.write(f"load: {path}: {refusal}")
            return
        self.instrument = instrument
        programs = f"{len(instrument.programs)} programs" if isinstance(instrument, Bank) else "one patch"
        self.write(f"loaded {path}: '{instrument.name}', {programs}")
        if self.describe_instrument is not None:
            self.write(self.describe_instrument(instrument))

    def _command_voices(self) -> None:
        self.write(f"{self.player.synth.active_voices} voices sounding")

    def _command_panic(self) -> None:
        if self._sent(self.player.midi.post_panic()):
            self.write("all notes off")

    def _command_status(self) -> None:
        stream = self.player.stream
        late = stream.late_periods
        self.write(f"{self.player.synth.active_voices} voices sounding (peak {self.player.synth.peak_voices}), "
                   f"DSP load {100 * stream.cpu_load:.0f} %, {stream.underflows} underflows since start, "
                   f"{late['late']} engine-late periods (CPU time over the {late['period_ms']:.3f} ms period; "
                   f"worst {late['worst_cpu_ms']:.3f} ms), {late['stalled']} stalled (wall time over it; worst "
                   f"{late['worst_ms']:.3f} ms), {self.player.synth.limiting_report() or 'output never limited'}")


def start_line_reader(lines: queue.SimpleQueue) -> threading.Thread:
    """Read stdin lines into ``lines`` on a daemon thread; None marks the end of input (Ctrl-D).

    Reads the file descriptor, not ``sys.stdin``: a daemon thread blocked inside the buffered stdin
    object would make the interpreter abort at exit, when it cannot take that object's lock.
    """

    def read() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(sys.stdin.fileno(), 4096)
            except OSError:
                chunk = b""
            if not chunk:
                lines.put(None)
                return
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                lines.put(line.decode(errors="replace"))

    thread = threading.Thread(target=read, name="wifm-shell", daemon=True)
    thread.start()
    return thread


def shell_wanted(no_shell: bool) -> bool:
    return not no_shell and sys.stdin.isatty()
