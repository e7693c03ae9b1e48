"""Masks <-> segmentation nodes: voxel-exact round trip, terminology, colour, study placement."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from scene_helpers import rotated_copy

from MedGradeCoreLib.scene.hierarchy import ensure_patient_study, place_under, place_with, sh_node, study_item_of
from MedGradeCoreLib.scene.segmentations import mask_to_segmentation_node, segmentation_node_to_mask
from MedGradeCoreLib.scene.terminology import context_name, terminology_entry
from MedGradeCoreLib.scene.volumes import sitk_to_volume_node


@pytest.fixture(scope="module")
def brain1(sample):
    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    label = sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd")))
    return image, label


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


@pytest.mark.parametrize("oblique", [False, True])
def test_mask_round_trip_under_the_source_study(slicer_app, brain1, oblique):
    image, label = brain1
    if oblique:
        image, label = rotated_copy(image), rotated_copy(label)
    scene = slicer_app.scene
    volume = sitk_to_volume_node(scene, image, "brain1")
    study = ensure_patient_study(scene, "TCGA-02-0003", "MR study")
    place_under(scene, volume, study)

    seg = mask_to_segmentation_node(scene, label, "lesion", reference_node=volume)
    place_with(scene, seg, volume)

    back = segmentation_node_to_mask(seg, image)
    assert back.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(_array(back), (_array(label) > 0).astype(np.uint8))
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection())
    assert study_item_of(scene, seg) == study
    sh = sh_node(scene)
    assert sh.GetItemName(sh.GetItemParent(study)) == "TCGA-02-0003"


def test_segment_has_a_resolvable_neoplasm_entry_and_colour(slicer_app, brain1):
    image, label = brain1
    seg = mask_to_segmentation_node(slicer_app.scene, label, "lesion")
    segment = seg.GetSegmentation().GetNthSegment(0)
    expected = terminology_entry("neoplasm")
    assert segment.GetName() == "Neoplasm"
    assert segment.GetTerminology() == expected.serialized
    np.testing.assert_allclose(segment.GetColor(), expected.color)

    logic = slicer_app.logics["Terminologies"]
    entry = slicer.vtkSlicerTerminologyEntry()
    assert logic.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
    assert logic.UpdateEntryFromLoadedTerminologies(entry, [context_name()], [])
    assert entry.GetTerminologyContextName() == context_name()
    assert (entry.GetCategoryObject().GetCodeValue(), entry.GetCategoryObject().GetCodeMeaning()) == (
        "49755003",
        "Morphologically Altered Structure",
    )
    assert (entry.GetTypeObject().GetCodingSchemeDesignator(), entry.GetTypeObject().GetCodeValue()) == ("SCT", "108369006")
    rgb = np.array(entry.GetTypeObject().GetRecommendedDisplayRGBValue()) / 255.0
    np.testing.assert_allclose(rgb, expected.color)
    # The loaded file is found by the logic's own lookup too.
    found = slicer.vtkSlicerTerminologyEntry()
    assert logic.FindTypeInTerminologyBy3dSlicerLabel(context_name(), "brain", found)
    assert found.GetTypeObject().GetCodeValue() == "12738006"


def test_label_map_to_several_segments(slicer_app, brain1):
    image, label = brain1
    labels = _array(label).astype(np.uint8)
    ring = sitk.BinaryDilate(label, [3, 3, 1]) - label
    labels[_array(ring) > 0] = 2
    multi = sitk.GetImageFromArray(labels)
    multi.CopyInformation(label)
    seg = mask_to_segmentation_node(slicer_app.scene, multi, "lesion", {1: "neoplasm", 2: "edema"})
    segmentation = seg.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
    assert [segmentation.GetSegment(i).GetName() for i in ids] == ["Neoplasm", "Edema"]
    np.testing.assert_array_equal(_array(segmentation_node_to_mask(seg, image, ids[1:])), labels == 2)
    np.testing.assert_array_equal(_array(segmentation_node_to_mask(seg, image)), labels > 0)


def test_mask_on_another_grid_is_resampled_nearest(slicer_app, brain1):
    image, label = brain1
    seg = mask_to_segmentation_node(slicer_app.scene, label, "lesion")
    coarse = image[::2, ::2, :]
    expected = sitk.Resample(sitk.Cast(label > 0, sitk.sitkUInt8), coarse, sitk.Transform(), sitk.sitkNearestNeighbor)
    np.testing.assert_array_equal(_array(segmentation_node_to_mask(seg, coarse)), _array(expected))


def test_unknown_kind_is_refused_before_adding_nodes(slicer_app, brain1):
    before = slicer_app.scene.GetNumberOfNodes()
    with pytest.raises(KeyError, match="unknown segment kind"):
        mask_to_segmentation_node(slicer_app.scene, brain1[1], "x", {1: "tumour"})
    assert slicer_app.scene.GetNumberOfNodes() == before


def test_empty_mask_gives_an_empty_segment(slicer_app, brain1):
    image, label = brain1
    seg = mask_to_segmentation_node(slicer_app.scene, label * 0, "nothing found")
    assert seg.GetSegmentation().GetNumberOfSegments() == 1
    assert sitk.GetArrayViewFromImage(segmentation_node_to_mask(seg, image)).sum() == 0
