"""Breast mode of the Predict panel (Qt): a volume and a lesion segmentation per modality (MG, US, MRI), a breast
model, Apply. The decisions and the result's placement are :class:`MedGradePredictLib.panel.presenter.GradePresenter`'s."""

from __future__ import annotations

from typing import Any

import ctk
import qt
import slicer

from MedGradePredictLib.panel.presenter import BREAST_MODALITIES
from MedGradeWidgets.dependencies_prompt import ensureDependencies
from MedGradeWidgets.model_library_section import fillModelCombo


class BreastSection:
    def __init__(self, parentLayout: Any, presenter: Any) -> None:
        self.presenter = presenter
        box = ctk.ctkCollapsibleButton()
        box.text, box.collapsed = "Breast (benign/malignant, BI-RADS: stand-in tasks)", True
        parentLayout.addWidget(box)
        form = qt.QFormLayout(box)
        self.selectors: dict[str, tuple[Any, Any]] = {}
        for key, label in BREAST_MODALITIES:
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
        combo = slicer.qMRMLNodeComboBox()
        combo.nodeTypes, combo.noneEnabled, combo.addEnabled, combo.removeEnabled = list(classes), True, False, False
        combo.setMRMLScene(slicer.mrmlScene)
        return combo

    def fillModels(self, items: list[tuple[str, str]]) -> None:
        fillModelCombo(self.modelCombo, items, self.modelCombo.currentData or "")

    def onApply(self) -> None:
        if not ensureDependencies():
            return
        selection = {k: (v.currentNode(), r.currentNode()) for k, (v, r) in self.selectors.items() if v.currentNode()}
        with slicer.util.tryWithErrorDisplay("Could not prepare the breast case", waitCursor=True):
            self.presenter.grade_breast(selection, self.modelCombo.currentData or "")
