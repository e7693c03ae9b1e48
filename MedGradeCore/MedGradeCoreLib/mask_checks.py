"""Checks of a lesion mask a person hands in (``predict --mask``, ``save-correction``) or a model produced.

A usable mask is binary, non-empty, on the case's grid (or resampled onto it, with a warning), inside the
brain and smaller than it, and not somewhere else entirely than the case's own lesion. A probability map,
an empty mask, a mask outside the case or larger than the brain is refused; the rest is a warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError

FAR_MM = 20.0  # centroids this far apart with no overlap: probably another patient's (or another grid's) mask


def _same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=max(tol, tol * max(b.GetSpacing())))
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def _centroid_mm(mask: sitk.Image) -> np.ndarray:
    idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0).mean(0)[::-1]
    return np.asarray(mask.TransformContinuousIndexToPhysicalPoint(idx.tolist()))


def empty_mask_error(source: str | Path | None, what: str = "the lesion mask") -> InputError:
    return InputError(source, f"{what} is empty (0 voxels, 0 ml): nothing to grade or compare. Draw or correct "
                              "the lesion (an automatic segmentation may have found none), or give another mask")


def check_lesion_mask(mask: sitk.Image, reference: sitk.Image, source: str | Path | None,
                      brain: sitk.Image | None = None, other: sitk.Image | None = None,
                      other_name: str = "the case's own lesion mask") -> tuple[sitk.Image, list[str]]:
    """(binary uint8 mask on ``reference``'s grid, warnings) or :class:`InputError` naming ``source``."""
    from MedGradeCoreLib.io.images import validate_image

    validate_image(mask, source or "mask")
    warnings: list[str] = []
    arr = sitk.GetArrayViewFromImage(mask)
    if np.issubdtype(arr.dtype, np.floating) and np.any((arr > 0) & (arr < 1)):
        raise InputError(source, "holds values between 0 and 1: a probability map, not a mask; threshold it "
                                 "(e.g. at 0.5) and save the 0/1 mask")
    labels = np.unique(arr[arr != 0])
    if len(labels) > 1:
        shown = ", ".join(f"{v:g}" for v in labels[:6]) + (" ..." if len(labels) > 6 else "")
        warnings.append(f"{Path(str(source)).name}: {len(labels)} labels ({shown}); every non-zero voxel is taken "
                        "as the lesion")
    binary = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    if not _same_grid(binary, reference):
        resampled = sitk.Resample(binary, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        if labels.size and not sitk.GetArrayViewFromImage(resampled).any():
            raise InputError(source, f"does not overlap the case at all (mask {'×'.join(map(str, mask.GetSize()))} "
                                     f"voxels, case {'×'.join(map(str, reference.GetSize()))}): it belongs to "
                                     "another image or patient")
        warnings.append(f"{Path(str(source)).name} is not on the case's grid ({'×'.join(map(str, mask.GetSize()))} "
                        f"vs {'×'.join(map(str, reference.GetSize()))}); resampled onto it (nearest neighbour)")
        binary = resampled
    else:
        binary.CopyInformation(reference)
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(binary)))
    if voxels == 0:
        raise empty_mask_error(source)
    ml = voxels * float(np.prod(binary.GetSpacing())) / 1000.0
    if brain is not None and sitk.GetArrayViewFromImage(brain).any():
        brain_on = sitk.Resample(sitk.Cast(brain > 0, sitk.sitkUInt8), binary, sitk.Transform(),
                                 sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        b = sitk.GetArrayViewFromImage(brain_on) > 0
        m = sitk.GetArrayViewFromImage(binary) > 0
        brain_ml = int(b.sum()) * float(np.prod(binary.GetSpacing())) / 1000.0
        if ml >= brain_ml:
            raise InputError(source, f"the mask ({ml:.0f} ml) is as large as the brain ({brain_ml:.0f} ml) or larger: "
                                     "not a lesion mask (a brain or head mask?)")
        inside = float(np.count_nonzero(m & b)) / voxels
        if inside < 0.5:
            raise InputError(source, f"only {inside:.0%} of the mask lies inside the brain: another patient's "
                                     "mask, or a mask on the wrong grid")
        if ml > 0.3 * brain_ml:
            warnings.append(f"the lesion mask is {ml:.0f} ml, {ml / brain_ml:.0%} of the brain: check it")
    if other is not None and sitk.GetArrayViewFromImage(other).any():
        other_on = sitk.Resample(sitk.Cast(other > 0, sitk.sitkUInt8), binary, sitk.Transform(),
                                 sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        overlap = np.count_nonzero(sitk.GetArrayViewFromImage(other_on) & sitk.GetArrayViewFromImage(binary))
        if other_on is not None and sitk.GetArrayViewFromImage(other_on).any() and overlap == 0:
            gap = float(np.linalg.norm(_centroid_mm(binary) - _centroid_mm(other_on)))
            if gap > FAR_MM:
                warnings.append(f"{Path(str(source)).name} does not overlap {other_name} at all (centres {gap:.0f} mm "
                                "apart): another patient's mask?")
    return binary, warnings
