"""MedGradeSegment: preprocess a case, segment its lesion, save an annotator's corrected mask.

Thin Slicer GUI over ``MedGradeSegmentLib``: every long step runs as a ``medgrade`` command in a
background process (``MedGradeSegmentLib.jobs.BackgroundJob``) polled from a ``qt.QTimer``, and its
outputs are loaded with the scene layer. Also holds the pieces the three MedGrade panels share:
dependency installation, the job runner, the model-library section and Sample Data registration.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import sys
import tempfile
import time
import traceback
from typing import Annotated, Callable

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from MedGradeSegmentLib import dependencies, model_library
from MedGradeSegmentLib.devices import DEVICE_CHOICES
from MedGradeSegmentLib.jobs import BackgroundJob
from MedGradeSegmentLib.sequence_names import guess_sequence
from MedGradeSegmentLib.slicer_sample_data import entry_for, sample_entries

SEQUENCES = ("t1c", "t2", "t1", "flair")
MODULE_DIR = os.path.dirname(os.path.abspath(__file__))


class MedGradeSegment(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedGrade Segment"
        self.parent.categories = ["MedGrade"]
        self.parent.dependencies = []
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = (
            "Preprocess a brain MR case (skull stripping, co-registration, 1 mm resampling, z-score, slice "
            "sampling), segment the lesion with a MIG-Net model from the model library, correct it in Segment "
            "Editor and save the corrected mask as a new version. See the MedGrade user guide (docs/).")
        self.parent.acknowledgementText = (
            "MIG-Net with the Focus Prior Graph loss and KiNet follow a 2023 master's thesis on non-invasive "
            "Ki-67 prediction in glioma. Skull stripping: the Swiss Skull Stripper (itk-skullstripping). "
            "Built on MONAI, SimpleITK and 3D Slicer.")
        slicer.app.connect("startupCompleted()", registerSampleData)


# --- shared by the three MedGrade panels -----------------------------------------------------------

def registerSampleData() -> None:
    """Add the MedGrade sample cases and atlas to the Sample Data module (category "MedGrade")."""
    import SampleData

    icon = os.path.join(MODULE_DIR, "Resources", "Icons", "MedGradeSegment.png")
    for entry in sample_entries():
        kwargs = entry.kwargs()
        kwargs["thumbnailFileName"] = kwargs["thumbnailFileName"] or icon
        try:
            SampleData.SampleDataLogic.registerCustomSampleDataSource(**kwargs)
        except TypeError:  # Slicer versions before checksums / loadFileTypes
            kwargs.pop("checksums")
            kwargs.pop("loadFiles")
            kwargs["loadFileType"] = kwargs.pop("loadFileTypes")
            SampleData.SampleDataLogic.registerCustomSampleDataSource(**kwargs)


def libraryRoot() -> str:
    """The model library Slicer uses: $MEDGRADE_MODELS, else beside Slicer's settings (kept across versions)."""
    root = os.environ.get("MEDGRADE_MODELS") or qt.QSettings().value("MedGrade/ModelLibraryPath") or os.path.join(
        os.path.dirname(slicer.app.slicerUserSettingsFilePath), "MedGrade", "models")
    os.environ["MEDGRADE_MODELS"] = root
    return root


def medgradeEnvironment() -> dict[str, str]:
    """Environment of the background processes: the three Lib packages importable, the same library."""
    dirs = [MODULE_DIR]
    for name in ("medgradepredict", "medgradetrain"):
        module = getattr(slicer.modules, name, None)
        if module is not None:
            dirs.append(os.path.dirname(module.path))
    paths = list(dict.fromkeys(dirs)) + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"PYTHONPATH": os.pathsep.join(paths), "MEDGRADE_MODELS": libraryRoot()}


