"""Masks <-> ``vtkMRMLSegmentationNode`` with MedGrade's standard terminology entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicer
from vtk.util import numpy_support

from MedGradeCoreLib.scene.geometry import check_3d_scalar, ijk_to_ras, vtk_matrix
from MedGradeCoreLib.scene.terminology import terminology_entry


def oriented_image(image: sitk.Image, voxels: np.ndarray | None = None, geometry_only: bool = False) -> Any:
    """A ``vtkOrientedImageData`` with ``image``'s geometry (RAS) and voxels (default: its own)."""
    out = slicer.vtkOrientedImageData()
    out.SetDimensions(image.GetSize())
    out.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras(image)))
    if not geometry_only:
        array = np.ascontiguousarray(sitk.GetArrayFromImage(image) if voxels is None else voxels)
        if array.shape != tuple(reversed(image.GetSize())):
            raise ValueError(f"voxel array shape {array.shape} does not match the image size {image.GetSize()}")
        out.GetPointData().SetScalars(numpy_support.numpy_to_vtk(array.ravel(), deep=True))
    return out


def mask_to_segmentation_node(
    scene: Any,
    mask: sitk.Image,
    name: str,
    segments: Mapping[int, str] | None = None,
    reference_node: Any | None = None,
    node: Any | None = None,
) -> Any:
    """Add a segmentation node with one segment per label of ``mask``.

    ``segments`` maps label value -> MedGrade segment kind (``"neoplasm"``, ``"brain"`` ...);
    default ``{1: "neoplasm"}``, and then any non-zero voxel counts. Each segment gets the kind's
    terminology entry, name and colour; other label values are ignored, an empty label gives an
    empty segment. The reference geometry is ``reference_node``'s when given,
    else the mask's own grid.
    """
    check_3d_scalar(mask, name)
    labels = sitk.GetArrayFromImage(mask)
    if segments is None:
        segments = {1: "neoplasm"}
        labels = (labels != 0).astype(np.uint8)
    entries = {value: terminology_entry(kind) for value, kind in segments.items()}  # fail before adding
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        node.CreateDefaultDisplayNodes()
    if reference_node is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    else:
        geometry = slicer.vtkSegmentationConverter.SerializeImageGeometry(oriented_image(mask, geometry_only=True))
        node.GetSegmentation().SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry
        )
    segmentation = node.GetSegmentation()
    for value, entry in entries.items():
        binary = oriented_image(mask, (labels == value).astype(np.uint8))
        segment_id = node.AddSegmentFromBinaryLabelmapRepresentation(binary, entry.name, entry.color)
        segment = segmentation.GetSegment(segment_id)  # the tag API: SetTerminology() only exists from Slicer 5.10
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), entry.serialized)
    return node


def segment_ids(node: Any) -> list[str]:
    """Segment ids of a segmentation node, in order."""
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


def segmentation_node_to_mask(
    node: Any,
    reference: sitk.Image,
    segment_ids_: list[str] | None = None,
) -> sitk.Image:
    """A uint8 0/1 mask of the union of segments (default: all) on ``reference``'s grid.

    Nearest-neighbour resampling when the segment's grid differs; the node's parent transform is
    not applied.
    """
    ids = segment_ids(node) if segment_ids_ is None else segment_ids_
    size = reference.GetSize()
    union = np.zeros(size[::-1], dtype=np.uint8)
    geometry = oriented_image(reference, union)
    segmentation = node.GetSegmentation()
    for segment_id in ids:
        segment = segmentation.GetSegment(segment_id)
        if segment is None:
            raise KeyError(f"no segment {segment_id!r} in {node.GetName()}")
        labelmap = slicer.vtkOrientedImageData()
        node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
        resampled = slicer.vtkOrientedImageData()
        ok = slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            labelmap, geometry, resampled, False, False
        )
        if not ok:
            raise RuntimeError(f"could not resample segment {segment_id!r} of {node.GetName()}")
        # Resampling keeps the reference's full extent (padImage=False).
        scalars = resampled.GetPointData().GetScalars()
        if scalars is None:
            continue
        values = numpy_support.vtk_to_numpy(scalars).reshape(union.shape)
        union |= (values != 0).astype(np.uint8)
    out = sitk.GetImageFromArray(union)
    out.CopyInformation(reference)
    return out
