"""Load a preprocessed case folder (docs/CONTRACTS.md) into the scene, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import read_case_info
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.images import read_image
from MedGradeCoreLib.scene.hierarchy import ensure_patient_study, place_under
from MedGradeCoreLib.scene.provenance import set_provenance
from MedGradeCoreLib.scene.segmentations import mask_to_segmentation_node
from MedGradeCoreLib.scene.transaction import SceneTransaction
from MedGradeCoreLib.scene.transforms import sitk_transform_to_node
from MedGradeCoreLib.scene.volumes import sitk_to_volume_node


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "missing") from None
    except (OSError, ValueError) as err:
        raise InputError(path, f"not readable JSON ({err})") from None
    if not isinstance(doc, dict):
        raise InputError(path, "expected a JSON object")
    return doc


def _read_transform(path: Path) -> sitk.Transform:
    if not path.is_file():
        raise InputError(path, "missing")
    try:
        return sitk.ReadTransform(str(path))
    except RuntimeError as err:
        raise InputError(path, f"not a readable transform ({str(err).strip().splitlines()[-1]})") from None


def read_case_files(case_dir: str | Path) -> dict[str, Any]:
    """Read and check every file of a preprocessed case folder (no scene involved).

    Images go through :func:`MedGradeCoreLib.io.images.read_image`, which also catches the
    truncated ``.nii.gz`` files ITK would read silently (zero-filled).
    """
    folder = Path(case_dir)
    case = read_case_info(folder, required=("patient_id", "reference", "sequences", "brain_mask"))
    quality_path = folder / "quality.json"
    return {
        "case": case,
        "quality": _read_json(quality_path) if quality_path.exists() else {},
        "volumes": {seq: read_image(folder / rel) for seq, rel in case["sequences"].items()},
        "brain_mask": read_image(folder / case["brain_mask"]),
        "lesion_mask": read_image(folder / case["lesion_mask"]) if case.get("lesion_mask") else None,
        "transforms": {seq: _read_transform(folder / rel) for seq, rel in (case.get("transforms") or {}).items()},
    }


def load_preprocessed_into_scene(scene: Any, case_dir: str | Path, parent_item: int | None = None) -> dict[str, Any]:
    """Volumes, brain (and lesion) mask segmentations and transforms of a preprocessed case.

    Everything goes under ``parent_item`` (a study item) or a patient/study made from the case;
    each node carries provenance (step ``preprocess``, the case's parameters and version). Files
    are all read before the scene changes; a failure raises :class:`InputError` naming the file
    and leaves the scene as it was. Returns ``{"study_item", "volumes": {seq: node},
    "brain_mask": node, "lesion_mask": node | None, "transforms": {seq: node}}``.
    """
    files = read_case_files(case_dir)
    case = files["case"]
    pid = str(case["patient_id"])
    reference = case["reference"]
    provenance = {
        "parameters": case.get("parameters") or {},
        "version": case.get("medgrade_version"),
        "caseFolder": str(Path(case_dir).resolve()),
        "warnings": (files.get("quality") or {}).get("warnings", []),
    }
    with SceneTransaction(scene):
        study = parent_item or ensure_patient_study(scene, pid, "MedGrade preprocessed", case.get("meta"))
        volumes: dict[str, Any] = {}
        for seq, image in files["volumes"].items():
            node = sitk_to_volume_node(scene, image, f"{pid} {seq}")
            set_provenance(node, "preprocess", sequence=seq, source=str(case.get("sources", {}).get(seq, "")), **provenance)
            place_under(scene, node, study)
            volumes[seq] = node
        ref_node = volumes.get(reference)
        brain = mask_to_segmentation_node(scene, files["brain_mask"], f"{pid} brain mask", {1: "brain"}, ref_node)
        set_provenance(brain, "preprocess.skull_strip", **provenance)
        place_under(scene, brain, study)
        lesion = None
        if files["lesion_mask"] is not None:
            lesion = mask_to_segmentation_node(scene, files["lesion_mask"], f"{pid} lesion", None, ref_node)
            set_provenance(lesion, "preprocess", **provenance)
            place_under(scene, lesion, study)
        transforms: dict[str, Any] = {}
        for seq, transform in files["transforms"].items():
            node = sitk_transform_to_node(scene, transform, f"{pid} {seq} to {reference}")
            set_provenance(node, "preprocess.register", sequence=seq, reference=reference, **provenance)
            if seq in files["quality"].get("registration", {}):
                node.SetAttribute("MedGrade.quality", json.dumps(files["quality"]["registration"][seq]))
            place_under(scene, node, study)
            transforms[seq] = node
    return {"study_item": study, "volumes": volumes, "brain_mask": brain, "lesion_mask": lesion, "transforms": transforms}
