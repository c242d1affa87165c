"""The DX7 voice parameters as one table, and the two byte forms of a voice derived from it.

A DX7 voice has 155 parameters. The single-voice dump stores them one per byte (the *unpacked*
form, 155 bytes); the 32-voice cartridge dump packs them into 128 bytes per voice by sharing bytes
between small fields (the *packed* form). Both forms store the operators **operator 6 first**:
block 0 is operator 6, block 5 is operator 1 (see ``operator_block``).

Unpacked form (155 bytes)::

    offset    what
    0..20     operator 6: the 21 operator parameters below, one per byte, in table order
    21..125   operators 5, 4, 3, 2, 1 (21 bytes each)
    126..144  voice parameters, one per byte, in table order
    145..154  name, 10 characters

Packed form (128 bytes; bit 7 of every byte is 0, ``.`` marks a bit no parameter uses)::

    byte      bits 6..0                          per operator block (17 bytes, operator 6 first)
    0..3      EG rates 1..4                      0..99 each
    4..7      EG levels 1..4                     0..99 each
    8..10     break point, left depth, right depth
    11        . . . RC RC LC LC                  right curve << 2 | left curve (0..3 each)
    12        DET DET DET DET RS RS RS           detune (0..14) << 3 | rate scaling (0..7)
    13        . . KVS KVS KVS AMS AMS            key velocity sens. (0..7) << 2 | amp mod sens. (0..3)
    14        output level                       0..99
    15        . FC FC FC FC FC M                 coarse (0..31) << 1 | oscillator mode (0 ratio, 1 fixed)
    16        fine                               0..99
    102..109  pitch EG rates 1..4, levels 1..4   0..99 each
    110       . . ALG ALG ALG ALG ALG            algorithm 0..31 (shown as 1..32)
    111       . . . OKS FB FB FB                 oscillator key sync (0..1) << 3 | feedback (0..7)
    112..115  LFO speed, delay, pitch mod depth, amp mod depth (0..99 each)
    116       PMS PMS PMS WAVE WAVE WAVE SYNC    pitch mod sens. (0..7) << 4 | LFO wave (0..5) << 1 | LFO key sync
    117       transpose                          0..48 (24 is middle C)
    118..127  name, 10 characters

The packed bits marked ``.`` carry nothing, but real cartridges sometimes have them set; they are
kept aside (``PACKED_SPARE_MASKS``) so that a cartridge re-exports byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

OPERATOR_COUNT = 6
OPERATOR_UNPACKED_SIZE = 21
OPERATOR_PACKED_SIZE = 17
VOICE_UNPACKED_SIZE = 155
VOICE_PACKED_SIZE = 128
NAME_LENGTH = 10
SEVEN_BITS = 0x7F


@dataclass(frozen=True)
class Dx7Parameter:
    """One parameter: where it sits in each byte form and the largest value the DX7 accepts.

    Offsets of operator parameters are relative to their operator's block; ``packed_shift`` and
    ``packed_width`` say which bits of ``packed_byte`` hold the value (width 7 = the whole byte)."""

    name: str
    unpacked_offset: int
    maximum: int
    packed_byte: int
    packed_shift: int = 0
    packed_width: int = 7

    @property
    def packed_mask(self) -> int:
        """The value's bits, before shifting: the largest value the packed field can hold."""
        return (1 << self.packed_width) - 1


