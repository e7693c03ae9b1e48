"""Slice geometry shared by training and inference: the working grid (slicing orientation, in-plane
spacing) and, optionally, a brain-centred field of view of fixed physical size, so a pixel of the
network input means the same place relative to the brain whatever the scanner's field of view."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

ORIENTATION = "LPS"  # every 2D slice is taken from a volume in this orientation
FOV_CENTRE = "bounding box of the brain mask (non-zero voxels of the reference when there is no mask)"


def brain_centre(reference: sitk.Image, brain_mask: sitk.Image | None = None) -> tuple[float, float, float]:
    """Physical centre of the brain's bounding box: the brain mask's, else the reference's non-zero
    voxels; the image centre when both are empty."""
    region = brain_mask if brain_mask is not None else reference
    binary = sitk.Cast(region != 0, sitk.sitkUInt8)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(binary)
    if 1 in stats.GetLabels():
        box = stats.GetBoundingBox(1)
        idx = [box[i] + (box[i + 3] - 1) / 2.0 for i in range(3)]
    else:
        idx = [(n - 1) / 2.0 for n in region.GetSize()]
    return tuple(region.TransformContinuousIndexToPhysicalPoint(idx))


def working_grid(reference: sitk.Image, inplane_spacing: float | None = 1.0, fov_mm: float | None = None,
                 brain_mask: sitk.Image | None = None) -> sitk.Image:
    """An empty image in the slicing orientation with ``inplane_spacing`` mm in x/y (z kept).

    Without ``fov_mm`` the grid covers the reference's field of view. With it, x/y are cropped/padded
    to ``fov_mm`` x ``fov_mm`` mm centred on :func:`brain_centre` (z still covers the reference).
    """
    oriented = sitk.DICOMOrient(reference, ORIENTATION)
    sp = oriented.GetSpacing()
    new_sp = (sp[0], sp[1], sp[2]) if inplane_spacing is None else (inplane_spacing, inplane_spacing, sp[2])
    size = [max(1, int(round(oriented.GetSize()[i] * sp[i] / new_sp[i]))) for i in range(3)]
    # keep the field of view centred: shift the origin by half the difference of the extents
    offset = [((oriented.GetSize()[i] - 1) * sp[i] - (size[i] - 1) * new_sp[i]) / 2 for i in range(3)]
    direction = np.array(oriented.GetDirection()).reshape(3, 3)
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing(new_sp)
    grid.SetDirection(oriented.GetDirection())
    grid.SetOrigin(tuple(np.array(oriented.GetOrigin()) + direction @ np.array(offset)))
    if fov_mm is None:
        return grid
    centre = grid.TransformPhysicalPointToContinuousIndex(brain_centre(reference, brain_mask))
    n = [max(1, int(round(fov_mm / new_sp[i]))) for i in range(2)]
    origin = grid.TransformContinuousIndexToPhysicalPoint(
        (centre[0] - (n[0] - 1) / 2.0, centre[1] - (n[1] - 1) / 2.0, 0.0))
    fov = sitk.Image([n[0], n[1], size[2]], sitk.sitkUInt8)
    fov.SetSpacing(new_sp)
    fov.SetDirection(oriented.GetDirection())
    fov.SetOrigin(origin)
    return fov


def on_grid(image: sitk.Image, grid: sitk.Image, label: bool = False) -> np.ndarray:
    """``image`` resampled onto ``grid`` (identity transform), as a (z, y, x) array."""
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(image, grid, sitk.Transform(), interp, 0.0,
                        sitk.sitkUInt8 if label else sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def zscore(volume: np.ndarray, brain: np.ndarray | None = None) -> np.ndarray:
    """Z-score inside the brain (non-zero voxels when no mask is given); zero outside."""
    inside = brain if brain is not None else volume != 0
    if not inside.any():
        return np.zeros_like(volume, dtype=np.float32)
    v = volume[inside]
    out = (volume - v.mean()) / max(float(v.std()), 1e-6)
    return np.where(inside, out, 0.0).astype(np.float32)