def pythonExecutable() -> str:
    """Slicer's own Python launcher (so the child has Slicer's packages), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def _slicerPackaging():
    for name in ("slicer.packaging", "slicer.pydeps"):
        try:
            return __import__(name, fromlist=["pip_ensure"])
        except ImportError:
            continue
    return None


def ensureDependencies() -> bool:
    """Check (and on consent install) MedGrade's Python packages; never touches Slicer's own."""
    plan = dependencies.check_environment()
    if plan.torch:  # first: without torch, pip would pull a build that may not match the GPU driver
        slicer.util.errorDisplay(plan.torch, windowTitle="MedGrade needs PyTorch")
        return False
    for line in plan.slicer_mismatch:
        logging.warning(f"MedGrade: {line}")
    if not plan.to_install:
        return True
    constraints = dependencies.write_effective_constraints(
        os.path.join(slicer.app.temporaryPath, "MedGrade-constraints.txt"))
    skip = sorted(dependencies.never_install())
    packaging = _slicerPackaging()
    try:
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            try:  # prompts with the list, shows progress, offers a restart when needed
                packaging.pip_ensure(plan.to_install, constraints=str(constraints), requester="MedGrade",
                                     skip_packages=skip)
            except TypeError:
                packaging.pip_ensure(plan.to_install, constraints=str(constraints), requester="MedGrade")
        else:
            if not slicer.util.confirmOkCancelDisplay(plan.describe() + "\n\nInstall them now? Slicer's own "
                                                      "packages are left as they are.", "MedGrade setup"):
                return False
            with slicer.util.tryWithErrorDisplay("MedGrade could not install its packages", waitCursor=True):
                slicer.util.pip_install([str(r) for r in plan.to_install] + ["-c", str(constraints)])
    except Exception as exc:  # noqa: BLE001 - shown to the user with the reason, logged in full
        logging.error(traceback.format_exc())
        slicer.util.errorDisplay(f"Installing MedGrade's packages failed: {exc}")
        return False
    left = dependencies.check_environment()
    if left.to_install:
        slicer.util.errorDisplay(left.describe(), windowTitle="MedGrade packages still missing")
        return False
    return True


class JobRunner:
    """Runs one ``medgrade`` command in the background: progress bar, status, Cancel, errors."""

    def __init__(self, progressBar, statusLabel, cancelButton, busyWidgets=(), logWidget=None):
        self.progressBar, self.statusLabel, self.cancelButton = progressBar, statusLabel, cancelButton
        self.busyWidgets, self.logWidget = list(busyWidgets), logWidget
        self.job: BackgroundJob | None = None
        self._title, self._onSuccess = "", None
        self.timer = qt.QTimer()
        self.timer.setInterval(200)
        self.timer.connect("timeout()", self._poll)
        self.cancelButton.connect("clicked()", self.cancel)

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self, args: list[str], title: str, onSuccess: Callable[[], None],
              job: BackgroundJob | None = None) -> None:
        """Run ``medgrade <args>`` (or the given, not yet started ``job``) and call ``onSuccess`` after."""
        if self.running:
            slicer.util.errorDisplay(f"{self._title} is still running; cancel it or wait.")
            return
        logging.info(f"MedGrade: medgrade {' '.join(args)}")
        self._title, self._onSuccess = title, onSuccess
        self.job = (job or BackgroundJob(args, python=pythonExecutable(), env=medgradeEnvironment())).start()
        self.progressBar.value = 0
        self.progressBar.visible = True
        self.statusLabel.text = f"{title}..."
        self.cancelButton.enabled = True
        for w in self.busyWidgets:
            w.enabled = False
        self.timer.start()

    def cancel(self) -> None:
        if self.running:
            self.statusLabel.text = f"Cancelling {self._title}..."
            self.job.cancel()

    def _drain(self) -> None:
        for event in self.job.poll():
            if event.kind == "progress":
                self.progressBar.value = int(round(100 * event.fraction))
                if event.message:
                    self.statusLabel.text = f"{self._title}: {event.message}"
            else:
                logging.info(f"MedGrade: {event.message}")
                if self.logWidget is not None:
                    self.logWidget.appendPlainText(event.message)

    def _poll(self) -> None:
        self._drain()
        if self.job.running:
            return
        self.timer.stop()
        self.job.wait(timeout=10)
        self._drain()
        self.cancelButton.enabled = False
        self.progressBar.visible = False
        for w in self.busyWidgets:
            w.enabled = True
        if self.job.cancelled:
            self.statusLabel.text = f"{self._title}: cancelled"
            return
        if self.job.returncode != 0:
            fullLog = "\n".join(self.job.log)
            logging.error(f"MedGrade: {self._title} failed (exit {self.job.returncode}):\n{fullLog}")
            self.statusLabel.text = f"{self._title} failed"
            slicer.util.errorDisplay(f"{self._title} failed: {self.job.error_message()}",
                                     detailedText=fullLog[-20000:])
            return
        try:
            self._onSuccess()
            self.statusLabel.text = f"{self._title}: done"
        except Exception as exc:  # noqa: BLE001 - reason shown, traceback logged
            logging.error(traceback.format_exc())
            slicer.util.errorDisplay(f"{self._title}: the result could not be loaded: {exc}",
                                     detailedText=traceback.format_exc())


class ModelLibrarySection:
    """The shared model-library section (``Resources/UI/ModelLibrary.ui``) inside a module panel."""

    COLUMNS = ("Model", "Kind", "Source", "Inputs", "Task", "Trained on", "Metrics", "Size", "sha256")

    def __init__(self, parentLayout, onChanged: Callable[["ModelLibrarySection"], None] | None = None):
        widget = slicer.util.loadUI(os.path.join(MODULE_DIR, "Resources", "UI", "ModelLibrary.ui"))
        parentLayout.addWidget(widget)
        self.ui = slicer.util.childWidgetVariables(widget)
        self.onChanged = onChanged
        self.entries: list[model_library.LibraryEntry] = []
        self.runner = JobRunner(self.ui.installProgressBar, self.ui.libraryStatusLabel, self.ui.cancelInstallButton,
                                [self.ui.installButton, self.ui.importButton, self.ui.removeButton])
        self.ui.modelTable.setColumnCount(len(self.COLUMNS))
        self.ui.modelTable.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.ui.refreshButton.connect("clicked()", self.refresh)
        self.ui.importButton.connect("clicked()", self.onImport)
        self.ui.removeButton.connect("clicked()", self.onRemove)
        self.ui.openFolderButton.connect("clicked()", self.onOpenFolder)
        self.ui.installButton.connect("clicked()", self.onInstall)
        self.refresh()

    def refresh(self) -> None:
        root = libraryRoot()
        self.ui.libraryPathLabel.text = f"Library: {root}"
        self.entries = model_library.list_models(root)
        table = self.ui.modelTable
        table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            task = e.task.get("label") or e.task.get("name") or ""
            values = (e.model_id, e.kind, e.source, ", ".join(e.inputs), task, e.trained_on or e.error,
                      e.metrics_summary(), f"{e.size_bytes / 1e6:.1f} MB", e.sha256[:12])
            for col, value in enumerate(values):
                item = qt.QTableWidgetItem(str(value))
                item.setToolTip(e.description or e.trained_on or e.error)
                table.setItem(row, col, item)
        table.resizeColumnsToContents()
        self.ui.installSourceComboBox.clear()
        installed = {e.model_id for e in self.entries}
        try:
            sources = [s for s in model_library.load_sources() if s.model_id not in installed]
        except Exception as exc:  # noqa: BLE001 - a broken sources file must not break the panel
            logging.error(f"MedGrade: {exc}")
            sources = []
        for s in sources:
            self.ui.installSourceComboBox.addItem(s.title or s.model_id, s.model_id)
        self.ui.installButton.enabled = bool(sources)
        if not sources:
            self.ui.installSourceComboBox.addItem("(nothing to download; use Import for a zip)")
        if self.onChanged:
            self.onChanged(self)

    def models(self, kind: str) -> list[model_library.LibraryEntry]:
        return [e for e in self.entries if e.kind == kind and not e.error]

    def selectedEntry(self) -> model_library.LibraryEntry | None:
        row = self.ui.modelTable.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def onInstall(self) -> None:
        modelId = self.ui.installSourceComboBox.currentData
        if modelId:
            self.runner.start(["models", "install", modelId], f"Installing {modelId}", self.refresh)

    def onImport(self) -> None:
        path = qt.QFileDialog.getOpenFileName(None, "Import a MedGrade model bundle", "",
                                              "Model bundle (*.zip manifest.json);;All files (*)")
        if not path:
            return
        if os.path.basename(path) == "manifest.json":  # a bundle folder: pick its manifest
            path = os.path.dirname(path)
        self.runner.start(["models", "import", path], f"Importing {os.path.basename(path)}", self.refresh)

    def onRemove(self) -> None:
        entry = self.selectedEntry()
        if entry is None or entry.read_only:
            slicer.util.warningDisplay("Select an installed model (shipped models cannot be removed).")
            return
        if slicer.util.confirmOkCancelDisplay(f"Delete model {entry.model_id} from {entry.path}?"):
            with slicer.util.tryWithErrorDisplay("Could not remove the model"):
                model_library.remove_model(entry.model_id, libraryRoot())
            self.refresh()

    def onOpenFolder(self) -> None:
        entry = self.selectedEntry()
        qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(entry.path if entry else libraryRoot()))


def fillModelCombo(combo, entries: list[model_library.LibraryEntry], current: str) -> None:
    """Model ids of one kind into a combo box, keeping ``current`` selected when present."""
    combo.clear()
    for e in entries:
        combo.addItem(f"{e.model_id} ({e.source})", e.model_id)
    index = combo.findData(current)
    if index >= 0:
        combo.currentIndex = index


def pathText(path) -> str:
    """'' for an unset pathlib.Path parameter."""
    text = str(path) if path is not None else ""
    return "" if text in ("", ".") else text


# --- this module --------------------------------------------------------------------------------

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


class MedGradeSegmentWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedGradeSegment.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedGradeSegmentLogic()
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                [self.ui.preprocessButton, self.ui.segmentButton, self.ui.saveCorrectionButton])
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout(), self.updateModelCombo)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.onNodeAdded)
        self.ui.preprocessButton.connect("clicked()", self.onPreprocess)
        self.ui.segmentButton.connect("clicked()", self.onSegment)
        self.ui.saveCorrectionButton.connect("clicked()", self.onSaveCorrection)
        self.ui.segmentationModelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.runner.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
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

    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

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
            caseDir = self.logic.findCaseFolder(pathText(p.outputFolder), p.patientId, started)
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
        with slicer.util.tryWithErrorDisplay("Could not export the corrected mask", waitCursor=True):
            args = self.logic.saveCorrectionArgs(p, tempfile.mkdtemp(prefix="MedGrade-correction-"))
        self.runner.start(args, "Saving the corrected mask",
                          lambda: slicer.util.infoDisplay(self.runner.job.log[-1] if self.runner.job.log else "Saved"))


class MedGradeSegmentLogic(ScriptedLoadableModuleLogic):
    """Turns the parameter node into ``medgrade`` command lines and loads what the commands wrote."""

    def getParameterNode(self):
        return MedGradeSegmentParameterNode(super().getParameterNode())

    def exportInputs(self, p, folder: str) -> str:
        """The selected volumes written as ``<folder>/<seq>.nrrd`` (a volumes folder), or the input path."""
        selected = {seq: getattr(p, f"{seq}Volume") for seq in SEQUENCES if getattr(p, f"{seq}Volume")}
        if not selected:
            return pathText(p.inputPath)
        for seq, node in selected.items():
            if not slicer.util.saveNode(node, os.path.join(folder, f"{seq}.nrrd")):
                raise RuntimeError(f"{node.GetName()}: could not be written to {folder}")
        return folder

    def preprocessArgs(self, p, inputPath: str) -> list[str]:
        args = ["preprocess", inputPath, "--output", pathText(p.outputFolder), "--reference", p.reference,
                "--spacing", f"{p.spacingMm:g}", "--slices", str(p.numSlices)]
        if p.patientId:
            args += ["--patient-id", p.patientId]
        args += [] if p.skullStrip else ["--no-skull-strip"]
        args += ["--n4"] if p.biasCorrection else []
        args += ["--affine"] if p.affine else []
        return args

    def segmentArgs(self, p, caseDir: str) -> list[str]:
        args = ["segment", caseDir, "--model", p.modelId, "--device", p.device]
        return args + ([] if p.largestComponent else ["--no-largest-component"])

    def saveCorrectionArgs(self, p, folder: str) -> list[str]:
        import SimpleITK as sitk

        from MedGradeSegmentLib.scene import segmentation_node_to_mask

        caseDir = pathText(p.caseFolder)
        reference = sitk.ReadImage(os.path.join(caseDir, f"{p.reference}.nii.gz"))
        maskPath = os.path.join(folder, "corrected_mask.nii.gz")
        sitk.WriteImage(segmentation_node_to_mask(p.lesionSegmentation, reference), maskPath, True)
        args = ["save-correction", caseDir, "--mask", maskPath]
        if p.annotator:
            args += ["--annotator", p.annotator]
        source = p.lesionSegmentation.GetAttribute("MedGrade.modelId")
        return args + (["--model", source] if source else [])

    @staticmethod
    def findCaseFolder(outputFolder: str, patientId: str, since: float) -> str:
        """The case folder the last run wrote: ``<out>/<patientId>``, else the newest ``case.json``."""
        if patientId and os.path.isfile(os.path.join(outputFolder, patientId, "case.json")):
            return os.path.join(outputFolder, patientId)
        cases = [d for d in pathlib.Path(outputFolder).glob("*/case.json") if d.stat().st_mtime >= since - 1]
        if not cases:
            raise RuntimeError(f"{outputFolder}: no case folder written by this run")
        return str(max(cases, key=lambda c: c.stat().st_mtime).parent)

    @staticmethod
    def studyOf(node) -> int | None:
        from MedGradeSegmentLib.scene import study_item_of

        return (study_item_of(slicer.mrmlScene, node) or None) if node is not None else None

    def loadPreprocessed(self, caseDir: str, inputNode=None) -> dict:
        from MedGradeSegmentLib.scene import load_preprocessed_into_scene

        return load_preprocessed_into_scene(slicer.mrmlScene, caseDir, self.studyOf(inputNode))

    def loadSegmentation(self, caseDir: str):
        from MedGradeSegmentLib.scene_segmentation import load_segmentation_into_scene

        return load_segmentation_into_scene(slicer.mrmlScene, caseDir)

    @staticmethod
    def runSync(args: list[str], timeout: float = 1800) -> BackgroundJob:
        """Run a command to completion (self-tests); raises with the command's reason on failure."""
        job = BackgroundJob(args, python=pythonExecutable(), env=medgradeEnvironment()).start()
        rc = job.wait(timeout)
        job.poll()
        if rc != 0:
            raise RuntimeError(f"medgrade {args[0]} failed: {job.error_message()}\n" + "\n".join(job.log))
        return job


