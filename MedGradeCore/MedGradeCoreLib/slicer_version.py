"""The oldest 3D Slicer MedGrade runs in, and the message refusing an older one (no Qt here)."""

from __future__ import annotations

# Python >= 3.10 (pyproject) arrived with Slicer 5.10; vtkSegment.SetTerminology, Sample Data checksums and
# the parameter-node wrapper the panels use are all there by then.
MIN_SLICER = (5, 10)


def slicer_version_problem(major: int, minor: int) -> str | None:
    """None when Slicer ``major.minor`` is new enough, else a message naming what to install."""
    if (int(major), int(minor)) >= MIN_SLICER:
        return None
    need = ".".join(map(str, MIN_SLICER))
    return (f"MedGrade needs 3D Slicer {need} or newer (it uses Python 3.10+); this is Slicer {major}.{minor}. "
            f"Install Slicer {need} or a later release from https://download.slicer.org and install MedGrade "
            "there from the Extensions Manager.")
