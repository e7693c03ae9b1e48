"""save_scene writes a .mrml plus data files that a fresh scene reads back."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.headless_app import create_headless_slicer
from MedGradeCoreLib.scene.hierarchy import ensure_patient_study, place_under, sh_node, study_item_of
from MedGradeCoreLib.scene.persistence import load_scene, save_scene
from MedGradeCoreLib.scene.plots import plot_chart
from MedGradeCoreLib.scene.provenance import get_provenance, set_provenance
from MedGradeCoreLib.scene.segmentations import mask_to_segmentation_node, segmentation_node_to_mask
from MedGradeCoreLib.scene.tables import table_from_rows, table_to_rows
from MedGradeCoreLib.scene.transforms import linear_transform_node_to_sitk, sitk_transform_to_node
from MedGradeCoreLib.scene.volumes import match_grid, sitk_to_volume_node, volume_node_to_sitk


def _first(scene, cls: str):
    nodes = scene.GetNodesByClass(cls)
    assert nodes.GetNumberOfItems() >= 1, cls
    return nodes.GetItemAsObject(0)


def test_saved_scene_reloads(slicer_app, sample, tmp_path):
    scene = slicer_app.scene
    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    label = sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd")))
    study = ensure_patient_study(scene, "TCGA-02-0003", "MR")
    volume = sitk_to_volume_node(scene, image, "brain1 t1c")
    set_provenance(volume, "preprocess", {"n4": False})
    seg = mask_to_segmentation_node(scene, label, "brain1 lesion", reference_node=volume)
    transform = sitk_transform_to_node(scene, sitk.Euler3DTransform((0, 0, 0), 0.1, 0.0, 0.2, (3.0, 0.0, -1.0)), "reg")
    table = table_from_rows(scene, [{"task": "grade", "probability": 0.7}], "grades")
    plot_chart(scene, "curve", {"a": ([0, 1], [0.5, 0.25])})
    for node in (volume, seg, transform, table):
        place_under(scene, node, study)

    path = save_scene(scene, tmp_path / "out")
    assert path.suffix == ".mrml" and path.is_file()
    written = sorted(p.name for p in (tmp_path / "out" / "Data").iterdir())
    assert any(n.endswith(".nrrd") and not n.endswith(".seg.nrrd") for n in written)
    assert any(n.endswith(".seg.nrrd") for n in written)
    assert any(n.endswith((".h5", ".tfm", ".txt")) for n in written)
    assert any(n.endswith((".tsv", ".csv")) for n in written)

    fresh = create_headless_slicer()
    try:
        load_scene(fresh.scene, path)
        s = fresh.scene
        vol = _first(s, "vtkMRMLScalarVolumeNode")
        # Slicer's file reader stores this left-handed volume with its slices reversed (same physical
        # geometry), so the voxels are compared after moving them back onto the original grid.
        back = volume_node_to_sitk(vol)
        assert back.GetSize() == image.GetSize()
        np.testing.assert_allclose(back.TransformIndexToPhysicalPoint((0, 0, 24)), image.TransformIndexToPhysicalPoint((0, 0, 0)), atol=1e-6)
        back = match_grid(back, image)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
        assert get_provenance(vol)["parameters"] == {"n4": False}
        seg2 = _first(s, "vtkMRMLSegmentationNode")
        mask = segmentation_node_to_mask(seg2, image)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(label) > 0)
        assert "108369006" in seg2.GetSegmentation().GetNthSegment(0).GetTerminology()
        tf = linear_transform_node_to_sitk(_first(s, "vtkMRMLLinearTransformNode"))
        np.testing.assert_allclose(
            tf.TransformPoint((10.0, 20.0, 30.0)), linear_transform_node_to_sitk(transform).TransformPoint((10.0, 20.0, 30.0)), atol=1e-6
        )
        assert table_to_rows(_first(s, "vtkMRMLTableNode"))[0]["task"] == "grade"
        assert _first(s, "vtkMRMLPlotChartNode").GetNumberOfPlotSeriesNodes() == 1
        new_study = study_item_of(s, vol)
        assert new_study and sh_node(s).GetItemName(new_study) == "MR"
        assert study_item_of(s, seg2) == new_study
    finally:
        fresh.scene.Clear(1)
