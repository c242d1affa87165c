"""Real-time FM engine: Numba kernels, voice pool, MIDI state machine. Imports numpy/numba only."""

from wifm_synth.engine.block import process_block
from wifm_synth.engine.state import EngineState, allocate_state
from wifm_synth.engine.synth import Synth, render_note

__all__ = ["EngineState", "Synth", "allocate_state", "process_block", "render_note"]
