"""The source DICOM series a result refers to: its datasets in slice order, its grid, and masks mapped onto it.

Results are computed on the preprocessed grid (reoriented, resampled, in the same patient coordinates); a
DICOM Segmentation must lie on the source series' own frames, so masks are resampled (nearest neighbour,
SimpleITK, identity transform) onto the grid SimpleITK reads from that series, whose slice ``k`` is file ``k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.dicom import SeriesInfo, read_dicom_series, scan_dicom_folder
from MedGradeCoreLib.sequence_names import guess_sequence

NON_IMAGE = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "DOC", "RTPLAN", "RTDOSE", "OT"}


@dataclass
class SourceSeries:
    """One MR series as the DICOM objects MedGrade writes reference it."""

    datasets: list[pydicom.Dataset]  # headers, in slice order (= the grid's z index)
    grid: sitk.Image  # the series' geometry (pixel values are not used)
    folder: str
    label: str
    synthetic: bool = False  # written by MedGrade from a non-DICOM volume: the patient attributes are unknown

    @property
    def study_uid(self) -> str:
        return str(self.datasets[0].StudyInstanceUID)

    @property
    def series_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    def frames(self, image: sitk.Image, interpolator: int = sitk.sitkNearestNeighbor) -> np.ndarray:
        """``image`` (any grid in patient coordinates) resampled onto this series: (frames, rows, columns)."""
        on = sitk.Resample(image, self.grid, sitk.Transform(), interpolator, 0.0, image.GetPixelID())
        return sitk.GetArrayFromImage(on)


def image_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series of a DICOM folder (SEG, SR, PDF and other non-image objects left out)."""
    return [s for s in scan_dicom_folder(folder) if s.modality.upper() not in NON_IMAGE]


def choose_series(folder: str | Path, sequence: str | None, where: str | None = None) -> SeriesInfo:
    """The MR series of ``folder`` that is ``sequence`` (by its description), or its only MR series.

    ``where`` names the study in messages (a PACS pull); raises :class:`InputError` for a folder without an MR
    series or where several series could be ``sequence``."""
    where = where or str(folder)
    series = image_series(folder)
    mr = [s for s in series if s.modality.upper() == "MR"]
    if not mr:
        found = ", ".join(f"{s.label} {s.modality or '?'}" for s in series) or "no image series"
        raise InputError(where, f"no usable MR series (found: {found})")
    match = [s for s in mr if sequence and guess_sequence(s.description) == sequence]
    if not match and len(mr) == 1:
        match = mr
    if not match:
        raise InputError(where, f"none of the MR series {', '.join(s.label for s in mr)} is the {sequence} "
                                "sequence (by its description)")
    return max(match, key=lambda s: len(s.files))


def load_source_series(folder: str | Path, sequence: str | None = None) -> SourceSeries:
    """The source series of a DICOM folder: see :func:`choose_series`. A single enhanced multi-frame file is
    refused (its frames are not one file each)."""
    info = choose_series(folder, sequence)
    if info.number_of_frames > 1:
        raise InputError(info.files[0], f"series {info.label} is an enhanced multi-frame object; DICOM "
                                        "output references single-frame MR series only")
    grid = read_dicom_series(info)
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in info.files]
    return SourceSeries(datasets, grid, info.folder, info.label)


def source_from_files(files: list[str | Path], where: str) -> SourceSeries:
    """The source series made of ``files`` (e.g. what Slicer's DICOM database holds for a volume's instance
    UIDs, possibly in several folders); they must be one MR series."""
    from MedGradeCoreLib.io.dicom import _build_series, read_dicom_header

    items = [(Path(f), read_dicom_header(f)) for f in files]
    bad = [str(p) for p, ds in items if ds is None]
    if bad or not items:
        raise InputError(bad[0] if bad else where, "is not a DICOM image file" if bad else "no DICOM files")
    uids = {str(ds.SeriesInstanceUID) for _, ds in items}
    if len(uids) != 1:
        raise InputError(where, f"the files belong to {len(uids)} series; a SEG references one series")
    info = _build_series(uids.pop(), items, Path(where))
    if info.modality.upper() != "MR":
        raise InputError(where, f"series {info.label} is {info.modality or 'of no modality'}, not MR")
    grid = read_dicom_series(info)
    return SourceSeries([pydicom.dcmread(f, stop_before_pixels=True) for f in info.files], grid, where, info.label)


def patient_attributes(ds: pydicom.Dataset) -> dict[str, object]:
    """The patient and study attributes of a source dataset, as highdicom's ``SOPClass`` takes them."""
    return {"patient_id": ds.get("PatientID"), "patient_name": ds.get("PatientName"),
            "patient_birth_date": ds.get("PatientBirthDate"), "patient_sex": ds.get("PatientSex") or None,
            "accession_number": ds.get("AccessionNumber"), "study_id": ds.get("StudyID"),
            "study_date": ds.get("StudyDate"), "study_time": ds.get("StudyTime"),
            "referring_physician_name": ds.get("ReferringPhysicianName")}
