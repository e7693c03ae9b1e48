"""Subject-hierarchy placement that works headless and in the app.

slicer-core does not create SH items for new data nodes (the app's Qt plugin logic does), so
:func:`sh_item` creates one with ``CreateItem`` when ``GetItemByDataNode`` returns 0.
"""

from __future__ import annotations

from typing import Any

import slicer


def sh_node(scene: Any) -> Any:
    """The scene's subject-hierarchy node (created when missing)."""
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def sh_item(scene: Any, node: Any) -> int:
    """The SH item of a data node, created under the scene item when it has none."""
    sh = sh_node(scene)
    item = sh.GetItemByDataNode(node)
    if not item:
        item = sh.CreateItem(sh.GetSceneItemID(), node)
    return item


def _ancestor_at_level(scene: Any, item: int, level: str) -> int:
    sh = sh_node(scene)
    while item and item != sh.GetSceneItemID():
        if sh.GetItemLevel(item) == level:
            return item
        item = sh.GetItemParent(item)
    return 0


def study_item_of(scene: Any, node: Any) -> int:
    """The study item above ``node`` in the subject hierarchy, 0 when there is none."""
    study = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()
    return _ancestor_at_level(scene, sh_item(scene, node), study)


def patient_item_of(scene: Any, node: Any) -> int:
    """The patient item above ``node``, 0 when there is none."""
    patient = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelPatient()
    return _ancestor_at_level(scene, sh_item(scene, node), patient)


def _child_named(scene: Any, parent: int, name: str, level: str) -> int:
    from vtkmodules.vtkCommonCore import vtkIdList

    sh = sh_node(scene)
    children = vtkIdList()
    sh.GetItemChildren(parent, children)
    for i in range(children.GetNumberOfIds()):
        child = children.GetId(i)
        if sh.GetItemLevel(child) == level and sh.GetItemName(child) == name:
            return child
    return 0


def ensure_patient_study(
    scene: Any,
    patient_id: str,
    study_name: str = "MedGrade",
    meta: dict[str, Any] | None = None,
) -> int:
    """The study item ``study_name`` under patient ``patient_id``, both created when missing.

    ``meta`` (the case's meta) may give ``StudyInstanceUID``, ``StudyDate``, ``PatientName``;
    they become DICOM item attributes of the new items.
    """
    constants = slicer.vtkMRMLSubjectHierarchyConstants
    sh = sh_node(scene)
    meta = meta or {}
    patient = _child_named(scene, sh.GetSceneItemID(), patient_id, constants.GetDICOMLevelPatient())
    if not patient:
        patient = sh.CreateSubjectItem(sh.GetSceneItemID(), patient_id)
        sh.SetItemAttribute(patient, constants.GetDICOMPatientIDAttributeName(), patient_id)
        if meta.get("PatientName"):
            sh.SetItemAttribute(patient, constants.GetDICOMPatientNameAttributeName(), str(meta["PatientName"]))
    study = _child_named(scene, patient, study_name, constants.GetDICOMLevelStudy())
    if not study:
        study = sh.CreateStudyItem(patient, study_name)
        if meta.get("StudyInstanceUID"):
            sh.SetItemUID(study, constants.GetDICOMUIDName(), str(meta["StudyInstanceUID"]))
            sh.SetItemAttribute(study, constants.GetDICOMStudyInstanceUIDAttributeName(), str(meta["StudyInstanceUID"]))
        if meta.get("StudyDate"):
            sh.SetItemAttribute(study, constants.GetDICOMStudyDateAttributeName(), str(meta["StudyDate"]))
    return study


def place_under(scene: Any, node: Any, parent_item: int) -> int:
    """Move ``node``'s SH item under ``parent_item``; returns the node's item."""
    item = sh_item(scene, node)
    sh_node(scene).SetItemParent(item, parent_item)
    return item


def place_with(scene: Any, node: Any, source_node: Any) -> int:
    """Put ``node`` under the study of ``source_node`` (else beside it); returns ``node``'s item."""
    parent = study_item_of(scene, source_node)
    if not parent:
        parent = sh_node(scene).GetItemParent(sh_item(scene, source_node))
    return place_under(scene, node, parent)
