"""Shared pieces of the glioma-lgg-tcga experiments: the preprocessed cohort, folds, FPG registrations.

Run ``experiments/prepare_cohort.py`` first; every script takes its ``--pre`` folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.io import read_lgg_cohort, sample_lgg_cohort
from MedGradeSegmentLib.preprocess.io import read_preprocessed
from MedGradePredictLib.recipe import PatientSplit, outer_folds


@dataclass
class PreCase:
    folder: Path
    case: str
    patient_id: str
    grade: str | None
    site: str
    images: dict[str, sitk.Image]
    mask: sitk.Image
    brain: sitk.Image
    clinical: dict

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        sp = self.mask.GetSpacing()
        return (sp[2], sp[1], sp[0])


def load_pre(pre: str | Path, sequences: tuple[str, ...] = ("flair", "t1c")) -> list[PreCase]:
    """Every prepared case (sorted by case id) with the sequences it really has."""
    records = {r.case: r for r in read_lgg_cohort(sample_lgg_cohort())}
    out = []
    for folder in sorted(Path(pre).iterdir()):
        if not (folder / "case.json").is_file():
            continue
        case, _ = read_preprocessed(folder)
        r = records[folder.name]
        images = {s: case.images[s] for s in sequences if s in case.images}
        out.append(PreCase(folder, folder.name, r.patient_id, r.grade, r.institution, images, case.mask,
                           case.meta["brain_mask"], {"age": r.age, "sex": r.sex}))
    return out


def cohort_folds(cases: list[PreCase], k: int = 5, seed: int = 0) -> list[PatientSplit]:
    """Patient-level folds stratified by grade and institution (ungraded patients counted as 'NA')."""
    return outer_folds([c.patient_id for c in cases], [c.grade or "NA" for c in cases],
                       [c.site for c in cases], k=k, seed=seed)


def hardware() -> str:
    """The machine and torch threads a result was measured on (written into every result file)."""
    import os
    import platform

    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU; "
            f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")


def save_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)


def mean_sd(values) -> dict:
    v = np.array([x for x in values if x is not None and not np.isnan(x)], float)
    return {"mean": float(v.mean()) if len(v) else float("nan"),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"), "n": int(len(v))}
