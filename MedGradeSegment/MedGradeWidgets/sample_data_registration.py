"""The MedGrade sample cases and atlas in Slicer's Sample Data module (category "MedGrade")."""

from __future__ import annotations

import os

from MedGradeSegmentLib.slicer_sample_data import sample_entries

from . import MODULE_DIR


def registerSampleData() -> None:
    """Register every downloadable dataset of the sample-data registry (public URL + sha256)."""
    import SampleData

    icon = os.path.join(str(MODULE_DIR), "Resources", "Icons", "MedGradeSegment.png")
    for entry in sample_entries():
        kwargs = entry.kwargs()
        kwargs["thumbnailFileName"] = kwargs["thumbnailFileName"] or icon
        try:
            SampleData.SampleDataLogic.registerCustomSampleDataSource(**kwargs)
        except TypeError:  # Slicer versions before checksums / loadFileTypes
            kwargs.pop("checksums")
            kwargs.pop("loadFiles")
            kwargs["loadFileType"] = kwargs.pop("loadFileTypes")
            SampleData.SampleDataLogic.registerCustomSampleDataSource(**kwargs)
