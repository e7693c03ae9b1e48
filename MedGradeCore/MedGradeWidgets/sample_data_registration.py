"""The MedGrade sample cases and atlas in Slicer's Sample Data module (category "MedGrade")."""

from __future__ import annotations

import os

from MedGradeCoreLib.slicer_sample_data import sample_entries

from . import MODULE_DIR


def registerSampleData() -> None:
    """Register every downloadable dataset of the sample-data registry (public URL + sha256)."""
    import SampleData

    icon = os.path.join(str(MODULE_DIR), "Resources", "Icons", "MedGradeSegment.png")
    for entry in sample_entries():
        kwargs = entry.kwargs()
        kwargs["thumbnailFileName"] = kwargs["thumbnailFileName"] or icon
        # checksums (SHA256 verified by Slicer) are always passed: no fallback registers a file unverified;
        # Slicer versions without them are refused at start-up (MedGradeWidgets.slicer_version)
        SampleData.SampleDataLogic.registerCustomSampleDataSource(**kwargs)
