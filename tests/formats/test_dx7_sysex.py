"""DX7 SysEx codec: byte layouts as literal hex, round trips, lenient reading, fuzzing.

Every fixture here is built from the INIT VOICE or from hand-made voices; no cartridge from
elsewhere is stored in the repository.
"""

import importlib.util
import json
import random
import time

import pytest
from dx7_builders import (  # the sibling module: pytest puts this folder on sys.path
    CARTRIDGE_HEADER,
    REPO_ROOT,
    SINGLE_HEADER,
    cartridge_message,
    fuzz_inputs,
    hand_made_voice,
    hexdump,
    run_tool,
    seven_bit_bytes,
    valid_voices,
    with_byte,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from wifm_synth.errors import InputError, PatchError
from wifm_synth.formats.dx7_parameters import (
    ALL_PARAMETERS,
    OPERATOR_PARAMETER_NAMES,
    PACKED_SPARE_MASKS,
    VOICE_PARAMETER_NAMES,
    operator_block,
)
from wifm_synth.formats.dx7_sysex import (
    CARTRIDGE_MESSAGE_SIZE,
    SINGLE_MESSAGE_SIZE,
    Dx7Voice,
    cartridge_data,
    checksum,
    pack_cartridge_voice,
    pack_voice,
    read_syx,
    unpack_cartridge_voice,
    unpack_voice,
    write_cartridge,
    write_single,
)

# --- fixtures: literal bytes --------------------------------------------------------------------------

INIT_VOICE_UNPACKED = hexdump("""
    # operator blocks: R1-4 L1-4 BP LD RD LC RC RS AMS KVS OL M FC FF DET
    00  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 00 00 01 00 07  # op6
    15  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 00 00 01 00 07  # op5
    2A  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 00 00 01 00 07  # op4
    3F  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 00 00 01 00 07  # op3
    54  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 00 00 01 00 07  # op2
    69  63 63 63 63 63 63 63 00 00 00 00 00 00 00 00 00 63 00 01 00 07  # op1: output level 99
    # voice: PR1-4 PL1-4 ALG FB OKS LFS LFD LPMD LAMD LKS LFW LPMS TRNSP
    7E  63 63 63 63 32 32 32 32 00 00 01 23 00 00 00 01 00 03 18
    91  49 4E 49 54 20 56 4F 49 43 45                                   # "INIT VOICE"
""")

INIT_VOICE_PACKED = hexdump("""
    # operator blocks: R1-4 L1-4 BP LD RD, RC<<2|LC, DET<<3|RS, KVS<<2|AMS, OL, FC<<1|M, FF
    00  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op6
    11  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op5
    22  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op4
    33  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op3
    44  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op2
    55  63 63 63 63 63 63 63 00 00 00 00 00 38 00 63 02 00  # op1: output level 99
    # voice: PR1-4 PL1-4, ALG, OKS<<3|FB, LFS LFD LPMD LAMD, LPMS<<4|LFW<<1|LKS, TRNSP
    66  63 63 63 63 32 32 32 32 00 08 23 00 00 00 31 18
    76  49 4E 49 54 20 56 4F 49 43 45                      # "INIT VOICE"
""")


HAND_MADE_PACKED = hexdump("""
    # op6: BP 39; curves 2<<2|1; detune 12<<3 | rate scaling 5; KVS 6<<2 | AMS 3; OL 11; 17<<1 | fixed; fine 42
    00  63 63 63 63 63 63 63 00 27 00 00 09 65 1B 0B 23 2A
    11  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op5
    22  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op4
    33  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op3
    44  63 63 63 63 63 63 63 00 00 00 00 00 38 00 00 02 00  # op2
    55  63 63 63 63 63 63 63 00 00 00 00 00 38 00 4D 02 00  # op1: output level 77
    66  63 63 63 63 32 32 32 32 1F 0D 23 00 00 00 6B 30     # ALG 31; 1<<3|5; 6<<4|5<<1|1; transpose 48
    76  48 61 6E 64 20 4D 61 64 65 21                      # "Hand Made!"
""")

HAND_MADE_UNPACKED_OPERATOR_6_AND_VOICE = hexdump("""
    00  63 63 63 63 63 63 63 00 27 00 00 01 02 05 03 06 0B 01 11 2A 0C  # op6, one byte per parameter
""") + hexdump("""
    00  63 63 63 63 32 32 32 32 1F 05 01 23 00 00 00 01 05 06 30        # voice parameters
""")



# --- layout ---------------------------------------------------------------------------------------------

def test_parameter_table_covers_155_bytes_and_operator_6_comes_first():
    assert len(ALL_PARAMETERS) == 155
    assert len(OPERATOR_PARAMETER_NAMES) == 21 and len(VOICE_PARAMETER_NAMES) == 19
    assert [placed.operator for placed in ALL_PARAMETERS[::21][:6]] == [6, 5, 4, 3, 2, 1]
    assert operator_block(6) == 0 and operator_block(1) == 5
    spare_bytes = {offset % 17 if offset < 102 else offset: mask
                   for offset, mask in enumerate(PACKED_SPARE_MASKS) if mask}
    assert spare_bytes == {11: 0x70, 13: 0x60, 15: 0x40, 110: 0x60, 111: 0x70}


def test_init_voice_bytes_in_both_forms():
    voice = Dx7Voice.init_voice()
    assert pack_voice(voice) == INIT_VOICE_UNPACKED
    assert pack_cartridge_voice(voice) == INIT_VOICE_PACKED
    assert voice.name == "INIT VOICE" and voice.algorithm_number == 1
    assert voice.operator(1)["output_level"] == 99
    assert [voice.operator(number)["output_level"] for number in range(2, 7)] == [0] * 5
    assert voice.out_of_range() == []


def test_hand_made_voice_bit_packing():
    voice = hand_made_voice()
    assert pack_cartridge_voice(voice) == HAND_MADE_PACKED
    unpacked = pack_voice(voice)
    assert unpacked[0:21] + unpacked[126:145] == HAND_MADE_UNPACKED_OPERATOR_6_AND_VOICE
    assert unpacked[105 + 16] == 77  # operator 1 is the last block
    assert unpack_cartridge_voice(HAND_MADE_PACKED) == voice
    assert unpack_voice(unpacked) == voice
    assert voice.operator(6)["detune"] == 12 and voice.algorithm_number == 32


def test_single_voice_dump_header_checksum_and_size():
    message = write_single(Dx7Voice.init_voice())
    assert len(message) == SINGLE_MESSAGE_SIZE == 163
    assert message[:6] == SINGLE_HEADER
    assert message[6:161] == INIT_VOICE_UNPACKED
    assert message[161:] == bytes.fromhex("51 F7")  # 155 bytes summing to 5679; -5679 & 0x7F = 0x51
    assert write_single(Dx7Voice.init_voice(), channel=15)[:3] == bytes.fromhex("F0 43 0F")


def test_cartridge_dump_header_checksum_and_size():
    message = write_cartridge([Dx7Voice.init_voice()] * 32, channel=2)
    assert len(message) == CARTRIDGE_MESSAGE_SIZE == 4104
    assert message[:6] == bytes.fromhex("F0 43 02 09 20 00")
    assert message[6:134] == INIT_VOICE_PACKED and message[4102 - 128:4102] == INIT_VOICE_PACKED
    assert message[4102:] == bytes.fromhex("20 F7")  # 32 × 6031 = 192992; -192992 & 0x7F = 0x20
    assert checksum(bytes([1, 2, 3])) == 0x7A


@pytest.mark.parametrize("count", [0, 31, 33])
def test_cartridge_needs_exactly_32_voices(count):
    with pytest.raises(PatchError, match=f"exactly 32 voices, got {count}"):
        write_cartridge([Dx7Voice.init_voice()] * count)


def test_edits_are_range_checked():
    voice = Dx7Voice.init_voice()
    with pytest.raises(PatchError, match=r"op2 detune: must be an integer 0\.\.14, got 15"):
        voice.with_operator(2, detune=15)
    with pytest.raises(PatchError, match="'detune': not a DX7 voice parameter"):
        voice.with_values(detune=3)
    with pytest.raises(PatchError, match="operator"):
        voice.with_operator(7, detune=3)
    with pytest.raises(PatchError, match="printable ASCII"):
        voice.with_name("ELEVEN CHAR")
    with pytest.raises(PatchError, match="high bit"):
        Dx7Voice(bytes(154) + b"\x80")


# --- round trips ----------------------------------------------------------------------------------------

@given(valid_voices())
@settings(max_examples=300, derandomize=True)
def test_valid_voices_survive_both_forms(voice):
    assert unpack_voice(pack_voice(voice)) == voice
    assert unpack_cartridge_voice(pack_cartridge_voice(voice)) == voice
    assert unpack_voice(pack_voice(unpack_cartridge_voice(pack_cartridge_voice(voice)))) == voice
    assert read_syx(write_single(voice)).voices == (voice,)


@given(seven_bit_bytes(128))
@settings(max_examples=300, derandomize=True)
def test_any_packed_voice_repacks_byte_identical(packed):
    # Spare bits and out-of-range fields included: a cartridge re-exports exactly as stored.
    assert pack_cartridge_voice(unpack_cartridge_voice(packed)) == packed


@given(seven_bit_bytes(155))
@settings(max_examples=300, derandomize=True)
def test_any_unpacked_voice_repacks_byte_identical(unpacked):
    assert pack_voice(unpack_voice(unpacked)) == unpacked


@given(st.integers(0, 2**32 - 1), st.integers(0, 15))
@settings(max_examples=30, derandomize=True)
def test_generated_cartridges_round_trip(seed, channel):
    # Any 7-bit data, out-of-range values and spare bits included; drawn from a seed because
    # Hypothesis would otherwise have to generate (and could not usefully shrink) 4096 bytes.
    data = bytes(byte & 0x7F for byte in random.Random(seed).randbytes(4096))
    message = bytes((0xF0, 0x43, channel, 0x09, 0x20, 0x00)) + data + bytes((checksum(data), 0xF7))
    read = read_syx(message, "cart.syx")
    assert read.channel == channel and len(read.voices) == 32
    exported = write_cartridge(read.voices, channel)
    assert exported == message  # import → export
    assert write_cartridge(read_syx(exported).voices, channel) == exported  # export → import → export
    assert cartridge_data(read_syx(data).voices) == data  # headerless too


def test_out_of_range_values_read_clamped_and_re_export_as_stored():
    packed = bytearray(INIT_VOICE_PACKED)
    packed[12] = 0x7F  # op6 detune 15 (max 14), rate scaling 7
    packed[116] = 0x7F  # LFO wave 7 (max 5)
    packed[117] = 0x70  # transpose 112 (max 48)
    packed[111] |= 0x70  # spare bits, kept quietly
    data = bytes(packed) * 32
    read = read_syx(write_cartridge([unpack_cartridge_voice(data[:128])] * 32), "odd.syx")
    (warning,) = read.warnings
    assert warning.startswith("96 value(s) beyond the DX7's ranges: voice 1 'INIT VOICE': op6 detune 15 > 14, "
                              "lfo_wave 7 > 5, transpose 112 > 48; voice 2")
    assert warning.endswith("(and 88 more); read clamped, kept as stored for re-export")
    voice = read.voices[0]
    assert voice.operator(6)["detune"] == 14 and voice.raw_value("detune", 6) == 15
    assert voice.voice_parameters()["lfo_wave"] == 5 and voice.value("transpose") == 48
    assert cartridge_data(read.voices) == data
    assert voice.clamped().out_of_range() == [] and voice.clamped().value("transpose") == 48
    with pytest.raises(InputError, match=r"^odd.syx: 96 value\(s\) beyond .*\(strict reading\)$"):
        read_syx(write_cartridge(read.voices), "odd.syx", strict=True)


def test_unprintable_name_codes_display_replaced_and_round_trip():
    raw = bytearray(INIT_VOICE_UNPACKED)
    raw[145:155] = b"AB\x00\x1f\x7fC\\~  "
    voice = unpack_voice(bytes(raw))
    assert voice.name == "AB???C\\~  " and voice.name_bytes == b"AB\x00\x1f\x7fC\\~  "
    assert read_syx(write_single(voice)).voices[0].raw == bytes(raw)
    assert read_syx(write_single(voice)).warnings == ()


# --- lenient reading ------------------------------------------------------------------------------------

@pytest.mark.parametrize("channel", [0, 9, 15])
def test_any_channel_nibble_is_read(channel):
    read = read_syx(cartridge_message(channel), "cart.syx")
    assert (read.kind, read.channel, read.warnings) == ("cartridge", channel, ())
    assert read.names[31] == "VOICE 32  "
    single = read_syx(write_single(hand_made_voice(), channel))
    assert (single.kind, single.channel, single.voices) == ("single", channel, (hand_made_voice(),))


def test_headerless_4096_byte_cartridge():
    read = read_syx(cartridge_message()[6:-2], "bare.bin")
    assert (read.kind, read.channel, len(read.voices), read.warnings) == ("cartridge", None, 32, ())


def test_first_dx7_dump_among_several_messages():
    foreign = bytes.fromhex("F0 41 10 42 12 40 00 7F 00 41 F7")  # another maker's SysEx
    parameter_change = bytes.fromhex("F0 43 10 01 22 05 F7")  # a DX7 message that is not a dump
    data = foreign + parameter_change + write_single(hand_made_voice(), 3) + cartridge_message()
    read = read_syx(data, "mixed.syx")
    assert (read.kind, read.channel, read.voices) == ("single", 3, (hand_made_voice(),))
    assert read.warnings == ("1 more DX7 voice dump(s) after offset 181 ignored; read the first usable one",)


def test_broken_dumps_before_a_usable_one_are_skipped_with_one_warning():
    broken_single = write_single(hand_made_voice())[:80] + b"\xf7"
    broken_cartridge = with_byte(cartridge_message(), 10, 0x90)
    data = broken_single + broken_cartridge + write_single(hand_made_voice(), 1)
    read = read_syx(data, "mixed.syx")
    assert read.voices == (hand_made_voice(),) and read.channel == 1
    (warning,) = read.warnings
    assert warning == ("skipped 2 unusable DX7 voice dump(s) before offset 4185 (first: truncated single-voice "
                       "dump at offset 0: the message ends after 74 of 155 data bytes)")
    with pytest.raises(InputError, match="^mixed.syx: truncated single-voice dump at offset 0"):
        read_syx(data, "mixed.syx", strict=True)
    with pytest.raises(InputError, match="^mixed.syx: truncated single-voice dump at offset 0"):
        read_syx(broken_single + broken_cartridge, "mixed.syx")


def test_wrong_checksum_loads_with_one_warning_and_strict_refuses():
    data = bytearray(cartridge_message())
    assert data[4102] == 0x7F
    data[4102] = 0x00
    read = read_syx(bytes(data), "bad.syx")
    assert read.warnings == ("checksum mismatch in the 32-voice dump: expected 0x7F, found 0x00; loaded anyway",)
    assert len(read.voices) == 32
    with pytest.raises(InputError, match=r"^bad.syx: checksum mismatch .* expected 0x7F, found 0x00 \(strict"):
        read_syx(bytes(data), "bad.syx", strict=True)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty file"),
    (b"hello, not a sysex file", "not a DX7 voice dump: no SysEx message, and 23 bytes is not a bare 4096"),
    (bytes.fromhex("F0 41 10 42 F7"), "no DX7 voice dump among 1 SysEx message(s)"),
    (bytes(4095), "4095 bytes is not a bare 4096-byte cartridge"),
    (cartridge_message()[:3000], "truncated 32-voice dump at offset 0: the file ends after 2994 of 4096 data bytes"),
    (cartridge_message()[:4102], "truncated 32-voice dump at offset 0: the file ends before the checksum"),
    (cartridge_message()[:4103], "the file ends before the closing F7"),
    (cartridge_message()[:5], "the file ends inside its header"),
    (cartridge_message()[:2000] + b"\xf7", "the message ends after 1994 of 4096 data bytes"),
    (cartridge_message()[:4102] + b"\xf7", "truncated 32-voice dump at offset 0: the message ends before its checksum"),
    (cartridge_message()[:-1] + b"\x00\xf7", "32-voice dump at offset 0 is longer than its 4096 data bytes"),
    (with_byte(cartridge_message(), 100, 0x80), "byte 0x80 at offset 100 has the high bit set"),
    (with_byte(cartridge_message()[6:-2], 7, 0xFF), "headerless 32-voice data: byte 0xFF at offset 7 has the high bit"),
    (with_byte(cartridge_message(), 5, 0x01), "declares 4097 data bytes; a DX7 32-voice dump holds 4096"),
    (write_single(Dx7Voice.init_voice())[:100], "truncated single-voice dump"),
])
def test_unusable_files_raise_one_line_input_errors(data, reason):
    with pytest.raises(InputError) as caught:
        read_syx(data, "x.syx")
    message = str(caught.value)
    assert message.startswith("x.syx: ") and reason in message and "\n" not in message


