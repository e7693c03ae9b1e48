"""The Predict panel's presenter headless on slicer-core's real MRML: a single grading model is chosen without a
click and the breast combo is filled from the first listing (issue 16 items 2 and 10), breast tables and Grad-CAM
maps land under the input's study with the map over the image (item 10), and the module's fields match."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.panel import JobRunner
from MedGradePredictLib.panel.presenter import GradeParameters, GradePresenter

from test_panel_segment import FakeEntry, slice_views, wrapper_fields

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.scene


def _entry(model_id: str, kind: str, error: str = "") -> FakeEntry:
    e = FakeEntry(model_id, error)
    e.kind = kind
    return e


def test_parameters_match_the_module_parameter_node():
    assert wrapper_fields(REPO / "MedGradePredict" / "MedGradePredict.py", "MedGradePredictParameterNode") == \
        set(GradeParameters.__dataclass_fields__)


def test_first_listing_fills_grading_and_breast_models(slicer_app):
    library = [_entry("kinet-lgg", "grading"), _entry("busbra-fusion", "breast-fusion"),
               _entry("busbra-radiomics", "breast-radiomics"), _entry("seg", "segmentation"),
               _entry("bad", "breast-fusion", error="sha256 mismatch")]
    p = GradeParameters(caseFolder=Path("/cases/P1"))
    presenter = GradePresenter(slicer_app.scene, slicer_app.app_logic, JobRunner(), p)
    lists = presenter.library_changed(lambda kind: [e for e in library if e.kind == kind])
    assert [i for _, i in lists["grading"]] == ["kinet-lgg"]
    assert [i for _, i in lists["breast"]] == ["busbra-fusion", "busbra-radiomics"]
    assert p.modelId == "kinet-lgg" and presenter.actions()["apply"].enabled
    args = presenter.predict_args("/cases/P1/grading")
    assert args[:4] == ["predict", "/cases/P1", "--model", "kinet-lgg"]


def _breast_output(folder: Path, grid: sitk.Image) -> Path:
    """What ``medgrade predict --heatmap`` writes for a breast case (tables' rows, contributions, one map)."""
    folder.mkdir()
    heat = sitk.GetImageFromArray(np.linspace(0, 1, grid.GetNumberOfPixels(), dtype=np.float32)
                                  .reshape(grid.GetSize()[::-1]))
    heat.CopyInformation(grid)
    sitk.WriteImage(heat, str(folder / "c1_us_gradcam.nii.gz"))
    (folder / "predictions.json").write_text(json.dumps({
        "input": "case", "note": "stand-in task",
        "rows": [{"id": "c1", "predicted_class": "malignant", "probability": 0.71, "positive_class": "malignant",
                  "modalities": "us", "model_id": "busbra-fusion", "probability_malignant": 0.71}],
        "contributions": {"busbra-fusion": [{"modality": "us", "weight": 1.0, "p_without": 0.5}]},
        "heatmaps": [{"file": "c1_us_gradcam.nii.gz", "id": "c1", "modality": "us", "model_id": "busbra-fusion"}]}))
    return folder


def test_breast_results_land_under_the_input_study_and_the_map_over_it(slicer_app, tmp_path):
    from MedGradeCoreLib.scene import ensure_patient_study, place_under, sitk_to_volume_node, study_item_of

    scene = slicer_app.scene
    views = slice_views(scene)
    grid = sitk.Image(32, 24, 1, sitk.sitkFloat32)
    us = sitk_to_volume_node(scene, grid, "breast US")
    study = ensure_patient_study(scene, "BREAST-1", "US study")
    place_under(scene, us, study)
    presenter = GradePresenter(scene, slicer_app.app_logic, JobRunner(), GradeParameters())
    result = presenter.load_breast(_breast_output(tmp_path / "result", grid), us)
    assert result["summary"] == "c1: malignant (p=0.71)"
    for node in [result["table"], *result["contributions"], *result["heatmaps"]]:
        assert study_item_of(scene, node) == study, node.GetName()
    assert views[0].GetBackgroundVolumeID() == us.GetID()
    assert views[0].GetForegroundVolumeID() == result["heatmaps"][0].GetID()
