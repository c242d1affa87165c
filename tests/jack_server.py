"""A private JACK dummy server for real-time tests (DESIGN.md §5): real JACK timing, no sound card.

Each server gets its own name and the clients started by the test (in-process or subprocesses) find it
through ``JACK_DEFAULT_SERVER``, so parallel test runs and other JACK users on the machine don't
collide. The server is always stopped, even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

SAMPLE_RATE = 48000
PERIOD = 128


@dataclass(frozen=True)
class JackServer:
    name: str
    sample_rate: int
    period: int
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name}


@contextmanager
def running_jack_server(sample_rate: int = SAMPLE_RATE, period: int = PERIOD) -> Iterator[JackServer]:
    """Start ``jackd --no-realtime -d dummy``, wait until it accepts clients, and stop it on exit."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        raise RuntimeError("jackd and jack_wait are needed (apt-get install jackd2)")
    name = f"wifm-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    command = ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(sample_rate), "-p", str(period)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    previous_default = os.environ.get("JACK_DEFAULT_SERVER")
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], check=True, capture_output=True, timeout=15)
        os.environ["JACK_DEFAULT_SERVER"] = name
        yield JackServer(name, sample_rate, period, process)
    finally:
        if previous_default is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous_default
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    if shutil.which("jackd") is None:
        pytest.skip("jackd not installed (apt-get install jackd2)")
    with running_jack_server() as server:
        yield server
