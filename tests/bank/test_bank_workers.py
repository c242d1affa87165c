"""A dead fit worker costs only its own sample; a killed `wifm bank` takes its workers with it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bank.test_bank_build import write_note
from wifm_synth.formats.bank_json import load_bank

KEYS = tuple(range(40, 88, 2))  # enough work that the bank is still fitting when a worker is killed


def children(parent: int) -> dict[int, str]:
    """pid → command line of the live processes whose parent is ``parent`` (a /proc scan)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def fit_workers(parent: int) -> list[int]:
    return [pid for pid, command in children(parent).items() if "spawn_main" in command]


def start_bank(tmp_path, jobs=3):
    for key in KEYS:
        write_note(tmp_path / "src" / f"tone_{key}.wav", key, seconds=3.0)
    return subprocess.Popen([sys.executable, "-m", "wifm_synth", "bank", str(tmp_path / "src"), "-o",
                             str(tmp_path / "bank"), "--jobs", str(jobs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_workers(process, count, timeout=240) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        workers = fit_workers(process.pid)
        if len(workers) >= count:
            return workers
        time.sleep(0.05)
    raise AssertionError(f"workers did not start: {process.poll()}")


def test_one_killed_worker_costs_at_most_its_own_sample(tmp_path):
    process = start_bank(tmp_path)
    victim = wait_for_workers(process, 2)[0]
    time.sleep(1.0)  # into its first fit
    os.kill(victim, signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr, stderr
    assert process.returncode in (0, 2), stderr  # 2 only if a sample failed, alone
    zones = load_bank(tmp_path / "bank" / "bank.json").programs[0].zones
    assert len(zones) >= len(KEYS) - 1


def test_killed_bank_leaves_no_worker_behind(tmp_path):
    process = start_bank(tmp_path)
    workers = wait_for_workers(process, 2)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}/stat").exists()
             and (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z")]
    assert alive == []
