"""SceneTransaction: a failing block leaves no half-made nodes or subject-hierarchy items."""

from __future__ import annotations

import pytest
import SimpleITK as sitk

from MedGradeCoreLib.scene.hierarchy import ensure_patient_study, place_under, sh_node
from MedGradeCoreLib.scene.segmentations import mask_to_segmentation_node
from MedGradeCoreLib.scene.transaction import SceneTransaction
from MedGradeCoreLib.scene.volumes import sitk_to_volume_node


def _sh_count(scene) -> int:
    from vtkmodules.vtkCommonCore import vtkIdList

    sh = sh_node(scene)
    ids = vtkIdList()
    sh.GetItemChildren(sh.GetSceneItemID(), ids, True)
    return ids.GetNumberOfIds()


def test_exception_midway_removes_everything_added(slicer_app, sample):
    scene = slicer_app.scene
    image = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")))
    label = sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd")))
    keep = sitk_to_volume_node(scene, image, "kept")
    nodes_before, items_before = scene.GetNumberOfNodes(), _sh_count(scene)

    with pytest.raises(RuntimeError, match="boom"):
        with SceneTransaction(scene) as tx:
            study = ensure_patient_study(scene, "P1", "S1")
            volume = sitk_to_volume_node(scene, image, "first")
            place_under(scene, volume, study)
            mask_to_segmentation_node(scene, label, "second", reference_node=volume)
            raise RuntimeError("boom")
    assert len(tx.added) == 0  # cleared after the rollback
    assert scene.GetNumberOfNodes() == nodes_before
    assert _sh_count(scene) == items_before
    assert scene.IsNodePresent(keep)


def test_success_keeps_nodes(slicer_app):
    scene = slicer_app.scene
    before = scene.GetNumberOfNodes()
    with SceneTransaction(scene) as tx:
        scene.AddNewNodeByClass("vtkMRMLTableNode", "a")
        scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "b")
    assert scene.GetNumberOfNodes() == before + 2
    assert [n.GetName() for n in tx.added] == ["a", "b"]
