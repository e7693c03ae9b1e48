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
