"""Key, velocity and round robin from sample file names; General MIDI program numbers from instrument names.

Octave convention: C4 = MIDI 60 (scientific pitch, as in SFZ), so C-1 = 0 and G9 = 127.

File-name rules (applied to the name without its suffix):

* A note name is a letter A–G, an optional accidental (``#``, ``♯`` or ``s`` for sharp; ``b`` or ``♭`` for
  flat) and an octave -1…9, not glued to a preceding letter or digit except after a lower-case letter
  when upper-case (camelCase): ``C4``, ``c#4``, ``Db4``, ``C-1``, ``Gs2``, ``A#2mf``, ``PianoC4``.
  Several different note names make the name ambiguous: no key is taken from it.
* Dynamics ``ppp pp p mp mf f ff fff`` (and the Italian words, ``mezzo-piano``…) are velocity layers
  with the nominal velocities in ``DYNAMIC_VELOCITIES``. A lone ``piano`` is an instrument, not a dynamic.
* ``vel100``/``velocity 100`` is a velocity; ``v`` + number is a velocity above ``MAX_LAYER_INDEX`` and a
  1-based layer index up to it (``v3``), as are ``layer3`` and ``dyn3``; ``rr2``/``seq2`` is a round robin.
* Bare numbers: numbers of four or more digits (dates, ids), two-digit numbers with a leading zero
  (``01``) and numbers up to ``MAX_LAYER_INDEX`` are counters and ignored. With a note name, a number
  equal to its MIDI key is redundant (``042-F#2``) and the first other number after it is the velocity.
  Without one, the first number is the MIDI key and the next one the velocity (``violin_67_100``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Nominal velocities of the dynamic markings (the values most notation programs send).
DYNAMIC_VELOCITIES = {"ppp": 16, "pp": 33, "p": 49, "mp": 64, "mf": 80, "f": 96, "ff": 112, "fff": 127}
_DYNAMIC_WORDS = {
    "pianississimo": "ppp", "pianissimo": "pp", "mezzopiano": "mp", "mezzoforte": "mf",
    "forte": "f", "fortissimo": "ff", "fortississimo": "fff",
}
MAX_LAYER_INDEX = 16

_PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "s": 1, "b": -1, "♭": -1}
_NOTE_NAME = r"([A-Ga-g])(#|♯|s|b|♭)?(-1|[0-9])"
# Not glued to a preceding letter or digit, except at a camelCase boundary ("PianoC4").
_NOTE_IN_NAME = re.compile(rf"(?:(?<![A-Za-z0-9])|(?<=[a-z])(?=[A-G])){_NOTE_NAME}(?![0-9])")
_NOTE_ONLY = re.compile(rf"{_NOTE_NAME}$")
_SEPARATORS = " \t_-.,+()[]{}"
_TOKEN = re.compile(r"[^\s_\-.,+()\[\]{}]+")
_PREFIXED = re.compile(r"(vel|velocity|v|layer|dyn|rr|seq)(\d{1,3})$")
_PREFIXES = {"vel", "velocity", "v", "layer", "dyn", "rr", "seq"}


@dataclass(frozen=True)
class NameInfo:
    """What a sample's file name says. ``velocity_layer`` is a 1-based index when the name gives one."""

    note: int | None = None
    velocity: int | None = None
    velocity_layer: int | None = None
    round_robin: int | None = None
    ambiguity: str | None = None  # why a key in the name was not used


def note_number(text: str) -> int | None:
    """MIDI key of a note name such as ``C4``, ``c#4``, ``Db4``, ``C-1`` (C4 = 60); None if not a note name."""
    match = _NOTE_ONLY.match(text.strip())
    return None if match is None else _key_of(*match.groups())


def note_name(key: int) -> str:
    """Name of MIDI key ``key`` with sharps, e.g. 61 → ``C#4``."""
    return f"{_SHARP_NAMES[key % 12]}{key // 12 - 1}"


def _key_of(letter: str, accidental: str | None, octave: str) -> int | None:
    key = 12 * (int(octave) + 1) + _PITCH_CLASSES[letter.lower()] + _ACCIDENTALS[accidental or ""]
    return key if 0 <= key <= 127 else None


def layer_velocity(layer: int, layer_count: int) -> int:
    """Nominal velocity of layer ``layer`` of ``layer_count`` equal-width layers (the top layer is 127)."""
    return max(1, round(127 * layer / layer_count))


