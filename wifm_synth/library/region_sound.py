"""An SFZ region's playing instructions applied to the fit of its sample.

The fit takes only the region's part of the sample (``offset``/``end``) and keeps its ``pitch_keycenter``
as the patch's reference note, as an SFZ player plays the sample at its own pitch on that key. Then the
patch takes the region's ``amp_veltrack`` (carrier velocity sensitivity: 100 % is the patch format's 1),
``ampeg_attack`` (the carriers' attack is at least that long) and, when the sample ends before its note
is released so that there is no release to measure, ``ampeg_release``. ``transpose`` is applied when the
patch is saved (:func:`transpose_patch`), like ``tune``, so that the cached fit is the sample's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wifm_synth.analysis.audio import load_audio
from wifm_synth.analysis.sample import SampleAnalysis, analyze
from wifm_synth.errors import InputError, WifmError
from wifm_synth.fit.fitter import FitResult, FitSettings, fit_analysis
from wifm_synth.formats.sfz import DEFAULT_AMP_VELTRACK, RegionSound
from wifm_synth.voice.patch import Patch
from wifm_synth.voice.schema import SCHEMA

AnalysisSource = str | tuple[np.ndarray, int]


def fit_region_sample(sample: str, note: int | None, settings: FitSettings,
                      sound: RegionSound) -> tuple[FitResult, AnalysisSource]:
    """Fit the region's part of ``sample`` and apply its sound; also returns what the fit was made from (the
    sample, or its part as audio) for scoring."""
    source: AnalysisSource = sample
    reading_warnings: list[str] = []
    try:
        if sound.frame_range is not None:
            audio, rate = load_audio(sample, frames=sound.frame_range, warnings=reading_warnings)
            source = (audio, rate)
        result = fit_analysis(analyze(source, note_hint=note), settings)
    except WifmError as error:
        if sound.frame_range is None:
            raise
        first, stop = sound.frame_range
        raise InputError(f"frames {first}..{'end' if stop is None else stop - 1}: {error.reason}", sample) from None
    result.patch.name = Path(sample).stem
    result.patch.metadata["source"] = os.path.basename(sample)
    result.analysis.warnings[:0] = reading_warnings
    result.analysis.warnings.extend(_apply_sound(result.patch, result.analysis, note, sound))
    return result, source


def _apply_sound(patch: Patch, analysis: SampleAnalysis, keycenter: int | None, sound: RegionSound) -> list[str]:
    warnings = []
    if keycenter is not None and patch.pitch.reference_note != keycenter:
        allowed = SCHEMA["pitch.tune_cents"]
        cents = 100.0 * (analysis.midi_note - keycenter)
        patch.pitch.reference_note = keycenter
        patch.pitch.tune_cents = round(float(allowed.clip(cents)), 3)
        warnings.append(f"pitch_keycenter={keycenter} but the sample sounds at {analysis.midi_note:.2f}: the key "
                        f"is kept, tuned {patch.pitch.tune_cents:+.0f} cents (the patch format allows "
                        f"{allowed.low:g}..{allowed.high:g})")
    carriers = [operator for operator in patch.operators if operator.carrier]
    if sound.amp_veltrack != DEFAULT_AMP_VELTRACK:
        allowed = SCHEMA["operator.velocity_sensitivity"]
        sensitivity = float(allowed.clip(sound.amp_veltrack / DEFAULT_AMP_VELTRACK))
        if sound.amp_veltrack < 0:
            warnings.append(f"amp_veltrack={sound.amp_veltrack:g}: softer notes cannot be louder here; "
                            f"velocity is ignored instead")
        for operator in carriers:
            operator.velocity_sensitivity = sensitivity
    if sound.attack_s is not None:
        for operator in carriers:
            segments = operator.envelope.segments
            if segments and segments[0][0] < sound.attack_s:
                segments[0] = (sound.attack_s, *segments[0][1:])
    if sound.release_s is not None and analysis.release_start_s is None:
        release_s = float(SCHEMA["envelope.release_s"].clip(sound.release_s))
        for operator in patch.operators:
            operator.envelope.release_s = release_s
    return warnings


def transpose_patch(patch: Patch, semitones: int) -> list[str]:
    """Shift every key's pitch by ``semitones`` (SFZ ``transpose``): the operators' ratios scale, fixed
    frequencies stay; returns warnings for ratios clamped to the patch format's range."""
    if not semitones:
        return []
    allowed = SCHEMA["operator.ratio"]
    warnings = []
    for index, operator in enumerate(patch.operators):
        ratio = operator.ratio * 2.0 ** (semitones / 12.0)
        operator.ratio = float(allowed.clip(ratio))
        if operator.ratio != ratio:
            warnings.append(f"transpose={semitones}: operator {index} ratio {ratio:.4g} clamped to "
                            f"{operator.ratio:.4g} (the patch format allows up to {allowed.high:g})")
    return warnings
