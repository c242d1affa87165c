"""Adapters between the engine and the outside world: audio device, MIDI ports, MIDI files."""
