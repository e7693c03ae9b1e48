"""SimpleITK image <-> volume node: exact round trips on real images, LPS <-> RAS."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scene_helpers import assert_same_image, rotated_copy

from MedGradeCoreLib.scene.geometry import LPS_TO_RAS, ijk_to_lps, numpy_matrix
from MedGradeCoreLib.scene.volumes import match_grid, sitk_to_volume_node, volume_node_to_sitk

REAL = ["brain-mr/brain1_image.nrrd", "glioma-native/TCGA-FG-6692/t1c.nii.gz"]


def _ijk_to_ras(node) -> np.ndarray:
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    m = vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return numpy_matrix(m)


@pytest.mark.parametrize("relative", REAL)
@pytest.mark.parametrize("oblique", [False, True])
def test_real_image_round_trip_is_exact(slicer_app, sample, relative, oblique):
    image = sitk.ReadImage(str(sample(relative)))
    if oblique:
        image = rotated_copy(image)
    node = sitk_to_volume_node(slicer_app.scene, image, "vol")
    assert node.GetClassName() == "vtkMRMLScalarVolumeNode"
    assert node.GetDisplayNode() is not None
    assert_same_image(volume_node_to_sitk(node), image)
    # The node's IJK->RAS matrix is the LPS geometry with x and y negated.
    np.testing.assert_allclose(_ijk_to_ras(node), LPS_TO_RAS @ ijk_to_lps(image), atol=1e-9)


def test_ras_of_a_voxel_matches_sitk_physical_point(slicer_app, sample):
    image = rotated_copy(sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz"))))
    node = sitk_to_volume_node(slicer_app.scene, image, "vol")
    index = (17, 201, 9)
    lps = np.array(image.TransformIndexToPhysicalPoint(index))
    ras = _ijk_to_ras(node) @ np.array([*index, 1.0])
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-6)


@pytest.mark.parametrize(
    "pixel", [sitk.sitkUInt8, sitk.sitkInt8, sitk.sitkUInt16, sitk.sitkInt32, sitk.sitkFloat32, sitk.sitkFloat64]
)
def test_pixel_types_survive(slicer_app, sample, pixel):
    image = sitk.Cast(sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))[:, :, 10:13], sitk.sitkFloat64)
    image = sitk.Cast(sitk.Clamp(image, lowerBound=0, upperBound=100) * 0.5 if pixel != sitk.sitkFloat64 else image, pixel)
    node = sitk_to_volume_node(slicer_app.scene, image, "typed")
    assert_same_image(volume_node_to_sitk(node), image)


def test_labelmap_and_int64_narrowing(slicer_app, sample):
    label = sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd")))
    wide = sitk.Cast(label, sitk.sitkInt64)
    node = sitk_to_volume_node(slicer_app.scene, wide, "label", labelmap=True)
    assert node.GetClassName() == "vtkMRMLLabelMapVolumeNode"
    back = volume_node_to_sitk(node)
    assert back.GetPixelID() == sitk.sitkInt32
    assert_same_image(back, sitk.Cast(label, sitk.sitkInt32))
    huge = sitk.Cast(label, sitk.sitkInt64) * (2**40)
    with pytest.raises(ValueError, match="int32"):
        sitk_to_volume_node(slicer_app.scene, huge, "huge")


def test_update_existing_node_and_refuse_2d(slicer_app, sample):
    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    node = sitk_to_volume_node(slicer_app.scene, image, "vol")
    smaller = image[::2, ::2, :]
    same = sitk_to_volume_node(slicer_app.scene, smaller, "vol", node=node)
    assert same is node
    assert_same_image(volume_node_to_sitk(node), smaller)
    with pytest.raises(ValueError, match="3D"):
        sitk_to_volume_node(slicer_app.scene, image[:, :, 0], "flat")


def test_match_grid_undoes_a_slice_reversal_exactly(sample):
    image = rotated_copy(sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz"))))
    reversed_ = sitk.Flip(image, [False, False, True])
    assert not np.array_equal(sitk.GetArrayFromImage(reversed_), sitk.GetArrayFromImage(image))
    assert_same_image(match_grid(reversed_, image), image)
    with pytest.raises(ValueError, match="grids differ"):
        match_grid(image[1:, :, :], image)
