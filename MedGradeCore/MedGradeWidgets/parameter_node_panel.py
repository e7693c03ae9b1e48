"""The parameter-node lifecycle the three MedGrade panels share (Slicer's scripted-module pattern).

A widget mixes this in before ``ScriptedLoadableModuleWidget``, starts ``setup()`` with
``loadPanelUI("UI/<Module>.ui")``, sets ``self.logic`` (with ``getParameterNode()``) and ``self.runner``
(a :class:`JobRunner`; ``self.runners``: every runner of the panel), defines ``updateButtons(caller=None, event=None)``, and calls
``observeSceneClose()`` then ``initializeParameterNode()`` at the end of ``setup()``.
"""

from __future__ import annotations

import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from MedGradeCoreLib.slicer_version import slicer_version_problem


class ParameterNodePanel:
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def loadPanelUI(self, uiFile: str) -> None:
        """The module's ``.ui`` (relative to its Resources) as ``self.ui``, bound to the scene. A Slicer older
        than ``MIN_SLICER`` gets a clear message in the panel instead (and the set-up stops there)."""
        ScriptedLoadableModuleWidget.setup(self)
        problem = slicer_version_problem(slicer.app.majorVersion, slicer.app.minorVersion)
        if problem:
            import qt

            label = qt.QLabel(problem)
            label.wordWrap = True
            self.layout.addWidget(label)
            raise RuntimeError(problem)
        uiWidget = slicer.util.loadUI(self.resourcePath(uiFile))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

    def observeSceneClose(self) -> None:
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def cleanup(self) -> None:
        """Every job this panel started ends with it (the model library's and Run all's too), without waiting."""
        for runner in getattr(self, "runners", [self.runner]):
            if runner is not None:
                runner.cancel()
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

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode) -> None:
        """Bind the GUI to ``parameterNode`` (``.ui`` widgets with ``SlicerParameterName``)."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()
