"""Co-registration and the common 1 mm grid on glioma-native/TCGA-FG-6692 (four native sequences)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeSegmentLib.case import Case
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, read_preprocessed, write_preprocessed
from MedGradeSegmentLib.preprocess.registration import register

SEQS = ("t1", "t1c", "t2", "flair")
# small but sufficient registration settings for tests (2 cores shared)
FAST = dict(reg_iterations=40, reg_shrink=(4, 2), reg_smoothing_mm=(2.0, 1.0), reg_sampling=0.05)


@pytest.fixture(scope="module")
def tcga(sample) -> Case:
    paths = {s: sample(f"glioma-native/TCGA-FG-6692/{s}.nii.gz") for s in SEQS}
    return Case("TCGA-FG-6692", {s: sitk.ReadImage(str(p)) for s, p in paths.items()},
                clinical={"age": 45, "sex": "F"}, sources={s: str(p) for s, p in paths.items()})


@pytest.fixture(scope="module")
def tcga_result(tcga):
    # the native inputs have a skull; an Otsu head mask keeps this test about geometry, not stripping
    config = PreprocessConfig(skull_strip=False, stripped_threshold="otsu", **FAST)
    return preprocess_case(tcga, config)


def test_four_sequences_with_different_matrices_end_on_one_1mm_grid(tcga, tcga_result):
    assert len({img.GetSize() for img in tcga.images.values()}) == 3  # the inputs really differ
    grids = {(i.GetSize(), i.GetOrigin(), i.GetSpacing(), i.GetDirection()) for i in tcga_result.images.values()}
    assert len(grids) == 1
    size, origin, spacing, direction = grids.pop()
    assert spacing == (1.0, 1.0, 1.0)
    mask = tcga_result.brain_mask
    assert (mask.GetSize(), mask.GetOrigin(), mask.GetDirection()) == (size, origin, direction)
    ref = tcga.images["t1c"]  # the grid covers the reference's field of view
    extent = np.array(ref.GetSize()) * np.array(ref.GetSpacing())
    assert np.all(np.abs(np.array(size) - extent) <= 1.0)
    assert set(tcga_result.transforms) == {"t1", "t2", "flair"}
    for seq in ("t1", "t2", "flair"):
        assert tcga_result.quality.registration[seq]["overlap"] > 0.9


def test_case_folder_round_trip(tcga_result, tmp_path):
    folder = write_preprocessed(tcga_result, tmp_path)
    assert folder.name == "TCGA-FG-6692" and not list(tmp_path.glob("*.partial"))
    info = json.loads((folder / "case.json").read_text())
    assert set(info) == {"patient_id", "reference", "sequences", "brain_mask", "transforms", "lesion_mask", "slices",
                         "clinical", "labels", "parameters", "sources", "medgrade_version"}
    assert info["transforms"]["t2"] == "transforms/t2_to_t1c.tfm" and info["lesion_mask"] is None
    assert info["parameters"]["spacing"] == [1.0, 1.0, 1.0] and info["parameters"]["skull_strip"] is False
    quality = json.loads((folder / "quality.json").read_text())
    assert {"brain_volume_ml", "registration", "warnings", "seconds"} <= set(quality)
    case, info2 = read_preprocessed(folder)
    assert case.patient_id == "TCGA-FG-6692" and set(case.images) == set(SEQS) and case.mask is None
    assert case.clinical == {"age": 45, "sex": "F"} and info2["quality"]["brain_volume_ml"] > 0
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(case.images["t2"]),
                               sitk.GetArrayViewFromImage(tcga_result.images["t2"]), atol=1e-5)
    point = (10.0, -20.0, 15.0)
    np.testing.assert_allclose(case.meta["transforms"]["t2"].TransformPoint(point),
                               tcga_result.transforms["t2"].TransformPoint(point), atol=1e-6)
    assert case.meta["slices"] == tcga_result.slices


def test_known_rigid_shift_is_recovered_within_1mm_at_brain_voxels(tcga):
    fixed = sitk.Cast(tcga.images["t1c"], sitk.sitkFloat32)
    center = fixed.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in fixed.GetSize()])
    truth = sitk.Euler3DTransform(center, 0.0, 0.0, np.deg2rad(5.0), (3.0, 2.0, 2.0))  # 5 deg, 4.1 mm
    moving = sitk.Resample(fixed, fixed, truth.GetInverse(), sitk.sitkBSpline, 0.0)  # moving(truth(p)) = fixed(p)
    brain = sitk.Cast(sitk.OtsuThreshold(fixed, 0, 1, 200), sitk.sitkUInt8)
    result = register(fixed, moving, PreprocessConfig(reg_iterations=100, reg_shrink=(4, 2, 1),
                                                      reg_smoothing_mm=(2.0, 1.0, 0.0)), brain)
    idx = np.argwhere(sitk.GetArrayViewFromImage(brain) > 0)[::97]  # (k, j, i) of a sample of brain voxels
    errors = []
    for k, j, i in idx:
        p = fixed.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
        errors.append(np.linalg.norm(np.subtract(result.transform.TransformPoint(p), truth.TransformPoint(p))))
    assert len(errors) > 500
    assert max(errors) < 1.0, (max(errors), result.stop)
