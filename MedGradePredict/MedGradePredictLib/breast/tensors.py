"""Network inputs of one breast image: the lesion's neighbourhood cropped, resized and stacked with the
lesion-restricted image (the MIX idea of the glioma thesis: image + image inside the ROI).

2D (MG/US): a square box around the ROI (``margin`` of its size on each side, at least 8 pixels)
resized to ``size`` x ``size``; intensities scaled by the crop's 1st/99th percentiles. MRI: the same in
3D per phase (phases are channels, in the model's phase order). Without an ROI the whole image is used.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from torch.nn import functional as F

from MedGradeCoreLib.errors import InputError

from .case import BreastImage


def _box(roi: np.ndarray | None, shape: Sequence[int], margin: float, square: bool) -> tuple[slice, ...]:
    if roi is None or not roi.any():
        return tuple(slice(0, s) for s in shape)
    idx = np.nonzero(roi)
    out = []
    lo = np.array([i.min() for i in idx], float)
    hi = np.array([i.max() + 1 for i in idx], float)
    ext = hi - lo
    if square:  # in-plane square (the last two axes)
        side = ext[-2:].max()
        centre = (lo[-2:] + hi[-2:]) / 2
        lo[-2:], hi[-2:] = centre - side / 2, centre + side / 2
        ext = hi - lo
    pad = np.maximum(ext * margin, 8.0)
    pad[: len(shape) - 2] = np.maximum(ext[: len(shape) - 2] * margin, 1.0)
    for a, b, p, s in zip(lo, hi, pad, shape):
        out.append(slice(int(max(0, np.floor(a - p))), int(min(s, np.ceil(b + p)))))
    return tuple(out)


def _scale(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [1, 99])
    return (np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x)).astype(np.float32)


def crop_box_2d(image: BreastImage, margin: float = 0.25) -> tuple[slice, slice]:
    """(rows, columns) of the network's crop of a 2D image."""
    roi = image.roi_array()
    shape = sitk.GetArrayViewFromImage(image.image).shape[1:]
    return _box(None if roi is None else roi[0], shape, margin, True)  # type: ignore[return-value]


def image_2d_input(image: BreastImage, size: int = 64, margin: float = 0.25) -> torch.Tensor:
    """(2, size, size): scaled crop and the crop inside the ROI."""
    arr = sitk.GetArrayViewFromImage(image.image)[0].astype(np.float32)
    roi = image.roi_array()
    roi = None if roi is None else roi[0]
    box = crop_box_2d(image, margin)
    crop = _scale(arr[box])
    m = np.ones_like(crop) if roi is None else roi[box].astype(np.float32)
    x = torch.from_numpy(np.stack([crop, crop * m]))[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def crop_box_3d(images: dict[str, BreastImage], phases: Sequence[str], margin: float = 0.25) -> tuple[slice, ...]:
    """(z, y, x) slices of the network's MRI crop (the ROI of the first phase that has one)."""
    ref = images[phases[0]]
    roi_img = next((images[p] for p in phases if images[p].roi is not None), ref)
    return _box(roi_img.roi_array(), sitk.GetArrayViewFromImage(ref.image).shape, margin, True)


def mri_input(images: dict[str, BreastImage], phases: Sequence[str], size: Sequence[int] = (16, 48, 48),
              margin: float = 0.25) -> torch.Tensor:
    """(2 * phases, D, H, W): per phase the scaled crop and the crop inside the ROI (the first phase's
    ROI when a phase has none); every phase must be on the same grid."""
    missing = [p for p in phases if p not in images]
    if missing:
        raise InputError(None, f"MRI phase(s) {', '.join(missing)} missing; the model needs {', '.join(phases)}")
    ref = images[phases[0]]
    roi_img = next((images[p] for p in phases if images[p].roi is not None), ref)
    roi = roi_img.roi_array()
    chans = []
    box = None
    for p in phases:
        arr = sitk.GetArrayViewFromImage(images[p].image).astype(np.float32)
        if arr.shape != sitk.GetArrayViewFromImage(ref.image).shape:
            raise InputError(images[p].source, f"phase {p} is not on the grid of phase {phases[0]}")
        box = box or _box(roi, arr.shape, margin, True)
        crop = _scale(arr[box])
        m = np.ones_like(crop) if roi is None else roi[box].astype(np.float32)
        chans += [crop, crop * m]
    x = torch.from_numpy(np.stack(chans))[None]
    return F.interpolate(x, size=tuple(size), mode="trilinear", align_corners=False)[0]
