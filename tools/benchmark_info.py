"""The machine a benchmark ran on, for the ``"machine"`` entry of every benchmark's JSON."""

from __future__ import annotations

import importlib.metadata
import os
import platform

import wifm_synth

# Distributions whose versions move the figures; ones not installed are left out.
PACKAGES = ("numpy", "numba", "scipy", "POT", "soundfile")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(*extra_packages: str, **extra_versions: str) -> dict:
    """CPU, cores, OS, 1-minute load average (other work skews the figures) and versions.

    Versions are read from the installed distributions' metadata, so nothing is imported (a benchmark
    may need to configure Numba before its first import). ``extra_packages`` are more distributions
    to report; ``extra_versions`` are versions found otherwise (e.g. of a native library).
    """
    versions = {"python": platform.python_version(), "wifm_synth": wifm_synth.__version__}
    for package in PACKAGES + extra_packages:
        try:
            versions[package.lower()] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "load_average_1min": round(os.getloadavg()[0], 2), "versions": versions | extra_versions}
