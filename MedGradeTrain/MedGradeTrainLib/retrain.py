"""Correction-to-retrain: corrected cases join a training cohort, the Train panel counts those that arrived
since the model in use, and proposes which case to correct next by segmentation uncertainty.

- :func:`add_to_cohort` copies a preprocessed case folder (volumes, masks, ``case.json`` and every corrected
  mask version under ``corrections/``) into the cohort and records which version arrived
  (``additions.jsonl``); training uses the newest corrected version (:mod:`MedGradeTrainLib.cohort`).
- :func:`corrected_since` lists cohort cases with a correction newer than a model bundle.
- :func:`uncertainty_ranking` ranks cases by the binary entropy of the AI probability map inside the brain.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder, read_case_info
from MedGradeCoreLib.errors import InputError

from MedGradeSegmentLib.cohort_folder import ADDITIONS, add_to_cohort  # noqa: F401  (re-exported)


def _created(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def model_time(model: str | Path) -> float:
    """When a model bundle (folder or library id) was created (its manifest's ``created``)."""
    from MedGradeCoreLib.bundle import read_manifest
    from MedGradeCoreLib.model_library import resolve_bundle

    folder = resolve_bundle(model)
    created = read_manifest(folder, verify=False).created
    if not created:
        raise InputError(folder, "the model's manifest has no creation time")
    return _created(created)


def corrected_since(cohort: str | Path, since: float | None) -> list[dict[str, Any]]:
    """Cases of ``cohort`` whose newest correction was saved after ``since`` (a time; None: all)."""
    from MedGradeSegmentLib.segmentation.corrections import CORRECTIONS, RECORD_NAME, versions

    out = []
    for d in sorted(p for p in Path(cohort).iterdir() if p.is_dir() and not p.name.startswith(".")):
        vs = versions(d)
        if not vs:
            continue
        rec_path = d / CORRECTIONS / f"v{vs[-1]:04d}" / RECORD_NAME
        try:
            t = _created(json.loads(rec_path.read_text())["created"])
        except (OSError, ValueError, KeyError):
            t = rec_path.parent.stat().st_mtime
        if since is None or t > since:
            out.append({"case": d.name, "version": vs[-1], "time": t})
    return out


def _brain(case_dir: Path, like: sitk.Image) -> np.ndarray:
    info = read_case_info(case_dir, required=()) if is_case_folder(case_dir) else {}
    if info.get("brain_mask") and (case_dir / info["brain_mask"]).is_file():
        b = sitk.ReadImage(str(case_dir / info["brain_mask"]))
        b = sitk.Resample(b, like, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        return sitk.GetArrayFromImage(b) > 0
    ref = next(iter(dict(info.get("sequences") or {}).values()), None)
    if ref and (case_dir / ref).is_file():  # skull-stripped images: the brain is where they are non-zero
        img = sitk.Resample(sitk.ReadImage(str(case_dir / ref)), like, sitk.Transform(), sitk.sitkNearestNeighbor)
        return sitk.GetArrayFromImage(img) != 0
    return np.ones(sitk.GetArrayFromImage(like).shape, bool)


def uncertainty(case_dir: str | Path) -> dict[str, Any] | None:
    """Mean binary entropy (bits) of the AI lesion probability inside the brain, and the uncertain volume
    (0.2 < p < 0.8); None when the case has no probability map (not segmented yet)."""
    from scipy.special import entr

    from MedGradeSegmentLib.segmentation.segment_case import PROBABILITY_NAME

    case_dir = Path(case_dir)
    path = next((p for p in (case_dir / "segmentation" / PROBABILITY_NAME, case_dir / PROBABILITY_NAME)
                 if p.is_file()), None)
    if path is None:
        return None
    img = sitk.ReadImage(str(path), sitk.sitkFloat32)
    p = np.clip(sitk.GetArrayFromImage(img), 0.0, 1.0)
    brain = _brain(case_dir, img)
    h = (entr(p) + entr(1.0 - p)) / math.log(2.0)  # bits; scipy's elementwise -x log x
    inside = h[brain] if brain.any() else h.ravel()
    voxel_ml = float(np.prod(img.GetSpacing())) / 1000.0
    uncertain_ml = float(((p > 0.2) & (p < 0.8) & brain).sum()) * voxel_ml
    lesion_ml = float(((p >= 0.5) & brain).sum()) * voxel_ml
    return {"mean_entropy_bits": float(inside.mean()), "total_entropy_bits": float(inside.sum()),
            "uncertain_ml": uncertain_ml, "lesion_ml": lesion_ml}


def uncertainty_ranking(cohort: str | Path, include_corrected: bool = False) -> list[dict[str, Any]]:
    """Cases to correct next, most uncertain first (total entropy in the brain), each with its reason.
    Cases already corrected are left out unless ``include_corrected``."""
    from MedGradeSegmentLib.segmentation.corrections import versions

    rows = []
    for d in sorted(p for p in Path(cohort).iterdir() if p.is_dir() and not p.name.startswith(".")):
        if versions(d) and not include_corrected:
            continue
        u = uncertainty(d)
        if u is None:
            continue
        reason = (f"{u['uncertain_ml']:.1f} ml of the brain with 0.2 < p < 0.8 (mean entropy "
                  f"{u['mean_entropy_bits']:.4f} bits/voxel) around a {u['lesion_ml']:.1f} ml AI lesion")
        rows.append({"case": d.name, "folder": str(d), **u, "reason": reason})
    rows.sort(key=lambda r: r["total_entropy_bits"], reverse=True)
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows
