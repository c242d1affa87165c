"""Sample file names from real libraries → key, velocity, layer, round robin; GM programs from folder names."""

import pytest

from wifm_synth.library.naming import (
    DYNAMIC_VELOCITIES,
    GM_PROGRAM_NAMES,
    NameInfo,
    gm_program_for,
    instrument_stem,
    layer_velocity,
    note_name,
    note_number,
    parse_sample_name,
)

PP, P, MP, MF, F, FF, FFF = (DYNAMIC_VELOCITIES[d] for d in ("pp", "p", "mp", "mf", "f", "ff", "fff"))

# (file name, note, velocity, velocity layer, round robin)
NAMING_STYLES = [
    # note names, sharps and flats, octave -1 (C4 = 60)
    ("Piano.ff.C4.aiff", 60, FF, None, None),
    ("Cello_A#2_mf.flac", 46, MF, None, None),
    ("Gtr_Eb3_RR2.wav", 51, None, None, 2),
    ("c#4.wav", 61, None, None, None),
    ("Db4.wav", 61, None, None, None),
    ("synth C-1.wav", 0, None, None, None),
    ("Sub_C#-1.wav", 1, None, None, None),
    ("Bass Bb1.wav", 34, None, None, None),
    ("bb3.wav", 58, None, None, None),
    ("b3.wav", 59, None, None, None),
    ("Harp_Gs2.wav", 44, None, None, None),
    ("Keys-F♯3.wav", 54, None, None, None),
    ("Keys-E♭3.wav", 51, None, None, None),
    ("G9.wav", 127, None, None, None),
    ("PianoC4.wav", 60, None, None, None),
    ("Flute A#5mf.wav", 82, MF, None, None),
    # MIDI numbers and velocity numbers
    ("violin_67_100.wav", 67, 100, None, None),
    ("Bass 40 vel100.wav", 40, 100, None, None),
    ("piano_060_127.wav", 60, 127, None, None),
    ("Marimba-72-velocity64.wav", 72, 64, None, None),
    ("Organ 48.wav", 48, None, None, None),
    ("Strings_55_v100.wav", 55, 100, None, None),
    ("Pad vel 90 note 62.wav", 62, 90, None, None),
    # redundant key number beside a note name, velocity layer indices
    ("042-F#2-v3.wav", 42, None, 3, None),
    ("060 C4 v1.wav", 60, None, 1, None),
    ("Vibes_F4_layer2.wav", 65, None, 2, None),
    ("Choir_D4_dyn4.wav", 62, None, 4, None),
    ("Piano_C4_v 2.wav", 60, None, 2, None),
    # dynamics, letters and Italian words
    ("Violin_G3_pp.wav", 55, PP, None, None),
    ("Oboe.p.D5.wav", 74, P, None, None),
    ("Horn_mp_F3.wav", 53, MP, None, None),
    ("Tuba-F1-f.wav", 29, F, None, None),
    ("Trumpet_C5_fff.wav", 72, FFF, None, None),
    ("violin_A3_1_fortissimo_arco-normal.wav", 57, FF, None, None),
    ("viola_C4_025_mezzo-forte_arco.wav", 60, MF, None, None),
    ("flute_E5_05_mezzo-piano.wav", 76, MP, None, None),
    ("Piano_C3_pianissimo.wav", 48, PP, None, None),
    # round robins
    ("Snare-Gtr_E2_rr3.wav", 40, None, None, 3),
    ("Kalimba A4 RR 2.wav", 69, None, None, 2),
    ("Harp_C5_seq4.wav", 72, None, None, 4),
    ("Banjo_G3_ff_rr1.wav", 55, FF, None, 1),
    # ambiguous numbers: counters, takes, dates, ids
    ("01_piano_60.wav", 60, None, None, None),
    ("Guitar_E2_01.wav", 40, None, None, None),
    ("Piano_C4_2.wav", 60, None, None, None),
    ("Take 3 Bass 45 100.wav", 45, 100, None, None),
    ("2023-06-01 Rhodes 64.wav", 64, None, None, None),
    ("Piano_C4_100.wav", 60, 100, None, None),
    ("sample_003.wav", None, None, None, None),
    ("Kit_12.wav", None, None, None, None),
    ("Lead_C4_D4.wav", None, None, None, None),
    ("Piano_200.wav", None, None, None, None),
    # nothing usable: pitch detection decides
    ("Piano.wav", None, None, None, None),
    ("crash cymbal.wav", None, None, None, None),
    ("-6dB_tone.wav", None, None, None, None),
    ("Bells4ever.wav", None, None, None, None),
]


