"""A headless Slicer application logic built from ``slicer-core`` (no Qt), like trame-slicer does.

Used by the tests, the demo and the command line to write real Slicer scenes. Inside the Slicer
application nothing here is needed: ``slicer.app.applicationLogic()`` already exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINOLOGY_DIR = Path(__file__).with_name("terminology")


@dataclass
class HeadlessSlicer:
    scene: Any
    app_logic: Any
    logics: dict[str, Any]


def _set_scene_quietly(logic: Any, scene: Any) -> None:
    """Set the scene without the errors about Slicer's default terminology files, which are not
    shipped here (MedGrade loads its own file right after)."""
    from vtkmodules.vtkCommonCore import vtkObject

    shown = vtkObject.GetGlobalWarningDisplay()
    vtkObject.SetGlobalWarningDisplay(0)
    try:
        logic.SetMRMLScene(scene)
    finally:
        vtkObject.SetGlobalWarningDisplay(shown)


def create_headless_slicer(terminology_dir: str | Path = TERMINOLOGY_DIR) -> HeadlessSlicer:
    import slicer
    from vtkmodules.vtkCommonCore import vtkCollection

    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    app.GetColorLogic().SetMRMLScene(scene)
    app.GetColorLogic().AddDefaultColorNodes()
    app.SetSliceLogics(vtkCollection())
    app.SetViewLogics(vtkCollection())
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)

    logics: dict[str, Any] = {}
    for name, cls in [
        ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
        ("Volumes", slicer.vtkSlicerVolumesLogic),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
        ("Terminologies", slicer.vtkSlicerTerminologiesModuleLogic),
        ("Tables", slicer.vtkSlicerTablesLogic),
        ("Plots", slicer.vtkSlicerPlotsLogic),
        ("Transforms", slicer.vtkSlicerTransformLogic),
    ]:
        logic = cls()
        if name == "Terminologies":
            # Must be set before the scene: it loads .term.json files from here only.
            logic.SetModuleShareDirectory(str(terminology_dir))
        logic.SetMRMLApplicationLogic(app)
        if name == "Terminologies":
            _set_scene_quietly(logic, scene)
            from MedGradeCoreLib.scene.terminology import load_medgrade_terminology

            load_medgrade_terminology(logic)
        else:
            logic.SetMRMLScene(scene)
        app.SetModuleLogic(name, logic)
        logics[name] = logic
    return HeadlessSlicer(scene, app, logics)
