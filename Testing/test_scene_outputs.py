"""``medgrade segment`` outputs into the headless MRML scene (MedGradeSegmentLib.scene_outputs), on real
outputs: TCGA-FG-6692 (skull-stripped, BraTS space) run through the real ``medgrade preprocess`` and
``medgrade segment`` commands with the same arguments the MedGradeSegment panel builds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.model_library import list_models
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradeSegmentLib.scene_outputs import (case_volume_node, load_segment_output, read_segment_output,
                                              segment_output_dir)
from MedGradeCoreLib.cli import main

REPO = Path(__file__).resolve().parents[1]
BRATS = "glioma-native/TCGA-FG-6692/brats-space/"
PATIENT = "TCGA-FG-6692"

pytestmark = pytest.mark.scene


def _segmentation_model() -> str:
    """The segmentation model the panel would offer first (the shipped demonstrator by default)."""
    from MedGradeSegmentLib.commands.segment import DEFAULT_MODEL

    ids = [m.model_id for m in list_models(kind="segmentation") if not m.error]
    assert DEFAULT_MODEL in ids, f"the shipped default segmentation model {DEFAULT_MODEL} is not listed: {ids}"
    return DEFAULT_MODEL


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    """``medgrade preprocess`` on a 50-slice slab (around the lesion) of the real skull-stripped T1c and FLAIR
    (the shipped segmentation model's inputs)."""
    files = fetch_dataset("tcga-fg-6692-brats-space")
    raw = tmp_path_factory.mktemp("raw") / PATIENT
    raw.mkdir()
    for seq, name in (("t1c", "t1c"), ("flair", "fla")):
        img = sitk.ReadImage(str(files[BRATS + f"{name}_bet.nii.gz"]))
        sitk.WriteImage(img[:, :, 60:110], str(raw / f"{seq}.nii.gz"))
    out = tmp_path_factory.mktemp("pre")
    # as SegmentPresenter.preprocess_args builds it (skull stripping off: the inputs are stripped)
    assert main(["preprocess", str(raw), "--output", str(out), "--reference", "t1c", "--spacing", "1",
                 "--slices", "20", "--patient-id", PATIENT, "--no-skull-strip"]) == 0
    return out / PATIENT


@pytest.fixture(scope="module")
def segmented(case_dir) -> Path:
    """``medgrade segment`` as SegmentPresenter.segment_args builds it: output in <case>/segmentation."""
    out = segment_output_dir(case_dir)
    assert main(["segment", str(case_dir), "--model", _segmentation_model(), "--output", str(out),
                 "--device", "cpu"]) == 0
    return out


def test_reads_what_segment_wrote(segmented, case_dir):
    out = read_segment_output(segmented)
    assert out.case_dir == case_dir
    info = json.loads((segmented / "segmentation.json").read_text())
    assert out.info == info and len(info["weights_sha256"]) == 64
    ref = sitk.ReadImage(str(case_dir / "t1c.nii.gz"))
    assert out.mask.GetSize() == ref.GetSize() and out.probability.GetSize() == ref.GetSize()


def test_segment_output_lands_under_the_case_study_with_terminology_and_provenance(segmented, case_dir, slicer_app):
    from MedGradeCoreLib.scene import (get_provenance, load_preprocessed_into_scene, segmentation_node_to_mask,
                                          study_item_of, terminology_entry, volume_node_to_sitk)
    from MedGradeCoreLib.scene.segmentations import segment_ids

    scene = slicer_app.scene
    case = load_preprocessed_into_scene(scene, case_dir)
    t1c = case["volumes"]["t1c"]
    assert case_volume_node(scene, case_dir, "t1c") is t1c
    result = load_segment_output(scene, segmented)  # reference found from the case folder
    seg, prob = result.segmentation_node, result.probability_node
    assert study_item_of(scene, seg) == study_item_of(scene, prob) == case["study_item"]
    ids = segment_ids(seg)
    assert len(ids) == 1
    assert seg.GetSegmentation().GetSegment(ids[0]).GetTerminology() == terminology_entry("neoplasm").serialized
    info = json.loads((segmented / "segmentation.json").read_text())
    prov = get_provenance(seg)
    assert prov["modelId"] == info["model_id"] and prov["weightsSha256"] == info["weights_sha256"]
    assert prov["step"] == "lesion-segmentation" and prov["inputNode"] == t1c.GetID()
    assert prov["segmentOutput"] == str(segmented.resolve()) and prov["caseFolder"] == str(case_dir.resolve())
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(segmented / "lesion_mask.nii.gz")))
    in_scene = sitk.GetArrayFromImage(segmentation_node_to_mask(seg, volume_node_to_sitk(t1c)))
    assert np.array_equal(written > 0, in_scene > 0)
    p = sitk.GetArrayFromImage(volume_node_to_sitk(prob))
    assert p.shape == written.shape and 0.0 <= p.min() and p.max() <= 1.0


def test_annotator_correction_from_the_loaded_node_is_a_new_version(segmented, case_dir, slicer_app, tmp_path):
    """What the panel's Save correction does: the node (edited or not) -> corrections/vNNNN, twice."""
    import shutil

    from MedGradeCoreLib.scene import load_preprocessed_into_scene
    from MedGradeSegmentLib.scene_segmentation import save_correction_from_scene

    work = tmp_path / PATIENT
    shutil.copytree(case_dir, work)  # keep the module's case folder free of corrections
    scene = slicer_app.scene
    load_preprocessed_into_scene(scene, work)
    seg = load_segment_output(scene, segment_output_dir(work)).segmentation_node
    grid = sitk.ReadImage(str(segment_output_dir(work) / "lesion_mask.nii.gz"))
    r1 = save_correction_from_scene(seg, grid, str(work), "annotator")
    r2 = save_correction_from_scene(seg, grid, str(work), "annotator")
    info = json.loads((segment_output_dir(work) / "segmentation.json").read_text())
    assert (r1.version, r2.version) == (1, 2) and r1.model_id == info["model_id"]
    assert r1.dice == pytest.approx(1.0) and r1.volume_difference_ml == pytest.approx(0.0, abs=1e-6)


def test_without_the_case_in_the_scene_nothing_is_added(segmented, slicer_app):
    scene = slicer_app.scene
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="load the preprocessed case"):
        load_segment_output(scene, segmented)
    assert scene.GetNumberOfNodes() == before


def test_a_folder_without_segmentation_json_is_refused(tmp_path, slicer_app):
    with pytest.raises(InputError, match="segmentation.json.*not a `medgrade segment` output"):
        load_segment_output(slicer_app.scene, tmp_path, reference_node=None)


def test_terminology_is_loaded_once_at_startup(slicer_app):
    """MedGradeWidgets.startup.ensureTerminology (called at Slicer's startupCompleted) is idempotent."""
    import vtk

    sys.path.insert(0, str(REPO / "MedGradeCore"))  # MedGradeWidgets lives in the core module
    from MedGradeCoreLib.scene.terminology import context_name
    from MedGradeWidgets.startup import ensureTerminology

    logic = slicer_app.logics["Terminologies"]
    assert ensureTerminology(logic) == ensureTerminology(logic) == context_name()
    names = vtk.vtkStringArray()
    logic.GetLoadedTerminologyNames(names)
    loaded = [names.GetValue(i) for i in range(names.GetNumberOfValues())]
    assert loaded.count(context_name()) == 1
