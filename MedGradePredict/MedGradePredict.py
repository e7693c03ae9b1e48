"""MedGradePredict: grade a segmented case (KiNet + clinical data + LightGBM), with reader findings.

Thin Slicer GUI over ``MedGradePredictLib``: ``medgrade predict`` runs in a background process and writes
``<case>/grading/`` (predictions.csv, predictions.json, heatmaps/); the result (tables, slice-probability
plot, heat map) is loaded with ``MedGradePredictLib.scene_grading.load_grading_into_scene``.
"""

from __future__ import annotations

import os
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

from MedGradeSegment import SEQUENCES, MedGradeSegmentLogic
from MedGradeCoreLib import model_library
from MedGradeCoreLib.devices import DEVICE_CHOICES
from MedGradeWidgets import pathText
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import JobRunner, libraryRoot, runSync
from MedGradeWidgets.model_library_section import ModelLibrarySection, fillModelCombo
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradePredictWidgets.run_all_section import RunAllSection

SEXES = ("unknown", "male", "female")
FINDINGS = ("unknown", "yes", "no")
FUSIONS = ("near", "all", "large")


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
    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradePredict.ui")
        self.logic = MedGradePredictLogic()
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton, [self.ui.applyButton])
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout(), self.updateModelCombo)
        self.runAll = RunAllSection(self.layout, "vtkMRMLTableNode", _("Grade table:"), self.runAllInputs,
                                    self.runAllArgs)
        self.observeSceneClose()
        self.ui.applyButton.connect("clicked()", self.onApply)
        self.ui.loadClinicalButton.connect("clicked()", self.onLoadClinical)
        self.ui.gradingModelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.breast = BreastSection(self.layout, self.runner)  # breast mode (issue 12)
        self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        self.logic.prefill(self._parameterNode)

    def runAllInputs(self) -> tuple[str, Any]:
        """The loaded sequences written as one case folder (the cascade segments it first; every installed
        grading model whose sequences are all there grades it, e.g. T1c + FLAIR for the shipped one)."""
        p = self._parameterNode
        if not self.logic.loadedVolumes(p):
            raise ValueError(_("Select the case's volumes first (T1c with FLAIR or T2)"))
        folder = os.path.join(tempfile.mkdtemp(prefix="MedGrade-input-"), self.logic.patientName(p))
        os.makedirs(folder, exist_ok=True)
        for seq in SEQUENCES:
            node = getattr(p, f"{seq}Volume")
            if node is not None and not slicer.util.saveNode(node, os.path.join(folder, f"{seq}.nrrd")):
                raise RuntimeError(_("{name}: could not be written to {folder}").format(name=node.GetName(),
                                                                                         folder=folder))
        return folder, self.logic.loadedVolumes(p)[0]

    def runAllArgs(self, inputPath: str, output: str) -> list[str]:
        """``medgrade run INPUT --output DIR ...`` (the cascade)."""
        p = self._parameterNode
        args = ["run", inputPath, "--output", output, "--device", p.device, "--fusion", p.fusion,
                "--patient-id", self.logic.patientName(p)]
        args += ["--model", p.modelId] if p.modelId else []  # none chosen: every matching grading model
        args += ["--age", str(p.age)] if p.age >= 0 else []
        args += ["--sex", "M" if p.sex == "male" else "F"] if p.sex != "unknown" else []
        return args + (["--enhancing-focus", p.enhancingFocus] if p.enhancingFocus != "unknown" else [])

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None or self.runner.running:
            return
        if hasattr(self, "runAll") and not self.runAll.runner.running:
            self.runAll.runButton.enabled = bool(self.logic.loadedVolumes(p))
        if not pathText(p.caseFolder) and p.t1cVolume is not None:
            folder = p.t1cVolume.GetAttribute("MedGrade.caseFolder")
            if folder:
                p.caseFolder = pathlib.Path(folder)
        ready = bool(pathText(p.caseFolder)) and bool(p.modelId)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = "" if ready else "Choose a preprocessed case folder and a grading model"
        self.ui.loadClinicalButton.enabled = bool(pathText(p.clinicalCsv))

    def updateModelCombo(self, library: ModelLibrarySection) -> None:
        current = self._parameterNode.modelId if self._parameterNode else ""
        fillModelCombo(self.ui.gradingModelComboBox, library.models("grading"), current)
        if hasattr(self, "breast"):
            self.breast.fillModels(library)

    def onModelChosen(self, index: int) -> None:
        if self._parameterNode is not None:
            self._parameterNode.modelId = self.ui.gradingModelComboBox.itemData(index) or ""

    def onLoadClinical(self) -> None:
        with slicer.util.tryWithErrorDisplay("Could not read the clinical CSV"):
            self.logic.readClinical(self._parameterNode)

    def onApply(self) -> None:
        if not ensureDependencies():
            return
        p = self._parameterNode
        outDir = self.logic.outputFolder(p)
        with slicer.util.tryWithErrorDisplay("Could not prepare the grading", waitCursor=True):
            args = self.logic.predictArgs(p, outDir)

        def load() -> None:
            result = self.logic.loadResult(outDir, p)
            self.ui.resultLabel.text = result.get("summary", "")

        self.runner.start(args, "Grading", load)


