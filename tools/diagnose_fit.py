"""Where a fit's distance to its recording comes from: the log-spectral distance split by time region and
by frequency band, for the fit's render, the limit and the floor.

Usage: python tools/diagnose_fit.py NOTE.wav [NOTE.wav ...] [--ops 2|4|6|auto] [--note MIDI] [--size 1024]

Each note is fitted, rendered and scored as ``tools/eval_fit.py`` does; then one FFT size of the quality
metric (``analysis.metrics.log_stft_differences``: |dB difference| per bin, bins where both are at the
floor left out) is averaged over the bins of each region: attack (< 0.1 s from the onset), early decay
(0.1–0.5 s), held (0.5 s to the release), release; and of each band: below f0/2, within a quarter
harmonic of harmonics 1–4, 5–12, above 12, and between harmonics. Each cell is "mean dB (share of the
audible bins)": a region contributes share × mean to the distance, so the gap to the limit's cell shows
what the fit misses there. The fit's structure and candidates come from the patch's metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from wifm_synth.analysis import metrics
from wifm_synth.fit.fitter import FitSettings, fit_file
from wifm_synth.fit.verify import SAMPLE_RATE, verify_fit
from wifm_synth.library.naming import parse_sample_name

ATTACK_S, EARLY_S = 0.1, 0.5


def regions(times: np.ndarray, frequencies: np.ndarray, f0_hz: float, release_s: float | None) -> dict:
    """Name → (F, T) boolean mask of each time region and frequency band."""
    release = np.inf if release_s is None else release_s
    harmonic = frequencies / f0_hz
    near = np.abs(harmonic - np.round(harmonic)) < 0.25
    in_time = {"attack": times < ATTACK_S, "early": (times >= ATTACK_S) & (times < EARLY_S),
               "held": (times >= EARLY_S) & (times < release), "release": times >= release}
    in_band = {"<f0/2": harmonic < 0.5, "h1-4": near & (harmonic >= 0.5) & (harmonic < 4.5),
               "h5-12": near & (harmonic >= 4.5) & (harmonic < 12.5), "h>12": near & (harmonic >= 12.5),
               "between": ~near & (harmonic >= 0.5)}
    masks = {name: np.broadcast_to(mask[None, :], (frequencies.size, times.size)) for name, mask in in_time.items()}
    masks.update({name: np.broadcast_to(mask[:, None], (frequencies.size, times.size)) for name, mask in in_band.items()})
    return masks


def breakdown(target: np.ndarray, candidate: np.ndarray, f0_hz: float, release_s: float | None, size: int) -> dict:
    frequencies, times, difference, audible = metrics.log_stft_differences(target, candidate, SAMPLE_RATE, size)
    result = {"all": (float(difference[audible].mean()), 1.0)}
    for name, mask in regions(times, frequencies, f0_hz, release_s).items():
        selected = audible & mask
        result[name] = (float(difference[selected].mean()) if selected.any() else 0.0,
                        float(selected.sum() / max(audible.sum(), 1)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes", nargs="+", type=Path)
    parser.add_argument("--ops", default="6", help="operators: 2, 4, 6 or auto (default 6)")
    parser.add_argument("--note", type=int, help="MIDI key (default: from each file name)")
    parser.add_argument("--size", type=int, default=1024, help="FFT size of the split (default 1024)")
    args = parser.parse_args(argv)
    settings = FitSettings(ops=args.ops if args.ops == "auto" else int(args.ops))
    for path in args.notes:
        note = args.note if args.note is not None else parse_sample_name(path.name).note
        result = fit_file(path, note=note, settings=settings)
        pitch = result.patch.pitch
        verification = verify_fit(result.patch, path, midi_note=pitch.reference_note, velocity=pitch.reference_velocity)
        target = verification.target
        stft, harmonic, envelope, f0 = (score.fit for score in verification.scores)
        print(f"== {path.stem}: position {verification.quality:.3f}, log-STFT {stft:.2f} dB (floor "
              f"{verification.scores[0].floor:.2f}, limit {verification.scores[0].limit:.2f}), harmonic {harmonic:.2f} dB,"
              f" envelope {envelope:.2f} dB, f0 {f0:.2f} ¢, fit {result.seconds:.1f} s")
        print(f"   structure {result.patch.metadata.get('structure', 'pair')}")
        length = len(verification.target_audio)
        references = {"fit": verification.rendered_audio}
        for name, reference in (("limit", metrics.harmonic_resynthesis), ("floor", metrics.sine_floor)):
            audio = reference(target)[target.onset_index:target.onset_index + length]
            references[name] = np.pad(audio, (0, length - audio.size))
        for name, audio in references.items():
            cells = breakdown(verification.target_audio, audio, target.f0_hz, target.release_start_s, args.size)
            print(f"   {name:5s} " + " ".join(f"{key} {mean:.1f} ({share:.2f})" for key, (mean, share) in cells.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
