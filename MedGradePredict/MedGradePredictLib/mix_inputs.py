"""Network inputs from a case: MIX (image + image restricted to the lesion), IMG-only, ROI-only.

The K sampled axial slices of a case (on its common 1 mm grid) are z-scored inside the brain
(non-zero pixels), cropped to a square box around the lesion (union over the slices, plus a margin)
and resized with MONAI transforms. Merge-IN is the channel concatenation of the sequences' inputs
(:func:`merge_in`); the crop box is kept so Grad-CAM maps can be put back into 3D.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import Compose, NormalizeIntensity, Resize, SpatialCrop

from MedGradeSegmentLib.case import Case
from MedGradeSegmentLib.errors import InputError

MODES = {"mix": ("img", "roi"), "img": ("img",), "roi": ("roi",)}


@dataclass
class SliceInputs:
    """One case's network inputs: ``arrays[seq]`` is float32 ``[K, C, size, size]``."""

    patient_id: str
    slices: list[int]  # axial indices (array index z) on the case grid
    areas: np.ndarray  # lesion area (pixels) per slice
    arrays: dict[str, np.ndarray]
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 (exclusive ends) of the crop on the grid
    mode: str = "mix"
    meta: dict = field(default_factory=dict)

    def tensors(self, sequences: list[str] | tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        seqs = sequences or list(self.arrays)
        return {s: torch.from_numpy(self.arrays[s]) for s in seqs}


def channels_per_sequence(mode: str) -> int:
    return len(MODES[mode])


def sample_lesion_slices(mask: np.ndarray, k: int = 20) -> list[int]:
    """K equally spaced axial indices over the lesion's extent (fewer if the lesion is thinner)."""
    z = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(1))
    if z.size == 0:
        raise InputError(None, "the lesion mask is empty; grading needs a lesion")
    return sorted({int(round(v)) for v in np.linspace(z.min(), z.max(), k)})


def lesion_box(mask: np.ndarray, slices: list[int], margin: float = 0.25, min_side: int = 32
               ) -> tuple[int, int, int, int]:
    """Square in-plane box around the lesion on ``slices`` (clipped to the image)."""
    m = mask[slices].any(0)
    if not m.any():
        m = mask.any(0)
    ys, xs = np.nonzero(m)
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
    side = int(max(min_side, round(side * (1 + 2 * margin))))
    h, w = mask.shape[1:]
    y0 = int(np.clip(round(cy - side / 2), 0, max(h - side, 0)))
    x0 = int(np.clip(round(cx - side / 2), 0, max(w - side, 0)))
    return y0, min(y0 + side, h), x0, min(x0 + side, w)


def _slice_transform(box: tuple[int, int, int, int], size: int) -> Compose:
    y0, y1, x0, x1 = box
    return Compose([SpatialCrop(roi_start=(y0, x0), roi_end=(y1, x1)),
                    Resize((size, size), mode="bilinear", anti_aliasing=False)])


def build_slice_inputs(case: Case, sequences: list[str] | tuple[str, ...] = ("t1c", "t2"),
                       slices: list[int] | None = None, k: int = 20, size: int = 64, mode: str = "mix",
                       margin: float = 0.25) -> SliceInputs:
    """The case's K slices as MIX (or IMG/ROI) inputs per sequence."""
    if mode not in MODES:
        raise InputError(None, f"unknown input mode {mode!r}; choose one of {', '.join(MODES)}")
    if case.mask is None:
        raise InputError(case.sources.get("mask"), f"case {case.patient_id}: grading needs a lesion mask")
    missing = [s for s in sequences if s not in case.images]
    if missing:
        raise InputError(None, f"case {case.patient_id}: missing sequence(s) {', '.join(missing)}; "
                               f"has {', '.join(case.images) or 'none'}")
    mask = sitk.GetArrayFromImage(case.mask) > 0
    for s in sequences:
        if case.images[s].GetSize() != case.mask.GetSize():
            raise InputError(case.sources.get(s), f"sequence {s} {case.images[s].GetSize()} is not on the "
                                                  f"lesion mask's grid {case.mask.GetSize()}; preprocess first")
    slices = list(slices) if slices else sample_lesion_slices(mask, k)
    if max(slices) >= mask.shape[0] or min(slices) < 0:
        raise InputError(None, f"case {case.patient_id}: slice index outside 0..{mask.shape[0] - 1}")
    box = lesion_box(mask, slices, margin)
    spatial = _slice_transform(box, size)
    norm = NormalizeIntensity(nonzero=True, channel_wise=True)  # each slice z-scored over its brain pixels
    m2 = mask[slices].astype(np.float32)
    arrays = {}
    n = len(slices)
    for s in sequences:
        vol = sitk.GetArrayViewFromImage(case.images[s])
        img = np.asarray(norm(np.array(vol[slices], dtype=np.float32)))  # [K, H, W]; numpy: no MetaTensor cost
        parts = {"img": img, "roi": img * m2}
        chans = np.concatenate([parts[p] for p in MODES[mode]])  # [len(mode) * K, H, W], slices as channels
        out = np.asarray(spatial(chans), dtype=np.float32)
        arrays[s] = np.ascontiguousarray(out.reshape(len(MODES[mode]), n, size, size).transpose(1, 0, 2, 3))
    areas = m2.reshape(len(slices), -1).sum(1)
    return SliceInputs(case.patient_id, slices, areas, arrays, box, mode)


def merge_in(inputs: dict[str, torch.Tensor], sequences: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Merge-IN: channel concatenation of the sequences' inputs."""
    return torch.cat([inputs[s] for s in sequences], dim=1)
