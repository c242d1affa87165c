import contextlib
import os
import sys

try:
    from wifm_synth.cli import main
    from wifm_synth.guards import received_interruptions
except KeyboardInterrupt:  # Ctrl-C while the command itself is imported
    sys.exit(130)

status = main()
if received_interruptions:
    # Under `python -m`, CPython ends the process by SIGINT at exit when a KeyboardInterrupt once ended a
    # string exec (Numba and dataclasses run some), even one handled since; the status is decided and every
    # cleanup has run, so leave without the interpreter's exit.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)
sys.exit(status)
