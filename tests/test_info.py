"""``wifm info`` on the bundled bank: programs, zones, operators, sources and fit quality."""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BANK = REPO_ROOT / "patches" / "freepats" / "bank.json"


def run_info(*arguments):
    return subprocess.run([sys.executable, "-m", "wifm_synth", "info", *map(str, arguments)], capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, check=False)


def test_info_json_describes_the_bundled_bank():
    result = run_info(BANK.parent, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["kind"] == "bank" and info["drums"] is None
    assert [program["program"] for program in info["programs"]] == [0, 4, 33, 56, 73]
    piano = info["programs"][0]
    assert piano["name"] == "acoustic_grand_piano" and len(piano["zones"]) == 2
    low = piano["zones"][0]
    assert low["keys"] == [0, 61] and low["velocities"] == [1, 127] and low["root_key"] == 55
    assert low["operators"] == 2 and 0 < low["quality"] <= 1 and low["loss_kind"] == "w1"
    assert low["source"] == "samples/freepats/acoustic_grand_piano/piano_55_100.wav"
    assert (REPO_ROOT / low["source"]).is_file()


def test_info_text_names_every_program_and_zone():
    result = run_info(BANK)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{BANK}: bank 'freepats', 5 programs, 10 zones; channel 10 plays nothing")
    assert sum("program" in line for line in lines[1:]) == 5 and sum("keys " in line for line in lines) == 10
    assert "keys 0-61 (C-1..C#4)" in result.stdout and "2 ops  quality 0.42" in result.stdout


def test_info_on_a_sample_hints_at_fit():
    result = run_info("samples/freepats/flute/flute_67_100.wav")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "wifm fit" in result.stderr