P = Dx7Parameter
OPERATOR_PARAMETERS: tuple[Dx7Parameter, ...] = (
    P("eg_rate_1", 0, 99, 0),
    P("eg_rate_2", 1, 99, 1),
    P("eg_rate_3", 2, 99, 2),
    P("eg_rate_4", 3, 99, 3),
    P("eg_level_1", 4, 99, 4),
    P("eg_level_2", 5, 99, 5),
    P("eg_level_3", 6, 99, 6),
    P("eg_level_4", 7, 99, 7),
    P("level_scaling_break_point", 8, 99, 8),  # 0 is A-1, 39 is C3
    P("level_scaling_left_depth", 9, 99, 9),
    P("level_scaling_right_depth", 10, 99, 10),
    P("level_scaling_left_curve", 11, 3, 11, 0, 2),  # 0 -LIN, 1 -EXP, 2 +EXP, 3 +LIN
    P("level_scaling_right_curve", 12, 3, 11, 2, 2),
    P("rate_scaling", 13, 7, 12, 0, 3),
    P("amp_mod_sensitivity", 14, 3, 13, 0, 2),
    P("key_velocity_sensitivity", 15, 7, 13, 2, 3),
    P("output_level", 16, 99, 14),
    P("oscillator_mode", 17, 1, 15, 0, 1),  # 0 ratio, 1 fixed frequency
    P("frequency_coarse", 18, 31, 15, 1, 5),
    P("frequency_fine", 19, 99, 16),
    P("detune", 20, 14, 12, 3, 4),  # 7 is no detune
)

VOICE_PARAMETERS: tuple[Dx7Parameter, ...] = (
    P("pitch_eg_rate_1", 126, 99, 102),
    P("pitch_eg_rate_2", 127, 99, 103),
    P("pitch_eg_rate_3", 128, 99, 104),
    P("pitch_eg_rate_4", 129, 99, 105),
    P("pitch_eg_level_1", 130, 99, 106),  # 50 is no pitch change
    P("pitch_eg_level_2", 131, 99, 107),
    P("pitch_eg_level_3", 132, 99, 108),
    P("pitch_eg_level_4", 133, 99, 109),
    P("algorithm", 134, 31, 110, 0, 5),  # stored 0..31 for algorithms 1..32
    P("feedback", 135, 7, 111, 0, 3),
    P("oscillator_key_sync", 136, 1, 111, 3, 1),
    P("lfo_speed", 137, 99, 112),
    P("lfo_delay", 138, 99, 113),
    P("lfo_pitch_mod_depth", 139, 99, 114),
    P("lfo_amp_mod_depth", 140, 99, 115),
    P("lfo_key_sync", 141, 1, 116, 0, 1),
    P("lfo_wave", 142, 5, 116, 1, 3),  # triangle, saw down, saw up, square, sine, sample and hold
    P("pitch_mod_sensitivity", 143, 7, 116, 4, 3),
    P("transpose", 144, 48, 117),  # semitones, 24 is no transposition
)

NAME_UNPACKED_OFFSET = 145
NAME_PACKED_OFFSET = 118
# Name characters are 7-bit codes; any value is kept, so their maximum is the byte's.
NAME_PARAMETERS: tuple[Dx7Parameter, ...] = tuple(
    P(f"name_{index + 1}", NAME_UNPACKED_OFFSET + index, SEVEN_BITS, NAME_PACKED_OFFSET + index)
    for index in range(NAME_LENGTH))
del P


def operator_block(operator: int) -> int:
    """The block (0..5) holding DX7 operator ``operator`` (1..6): both forms store operator 6 first."""
    if not 1 <= operator <= OPERATOR_COUNT:
        raise ValueError(f"operator must be 1..{OPERATOR_COUNT}, got {operator!r}")
    return OPERATOR_COUNT - operator


@dataclass(frozen=True)
class PlacedParameter:
    """A parameter of the whole voice: its table row placed at absolute offsets in both forms."""

    parameter: Dx7Parameter
    operator: int | None  # 1..6, or None for a voice-wide parameter
    unpacked_index: int
    packed_index: int

    @property
    def label(self) -> str:
        """How messages name it: ``op2 detune``, ``algorithm``."""
        prefix = f"op{self.operator} " if self.operator is not None else ""
        return prefix + self.parameter.name


def _place_all() -> tuple[PlacedParameter, ...]:
    placed = []
    for block in range(OPERATOR_COUNT):  # block order = storage order: operator 6 first
        operator = OPERATOR_COUNT - block
        for parameter in OPERATOR_PARAMETERS:
            placed.append(PlacedParameter(
                parameter, operator, block * OPERATOR_UNPACKED_SIZE + parameter.unpacked_offset,
                block * OPERATOR_PACKED_SIZE + parameter.packed_byte))
    for parameter in VOICE_PARAMETERS + NAME_PARAMETERS:
        placed.append(PlacedParameter(parameter, None, parameter.unpacked_offset, parameter.packed_byte))
    return tuple(placed)


