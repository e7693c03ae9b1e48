"""DICOM out for segmentation results on disk: an AI result folder (``segment``, ``run``) and a corrected mask
version (``save-correction``), read from the files the commands write and handed to ``MedGradeCoreLib.dicom_out``.

``requested``: True (``--dicom-out``), False (``--no-dicom-out``) or None (only when the input was DICOM).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pydicom
import SimpleITK as sitk

from MedGradeCoreLib.dicom_out import Algorithm, DicomResult, resolve_source, write_dicom
from MedGradeCoreLib.dicom_out.write import FOLDER, SEG
from MedGradeCoreLib.errors import InputError

from .segmentation.corrections import AI_RESULT, MASK_NAME, RECORD_NAME


def case_record(case_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """(preprocessed folder, its case.json) of a case folder, a cascade case folder or a segmentation folder
    inside one of them."""
    here = Path(case_dir)
    for folder in (here, here / "preprocessed", here.parent, here.parent / "preprocessed"):
        if (folder / "case.json").is_file():
            return folder, json.loads((folder / "case.json").read_text())
    raise InputError(case_dir, "no preprocessed case (case.json) here or beside it; the DICOM output needs the "
                               "case's source series")


def _case_if_due(case_dir: str | Path, requested: bool | None) -> tuple[Path, dict[str, Any]] | None:
    """:func:`case_record`, or None when DICOM output was not asked for and the folder has no case record
    (a mask saved outside a preprocessed case: the default then means no DICOM, not an error)."""
    try:
        return case_record(case_dir)
    except InputError:
        if requested:
            raise
        return None


def _algorithm(info: Mapping[str, Any]) -> Algorithm:
    return Algorithm(model_id=str(info.get("model_id") or "unknown model"),
                     weights_sha256=str(info.get("weights_sha256") or ""), version=str(info.get("version") or ""))


def export_ai_result(seg_dir: str | Path, out: str | Path, requested: bool | None,
                     grades: Sequence[Mapping[str, Any]] = (), report_pdf: str | Path | None = None,
                     fractional: bool = False, case_dir: str | Path | None = None) -> DicomResult | None:
    """SEG (lesion + brain) + SR (+ PDF) of the AI result in ``seg_dir`` into ``out/dicom``; None when no DICOM
    output is due. ``case_dir``: the preprocessed case (default: found from ``seg_dir``)."""
    seg_dir, out = Path(seg_dir), Path(out)
    found = _case_if_due(case_dir or seg_dir, requested)
    if found is None:
        return None
    pre_dir, case = found
    info = json.loads((seg_dir / AI_RESULT).read_text())
    source, warnings = resolve_source(case.get("sources") or {}, case.get("reference", "t1c"),
                                      str(case.get("patient_id", "")), out, requested)
    if source is None:
        return None
    lesion = sitk.ReadImage(str(seg_dir / MASK_NAME))
    brain = sitk.ReadImage(str(pre_dir / case["brain_mask"])) if case.get("brain_mask") else None
    probability = sitk.ReadImage(str(seg_dir / info["probability"])) if fractional and info.get("probability") \
        else None
    return write_dicom(out, source, lesion, _algorithm(info), float(info.get("volume_ml") or 0.0), brain,
                       grades, report_pdf, probability, warnings=warnings)


def find_ai_seg(case_dir: str | Path) -> Path | None:
    """The AI SEG written for a case folder (``dicom/seg.dcm`` there or in its ``segmentation/``)."""
    for folder in (Path(case_dir), Path(case_dir) / "segmentation"):
        if (folder / FOLDER / SEG).is_file():
            return folder / FOLDER / SEG
    return None


def export_correction(case_dir: str | Path, version_dir: str | Path, requested: bool | None) -> DicomResult | None:
    """SEMIAUTOMATIC SEG + SR of a saved correction (``corrections/vNNNN``) into ``vNNNN/dicom``, referencing
    the AI SEG (written first into the AI result's folder when it does not exist yet)."""
    case_dir, version_dir = Path(case_dir), Path(version_dir)
    record = json.loads((version_dir / RECORD_NAME).read_text())
    found = _case_if_due(case_dir, requested)
    if found is None:
        return None
    _, case = found
    source, warnings = resolve_source(case.get("sources") or {}, case.get("reference", "t1c"),
                                      str(case.get("patient_id", "")), version_dir, requested)
    if source is None:
        return None
    ai_seg = find_ai_seg(case_dir)
    if ai_seg is None and record.get("ai_mask"):
        ai_dir = Path(record["ai_mask"]).parent
        if (ai_dir / AI_RESULT).is_file():
            written = export_ai_result(ai_dir, ai_dir, True)
            ai_seg = written.files["seg"] if written else None
            warnings.append(f"the AI result had no DICOM SEG yet; written to {ai_seg} (send it with the correction)")
    corrects = pydicom.dcmread(ai_seg) if ai_seg else None
    if corrects is None:
        warnings.append("no AI SEG to reference: the correction's SEG references the source series only")
    algorithm = Algorithm(model_id=str(record.get("model_id") or ""),
                          weights_sha256=str(record.get("weights_sha256") or ""), annotator=str(record["user"]),
                          correction=version_dir.name)
    lesion = sitk.ReadImage(str(version_dir / MASK_NAME))
    return write_dicom(version_dir, source, lesion, algorithm, float(record.get("volume_corrected_ml") or 0.0),
                       corrects=corrects, warnings=warnings)
