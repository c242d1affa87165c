"""The engine imports numpy/numba only (never analysis/, fit/, POT or scipy) and never allocates while playing,
applying MIDI events and patch-load commands alike, from Python or through the compiled audio callback."""

import os
import subprocess
import sys

CHECK = """
import sys
import numba  # numba itself loads scipy's callback shim when scipy is installed
before = set(sys.modules)
import wifm_synth.engine
added = sorted(set(sys.modules) - before)
forbidden = [name for name in added
             if name.split(".")[0] in ("scipy", "ot", "soundfile", "soxr", "mido", "sounddevice")
             or name.startswith(("wifm_synth.analysis", "wifm_synth.fit", "wifm_synth.drivers"))]
print(forbidden)
"""


def test_importing_the_engine_pulls_in_no_analysis_fit_pot_or_scipy():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


ALLOCATIONS = """
import numpy as np
from numba import njit
from numba.core.runtime import rtsys
from wifm_synth.engine import Synth, process_block
from wifm_synth.voice.patch import Operator, Patch


@njit
def play(state, left, right, periods):  # one call: NRT counts the arguments' boxing once
    for _ in range(periods):
        process_block(state, left, right, 100)


LOADED = Patch(operators=[Operator(level=0.2, modulators=[1, 2]), Operator(carrier=False), Operator(carrier=False)])


def playing_synth():
    # notes, pedals and five patch loads (some adding an operator to sounding voices) over 5000 frames
    original = Patch(operators=[Operator(level=0.3, modulators=[1]), Operator(carrier=False, feedback=0.5)])
    synth = Synth(original, polyphony=8)
    for frame in range(0, 5000, 100):
        synth.send(frame, 0x90, 40 + frame % 40, 100)
        synth.send(frame + 50, 0xB0, 64, frame % 128)
        if frame % 1000 == 500:
            synth.load_patch(0, LOADED if frame % 2000 == 500 else original, frame=frame)
    return synth


def allocations(periods):
    synth = playing_synth()
    left, right = np.zeros(100), np.zeros(100)
    before = rtsys.get_allocation_stats().alloc
    play(synth.state, left, right, periods)
    return rtsys.get_allocation_stats().alloc - before


allocations(1)  # compile
print(allocations(60) - allocations(1))
"""


CALLBACK_ALLOCATIONS = ALLOCATIONS.replace("allocations(1)  # compile\nprint(allocations(60) - allocations(1))", """
import ctypes
from wifm_synth.engine.abi import CLOCK_FIELDS, CLOCK_SAMPLE_RATE, engine_pointer_table, engine_stream_callback
from wifm_synth.engine.layout import ENGINE_PATCHES_LOADED


def callback_allocations(periods):
    synth = playing_synth()
    clock = np.zeros(CLOCK_FIELDS)
    clock[CLOCK_SAMPLE_RATE] = 48000
    table = engine_pointer_table(synth.state, clock)
    output = np.zeros(2 * 100, dtype=np.float32)
    time_info = np.zeros(3)
    callback = engine_stream_callback().ctypes
    arguments = (None, output.ctypes.data_as(ctypes.c_void_p), 100, time_info.ctypes.data_as(ctypes.c_void_p), 0,
                 table.ctypes.data_as(ctypes.c_void_p))
    before = rtsys.get_allocation_stats().alloc
    for _ in range(periods):
        callback(*arguments)
    return rtsys.get_allocation_stats().alloc - before, int(synth.state.engine[ENGINE_PATCHES_LOADED])


callback_allocations(1)  # compile
print(callback_allocations(60))
""")


def test_process_block_never_allocates():
    result = subprocess.run([sys.executable, "-c", ALLOCATIONS], capture_output=True, text=True, check=True,
                            env={**os.environ, "NUMBA_NRT_STATS": "1"})
    assert result.stdout.strip() == "0"


def test_the_audio_callback_never_allocates_applying_events_and_patch_loads():
    result = subprocess.run([sys.executable, "-c", CALLBACK_ALLOCATIONS], capture_output=True, text=True, check=True,
                            env={**os.environ, "NUMBA_NRT_STATS": "1"})
    assert result.stdout.strip() == "(0, 5)"  # no allocation in 60 periods that applied all five loads


def test_a_kernel_compiled_with_the_engine_options_cannot_allocate():
    """The audio path is compiled without the Numba runtime, so an allocation is a compile error, not a dropout."""
    import numpy as np
    import pytest
    from numba import njit
    from numba.core.errors import TypingError

    from wifm_synth.engine.kernels import KERNEL

    def allocating(count):
        return np.zeros(count).sum()

    def in_place(row):
        row[:] = 0.0
        return row.sum()

    options = {**KERNEL, "cache": False}
    assert njit(**options)(in_place)(np.ones(4)) == 0.0
    with pytest.raises(TypingError):
        njit(**options)(allocating)(4)
