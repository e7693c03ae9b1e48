"""Optional N4 bias-field correction, fitted on a shrunk copy and applied at full resolution."""

from __future__ import annotations

from collections.abc import Sequence

import SimpleITK as sitk

from MedGradeCoreLib.progress import Progress


def n4_correct(image: sitk.Image, mask: sitk.Image | None = None, shrink: int = 4,
               iterations: Sequence[int] = (50, 50, 30), progress: Progress | None = None) -> sitk.Image:
    """N4-corrected float32 image; the log bias field is estimated at ``1/shrink`` resolution."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    if mask is None:
        mask = sitk.OtsuThreshold(image, 0, 1, 200)
    factors = [shrink if n >= 4 * shrink else 1 for n in image.GetSize()]
    small = sitk.Shrink(image, factors)
    small_mask = sitk.Shrink(sitk.Cast(mask, sitk.sitkUInt8), factors)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(i) for i in iterations])
    if progress is not None:
        n4.AddCommand(sitk.sitkIterationEvent, lambda: progress.cancelled and n4.Abort())
    # shift to positive values: N4 works in the log domain
    offset = max(0.0, -float(sitk.GetArrayViewFromImage(small).min())) + 1.0
    n4.Execute(small + offset, small_mask)
    if progress is not None:
        progress.check_cancelled()
    log_field = n4.GetLogBiasFieldAsImage(image)
    return sitk.Cast((image + offset) / sitk.Exp(log_field) - offset, sitk.sitkFloat32)
