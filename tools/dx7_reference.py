"""Fidelity of DX7 voices against msfa, the reference DX7 engine: ``dx7_reference.py MSFA_CHECKOUT CART.syx``.

Builds msfa's core from a local checkout (in a temporary folder, with a small driver written here;
nothing of msfa is kept), renders every voice of the cartridge at keys 36, 60 and 84, velocity 100,
2 s held + 1.5 s release at 44.1 kHz, renders the same voices on this engine (``dx7_patch``), and
prints JSON: per render the multi-resolution log-magnitude STFT distance (onset-aligned, RMS-matched,
first 1.8 s, magnitudes floored 60 dB below the reference's peak, bins up to 16 kHz) and the
engine's loudness relative to msfa's; then the median and 90th percentile distance, and how far each
render's loudness strays from the others' (its loudness minus the median loudness over all renders,
which takes out the engine's fixed output gain): median and 90th percentile of that deviation.

The driver plays each key transposed by the voice's transpose setting, as a DX7 does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RATE = 44100
KEYS = (36, 60, 84)
VELOCITY = 100
HOLD_S, RELEASE_S = 2.0, 1.5
COMPARED_S = 1.8
FLOOR_DB = 60.0
TOP_HZ = 16000.0
FFT_SIZES = (256, 1024, 4096)
ONSET_FRACTION = 0.01  # the onset is where the signal first reaches 1% of its peak
MSFA_SOURCES = ("dx7note.cc", "env.cc", "lfo.cc", "pitchenv.cc", "fm_core.cc", "fm_op_kernel.cc", "exp2.cc",
                "freqlut.cc", "sin.cc", "patch.cc")

# Our driver: unpack voice V of a 4104-byte cartridge, play KEY at VELOCITY for the held and released
# times, write float32 samples at msfa's 16-bit output scale (full scale 1.0).
DRIVER = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "synth.h"
#include "freqlut.h"
#include "exp2.h"
#include "sin.h"
#include "lfo.h"
#include "pitchenv.h"
#include "patch.h"
#include "controllers.h"
#include "dx7note.h"

int main(int argc, char **argv) {
  const double rate = 44100.0;
  FILE *in = fopen(argv[1], "rb");
  unsigned char cart[4104];
  if (fread(cart, 1, 4104, in) != 4104) return 1;
  fclose(in);
  int voice = atoi(argv[2]), key = atoi(argv[3]), velocity = atoi(argv[4]);
  int held = atoi(argv[5]), released = atoi(argv[6]);
  Freqlut::init(rate); Exp2::init(); Tanh::init(); Sin::init(); Lfo::init(rate); PitchEnv::init(rate);
  char unpacked[156];
  UnpackPatch((const char *)cart + 6 + 128 * voice, unpacked);
  key += unpacked[144] - 24;
  Lfo lfo; lfo.reset(unpacked + 137); lfo.keydown();
  Controllers controllers; memset(&controllers, 0, sizeof controllers);
  controllers.values_[kControllerPitch] = 0x2000;
  Dx7Note note; note.init(unpacked, key, velocity);
  FILE *out = fopen(argv[7], "wb");
  int32_t buf[N];
  float samples[N];
  for (int block = 0; block * N < held + released; block++) {
    if (block * N >= held && block * N < held + N) note.keyup();
    memset(buf, 0, sizeof buf);
    int32_t lfo_value = lfo.getsample(), lfo_delay = lfo.getdelay();
    note.compute(buf, lfo_value, lfo_delay, &controllers);
    for (int i = 0; i < N; i++) samples[i] = (float)(buf[i] / (double)(1 << 28));
    fwrite(samples, sizeof(float), N, out);
  }
  fclose(out);
  return 0;
}
"""


def build_driver(checkout: Path, folder: Path) -> Path:
    jni = checkout / "app" / "src" / "main" / "jni"
    if not (jni / "dx7note.cc").is_file():
        sys.exit(f"dx7_reference: error: {checkout}: no msfa checkout (app/src/main/jni/dx7note.cc missing)")
    # Copies in the temporary folder, without ``using namespace std``: with a current libstdc++ it makes
    # msfa's own min/max ambiguous with std's.
    for source in [*jni.glob("*.h"), *(jni / name for name in MSFA_SOURCES)]:
        (folder / source.name).write_text(source.read_text().replace("using namespace std;", ""))
    (folder / "driver.cc").write_text(DRIVER)
    binary = folder / "dx7_driver"
    subprocess.run(["g++", "-O2", "-w", "-include", "cstddef", "-include", "cstdint", "-I", str(folder),
                    "-o", str(binary), str(folder / "driver.cc"), *(str(folder / source) for source in MSFA_SOURCES)],
                   check=True)
    return binary