class BreastSection:
    """Breast mode: a volume and a lesion segmentation per modality (MG, US, MRI), a breast model, Apply.
    Writes a breast case folder from the scene, runs ``medgrade predict --heatmap`` in the background and
    loads the result table, modality contributions and Grad-CAM maps (``MedGradePredictLib.breast``)."""

    MODALITIES = (("mg", "Mammogram (MG)"), ("us", "Ultrasound (US)"), ("mri", "Breast MRI (one DCE phase)"))

    def __init__(self, parentLayout: Any, runner: Any) -> None:
        import ctk
        import qt

        self.runner = runner
        box = ctk.ctkCollapsibleButton()
        box.text, box.collapsed = "Breast (benign/malignant, BI-RADS: stand-in tasks)", True
        parentLayout.addWidget(box)
        form = qt.QFormLayout(box)
        self.selectors: dict[str, tuple[Any, Any]] = {}
        for key, label in self.MODALITIES:
            pair = (self._selector(("vtkMRMLScalarVolumeNode", "vtkMRMLVectorVolumeNode")),
                    self._selector(("vtkMRMLSegmentationNode",)))
            form.addRow(f"{label}:", pair[0])
            form.addRow("   lesion ROI:", pair[1])
            self.selectors[key] = pair
        self.modelCombo = qt.QComboBox()
        form.addRow("Breast model:", self.modelCombo)
        self.applyButton = qt.QPushButton("Grade breast case")
        self.applyButton.connect("clicked()", self.onApply)
        form.addRow(self.applyButton)
        self.resultLabel = qt.QLabel("")
        self.resultLabel.wordWrap = True
        form.addRow(self.resultLabel)

    @staticmethod
    def _selector(classes: tuple[str, ...]) -> Any:
        import slicer as s

        combo = s.qMRMLNodeComboBox()
        combo.nodeTypes, combo.noneEnabled, combo.addEnabled, combo.removeEnabled = list(classes), True, False, False
        combo.setMRMLScene(s.mrmlScene)
        return combo

    def fillModels(self, library: ModelLibrarySection) -> None:
        fillModelCombo(self.modelCombo, library.models("breast-fusion") + library.models("breast-radiomics"), "")

    def onApply(self) -> None:
        from MedGradePredictLib.breast.scene_breast import load_breast_results, write_case_from_scene

        if not ensureDependencies():
            return
        chosen = {k: (v.currentNode(), r.currentNode()) for k, (v, r) in self.selectors.items() if v.currentNode()}
        work = tempfile.mkdtemp(prefix="MedGradeBreast-")
        outDir = os.path.join(work, "result")
        with slicer.util.tryWithErrorDisplay("Could not prepare the breast case", waitCursor=True):
            caseDir = str(write_case_from_scene({k if k != "mri" else "mri_phase1": v for k, v in chosen.items()},
                                                os.path.join(work, "case")))
        args = ["predict", caseDir, "--output", outDir, "--heatmap"]
        if self.modelCombo.currentData:
            args += ["--model", self.modelCombo.currentData]

        def load() -> None:
            result = load_breast_results(slicer.mrmlScene, outDir)
            self.resultLabel.text = result["summary"]

        self.runner.start(args, "Breast grading", load)


