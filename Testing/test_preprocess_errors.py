"""Bad inputs, cancellation and atomic output of the preprocessing pipeline (real TCGA-FG-6692 images)."""

from __future__ import annotations

import pytest
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import CancelledError, InputError
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed
from MedGradeCoreLib.progress import Progress

FAST = dict(skull_strip=False, stripped_threshold="otsu", reg_iterations=20, reg_shrink=(4,),
            reg_smoothing_mm=(2.0,), reg_sampling=0.02)


def _case(sample, seqs=("t1c", "t2")) -> Case:
    paths = {s: sample(f"glioma-native/TCGA-FG-6692/{s}.nii.gz") for s in seqs}
    return Case("TCGA-FG-6692", {s: sitk.ReadImage(str(p)) for s, p in paths.items()},
                sources={s: str(p) for s, p in paths.items()})


def test_a_sequence_with_no_overlap_is_refused_naming_its_file(sample):
    case = _case(sample)
    far = case.images["t2"]
    far.SetOrigin([o + 1000.0 for o in far.GetOrigin()])  # 1 m away from the reference
    with pytest.raises(InputError) as err:
        preprocess_case(case, PreprocessConfig(**FAST))
    assert err.value.path == case.sources["t2"] and "overlap" in err.value.problem


def test_missing_reference_falls_back_with_a_warning(sample):
    result = preprocess_case(_case(sample, ("t2",)), PreprocessConfig(**FAST))
    assert result.reference == "t2" and any("reference sequence t1c is missing" in w
                                            for w in result.quality.warnings)


def test_cancel_during_registration_raises_and_leaves_no_output(sample, tmp_path):
    seen: list[str] = []

    def cancel_in_registration(fraction: float, message: str) -> None:
        seen.append(message)
        if "registration:" in message:
            progress.cancel()

    progress = Progress(cancel_in_registration)
    with pytest.raises(CancelledError):
        result = preprocess_case(_case(sample), PreprocessConfig(**FAST), progress)
        write_preprocessed(result, tmp_path)
    assert any("registration:" in m for m in seen)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_half_written_folder(sample, tmp_path, monkeypatch):
    result = preprocess_case(_case(sample, ("t1c",)), PreprocessConfig(**FAST))
    result.transforms["t1c_copy"] = sitk.Euler3DTransform()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteTransform", broken)
    with pytest.raises(InputError, match="cannot write the output"):
        write_preprocessed(result, tmp_path)
    assert list(tmp_path.iterdir()) == []
