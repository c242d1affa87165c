"""wifm_synth: learn FM synthesizer patches from recorded notes and play them live."""

__version__ = "0.1.0"