@pytest.mark.parametrize(("file_name", "note", "velocity", "layer", "round_robin"), NAMING_STYLES)
def test_sample_name_styles(file_name, note, velocity, layer, round_robin):
    info = parse_sample_name(file_name)
    assert (info.note, info.velocity, info.velocity_layer, info.round_robin) == (note, velocity, layer, round_robin)


def test_several_note_names_are_reported_as_ambiguous():
    info = parse_sample_name("Lead_C4_D4.wav")
    assert info.note is None
    assert "60" in info.ambiguity and "62" in info.ambiguity
    assert parse_sample_name("C4_C4.wav") == NameInfo(note=60)


@pytest.mark.parametrize(
    ("text", "key"),
    [("C4", 60), ("c4", 60), ("A4", 69), ("C-1", 0), ("c#-1", 1), ("G9", 127), ("B#8", 120), ("Cb4", 59),
     ("Db4", 61), ("A#2", 46), ("G#9", None), ("Cb-1", None), ("H4", None), ("C", None), ("60", None), ("C44", None)],
)
def test_note_number(text, key):
    assert note_number(text) == key


@pytest.mark.parametrize("key", range(128))
def test_note_name_reads_back(key):
    assert note_number(note_name(key)) == key


def test_note_name_examples():
    assert [note_name(key) for key in (0, 60, 61, 69, 127)] == ["C-1", "C4", "C#4", "A4", "G9"]


@pytest.mark.parametrize(("layer", "count", "velocity"), [(1, 1, 127), (1, 2, 64), (2, 2, 127), (1, 3, 42),
                                                           (3, 3, 127), (1, 16, 8)])
def test_layer_velocity(layer, count, velocity):
    assert layer_velocity(layer, count) == velocity


@pytest.mark.parametrize(
    ("folder", "program"),
    [
        ("acoustic_grand_piano", 0), ("Electric Bass (finger)", 33), ("electric_piano_1", 4), ("Flute", 73),
        ("trumpet", 56), ("Piano", 0), ("epiano", 4), ("electric piano", 4), ("Bass", 33), ("hammond_organ", 16),
        ("Alto Sax", 65), ("synth bass", 38), ("Church-Organ", 19), ("Guitar", 24), ("violin", 40),
        ("lead", 80), ("grand piano", 0), ("my sounds", None), ("electric", None), ("", None), ("42", None), ("Piano ff", None),
    ],
)
def test_gm_program_for(folder, program):
    assert gm_program_for(folder) == program


def test_gm_table_has_all_programs():
    assert len(GM_PROGRAM_NAMES) == 128
    assert len(set(GM_PROGRAM_NAMES)) == 128


@pytest.mark.parametrize(("file_name", "stem"), [
    ("violin_67_100.wav", "violin"), ("hammond_organ_55_100.wav", "hammond_organ"), ("Piano.ff.C4.aiff", "Piano"),
    ("PianoC4.wav", "Piano"), ("Grand Piano mezzo forte C4.wav", "Grand Piano"), ("Flute v2 C4.wav", "Flute"),
    ("Cello rr2 A#2.wav", "Cello"), ("pad.wav", "pad"), ("C4.wav", ""), ("042-F#2.wav", ""),
])
def test_instrument_stem(file_name, stem):
    assert instrument_stem(file_name) == stem
