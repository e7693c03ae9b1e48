"""Spatial and intensity augmentation of a grading batch, as tensor ops on the batch (issue 17).

The thesis trains KiNet with a left-right flip only; it is silent on anything else. Choice: an optional
random in-plane rotation (uniform in +-``rotate_deg``, one angle per slice, the same for every sequence
and channel of that slice, torch's ``affine_grid``/``grid_sample``, bilinear, zeros outside) and an
optional intensity change (per slice and sequence, ``x * a + b`` with a in 1 +- ``intensity`` and
b in +-``intensity``, applied only where the input is non-zero). Reason: 68 graded patients are far too few
for a flip alone (the issue-9 folds over-fitted within 3 epochs), head orientation and scanner gain vary
across the five TCGA sites, and keeping exact zeros zero leaves the ROI channel of the MIX input (the
slice restricted to the lesion) zero outside the lesion, as at inference. Random numbers come from torch's
global generator, which the runner seeds and checkpoints (a resumed run draws the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    rotate_deg: float = 0.0
    intensity: float = 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Augment":
        d = dict(d or {})
        bad = sorted(set(d) - {"rotate_deg", "intensity"})
        if bad:
            raise ValueError(f"augment: unknown field(s) {', '.join(bad)} (rotate_deg, intensity)")
        out = cls(float(d.get("rotate_deg", 0.0)), float(d.get("intensity", 0.0)))
        if not 0 <= out.rotate_deg <= 180 or not 0 <= out.intensity < 1:
            raise ValueError(f"augment: rotate_deg must be in [0, 180] and intensity in [0, 1), got {d}")
        return out

    @property
    def active(self) -> bool:
        return self.rotate_deg > 0 or self.intensity > 0


def augment_batch(x: dict[str, torch.Tensor], aug: Augment) -> dict[str, torch.Tensor]:
    """``x``: sequence -> [B, C, H, W]; returns the augmented batch (new tensors; ``x`` untouched)."""
    if not aug.active:
        return x
    first = next(iter(x.values()))
    b, dev = first.shape[0], first.device
    out = dict(x)
    if aug.rotate_deg > 0:
        theta = (torch.rand(b) * 2 - 1) * math.radians(aug.rotate_deg)
        c, s = torch.cos(theta), torch.sin(theta)
        mat = torch.zeros(b, 2, 3)
        mat[:, 0, 0], mat[:, 0, 1], mat[:, 1, 0], mat[:, 1, 1] = c, -s, s, c
        mat = mat.to(dev, first.dtype)
        for q, v in out.items():
            grid = F.affine_grid(mat, list(v.shape), align_corners=False)
            out[q] = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if aug.intensity > 0:
        for q, v in out.items():
            a = (1 + (torch.rand(b, 1, 1, 1) * 2 - 1) * aug.intensity).to(dev, v.dtype)
            shift = ((torch.rand(b, 1, 1, 1) * 2 - 1) * aug.intensity).to(dev, v.dtype)
            out[q] = torch.where(v != 0, v * a + shift, v)
    return out
