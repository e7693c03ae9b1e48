"""An evaluation report (:func:`.evaluate.evaluate_predictions`) into a Slicer scene: a metrics table,
a confusion-matrix table, and ROC, calibration and decision-curve plot charts. MRML only through the
scene layer; nothing is left half-made on error."""

from __future__ import annotations

from typing import Any

from MedGradeCoreLib.scene import SceneTransaction, plot_chart, set_provenance, table_from_rows

from .evaluate import metrics_rows


def add_evaluation_to_scene(scene: Any, report: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """Tables and charts of one model's report; returns the nodes by role."""
    label = name or report.get("name", "model")
    if report.get("title"):
        label = f"{label} ({report['title']})"
    classes = report["classes"]
    with SceneTransaction(scene):
        nodes: dict[str, Any] = {
            "metrics": table_from_rows(scene, metrics_rows(report["metrics"]), f"{label} metrics",
                                       columns=["metric", "value"]),
            "confusion_matrix": table_from_rows(
                scene, [{"true": classes[i], **{f"predicted {classes[j]}": int(v) for j, v in enumerate(row)}}
                        for i, row in enumerate(report["confusion_matrix"])], f"{label} confusion matrix")}
        if "roc" in report:
            nodes["roc"] = plot_chart(scene, f"{label} ROC", {label: (report["roc"]["fpr"], report["roc"]["tpr"])},
                                      "1 - specificity", "sensitivity")
            cal = report["calibration"]
            nodes["calibration"] = plot_chart(
                scene, f"{label} calibration", {label: (cal["mean_predicted"], cal["fraction_positive"]),
                                                "ideal": ([0.0, 1.0], [0.0, 1.0])},
                "mean predicted probability", "fraction positive")
            dc = report["decision_curve"]
            nodes["decision_curve"] = plot_chart(
                scene, f"{label} decision curve", {label: (dc["threshold"], dc["model"]),
                                                   "treat all": (dc["threshold"], dc["treat_all"]),
                                                   "treat none": (dc["threshold"], dc["treat_none"])},
                "threshold probability", "net benefit")
        for node in nodes.values():
            set_provenance(node, "evaluation", {"name": report.get("name"), "title": report.get("title", "")})
    return nodes
