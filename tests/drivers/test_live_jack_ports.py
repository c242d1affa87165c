"""``wifm play`` naming on a private JACK dummy server: ``--client-name`` names the audio client (and,
with ``-midi``, the MIDI client: JACK gives a name to one client only), the own input port that exists
before any source, ``--midi-in none`` and ``-v``."""

import subprocess
import time

import pytest
from jack_server import jack_server, running_jack_server  # noqa: F401  (fixture)
from test_live_jack import STARTUP_TIMEOUT_S, PlayerProcess, held_tone_patch

from wifm_synth.formats.patch_json import save_patch

rtmidi = pytest.importorskip("rtmidi")
pytest.importorskip("jack")

pytestmark = pytest.mark.jack


def jack_ports(env) -> list[str]:
    listing = subprocess.run(["jack_lsp"], capture_output=True, text=True, env=env, timeout=30, check=False)
    return listing.stdout.split("\n")


def test_named_client_has_its_port_before_any_source_and_prints_incoming_notes(tmp_path, jack_server):  # noqa: F811
    patch = tmp_path / "held.json"
    save_patch(held_tone_patch(), patch)
    player = PlayerProcess(patch, jack_server.env, "--client-name", "studio", "--midi-in", "none", "-v")
    try:
        line = player.wait_for("playing on", STARTUP_TIMEOUT_S)
        assert "port studio-midi:midi_in, connected none" in line
        ports = jack_ports(jack_server.env)
        assert "studio-midi:midi_in" in ports, " ".join(ports)
        assert {port for port in ports if port.startswith("studio:")} == {"studio:out_0", "studio:out_1"}, \
            " ".join(ports)
        assert not any(port.startswith("PortAudio") for port in ports), " ".join(ports)
        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "wifm-test-source")
        keyboard.open_virtual_port("out")
        try:
            time.sleep(0.5)
            assert not any("connected 'wifm-test-source" in seen for seen in player.seen)  # --midi-in none
            subprocess.run(["jack_connect", "wifm-test-source:out", "studio-midi:midi_in"], env=jack_server.env,
                           check=True, timeout=30)
            keyboard.send_message([0x90, 60, 100])
            keyboard.send_message([0x80, 60, 0])
            assert "ch 1 note on 60 100" in player.wait_for("note on", 10)
            assert "ch 1 note off 60 0" in player.wait_for("note off", 10)
        finally:
            keyboard.delete()
    finally:
        player.process.terminate()
        player.process.wait(timeout=60)
