"""Grading results into a Slicer scene through the scene layer (the only MRML code of this Lib).

Per case, under the case's study: a table node (one row per task: task, predicted level,
probability, fusion method, slices used, model id, weights hash; reader findings in their own
columns, prefixed ``reader_``), a per-slice table, a plot of slice probabilities, and each task's
Grad-CAM heat map as a volume shown as the foreground overlay. Nothing is left half-made on error.
"""

from __future__ import annotations

import json
from typing import Any

from MedGradeCoreLib.scene import (SceneTransaction, ensure_patient_study, place_under, plot_chart,
                                      set_provenance, sitk_to_volume_node, study_item_of, table_from_rows)

from .predict import GradingResult

HEAT_COLORS = ("vtkMRMLPETProceduralColorNodePET-HotMetalBlue", "vtkMRMLColorTableNodeRainbow")
RESULT_COLUMNS = ["task", "predicted_level", "probability", "positive_class", "fusion", "slices_used",
                  "model_id", "weights_sha256"]


def _result_row(r: GradingResult) -> dict[str, Any]:
    row = {"task": r.task, "predicted_level": r.predicted_level, "probability": float(r.probability),
           "positive_class": r.positive_class, "fusion": r.fusion,
           "slices_used": " ".join(str(s) for s in r.slices_used), "model_id": r.model_id,
           "weights_sha256": r.weights_sha256}
    row.update({f"reader_{k}": str(v) for k, v in r.reader_findings.items()})
    return row


def _show_overlay(scene: Any, heat_node: Any, background: Any | None) -> None:
    display = heat_node.GetDisplayNode()
    for color_id in HEAT_COLORS:
        if scene.GetNodeByID(color_id) is not None:
            display.SetAndObserveColorNodeID(color_id)
            break
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(0.05)
    heat_node.SetAttribute("MedGrade.overlayOn", background.GetID() if background is not None else "")
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):  # the app's slice views
        comp = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if background is not None:
            comp.SetBackgroundVolumeID(background.GetID())
        comp.SetForegroundVolumeID(heat_node.GetID())
        comp.SetForegroundOpacity(0.4)


def add_grading_to_scene(scene: Any, results: list[GradingResult], reference_node: Any | None = None,
                         study_item: int | None = None, case_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add one case's results (one per task) to ``scene``; returns the nodes made.

    The study is ``study_item``, else the study of ``reference_node`` (e.g. the T1c volume), else a
    MedGrade study under the patient. Heat maps are overlaid on ``reference_node`` when given.
    """
    if not results:
        raise ValueError("no grading results to add")
    pid = results[0].patient_id
    with SceneTransaction(scene):
        study = study_item or (study_item_of(scene, reference_node) if reference_node is not None else 0)
        if not study:
            study = ensure_patient_study(scene, pid, meta=case_meta)
        table = table_from_rows(scene, [_result_row(r) for r in results], f"{pid} grading",
                                columns=RESULT_COLUMNS + sorted({f"reader_{k}" for r in results
                                                                 for k in r.reader_findings}),
                                descriptions={"probability": "probability of the positive class after fusion",
                                              "slices_used": "axial slice indices that entered the fusion"})
        slice_rows = [{"task": r.task, "slice": int(z), "lesion_area_px": float(a), "probability": float(p),
                       "used": z in r.slices_used}
                      for r in results for z, a, p in zip(r.slices, r.slice_areas, r.slice_probabilities)]
        slices = table_from_rows(scene, slice_rows, f"{pid} grading per slice")
        chart = plot_chart(scene, f"{pid} slice probabilities",
                           {r.task: (r.slices, r.slice_probabilities) for r in results},
                           x_label="axial slice", y_label="probability of the positive class", plot_type="line")
        nodes: dict[str, Any] = {"table": table, "slice_table": slices, "chart": chart, "heatmaps": {}}
        made = [table, slices, chart]
        for i in range(chart.GetNumberOfPlotSeriesNodes()):
            series = chart.GetNthPlotSeriesNode(i)
            made += [series, series.GetTableNode()]
        for r in results:
            if r.heatmap is None:
                continue
            heat = sitk_to_volume_node(scene, r.heatmap, f"{pid} {r.task} Grad-CAM")
            _show_overlay(scene, heat, reference_node)
            set_provenance(heat, "grading-gradcam", {"task": r.task, "fusion": r.fusion, "slices": r.slices_used},
                           r.model_id, r.weights_sha256, readerFindings=r.reader_findings)
            nodes["heatmaps"][r.task] = heat
            made.append(heat)
        params = {"tasks": [r.task for r in results], "fusion": sorted({r.fusion for r in results})}
        for node in (table, slices, chart):
            set_provenance(node, "grading", params, results[0].model_id if len(results) == 1 else None,
                           results[0].weights_sha256 if len(results) == 1 else None,
                           models=json.dumps({r.task: [r.model_id, r.weights_sha256] for r in results}),
                           readerFindings={r.task: r.reader_findings for r in results},
                           warnings=[w for r in results for w in r.warnings])
        for node in made:
            place_under(scene, node, study)
    return nodes


def load_grading_into_scene(scene: Any, output: str, study_item: int | None = None,
                            reference_node: Any | None = None) -> dict[str, Any]:
    """Load what ``medgrade predict`` wrote in ``output`` into the scene (one block per case)."""
    from .results_io import read_results

    results, data = read_results(output)
    by_case: dict[str, list[GradingResult]] = {}
    for r in results:
        by_case.setdefault(r.patient_id, []).append(r)
    nodes = {pid: add_grading_to_scene(scene, rs, reference_node, study_item) for pid, rs in by_case.items()}
    return {"nodes": nodes, "summary": data.get("summary", ""), "errors": data.get("errors", {})}
