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
    """A bundled sample case, each volume selected for its sequence in ``params`` (self-tests). Verified local
    copies (``$MEDGRADE_SAMPLE_MIRROR``, MedGrade's cache) are loaded without any network; otherwise Sample Data
    downloads the registry's URLs and checks their sha256."""
    import SampleData
    import slicer

    from MedGradeCoreLib.sample_data import dataset_files, local_file

    entry = entry_for(sample)
    files = [f for f in dataset_files(sample) if f"SHA256:{f.sha256}" in entry.checksums]
    local = [local_file(f) for f in files]
    if files and all(local) and set(entry.loadFileTypes) == {"VolumeFile"}:
        nodes = [slicer.util.loadVolume(str(path), {"name": name}) for path, name in zip(local, entry.nodeNames)]
    else:
        registerSampleData()
        nodes = SampleData.SampleDataLogic().downloadSamples(entry.sampleName)
    for node in nodes:
        seq = guess_sequence(node.GetName())
        if seq:
            setattr(params, f"{seq}Volume", node)
    return nodes
