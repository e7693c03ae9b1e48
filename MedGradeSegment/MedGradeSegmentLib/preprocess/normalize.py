"""Z-score normalisation inside the brain mask, per sequence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk


def zscore(image: sitk.Image, brain: sitk.Image, clip_percentiles: Sequence[float] = (0.5, 99.5),
           clip_z: float = 5.0, keep: sitk.Image | None = None) -> tuple[sitk.Image, dict[str, float]]:
    """``(image - mean) / std`` over the brain after clipping intensities to the brain's percentiles.

    Voxels outside ``keep`` (default: the brain) become 0; z is clipped to ``[-clip_z, clip_z]``. Returns the image and the
    statistics used (``mean``, ``std``, clip bounds, ``max_abs_z`` before clipping z).
    """
    image = sitk.Cast(image, sitk.sitkFloat32)
    brain = sitk.Cast(brain > 0, sitk.sitkUInt8)
    values = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(brain) > 0]
    if values.size == 0:
        raise ValueError("empty brain mask: nothing to normalise")
    lo, hi = (float(v) for v in np.percentile(values, list(clip_percentiles)))
    clipped = sitk.Clamp(image, sitk.sitkFloat32, lo, hi)
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(clipped, brain)
    mean, std = stats.GetMean(1), stats.GetSigma(1)
    std = std if std > 1e-6 else 1.0
    raw_z = (float(values.max()) - mean) / std, (float(values.min()) - mean) / std
    z = sitk.Clamp((clipped - mean) / std, sitk.sitkFloat32, -clip_z, clip_z)
    z = sitk.Mask(z, sitk.Cast(keep > 0, sitk.sitkUInt8) if keep is not None else brain, 0.0)
    return z, {"mean": mean, "std": std, "clip_low": lo, "clip_high": hi,
               "max_abs_z": float(max(abs(raw_z[0]), abs(raw_z[1])))}
