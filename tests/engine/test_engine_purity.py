"""The engine imports numpy/numba only (never analysis/, fit/, POT or scipy) and never allocates while playing."""

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


def allocations(periods):
    synth = Synth(Patch(operators=[Operator(level=0.3, modulators=[1]), Operator(carrier=False, feedback=0.5)]),
                  polyphony=8)
    for frame in range(0, 5000, 100):
        synth.send(frame, 0x90, 40 + frame % 40, 100)
        synth.send(frame + 50, 0xB0, 64, frame % 128)
    left, right = np.zeros(100), np.zeros(100)
    before = rtsys.get_allocation_stats().alloc
    play(synth.state, left, right, periods)
    return rtsys.get_allocation_stats().alloc - before


allocations(1)  # compile
print(allocations(60) - allocations(1))
"""


def test_process_block_never_allocates():
    result = subprocess.run([sys.executable, "-c", ALLOCATIONS], capture_output=True, text=True, check=True,
                            env={**os.environ, "NUMBA_NRT_STATS": "1"})
    assert result.stdout.strip() == "0"
