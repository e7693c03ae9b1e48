"""Each panel's ``setup()`` runs against stand-ins for Slicer's Qt and application objects (``unittest.mock``),
with the real presenters, real MedGrade widgets code and a real headless MRML scene: every signal the widget
binds names a presenter method that exists, the buttons get the presenter's enabled state, and the model
combo is filled with the presenter's choice. (The Qt widgets themselves run only inside Slicer.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import os, sys, types
from unittest import mock

repo = os.getcwd()
sys.path[:0] = [os.path.join(repo, d) for d in sorted(os.listdir(repo)) if d.startswith("MedGrade")]
os.environ["MEDGRADE_MODELS"] = sys.argv[2]

import slicer as real_slicer  # slicer-core's MRML
from MedGradeCoreLib.headless_app import create_headless_slicer

app = create_headless_slicer()


def Widget(*args, **kwargs):
    """A Qt object stand-in (its constructor arguments are ignored, not taken as a mock spec)."""
    return mock.MagicMock()


def Combo(*args, **kwargs):
    combo = mock.MagicMock()
    combo.findData.return_value = -1
    return combo


def module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class ScriptedLoadableModule:
    def __init__(self, parent):
        self.parent = parent


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent or mock.MagicMock()
        self.layout = mock.MagicMock()

    def setup(self):
        pass

    def resourcePath(self, name):
        return name


class ScriptedLoadableModuleLogic:
    def getParameterNode(self):
        return None


class VTKObservationMixin:
    def __init__(self):
        self.observed = []

    def addObserver(self, obj, event, method, *a):
        self.observed.append((event, method))

    def removeObserver(self, *a):
        pass

    def removeObservers(self, *a):
        pass


def parameterNodeWrapper(cls):
    fields = {k: getattr(cls, k, None) for k in cls.__annotations__}

    class Node:
        def __init__(self, _node=None):
            self.__dict__.update(fields)

        def connectGui(self, ui):
            return "tag"

        def disconnectGui(self, tag):
            pass

    return Node


ui = mock.MagicMock()
combo_items = []
for combo in (ui.segmentationModelComboBox, ui.gradingModelComboBox):
    combo.addItem.side_effect = lambda label, data: combo_items.append(data)
    combo.clear.side_effect = combo_items.clear
    combo.findData.side_effect = lambda data: combo_items.index(data) if data in combo_items else -1
util = mock.MagicMock()
util.loadUI.return_value = mock.MagicMock()
util.childWidgetVariables.return_value = ui
fake_app = mock.MagicMock(majorVersion=5, minorVersion=10)
fake_app.applicationLogic.return_value = app.app_logic
slicer = module("slicer", app=fake_app, mrmlScene=app.scene, util=util, modules=mock.MagicMock(),
                vtkMRMLScalarVolumeNode=real_slicer.vtkMRMLScalarVolumeNode,
                vtkMRMLSegmentationNode=real_slicer.vtkMRMLSegmentationNode, qMRMLNodeComboBox=Widget,
                dicomDatabase=None)
slicer.__path__ = []
module("slicer.ScriptedLoadableModule", ScriptedLoadableModule=ScriptedLoadableModule,
       ScriptedLoadableModuleWidget=ScriptedLoadableModuleWidget,
       ScriptedLoadableModuleLogic=ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest=object)
module("slicer.parameterNodeWrapper", parameterNodeWrapper=parameterNodeWrapper, Choice=lambda *a: None,
       WithinRange=lambda *a: None)
module("slicer.i18n", tr=lambda s: s, translate=lambda c, s: s)
module("slicer.util", VTKObservationMixin=VTKObservationMixin)
slicer.util = util
qt = module("qt", QTimer=Widget, QSettings=Widget, QPushButton=Widget, QLabel=Widget,
            QComboBox=Combo, QFormLayout=Widget, QHBoxLayout=Widget, QVBoxLayout=Widget,
            QProgressBar=Widget, QCheckBox=Widget, QPlainTextEdit=Widget, QTableWidgetItem=Widget,
            QFileDialog=mock.MagicMock(), Qt=mock.MagicMock(), QUrl=mock.MagicMock())
module("ctk", ctkCollapsibleButton=Widget,
       ctkPathLineEdit=type("ctkPathLineEdit", (), {"Dirs": 1, "__new__": lambda cls, *a, **k: mock.MagicMock()}))
import vtk as real_vtk
module("vtk", vtkCommand=real_vtk.vtkCommand, calldata_type=lambda t: (lambda f: f), VTK_OBJECT=0,
       vtkStringArray=real_vtk.vtkStringArray)

name = sys.argv[1]
mod = __import__(name)
widget = getattr(mod, name + "Widget")()
widget.setup()
presenter = widget.presenter
assert presenter.params is not None, "the parameter node was not given to the presenter"
actions = presenter.actions()
buttons = {"MedGradeSegment": {"preprocess": ui.preprocessButton, "segment": ui.segmentButton},
           "MedGradePredict": {"apply": ui.applyButton}, "MedGradeTrain": {"start": ui.startButton}}[name]
for key, button in buttons.items():
    assert button.enabled == actions[key].enabled and button.toolTip == actions[key].reason, key
connected = [c.args for w in ui._mock_children.values() for c in w.connect.call_args_list]
assert connected, "no signal bound"
for signal, slot in (c for c in connected if len(c) == 2):
    assert callable(slot), (signal, slot)
if name != "MedGradeTrain":
    assert presenter.params.modelId and presenter.params.modelId in combo_items, (presenter.params.modelId, combo_items)
widget.cleanup()
print("wired", name, len(connected), "signals")
'''


@pytest.mark.parametrize("module", ["MedGradeSegment", "MedGradePredict", "MedGradeTrain"])
def test_panel_setup_binds_the_presenter(module, tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, module, str(tmp_path / "models")], cwd=REPO,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and f"wired {module}" in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]
