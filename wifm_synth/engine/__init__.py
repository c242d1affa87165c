"""Real-time FM engine: Numba kernels, voice pool, MIDI state machine. Imports numpy/numba only."""
