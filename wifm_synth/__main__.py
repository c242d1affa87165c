import sys

try:
    from wifm_synth.cli import main
    from wifm_synth.guards import received_interruptions
except KeyboardInterrupt:  # Ctrl-C while the command itself is imported
    sys.exit(130)

status = main()
if received_interruptions:
    # Under `python -m`, CPython ends the process by SIGINT at exit, whatever its status, when the last string
    # exec it ran (Numba and dataclasses run some) ended with a KeyboardInterrupt, even one handled since.
    # Each string exec resets that record: this one makes the interruption end with the status decided.
    exec("pass", {})  # noqa: S102
sys.exit(status)
