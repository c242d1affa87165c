"""Builders shared by the DX7 SysEx tests: a hexdump reader, hand-made voices and cartridges, and
Hypothesis strategies for valid voices and for fuzzing the reader (valid dumps, mutated)."""

import os
import random
import subprocess
import sys
from pathlib import Path

from hypothesis import strategies as st

from wifm_synth.formats.dx7_parameters import ALL_PARAMETERS
from wifm_synth.formats.dx7_sysex import Dx7Voice, write_cartridge, write_single

REPO_ROOT = Path(__file__).resolve().parents[2]
SINGLE_HEADER = bytes.fromhex("F0 43 00 00 01 1B")
CARTRIDGE_HEADER = bytes.fromhex("F0 43 00 09 20 00")


def hexdump(text: str) -> bytes:
    """Bytes from lines ``OFFSET  HEX HEX …  # comment``; each line's offset (hex) is checked."""
    data = bytearray()
    for line in text.strip().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        offset, _, hex_bytes = line.partition(" ")
        assert int(offset, 16) == len(data), f"fixture line at {offset} starts at byte {len(data):X}"
        data += bytes.fromhex(hex_bytes)
    return bytes(data)


def hand_made_voice() -> Dx7Voice:
    """Each bit-packed field of operator 6 and of the voice set to a distinct, recognisable value."""
    return (Dx7Voice.init_voice()
            .with_operator(6, level_scaling_break_point=39, level_scaling_left_curve=1,
                           level_scaling_right_curve=2, rate_scaling=5, detune=12, amp_mod_sensitivity=3,
                           key_velocity_sensitivity=6, output_level=11, oscillator_mode=1, frequency_coarse=17,
                           frequency_fine=42)
            .with_operator(1, output_level=77)
            .with_values(algorithm=31, feedback=5, oscillator_key_sync=1, lfo_key_sync=1, lfo_wave=5,
                         pitch_mod_sensitivity=6, transpose=48)
            .with_name("Hand Made!"))


def cartridge_message(channel=0) -> bytes:
    """A 32-voice dump of INIT VOICEs named VOICE 1 … VOICE 32."""
    voices = [Dx7Voice.init_voice().with_name(f"VOICE {number}") for number in range(1, 33)]
    return write_cartridge(voices, channel)


def with_byte(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with the byte at ``offset`` replaced by ``value``."""
    changed = bytearray(data)
    changed[offset] = value
    return bytes(changed)


NON_NAME_PARAMETERS = [placed for placed in ALL_PARAMETERS if not placed.parameter.name.startswith("name_")]


def seven_bit_bytes(size: int):
    """``size`` bytes of 0x00..0x7F (drawn as binary, which Hypothesis generates fast)."""
    return st.binary(min_size=size, max_size=size).map(lambda data: bytes(byte & 0x7F for byte in data))


@st.composite
def valid_voices(draw) -> Dx7Voice:
    """A voice with every parameter in the DX7's range (each drawn byte folded into its range)."""
    drawn = draw(st.binary(min_size=len(NON_NAME_PARAMETERS), max_size=len(NON_NAME_PARAMETERS)))
    raw = bytearray(Dx7Voice.init_voice().raw)
    for placed, byte in zip(NON_NAME_PARAMETERS, drawn):
        raw[placed.unpacked_index] = byte % (placed.parameter.maximum + 1)
    name = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10))
    return Dx7Voice(bytes(raw)).with_name(name)


FUZZ_BASES = (cartridge_message(), write_single(hand_made_voice(), 5), cartridge_message()[6:-2])
MUTATIONS = st.lists(st.tuples(st.sampled_from(("set", "flip", "delete", "insert", "cut")),
                                st.integers(0, 4200), st.integers(0, 255)), min_size=1, max_size=3)


def mutated(base: bytes, mutations) -> bytes:
    data = bytearray(base)
    for kind, position, value in mutations:
        position %= len(data) + 1
        if kind == "set" and position < len(data):
            data[position] = value & 0x7F  # a 7-bit change loads (checksum, ranges); "flip" sets high bits
        elif kind == "flip" and position < len(data):
            data[position] ^= 1 << (value % 8)
        elif kind == "delete":
            del data[position:position + value + 1]
        elif kind == "insert":
            data[position:position] = bytes([value])
        elif kind == "cut":
            del data[position:]
    return bytes(data)


def seeded_bytes(seed: int, size: int) -> bytes:
    """``size`` random bytes from ``seed``."""
    return random.Random(seed).randbytes(size)


# Random bytes come from a drawn seed: drawing each byte through Hypothesis costs more than reading them.
random_bytes = st.builds(seeded_bytes, st.integers(0, 2**32 - 1), st.integers(0, 300))
fuzz_inputs = st.one_of(
    st.binary(max_size=16),
    random_bytes,
    st.builds(lambda header, tail: header + tail, st.sampled_from((SINGLE_HEADER, CARTRIDGE_HEADER)),
              random_bytes),
    st.builds(mutated, st.sampled_from(FUZZ_BASES), MUTATIONS),
)


def run_tool(*arguments) -> subprocess.CompletedProcess:
    """Run a script under tools/ with this checkout's package importable."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=environment,
                          cwd=REPO_ROOT, timeout=120, check=False)
