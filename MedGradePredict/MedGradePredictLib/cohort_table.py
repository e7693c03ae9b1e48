"""``OUTPUT/cohort.csv``: the cohort at a glance after ``medgrade run COHORT`` (or after every task of its Slurm
array, written by the array's gather job): one row per case and grading answer, read from what the cascade wrote
for the case (``cascade.json``: which grading models ran; ``grading/<model>/predictions.json``;
``segmentation/segmentation.json``), with the case's status: ``done``, ``failed: <message>`` for a case of this
run that failed, or ``not run`` when the output holds nothing for it. Written atomically; a spreadsheet or
``medgrade evaluate --predictions`` reads it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from MedGradeCoreLib.atomic import atomic_write_text

FILE = "cohort.csv"
COLUMNS = ("case", "patient_id", "status", "task", "predicted_level", "probability", "fusion", "model_id",
           "lesion_ml", "report")


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def cohort_rows(cases: list[Path], output: Path, failed: dict[str, str] | None = None) -> list[dict[str, Any]]:
    from .cascade import case_label

    rows = []
    for case in cases:
        label = case_label(case)
        folder = output / label
        base: dict[str, Any] = {"case": case.name, "patient_id": label}
        if case.name in (failed or {}):  # this run's error, whatever an earlier run left in the folder
            rows.append({**base, "status": f"failed: {failed[case.name]}"})
            continue
        stages = _json(folder / "cascade.json").get("stages")
        if not stages:
            rows.append({**base, "status": "not run"})
            continue
        base.update(status="done", lesion_ml=_json(folder / "segmentation" / "segmentation.json").get("volume_ml"),
                    report="report.html" if (folder / "report.html").is_file() else "")
        answers = [r for name in stages if name.startswith("grade:")
                   for r in _json(folder / "grading" / name.split(":", 1)[1] / "predictions.json").get("results", [])]
        rows += [{**base, **{k: a.get(k) for k in COLUMNS[3:8]}, "patient_id": a.get("patient_id", label)}
                 for a in answers] or [base]
    return rows


def write_cohort_table(cases: list[Path], output: str | Path, failed: dict[str, str] | None = None) -> Path:
    """``output/cohort.csv`` for ``cases`` (the cohort's case folders, name order)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(cohort_rows(cases, output, failed))
    atomic_write_text(output / FILE, buf.getvalue())
    return output / FILE
