"""The segmentation result in a Slicer scene, and the edited segmentation back as a mask.

Uses only the scene layer (:mod:`MedGradeCoreLib.scene`), so it runs in Slicer
(``slicer.mrmlScene``) and headless (``create_headless_slicer().scene``) alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.scene import (SceneTransaction, get_provenance, mask_to_segmentation_node, segmentation_node_to_mask,
                    set_provenance, sitk_to_volume_node, volume_node_to_sitk)
from MedGradeCoreLib.scene.hierarchy import place_with

STEP = "lesion-segmentation"


@dataclass
class SceneSegmentation:
    segmentation_node: Any
    probability_node: Any | None


def add_segmentation_to_scene(scene: Any, mask: sitk.Image, reference_node: Any, provenance: dict[str, Any],
                              probability: sitk.Image | None = None, name: str | None = None
                              ) -> SceneSegmentation:
    """Add the mask as a segmentation node (one "neoplasm" segment with its terminology entry) and the
    probability map as a volume, both under ``reference_node``'s study, with provenance attributes
    (``MedGrade.modelId``, ``MedGrade.weightsSha256``, ``MedGrade.parameters`` = preprocessing ...).

    All or nothing: if anything fails, no half-made node stays in the scene.
    """
    base = name or f"{reference_node.GetName()} lesion"
    params = {"preprocessing": provenance.get("preprocessing", {}),
              **{k: provenance[k] for k in ("threshold", "fusion", "largest_component", "sequences") if k in provenance}}
    with SceneTransaction(scene):
        seg = mask_to_segmentation_node(scene, mask, base, {1: "neoplasm"}, reference_node)
        place_with(scene, seg, reference_node)
        set_provenance(seg, STEP, params, provenance.get("model_id"), provenance.get("weights_sha256"),
                       inputNode=reference_node.GetID(), warnings=provenance.get("warnings") or [])
        prob = None
        if probability is not None:
            prob = sitk_to_volume_node(scene, probability, f"{base} probability")
            place_with(scene, prob, reference_node)
            set_provenance(prob, STEP + "-probability", params, provenance.get("model_id"),
                           provenance.get("weights_sha256"), inputNode=reference_node.GetID())
    return SceneSegmentation(seg, prob)


def edited_mask(segmentation_node: Any, reference: sitk.Image | Any) -> sitk.Image:
    """The (possibly edited) segmentation as a 0/1 mask on ``reference``'s grid (image or volume node)."""
    ref = reference if isinstance(reference, sitk.Image) else volume_node_to_sitk(reference)
    return segmentation_node_to_mask(segmentation_node, ref)


def save_correction_from_scene(segmentation_node: Any, reference: sitk.Image | Any, case_dir: str, user: str,
                               ai_mask: sitk.Image | str | None = None, note: str = "") -> Any:
    """One action for annotators: the edited segmentation saved as a new correction version,
    with the model id and weights sha256 taken from the node's provenance."""
    from .segmentation.corrections import save_correction

    prov = get_provenance(segmentation_node)
    return save_correction(case_dir, edited_mask(segmentation_node, reference), user, ai_mask,
                           prov.get("modelId"), prov.get("weightsSha256"), note)
