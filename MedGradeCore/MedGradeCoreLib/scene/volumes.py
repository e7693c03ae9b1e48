"""SimpleITK image <-> scalar / label-map volume node, exact in geometry and pixel type.

SimpleITK works in LPS, Slicer in RAS: origin and direction rows x and y change sign; spacing and
voxel values are copied unchanged (same numpy dtype in both directions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.scene.geometry import LPS_TO_RAS, check_3d_scalar, vtk_matrix

_FLIP = LPS_TO_RAS[:3, :3]


def _voxels(image: sitk.Image) -> np.ndarray:
    """Voxel array (k, j, i) in a dtype VTK volumes accept; 64-bit ints narrowed only when lossless."""
    array = sitk.GetArrayFromImage(image)
    if array.dtype in (np.int64, np.uint64):
        # VTK_LONG_LONG volumes are refused by slicer.util (they do not render).
        info = np.iinfo(np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError("64-bit integer image with values outside the int32 range")
        array = array.astype(np.int32)
    return array


def set_geometry(node: Any, image: sitk.Image) -> None:
    """Copy origin, spacing and direction of ``image`` (LPS) onto a volume node (RAS)."""
    direction_lps = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    direction_ras = _FLIP @ direction_lps
    node.SetSpacing(*image.GetSpacing())
    node.SetOrigin(*(_FLIP @ np.array(image.GetOrigin(), dtype=float)))
    m = np.eye(4)
    m[:3, :3] = direction_ras
    node.SetIJKToRASDirectionMatrix(vtk_matrix(m))


def sitk_to_volume_node(
    scene: Any,
    image: sitk.Image,
    name: str,
    labelmap: bool = False,
    node: Any | None = None,
) -> Any:
    """Add (or update ``node``) a ``vtkMRMLScalarVolumeNode`` / ``vtkMRMLLabelMapVolumeNode``.

    Voxels are deep-copied; display nodes are created. Returns the node.
    """
    import slicer

    check_3d_scalar(image, name)
    voxels = _voxels(image)
    if node is None:
        cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(cls, name)
    slicer.util.updateVolumeFromArray(node, voxels)
    set_geometry(node, image)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def volume_node_to_sitk(node: Any) -> sitk.Image:
    """A scalar volume node's voxels and geometry as a SimpleITK image (LPS), copied.

    The geometry is the node's own (its parent transform, if any, is not applied).
    """
    import slicer
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    if node is None or node.GetImageData() is None:
        raise ValueError("volume node has no image data")
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    image = sitk.GetImageFromArray(array)
    directions = vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(directions)
    direction_ras = np.array([[directions.GetElement(r, c) for c in range(3)] for r in range(3)])
    image.SetSpacing(tuple(float(s) for s in node.GetSpacing()))
    image.SetOrigin(tuple(float(v) for v in _FLIP @ np.array(node.GetOrigin(), dtype=float)))
    image.SetDirection(tuple(float(v) for v in (_FLIP @ direction_ras).ravel()))
    return image


def match_grid(image: sitk.Image, reference: sitk.Image, tolerance: float = 1e-4) -> sitk.Image:
    """``image`` with its axes permuted/flipped (voxels moved, not interpolated) onto ``reference``'s grid.

    Needed for nodes that Slicer's file reader loaded: it may store the slices in reverse order (a
    flipped K axis) with the same physical geometry. Raises ``ValueError`` when the grids differ
    other than by axis order or direction.
    """
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(reference.GetDirection())
    out = sitk.DICOMOrient(image, orientation)
    same = (
        out.GetSize() == reference.GetSize()
        and np.allclose(out.GetOrigin(), reference.GetOrigin(), atol=tolerance)
        and np.allclose(out.GetSpacing(), reference.GetSpacing(), atol=tolerance)
        and np.allclose(out.GetDirection(), reference.GetDirection(), atol=tolerance)
    )
    if not same:
        raise ValueError("image and reference grids differ beyond axis order")
    out.CopyInformation(reference)
    return out
