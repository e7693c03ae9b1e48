"""The common output grid (isotropic, covering the reference) and resampling onto it."""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
import SimpleITK as sitk


def reference_grid(reference: sitk.Image, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> sitk.Image:
    """An empty uint8 image with ``spacing`` and the reference's direction covering its whole field of view."""
    in_spacing = np.array(reference.GetSpacing())
    out_spacing = np.array(spacing, dtype=float)
    extent = np.array(reference.GetSize()) * in_spacing
    size = [max(1, int(math.ceil(e / s - 1e-6))) for e, s in zip(extent, out_spacing)]
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    corner = np.array(reference.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    origin = corner + direction @ (out_spacing / 2.0)
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(tuple(out_spacing))
    grid.SetOrigin(tuple(origin))
    grid.SetDirection(reference.GetDirection())
    return grid


def resample_image(image: sitk.Image, grid: sitk.Image, transform: sitk.Transform | None = None,
                   interpolator: int = sitk.sitkLinear) -> sitk.Image:
    """``image`` resampled onto ``grid`` as float32 (``transform`` maps grid points to image points)."""
    return sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), grid, transform or sitk.Transform(),
                         interpolator, 0.0, sitk.sitkFloat32)


def resample_mask(mask: sitk.Image, grid: sitk.Image, transform: sitk.Transform | None = None) -> sitk.Image:
    """Binary uint8 ``mask`` on ``grid``: linear interpolation of the 0/1 mask, threshold at 0.5."""
    soft = resample_image(sitk.Cast(mask > 0, sitk.sitkFloat32), grid, transform, sitk.sitkLinear)
    return sitk.Cast(soft >= 0.5, sitk.sitkUInt8)


def footprint_overlap(image: sitk.Image, grid_mask: sitk.Image, transform: sitk.Transform | None = None) -> float:
    """Fraction of ``grid_mask``'s voxels that fall inside ``image``'s field of view (0 when the mask is empty)."""
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    inside = sitk.Resample(ones, grid_mask, transform or sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                           sitk.sitkUInt8)
    m = sitk.GetArrayViewFromImage(grid_mask) > 0
    total = int(m.sum())
    return float((sitk.GetArrayViewFromImage(inside)[m] > 0).sum() / total) if total else 0.0