ALL_PARAMETERS: tuple[PlacedParameter, ...] = _place_all()
PARAMETER_BY_KEY: dict[tuple[int | None, str], PlacedParameter] = {
    (placed.operator, placed.parameter.name): placed for placed in ALL_PARAMETERS}
OPERATOR_PARAMETER_NAMES: tuple[str, ...] = tuple(parameter.name for parameter in OPERATOR_PARAMETERS)
VOICE_PARAMETER_NAMES: tuple[str, ...] = tuple(parameter.name for parameter in VOICE_PARAMETERS)


def _packed_spare_masks() -> bytes:
    used = bytearray(VOICE_PACKED_SIZE)
    for placed in ALL_PARAMETERS:
        field_bits = placed.parameter.packed_mask << placed.parameter.packed_shift
        if used[placed.packed_index] & field_bits:
            raise AssertionError(f"{placed.label} overlaps another field in packed byte {placed.packed_index}")
        used[placed.packed_index] |= field_bits
    return bytes(SEVEN_BITS & ~bits for bits in used)


PACKED_SPARE_MASKS: bytes = _packed_spare_masks()
_SPARE_BITS = int.from_bytes(PACKED_SPARE_MASKS, "big")

# The table must cover every byte of the unpacked form exactly once.
if sorted(placed.unpacked_index for placed in ALL_PARAMETERS) != list(range(VOICE_UNPACKED_SIZE)):
    raise AssertionError("DX7 parameter table does not cover the 155 unpacked bytes exactly once")
if any(placed.parameter.maximum > placed.parameter.packed_mask for placed in ALL_PARAMETERS):
    raise AssertionError("a DX7 parameter's maximum does not fit its packed field")

# Flat rows for the byte loops: (unpacked index, packed index, shift, field mask, maximum).
_CODEC_ROWS = tuple(
    (placed.unpacked_index, placed.packed_index, placed.parameter.packed_shift,
     placed.parameter.packed_mask, placed.parameter.maximum) for placed in ALL_PARAMETERS)


def unpack_packed_bytes(packed: bytes) -> tuple[bytes, bytes]:
    """128 packed bytes → (155 unpacked bytes, the spare bits of each packed byte).

    Fields are read at their full packed width, so a value above the DX7's range (detune 15, LFO
    wave 7, a level of 120) comes through unchanged for the caller to report and clamp."""
    if len(packed) != VOICE_PACKED_SIZE:
        raise ValueError(f"a packed DX7 voice is {VOICE_PACKED_SIZE} bytes, got {len(packed)}")
    unpacked = bytearray(VOICE_UNPACKED_SIZE)
    for unpacked_index, packed_index, shift, mask, _maximum in _CODEC_ROWS:
        unpacked[unpacked_index] = (packed[packed_index] >> shift) & mask
    spare = (int.from_bytes(packed, "big") & _SPARE_BITS).to_bytes(VOICE_PACKED_SIZE, "big")
    return bytes(unpacked), spare


def pack_unpacked_bytes(unpacked: bytes, spare: bytes = bytes(VOICE_PACKED_SIZE)) -> bytes:
    """155 unpacked bytes (+ spare bits) → 128 packed bytes.

    A value too wide for its packed field (possible only in a voice that came from the unpacked
    form) is clamped to the DX7's maximum rather than masked, so it cannot spill into a neighbour."""
    if len(unpacked) != VOICE_UNPACKED_SIZE:
        raise ValueError(f"an unpacked DX7 voice is {VOICE_UNPACKED_SIZE} bytes, got {len(unpacked)}")
    packed = bytearray((int.from_bytes(spare, "big") & _SPARE_BITS).to_bytes(VOICE_PACKED_SIZE, "big"))
    for unpacked_index, packed_index, shift, mask, maximum in _CODEC_ROWS:
        value = unpacked[unpacked_index]
        if value > mask:
            value = maximum
        packed[packed_index] |= value << shift
    return bytes(packed)
