"""The ``wifm`` command: fit, render, play, devices, bank, report.

Each subcommand imports its machinery lazily so that ``wifm devices`` does not pay for the fitter and
``wifm fit`` does not open audio devices. User errors (WifmError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from wifm_synth import __version__
from wifm_synth.errors import WifmError


def _number_in(convert, low, high, what: str):
    """An argparse type: ``convert(text)`` within [low, high], else a one-line usage error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not low <= value <= high:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"{what} must be {low}..{high}, got {text}")
        return value

    return parse


_midi_note = _number_in(int, 0, 127, "MIDI note")
_program = _number_in(int, 0, 127, "program")
_velocity = _number_in(int, 1, 127, "velocity")
_seconds = _number_in(float, 0.0, 600.0, "seconds")
_sample_rate = _number_in(int, 8000, 384000, "sample rate")
_period = _number_in(int, 16, 8192, "period (frames)")
_polyphony = _number_in(int, 1, 4096, "polyphony")
_jobs = _number_in(int, 1, 1024, "jobs")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _print_error(error: WifmError) -> None:
    print(f"wifm: error: {error}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    print(f"wifm: {message}", file=sys.stderr)


def cmd_fit(args: argparse.Namespace) -> int:
    from wifm_synth.fit.fitter import FitSettings, fit_file
    from wifm_synth.formats.atomic import source_reference
    from wifm_synth.formats.patch_json import save_patch

    started = time.perf_counter()
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        raise WifmError("the output would overwrite the input sample; choose another -o", args.output)
    settings = FitSettings(ops=args.ops, loss=args.loss, method=args.method)
    result = fit_file(args.input, note=args.note, settings=settings)
    for warning in result.analysis.warnings:
        _warn(f"{args.input}: {warning}")
    result.patch.metadata["source"] = source_reference(args.input, args.output)
    save_patch(result.patch, args.output)
    summary = {
        "output": str(args.output),
        "f0_hz": round(result.analysis.f0_hz, 3),
        "midi_note": result.patch.pitch.reference_note,
        "ratios": result.ratios,
        "loss": result.loss,
        "loss_kind": args.loss,
        "method": args.method,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        ratios = ", ".join(f"{ratio:g}" for ratio in result.ratios)
        print(
            f"{args.output}: f0 {summary['f0_hz']:.2f} Hz (MIDI {summary['midi_note']}), ratios {ratios}, "
            f"{args.loss} loss {result.loss:.4g}, {summary['seconds']:.2f} s"
        )
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    if args.midi is not None:
        from wifm_synth.drivers.render_midi import render_midi_command

        summary = render_midi_command(args.instrument, args.midi, args.output, sample_rate=args.sample_rate,
                                      max_seconds=args.max_seconds)
        print(json.dumps(summary) if args.json else f"{args.output}: {summary.get('seconds_audio', 0):.1f} s of audio")
        return 0
    if args.note is None:
        raise WifmError("render needs --note MIDI (one note) or --midi SONG.mid", args.instrument)
    from wifm_synth.drivers.wav import write_wav
    from wifm_synth.engine import render_note
    from wifm_synth.formats.bank_json import Bank, load_instrument

    instrument = load_instrument(args.instrument)
    program = None
    if args.program is not None:
        if not isinstance(instrument, Bank):
            raise WifmError("--program applies to banks; this is a single patch", args.instrument)
        matches = sorted((entry.bank, entry.program) for entry in instrument.programs if entry.program == args.program)
        if not matches:
            available = ", ".join(str(entry.program) for entry in instrument.programs)
            raise WifmError(f"the bank has no program {args.program} (it has {available})", args.instrument)
        program = matches[0]
    audio = render_note(
        instrument, args.note, velocity=args.velocity, hold_s=args.hold, tail_s=args.tail,
        sample_rate=args.sample_rate, program=program,
    )
    write_wav(args.output, audio, args.sample_rate)
    if args.json:
        print(json.dumps({"output": str(args.output), "seconds_audio": len(audio) / args.sample_rate}))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from wifm_synth.drivers.audio_out import AudioHostLost
    from wifm_synth.drivers.live import play_command

    try:
        return play_command(
            args.instrument,
            midi_in=args.midi_in,
            audio_out=args.audio_out,
            period=args.period,
            polyphony=args.polyphony,
            sample_rate=args.sample_rate,
        )
    except AudioHostLost as error:
        # Leave without the exit hooks: PortAudio's would block or abort on the dead server's clients.
        _print_error(error)
        sys.stdout.flush()
        os._exit(error.exit_status)


def cmd_devices(args: argparse.Namespace) -> int:
    from wifm_synth.drivers.live import devices_command

    return devices_command(as_json=args.json)


def cmd_bank(args: argparse.Namespace) -> int:
    from wifm_synth.bank.build import bank_command

    try:
        return bank_command(args.source, args.output, name=args.name, program=args.program, jobs=args.jobs,
                            dask_scheduler=args.dask_scheduler, ops=args.ops, as_json=args.json,
                            fill_gaps=args.fill_gaps)
    except KeyboardInterrupt:
        # Every finished fit is cached and its patch written, so a re-run picks up where this one stopped.
        print("wifm: interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


def cmd_report(args: argparse.Namespace) -> int:
    from wifm_synth.report import report_command

    return report_command(args.instrument, args.output)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wifm", description="Learn FM patches from recorded notes and play them.")
    parser.add_argument("--version", action="version", version=f"wifm_synth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit an FM patch to a recorded note")
    fit.add_argument("input", type=Path, help="audio file (WAV, FLAC, AIFF, OGG)")
    fit.add_argument("-o", "--output", type=Path, required=True, help="patch file to write (.json)")
    fit.add_argument("--note", type=_midi_note, help="MIDI note of the sample (checked against the detected pitch)")
    fit.add_argument("--ops", type=int, default=2, help="number of FM operators (default 2)")
    fit.add_argument("--loss", choices=["w1", "mse", "sinkhorn"], default="w1", help="spectral loss (default w1)")
    fit.add_argument("--method", choices=["wifm", "seed"], default="wifm", help="fitting method (default wifm)")
    fit.add_argument("--json", action="store_true", help="print one JSON object")
    fit.set_defaults(handler=cmd_fit)

    render = commands.add_parser("render", help="render a note or a MIDI file to a WAV file")
    render.add_argument("instrument", type=Path, help="patch (.json) or bank (bank.json)")
    render.add_argument("-o", "--output", type=Path, required=True, help="WAV file to write")
    render.add_argument("--note", type=_midi_note, help="render one note of this MIDI key")
    render.add_argument("--midi", type=Path, help="render this MIDI file (SMF type 0 or 1)")
    render.add_argument("--program", type=_program, help="with --note and a bank: the program to play (default: its first)")
    render.add_argument("--velocity", type=_velocity, default=100)
    render.add_argument("--hold", type=_seconds, default=2.0, help="seconds until note-off (default 2)")
    render.add_argument("--tail", type=_seconds, default=1.0, help="seconds after note-off (default 1)")
    render.add_argument("--sample-rate", type=_sample_rate, default=48000)
    render.add_argument("--max-seconds", type=_number_in(float, 1.0, 1e7, "--max-seconds"), default=3600.0,
                        help="with --midi: refuse songs longer than this (default 3600, one hour)")
    render.add_argument("--json", action="store_true", help="print one JSON object")
    render.set_defaults(handler=cmd_render)

    play = commands.add_parser("play", help="play a patch or bank live from MIDI input")
    play.add_argument("instrument", type=Path, help="patch (.json) or bank (bank.json)")
    play.add_argument("--midi-in", default="all", help="MIDI input port name (substring) or 'all' (default)")
    play.add_argument("--audio-out", help="audio output device name or index (default: system default)")
    play.add_argument("--period", type=_period, default=128, help="audio period in frames (default 128)")
    play.add_argument("--polyphony", type=_polyphony, default=256, help="maximum voices (default 256)")
    play.add_argument("--sample-rate", type=_sample_rate,
                      help="sample rate in Hz (default: the output device's rate; under JACK, the server's)")
    play.set_defaults(handler=cmd_play)

    devices = commands.add_parser("devices", help="list audio outputs and MIDI inputs")
    devices.add_argument("--json", action="store_true")
    devices.set_defaults(handler=cmd_devices)

    bank = commands.add_parser("bank", help="convert a sample folder or SFZ file into a patch bank")
    bank.add_argument("source", type=Path, help="folder of samples (subfolders = programs) or .sfz file")
    bank.add_argument("-o", "--output", type=Path, required=True, help="bank folder to write")
    bank.add_argument("--name", help="bank name (default: the source's name)")
    bank.add_argument("--program", type=_program, help="GM program number for a single-instrument bank")
    bank.add_argument("--jobs", type=_jobs, help="parallel fits (default: all cores)")
    bank.add_argument("--dask-scheduler", help="run fits on this Dask distributed scheduler (host:port)")
    bank.add_argument("--ops", type=int, default=2)
    bank.add_argument("--fill-gaps", action="store_true",
                      help="SFZ: keys and velocities outside every region play the nearest region (default: silent)")
    bank.add_argument("--json", action="store_true", help="print a JSON summary")
    bank.set_defaults(handler=cmd_bank)

    report = commands.add_parser("report", help="write an HTML report comparing targets and fitted renders")
    report.add_argument("instrument", type=Path, help="patch (.json) or bank (bank.json)")
    report.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    report.set_defaults(handler=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from wifm_synth.guards import before_command

        before_command(args)
        return args.handler(args)
    except WifmError as error:
        _print_error(error)
        return error.exit_status
    except KeyboardInterrupt as interruption:
        return 143 if type(interruption).__name__ == "Terminated" else 130  # 128 + SIGTERM, 128 + SIGINT


if __name__ == "__main__":
    sys.exit(main())
