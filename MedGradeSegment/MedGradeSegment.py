"""MedGradeSegment: preprocess a case, segment its lesion, save an annotator's corrected mask.

Thin Slicer GUI over ``MedGradeSegmentLib``: ``medgrade preprocess`` and ``medgrade segment`` run in a
background process (``MedGradeWidgets.job_runner.JobRunner``) and their outputs are loaded with the scene
layer (``MedGradeCoreLib.scene``, ``MedGradeSegmentLib.scene_outputs``). The Qt pieces the three
panels share live in ``MedGradeWidgets``.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Annotated, Any

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.util import VTKObservationMixin

from MedGradeCoreLib import model_library
from MedGradeCoreLib.devices import DEVICE_CHOICES
from MedGradeCoreLib.slicer_sample_data import entry_for
from MedGradeSegmentLib.panel.presenter import SEQUENCES, SegmentPresenter
from MedGradeWidgets.dependencies_prompt import ensureDependencies, missingDependencies
from MedGradeWidgets.job_runner import JobRunner, headlessRunner, libraryRoot
from MedGradeWidgets.model_library_section import ModelLibrarySection, fillModelCombo
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradeWidgets.sample_data_registration import loadSampleCase, registerSampleData
from MedGradeWidgets.startup import ensureTerminology, onStartupCompleted



class MedGradeSegment(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedGrade Segment")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedGrade")]
        self.parent.dependencies = ["MedGradeCore"]
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = _(
            "Run all: from the volumes you loaded to the lesion mask, the grades and a patient report in one click "
            "(medgrade run). Or step by step: preprocess a brain MR case (deep brain extraction, co-registration, "
            "1 mm resampling, z-score, slice sampling), segment the lesion with a MIG-Net model from the model "
            "library, correct it in Segment Editor and save the corrected mask as a new version. Requires 3D "
            "Slicer 5.10 or newer. See the MedGrade user guide (docs/).")
        self.parent.acknowledgementText = _(
            "MIG-Net with the Focus Prior Graph loss and KiNet follow a 2023 master's thesis on non-invasive "
            "Ki-67 prediction in glioma. Brain extraction: deepbet (Fisch et al.), HD-BET (Isensee et al.) or the "
            "Swiss Skull Stripper (itk-skullstripping). Built on MONAI, SimpleITK and 3D Slicer.")
        slicer.app.connect("startupCompleted()", onStartupCompleted)


@parameterNodeWrapper
class MedGradeSegmentParameterNode:
    t1cVolume: vtkMRMLScalarVolumeNode
    t2Volume: vtkMRMLScalarVolumeNode
    t1Volume: vtkMRMLScalarVolumeNode
    flairVolume: vtkMRMLScalarVolumeNode
    inputPath: pathlib.Path
    patientId: str = ""
    outputFolder: pathlib.Path
    reference: Annotated[str, Choice(list(SEQUENCES))] = "t1c"
    skullStrip: bool = True
    biasCorrection: bool = False
    affine: bool = False
    spacingMm: Annotated[float, WithinRange(0.25, 5.0)] = 1.0
    numSlices: Annotated[int, WithinRange(1, 200)] = 20
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    largestComponent: bool = True
    lesionSegmentation: vtkMRMLSegmentationNode
    annotator: str = ""
    modelId: str = ""
    caseFolder: pathlib.Path


class MedGradeSegmentWidget(ParameterNodePanel, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Binds the panel's widgets to :class:`SegmentPresenter`, which holds every decision."""

    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradeSegment.ui")
        self.logic = MedGradeSegmentLogic()
        ensureTerminology(slicer.modules.terminologies.logic())  # also when loaded after startup
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                [self.ui.preprocessButton, self.ui.segmentButton, self.ui.saveCorrectionButton],
                                onFinished=lambda outcome: self.updateButtons())
        self.presenter = SegmentPresenter(slicer.mrmlScene, slicer.app.applicationLogic(), self.runner)
        self.ui.segmentationModelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout(), self.updateModelCombo)
        self.runners = [self.runner, self.library.runner]
        self.observeSceneClose()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.ui.preprocessButton.connect("clicked()", self.onPreprocess)
        self.ui.segmentButton.connect("clicked()", self.onSegment)
        self.ui.editInSegmentEditorButton.connect("clicked()", self.onEditInSegmentEditor)
        self.ui.saveCorrectionButton.connect("clicked()", self.onSaveCorrection)
        exportSeg = qt.QPushButton("Export as DICOM SEG")  # issue 19: the lesion into Slicer's DICOM database
        self.ui.saveCorrectionButton.parentWidget().layout().addWidget(exportSeg)
        exportSeg.connect("clicked()", self.onExportDicomSeg)
        self.ui.addToCohortButton.connect("clicked()", self.onAddToCohort)
        self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node) -> None:
        if self._parameterNode is not None and isinstance(node, vtkMRMLScalarVolumeNode):
            qt.QTimer.singleShot(0, self.presenter.prefill_volumes)  # the node's name is set after it is added

    def setParameterNode(self, parameterNode) -> None:
        self.presenter.params = parameterNode
        super().setParameterNode(parameterNode)
        if parameterNode is not None:
            self.presenter.prefill_volumes()
            self.updateModelCombo(self.library)

    def updateButtons(self, caller=None, event=None) -> None:
        buttons = {"preprocess": self.ui.preprocessButton, "segment": self.ui.segmentButton,
                   "saveCorrection": self.ui.saveCorrectionButton, "addToCohort": self.ui.addToCohortButton,
                   "editInSegmentEditor": self.ui.editInSegmentEditorButton}
        for key, action in self.presenter.actions().items():
            buttons[key].enabled, buttons[key].toolTip = action.enabled, action.reason

    def updateModelCombo(self, library: ModelLibrarySection) -> None:
        fillModelCombo(self.ui.segmentationModelComboBox, self.presenter.set_models(library.models("segmentation")),
                       self.presenter.params.modelId if self.presenter.params is not None else "")

    def onModelChosen(self, index: int) -> None:
        self.presenter.choose_model(self.ui.segmentationModelComboBox.itemData(index) or "")

    def onPreprocess(self) -> None:
        if ensureDependencies():
            with slicer.util.tryWithErrorDisplay(_("Could not prepare the input"), waitCursor=True):
                self.presenter.preprocess()

    def onSegment(self) -> None:
        if ensureDependencies():
            self.presenter.segment()

    def onEditInSegmentEditor(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not open the lesion in Segment Editor")):
            slicer.util.selectModule(self.presenter.edit_in_segment_editor())

    def onSaveCorrection(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not save the corrected mask"), waitCursor=True):
            record = self.presenter.save_correction()
        dice = "n/a" if record.dice is None else f"{record.dice:.3f}"
        diff = "n/a" if record.volume_difference_ml is None else f"{record.volume_difference_ml:+.2f} ml"
        self.ui.statusLabel.text = f"Saved correction version {record.version}"
        slicer.util.infoDisplay(f"Saved as version {record.version} in {record.folder}\n"
                                f"Dice with the AI mask: {dice}; volume difference: {diff}")

    def onExportDicomSeg(self) -> None:
        from MedGradeSegmentLib.scene_dicom_export import export_to_dicom_database

        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not export the DICOM SEG", waitCursor=True):
            uid = export_to_dicom_database(p.lesionSegmentation, slicer.dicomDatabase, getattr(p, "annotator", None))
            self.ui.statusLabel.text = f"DICOM SEG {uid} added to the DICOM database (under the source study)"

    def onAddToCohort(self) -> None:
        cohort = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Training cohort folder"))
        if cohort:
            with slicer.util.tryWithErrorDisplay(_("Could not add the case to the cohort"), waitCursor=True):
                self.ui.statusLabel.text = self.presenter.add_to_cohort(cohort)


class MedGradeSegmentLogic(ScriptedLoadableModuleLogic):
    """The parameter node; the panel's work is :class:`SegmentPresenter`'s (usable from Python too)."""

    def getParameterNode(self) -> Any:
        return MedGradeSegmentParameterNode(super().getParameterNode())

    @staticmethod
    def presenter(p: Any = None, runner: Any = None) -> SegmentPresenter:
        """A presenter on Slicer's scene (default runner: no widgets, polled by the caller)."""
        return SegmentPresenter(slicer.mrmlScene, slicer.app.applicationLogic(), runner or headlessRunner(), p)


class MedGradeSegmentTest(ScriptedLoadableModuleTest):
    """The workflow on the sample case through the panel's presenter, Slicer responsive throughout:
    Sample Data -> preprocess -> segment -> Segment Editor hand-off -> save correction (twice)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_sample_data_and_terminology()
        self.setUp()
        self.test_preprocess_segment_correct()

    def test_sample_data_and_terminology(self) -> None:
        registerSampleData()
        names = [s.sampleName for s in slicer.modules.sampleDataSources.get("MedGrade", [])]
        self.assertIn(entry_for("tcga-fg-6692").sampleName, names)
        logic = slicer.modules.terminologies.logic()
        self.assertEqual(ensureTerminology(logic), ensureTerminology(logic))

    def wait(self, presenter: SegmentPresenter) -> None:
        outcome = presenter.jobs.wait(1800, idle=slicer.app.processEvents)
        self.assertEqual(outcome.status, "done", outcome.message)

    def test_preprocess_segment_correct(self) -> None:
        missing = missingDependencies()
        if missing:
            self.delayDisplay(f"Skipped: {missing}")
            return
        self.delayDisplay("Loading the sample case")
        p = MedGradeSegmentLogic().getParameterNode()
        self.assertEqual(len(loadSampleCase(p)), 4)
        p.outputFolder, p.patientId = pathlib.Path(tempfile.mkdtemp(prefix="MedGradeSegmentTest-")), "TCGA-FG-6692"
        presenter = MedGradeSegmentLogic.presenter(p)
        self.delayDisplay("Preprocessing")
        self.assertTrue(presenter.preprocess())
        self.wait(presenter)
        self.assertEqual(os.path.basename(str(p.caseFolder)), "TCGA-FG-6692")
        models = presenter.set_models(model_library.list_models(libraryRoot(), kind="segmentation"))
        if not models:
            self.delayDisplay("No segmentation model installed: segmentation part skipped")
            return
        self.delayDisplay(f"Segmenting with {p.modelId}")
        self.assertTrue(presenter.segment())
        self.wait(presenter)
        self.assertEqual(p.lesionSegmentation.GetAttribute("MedGrade.modelId"), p.modelId)
        self.assertEqual(presenter.edit_in_segment_editor(), "SegmentEditor")
        self.delayDisplay("Saving the corrected mask twice gives two versions")
        versions = [presenter.save_correction("self-test").version for _ in range(2)]
        self.assertEqual(versions[1], versions[0] + 1)
        self.delayDisplay("Test passed")
