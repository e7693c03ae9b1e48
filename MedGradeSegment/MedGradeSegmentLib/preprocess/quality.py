"""The per-case quality summary written as ``quality.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk


@dataclass
class QualityReport:
    """Brain volume, registration metric and overlap per sequence, warnings, seconds per stage."""

    brain_volume_ml: float = 0.0
    registration: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    intensity: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "QualityReport":
        return cls(**{k: values[k] for k in ("brain_volume_ml", "registration", "warnings", "seconds", "intensity")
                      if k in values})


def volume_ml(mask: sitk.Image) -> float:
    """Volume of the non-zero voxels in millilitres."""
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    return voxels * float(np.prod(mask.GetSpacing())) / 1000.0


def weak_registrations(registration: dict[str, dict[str, float]], ratio: float) -> list[str]:
    """Warnings for sequences whose Mattes MI metric magnitude is below ``ratio`` x the strongest one's.

    Different contrasts share less information, so a weaker metric alone is normal; a far weaker one
    (TCGA-FG-6692's T2 in a local optimum: 0.07 against T1's 0.27) is a registration to check by eye.
    """
    strength = {seq: -r["metric"] for seq, r in registration.items() if np.isfinite(r.get("metric", np.nan))}
    if len(strength) < 2 or max(strength.values()) <= 0:
        return []
    best_seq = max(strength, key=strength.__getitem__)
    best = strength[best_seq]
    return [f"{seq}: registration metric {-value:.3f} is far weaker than {best_seq}'s {-best:.3f}: "
            f"check its alignment" for seq, value in strength.items() if value < ratio * best]
