"""SFZ reading: scopes and inheritance, keys as names or numbers, paths, comments, and one-line errors."""

import pytest

from wifm_synth.errors import InputError
from wifm_synth.formats.sfz import RegionSound, SfzRegion, read_sfz


@pytest.fixture
def library(tmp_path):
    """An SFZ folder layout with a few (content-free) sample files."""
    for relative in ("samples/piano C4.wav", "samples/piano_G4.wav", "samples/soft/piano C4.wav", "other/low.wav"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"RIFF")
    return tmp_path


def write_sfz(folder, text, name="instrument.sfz"):
    path = folder / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_regions_inherit_from_control_global_group(library):
    path = write_sfz(library, """
// a comment line
<control> default_path=samples/
<global> lovel=0 hivel=127 /* block comment
spanning lines */ ampeg_release=0.3
<group> hivel=63
<region> sample=soft\\piano C4.wav lokey=c3 hikey=e4 pitch_keycenter=c4 // trailing comment
<region> sample=piano_G4.wav lokey=f4 hikey=127 pitch_keycenter=67 lovel=20
<group> lovel=64
<region> sample=piano C4.wav key=60
""")
    instrument = read_sfz(path)
    assert instrument.skipped == []
    released = RegionSound(release_s=0.3)
    assert instrument.regions == [
        SfzRegion(sample=library / "samples/soft/piano C4.wav", line=7, key_lo=48, key_hi=64, vel_lo=1, vel_hi=63,
                  pitch_keycenter=60, sound=released),
        SfzRegion(sample=library / "samples/piano_G4.wav", line=8, key_lo=65, key_hi=127, vel_lo=20, vel_hi=63,
                  pitch_keycenter=67, sound=released),
        # A new <group> drops the previous group's opcodes but keeps the <global> ones.
        SfzRegion(sample=library / "samples/piano C4.wav", line=10, key_lo=60, key_hi=60, vel_lo=64, vel_hi=127,
                  pitch_keycenter=60, sound=released),
    ]


