"""MedGradePredict: grade a segmented case (KiNet + clinical data + LightGBM), with reader findings.

Thin Slicer GUI over ``MedGradePredictLib``: ``medgrade predict`` runs in a background process and writes
``<case>/grading/`` (predictions.csv, predictions.json, heatmaps/); the result (tables, slice-probability
plot, heat map) is loaded with ``MedGradePredictLib.scene_grading.load_grading_into_scene``.
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import Annotated, Any

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.util import VTKObservationMixin

from MedGradeCoreLib import model_library
from MedGradeCoreLib.devices import DEVICE_CHOICES
from MedGradePredictLib.panel.presenter import FINDINGS, FUSIONS, SEXES, GradePresenter
from MedGradePredictWidgets.breast_section import BreastSection
from MedGradePredictWidgets.run_all_section import RunAllSection
from MedGradeSegmentLib.panel.presenter import SegmentPresenter
from MedGradeWidgets.dependencies_prompt import ensureDependencies, missingDependencies
from MedGradeWidgets.job_runner import JobRunner, headlessRunner, libraryRoot
from MedGradeWidgets.model_library_section import ModelLibrarySection, fillModelCombo
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradeWidgets.sample_data_registration import loadSampleCase


class MedGradePredict(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedGrade Predict")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedGrade")]
        self.parent.dependencies = ["MedGradeCore", "MedGradeSegment"]
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = _(
            "Run all grades the volumes you loaded in one click (lesion segmented first when there is no mask; "
            "every matching grading model; table, plot and heat map placed in the layout; patient report). "
            "Requires 3D Slicer 5.10 or newer. Grade a segmented case: KiNet on the MIX inputs (image and lesion-restricted image) of the model's sequences "
            "(T1c + FLAIR for the shipped model, T1c + T2 in the thesis), "
            "multi-scale features plus age and sex into LightGBM, slice probabilities fused per patient "
            "(near / all / large). The reader's own findings are recorded beside the result, never mixed into it. "
            "See the MedGrade user guide (docs/).")
        self.parent.acknowledgementText = _(
            "KiNet and the BMS loss follow a 2023 master's thesis on non-invasive Ki-67 prediction in glioma. "
            "Built on MONAI, LightGBM, scikit-learn and 3D Slicer.")


@parameterNodeWrapper
class MedGradePredictParameterNode:
    caseFolder: pathlib.Path
    t1cVolume: vtkMRMLScalarVolumeNode
    t2Volume: vtkMRMLScalarVolumeNode
    t1Volume: vtkMRMLScalarVolumeNode
    flairVolume: vtkMRMLScalarVolumeNode
    lesionSegmentation: vtkMRMLSegmentationNode
    age: Annotated[int, WithinRange(-1, 120)] = -1
    sex: Annotated[str, Choice(list(SEXES))] = "unknown"
    clinicalCsv: pathlib.Path
    enhancingFocus: Annotated[str, Choice(list(FINDINGS))] = "unknown"
    fusion: Annotated[str, Choice(list(FUSIONS))] = "near"
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    heatmap: bool = True
    modelId: str = ""


class MedGradePredictWidget(ParameterNodePanel, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds the panel's widgets to :class:`GradePresenter`, which holds every decision."""

    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradePredict.ui")
        self.logic = MedGradePredictLogic()
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton, [self.ui.applyButton],
                                onFinished=lambda outcome: self.updateButtons())
        self.presenter = GradePresenter(slicer.mrmlScene, slicer.app.applicationLogic(), self.runner)
        self.ui.gradingModelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.runAll = RunAllSection(self.layout, "vtkMRMLTableNode", _("Grade table:"), self.presenter.run_all_inputs,
                                    self.presenter.run_all_args)
        self.breast = BreastSection(self.layout, self.presenter)  # before the library lists its models
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout(), self.updateModelCombo)
        self.runners = [self.runner, self.runAll.runner, self.library.runner]
        self.observeSceneClose()
        self.ui.applyButton.connect("clicked()", self.onApply)
        self.ui.loadClinicalButton.connect("clicked()", self.onLoadClinical)
        self.initializeParameterNode()

    def setParameterNode(self, parameterNode) -> None:
        self.presenter.params = parameterNode
        if parameterNode is not None:
            self.presenter.prefill()
        super().setParameterNode(parameterNode)
        if parameterNode is not None:
            self.updateModelCombo(self.library)

    def updateButtons(self, caller=None, event=None) -> None:
        actions = self.presenter.actions()
        for key, button in (("apply", self.ui.applyButton), ("loadClinical", self.ui.loadClinicalButton)):
            button.enabled, button.toolTip = actions[key].enabled, actions[key].reason
        if not self.runAll.runner.busy:
            self.runAll.runButton.enabled = actions["runAll"].enabled

    def updateModelCombo(self, library: ModelLibrarySection) -> None:
        lists = self.presenter.library_changed(library.models)
        fillModelCombo(self.ui.gradingModelComboBox, lists["grading"],
                       self.presenter.params.modelId if self.presenter.params is not None else "")
        self.breast.fillModels(lists["breast"])

    def onModelChosen(self, index: int) -> None:
        self.presenter.choose_model(self.ui.gradingModelComboBox.itemData(index) or "")

    def onLoadClinical(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not read the clinical CSV")):
            self.presenter.read_clinical()

    def onApply(self) -> None:
        if ensureDependencies():
            with slicer.util.tryWithErrorDisplay(_("Could not prepare the grading"), waitCursor=True):
                self.presenter.grade()


class MedGradePredictLogic(ScriptedLoadableModuleLogic):
    """The parameter node; the panel's work is :class:`GradePresenter`'s (usable from Python too)."""

    def getParameterNode(self) -> Any:
        return MedGradePredictParameterNode(super().getParameterNode())

    @staticmethod
    def presenter(p: Any = None, runner: Any = None) -> GradePresenter:
        return GradePresenter(slicer.mrmlScene, slicer.app.applicationLogic(), runner or headlessRunner(), p)


class MedGradePredictTest(ScriptedLoadableModuleTest):
    """Sample case -> preprocess -> segment (the lesion the grader needs) -> grade -> tables in the scene,
    through the panels' presenters with Slicer responsive throughout; skipped cleanly without dependencies."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_grade_sample_case()

    def wait(self, presenter: Any) -> None:
        outcome = presenter.jobs.wait(1800, idle=slicer.app.processEvents)
        self.assertEqual(outcome.status, "done", outcome.message)

    def test_grade_sample_case(self) -> None:
        missing = missingDependencies()
        graders = model_library.list_models(libraryRoot(), kind="grading")
        segmenters = model_library.list_models(libraryRoot(), kind="segmentation")
        if missing or not graders or not segmenters:
            self.delayDisplay(f"Skipped: {missing or 'no grading and segmentation model in the library'}")
            return
        from MedGradeSegmentLib.panel.presenter import SegmentParameters

        sp = SegmentParameters(outputFolder=pathlib.Path(tempfile.mkdtemp(prefix="MedGradePredictTest-")),
                               patientId="TCGA-FG-6692")
        loadSampleCase(sp)
        seg = SegmentPresenter(slicer.mrmlScene, slicer.app.applicationLogic(), headlessRunner(), sp)
        self.assertTrue(seg.preprocess())
        self.wait(seg)
        seg.set_models(segmenters)
        self.assertTrue(seg.segment())
        self.wait(seg)

        p = MedGradePredictLogic().getParameterNode()
        presenter = MedGradePredictLogic.presenter(p)
        p.caseFolder, p.lesionSegmentation = sp.caseFolder, sp.lesionSegmentation
        presenter.prefill()
        presenter.set_models(graders)
        p.age, p.sex, p.enhancingFocus = 45, "female", "yes"
        self.delayDisplay(f"Grading with {p.modelId}")
        tablesBefore = len(slicer.util.getNodesByClass("vtkMRMLTableNode"))
        self.assertTrue(presenter.grade())
        self.wait(presenter)
        self.assertGreater(len(slicer.util.getNodesByClass("vtkMRMLTableNode")), tablesBefore)
        self.delayDisplay("Test passed")
