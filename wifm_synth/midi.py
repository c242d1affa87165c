"""MIDI protocol numbers: channel-message kinds, controller numbers and the General MIDI drum channel.

These are facts of the MIDI 1.0 specification shared by the MIDI file reader, the MIDI input and the
engine's MIDI state machine; what the engine *does* with them lives in ``engine/midi.py``.
"""

MIDI_CHANNELS = 16
DRUM_CHANNEL = 9  # channel 10 as musicians count: General MIDI's percussion channel

# Channel-message kinds (the status byte's high nibble; the low nibble is the channel).
NOTE_OFF = 0x80
NOTE_ON = 0x90
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE_STATUS = 0xD0
PITCH_BEND = 0xE0

# Controller numbers.
CC_BANK_MSB = 0
CC_MOD_WHEEL = 1
CC_DATA_ENTRY_MSB = 6
CC_VOLUME = 7
CC_PAN = 10
CC_EXPRESSION = 11
CC_BANK_LSB = 32
CC_DATA_ENTRY_LSB = 38
CC_SUSTAIN = 64
CC_SOSTENUTO = 66
CC_NRPN_LSB = 98
CC_NRPN_MSB = 99
CC_RPN_LSB = 100
CC_RPN_MSB = 101
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123
PEDAL_DOWN = 64  # a pedal controller at or above this value is down
RPN_NULL = 127  # RPN/NRPN number that selects no parameter
