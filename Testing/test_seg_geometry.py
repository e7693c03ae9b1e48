"""Brain-centred field of view (same place in the network input whatever the scanner's field of view)
and carrying a label between two spaces of one patient."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedGradeSegmentLib.segmentation.carry_label import carry_label, overlap_dice
from MedGradeSegmentLib.segmentation.fpg import location_prior_2d
from MedGradeSegmentLib.segmentation.geometry import brain_centre, on_grid, working_grid

BRATS = "glioma-native/TCGA-FG-6692/brats-space/"


def _t1c(sample) -> sitk.Image:
    return sitk.ReadImage(str(sample(BRATS + "t1c_bet.nii.gz")), sitk.sitkFloat32)


def test_fov_is_fixed_size_and_brain_centred(sample):
    img = _t1c(sample)
    grid = working_grid(img, 2.0, fov_mm=256.0)
    assert grid.GetSize()[:2] == (128, 128) and grid.GetSize()[2] == img.GetSize()[2]
    centre = grid.TransformContinuousIndexToPhysicalPoint((63.5, 63.5, 0.0))
    assert np.allclose(centre[:2], brain_centre(img)[:2], atol=1e-3)
    # the same brain in a larger, shifted field of view gives the same slices
    padded = sitk.ConstantPad(img, [40, 10, 0], [5, 60, 0], 0.0)
    a, b = on_grid(img, grid), on_grid(padded, working_grid(padded, 2.0, fov_mm=256.0))
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-3)
    # without a field of view the grid still covers the reference's extent
    assert working_grid(img, 2.0).GetSize()[:2] == (120, 120)


def test_brain_mask_sets_the_centre(sample):
    img = _t1c(sample)
    mask = sitk.Image(img.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(img)
    mask[20:60, 30:90, 50:60] = 1
    c = brain_centre(img, mask)
    assert np.allclose(c, img.TransformContinuousIndexToPhysicalPoint((39.5, 59.5, 54.5)), atol=1e-6)


def test_location_prior_uses_the_same_field_of_view(sample):
    template = _t1c(sample)
    atlas = sitk.Cast(template > 0, sitk.sitkFloat32) * 0.0
    atlas[100:120, 60:80, 70:90] = 1.0  # a lesion blob (index x, y, z)
    prior = location_prior_2d(atlas, 128, fov_mm=256.0, template=template, inplane_spacing=2.0)
    # expected by hand, not with the product's grid helpers: the field of view is 128 px of 2 mm centred on
    # the bounding box of the template's brain; this template is 1 mm, axis-aligned (index = mm)
    assert template.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert template.GetSpacing() == (1.0, 1.0, 1.0)
    ys, xs = np.nonzero((sitk.GetArrayFromImage(template) != 0).any(axis=0))
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    px, py = cx + 2 * (np.arange(128) - 63.5), cy + 2 * (np.arange(128) - 63.5)  # template index of each pixel
    assert np.allclose(px, np.round(px)) and np.allclose(py, np.round(py))  # on voxel centres: no partial values
    expected = (((py >= 60) & (py <= 79))[:, None] & ((px >= 100) & (px <= 119))[None, :]).astype(float)
    assert expected.sum() == 100  # the 20 x 20 mm blob is 10 x 10 pixels
    assert prior.shape == (128, 128) and np.allclose(prior, expected, atol=1e-4)


def test_carry_label_between_spaces(sample):
    src = sitk.Shrink(_t1c(sample), [2, 2, 2])
    lab = sitk.Shrink(sitk.ReadImage(str(sample(BRATS + "seg_model_fusion.nii.gz"))), [2, 2, 2])
    move = sitk.Euler3DTransform(src.TransformContinuousIndexToPhysicalPoint([s / 2 for s in src.GetSize()]),
                                 0.0, 0.0, 0.15, (12.0, -8.0, 5.0))
    target = sitk.Resample(src, src, move, sitk.sitkLinear, 0.0)  # the same head, moved
    truth = sitk.Resample(lab, src, move, sitk.sitkNearestNeighbor, 0)
    carried = carry_label(src, lab, target, affine=False, shrink=(2, 1))
    assert carried.brain_dice > 0.9
    assert overlap_dice(carried.label > 0, truth > 0) > 0.75
    assert carried.label.GetSize() == target.GetSize()
