"""Shared helpers for the scene-layer tests (real images, geometry checks)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def rotated_copy(image: sitk.Image, angles=(0.35, -0.2, 0.6), flip_x: bool = True) -> sitk.Image:
    """The same voxels with an oblique (rotated, optionally x-flipped) direction and a new origin."""
    rotation = sitk.Euler3DTransform((0, 0, 0), *angles)
    r = np.array(rotation.GetMatrix()).reshape(3, 3)
    if flip_x:
        r = r @ np.diag([-1.0, 1.0, 1.0])
    direction = r @ np.array(image.GetDirection()).reshape(3, 3)
    out = sitk.Image(image)
    out.SetDirection(tuple(direction.ravel()))
    out.SetOrigin((12.5, -30.25, 7.125))
    return out


def assert_same_image(a: sitk.Image, b: sitk.Image, tol: float = 1e-6) -> None:
    """Identical voxels and dtype; origin, spacing and direction equal within ``tol``."""
    assert a.GetSize() == b.GetSize()
    assert a.GetPixelID() == b.GetPixelID(), (a.GetPixelIDTypeAsString(), b.GetPixelIDTypeAsString())
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)