def parse_sample_name(file_name: str) -> NameInfo:
    """Read key, velocity and round robin from a sample's file name (see the module docstring)."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    notes = [(match.start(), _key_of(*match.groups())) for match in _NOTE_IN_NAME.finditer(stem)]
    notes = [(position, key) for position, key in notes if key is not None]
    # Blank out the note names so that the rest splits cleanly ("A#2mf" leaves "mf").
    rest = _NOTE_IN_NAME.sub(lambda match: " " * len(match.group()), stem)
    tokens = [(match.start(), match.group().lower()) for match in _TOKEN.finditer(rest)]

    note = note_position = ambiguity = None
    distinct = sorted({key for _, key in notes})
    if len(distinct) == 1:
        note_position, note = notes[0]
    elif len(distinct) > 1:
        ambiguity = f"several note names ({', '.join(str(key) for key in distinct)})"

    velocity = layer = round_robin = None
    numbers: list[tuple[int, int]] = []  # (position, value) of bare numbers that may be a key or velocity
    index = 0
    while index < len(tokens):
        position, token = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if token in _PREFIXES and following.isdigit():
            token, index = token + following, index + 1
        if token == "mezzo" and following in ("piano", "forte"):
            token, index = token + following, index + 1
        index += 1
        prefixed = _PREFIXED.match(token)
        dynamic = _DYNAMIC_WORDS.get(token, token)
        if dynamic in DYNAMIC_VELOCITIES:
            velocity = DYNAMIC_VELOCITIES[dynamic]
        elif prefixed:
            prefix, value = prefixed.group(1), int(prefixed.group(2))
            if prefix in ("rr", "seq"):
                round_robin = value
            elif prefix in ("layer", "dyn") or (prefix == "v" and value <= MAX_LAYER_INDEX):
                layer = value
            elif 1 <= value <= 127:
                velocity = value
        elif token.isdigit() and _is_meaningful_number(token):
            numbers.append((position, int(token)))

    if note is not None:
        after_note = [value for position, value in numbers if position > note_position and value != note]
        if velocity is None and layer is None and after_note:
            velocity = after_note[0]
    elif ambiguity is None and numbers:
        note = numbers[0][1]
        if velocity is None and layer is None and len(numbers) > 1:
            velocity = numbers[1][1]
    return NameInfo(note=note, velocity=velocity, velocity_layer=layer, round_robin=round_robin, ambiguity=ambiguity)


def instrument_stem(file_name: str) -> str:
    """The instrument part of a sample's file name: the text before its first note name, number, dynamic,
    velocity, layer or round robin (``violin_67_100.wav`` → ``violin``, ``Piano.ff.C4.wav`` → ``Piano``);
    "" when the name starts with one."""
    stem = file_name.rsplit(".", 1)[0] if "." in file_name else file_name
    note = _NOTE_IN_NAME.search(stem)
    cut = note.start() if note else len(stem)
    tokens = list(_TOKEN.finditer(stem[:cut]))
    for index, match in enumerate(tokens):
        token = match.group().lower()
        following = tokens[index + 1].group() if index + 1 < len(tokens) else ""
        if (token.isdigit() or _DYNAMIC_WORDS.get(token, token) in DYNAMIC_VELOCITIES or _PREFIXED.match(token)
                or token == "mezzo" or (token in _PREFIXES and following.isdigit())):
            cut = match.start()
            break
    return stem[:cut].strip(_SEPARATORS)


def _is_meaningful_number(digits: str) -> bool:
    if len(digits) > 3 or (len(digits) == 2 and digits.startswith("0")):
        return False
    return MAX_LAYER_INDEX < int(digits) <= 127


GM_PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
# Common short names whose General MIDI program is obvious though they are not a GM name themselves.
_GM_ALIASES = {
    "piano": 0, "grandpiano": 0, "grand": 0, "epiano": 4, "rhodes": 4, "wurlitzer": 5, "clav": 7,
    "vibes": 11, "organ": 16, "hammond": 16, "hammondorgan": 16, "pipeorgan": 19, "guitar": 24,
    "nylonguitar": 24, "steelguitar": 25, "bass": 33, "ebass": 33, "electricbass": 33, "uprightbass": 32,
    "doublebass": 43, "harp": 46, "strings": 48, "choir": 52, "horn": 60, "frenchhorn": 60, "brass": 61,
    "sax": 65, "saxophone": 65, "altosax": 65, "tenorsax": 66,
}
_FAMILY_SIZE = 8


def _words(name: str) -> list[str]:
    return re.findall(r"[a-z]+|[0-9]+", name.lower())


def gm_program_for(instrument_name: str) -> int | None:
    """General MIDI program (0-based) whose name obviously matches ``instrument_name``, else None.

    Obvious means: the GM name itself (any case or punctuation: ``acoustic_grand_piano``), a common
    alias (``epiano``, ``bass``), the words of a GM name without its number (``electric piano`` →
    Electric Piano 1), or words found only in GM names of one instrument family, in which case its
    first such program is used (``lead`` → Lead 1).
    """
    words = _words(instrument_name)
    joined = "".join(words)
    if not joined:
        return None
    for program, gm_name in enumerate(GM_PROGRAM_NAMES):
        if "".join(_words(gm_name)) == joined:
            return program
    if joined in _GM_ALIASES:
        return _GM_ALIASES[joined]
    letters_only = [word for word in words if word.isalpha()]
    if not letters_only:
        return None
    letter_words = [{word for word in _words(gm_name) if word.isalpha()} for gm_name in GM_PROGRAM_NAMES]
    for program, gm_words in enumerate(letter_words):
        if gm_words == set(letters_only):
            return program
    candidates = [program for program, gm_words in enumerate(letter_words) if set(letters_only) <= gm_words]
    if candidates and len({program // _FAMILY_SIZE for program in candidates}) == 1:
        return candidates[0]
    return None
