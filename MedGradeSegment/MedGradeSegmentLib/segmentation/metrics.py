"""Validation metrics with MONAI.

Per patient (what the thesis and Buda et al. report, counting false positives): 3D Dice over the whole
volume, slice DSC averaged over *all* slices (a lesion-free slice scores 1 when nothing is predicted and 0
when something is), maximum Hausdorff distance (the thesis's HD) and HD95, in mm with the grid's spacing.
The older per-slice summary (lesion slices only) is kept for the slice-sample validation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from torch import nn

from .infer import predict_slices


def _onehot(x: torch.Tensor) -> torch.Tensor:  # (B, H, W) {0,1} -> (B, 2, H, W)
    return torch.nn.functional.one_hot(x.long(), 2).permute(0, 3, 1, 2).float()


def slice_metrics(pred: np.ndarray, label: np.ndarray, spacing: float = 1.0) -> dict[str, Any]:
    """DSC (slices with a lesion in the label) and HD95 in mm (slices where both are non-empty)."""
    p, y = torch.from_numpy(np.asarray(pred, bool)), torch.from_numpy(np.asarray(label, bool))
    has = y.flatten(1).any(1)
    both = has & p.flatten(1).any(1)
    out: dict[str, Any] = {"n_slices": int(len(y)), "n_lesion_slices": int(has.sum()),
                           "n_missed_slices": int((has & ~p.flatten(1).any(1)).sum())}
    if has.any():
        dm = DiceMetric(include_background=False, reduction="none")
        out["dsc"] = float(dm(_onehot(p[has]), _onehot(y[has])).nanmean())
        inter = float((p[has] & y[has]).sum())
        out["dsc_pooled"] = 2 * inter / max(float(p[has].sum() + y[has].sum()), 1.0)
    else:
        out["dsc"] = out["dsc_pooled"] = math.nan
    if both.any():
        hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")
        vals = hd(_onehot(p[both]), _onehot(y[both]), spacing=spacing).flatten()
        out["hd95_mm"] = float(vals[torch.isfinite(vals)].mean()) if torch.isfinite(vals).any() else math.nan
    else:
        out["hd95_mm"] = math.nan
    return out


def _pooled(preds: list[np.ndarray], labels: list[np.ndarray], spacing: float) -> dict[str, Any]:
    """Slice metrics over slices of possibly different sizes (weighted by slice counts)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(preds):
        groups.setdefault(p.shape, []).append(i)
    parts = [slice_metrics(np.stack([preds[i] for i in g]), np.stack([labels[i] for i in g]), spacing)
             for g in groups.values()]
    if len(parts) == 1:
        return parts[0]
    out: dict[str, Any] = {k: sum(m[k] for m in parts) for k in ("n_slices", "n_lesion_slices", "n_missed_slices")}
    for key, weight in (("dsc", "n_lesion_slices"), ("dsc_pooled", "n_lesion_slices"), ("hd95_mm", "n_lesion_slices")):
        vals = [(m[key], m[weight]) for m in parts if not math.isnan(m[key]) and m[weight]]
        out[key] = sum(v * w for v, w in vals) / sum(w for _, w in vals) if vals else math.nan
    return out


def evaluate(model: nn.Module, samples: list[dict[str, Any]], device: str, batch_size: int = 8,
             spacing: float = 1.0) -> dict[str, Any]:
    """Metrics of ``model`` on validation samples (whole slices, padded to the model's divisor)."""
    if not samples:
        return {"n_slices": 0, "dsc": math.nan, "hd95_mm": math.nan}
    labels = [s["label"][0] > 0 for s in samples]
    preds: list[np.ndarray] = [np.zeros(0)] * len(samples)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(samples):
        by_shape.setdefault(tuple(s["image"][0].shape), []).append(i)
    for idx in by_shape.values():  # cases may differ in slice size
        prob = predict_slices(model, np.stack([samples[i]["image"][0] for i in idx]), device, batch_size)
        for j, i in enumerate(idx):
            preds[i] = prob[j] >= 0.5
    out = _pooled(preds, labels, spacing)
    out["patients"] = sorted({s["patient_id"] for s in samples})
    out["per_sequence"] = {}
    for seq in sorted({s["sequence"] for s in samples}):
        idx = [i for i, s in enumerate(samples) if s["sequence"] == seq]
        m = _pooled([preds[i] for i in idx], [labels[i] for i in idx], spacing)
        out["per_sequence"][seq] = {"dsc": m["dsc"], "hd95_mm": m["hd95_mm"]}
    return out


def _hd(p: torch.Tensor, y: torch.Tensor, spacing: tuple[float, ...], percentile: float | None) -> float:
    hd = HausdorffDistanceMetric(include_background=False, percentile=percentile, reduction="none")
    v = hd(_onehot3(p), _onehot3(y), spacing=list(spacing)).flatten()
    return float(v[0]) if torch.isfinite(v[0]) else math.nan


def _onehot3(x: torch.Tensor) -> torch.Tensor:  # (D, H, W) -> (1, 2, D, H, W)
    return torch.nn.functional.one_hot(x.long(), 2).permute(3, 0, 1, 2)[None].float()


def patient_metrics(pred: np.ndarray, label: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
                    ) -> dict[str, Any]:
    """Whole-volume metrics of one patient; ``pred``/``label`` are (z, y, x) arrays, ``spacing`` (z, y, x) mm.

    ``dice_3d``: MONAI Dice of the volumes (1.0 when both are empty, 0.0 when only one is);
    ``slice_dsc_all``: MONAI Dice per axial slice with ``ignore_empty=False`` averaged over every slice;
    ``hd_max_mm`` / ``hd95_mm``: 3D Hausdorff distances (NaN when either mask is empty).
    """
    p = torch.from_numpy(np.asarray(pred, bool))
    y = torch.from_numpy(np.asarray(label, bool))
    if p.shape != y.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and label {tuple(y.shape)} differ in shape")
    dm = DiceMetric(include_background=False, reduction="none", ignore_empty=False)
    dice3d = float(dm(_onehot3(p), _onehot3(y)).flatten()[0])
    per_slice = DiceMetric(include_background=False, reduction="none", ignore_empty=False)(_onehot(p), _onehot(y))
    out: dict[str, Any] = {"dice_3d": dice3d, "slice_dsc_all": float(per_slice.flatten().mean()),
                           "n_slices": int(len(y)), "n_lesion_slices": int(y.flatten(1).any(1).sum()),
                           "n_false_positive_slices": int((p.flatten(1).any(1) & ~y.flatten(1).any(1)).sum()),
                           "volume_pred_voxels": int(p.sum()), "volume_label_voxels": int(y.sum())}
    both = bool(p.any()) and bool(y.any())
    out["hd_max_mm"] = _hd(p, y, spacing, None) if both else math.nan
    out["hd95_mm"] = _hd(p, y, spacing, 95) if both else math.nan
    return out


def summarise_patients(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and SD over patients of each per-patient metric (NaNs left out and counted)."""
    out: dict[str, Any] = {"n_patients": len(rows)}
    for key in ("dice_3d", "slice_dsc_all", "hd_max_mm", "hd95_mm"):
        vals = np.array([r[key] for r in rows if not math.isnan(r[key])], float)
        out[key] = {"mean": float(vals.mean()) if len(vals) else math.nan,
                    "sd": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
                    "median": float(np.median(vals)) if len(vals) else math.nan, "n": int(len(vals))}
    return out
