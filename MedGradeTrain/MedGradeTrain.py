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
from MedGradeTrainLib import panel_support as ps
from MedGradeTrainLib.launchers import LAUNCHERS
from MedGradeTrainLib.panel.presenter import TrainPresenter
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import JobRunner, headlessRunner, libraryRoot, runUntilDone
from MedGradeWidgets.model_library_section import ModelLibrarySection
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel


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
    """Binds the panel's widgets to :class:`TrainPresenter`; a 1 s timer follows the run while it is active."""

    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradeTrain.ui")
        self.logic = MedGradeTrainLogic()
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, None,
                                [self.ui.startButton, self.ui.resumeButton], logWidget=self.ui.logTextEdit,
                                onFinished=lambda outcome: self.onCommandFinished())
        self.presenter = TrainPresenter(self.runner, headlessRunner(), libraryRoot())
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout())
        self.runners = [self.runner, self.presenter.status_jobs, self.library.runner]
        self.timer = qt.QTimer()
        self.timer.setInterval(1000)
        self.timer.connect("timeout()", self.onPoll)
        self.observeSceneClose()
        self.ui.startButton.connect("clicked()", self.onStart)
        self.ui.cancelButton.connect("clicked()", self.onCancel)
        self.ui.resumeButton.connect("clicked()", self.onResume)
        self.ui.refreshRetrainButton.connect("clicked()", self.onRefreshRetrain)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.timer.stop()  # the run itself keeps going: it is its own detached process
        self.presenter.shutdown()
        self.removeObservers()

    def setParameterNode(self, parameterNode) -> None:
        self.presenter.params = parameterNode
        super().setParameterNode(parameterNode)
        if parameterNode is None:
            self.timer.stop()  # module left or scene closed: nothing to follow
        else:
            self.follow()  # also a run started before Slicer was restarted

    def updateButtons(self, caller=None, event=None) -> None:
        buttons = {"start": self.ui.startButton, "cancel": self.ui.cancelButton, "resume": self.ui.resumeButton}
        for key, action in self.presenter.actions().items():
            buttons[key].enabled, buttons[key].toolTip = action.enabled, action.reason

    def onStart(self) -> None:
        if ensureDependencies():
            self.ui.logTextEdit.clear()
            with slicer.util.tryWithErrorDisplay("Could not start the run", waitCursor=True):
                self.presenter.start()
            self.updateButtons()

    def onResume(self) -> None:
        if ensureDependencies():
            self.presenter.resume()
            self.updateButtons()

    def onCancel(self) -> None:
        self.presenter.cancel()

    def onCommandFinished(self) -> None:
        self.follow()
        self.updateButtons()

    def follow(self) -> None:
        if self.presenter.follow():
            self.timer.start()
            self.onPoll()

    def onPoll(self) -> None:
        result = self.presenter.poll()
        for r in result.records:
            self.ui.logTextEdit.appendPlainText(json.dumps(r))
        last = result.records[-1] if result.records else None
        if last is not None:
            eta = f", about {last['eta_s'] / 60:.0f} min left" if last.get("eta_s") else ""
            self.ui.progressBar.value = int(100 * (last.get("fraction") or 0))
            self.ui.statusLabel.text = f"{last.get('message', '')}{eta}"
        if result.curves_changed:
            self.logic.showCurves(self.presenter.run_folder(), self.presenter.curves())
        if result.finished_bundle:
            self.library.refresh()  # the runner registered the bundle: Segment/Predict list it too
        if not result.keep_following:
            self.timer.stop()
        if self.presenter.params is not None:
            self.updateButtons()

    def onRefreshRetrain(self) -> None:
        with slicer.util.tryWithErrorDisplay("Could not read the cohort", waitCursor=True):
            self.ui.retrainStatusLabel.text = self.presenter.retrain_summary(self.logic.modelInUse(self._parameterNode))


class MedGradeTrainLogic(ScriptedLoadableModuleLogic):
    """The parameter node; the model a retrain replaces; training curves as plot nodes."""

    def getParameterNode(self) -> Any:
        return MedGradeTrainParameterNode(super().getParameterNode())

    @staticmethod
    def modelInUse(p: Any) -> str | None:
        """The newest library model of the chosen kind (the one a retrain would replace)."""
        from MedGradeCoreLib import model_library

        entries = [e for e in model_library.list_models(libraryRoot(), include_bundled=True) if e.kind == p.modelKind]
        return entries[0].model_id if entries else None

    @staticmethod
    def showCurves(run: str, series: dict) -> None:
        """Loss and validation metric per epoch of every split as plot nodes (replaced on each update)."""
        from MedGradeCoreLib.scene.plots import plot_chart

        name = f"MedGrade training {pathlib.Path(run).name}"
        for node in list(slicer.util.getNodesByClass("vtkMRMLPlotChartNode")):
            if node.GetName() == name:
                for i in range(node.GetNumberOfPlotSeriesNodes()):
                    plot = node.GetNthPlotSeriesNode(i)
                    slicer.mrmlScene.RemoveNode(plot.GetTableNode())
                    slicer.mrmlScene.RemoveNode(plot)
                slicer.mrmlScene.RemoveNode(node)
        if series:
            chart = plot_chart(slicer.mrmlScene, name, series, "epoch", "loss / metric")
            slicer.modules.plots.logic().ShowChartInLayout(chart)


class MedGradeTrainTest(ScriptedLoadableModuleTest):
    """Every kind has a default config; the panel's command lines are accepted by the real CLI (Slicer stays
    responsive while they run); a curve chart."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_config_and_commands()

    def test_config_and_commands(self) -> None:
        for kind in ps.PANEL_KINDS:
            self.assertIsNotNone(ps.default_config(kind), kind)
        p = MedGradeTrainLogic().getParameterNode()
        out = tempfile.mkdtemp(prefix="MedGradeTrainTest-")
        p.modelKind, p.runFolder, p.cohortFolder, p.epochs = "toy-regression", pathlib.Path(out, "run"), pathlib.Path(out), 1
        presenter = TrainPresenter(headlessRunner(), headlessRunner(), libraryRoot(), p)
        config = presenter.write_config()
        self.assertEqual(json.loads(pathlib.Path(config).read_text())["train"]["epochs"], 1)
        outcome = runUntilDone(ps.train_args(config, str(p.runFolder), "slurm", 0, print_script=True))
        self.assertIn("MedGradeCoreLib.cli train", outcome.log)
        self.delayDisplay("Test passed")