def reference_render(binary: Path, cartridge: Path, voice: int, key: int, folder: Path, velocity: int = VELOCITY,
                     hold_s: float = HOLD_S, release_s: float = RELEASE_S) -> np.ndarray:
    """msfa's render of voice ``voice`` (0..31) of a 4104-byte cartridge at ``key`` (before transpose)."""
    output = folder / "render.f32"
    subprocess.run([str(binary), str(cartridge), str(voice), str(key), str(velocity), str(int(hold_s * RATE)),
                    str(int(release_s * RATE)), str(output)], check=True)
    return np.fromfile(output, dtype=np.float32).astype(np.float64)


def loudness_spread(loudness_db) -> dict[str, float]:
    """How far each render's loudness re msfa strays from the median over all renders (the global offset)."""
    loudness_db = np.asarray(loudness_db, float)
    offset = float(np.median(loudness_db))
    deviation = np.abs(loudness_db - offset)
    return {"offset_db": round(offset, 2), "median_abs_deviation_db": round(float(np.median(deviation)), 2),
            "p90_abs_deviation_db": round(float(np.percentile(deviation, 90)), 2)}


def _onset(signal: np.ndarray) -> int:
    peak = np.abs(signal).max()
    return int(np.argmax(np.abs(signal) >= ONSET_FRACTION * peak)) if peak > 0 else 0


def _magnitudes_db(signal: np.ndarray, size: int) -> np.ndarray:
    hop = size // 4
    frames = 1 + max(0, (len(signal) - size) // hop)
    window = np.hanning(size)
    stack = np.stack([signal[index * hop:index * hop + size] * window for index in range(frames)])
    spectrum = np.abs(np.fft.rfft(stack, axis=1))[:, :int(TOP_HZ * size / RATE) + 1]
    return 20.0 * np.log10(np.maximum(spectrum, 1e-12))


def distance_db(reference: np.ndarray, engine: np.ndarray) -> tuple[float, float]:
    """(multi-resolution log-STFT distance, engine loudness re the reference in dB)."""
    length = int(COMPARED_S * RATE)
    reference = reference[_onset(reference):][:length]
    engine = engine[_onset(engine):][:length]
    length = min(len(reference), len(engine))
    reference, engine = reference[:length], engine[:length]
    reference_rms, engine_rms = np.sqrt(np.mean(reference ** 2)), np.sqrt(np.mean(engine ** 2))
    if reference_rms == 0 or engine_rms == 0:
        return (0.0 if reference_rms == engine_rms else float("inf")), 0.0
    loudness = 20.0 * np.log10(engine_rms / reference_rms)
    engine = engine * (reference_rms / engine_rms)
    distances = []
    for size in FFT_SIZES:
        target, rendered = _magnitudes_db(reference, size), _magnitudes_db(engine, size)
        floor = target.max() - FLOOR_DB
        distances.append(np.mean(np.abs(np.maximum(target, floor) - np.maximum(rendered, floor))))
    return float(np.mean(distances)), float(loudness)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("msfa_checkout", type=Path)
    parser.add_argument("cartridge", type=Path, help="a 32-voice .syx (4104 bytes)")
    args = parser.parse_args(argv)
    from wifm_synth.engine import render_note
    from wifm_synth.formats.dx7_patch import compile_voice
    from wifm_synth.formats.dx7_sysex import read_syx_file

    read = read_syx_file(args.cartridge)
    if read.kind != "cartridge" or args.cartridge.stat().st_size != 4104:
        sys.exit(f"dx7_reference: error: {args.cartridge}: needs a 32-voice dump of 4104 bytes")
    results = []
    with tempfile.TemporaryDirectory(prefix="dx7_reference.") as temporary:
        folder = Path(temporary)
        binary = build_driver(args.msfa_checkout, folder)
        for index, voice in enumerate(read.voices):
            patch = compile_voice(voice)
            for key in KEYS:
                reference = reference_render(binary, args.cartridge, index, key, folder)
                engine = render_note(patch, key, velocity=VELOCITY, hold_s=HOLD_S, tail_s=RELEASE_S,
                                     sample_rate=RATE)
                engine = engine.mean(axis=1) if engine.ndim == 2 else engine
                distance, loudness = distance_db(reference, engine)
                results.append({"voice": index, "name": voice.name.strip(), "key": key,
                                "distance_db": round(distance, 2), "loudness_db": round(loudness, 2)})
    distances = np.array([entry["distance_db"] for entry in results])
    summary = {"renders": results, "median_db": round(float(np.median(distances)), 2),
               "p90_db": round(float(np.percentile(distances, 90)), 2),
               "loudness": loudness_spread([entry["loudness_db"] for entry in results])}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
