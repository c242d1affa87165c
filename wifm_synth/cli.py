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
from signal import SIGPIPE

from wifm_synth import __version__
from wifm_synth.errors import WifmError
from wifm_synth.formats.inputs import instrument_path
from wifm_synth.midi import (
    A4_HZ_HIGHEST,
    A4_HZ_LOWEST,
    GAIN_DB_HIGHEST,
    GAIN_DB_LOWEST,
    STANDARD_A4_HZ,
)


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


def _midi_note(text: str) -> int:
    """A MIDI note number (60) or a note name (C4, F#3, Db5; C4 = 60)."""
    from wifm_synth.library.naming import note_number

    key = note_number(text)
    return key if key is not None else _note_number(text)


_note_number = _number_in(int, 0, 127, "MIDI note")
_decibels = _number_in(float, GAIN_DB_LOWEST, GAIN_DB_HIGHEST, "gain (dB)")
_a4_hz = _number_in(float, A4_HZ_LOWEST, A4_HZ_HIGHEST, "tuning (A4 in Hz)")
_dbfs = _number_in(float, -120.0, 0.0, "normalize level (dBFS)")
_program = _number_in(int, 0, 127, "program")
_velocity = _number_in(int, 1, 127, "velocity")
_seconds = _number_in(float, 0.0, 600.0, "seconds")
_sample_rate = _number_in(int, 8000, 384000, "sample rate")
_period = _number_in(int, 16, 8192, "period (frames)")
_polyphony = _number_in(int, 1, 4096, "polyphony")
_jobs = _number_in(int, 1, 1024, "jobs")


