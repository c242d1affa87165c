"""Keep libasound's diagnostics (``ALSA lib seq_hw.c:… open /dev/snd/seq failed``) off the terminal.

rtmidi probes the ALSA sequencer whenever it lists or opens MIDI ports; on machines without
``/dev/snd/seq`` (containers, servers, JACK-only set-ups) libasound prints a line from C on stderr for
every probe, although rtmidi reports the failure itself and wifm handles it. libasound routes those
lines through a replaceable handler, ``snd_lib_error_set_handler``; installing a silent one is
preferred to redirecting file descriptor 2 around the calls, because a redirect would also swallow
our own messages and Python tracebacks written meanwhile by other threads (the MIDI pump probes ports
while the shell prints), and cannot be undone atomically. The handler is process-wide and lives as
long as the process, so the C side never calls into a freed function.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...):
# the variadic tail is ignored, which the C calling conventions wifm runs on allow.
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_char_p)
_installed: list = []  # the ctypes callback, kept alive for the life of the process


def _ignore(file, line, function, error, message) -> None:  # runs in C callers' threads; does nothing
    return None


def silence_alsa_errors() -> bool:
    """Install the silent handler once; False where there is no libasound (then there is no noise)."""
    if _installed:
        return True
    name = ctypes.util.find_library("asound") or "libasound.so.2"
    try:
        library = ctypes.CDLL(name)
        set_handler = library.snd_lib_error_set_handler
    except (OSError, AttributeError):
        return False
    handler = _HANDLER_TYPE(_ignore)
    set_handler.argtypes = [_HANDLER_TYPE]
    set_handler(handler)
    _installed.append(handler)
    return True
