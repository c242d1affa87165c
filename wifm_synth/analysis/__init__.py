"""Sample analysis: loading, pitch, onset, per-frame harmonic spectrum, amplitude envelope."""
