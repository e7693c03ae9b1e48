"""SimpleITK linear transforms <-> ``vtkMRMLLinearTransformNode``.

A SimpleITK (ITK) transform maps points of the *fixed* space to the *moving* space (a resampling
transform), in LPS. Slicer stores such a transform as "from parent" in RAS, the same way it loads
``.tfm`` files: ``M_ras = F @ M_lps @ F`` with ``F = diag(-1, -1, 1, 1)``. A moving-space node put
under the transform node is then shown aligned with the fixed space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.scene.geometry import LPS_TO_RAS, numpy_matrix, vtk_matrix


def sitk_transform_matrix(transform: sitk.Transform, tolerance: float = 1e-6) -> np.ndarray:
    """The 4x4 LPS matrix of a linear (or composite of linear) SimpleITK transform.

    Read from the images of the origin and the unit vectors; further points check linearity.
    """
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    m = np.eye(4)
    for axis in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        m[:3, axis] = np.array(transform.TransformPoint(tuple(unit))) - origin
    m[:3, 3] = origin
    for probe in ((0.5, 0.3, 0.7), (37.0, -91.0, 113.0), (-120.0, 80.0, -45.0)):
        expected = m[:3, :3] @ np.array(probe) + m[:3, 3]
        if np.abs(np.array(transform.TransformPoint(probe)) - expected).max() > tolerance:
            raise ValueError(f"{transform.GetName()} is not a linear transform")
    return m


def sitk_transform_to_node(scene: Any, transform: sitk.Transform, name: str, node: Any | None = None) -> Any:
    """Add (or update) a linear transform node holding ``transform`` as its "from parent" matrix."""
    ras = LPS_TO_RAS @ sitk_transform_matrix(transform) @ LPS_TO_RAS
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformFromParent(vtk_matrix(ras))
    return node


def linear_transform_node_to_sitk(node: Any) -> sitk.AffineTransform:
    """The node's "from parent" transform as a SimpleITK affine transform (LPS)."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetMatrixTransformFromParent(matrix)
    lps = LPS_TO_RAS @ numpy_matrix(matrix) @ LPS_TO_RAS
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(tuple(float(v) for v in lps[:3, :3].ravel()))
    affine.SetTranslation(tuple(float(v) for v in lps[:3, 3]))
    return affine
