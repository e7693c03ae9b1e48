"""The scene layer: the only MedGrade code that touches MRML.

Every function takes the scene (``vtkMRMLScene``) as an argument, so the same code runs in the
Slicer application (pass ``slicer.mrmlScene``) and headless on ``slicer-core``
(:func:`MedGradeCoreLib.headless_app.create_headless_slicer`).
"""

from MedGradeCoreLib.scene.hierarchy import ensure_patient_study, place_under, place_with, sh_item, study_item_of
from MedGradeCoreLib.scene.persistence import load_scene, refer_to_file, save_scene
from MedGradeCoreLib.scene.plots import plot_chart
from MedGradeCoreLib.scene.preprocess_result import load_preprocessed_into_scene
from MedGradeCoreLib.scene.provenance import get_provenance, set_provenance
from MedGradeCoreLib.scene.segmentations import mask_to_segmentation_node, segmentation_node_to_mask
from MedGradeCoreLib.scene.tables import table_from_rows, table_to_rows
from MedGradeCoreLib.scene.terminology import load_medgrade_terminology, terminology_entry
from MedGradeCoreLib.scene.transaction import SceneTransaction
from MedGradeCoreLib.scene.transforms import linear_transform_node_to_sitk, sitk_transform_to_node
from MedGradeCoreLib.scene.volumes import match_grid, sitk_to_volume_node, volume_node_to_sitk

__all__ = [
    "SceneTransaction",
    "ensure_patient_study",
    "get_provenance",
    "linear_transform_node_to_sitk",
    "load_medgrade_terminology",
    "load_scene",
    "load_preprocessed_into_scene",
    "mask_to_segmentation_node",
    "match_grid",
    "place_under",
    "place_with",
    "plot_chart",
    "refer_to_file",
    "save_scene",
    "segmentation_node_to_mask",
    "set_provenance",
    "sh_item",
    "sitk_to_volume_node",
    "sitk_transform_to_node",
    "study_item_of",
    "table_from_rows",
    "table_to_rows",
    "terminology_entry",
    "volume_node_to_sitk",
]