class MedGradeSegmentTest(ScriptedLoadableModuleTest):
    """The whole workflow on the sample case: Sample Data -> preprocess -> segment -> save correction."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_sample_data_registered()
        self.setUp()
        self.test_preprocess_segment_correct()

    def test_sample_data_registered(self) -> None:
        registerSampleData()
        names = [s.sampleName for s in slicer.modules.sampleDataSources.get("MedGrade", [])]
        self.assertIn(entry_for("tcga-fg-6692").sampleName, names)

    def test_preprocess_segment_correct(self) -> None:
        import SampleData

        registerSampleData()
        self.delayDisplay("Loading the sample case")
        nodes = SampleData.SampleDataLogic().downloadSamples(entry_for("tcga-fg-6692").sampleName)
        self.assertEqual(len(nodes), 4)
        logic = MedGradeSegmentLogic()
        p = logic.getParameterNode()
        for node in nodes:
            setattr(p, f"{guess_sequence(node.GetName())}Volume", node)
        out = tempfile.mkdtemp(prefix="MedGradeSegmentTest-")
        p.outputFolder = pathlib.Path(out)
        p.patientId = "TCGA-FG-6692"

        self.delayDisplay("Preprocessing")
        logic.runSync(logic.preprocessArgs(p, logic.exportInputs(p, tempfile.mkdtemp())))
        caseDir = logic.findCaseFolder(out, p.patientId, 0)
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
        logic.runSync(logic.segmentArgs(p, caseDir))
        p.lesionSegmentation = logic.loadSegmentation(caseDir)
        self.assertGreater(p.lesionSegmentation.GetSegmentation().GetNumberOfSegments(), 0)

        self.delayDisplay("Saving the corrected mask twice gives two versions")
        p.annotator = "self-test"
        for _ in range(2):
            logic.runSync(logic.saveCorrectionArgs(p, tempfile.mkdtemp()))
        self.delayDisplay("Test passed")
