"""Where the extension-wide files of ``Resources/`` are, in a source tree and in an installed Slicer.

Source tree: ``<repo>/Resources/``. Slicer extension: the top-level CMakeLists.txt copies the same
files into ``<qt-scripted-modules>/Resources/``, beside this package. ``MEDGRADE_RESOURCES`` overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dirs() -> list[Path]:
    """Candidate ``Resources`` folders, most specific first."""
    env = os.environ.get("MEDGRADE_RESOURCES")
    dirs = [Path(env)] if env else []
    dirs += [_HERE.parent / "Resources", _HERE.parents[1] / "Resources"]
    return dirs


def resource_file(name: str) -> Path | None:
    """The first existing ``Resources/<name>``, or None."""
    for d in resource_dirs():
        if (d / name).is_file():
            return d / name
    return None
