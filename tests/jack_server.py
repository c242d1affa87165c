"""A private JACK dummy server for real-time tests: real JACK timing, no sound card.

Each server gets its own name and the clients started by the test (in-process or subprocesses) find it
through ``JACK_DEFAULT_SERVER``, so parallel test runs and other JACK users on the machine don't
collide. The server is always stopped, even when the test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import pytest

SAMPLE_RATE = 48000
PERIOD = 128


@dataclass(frozen=True)
class JackServer:
    name: str
    sample_rate: int
    period: int
    realtime: bool
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses that should use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name}


_BLAMED_CLIENT = re.compile(r"JackEngine::XRun: client = (.+?) was not finished")
_LATE_DRIVER = re.compile(r"JackTimedDriver::Process XRun")


def xruns_in_log(text: str) -> dict:
    """Xruns in a slice of the server's log: per blamed client, and cycles the dummy driver itself woke late."""
    blamed: dict[str, int] = {}
    for client in _BLAMED_CLIENT.findall(text):
        blamed[client] = blamed.get(client, 0) + 1
    return {"blamed_clients": blamed, "driver_late": len(_LATE_DRIVER.findall(text))}


@contextmanager
def running_jack_server(sample_rate: int = SAMPLE_RATE, period: int = PERIOD,
                        realtime: bool = False, log: IO | None = None) -> Iterator[JackServer]:
    """Start ``jackd --no-realtime -d dummy``, wait until it accepts clients, and stop it on exit.

    ``realtime`` runs JACK's threads (and its clients' process threads) with SCHED_FIFO instead, as
    on a real audio machine; the tests don't need it, benchmarks on a shared machine do. ``log``
    receives the server's output (it names the client blamed for each xrun).
    """
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        raise RuntimeError("jackd and jack_wait are needed (apt-get install jackd2)")
    name = f"wifm-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    scheduling = "--realtime" if realtime else "--no-realtime"
    command = ["jackd", "-n", name, scheduling, "-d", "dummy", "-r", str(sample_rate), "-p", str(period)]
    output = log if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    previous_default = os.environ.get("JACK_DEFAULT_SERVER")
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], check=True, capture_output=True, timeout=15)
        os.environ["JACK_DEFAULT_SERVER"] = name
        yield JackServer(name, sample_rate, period, realtime, process)
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
