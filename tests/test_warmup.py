"""``wifm warmup`` and the notice on a cold compile cache."""

import os
import subprocess
import sys

from wifm_synth.warmup import COMPILING_NOTICE, engine_cache_is_cold


def test_cold_cache_is_an_engine_without_index_files(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert engine_cache_is_cold()
    (tmp_path / "fit_0123").mkdir()
    (tmp_path / "fit_0123" / "loss.w1-10.py311.nbi").touch()  # another module's kernels do not count
    assert engine_cache_is_cold()
    (tmp_path / "engine_0123").mkdir()
    (tmp_path / "engine_0123" / "block.process_block-66.py311.nbi").touch()
    assert not engine_cache_is_cold()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert not engine_cache_is_cold()  # an unknown cache folder: no claim either way


def test_warmup_on_the_warm_cache_is_quiet_and_reports():
    # the suite has compiled the kernels by now (or this run does); a second run must find them cached
    subprocess.run([sys.executable, "-m", "wifm_synth", "warmup"], capture_output=True, timeout=600, check=True)
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "warmup"], capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wifm: engine ready (engine ")
    assert COMPILING_NOTICE not in result.stderr


def test_an_error_on_a_cold_cache_is_still_one_line_when_stderr_is_not_a_terminal(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # no compiled engine there
    result = subprocess.run([sys.executable, "-m", "wifm_synth", "render", str(tmp_path / "missing.json"),
                             "--note", "60", "-o", str(tmp_path / "x.wav")], capture_output=True, text=True,
                            timeout=300, check=False, env=environment)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"wifm: error: {tmp_path / 'missing.json'}: no such file"]
