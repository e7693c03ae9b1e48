"""Breast cases from the Slicer scene and breast results into it (the only MRML code of the breast
package). 2D images are single-slice volumes, so ROIs drawn with the Segment Editor come back as masks
on the image's grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import write_case_info
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.scene import (SceneTransaction, segmentation_node_to_mask, set_provenance,
                                      sitk_to_volume_node, table_from_rows, volume_node_to_sitk)

from . import MODALITIES


def write_case_from_scene(selection: dict[str, tuple[Any, Any | None]], folder: str | Path,
                          meta: dict[str, Any] | None = None) -> Path:
    """Write a breast case folder (``<modality>_<name>.nrrd`` + ``_mask.nrrd``) from
    ``selection[modality] = (volume node, lesion segmentation node or None)``; MRI selections may be
    ``mri_<phase>`` keys (one per DCE phase, the ROI from any of them)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if not selection:
        raise InputError(out, "no breast image selected")
    for key, (volume, seg) in selection.items():
        modality = key.split("_", 1)[0]
        if modality not in MODALITIES or volume is None:
            raise InputError(None, f"{key}: not a breast modality input ({', '.join(MODALITIES)})")
        name = key if "_" in key else f"{key}_{volume.GetName()}".replace(" ", "_")
        image = volume_node_to_sitk(volume)
        sitk.WriteImage(image, str(out / f"{name}.nrrd"), True)
        if seg is not None:
            sitk.WriteImage(segmentation_node_to_mask(seg, image), str(out / f"{name}_mask.nrrd"), True)
    write_case_info(out, meta or {})
    return out


RESULT_COLUMNS = ["id", "predicted_class", "probability", "positive_class", "modalities", "model_id"]


def load_breast_results(scene: Any, output: str | Path, reference: Any | None = None) -> dict[str, Any]:
    """Tables (result: class, probabilities, modalities used, model id; per-modality contributions:
    learned weights and leave-one-modality-out probabilities) and Grad-CAM heat maps of what
    ``medgrade predict`` wrote for a breast input."""
    out = Path(output)
    try:
        data = json.loads((out / "predictions.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(out / "predictions.json", f"no readable breast results ({exc})") from None
    rows = data.get("rows", [])
    if not rows:
        raise InputError(out, "the breast results hold no prediction")
    prob_cols = [k for k in rows[0] if k.startswith("probability_")]
    with SceneTransaction(scene):
        nodes: dict[str, Any] = {"table": table_from_rows(scene, rows, "breast grading",
                                                          columns=RESULT_COLUMNS + prob_cols,
                                                          descriptions={"probability": "probability of the "
                                                                        "positive class (stand-in task)"}),
                                 "contributions": [], "heatmaps": []}
        for model_id, contrib in (data.get("contributions") or {}).items():
            if contrib:
                nodes["contributions"].append(table_from_rows(scene, contrib, f"{model_id} modality contributions"))
        for h in data.get("heatmaps", []):
            node = sitk_to_volume_node(scene, sitk.ReadImage(str(out / h["file"])), f"{h['id']} {h['modality']} Grad-CAM")
            set_provenance(node, "breast-gradcam", {"id": h["id"], "modality": h["modality"]}, h.get("model_id"))
            nodes["heatmaps"].append(node)
        for node in [nodes["table"], *nodes["contributions"]]:
            set_provenance(node, "breast-grading", {"input": data.get("input"), "note": data.get("note")},
                           rows[0].get("model_id"))
    nodes["summary"] = "; ".join(f"{r['id']}: {r['predicted_class']} (p={float(r['probability']):.2f})" for r in rows)
    return nodes
