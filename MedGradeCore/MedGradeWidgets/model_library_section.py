"""The model-library section shared by the three panels (``Resources/UI/ModelLibrary.ui``)."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

import qt
import slicer

from MedGradeCoreLib import model_library

from . import uiPath
from .job_runner import JobRunner, libraryRoot

UI_FILE = "ModelLibrary.ui"


class ModelLibrarySection:
    """Installed bundles (task, inputs, trained on, metrics, size, sha256); install, import, delete, open."""

    COLUMNS = ("Model", "Kind", "Source", "Inputs", "Task", "Trained on", "Metrics", "Size", "sha256")

    def __init__(self, parentLayout: Any, onChanged: Callable[["ModelLibrarySection"], None] | None = None) -> None:
        widget = slicer.util.loadUI(uiPath(UI_FILE))
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
        """Usable (verified-readable) models of one kind: ``segmentation`` or ``grading``."""
        return [e for e in self.entries if e.kind == kind and not e.error]

    def selectedEntry(self) -> model_library.LibraryEntry | None:
        row = self.ui.modelTable.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def onInstall(self) -> None:
        modelId = self.ui.installSourceComboBox.currentData
        if modelId:
            self.runner.start(["models", "install", modelId], f"Installing {modelId}", lambda job: self.refresh())

    def onImport(self) -> None:
        path = qt.QFileDialog.getOpenFileName(None, "Import a MedGrade model bundle", "",
                                              "Model bundle (*.zip manifest.json);;All files (*)")
        if not path:
            return
        if os.path.basename(path) == "manifest.json":  # a bundle folder: pick its manifest
            path = os.path.dirname(path)
        self.runner.start(["models", "import", path], f"Importing {os.path.basename(path)}", lambda job: self.refresh())

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


def fillModelCombo(combo: Any, items: list[tuple[str, str]], current: str) -> None:
    """(label, model id) items into a combo box without emitting selection signals, ``current`` selected
    (the presenter has already chosen it, so a single model needs no click)."""
    blocked = combo.blockSignals(True)
    try:
        combo.clear()
        for label, model_id in items:
            combo.addItem(label, model_id)
        index = combo.findData(current)
        combo.currentIndex = index if index >= 0 else (0 if items else -1)
    finally:
        combo.blockSignals(blocked)