class MedGradePredictLogic(ScriptedLoadableModuleLogic):
    """Parameter node -> ``medgrade predict`` command line; the written result -> the scene."""

    def getParameterNode(self) -> Any:
        return MedGradePredictParameterNode(super().getParameterNode())

    @staticmethod
    def outputFolder(p: Any) -> str:
        """``<case>/grading``: where the panel asks ``medgrade predict`` to write."""
        return os.path.join(pathText(p.caseFolder), "grading")

    @staticmethod
    def prefill(p: Any) -> None:
        """Pick the case's volumes and lesion mask from names when the selectors are empty."""
        from MedGradeSegmentLib.scene_segmentation import STEP
        from MedGradeCoreLib.sequence_names import guess_sequence, is_lesion_mask_name

        if p is None:
            return
        for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
            seq = guess_sequence(node.GetName())
            if seq in SEQUENCES and getattr(p, f"{seq}Volume") is None:
                setattr(p, f"{seq}Volume", node)
        if p.lesionSegmentation is None:
            for node in slicer.util.getNodesByClass("vtkMRMLSegmentationNode"):
                if is_lesion_mask_name(node.GetName()) or node.GetAttribute("MedGrade.step") == STEP:
                    p.lesionSegmentation = node

    @staticmethod
    def loadedVolumes(p: Any) -> list:
        """The selected volume nodes, T1c first (the reference of the case)."""
        return [v for v in (getattr(p, f"{seq}Volume") for seq in SEQUENCES) if v is not None]

    @staticmethod
    def patientName(p: Any) -> str:
        """The case folder's name, else the subject-hierarchy patient of a selected volume, else 'case'."""
        folder = pathText(p.caseFolder)
        if folder:
            return os.path.basename(os.path.normpath(folder))
        sh = slicer.mrmlScene.GetSubjectHierarchyNode()
        for node in MedGradePredictLogic.loadedVolumes(p):
            item = sh.GetItemByDataNode(node)
            patient = sh.GetItemAncestorAtLevel(item, "Patient") if item else 0
            if patient:
                from MedGradeCoreLib.case_folder import sanitise_patient_id

                return sanitise_patient_id(sh.GetItemName(patient))
        return "case"

    @staticmethod
    def patientId(p: Any) -> str:
        folder = pathText(p.caseFolder)
        return os.path.basename(os.path.normpath(folder)) if folder else ""

    def readClinical(self, p: Any) -> None:
        from MedGradeCoreLib.io.clinical_csv import read_clinical_csv

        rows = read_clinical_csv(pathText(p.clinicalCsv))
        pid = self.patientId(p)
        if pid not in rows:
            raise ValueError(f"{pathText(p.clinicalCsv)}: no row for patient {pid!r}")
        row = rows[pid]
        if row.get("age") is not None:
            p.age = int(round(row["age"]))
        p.sex = {"M": "male", "F": "female"}.get(row.get("sex"), "unknown")  # read_clinical_csv gives M/F

    def predictArgs(self, p: Any, outDir: str) -> list[str]:
        """``medgrade predict CASE --model ID --output DIR ...`` (reader findings recorded, never used)."""
        caseDir = pathText(p.caseFolder)
        args = ["predict", caseDir, "--model", p.modelId, "--fusion", p.fusion, "--device", p.device,
                "--output", outDir]
        if p.lesionSegmentation is not None:  # the mask in the scene (possibly corrected or hand-drawn)
            args += ["--mask", self.exportMask(p, caseDir, outDir)]
        if p.age >= 0:
            args += ["--age", str(p.age)]
        if p.sex != "unknown":
            args += ["--sex", "M" if p.sex == "male" else "F"]
        if p.enhancingFocus != "unknown":
            args += ["--enhancing-focus", p.enhancingFocus]
        return args + (["--heatmap"] if p.heatmap else [])

    @staticmethod
    def exportMask(p: Any, caseDir: str, outDir: str) -> str:
        """The scene's lesion segmentation (possibly corrected) as a mask on the case's reference grid."""
        import SimpleITK as sitk

        from MedGradeCoreLib.case_folder import reference_image_path
        from MedGradeCoreLib.scene import segmentation_node_to_mask

        grid = sitk.ReadImage(str(reference_image_path(caseDir)))
        os.makedirs(outDir, exist_ok=True)
        path = os.path.join(outDir, "lesion_mask_from_scene.nii.gz")
        sitk.WriteImage(segmentation_node_to_mask(p.lesionSegmentation, grid), path, True)
        return path

    def loadResult(self, outDir: str, p: Any) -> dict:
        """Tables, slice plot and heat maps under the study of the case's T1c (or T2) volume, the heat
        map overlaid on it; returns ``{"nodes", "summary", "errors"}``."""
        from MedGradePredictLib.scene_grading import load_grading_into_scene

        reference = p.t1cVolume or p.t2Volume
        return load_grading_into_scene(slicer.mrmlScene, outDir, MedGradeSegmentLogic.studyOf(reference), reference)


class MedGradePredictTest(ScriptedLoadableModuleTest):
    """Sample case -> preprocess -> (lesion mask from the sample label) -> grade -> tables in the scene."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_grade_sample_case()

    def test_grade_sample_case(self) -> None:
        models = model_library.list_models(libraryRoot(), kind="grading")
        if not models:
            self.delayDisplay("No grading model in the library: nothing to test")
            return
        segLogic = MedGradeSegmentLogic()
        sp = segLogic.getParameterNode()
        segLogic.loadSampleCase(sp)
        out = tempfile.mkdtemp(prefix="MedGradePredictTest-")
        sp.outputFolder, sp.patientId = pathlib.Path(out), "TCGA-FG-6692"
        job = runSync(segLogic.preprocessArgs(sp, segLogic.exportInputs(sp, tempfile.mkdtemp())))
        caseDir = segLogic.findCaseFolder(out, job.log, 0)
        loaded = segLogic.loadPreprocessed(caseDir, sp.t1cVolume)

        logic = MedGradePredictLogic()
        p = logic.getParameterNode()
        p.caseFolder = pathlib.Path(caseDir)
        p.t1cVolume, p.t2Volume = loaded["volumes"]["t1c"], loaded["volumes"]["t2"]
        p.lesionSegmentation = loaded["lesion_mask"] or loaded["brain_mask"]
        p.modelId, p.age, p.sex, p.enhancingFocus = models[0].model_id, 45, "female", "yes"
        outDir = logic.outputFolder(p)
        self.delayDisplay(f"Grading with {p.modelId}")
        runSync(logic.predictArgs(p, outDir))
        tablesBefore = len(slicer.util.getNodesByClass("vtkMRMLTableNode"))
        result = logic.loadResult(outDir, p)
        self.assertEqual(list(result["nodes"]), ["TCGA-FG-6692"])
        self.assertGreater(len(slicer.util.getNodesByClass("vtkMRMLTableNode")), tablesBefore)
        self.delayDisplay("Test passed")
