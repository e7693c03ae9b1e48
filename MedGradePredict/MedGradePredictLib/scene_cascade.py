"""What ``medgrade run`` wrote for one case, into a Slicer scene, on the volumes the user loaded.

The lesion goes into the segmentation node the user chose (its segments replaced) or a new one; the grade
tables, slice-probability plot and Grad-CAM heat maps of every model are added under the reference volume's
study (the heat map overlaid on it). Works in the app and headless (slicer-core): no Qt here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from MedGradeCoreLib.case_folder import read_case_info
from MedGradeCoreLib.errors import InputError


def _replace_segments(target: Any, source: Any, reference_node: Any) -> None:
    """``target``'s segments become copies of ``source``'s (ids kept); MedGrade attributes copied."""
    dst, src = target.GetSegmentation(), source.GetSegmentation()
    dst.RemoveAllSegments()
    target.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    for i in range(src.GetNumberOfSegments()):
        dst.CopySegmentFromSegmentation(src, src.GetNthSegmentID(i))
    for name in source.GetAttributeNames() or []:
        if name.startswith("MedGrade."):
            target.SetAttribute(name, source.GetAttribute(name))
    if target.GetDisplayNode() is None:
        target.CreateDefaultDisplayNodes()


def _replace_table(target: Any, source: Any) -> None:
    target.GetTable().DeepCopy(source.GetTable())
    for name in source.GetAttributeNames() or []:
        if name.startswith("MedGrade."):
            target.SetAttribute(name, source.GetAttribute(name))
    target.Modified()


def load_cascade_into_scene(scene: Any, case_output: str | Path, reference_node: Any | None = None,
                            segmentation_node: Any | None = None, table_node: Any | None = None,
                            show_3d: bool = False) -> dict[str, Any]:
    """Load ``<output>/<case>/`` of ``medgrade run``. ``reference_node``: the volume the user ran on (its
    physical space is the preprocessed reference's), default the preprocessed reference loaded from the case.
    ``segmentation_node`` / ``table_node``: replaced in place when given, else new nodes are made."""
    from MedGradeCoreLib.scene import load_preprocessed_into_scene, study_item_of
    from MedGradeSegmentLib.scene_outputs import load_segment_output

    from .scene_grading import load_grading_into_scene

    folder = Path(case_output)
    if not (folder / "segmentation").is_dir():
        raise InputError(folder, "not a `medgrade run` case output (no segmentation/ folder)")
    loaded: dict[str, Any] = {}
    if reference_node is None:
        case = load_preprocessed_into_scene(scene, folder / "preprocessed")
        loaded["preprocessed"] = case
        ref = read_case_info(folder / "preprocessed")["reference"]
        reference_node = case["volumes"].get(ref) or next(iter(case["volumes"].values()))
    seg = load_segment_output(scene, folder / "segmentation", reference_node)
    if segmentation_node is not None and segmentation_node is not seg.segmentation_node:
        _replace_segments(segmentation_node, seg.segmentation_node, reference_node)
        scene.RemoveNode(seg.segmentation_node)
        loaded["segmentation"] = segmentation_node
    else:
        loaded["segmentation"] = seg.segmentation_node
    loaded["probability"] = seg.probability_node
    if show_3d:
        loaded["segmentation"].CreateClosedSurfaceRepresentation()
    study = study_item_of(scene, reference_node) or None
    loaded["grading"] = {}
    for model_dir in sorted((folder / "grading").glob("*/predictions.json")):
        grading = load_grading_into_scene(scene, str(model_dir.parent), study, reference_node)
        loaded["grading"][model_dir.parent.name] = grading
    tables = [n["table"] for g in loaded["grading"].values() for n in g["nodes"].values()]
    if table_node is not None and tables:
        _replace_table(table_node, tables[0])
        scene.RemoveNode(tables[0])
        tables[0] = table_node
    loaded["tables"] = tables
    loaded["report"] = str(folder / "report.html") if (folder / "report.html").is_file() else None
    return loaded


def place_in_layout(scene: Any, app_logic: Any, loaded: dict[str, Any]) -> None:
    """Four-up view with a table and a plot: the grade table and slice-probability plot shown, the heat map
    as the slice views' foreground (set by the grading loader). ``app_logic``: Slicer's application logic."""
    layout = next((scene.GetNthNodeByClass(i, "vtkMRMLLayoutNode")
                   for i in range(scene.GetNumberOfNodesByClass("vtkMRMLLayoutNode"))), None)
    if layout is not None:
        layout.SetViewArrangement(layout.SlicerLayoutFourUpPlotTableView)
    selection = app_logic.GetSelectionNode()
    charts = [n["chart"] for g in loaded.get("grading", {}).values() for n in g["nodes"].values()]
    if loaded.get("tables"):
        selection.SetActiveTableID(loaded["tables"][0].GetID())
        app_logic.PropagateTableSelection()
    if charts:
        selection.SetActivePlotChartID(charts[0].GetID())
        app_logic.PropagatePlotChartSelection()
