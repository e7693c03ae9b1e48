"""Qt-side pieces shared by the three MedGrade panels (Slicer only; may import ``qt`` and ``slicer``).

Kept apart from the Lib packages, which never import Qt: the background-job runner, the model-library
section, the dependency prompt, Sample Data registration and the startup hook.
"""

from __future__ import annotations

import os
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[1]  # MedGradeCore/ (installed: qt-scripted-modules/)


def uiPath(name: str) -> str:
    """A shared ``.ui`` file of MedGradeCore's ``Resources/UI``."""
    return os.path.join(str(MODULE_DIR), "Resources", "UI", name)


def pathText(path: object) -> str:
    """'' for an unset ``pathlib.Path`` parameter, else its text (``MedGradeCoreLib.panel.path_text``)."""
    from MedGradeCoreLib.panel.state import path_text

    return path_text(path)
