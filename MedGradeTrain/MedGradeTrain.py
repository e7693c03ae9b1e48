"""MedGradeTrain: train any model kind on a cohort through the MedGrade runner; the bundle joins the library.

Thin Slicer GUI over ``MedGradeTrainLib``: the panel writes the run's config (``panel_support``), starts
``medgrade train`` (this computer in the background, torchrun, or Slurm), follows the run's progress file
(curves as plot nodes, the log), cancels or resumes it, and shows the correction-to-retrain status.
A run's state lives in its folder, so a run started before a Slicer restart is followed again.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
from typing import Annotated, Any

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from MedGradeCoreLib.devices import DEVICE_CHOICES
from MedGradeWidgets import pathText
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import libraryRoot, runSync
from MedGradeWidgets.model_library_section import ModelLibrarySection
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradeTrainLib import panel_support as ps
from MedGradeTrainLib.launchers import LAUNCHERS


class MedGradeTrain(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedGrade Train"
        self.parent.categories = ["MedGrade"]
        self.parent.dependencies = ["MedGradeCore", "MedGradeSegment", "MedGradePredict"]
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = (
            "Train a segmentation (MIG-Net, ablations, U-Net), grading (KiNet + LightGBM), breast or pre-training "
            "model on a cohort with patient-level cross-validation, on this computer (CPU/GPU, in the background), "
            "with torchrun on several GPUs (DistributedDataParallel), or as a Slurm job. Runs checkpoint every "
            "epoch and resume where they stopped; the finished bundle appears in the model lists. "
            "See docs/training.md.")
        self.parent.acknowledgementText = (
            "Methods from a 2023 master's thesis on non-invasive Ki-67 prediction in glioma (MIG-Net/FPG, "
            "KiNet/BMS). Built on MONAI, torch.distributed, LightGBM, Slurm and 3D Slicer.")


@parameterNodeWrapper
class MedGradeTrainParameterNode:
    cohortFolder: pathlib.Path
    labelsCsv: pathlib.Path
    modelKind: Annotated[str, Choice(list(ps.PANEL_KINDS))] = "segmentation"
    configFile: pathlib.Path
    epochs: int = 0
    batchSize: int = 0
    learningRate: float = 0.0
    folds: int = 0
    runFolder: pathlib.Path
    launcher: Annotated[str, Choice(list(LAUNCHERS))] = "local"
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    gpus: int = 0
    partition: str = ""


class MedGradeTrainWidget(ParameterNodePanel, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradeTrain.ui")
        self.logic = MedGradeTrainLogic()
        self.runner = None  # the run's own process does the work; the panel follows its progress file
        self.reader: ps.ProgressReader | None = None
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout())
        self.timer = qt.QTimer()
        self.timer.setInterval(1000)
        self.timer.connect("timeout()", self.onPoll)
        self.observeSceneClose()
        self.ui.startButton.connect("clicked()", self.onStart)
        self.ui.cancelButton.connect("clicked()", self.onCancel)
        self.ui.resumeButton.connect("clicked()", self.onResume)
        self.ui.refreshRetrainButton.connect("clicked()", self.onRefreshRetrain)
        self.initializeParameterNode()
        self.follow()  # a run started before Slicer was restarted

    def cleanup(self) -> None:
        self.timer.stop()  # the run itself keeps going: it is its own process
        self.removeObservers()

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        run = pathText(p.runFolder)
        state = self.logic.state(run) if run else None
        busy = state is not None and state.status in ("running", "pending", "starting")
        self.ui.startButton.enabled = bool(run and pathText(p.cohortFolder)) and (state is None or state.status == "new")
        self.ui.cancelButton.enabled = busy
        self.ui.resumeButton.enabled = state is not None and state.status in ("stopped", "cancelled", "failed")

    def _start(self, args: list[str], what: str) -> None:
        if not ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(f"Could not {what}", waitCursor=True):
            job = runSync(args, timeout=120)
            self.ui.logTextEdit.appendPlainText("\n".join(job.log))
            self.follow()

    def onStart(self) -> None:
        p = self._parameterNode
        self.ui.logTextEdit.clear()
        with slicer.util.tryWithErrorDisplay("Could not prepare the run", waitCursor=True):
            config = self.logic.writeConfig(p)
        self._start(ps.train_args(config, pathText(p.runFolder), p.launcher, p.gpus, p.partition), "start the run")

    def onResume(self) -> None:
        p = self._parameterNode
        self._start(ps.resume_args(pathText(p.runFolder), p.launcher, p.gpus, p.partition), "resume the run")

    def onCancel(self) -> None:
        with slicer.util.tryWithErrorDisplay("Could not cancel the run", waitCursor=True):
            job = runSync(ps.cancel_args(pathText(self._parameterNode.runFolder)), timeout=60)
            self.ui.statusLabel.text = job.log[-1] if job.log else "cancelled"
        self.updateButtons()

    def follow(self) -> None:
        run = pathText(self._parameterNode.runFolder) if self._parameterNode else ""
        if not run:
            return
        self.reader = ps.ProgressReader(run)
        self.ui.logTextEdit.clear()
        self.onPoll()
        self.timer.start()

    def onPoll(self) -> None:
        if self.reader is None:
            return
        records = self.reader.read()
        for r in records:
            self.ui.logTextEdit.appendPlainText(json.dumps(r))
        last = records[-1] if records else None
        if last is not None:
            eta = f", about {last['eta_s'] / 60:.0f} min left" if last.get("eta_s") else ""
            self.ui.progressBar.value = int(100 * (last.get("fraction") or 0))
            self.ui.statusLabel.text = f"{last.get('message', '')}{eta}"
        if any(r.get("event") in ("epoch", "done") for r in records):
            self.logic.showCurves(pathText(self._parameterNode.runFolder))
        if any(r.get("event") == "done" for r in records):
            self.library.refresh()  # the runner registered the bundle: Segment/Predict list it too
        state = self.logic.state(pathText(self._parameterNode.runFolder))
        if state.status not in ("running", "pending", "starting", "new"):
            self.timer.stop()
        self.updateButtons()

    def onRefreshRetrain(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not read the cohort", waitCursor=True):
            self.ui.retrainStatusLabel.text = ps.retrain_summary(pathText(p.cohortFolder), self.logic.modelInUse(p))


class MedGradeTrainLogic(ScriptedLoadableModuleLogic):
    """Parameter node -> the run's config; the run folder -> state and curves (plot nodes)."""

    def getParameterNode(self) -> Any:
        return MedGradeTrainParameterNode(super().getParameterNode())

    @staticmethod
    def writeConfig(p: Any) -> str:
        data = ps.effective_config(p.modelKind, pathText(p.configFile) or None, pathText(p.cohortFolder) or None,
                                   pathText(p.labelsCsv) or None, p.epochs, p.batchSize, p.learningRate, p.folds,
                                   "" if p.device == "auto" else p.device, libraryRoot())
        return str(ps.write_requested(pathText(p.runFolder), data))

    @staticmethod
    def state(run: str) -> Any:
        from MedGradeTrainLib.runs import run_state

        return run_state(run)

    @staticmethod
    def modelInUse(p: Any) -> str | None:
        """The newest library model of the chosen kind (the one a retrain would replace)."""
        from MedGradeCoreLib import model_library

        entries = [e for e in model_library.list_models(libraryRoot(), include_bundled=True) if e.kind == p.modelKind]
        return entries[0].model_id if entries else None

    @staticmethod
    def showCurves(run: str) -> None:
        """Loss and validation metric per epoch of every split as plot nodes (replaced on each update)."""
        from MedGradeCoreLib.scene.plots import plot_chart

        name = f"MedGrade training {pathlib.Path(run).name}"
        for node in list(slicer.util.getNodesByClass("vtkMRMLPlotChartNode")):
            if node.GetName() == name:
                for i in range(node.GetNumberOfPlotSeriesNodes()):
                    series = node.GetNthPlotSeriesNode(i)
                    slicer.mrmlScene.RemoveNode(series.GetTableNode())
                    slicer.mrmlScene.RemoveNode(series)
                slicer.mrmlScene.RemoveNode(node)
        series = {f"{split} {key}": xy for split, curves in ps.curves(run).items() for key, xy in curves.items()}
        if series:
            chart = plot_chart(slicer.mrmlScene, name, series, "epoch", "loss / metric")
            slicer.modules.plots.logic().ShowChartInLayout(chart)


class MedGradeTrainTest(ScriptedLoadableModuleTest):
    """The panel's config, the command lines it starts (accepted by the real CLI) and a curve chart."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_config_and_commands()

    def test_config_and_commands(self) -> None:
        p = MedGradeTrainLogic().getParameterNode()
        out = tempfile.mkdtemp(prefix="MedGradeTrainTest-")
        p.modelKind, p.runFolder, p.cohortFolder, p.epochs = "toy-regression", pathlib.Path(out, "run"), pathlib.Path(out), 1
        config = MedGradeTrainLogic.writeConfig(p)
        self.assertEqual(json.loads(pathlib.Path(config).read_text())["train"]["epochs"], 1)
        job = runSync(ps.train_args(config, pathText(p.runFolder), "slurm", 0, print_script=True))
        self.assertTrue(any("MedGradeCoreLib.cli train" in line for line in job.log))
        self.delayDisplay("Test passed")
