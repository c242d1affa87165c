"""Worker processes that never outlive the bank: each asks Linux to kill it when its parent dies.

Whatever ends ``wifm bank`` (Ctrl-C, SIGTERM, SIGKILL, a crash), its fit workers go with it instead of
fitting on as orphans. Elsewhere the worker watches its parent's pid from a daemon thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_PARENT_POLL_S = 1.0


def _ask_kernel_for_death_signal() -> bool:
    """prctl(PR_SET_PDEATHSIG, SIGKILL): True when the kernel will kill this process with its parent."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGKILL)


def start_worker(parent_pid: int) -> None:
    """Worker start-up (a pool initializer). Ctrl-C reaches the whole process group; the parent stops
    the workers, which would otherwise each print a traceback. SIGTERM is the pool's way to stop a worker,
    so it keeps its default action here (the CLI's handler would turn it into a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # the parent started this process with SIGINT held back
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _ask_kernel_for_death_signal():
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent_pid:  # the parent died before the death signal was set
        os.kill(os.getpid(), signal.SIGKILL)
