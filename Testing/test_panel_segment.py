"""The Segment panel's presenter headless on slicer-core's real MRML, with real background jobs: a single
installed model is chosen without touching the combo box (issue 16 item 2), preprocess and segment results are
shown in the slice views and handed to the Segment Editor (item 10), closing the panel ends its job (item 6)."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
import SimpleITK as sitk

from MedGradeCoreLib.model_library import list_models
from MedGradeCoreLib.panel import JobRunner
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradeSegmentLib.panel.presenter import SegmentParameters, SegmentPresenter

REPO = Path(__file__).resolve().parents[1]
BRATS = "glioma-native/TCGA-FG-6692/brats-space/"
PATIENT = "TCGA-FG-6692"
pytestmark = pytest.mark.scene


def wrapper_fields(module_file: Path, class_name: str) -> set[str]:
    """The annotated fields of a ``@parameterNodeWrapper`` class of a module file (read, not imported)."""
    tree = ast.parse(module_file.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}


def slice_views(scene) -> list:
    """The three slice composite nodes Slicer's layout makes (headless there are none until added)."""
    import slicer

    out = []
    for name in ("Red", "Yellow", "Green"):
        comp = slicer.vtkMRMLSliceCompositeNode()
        comp.SetLayoutName(name)
        out.append(scene.AddNode(comp))
    return out


class FakeEntry:
    def __init__(self, model_id: str, error: str = ""):
        self.model_id, self.source, self.error = model_id, "installed", error


def test_parameters_match_the_module_parameter_node():
    assert wrapper_fields(REPO / "MedGradeSegment" / "MedGradeSegment.py", "MedGradeSegmentParameterNode") == \
        set(SegmentParameters.__dataclass_fields__)


def test_a_single_model_is_chosen_and_enables_segment(slicer_app):
    p = SegmentParameters(caseFolder=Path("/some/case"))
    presenter = SegmentPresenter(slicer_app.scene, slicer_app.app_logic, JobRunner(), p)
    assert not presenter.actions()["segment"].enabled
    items = presenter.set_models([FakeEntry("only-model"), FakeEntry("broken", error="bad manifest")])
    assert items == [("only-model (installed)", "only-model")]  # an unusable bundle is not offered
    assert p.modelId == "only-model" and presenter.actions()["segment"].enabled
    presenter.set_models([FakeEntry("a"), FakeEntry("only-model")])
    assert p.modelId == "only-model"  # a still-installed choice is kept
    presenter.set_models([])
    assert p.modelId == "" and "segmentation model" in presenter.actions()["segment"].reason


@pytest.fixture
def loaded_inputs(slicer_app, tmp_path):
    """The TCGA-FG-6692 skull-stripped T1c and FLAIR (a 50-slice slab around the lesion) as scene volumes."""
    from MedGradeCoreLib.scene import sitk_to_volume_node

    files = fetch_dataset("tcga-fg-6692-brats-space")
    nodes = {}
    for seq, name in (("t1c", "t1c"), ("flair", "fla")):
        img = sitk.ReadImage(str(files[BRATS + f"{name}_bet.nii.gz"]))[:, :, 60:110]
        nodes[seq] = sitk_to_volume_node(slicer_app.scene, img, f"{PATIENT} {seq.upper()}")
    return nodes


@pytest.mark.slow  # a real preprocess (deep brain extraction off, co-registration on) and segment of a 50-slice slab
def test_preprocess_and_segment_land_in_the_views_and_the_segment_editor(slicer_app, loaded_inputs, tmp_path):
    scene = slicer_app.scene
    views = slice_views(scene)
    p = SegmentParameters(outputFolder=tmp_path / "cases", patientId=PATIENT, skullStrip=False, device="cpu", numSlices=8)
    presenter = SegmentPresenter(scene, slicer_app.app_logic, JobRunner(), p)
    presenter.prefill_volumes()
    assert p.t1cVolume is loaded_inputs["t1c"] and p.flairVolume is loaded_inputs["flair"]
    assert presenter.actions()["preprocess"].enabled and not presenter.actions()["segment"].enabled

    assert presenter.preprocess()
    assert not presenter.actions()["preprocess"].enabled  # busy while the job runs
    outcome = presenter.jobs.wait(timeout=300)
    assert outcome.status == "done", outcome.message + outcome.log[-2000:]
    assert Path(p.caseFolder).name == PATIENT
    shown = scene.GetNodeByID(views[0].GetBackgroundVolumeID())
    assert shown is not None and shown.GetAttribute("MedGrade.step") == "preprocess"
    assert shown.GetAttribute("MedGrade.sequence") == "t1c"  # the case's reference volume, in every view
    assert {v.GetBackgroundVolumeID() for v in views} == {shown.GetID()}

    presenter.set_models([e for e in list_models(kind="segmentation") if not e.error][:1])
    assert p.modelId and presenter.actions()["segment"].enabled
    assert presenter.segment()
    outcome = presenter.jobs.wait(timeout=300)
    assert outcome.status == "done", outcome.message + outcome.log[-2000:]
    seg = p.lesionSegmentation
    assert seg is not None and seg.GetSegmentation().GetNumberOfSegments() == 1
    assert seg.GetDisplayNode().GetVisibility2D() and views[0].GetBackgroundVolumeID() == shown.GetID()
    assert presenter.actions()["saveCorrection"].enabled and presenter.actions()["editInSegmentEditor"].enabled

    assert presenter.edit_in_segment_editor() == "SegmentEditor"
    editor = scene.GetSingletonNode("SegmentEditor", "vtkMRMLSegmentEditorNode")
    assert editor.GetSegmentationNode() is seg and editor.GetSourceVolumeNode() is shown

    record = presenter.save_correction("tester")
    assert record.version == 1 and presenter.save_correction("tester").version == 2


def test_closing_the_panel_ends_its_job_without_waiting(slicer_app, loaded_inputs, tmp_path):
    p = SegmentParameters(outputFolder=tmp_path / "cases", patientId=PATIENT)
    presenter = SegmentPresenter(slicer_app.scene, slicer_app.app_logic, JobRunner(), p)
    presenter.prefill_volumes()
    assert presenter.preprocess()
    time.sleep(1.0)
    t0 = time.monotonic()
    presenter.shutdown()
    assert time.monotonic() - t0 < 0.5
    outcome = presenter.jobs.wait(timeout=30)
    assert outcome.status == "cancelled" and not presenter.jobs.running
    assert not (tmp_path / "cases" / PATIENT).exists()  # nothing half-written is left as a case
