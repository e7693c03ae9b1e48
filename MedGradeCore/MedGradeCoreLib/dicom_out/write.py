"""Write a result's DICOM objects (SEG, SR, encapsulated PDF) into ``<output>/dicom/``.

Everything is built in memory first; only when every object was built is the folder written (staged, renamed
on success), so a folder that exists is complete. The source series is the case's reference sequence when it
was read from DICOM; a NIfTI/NRRD source is written as an MR series first (``dicom/source/``, patient
attributes unknown), only when asked.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pydicom
import SimpleITK as sitk

from MedGradeCoreLib.dicom_out.references import SourceSeries, load_source_series
from MedGradeCoreLib.dicom_out.seg import Algorithm, build_segmentation
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.dicom import is_dicom_folder

FOLDER = "dicom"
SEG, SR, PDF, RECORD = "seg.dcm", "sr.dcm", "report_pdf.dcm", "dicom.json"
_PARTIAL = f".{FOLDER}-source.partial-"
UNKNOWN_PATIENT = ("the input is not DICOM: the DICOM objects reference an MR series written from its voxels, and "
                   "the patient's name, birth date and sex are unknown (empty)")


@dataclass
class DicomResult:
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # seg, sr, pdf, source (folder)
    warnings: list[str] = field(default_factory=list)

    def datasets(self) -> list[pydicom.Dataset]:
        """Every instance to send, the written source series first."""
        out = [pydicom.dcmread(p) for p in sorted((self.folder / "source").glob("*.dcm"))]
        return out + [pydicom.dcmread(self.files[k]) for k in ("seg", "sr", "pdf") if k in self.files]


def dicom_source(source: str | None) -> Path | None:
    """The DICOM folder a case's reference sequence was read from, or None (NIfTI, NRRD, ...)."""
    if not source:
        return None
    p = Path(source)
    folder = p if p.is_dir() else p.parent if p.is_file() and not p.name.lower().endswith((".nii", ".nii.gz",
                                                                                          ".nrrd", ".mha")) else None
    return folder if folder is not None and is_dicom_folder(folder) else None


def resolve_source(sources: Mapping[str, str], reference: str, patient_id: str, out: Path,
                   requested: bool | None) -> tuple[SourceSeries | None, list[str]]:
    """(source series, warnings) for a case; None when no DICOM output is due (a non-DICOM input without
    ``requested``, or ``requested`` False)."""
    src = sources.get(reference) or next(iter(sources.values()), None)
    folder = dicom_source(src)
    if requested is False or (folder is None and not requested):
        return None, []
    if folder is not None:
        return load_source_series(folder, reference), []
    if not src or not Path(src).is_file():
        raise InputError(src or patient_id, "no source image to reference in the DICOM output")
    from MedGradeCoreLib.dicom_out.mr_series import write_mr_series

    import os

    source_dir = out / f"{_PARTIAL}{os.getpid()}"  # moved into dicom/source by write_dicom
    write_mr_series(sitk.ReadImage(str(src)), source_dir, patient_id, str(src), series_description=reference)
    series = load_source_series(source_dir, reference)
    series.synthetic = True
    return series, [UNKNOWN_PATIENT]


def _ours(source: SourceSeries) -> bool:
    """True for a source series written by :func:`resolve_source` (moved into the output; never an input)."""
    return source.synthetic and Path(source.folder).name.startswith(_PARTIAL)


def write_dicom(out: str | Path, source: SourceSeries, lesion: sitk.Image, segmenter: Algorithm,
                volume_ml: float, brain: sitk.Image | None = None, grades: Sequence[Mapping[str, Any]] = (),
                report_pdf: str | Path | None = None, probability: sitk.Image | None = None,
                corrects: pydicom.Dataset | None = None, warnings: Sequence[str] = ()) -> DicomResult:
    """Build SEG + SR (+ PDF when ``report_pdf``) and write them into ``out/dicom``."""
    out = Path(out)
    try:
        return _write(out, source, lesion, segmenter, volume_ml, brain, grades, report_pdf, probability,
                      corrects, warnings)
    finally:
        if _ours(source) and Path(source.folder).is_dir():  # not moved into place: a failure
            shutil.rmtree(source.folder, ignore_errors=True)


def _write(out: Path, source: SourceSeries, lesion: sitk.Image, segmenter: Algorithm, volume_ml: float,
           brain: sitk.Image | None, grades: Sequence[Mapping[str, Any]], report_pdf: str | Path | None,
           probability: sitk.Image | None, corrects: pydicom.Dataset | None, warnings: Sequence[str]) -> DicomResult:
    from MedGradeCoreLib.dicom_out.pdf import build_pdf
    from MedGradeCoreLib.dicom_out.sr import build_report
    from MedGradeCoreLib.outputs import staged_folder

    seg = build_segmentation(source, lesion, segmenter, brain, probability, corrects)
    sr = build_report(source, seg, volume_ml, segmenter, grades)
    pdf = build_pdf(source, report_pdf, [seg, sr]) if report_pdf else None
    final = out / FOLDER
    result = DicomResult(final, warnings=list(warnings))
    with staged_folder(final, markers=(RECORD,)) as tmp:
        if _ours(source):
            Path(source.folder).rename(tmp / "source")
            result.files["source"] = final / "source"
        for key, name, ds in (("seg", SEG, seg), ("sr", SR, sr), ("pdf", PDF, pdf)):
            if ds is not None:
                ds.save_as(tmp / name, enforce_file_format=True)
                result.files[key] = final / name
        record = {"study_instance_uid": source.study_uid, "source_series": source.series_uid,
                  "source_synthetic": source.synthetic, "warnings": result.warnings,
                  **{k: {"file": p.name, "sop_instance_uid": str(d.SOPInstanceUID), "series_instance_uid":
                         str(d.SeriesInstanceUID)} for k, p, d in
                     (("seg", result.files.get("seg"), seg), ("sr", result.files.get("sr"), sr),
                      ("pdf", result.files.get("pdf"), pdf)) if d is not None}}
        (tmp / RECORD).write_text(json.dumps(record, indent=1))
    return result
