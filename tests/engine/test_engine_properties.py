"""Random MIDI streams: never NaN/inf, and silence once every key and pedal is up and releases ran out."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wifm_synth.engine import Synth
from wifm_synth.voice.patch import Envelope, Operator, Patch

RATE = 48000
RELEASE_S = 0.2
CHANNELS = (0, 1, 9)


def program_patches():
    envelope = Envelope([(0.01, 6.0), (0.3, -10.0), (2.0, -30.0)], RELEASE_S)
    fm = Patch(operators=[Operator(level=0.3, modulators=[1], envelope=envelope),
                          Operator(ratio=2.0, level=3.0, carrier=False, feedback=2.0, envelope=envelope)])
    dx = Patch(operators=[Operator(ratio=k + 1.0, level=0.1 if k in (0, 2) else 1.5, envelope=envelope,
                                   feedback=1.0 if k == 5 else 0.0) for k in range(6)], algorithm=1)
    return [(0, 0, 0, 127, 1, 127, fm), (0, 1, 0, 127, 1, 127, dx)]


channel = st.sampled_from(CHANNELS)
note = st.tuples(st.just(0x90), channel, st.integers(48, 60), st.integers(0, 127))
note_off = st.tuples(st.just(0x80), channel, st.integers(48, 60), st.just(0))
pedal = st.tuples(st.just(0xB0), channel, st.sampled_from([64, 66]), st.sampled_from([0, 127]))
controller = st.tuples(st.just(0xB0), channel, st.sampled_from([1, 7, 10, 11, 120, 121, 123]), st.integers(0, 127))
program = st.tuples(st.just(0xC0), channel, st.integers(0, 3), st.just(0))
bend = st.tuples(st.just(0xE0), channel, st.integers(0, 127), st.integers(0, 127))
message = st.one_of(note, note, note_off, note_off, pedal, controller, program, bend)
timed_messages = st.lists(st.tuples(st.integers(0, 3000), message), max_size=60)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed_messages)
def test_random_streams_stay_finite_and_end_in_silence(stream):
    synth = Synth(program_patches(), RATE, polyphony=6)
    frame = 0
    for gap, (kind, chan, data1, data2) in stream:
        frame += gap
        synth.send(frame, kind | chan, data1, data2)
    for chan in CHANNELS:  # every key up, both pedals up
        for key in range(48, 61):
            synth.send(frame, 0x80 | chan, key, 0)
        synth.send(frame, 0xB0 | chan, 64, 0)
        synth.send(frame, 0xB0 | chan, 66, 0)
    # the loudest carrier is about 0 dB (0.3 × +6 dB × velocity 127), so −90 dB is 1.5 release times away
    tail = frame + int(2.5 * RELEASE_S * RATE)
    out = synth.render(tail)
    assert np.all(np.isfinite(out))
    assert synth.active_voices == 0
    assert np.all(synth.render(256) == 0.0)
