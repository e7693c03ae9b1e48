"""Patient-level fusion of slice probabilities: All, Near (largest-lesion slice +-1), Large."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from MedGradeCoreLib.errors import InputError

METHODS = ("all", "near", "large")


@dataclass
class FusionResult:
    method: str
    probability: float
    slices_used: list[int]  # positions in the slice list that entered the decision


def fuse(probs: np.ndarray | list[float], areas: np.ndarray | list[float], method: str = "near") -> FusionResult:
    """Combine per-slice probabilities (slices in axial order) into one patient probability.

    - ``all``: mean over the slices with lesion (area > 0);
    - ``near``: mean over the largest-lesion slice and its neighbours in the list;
    - ``large``: the largest-lesion slice alone (first one on ties).
    """
    p, a = np.asarray(probs, float), np.asarray(areas, float)
    if p.shape != a.shape or p.size == 0:
        raise InputError(None, f"fusion needs one lesion area per slice probability ({p.size} vs {a.size})")
    if method not in METHODS:
        raise InputError(None, f"unknown fusion method {method!r}; choose one of {', '.join(METHODS)}")
    i = int(np.argmax(a))
    if method == "all":
        used = [int(j) for j in np.flatnonzero(a > 0)] or list(range(p.size))
    elif method == "near":
        used = list(range(max(i - 1, 0), min(i + 2, p.size)))
    else:
        used = [i]
    return FusionResult(method, float(p[used].mean()), used)


def calibration_by_method(y_true: list[int], slice_probs: list[np.ndarray], slice_areas: list[np.ndarray],
                          n_bins: int = 5) -> dict[str, dict]:
    """Per fusion method: patient probabilities, calibration curve (scikit-learn) and Brier score."""
    y = np.asarray(y_true, int)
    out = {}
    for m in METHODS:
        pp = np.array([fuse(p, a, m).probability for p, a in zip(slice_probs, slice_areas)])
        frac, mean_pred = calibration_curve(y, pp, n_bins=n_bins, strategy="uniform")
        out[m] = {"probabilities": pp.tolist(), "fraction_positive": frac.tolist(),
                  "mean_predicted": mean_pred.tolist(), "brier": float(brier_score_loss(y, pp))}
    return out
