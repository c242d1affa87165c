"""How an interruption (Ctrl-C, SIGTERM) reaches the command: never inside llvmlite's pointer bookkeeping
(where it makes LLVM free memory twice, a segmentation fault), never lost when C code swallows it, and
an interrupted run never delivers its output."""

import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from wifm_synth import guards
from wifm_synth.formats.atomic import atomic_output, atomic_write_files


@pytest.fixture
def fresh_record(monkeypatch):
    record: list[int] = []
    monkeypatch.setattr(guards, "received_interruptions", record)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield record
    signal.signal(signal.SIGINT, previous)


def _frame_in(filename: str) -> types.FrameType:
    namespace: dict = {}
    exec(compile("import sys\nframe = sys._getframe()", filename, "exec"), namespace)  # noqa: S102
    return namespace["frame"]


def test_an_interruption_inside_llvmlite_is_delivered_just_after_it(fresh_record):
    import llvmlite.binding.ffi

    deferred = False
    with pytest.raises(KeyboardInterrupt):
        guards._raise_interrupted(signal.SIGINT, _frame_in(llvmlite.binding.ffi.__file__))
        deferred = True  # it did not raise inside llvmlite's code
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the redelivery lands here, in the main thread's own code
            time.sleep(0.001)
    assert deferred and fresh_record == [signal.SIGINT]


def test_an_interruption_elsewhere_raises_at_once(fresh_record):
    with pytest.raises(KeyboardInterrupt):
        guards._raise_interrupted(signal.SIGINT, _frame_in(__file__))
    with pytest.raises(guards.Terminated):
        guards._raise_interrupted(signal.SIGTERM, _frame_in(__file__))
    assert fresh_record == [signal.SIGINT, signal.SIGTERM]


def test_an_interrupted_run_never_delivers_its_output(fresh_record, tmp_path):
    """The interruption was received, but swallowed on its way (C code clearing errors): the output is not
    put in place and its temporary is removed."""
    fresh_record.append(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), atomic_output(tmp_path / "out.wav") as temp:
        temp.write_bytes(b"complete, but the user asked to stop")
    with pytest.raises(KeyboardInterrupt):
        atomic_write_files({tmp_path / "a.json": b"{}", tmp_path / "b.json": b"{}"})
    assert list(tmp_path.iterdir()) == []


def test_a_swallowed_interruption_still_ends_the_command_as_interrupted(tmp_path):
    """A command that returns normally although a Ctrl-C was received exits 130, not 0."""
    script = textwrap.dedent("""
        import signal, sys
        from wifm_synth import cli
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whoever started the tests
        def swallowing_command(args):
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass  # as PyDict_GetItem does with an exception raised by a key's __eq__
            return 0
        cli._run = lambda argv: swallowing_command(None)
        sys.exit(cli.main([]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 130, result.stderr


def test_finalizer_failures_after_an_interruption_are_not_shown(fresh_record, capsys):
    """An object the interruption left half-built fails in its __del__; the command is ending: no traceback."""
    fresh_record.append(signal.SIGINT)
    unraisable = types.SimpleNamespace(exc_type=AttributeError, exc_value=AttributeError("_as_parameter_"),
                                       exc_traceback=None, err_msg="Exception ignored in", object=None)
    guards._raise_again_where_it_counts(unraisable)
    assert capsys.readouterr().err == ""


def test_an_interruption_printed_by_c_code_while_importing_is_not_shown(fresh_record, capsys):
    """numpy's import_array() prints the error that stopped it (PyErr_Print, through sys.excepthook): after
    a Ctrl-C that is the user's interruption, and stderr stays to the one line of the command."""
    guards._print_unless_interrupted(ValueError, ValueError("a real failure"), None)
    assert "ValueError: a real failure" in capsys.readouterr().err
    fresh_record.append(signal.SIGINT)
    guards._print_unless_interrupted(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert capsys.readouterr().err == ""


LLVMLITE_DOUBLE_FREE = """
import signal, sys, time
import llvmlite.binding as llvm
import llvmlite.binding.executionengine as executionengine
from wifm_synth import guards

signal.signal(signal.SIGINT, signal.default_int_handler)
guards.install_interruption_handlers()
llvm.initialize_native_target()
llvm.initialize_native_asmprinter()
machine = llvm.Target.from_default_triple().create_target_machine()
engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
module = llvm.parse_assembly("define i32 @f() { ret i32 0 }")
add_module = executionengine.ExecutionEngine.add_module.__code__
source = open(add_module.co_filename).read().splitlines()

def signal_lands(frame, event, arg):  # Ctrl-C between add_module's C call and `module._owned = True`
    if event == "line" and source[frame.f_lineno - 1].strip() == "module._owned = True":
        sys.settrace(None)
        frame.f_trace = None
        guards._raise_interrupted(signal.SIGINT, frame)
    return signal_lands

sys.settrace(lambda frame, event, arg: signal_lands if frame.f_code is add_module else None)
try:
    engine.add_module(module)
    time.sleep(5)  # the interruption arrives here, after llvmlite's bookkeeping
except KeyboardInterrupt:
    pass
sys.settrace(None)
del engine  # disposes of the module it owns
del module  # had the interruption landed inside add_module, the module would dispose of itself again
print("no double free", flush=True)
"""


def test_a_ctrl_c_inside_llvmlite_does_not_make_it_free_memory_twice():
    """The segmentation fault CI met: an exception between llvmlite's C call and its ownership flag makes LLVM
    free the module twice (status −11). Landing there, the interruption is delivered just after instead."""
    result = subprocess.run([sys.executable, "-c", LLVMLITE_DOUBLE_FREE], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 and result.stdout == "no double free\n", (result.returncode, result.stderr)
