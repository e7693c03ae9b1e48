"""What runs once when Slicer has started: Sample Data entries and MedGrade's segment terminology."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from MedGradeCoreLib.scene import load_medgrade_terminology
from MedGradeCoreLib.scene.terminology import context_name


def ensureTerminology(terminologiesLogic: Any) -> str:
    """Load MedGrade's ``.term.json`` into the Terminologies logic unless it is already loaded;
    returns its context name."""
    import vtk

    loaded = vtk.vtkStringArray()
    terminologiesLogic.GetLoadedTerminologyNames(loaded)
    name = context_name()
    if name in {loaded.GetValue(i) for i in range(loaded.GetNumberOfValues())}:
        return name
    return load_medgrade_terminology(terminologiesLogic)


def onStartupCompleted() -> None:
    """Connected to ``slicer.app``'s ``startupCompleted()``: register sample data, load the terminology."""
    import slicer

    from .sample_data_registration import registerSampleData

    for step in (registerSampleData, lambda: ensureTerminology(slicer.modules.terminologies.logic())):
        try:
            step()
        except Exception:  # noqa: BLE001 - one failing step must not stop Slicer's startup
            logging.error(f"MedGrade startup: {traceback.format_exc()}")
