"""'Run all': the whole cascade (``medgrade run``) on the volumes the user loaded, in one click.

The Predict panel's section (the cascade is Predict's feature): output folder, the output node (a chosen segmentation or table node
is replaced, or a new one is made), Show 3D, Run all / Cancel (the whole process tree), progress, elapsed time,
a status line and a collapsible log. The result (lesion, grade table, plot, heat map) is placed in the view
layout by ``MedGradePredictLib.scene_cascade``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

import ctk
import qt
import slicer

from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.job_runner import JobRunner

try:
    from slicer.i18n import tr as _
except ImportError:  # pragma: no cover
    def _(text: str) -> str:
        return text


def caseOutputFromLog(log: list[str]) -> str:
    """The case output folder ``medgrade run`` reported (its JSON line ``{"patient_id": .., "files": ..}``)."""
    for line in reversed(log):
        if line.startswith('{"patient_id"'):
            files = json.loads(line)["files"]
            return os.path.dirname(files["segmentation"])
    raise RuntimeError(_("medgrade run reported no case output"))


class RunAllSection:
    """``inputs()`` -> (a case file/folder medgrade reads, the reference volume node or None);
    ``commandLine(inputPath, outputFolder)`` -> the ``medgrade run`` command line (models, device, findings...)."""

    def __init__(self, parentLayout: Any, outputNodeClass: str, outputLabel: str,
                 inputs: Callable[[], tuple[str, Any]], commandLine: Callable[[str, str], list[str]]) -> None:
        self.inputs, self.commandLine, self.outputNodeClass = inputs, commandLine, outputNodeClass
        box = ctk.ctkCollapsibleButton()
        box.text = _("Run all: lesion mask, grades and report in one click")
        parentLayout.addWidget(box)
        form = qt.QFormLayout(box)
        self.outputFolder = ctk.ctkPathLineEdit()
        self.outputFolder.filters = ctk.ctkPathLineEdit.Dirs
        self.outputFolder.currentPath = os.path.join(tempfile.gettempdir(), "MedGrade-run")
        self.outputFolder.toolTip = _("Folder for the case outputs (kept: an up-to-date stage is not rerun)")
        form.addRow(_("Output folder:"), self.outputFolder)
        self.outputSelector = slicer.qMRMLNodeComboBox()
        self.outputSelector.nodeTypes = [outputNodeClass]
        self.outputSelector.noneEnabled, self.outputSelector.addEnabled = True, False
        self.outputSelector.removeEnabled, self.outputSelector.renameEnabled = False, True
        self.outputSelector.noneDisplay = _("Create new")
        self.outputSelector.toolTip = _("Replace this node's content with the result, or create a new node")
        self.outputSelector.setMRMLScene(slicer.mrmlScene)
        form.addRow(outputLabel, self.outputSelector)
        self.show3DCheckBox = qt.QCheckBox(_("Show 3D"))
        self.show3DCheckBox.checked = True
        form.addRow(self.show3DCheckBox)
        buttons = qt.QHBoxLayout()
        self.runButton = qt.QPushButton(_("Run all"))
        self.runButton.toolTip = _("Preprocess, segment, grade with every matching model, write the report")
        self.cancelButton = qt.QPushButton(_("Cancel"))
        self.cancelButton.enabled = False
        buttons.addWidget(self.runButton)
        buttons.addWidget(self.cancelButton)
        form.addRow(buttons)
        self.progressBar = qt.QProgressBar()
        self.progressBar.visible = False
        self.elapsedLabel = qt.QLabel("")
        row = qt.QHBoxLayout()
        row.addWidget(self.progressBar)
        row.addWidget(self.elapsedLabel)
        form.addRow(row)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.statusLabel.setTextInteractionFlags(qt.Qt.TextBrowserInteraction)
        self.statusLabel.openExternalLinks = True
        form.addRow(self.statusLabel)
        logBox = ctk.ctkCollapsibleButton()
        logBox.text, logBox.collapsed = _("Log"), True
        logLayout = qt.QVBoxLayout(logBox)
        self.logText = qt.QPlainTextEdit()
        self.logText.readOnly = True
        self.logText.maximumBlockCount = 5000
        logLayout.addWidget(self.logText)
        form.addRow(logBox)
        self.runner = JobRunner(self.progressBar, self.statusLabel, self.cancelButton, [self.runButton],
                                logWidget=self.logText, elapsedLabel=self.elapsedLabel)
        self.runButton.connect("clicked()", self.onRun)

    def onRun(self) -> None:
        if not ensureDependencies():
            return
        with slicer.util.tryWithErrorDisplay(_("Could not prepare the input"), waitCursor=True):
            inputPath, referenceNode = self.inputs()
            output = self.outputFolder.currentPath
            if not output:
                raise ValueError(_("Choose an output folder"))
            args = self.commandLine(inputPath, output)
        outputNode = self.outputSelector.currentNode()

        def load(job) -> str:
            from MedGradePredictLib.scene_cascade import load_cascade_into_scene, place_in_layout

            caseOut = caseOutputFromLog(job.log)
            isSeg = self.outputNodeClass == "vtkMRMLSegmentationNode"
            loaded = load_cascade_into_scene(slicer.mrmlScene, caseOut, referenceNode,
                                             outputNode if isSeg else None, None if isSeg else outputNode,
                                             self.show3DCheckBox.checked)
            self.outputSelector.setCurrentNode(loaded["segmentation"] if isSeg else
                                               (loaded["tables"][0] if loaded["tables"] else None))
            place_in_layout(slicer.mrmlScene, slicer.app.applicationLogic(), loaded)
            answers = [f"{t.GetCellText(0, t.GetColumnIndex('task'))}: {t.GetCellText(0, t.GetColumnIndex('predicted_level'))}"
                       for t in loaded["tables"] if t.GetNumberOfRows()]
            report = loaded.get("report")
            link = f' <a href="{qt.QUrl.fromLocalFile(report).toString()}">{_("report")}</a>' if report else ""
            return "; ".join(answers) + link

        self.runner.start(args, _("Run all"), load)
