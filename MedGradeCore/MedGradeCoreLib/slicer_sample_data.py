"""Sample Data entries for Slicer, built from the sample-data registry (no Qt, no slicer import).

Each registry dataset whose files all have a public URL becomes one entry in Slicer's Sample Data
module (category "MedGrade"): the URLs, ``SHA256:<hex>`` checksums Slicer verifies, file names
unique in Slicer's download cache, node names the MedGrade panels recognise (``<case>_t1c`` is
picked by ``sequence_names.guess_sequence``), and the load type (masks and labels load as
segmentations). ``MedGradeSegment.py`` registers them when Slicer has started.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from MedGradeCoreLib.sample_data import dataset_files, dataset_names, registry
from MedGradeCoreLib.sequence_names import is_brain_mask_name, is_lesion_mask_name

CATEGORY = "MedGrade"
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
# Short case names for node names (dataset id -> prefix); others use the dataset id.
_CASE_NAMES = {
    "brain1": "brain1", "tcga-fg-6692": "TCGA-FG-6692", "tcga-fg-6692-brats-space": "TCGA-FG-6692-SRI24",
    "brats-gli-00001-000": "BraTS-GLI-00001-000", "swiss-atlas": "SwissAtlas", "breast1": "breast1",
}


@dataclass(frozen=True)
class SlicerSampleEntry:
    """Arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource``."""

    category: str
    sampleName: str
    uris: list[str]
    fileNames: list[str]
    nodeNames: list[str]
    checksums: list[str]
    loadFileTypes: list[str]
    loadFiles: list[bool]
    thumbnailFileName: str | None = None

    def kwargs(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _split(path: str) -> tuple[str, str]:
    """``("t1c", ".nii.gz")`` for ``".../t1c.nii.gz"``."""
    name = PurePosixPath(path).name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix):]
    return name, ""


def _is_mask(path: str) -> bool:
    name = PurePosixPath(path).name
    return is_lesion_mask_name(name) or is_brain_mask_name(name) or "mask" in name.lower()


def sample_entries(thumbnail_dir: str | Path | None = None) -> list[SlicerSampleEntry]:
    """One Sample Data entry per downloadable image dataset of the registry."""
    entries = []
    for name in dataset_names():
        files = [f for f in dataset_files(name) if f.path.lower().endswith(_IMAGE_SUFFIXES)]
        if not files or any(not f.url for f in files):
            continue  # only datasets Slicer can download from a public URL
        case = _CASE_NAMES.get(name, name)
        parts = [_split(f.path) for f in files]
        node_names = [s if s.lower().startswith(case.lower()) else f"{case}_{s}" for s, _ in parts]
        thumb = Path(thumbnail_dir) / f"{name}.png" if thumbnail_dir else None
        entries.append(SlicerSampleEntry(
            category=CATEGORY,
            sampleName=registry()[name].get("title", name),
            uris=[f.url for f in files],
            fileNames=[f"MedGrade_{n}{suffix}" for n, (_, suffix) in zip(node_names, parts)],
            nodeNames=node_names,
            checksums=[f"SHA256:{f.sha256}" for f in files],
            loadFileTypes=["SegmentationFile" if _is_mask(f.path) else "VolumeFile" for f in files],
            loadFiles=[True] * len(files),
            thumbnailFileName=str(thumb) if thumb and thumb.is_file() else None,
        ))
    return entries


def entry_for(dataset: str) -> SlicerSampleEntry:
    """The entry of one dataset (by registry id), for the self-tests."""
    title = registry()[dataset].get("title", dataset)
    for e in sample_entries():
        if e.sampleName == title:
            return e
    raise KeyError(f"{dataset}: not downloadable from a public URL, so not in Sample Data")
