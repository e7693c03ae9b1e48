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
import time
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
from MedGradeCoreLib.case_folder import read_case_info, reference_image_path, sanitise_patient_id, written_case_folder
from MedGradeCoreLib.devices import DEVICE_CHOICES
from MedGradeCoreLib.sequence_names import guess_sequence
from MedGradeCoreLib.slicer_sample_data import entry_for
from MedGradeWidgets import pathText
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import JobRunner, libraryRoot, runSync
from MedGradeWidgets.model_library_section import ModelLibrarySection, fillModelCombo
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradeWidgets.sample_data_registration import registerSampleData
from MedGradeWidgets.startup import ensureTerminology, onStartupCompleted

SEQUENCES = ("t1c", "t2", "t1", "flair")


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
    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradeSegment.ui")
        self.logic = MedGradeSegmentLogic()
        ensureTerminology(slicer.modules.terminologies.logic())  # also when loaded after startup
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                [self.ui.preprocessButton, self.ui.segmentButton, self.ui.saveCorrectionButton])
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout(), self.updateModelCombo)
        self.observeSceneClose()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.ui.preprocessButton.connect("clicked()", self.onPreprocess)
        self.ui.segmentButton.connect("clicked()", self.onSegment)
        self.ui.saveCorrectionButton.connect("clicked()", self.onSaveCorrection)
        exportSeg = qt.QPushButton("Export as DICOM SEG")  # issue 19: the lesion into Slicer's DICOM database
        self.ui.saveCorrectionButton.parentWidget().layout().addWidget(exportSeg)
        exportSeg.connect("clicked()", self.onExportDicomSeg)
        self.ui.addToCohortButton.connect("clicked()", self.onAddToCohort)
        self.ui.segmentationModelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeAdded(self, caller, event, node) -> None:
        if self._parameterNode is not None and isinstance(node, vtkMRMLScalarVolumeNode):
            qt.QTimer.singleShot(0, self.prefillVolumes)  # the node's name is set after it is added

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        self.prefillVolumes()

    def prefillVolumes(self) -> None:
        """Fill empty sequence selectors from volume names (``guess_sequence``)."""
        if self._parameterNode is None:
            return
        for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
            if node.IsA("vtkMRMLLabelMapVolumeNode") or node.GetAttribute("MedGrade.step"):
                continue
            seq = guess_sequence(node.GetName())
            if seq and getattr(self._parameterNode, f"{seq}Volume") is None:
                setattr(self._parameterNode, f"{seq}Volume", node)

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None or self.runner.running:
            return
        hasInput = bool(p.t1cVolume or p.t2Volume or pathText(p.inputPath))
        hasCase = bool(pathText(p.caseFolder))
        self.ui.preprocessButton.enabled = hasInput and bool(pathText(p.outputFolder))
        self.ui.preprocessButton.toolTip = "" if self.ui.preprocessButton.enabled else \
            "Select the volumes (or a file/folder) and an output folder"
        self.ui.segmentButton.enabled = hasCase and bool(p.modelId)
        self.ui.saveCorrectionButton.enabled = hasCase and p.lesionSegmentation is not None
        self.ui.addToCohortButton.enabled = hasCase

    def updateModelCombo(self, library: ModelLibrarySection) -> None:
        current = self._parameterNode.modelId if self._parameterNode else ""
        fillModelCombo(self.ui.segmentationModelComboBox, library.models("segmentation"), current)

    def onModelChosen(self, index: int) -> None:
        if self._parameterNode is not None:
            self._parameterNode.modelId = self.ui.segmentationModelComboBox.itemData(index) or ""

    def onPreprocess(self) -> None:
        if not ensureDependencies():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not prepare the input", waitCursor=True):
            inputPath = self.logic.exportInputs(p, tempfile.mkdtemp(prefix="MedGrade-input-"))
            args = self.logic.preprocessArgs(p, inputPath)
        started = time.time()

        def load() -> None:
            caseDir = self.logic.findCaseFolder(pathText(p.outputFolder), self.runner.job.log, started)
            p.caseFolder = pathlib.Path(caseDir)
            self.logic.loadPreprocessed(caseDir, p.t1cVolume or p.t2Volume)

        self.runner.start(args, "Preprocessing", load)

    def onSegment(self) -> None:
        if not ensureDependencies():
            return
        p = self._parameterNode
        caseDir = pathText(p.caseFolder)

        def load() -> None:
            p.lesionSegmentation = self.logic.loadSegmentation(caseDir)

        self.runner.start(self.logic.segmentArgs(p, caseDir), "Segmenting the lesion", load)

    def onSaveCorrection(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not save the corrected mask", waitCursor=True):
            record = self.logic.saveCorrection(p)
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
        import qt

        cohort = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Training cohort folder")
        if not cohort:
            return
        from MedGradeSegmentLib.cohort_folder import add_to_cohort

        with slicer.util.tryWithErrorDisplay("Could not add the case to the cohort", waitCursor=True):
            r = add_to_cohort(pathText(self._parameterNode.caseFolder), cohort)
            self.ui.statusLabel.text = f"Added {r['case']} (corrected version {r['version']}) to {cohort}"


class MedGradeSegmentLogic(ScriptedLoadableModuleLogic):
    """Turns the parameter node into ``medgrade`` command lines and loads what the commands wrote."""

    def getParameterNode(self) -> Any:
        return MedGradeSegmentParameterNode(super().getParameterNode())

    @staticmethod
    def patientName(p: Any) -> str:
        """The patient id to use: the typed one, else the subject-hierarchy patient of the input volumes."""
        if p.patientId:
            return p.patientId
        sh = slicer.mrmlScene.GetSubjectHierarchyNode()
        for seq in SEQUENCES:
            node = getattr(p, f"{seq}Volume")
            item = sh.GetItemByDataNode(node) if node is not None else 0
            patient = sh.GetItemAncestorAtLevel(item, "Patient") if item else 0
            if patient:
                return sh.GetItemName(patient)
        return ""

    @staticmethod
    def loadSampleCase(p: Any) -> list:
        """The bundled TCGA-FG-6692 from Sample Data, each volume selected for its sequence (self-tests)."""
        import SampleData

        registerSampleData()
        nodes = SampleData.SampleDataLogic().downloadSamples(entry_for("tcga-fg-6692").sampleName)
        for node in nodes:
            setattr(p, f"{guess_sequence(node.GetName())}Volume", node)
        return nodes

    def exportInputs(self, p: Any, folder: str) -> str:
        """The selected volumes written as ``<folder>/<patient>/<seq>.nrrd`` (a volumes folder medgrade
        reads as one case), or the typed input path when no volume is selected."""
        selected = {seq: getattr(p, f"{seq}Volume") for seq in SEQUENCES if getattr(p, f"{seq}Volume")}
        if not selected:
            return pathText(p.inputPath)
        folder = os.path.join(folder, sanitise_patient_id(self.patientName(p)))
        os.makedirs(folder, exist_ok=True)
        for seq, node in selected.items():
            if not slicer.util.saveNode(node, os.path.join(folder, f"{seq}.nrrd")):
                raise RuntimeError(f"{node.GetName()}: could not be written to {folder}")
        return folder

    def preprocessArgs(self, p: Any, inputPath: str) -> list[str]:
        """``medgrade preprocess INPUT --output DIR ...``: writes ``DIR/<patient id>/`` (docs/CONTRACTS.md)."""
        args = ["preprocess", inputPath, "--output", pathText(p.outputFolder), "--reference", p.reference,
                "--spacing", f"{p.spacingMm:g}", "--slices", str(p.numSlices)]
        patient = self.patientName(p)
        if patient:
            args += ["--patient-id", patient]
        args += [] if p.skullStrip else ["--no-skull-strip"]
        args += ["--n4"] if p.biasCorrection else []
        args += ["--affine"] if p.affine else []
        return args

    @staticmethod
    def segmentArgs(p: Any, caseDir: str) -> list[str]:
        """``medgrade segment CASE --model ID --output CASE/segmentation``: the folder save-correction reads."""
        from MedGradeSegmentLib.scene_outputs import segment_output_dir

        args = ["segment", caseDir, "--model", p.modelId, "--output", str(segment_output_dir(caseDir)),
                "--device", p.device]
        return args + ([] if p.largestComponent else ["--no-largest-component"])

    @staticmethod
    def saveCorrection(p: Any) -> Any:
        """The edited segmentation saved as the next version under ``<case>/corrections/`` (in process:
        a few small files), compared with the AI mask of ``<case>/segmentation`` or the node's own output."""
        import getpass

        import SimpleITK as sitk

        from MedGradeSegmentLib.scene_outputs import segment_output_dir
        from MedGradeSegmentLib.scene_segmentation import save_correction_from_scene
        from MedGradeSegmentLib.segmentation.corrections import MASK_NAME, find_ai_result

        seg = p.lesionSegmentation
        caseDir = pathText(p.caseFolder) or seg.GetAttribute("MedGrade.caseFolder") or ""
        if not caseDir or not os.path.isdir(caseDir):
            raise ValueError("Choose the case folder the segmentation belongs to")
        output = seg.GetAttribute("MedGrade.segmentOutput")
        aiMask = None
        if output and os.path.isfile(os.path.join(output, MASK_NAME)) and \
                os.path.realpath(output) != os.path.realpath(segment_output_dir(caseDir)):
            aiMask = os.path.join(output, MASK_NAME)
        gridPath = aiMask or find_ai_result(caseDir)[0]
        if gridPath is None:  # a hand-drawn mask: the case's reference volume gives the grid
            gridPath = reference_image_path(caseDir)
        grid = sitk.ReadImage(str(gridPath))
        return save_correction_from_scene(seg, grid, caseDir, p.annotator or getpass.getuser(), aiMask)

    @staticmethod
    def findCaseFolder(outputFolder: str, log: list[str], since: float) -> str:
        """The case folder ``medgrade preprocess`` wrote (``case_folder.written_case_folder``)."""
        return str(written_case_folder(outputFolder, log, since))

    @staticmethod
    def studyOf(node: Any) -> int | None:
        from MedGradeCoreLib.scene import study_item_of

        return (study_item_of(slicer.mrmlScene, node) or None) if node is not None else None

    def loadPreprocessed(self, caseDir: str, inputNode: Any = None) -> dict:
        """The preprocessed case's volumes, brain mask and transforms under the input's study."""
        from MedGradeCoreLib.scene import load_preprocessed_into_scene

        return load_preprocessed_into_scene(slicer.mrmlScene, caseDir, self.studyOf(inputNode))

    def loadSegmentation(self, caseDir: str) -> Any:
        """``<case>/segmentation`` into the scene on the case's reference volume (loaded when absent)."""
        from MedGradeSegmentLib.scene_outputs import case_volume_node, load_segment_output, segment_output_dir

        reference = read_case_info(caseDir)["reference"]
        node = case_volume_node(slicer.mrmlScene, caseDir, reference)
        if node is None:
            node = self.loadPreprocessed(caseDir)["volumes"][reference]
        return load_segment_output(slicer.mrmlScene, segment_output_dir(caseDir), node).segmentation_node


class MedGradeSegmentTest(ScriptedLoadableModuleTest):
    """The whole workflow on the sample case: Sample Data -> preprocess -> segment -> save correction."""

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

    def test_preprocess_segment_correct(self) -> None:
        self.delayDisplay("Loading the sample case")
        logic = MedGradeSegmentLogic()
        p = logic.getParameterNode()
        self.assertEqual(len(logic.loadSampleCase(p)), 4)
        out = tempfile.mkdtemp(prefix="MedGradeSegmentTest-")
        p.outputFolder = pathlib.Path(out)
        p.patientId = "TCGA-FG-6692"

        self.delayDisplay("Preprocessing")
        job = runSync(logic.preprocessArgs(p, logic.exportInputs(p, tempfile.mkdtemp())))
        caseDir = logic.findCaseFolder(out, job.log, 0)
        self.assertEqual(os.path.basename(caseDir), "TCGA-FG-6692")
        loaded = logic.loadPreprocessed(caseDir, p.t1cVolume)
        self.assertEqual(set(loaded["volumes"]), set(SEQUENCES))
        self.assertIsNotNone(loaded["brain_mask"].GetSegmentation().GetNthSegment(0))
        p.caseFolder = pathlib.Path(caseDir)

        models = model_library.list_models(libraryRoot(), kind="segmentation")
        if not models:
            self.delayDisplay("No segmentation model installed: segmentation part skipped")
            return
        p.modelId = models[0].model_id
        self.delayDisplay(f"Segmenting with {p.modelId}")
        runSync(logic.segmentArgs(p, caseDir))
        p.lesionSegmentation = logic.loadSegmentation(caseDir)
        self.assertGreater(p.lesionSegmentation.GetSegmentation().GetNumberOfSegments(), 0)
        self.assertEqual(p.lesionSegmentation.GetAttribute("MedGrade.modelId"), p.modelId)

        self.delayDisplay("Saving the corrected mask twice gives two versions")
        p.annotator = "self-test"
        versions = [logic.saveCorrection(p).version for _ in range(2)]
        self.assertEqual(versions[1], versions[0] + 1)
        self.delayDisplay("Test passed")