# --- fuzzing --------------------------------------------------------------------------------------------

@given(fuzz_inputs)
@settings(max_examples=2000, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_fuzz_reader_only_returns_or_raises_input_error(data):
    # Strict reading refuses a superset of what lenient reading refuses, so it runs only on files
    # the lenient reader loaded.
    for strict in (False, True):
        try:
            read = read_syx(data, "fuzz.syx", strict=strict)
        except InputError as error:
            assert "\n" not in str(error)
            event("refused" if not strict else "loaded leniently, refused strictly")
            return
        assert all(len(warning.splitlines()) == 1 for warning in read.warnings)
        if read.kind == "single":
            assert read_syx(write_single(read.voices[0], read.channel)).voices == read.voices
        else:
            assert len(read.voices) == 32
            assert read_syx(write_cartridge(read.voices, read.channel or 0)).voices == read.voices
    event("loaded strictly")


# --- tools ----------------------------------------------------------------------------------------------

def test_fuzz_tool_reports_json(tmp_path):
    result = run_tool("tools/fuzz_dx7.py", "--cases", "150", "--failures-dir", str(tmp_path / "failures"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cases"] == 150 and report["failures"] == 0
    assert report["loaded"] + report["loaded_with_warnings"] + report["refused"] == 150
    assert not (tmp_path / "failures").exists()


def test_roundtrip_tool_on_a_generated_cartridge(tmp_path):
    cart = tmp_path / "made.syx"
    cart.write_bytes(cartridge_message(channel=4))
    result = run_tool("tools/dx7_roundtrip.py", str(cart), "--json", "--repeat", "3")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["byte_identical"] and report["second_roundtrip_identical"] and report["channel"] == 5
    assert report["names"][0] == "VOICE 1   " and report["import_ms"] < 50 and report["export_ms"] < 50
    bad = tmp_path / "bad.syx"
    bad.write_bytes(with_byte(cartridge_message(), 4102, 0))
    text = run_tool("tools/dx7_roundtrip.py", str(bad)).stdout
    assert "only the checksum" in text and "data bytes identical: yes" in text


def test_fuzz_tool_saves_failing_inputs(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("fuzz_dx7", REPO_ROOT / "tools" / "fuzz_dx7.py")
    fuzz_dx7 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz_dx7)
    monkeypatch.setattr(fuzz_dx7, "check", lambda data, outcomes: "planted failure")
    report = fuzz_dx7.run(3, seed=7, failures_dir=tmp_path / "failures")
    assert report["failures"] == 3 and report["failures_dir"] == str(tmp_path / "failures")
    assert sorted(path.name for path in (tmp_path / "failures").iterdir()) == [
        "case_0.syx", "case_0.txt", "case_1.syx", "case_1.txt", "case_2.syx", "case_2.txt"]
    assert (tmp_path / "failures" / "case_1.txt").read_text() == "planted failure"


def test_scanning_many_broken_headers_stays_fast():
    # A hostile file: a 32-voice dump header every 6 bytes, none of them complete (about 1 MB).
    data = CARTRIDGE_HEADER * 170_000
    started = time.perf_counter()
    with pytest.raises(InputError, match="truncated 32-voice dump at offset 0"):
        read_syx(data, "hostile.syx")
    assert time.perf_counter() - started < 5  # linear scan: well under a second on an idle machine
