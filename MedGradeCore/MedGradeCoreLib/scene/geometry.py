"""LPS (ITK/SimpleITK) <-> RAS (Slicer) geometry helpers shared by the scene modules."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

# Diagonal flip between LPS and RAS (homogeneous 4x4); it is its own inverse.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ijk_to_lps(image: sitk.Image) -> np.ndarray:
    """4x4 index -> LPS physical matrix of a 3D SimpleITK image."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    m = np.eye(4)
    m[:3, :3] = direction @ np.diag(image.GetSpacing())
    m[:3, 3] = image.GetOrigin()
    return m


def ijk_to_ras(image: sitk.Image) -> np.ndarray:
    """4x4 index -> RAS matrix (what ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` holds)."""
    return LPS_TO_RAS @ ijk_to_lps(image)


def vtk_matrix(array: np.ndarray):
    """numpy 4x4 -> ``vtkMatrix4x4``."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(array[r, c]))
    return m


def numpy_matrix(matrix) -> np.ndarray:
    """``vtkMatrix4x4`` -> numpy 4x4."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def check_3d_scalar(image: sitk.Image, what: str = "image") -> None:
    """Raise ``ValueError`` unless ``image`` is a 3D single-component image."""
    if image.GetDimension() != 3:
        raise ValueError(f"{what} must be 3D, got {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{what} must have one component per voxel")
