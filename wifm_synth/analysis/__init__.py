"""Sample analysis: loading, pitch, onset, per-frame harmonic spectrum, amplitude envelope."""

from wifm_synth.analysis.audio import load_audio
from wifm_synth.analysis.sample import SampleAnalysis, analyze, hz_to_midi, midi_to_hz

__all__ = ["SampleAnalysis", "analyze", "hz_to_midi", "load_audio", "midi_to_hz"]
