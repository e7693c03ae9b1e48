"""Orientation to a common frame (DICOM LPS) and float conversion."""

from __future__ import annotations

import SimpleITK as sitk


def orient(image: sitk.Image, code: str | None = "LPS") -> sitk.Image:
    """Re-index ``image`` so its axes run along ``code`` (e.g. ``"LPS"``); physical geometry is unchanged."""
    if not code:
        return image
    return sitk.DICOMOrient(image, code)


def to_float(image: sitk.Image) -> sitk.Image:
    """Scalar float32 copy (vector images are refused upstream by the readers)."""
    return sitk.Cast(image, sitk.sitkFloat32) if image.GetPixelID() != sitk.sitkFloat32 else image
