"""File formats: patch and bank JSON, SFZ, Standard MIDI Files, atomic writes."""
