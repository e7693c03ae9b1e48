"""Writing and reading grading results: predictions.csv + predictions.json + heat-map NIfTI files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import sanitise_patient_id
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.outputs import write_image

from .predict import GradingResult

CSV_NAME, JSON_NAME, HEAT_DIR = "predictions.csv", "predictions.json", "heatmaps"


def write_results(results: list[GradingResult], output: str | Path, errors: dict[str, str] | None = None,
                  labels: dict[tuple[str, str], int | None] | None = None,
                  warnings: list[str] | None = None) -> dict[str, Path]:
    """``predictions.csv`` (one row per case and task), ``predictions.json``, heat maps as NIfTI.

    ``labels[(patient_id, task)]`` (0/1) adds a ``label`` column for evaluation.
    """
    from MedGradeCoreLib.outputs import OutputLock, staged_folder

    out = Path(output)
    with OutputLock(out), staged_folder(out, merge=True, last=(JSON_NAME,)) as tmp:
        _write(tmp, results, errors, labels, warnings or [])
    return {"csv": out / CSV_NAME, "json": out / JSON_NAME}


def _write(out: Path, results: list[GradingResult], errors: dict[str, str] | None,
           labels: dict[tuple[str, str], int | None] | None, warnings: list[str]) -> None:
    records, rows = [], []
    for r in results:
        rec = r.to_dict()
        if r.heatmap is not None:
            rel = f"{HEAT_DIR}/{sanitise_patient_id(r.patient_id)}__{sanitise_patient_id(r.task, 'task')}.nii.gz"
            (out / HEAT_DIR).mkdir(exist_ok=True)
            write_image(r.heatmap, out / rel)
            rec["heatmap"] = rel
        row = r.to_row()
        if labels is not None:
            rec["label"] = row["label"] = labels.get((r.patient_id, r.task))
        records.append(rec)
        rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / CSV_NAME, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    summary = "; ".join(f"{r.patient_id} {r.task}: {r.predicted_level} (p={r.probability:.2f}, {r.fusion})"
                        for r in results)
    (out / JSON_NAME).write_text(json.dumps({"results": records, "errors": errors or {}, "summary": summary,
                                             "warnings": warnings}, indent=1))


def read_results(output: str | Path) -> tuple[list[GradingResult], dict[str, Any]]:
    """The results written by :func:`write_results` (heat maps loaded) and the raw JSON."""
    out = Path(output)
    path = out / JSON_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"no readable grading results ({exc})") from None
    results = []
    fields = GradingResult.__dataclass_fields__
    for rec in data.get("results", []):
        r = GradingResult(**{k: v for k, v in rec.items() if k in fields and k != "heatmap"})
        if rec.get("heatmap"):
            r.heatmap = sitk.ReadImage(str(out / rec["heatmap"]))
        results.append(r)
    return results, data


def read_prediction_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a predictions CSV with numbers and ';'-joined lists parsed."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(path, f"cannot read the predictions CSV ({exc})") from None
    if not rows or "probability" not in rows[0] or "patient_id" not in rows[0]:
        raise InputError(path, "not a MedGrade predictions CSV (needs patient_id and probability columns)")
    for line, row in enumerate(rows, 2):
        try:
            row["probability"] = float(row["probability"])
            for k in ("slice_probabilities", "slice_areas"):
                if row.get(k):
                    row[k] = [float(v) for v in row[k].split(";")]
        except ValueError as exc:
            raise InputError(path, f"line {line}: {exc}") from None
    return rows
