"""Real-time FM engine: Numba kernels, voice pool, MIDI state machine. Imports numpy/numba only.

Patch semantics follow docs/FORMATS.md. Choices the format leaves to the engine:

- Feedback: the operator's last two outputs at unit level (envelope × velocity/key gain, without
  ``level``) are averaged and multiplied by ``feedback`` (radians), so the feedback index does not
  depend on the operator's level. DX7 algorithms 4 and 6 (feedback through a chain) are modelled as
  operator 6's self-feedback.
- LFO: a sine from the note-on; the patch's depths fade in linearly over ``delay_s``. Tremolo swings
  between 0 dB and −``amp_depth_db`` and applies to carriers. Mod wheel (CC1) and channel pressure
  each add up to 50 cents of vibrato at 127, with no delay.
- Channel gain: CC7 and CC11 both follow (value/127)²; CC10 pans with an equal-power law (64 =
  centre, −3 dB per side). Bank number = CC0 × 128 + CC32. Pitch-bend range via RPN 0 (CC6 semitones,
  CC38 cents), default ±2 semitones.
- Fixed-frequency operators ignore pitch bend and vibrato.
- Pitch bend, vibrato and the LFO are updated per span (at most 64 frames); envelopes are exact at
  span boundaries and linear in amplitude in between.
"""

from wifm_synth.engine.block import process_block
from wifm_synth.engine.layout import EngineState
from wifm_synth.engine.state import allocate_state
from wifm_synth.engine.synth import Synth, render_note

__all__ = ["EngineState", "Synth", "allocate_state", "process_block", "render_note"]
