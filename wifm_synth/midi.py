"""MIDI protocol numbers: channel-message kinds, controller numbers and the General MIDI drum channel.

These are facts of the MIDI 1.0 specification shared by the MIDI file reader, the MIDI input and the
engine's MIDI state machine; what the engine *does* with them lives in ``engine/midi.py``.
"""

MIDI_CHANNELS = 16
DRUM_CHANNEL = 9  # channel 10 as musicians count: General MIDI's percussion channel

# Channel-message kinds (the status byte's high nibble; the low nibble is the channel).
NOTE_OFF = 0x80
NOTE_ON = 0x90
KEY_PRESSURE_STATUS = 0xA0  # polyphonic aftertouch
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
CC_SOFT_PEDAL = 67
CC_NRPN_LSB = 98
CC_NRPN_MSB = 99
CC_RPN_LSB = 100
CC_RPN_MSB = 101
CC_ALL_SOUND_OFF = 120
CC_RESET_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123
PEDAL_DOWN = 64  # a pedal controller at or above this value is down
RPN_NULL = 127  # RPN/NRPN number that selects no parameter

# System exclusive resets that return every channel to its power-on state.
GM_SYSTEM_ON = bytes([0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7])
GM2_SYSTEM_ON = bytes([0xF0, 0x7E, 0x7F, 0x09, 0x03, 0xF7])
GS_RESET = bytes([0xF0, 0x41, 0x10, 0x42, 0x12, 0x40, 0x00, 0x7F, 0x00, 0x41, 0xF7])


def is_system_reset(message: bytes) -> bool:
    """GM System On, GM2 System On, or Roland GS Reset (any device id)."""
    if message[:2] == GS_RESET[:2] and len(message) == len(GS_RESET):
        return message[3:] == GS_RESET[3:]  # byte 2 is the device id
    return len(message) == len(GM_SYSTEM_ON) and message[:2] == GM_SYSTEM_ON[:2] and message[3:] in (
        GM_SYSTEM_ON[3:], GM2_SYSTEM_ON[3:])  # byte 2 is the device id (0x7F: every device)


# The player's master settings (``wifm play --gain/--tuning``, the shell's gain and tuning).
STANDARD_A4_HZ = 440.0
A4_HZ_LOWEST = 400.0
A4_HZ_HIGHEST = 480.0
GAIN_DB_LOWEST = -120.0
GAIN_DB_HIGHEST = 60.0
