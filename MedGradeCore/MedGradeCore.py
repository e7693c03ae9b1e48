"""MedGrade Core: the hidden module that carries the ground the MedGrade panels share.

It has no panel. Its folder holds ``MedGradeCoreLib`` (case folder, IO, model library, jobs, runtime, scene
layer, the ``medgrade`` entry point) and ``MedGradeWidgets`` (the Qt pieces the panels share), so that the
Segment, Predict and Train modules depend on it and never on each other's internals.
"""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # pragma: no cover - Slicer before 5.4
    def _(text: str) -> str:
        return text

    def translate(_context: str, text: str) -> str:
        return text


class MedGradeCore(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedGrade Core")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedGrade")]
        self.parent.dependencies = []
        self.parent.hidden = True
        self.parent.contributors = ["MedGrade developers"]
        self.parent.helpText = _(
            "Shared ground of the MedGrade modules (case folder, image readers, model library, background "
            "jobs, scene layer, command line). It has no panel of its own.")
        self.parent.acknowledgementText = _("Built on 3D Slicer, SimpleITK and pydicom.")


class MedGradeCoreWidget(ScriptedLoadableModuleWidget):
    """Hidden module: no panel."""


class MedGradeCoreLogic(ScriptedLoadableModuleLogic):
    @staticmethod
    def commandPackages() -> list[str]:
        """The MedGrade Lib packages that contribute ``medgrade`` commands in this Slicer."""
        from MedGradeCoreLib.command_packages import command_package_names

        return command_package_names()


class MedGradeCoreTest(ScriptedLoadableModuleTest):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_command_packages_and_terminology()

    def test_command_packages_and_terminology(self) -> None:
        from MedGradeCoreLib.scene.terminology import load_medgrade_terminology

        self.assertTrue(MedGradeCoreLogic.commandPackages())  # the modules of this extension
        self.assertTrue(load_medgrade_terminology(slicer.modules.terminologies.logic()))
        self.delayDisplay("Test passed")