def _operator_count(text: str) -> int | str:
    """``--ops``: a number or ``auto``; which counts the fitter supports it checks itself (FitSettings), so
    an unsupported one is a one-line ``wifm: error`` like every other bad setting."""
    try:
        return int(text)
    except ValueError:
        return text


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
    from wifm_synth.drivers.wav import STDOUT, output_format

    instrument = instrument_path(args.instrument)
    audio_format = output_format(args.output, args.format, args.subtype)
    if args.gain is not None and args.normalize is not None:
        raise WifmError("--gain and --normalize both set the level; give one", args.output)
    gain_db = args.gain or 0.0
    # with -o - the audio owns stdout, so the summary goes to stderr
    report = sys.stderr if str(args.output) == STDOUT else sys.stdout
    if args.midi is not None:
        for option, value in (("--note", args.note), ("--velocity", args.velocity), ("--hold", args.hold),
                              ("--tail", args.tail)):
            if value is not None:
                raise WifmError(f"{option} does not apply to a MIDI render (the song gives its notes)", args.midi)
        from wifm_synth.drivers.render_midi import render_midi_command

        summary = render_midi_command(instrument, args.midi, args.output, sample_rate=args.sample_rate,
                                      audio_format=audio_format, gain_db=gain_db, normalize_dbfs=args.normalize,
                                      program=args.program, polyphony=args.polyphony,
                                      max_seconds=args.max_seconds, a4_hz=args.tuning, strict_syx=args.strict)
    else:
        if args.note is None:
            raise WifmError("render needs --note KEY (one note, e.g. 60 or C4) or --midi SONG.mid", args.instrument)
        from wifm_synth.drivers.render_note import render_note_command

        summary = render_note_command(instrument, args.output, args.note, velocity=args.velocity or 100,
                                      hold_s=2.0 if args.hold is None else args.hold,
                                      tail_s=1.0 if args.tail is None else args.tail,
                                      sample_rate=args.sample_rate, program=args.program, audio_format=audio_format,
                                      gain_db=gain_db, normalize_dbfs=args.normalize, a4_hz=args.tuning,
                                      strict_syx=args.strict)
    if args.json:
        print(json.dumps(summary), file=report)
    else:
        print(f"{args.output}: {summary['seconds_audio']:.1f} s of {summary['format']} {summary['subtype']}, "
              f"peak {summary['peak_dbfs'] if summary['peak_dbfs'] is not None else '-inf'} dBFS", file=report)
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from wifm_synth.drivers.audio_out import AudioHostLost
    from wifm_synth.drivers.live import play_command
    from wifm_synth.drivers.shell import shell_wanted

    try:
        return play_command(
            instrument_path(args.instrument),
            midi_in=args.midi_in,
            audio_out=args.audio_out,
            period=args.period,
            polyphony=args.polyphony,
            sample_rate=args.sample_rate,
            client_name=args.client_name,
            verbose=args.verbose,
            quiet=args.quiet,
            shell=shell_wanted(args.no_shell),
            gain_db=args.gain,
            a4_hz=args.tuning,
            strict_syx=args.strict,
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
    from wifm_synth.fit.fitter import FitSettings

    FitSettings(ops=args.ops)  # a bad --ops fails before any sample is read

    try:
        return bank_command(
            args.source,
            args.output,
            name=args.name,
            program=args.program,
            jobs=args.jobs,
            dask_scheduler=args.dask_scheduler,
            ops=args.ops,
            as_json=args.json,
            fill_gaps=args.fill_gaps,
            presets=args.presets,
            keys_every=args.keys,
            velocities=args.velocities,
            drums=args.drums,
        )
    except KeyboardInterrupt:
        # Every finished fit is cached and its patch written, so a re-run picks up where this one stopped.
        print("wifm: interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


def cmd_report(args: argparse.Namespace) -> int:
    from wifm_synth.report import report_command

    return report_command(instrument_path(args.instrument), args.output)


def cmd_info(args: argparse.Namespace) -> int:
    from wifm_synth.info import info_command

    return info_command(instrument_path(args.instrument), as_json=args.json)


def cmd_warmup(args: argparse.Namespace) -> int:
    from wifm_synth.warmup import warmup_command

    return warmup_command(as_json=args.json)


# Commands that run the Numba kernels: on a cold compile cache they say why the first run is slow.
COMPILING_COMMANDS = {"fit", "render", "play", "bank", "report", "warmup"}


def cmd_syx(args: argparse.Namespace) -> int:
    from wifm_synth.formats import dx7_bank

    if args.syx_command == "import":
        summary = dx7_bank.import_command(args.source, args.output, strict=args.strict)
        print(json.dumps(summary) if args.json else f"{summary['bank']}: {summary['programs']} programs")
    else:
        summary = dx7_bank.export_command(args.instrument, args.output, single=args.single, measure=args.json,
                                           one_voice=args.one_voice, program=args.program)
        print(json.dumps(summary) if args.json else f"{summary['output']}: {len(summary['voices'])} voices")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wifm", description="Learn FM patches from recorded notes and play them.")
    parser.add_argument("--version", action="version", version=f"wifm_synth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="fit an FM patch to a recorded note")
    fit.add_argument("input", type=Path, help="audio file (WAV, FLAC, AIFF, OGG)")
    fit.add_argument("-o", "--output", type=Path, required=True, help="patch file to write (.json)")
    fit.add_argument("--note", type=_midi_note, help="MIDI note of the sample (checked against the detected pitch)")
    fit.add_argument("--ops", type=_operator_count, default=2,
                     help="FM operators: 2, up to 4 or 6 on a DX7 algorithm, or auto (default 2)")
    fit.add_argument("--loss", choices=["w1", "mse", "sinkhorn"], default="w1", help="spectral loss (default w1)")
    fit.add_argument("--method", choices=["wifm", "seed"], default="wifm", help="fitting method (default wifm)")
    fit.add_argument("--json", action="store_true", help="print one JSON object")
    fit.set_defaults(handler=cmd_fit)

    render = commands.add_parser("render", help="render a note or a MIDI file to an audio file")
    render.add_argument("instrument", type=Path, help="patch (.json), bank (bank.json) or bank folder")
    render.add_argument("-o", "--output", type=Path, required=True,
                        help="audio file to write: .wav, .flac, .ogg or .aiff; - = WAV on stdout")
    render.add_argument("--note", type=_midi_note, help="render one note of this key (60 or C4, F#3, ...)")
    render.add_argument("--midi", type=Path, help="render this MIDI file (SMF type 0 or 1)")
    render.add_argument("--program", type=_program,
                        help="the bank's program to play (with --midi: on every channel but 10; default: the "
                             "song's programs, or the bank's first program for --note)")
    render.add_argument("--velocity", type=_velocity, help="--note: key velocity (default 100)")
    render.add_argument("--hold", type=_seconds, help="--note: seconds until note-off (default 2)")
    render.add_argument("--tail", type=_seconds, help="--note: seconds after note-off (default 1)")
    render.add_argument("--gain", type=_decibels, metavar="DB", help="scale the output by this many dB")
    render.add_argument("--normalize", type=_dbfs, nargs="?", const=-1.0, metavar="DBFS",
                        help="scale the output so that its peak is at DBFS (default -1)")
    render.add_argument("--tuning", type=_a4_hz, default=STANDARD_A4_HZ, metavar="A4_HZ",
                        help="master tuning: the frequency of A4, 400-480 (default 440)")
    render.add_argument("--format", help="container instead of the extension's: WAV, FLAC, OGG, AIFF")
    render.add_argument("--subtype", help="sample encoding, e.g. PCM_16, PCM_24, FLOAT, VORBIS")
    render.add_argument("--polyphony", type=_polyphony, default=256, help="--midi: maximum voices (default 256)")
    render.add_argument("--sample-rate", type=_sample_rate, default=48000)
    render.add_argument("--max-seconds", type=_number_in(float, 1.0, 1e7, "--max-seconds"), default=3600.0,
                        help="with --midi: refuse songs longer than this (default 3600, one hour)")
    render.add_argument("--strict", action="store_true",
                        help="a .syx instrument: refuse a wrong checksum or out-of-range values (default: warn, load)")
    render.add_argument("--json", action="store_true", help="print one JSON object")
    render.set_defaults(handler=cmd_render)

    play = commands.add_parser("play", help="play a patch or bank live from MIDI input")
    play.add_argument("instrument", type=Path, help="patch (.json), bank (bank.json) or bank folder")
    play.add_argument("--midi-in", default="all", metavar="NAME|all|none",
                      help="MIDI sources to connect to the player's own input port: every one ('all', the "
                           "default: a keyboard plugged in plays at once), those whose name contains NAME, "
                           "or none (route them yourself in qjackctl/Carla/aconnect)")
    play.add_argument("--client-name", default="wifm", help="JACK/ALSA MIDI client name (default wifm)")
    play.add_argument("-v", "--verbose", action="store_true", help="print every incoming MIDI message")
    play.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    play.add_argument("-i", "--no-shell", action="store_true",
                      help="no command shell, even when stdin is a terminal (type 'help' in the shell)")
    play.add_argument("--gain", type=_decibels, default=0.0, metavar="DB",
                      help="master gain in dB (default 0; the shell's gain command changes it while playing)")
    play.add_argument("--tuning", type=_a4_hz, default=STANDARD_A4_HZ, metavar="A4_HZ",
                      help="master tuning: the frequency of A4, 400-480 (default 440)")
    play.add_argument("--audio-out", help="audio output device name or index (default: system default)")
    play.add_argument("--period", type=_period, default=128, help="audio period in frames (default 128)")
    play.add_argument("--polyphony", type=_polyphony, default=256, help="maximum voices (default 256)")
    play.add_argument("--sample-rate", type=_sample_rate,
                      help="sample rate in Hz (default: the output device's rate; under JACK, the server's)")
    play.add_argument("--strict", action="store_true",
                      help="a .syx instrument: refuse a wrong checksum or out-of-range values (default: warn, load)")
    play.set_defaults(handler=cmd_play)

    info = commands.add_parser("info", help="show a patch's or bank's programs, zones, operators and fit quality")
    info.add_argument("instrument", type=Path, help="patch (.json), bank (bank.json) or bank folder")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=cmd_info)

    warmup = commands.add_parser("warmup", help="compile the engine and fitter now (else the first run does)")
    warmup.add_argument("--json", action="store_true", help="print one JSON object")
    warmup.set_defaults(handler=cmd_warmup)

    devices = commands.add_parser("devices", help="list audio outputs and MIDI inputs")
    devices.add_argument("--json", action="store_true")
    devices.set_defaults(handler=cmd_devices)

    bank = commands.add_parser("bank", help="convert a sample folder or SFZ file into a patch bank")
    bank.add_argument("source", type=Path,
                      help="folder of samples (subfolders = programs), .sfz file or .sf2 SoundFont")
    bank.add_argument("-o", "--output", type=Path, required=True, help="bank folder to write")
    bank.add_argument("--name", help="bank name (default: the source's name)")
    bank.add_argument("--program", type=_program, help="GM program number for a single-instrument bank")
    bank.add_argument("--jobs", type=_jobs, help="parallel fits (default: all cores)")
    bank.add_argument("--dask-scheduler", help="run fits on this Dask distributed scheduler (host:port)")
    bank.add_argument("--ops", type=_operator_count, default=2,
                      help="operators per fit, as for fit (default 2: a bank fits many notes)")
    bank.add_argument("--fill-gaps", action="store_true",
                      help="SFZ: keys and velocities outside every region play the nearest region (default: silent)")
    bank.add_argument("--presets", metavar="LIST",
                      help="SoundFont presets: programs and ranges of bank 0 and BANK:PROGRAM, e.g. 0-127,128:0 "
                           "(default: every preset)")
    bank.add_argument("--keys", type=_number_in(int, 1, 127, "--keys"), metavar="EVERY_N",
                      help="SoundFont: play every N-th key from C1 to C8 (default 6; drum kits: every key)")
    bank.add_argument("--velocities", metavar="LIST", help="SoundFont: velocities to play, e.g. 40,100 (default 100)")
    bank.add_argument("--drums", action="store_true",
                      help="the folder or SFZ is a drum kit (channel 10): one unpitched patch per key")
    bank.add_argument("--json", action="store_true", help="print a JSON summary")
    bank.set_defaults(handler=cmd_bank)

    report = commands.add_parser("report", help="write an HTML report comparing targets and fitted renders")
    report.add_argument("instrument", type=Path, help="patch (.json) or bank (bank.json)")
    report.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    report.set_defaults(handler=cmd_report)

    syx = commands.add_parser("syx", help="import or export DX7 SysEx voice dumps (.syx)")
    syx_commands = syx.add_subparsers(dest="syx_command", required=True, metavar="ACTION")
    syx_import = syx_commands.add_parser("import", help="a .syx cartridge or voice → a bank folder")
    syx_import.add_argument("source", type=Path, help="DX7 .syx file (32-voice or single-voice dump)")
    syx_import.add_argument("-o", "--output", type=Path, required=True, help="bank folder to write")
    syx_import.add_argument("--strict", action="store_true", help="refuse checksum errors and out-of-range values")
    syx_import.add_argument("--json", action="store_true", help="print a JSON summary")
    syx_export = syx_commands.add_parser("export", help="a patch or bank → a DX7 .syx dump")
    syx_export.add_argument("instrument", type=Path, help="patch (.json), bank (bank.json) or .syx")
    syx_export.add_argument("-o", "--output", type=Path, required=True, help=".syx file to write")
    syx_export.add_argument("--single", action="store_true", help="a single-voice dump (163 bytes)")
    syx_export.add_argument("--one-voice", action="store_true",
                            help="one voice for all zones of a bank program: keyboard level and rate scaling fitted "
                                 "to the zones (a 32-voice dump with it in slot 1, or --single)")
    syx_export.add_argument("--program", type=int, metavar="N",
                            help="with --one-voice: the bank's program N (default the first)")
    syx_export.add_argument("--json", action="store_true", help="print a JSON summary with each voice's export loss")
    syx.set_defaults(handler=cmd_syx)
    return parser


def main(argv: list[str] | None = None) -> int:
    from wifm_synth.guards import install_interruption_handlers, received_interruptions

    install_interruption_handlers()
    try:
        status = _run(argv)
    except BaseException as error:
        # an interruption, whatever exception it became on its way out (see guards.received_interruptions)
        if not received_interruptions or isinstance(error, SystemExit):
            raise
        return 128 + received_interruptions[0]  # 130 for SIGINT, 143 for SIGTERM
    # an interruption that C code swallowed after its last checkpoint still ends the command as interrupted
    return 128 + received_interruptions[0] if received_interruptions else status


def _run(argv: list[str] | None) -> int:
    # everything inside the try, imports too: a Ctrl-C while numpy or Numba loads is an interruption
    try:
        args = build_parser().parse_args(argv)
        if args.command in COMPILING_COMMANDS:
            from wifm_synth.warmup import announce_compiling_if_cold

            announce_compiling_if_cold()
        from wifm_synth.guards import before_command

        before_command(args)
        return args.handler(args)
    except WifmError as error:
        _print_error(error)
        return error.exit_status
    except KeyboardInterrupt as interruption:
        return 143 if type(interruption).__name__ == "Terminated" else 130  # 128 + SIGTERM, 128 + SIGINT
    except BrokenPipeError:
        # the reader of our stdout (`wifm render -o - | head`, `wifm info | less`) stopped early; point stdout
        # at /dev/null so the interpreter's final flush does not fail again, and exit as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
