"""Axial slice sampling: K equally spaced slices over the lesion's (or the brain's) extent."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def axial_extent(mask: sitk.Image) -> tuple[int, int] | None:
    """First and last axial (k) index holding a mask voxel, or None for an empty mask."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    if not stats.HasLabel(1):
        return None
    box = stats.GetBoundingBox(1)  # (x, y, z, size_x, size_y, size_z)
    return int(box[2]), int(box[2] + box[5] - 1)


def sample_slices(mask: sitk.Image, k: int = 20) -> list[int]:
    """K equally spaced axial indices from the first to the last slice of ``mask`` (duplicates dropped
    when the extent is shorter than K slices); empty list for an empty mask."""
    extent = axial_extent(mask)
    if extent is None:
        return []
    first, last = extent
    picks = np.rint(np.linspace(first, last, k)).astype(int) if k > 1 else [int(round((first + last) / 2))]
    return sorted({int(i) for i in picks})
