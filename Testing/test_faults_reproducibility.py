"""Reproducible preprocessing (issue 10, item 9): the same real case and settings, preprocessed twice, give
bit-identical images, masks and transforms, and the seed and thread setting are recorded in case.json."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed


def _case(sample) -> Case:
    images = {}
    for seq in ("t1c", "t2"):
        image = sitk.ReadImage(str(sample(f"glioma-native/TCGA-FG-6692/{seq}.nii.gz")))
        images[seq] = image[::2, ::2, :]  # halved in-plane: a fast test, the same registration problem
    t1c = images["t1c"]
    lesion = sitk.Image(t1c.GetSize(), sitk.sitkUInt8)  # a block lesion on the T1c grid, carried through
    lesion.CopyInformation(t1c)
    lesion[40:60, 50:70, 10:16] = 1
    return Case("TCGA-FG-6692", images, mask=lesion, reference="t1c")


def _arrays(result) -> dict[str, np.ndarray]:
    out = {f"image_{s}": sitk.GetArrayFromImage(i) for s, i in result.images.items()}
    out["brain_mask"] = sitk.GetArrayFromImage(result.brain_mask)
    out["lesion_mask"] = sitk.GetArrayFromImage(result.lesion_mask)
    out.update({f"transform_{s}": np.asarray(t.GetParameters()) for s, t in result.transforms.items()})
    return out


def test_same_case_twice_gives_bit_identical_outputs(sample, tmp_path):
    config = PreprocessConfig(skull_strip=False, stripped_threshold="otsu", spacing=2.0, n_slices=5)
    first = _arrays(preprocess_case(_case(sample), config))
    result = preprocess_case(_case(sample), config)
    second = _arrays(result)
    assert first.keys() == second.keys()
    different = [k for k in first if not np.array_equal(first[k], second[k])]
    assert not different, f"differ between two runs: {different}"
    assert first["lesion_mask"].any() and first["brain_mask"].any()
    info = json.loads((write_preprocessed(result, tmp_path) / "case.json").read_text())
    assert info["parameters"]["reg_seed"] == 42 and info["parameters"]["reg_threads"] == 1
