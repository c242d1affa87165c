"""libasound's own error lines never reach the user (on machines without an ALSA sequencer)."""

import subprocess
import sys


def test_devices_prints_no_alsa_library_noise():
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "devices"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "ALSA lib" not in result.stderr


def test_the_silent_handler_covers_a_direct_rtmidi_probe():
    # without the handler this probe prints "ALSA lib seq_hw.c…" where /dev/snd/seq is missing
    code = ("from wifm_synth.drivers.alsa_quiet import silence_alsa_errors; silence_alsa_errors(); import rtmidi\n"
            "try:\n    rtmidi.MidiIn(rtmidi.API_LINUX_ALSA, 'probe').get_ports()\nexcept Exception:\n    pass\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert "ALSA lib" not in result.stderr
