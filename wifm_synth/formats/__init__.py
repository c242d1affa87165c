"""File formats: patch and bank JSON, SFZ, Standard MIDI Files, DX7 SysEx voice dumps, atomic writes."""
