"""The cascade's ``dicom`` stage: SEG (lesion + brain) + TID 1500 SR (volume, grades) + the report as Encapsulated
PDF in ``<case>/dicom/``, when the input was DICOM or ``--dicom-out`` asked for it (``--no-dicom-out``: never)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from MedGradeCoreLib import __version__
from MedGradeCoreLib.dicom_out.write import FOLDER, RECORD
from MedGradeCoreLib.progress import Progress


def dicom_stage(stages: Any, folder: Path, pre_dir: Path, seg_dir: Path, grades: list[Any],
                requested: bool | None, fractional: bool, upstream_key: str, files: dict[str, str], warnings: list[str],
                progress: Progress) -> None:
    """Run the stage through the cascade's ``stages`` (skipped when up to date); adds ``files["dicom"]``."""
    from MedGradeSegmentLib.dicom_export import case_record, export_ai_result
    from MedGradeCoreLib.dicom_out.write import dicom_source

    _, case = case_record(pre_dir)
    sources = case.get("sources") or {}
    if requested is False or (not requested and dicom_source(sources.get(case.get("reference", "t1c"))) is None):
        return
    pdf = folder / "report.pdf"
    key = hashlib.sha256(json.dumps([upstream_key, requested, fractional, pdf.is_file(), __version__]).encode()
                         ).hexdigest()[:20]
    said: list[str] = []

    def work() -> str:
        result = export_ai_result(seg_dir, folder, requested, [g.to_dict() for g in grades],
                                  pdf if pdf.is_file() else None, fractional, case_dir=pre_dir)
        said.extend(result.warnings if result else [])
        return ", ".join(sorted(result.files)) if result else "no DICOM source"

    stages.run("dicom", key, [folder / FOLDER / RECORD], work, progress)
    record = folder / FOLDER / RECORD
    if record.is_file():
        files["dicom"] = str(folder / FOLDER)
        warnings.extend(w for w in json.loads(record.read_text()).get("warnings", []) if w not in warnings)
    warnings.extend(w for w in said if w not in warnings)
    if not pdf.is_file():
        warnings.append("no report PDF (no PDF renderer): the DICOM output has SEG and SR only")
