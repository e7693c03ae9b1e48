"""load_preprocessed_into_scene on a CONTRACTS-format folder built here from real images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.scene.hierarchy import sh_node, study_item_of
from MedGradeCoreLib.scene.preprocess_result import load_preprocessed_into_scene
from MedGradeCoreLib.scene.provenance import get_provenance
from MedGradeCoreLib.scene.segmentations import segmentation_node_to_mask
from MedGradeCoreLib.scene.volumes import volume_node_to_sitk

PARAMETERS = {"spacing_mm": [1.0, 1.0, 1.0], "registration": "rigid", "n4": False}


def _write_case(sample, root: Path) -> Path:
    """A small preprocessed case: t1c reference, t2 on its grid, Otsu brain mask, rigid transform."""
    folder = root / "TCGA-FG-6692"
    (folder / "transforms").mkdir(parents=True)
    t1c = sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz")))[::2, ::2, 8:16]
    t2 = sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/t2.nii.gz")))
    t2 = sitk.Resample(t2, t1c, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    sitk.WriteImage(sitk.Cast(t1c, sitk.sitkFloat32), str(folder / "t1c.nii.gz"))
    sitk.WriteImage(t2, str(folder / "t2.nii.gz"))
    brain = sitk.Cast(sitk.OtsuThreshold(t1c, 0, 1), sitk.sitkUInt8)
    sitk.WriteImage(brain, str(folder / "brain_mask.nii.gz"))
    rigid = sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, np.deg2rad(5.0), (4.0, 0.0, 0.0))
    sitk.WriteTransform(rigid, str(folder / "transforms" / "t2_to_t1c.tfm"))
    case = {
        "patient_id": "TCGA-FG-6692",
        "reference": "t1c",
        "sequences": {"t1c": "t1c.nii.gz", "t2": "t2.nii.gz"},
        "brain_mask": "brain_mask.nii.gz",
        "transforms": {"t2": "transforms/t2_to_t1c.tfm"},
        "lesion_mask": None,
        "slices": [1, 3, 5],
        "clinical": {"age": 45, "sex": "F"},
        "labels": {},
        "parameters": PARAMETERS,
        "sources": {"t1c": "t1c.nii.gz", "t2": "t2.nii.gz"},
        "medgrade_version": "0.1.0",
    }
    (folder / "case.json").write_text(json.dumps(case))
    quality = {"brain_volume_ml": 1000.0, "registration": {"t2": {"metric": -0.5, "overlap": 0.98}}, "warnings": []}
    (folder / "quality.json").write_text(json.dumps(quality))
    return folder


def test_everything_lands_under_one_study_with_provenance(slicer_app, sample, tmp_path):
    scene = slicer_app.scene
    folder = _write_case(sample, tmp_path)
    result = load_preprocessed_into_scene(scene, folder)

    study = result["study_item"]
    nodes = [*result["volumes"].values(), result["brain_mask"], *result["transforms"].values()]
    assert sorted(result["volumes"]) == ["t1c", "t2"] and list(result["transforms"]) == ["t2"]
    assert result["lesion_mask"] is None
    sh = sh_node(scene)
    assert sh.GetItemName(sh.GetItemParent(study)) == "TCGA-FG-6692"
    for node in nodes:
        assert study_item_of(scene, node) == study
        provenance = get_provenance(node)
        assert provenance["step"].startswith("preprocess")
        assert provenance["parameters"] == PARAMETERS
        assert provenance["version"] == "0.1.0"
    assert get_provenance(result["transforms"]["t2"])["sequence"] == "t2"
    assert json.loads(result["transforms"]["t2"].GetAttribute("MedGrade.quality"))["overlap"] == 0.98

    t1c = sitk.ReadImage(str(folder / "t1c.nii.gz"))
    back = volume_node_to_sitk(result["volumes"]["t1c"])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(t1c))
    np.testing.assert_allclose(back.GetOrigin(), t1c.GetOrigin(), atol=1e-6)
    brain = sitk.ReadImage(str(folder / "brain_mask.nii.gz"))
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(segmentation_node_to_mask(result["brain_mask"], t1c)), sitk.GetArrayFromImage(brain)
    )
    segment = result["brain_mask"].GetSegmentation().GetNthSegment(0)
    assert "SCT^12738006^Brain" in segment.GetTerminology()

    # A second load of the same patient reuses the patient and study items.
    again = load_preprocessed_into_scene(scene, folder)
    assert again["study_item"] == study


def test_corrupt_volume_names_the_file_and_adds_nothing(slicer_app, sample, tmp_path):
    scene = slicer_app.scene
    folder = _write_case(sample, tmp_path)
    data = (folder / "t2.nii.gz").read_bytes()
    (folder / "t2.nii.gz").write_bytes(data[: len(data) // 3])
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="t2.nii.gz"):
        load_preprocessed_into_scene(scene, folder)
    assert scene.GetNumberOfNodes() == before


def test_failure_after_nodes_were_added_rolls_back(slicer_app, sample, tmp_path):
    scene = slicer_app.scene
    folder = _write_case(sample, tmp_path)
    # A readable but non-linear transform fails only when its node is made, after the volumes.
    bspline = sitk.BSplineTransformInitializer(sitk.ReadImage(str(folder / "t1c.nii.gz")), [3, 3, 3])
    params = np.zeros(bspline.GetNumberOfParameters())
    params[::5] = 4.0
    bspline.SetParameters(tuple(params))
    sitk.WriteTransform(bspline, str(folder / "transforms" / "t2_to_t1c.tfm"))
    before = scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="not a linear"):
        load_preprocessed_into_scene(scene, folder)
    assert scene.GetNumberOfNodes() == before
    assert sh_node(scene).GetNumberOfItems() == 0  # no patient, study or data items left


def test_missing_case_json(slicer_app, tmp_path):
    with pytest.raises(InputError, match="case.json"):
        load_preprocessed_into_scene(slicer_app.scene, tmp_path)
