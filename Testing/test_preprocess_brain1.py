"""Skull stripping (fast path) and the whole pipeline on brain-mr/brain1 (post-contrast T1 with skull)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case
from MedGradeSegmentLib.preprocess.slices import axial_extent


@pytest.fixture(scope="module")
def brain1(sample):
    """brain1 through the default pipeline (fast Swiss skull stripping, 1 mm grid), lesion label included."""
    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    label = sitk.Cast(sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd"))) > 0, sitk.sitkUInt8)
    case = Case("brain1", {"t1c": image}, mask=label, sources={"t1c": "brain1_image.nrrd"})
    return image, preprocess_case(case, PreprocessConfig(n_slices=20))


def test_brain_mask_is_one_connected_region(brain1):
    _, result = brain1
    components = sitk.ConnectedComponent(result.brain_mask)
    assert sitk.GetArrayViewFromImage(components).max() == 1


def test_brain_volume_is_plausible_for_the_covered_slab(brain1):
    image, result = brain1
    # The scan covers 25 x 6.5 = 162.5 mm head-to-foot, i.e. the whole cerebrum. The Swiss Skull Stripper's
    # mask is intracranial (brain + CSF, the atlas mask's definition): adult intracranial volume is ~1.2-1.9 l,
    # and the 6.5 mm slices add partial-volume rim. Within the slab it must also fill an intracranial share of
    # the field of view (200 x 200 x 162.5 mm = 6.5 l, mostly air, skull, scalp and neck): 15-33 %.
    slab_ml = float(np.prod(np.array(image.GetSize()) * np.array(image.GetSpacing()))) / 1000.0
    volume = result.quality.brain_volume_ml
    assert 1100.0 < volume < 2100.0, volume
    assert 0.15 < volume / slab_ml < 0.33, (volume, slab_ml)
    # and the mask spans at least 90 mm of the slab axially (a stripped brain, not a fragment)
    first, last = axial_extent(result.brain_mask)
    assert (last - first + 1) * result.brain_mask.GetSpacing()[2] > 90.0


def test_tumour_label_lies_inside_the_brain_mask(brain1):
    _, result = brain1
    lesion = sitk.GetArrayViewFromImage(result.lesion_mask) > 0
    brain = sitk.GetArrayViewFromImage(result.brain_mask) > 0
    assert lesion.sum() > 1000
    assert (lesion & brain).sum() / lesion.sum() >= 0.95


def test_slices_span_the_lesion_and_images_are_zscored(brain1):
    _, result = brain1
    first, last = axial_extent(result.lesion_mask)
    assert result.slices[0] == first and result.slices[-1] == last
    assert len(result.slices) == min(20, last - first + 1)
    assert np.all(np.diff(result.slices) > 0)
    z = sitk.GetArrayViewFromImage(result.images["t1c"])[sitk.GetArrayViewFromImage(result.brain_mask) > 0]
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1.0) < 0.1
    assert result.brain_mask.GetSpacing() == (1.0, 1.0, 1.0)
    assert set(result.quality.seconds) >= {"orient", "brain_mask", "resample", "normalize", "slices"}
