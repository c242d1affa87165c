"""The engine imports numpy/numba only: never analysis/, fit/, POT or scipy (beyond what numba loads)."""

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