def test_defaults_offsets_and_skipped_regions(library):
    path = write_sfz(library, """<control> note_offset=-1 octave_offset=1
<region> sample=../other/low.wav pitch_keycenter=sample
<region> sample=../samples/piano_G4.wav lokey=c#4 hikey=Db5 trigger=release
<region> sample=*sine key=60
<master> <region> sample=../samples/piano_G4.wav seq_position=2 key=a3
""", name="sub/offsets.sfz")
    instrument = read_sfz(path)
    first, second = instrument.regions
    assert (first.key_lo, first.key_hi, first.vel_lo, first.vel_hi, first.pitch_keycenter) == (0, 127, 1, 127, None)
    assert first.sample.resolve() == (library / "other/low.wav").resolve()
    assert (second.key_lo, second.key_hi, second.pitch_keycenter, second.seq_position) == (68, 68, 68, 2)
    assert len(instrument.skipped) == 2
    assert "line 3: trigger=release" in instrument.skipped[0]
    assert "line 4: *sine is a built-in generator" in instrument.skipped[1]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<region> sample=piano_G4.wav\n<regoin> sample=x.wav", "line 2: unknown header <regoin>"),
        ("<group>\nlokey=60 hikey 70\n<region> sample=piano_G4.wav", "line 2: lokey=60 hikey 70: expected a midi key"),
        ("sample=piano_G4.wav\n<region>", "line 1: opcode 'sample' before any <header>"),
        ("<region> sample=piano_G4.wav\nhello world", "line 2: unexpected text 'hello world'"),
        ("#pragma once\n<region> sample=piano_G4.wav", "line 1: #pragma is not understood"),
        ('#include "other.sfz"', 'line 1: #include "other.sfz": not found'),
        ('#include "../../x.sfz"', 'line 1: #include "../../x.sfz": leaves the library folder'),
        ('#include "instrument.sfz"', 'line 1: #include "instrument.sfz": includes itself'),
        ("<region> sample=piano_G4.wav\n<region sample=x.wav", "line 2: unterminated <header>"),
        ("<region> sample=piano_G4.wav lokey=70 hikey=60", "line 1: hikey 60 is below lokey 70"),
        ("<region> sample=piano_G4.wav hivel=200", "line 1: hivel=200: expected an integer 1..127"),
        ("<region> sample=piano_G4.wav key=g#9", "line 1: key=g#9: expected a midi key"),
        ("<region> sample=piano_G4.wav key=128", "line 1: key=128: key 128 is outside 0..127"),
        ("<region> lokey=60", "line 1: <region> has no sample opcode"),
        ("<region> sample=", "line 1: opcode 'sample' has no value"),
        ("<region> <group> sample=x.wav", "line 1: <region> has no sample opcode"),
        ("// only a comment\n", "has no <region> with a sample"),
        ("<region> sample=piano_G4.wav\n offset=144000 end=99", "line 2: end=99 is before offset=144000"),
        ("<region> sample=piano_G4.wav amp_veltrack=x", "line 1: amp_veltrack=x: expected a number -100..100"),
        ("<region> sample=piano_G4.wav key=60\ntranspose=200", "line 2: transpose=200: expected an integer"),
        ("<global> tune=-20.5\n<region> sample=piano_G4.wav", "line 1: tune=-20.5: expected an integer -9600..9600"),
        ("<region> sample=piano_G4.wav tune=9700", "line 1: tune=9700: expected an integer -9600..9600"),
    ],
)
def test_syntax_errors_name_the_file_and_line(library, text, problem):
    path = write_sfz(library / "samples", text)
    with pytest.raises(InputError) as error:
        read_sfz(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert problem.lower() in message.lower()
    assert "\n" not in message


def test_missing_sample_names_the_sfz_and_the_sample(library):
    path = write_sfz(library, "<control> default_path=samples/\n\n<region> key=60\nsample=missing piano.wav\n")
    with pytest.raises(InputError) as error:
        read_sfz(path)
    message = str(error.value)
    assert message.startswith(f"{path}: line 4: sample 'missing piano.wav' not found")
    assert str(library / "samples" / "missing piano.wav") in message


@pytest.mark.parametrize(("make", "problem"), [(lambda folder: folder / "nope.sfz", "no such file"),
                                               (lambda folder: folder, "is a folder")])
def test_unreadable_sfz(library, make, problem):
    with pytest.raises(InputError, match=problem):
        read_sfz(make(library))


def test_windows_1252_text_is_read(library):
    path = library / "legacy.sfz"
    path.write_bytes("// Flügel\r\n<region> sample=samples\\piano_G4.wav key=67\r\n".encode("cp1252"))
    (region,) = read_sfz(path).regions
    assert region.sample == library / "samples/piano_G4.wav"
    assert region.pitch_keycenter == 67


def test_tune_is_inherited_from_global_and_group(library):
    path = write_sfz(library / "samples", """<global> tune=-20
<region> sample=piano_G4.wav key=67
<group> tune=12
<region> sample=piano_G4.wav key=68
<region> sample=piano_G4.wav key=69 tune=-30
<group>
<region> sample=piano_G4.wav key=70
<global>
<region> sample=piano_G4.wav key=71
""")
    assert [region.tune_cents for region in read_sfz(path).regions] == [-20, 12, -30, -20, 0]


def test_zero_offset_and_shifts_are_plain_regions(library):
    path = write_sfz(library / "samples", "<region> sample=piano_G4.wav key=60 offset=0 tune=0 transpose=0")
    (region,) = read_sfz(path).regions
    assert (region.key_lo, region.key_hi, region.pitch_keycenter, region.tune_cents) == (60, 60, 60, 0)


def test_define_and_include_as_sfizz_reads_them(library):
    write_sfz(library, """#define $VEL 64
<group> lovel=$VEL
<region> sample=$SAMPLE key=$KEY
""", name="parts/layer.sfz")
    path = write_sfz(library, """<control> default_path=samples/
#define $SAMPLE piano_G4.wav
#define $KEY 67
#define $KEYCENTER 60
#include "parts/layer.sfz"
#define $KEY 69
#include "parts/layer.sfz"
<group> hivel=$VEL
<region> sample=piano C4.wav key=$KEYCENTER
""")
    regions = read_sfz(path).regions
    assert [(region.key_lo, region.vel_lo, region.vel_hi) for region in regions] == [(67, 64, 127), (69, 64, 127),
                                                                                      (60, 1, 64)]
    assert regions[0].file == library / "parts/layer.sfz" and regions[0].line == 3
    assert regions[2].file is None and regions[2].line == 9


def test_an_error_in_an_included_file_names_that_file(library):
    write_sfz(library, "<region> sample=piano_G4.wav\nlokey=x", name="parts/broken.sfz")
    path = write_sfz(library, '<control> default_path=samples/\n#include "parts/broken.sfz"\n')
    with pytest.raises(InputError, match=r"parts/broken.sfz: line 2: lokey=x"):
        read_sfz(path)


def test_an_include_loop_is_one_line(library):
    write_sfz(library, '#include "b.sfz"\n', name="a.sfz")
    write_sfz(library, '<region> sample=other/low.wav\n#include "a.sfz"\n', name="b.sfz")
    with pytest.raises(InputError) as error:
        read_sfz(library / "a.sfz")
    assert str(error.value) == f'{(library / "b.sfz").resolve()}: line 2: #include "a.sfz": includes itself (an include loop)'


def test_ignored_opcodes_are_counted_for_one_notice(library):
    path = write_sfz(library / "samples", """<global> loop_mode=one_shot volume=-3
<region> sample=piano_G4.wav loop_mode=no_loop ampeg_release=1.5
<region> sample=piano_G4.wav loop_mode=no_loop
<effect> type=reverb
""")
    instrument = read_sfz(path)
    assert instrument.ignored_notice() == f"{path}: ignored opcodes: loop_mode ×3, type ×1, volume ×1"
    assert instrument.regions[0].sound.release_s == 1.5


def test_sample_range_velocity_tracking_envelope_and_transpose_are_read(library):
    path = write_sfz(library / "samples", """<group> amp_veltrack=50 ampeg_attack=0.02 transpose=-12
<region> sample=piano_G4.wav key=60 offset=1000 end=47999
<region> sample=piano_G4.wav key=61 offset=0 end=4000000000
<region> sample=piano_G4.wav key=62 offset=0
""")
    ranged, to_the_end, whole = read_sfz(path).regions
    assert ranged.sound == RegionSound(frame_range=(1000, 48000), amp_veltrack=50.0, attack_s=0.02)
    assert ranged.transpose == -12
    # A range up to the end of the sample is the whole sample; the fit job reads only what is there.
    assert to_the_end.sound.frame_range == (0, 4000000001)
    assert whole.sound.frame_range is None
