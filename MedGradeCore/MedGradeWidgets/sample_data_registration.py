"""The MedGrade sample cases and atlas in Slicer's Sample Data module (category "MedGrade")."""

from __future__ import annotations

import os

from MedGradeCoreLib.sequence_names import guess_sequence
from MedGradeCoreLib.slicer_sample_data import entry_for, sample_entries

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


def loadSampleCase(params: object, sample: str = "tcga-fg-6692") -> list:
    """A bundled sample case from Sample Data, each volume selected for its sequence in ``params`` (self-tests)."""
    import SampleData

    registerSampleData()
    nodes = SampleData.SampleDataLogic().downloadSamples(entry_for(sample).sampleName)
    for node in nodes:
        seq = guess_sequence(node.GetName())
        if seq:
            setattr(params, f"{seq}Volume", node)
    return nodes
