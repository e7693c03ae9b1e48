"""What ``medgrade segment --output DIR`` wrote, loaded into a scene.

``DIR`` holds ``lesion_mask.nii.gz``, ``lesion_probability.nii.gz`` and ``segmentation.json`` (model id,
weights sha256, preprocessing, threshold, fusion, ...). The panels write it to ``<case>/segmentation/``,
the folder ``medgrade save-correction`` compares corrections with. Scene work goes through
:func:`MedGradeSegmentLib.scene_segmentation.add_segmentation_to_scene`; no Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.images import read_image
from MedGradeCoreLib.scene.provenance import PREFIX
from .scene_segmentation import SceneSegmentation, add_segmentation_to_scene
from .segmentation.corrections import AI_RESULT, MASK_NAME
from .segmentation.segment_case import PROBABILITY_NAME

SEGMENT_FOLDER = "segmentation"


@dataclass
class SegmentOutput:
    """The files of one ``medgrade segment`` output folder, read and checked."""

    folder: Path
    mask: sitk.Image
    probability: sitk.Image | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def case_dir(self) -> Path | None:
        """The preprocessed case folder this output sits in (``<case>/segmentation``), if any."""
        parent = self.folder.parent
        return parent if is_case_folder(parent) else None


def segment_output_dir(case_dir: str | Path) -> Path:
    """Where the panels ask ``medgrade segment`` to write for a case folder."""
    return Path(case_dir) / SEGMENT_FOLDER


def read_segment_output(folder: str | Path) -> SegmentOutput:
    """Read a ``medgrade segment`` output folder; :class:`InputError` names the missing or bad file."""
    folder = Path(folder)
    info_path = folder / AI_RESULT
    if not info_path.is_file():
        raise InputError(info_path, "missing: not a `medgrade segment` output folder")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(info_path, f"not readable JSON ({exc})") from None
    if not isinstance(info, dict):
        raise InputError(info_path, "expected a JSON object")
    mask = read_image(folder / info.get("mask", MASK_NAME))
    prob_name = info.get("probability", PROBABILITY_NAME)
    probability = read_image(folder / prob_name) if (folder / prob_name).is_file() else None
    return SegmentOutput(folder, mask, probability, info)


def case_volume_node(scene: Any, case_dir: str | Path, sequence: str) -> Any | None:
    """The volume node :func:`load_preprocessed_into_scene` made for ``sequence`` of ``case_dir`` (newest)."""
    wanted = str(Path(case_dir).resolve())
    found = None
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if (node.GetAttribute(PREFIX + "caseFolder") == wanted and node.GetAttribute(PREFIX + "sequence") == sequence
                and node.GetAttribute(PREFIX + "step") == "preprocess"):
            found = node
    return found


def load_segment_output(scene: Any, folder: str | Path, reference_node: Any | None = None,
                        name: str | None = None) -> SceneSegmentation:
    """Add a ``medgrade segment`` output to ``scene``: the lesion as a segmentation node (neoplasm
    terminology) and the probability map as a volume, under ``reference_node``'s study, with the
    provenance of ``segmentation.json``.

    ``reference_node`` defaults to the case's reference volume already loaded from the preprocessed case
    folder that holds ``folder``. The nodes also carry ``MedGrade.segmentOutput`` (this folder) and,
    when there is one, ``MedGrade.caseFolder``. All or nothing.
    """
    out = read_segment_output(folder)
    if reference_node is None:
        seq = out.info.get("reference")
        reference_node = case_volume_node(scene, out.case_dir, seq) if out.case_dir and seq else None
        if reference_node is None:
            raise InputError(out.folder, "no reference volume: load the preprocessed case into the scene first, "
                                         "or give the volume the mask belongs to")
    result = add_segmentation_to_scene(scene, out.mask, reference_node, out.info, out.probability, name)
    for node in (result.segmentation_node, result.probability_node):
        if node is None:
            continue
        node.SetAttribute(PREFIX + "segmentOutput", str(out.folder.resolve()))
        if out.case_dir is not None:
            node.SetAttribute(PREFIX + "caseFolder", str(out.case_dir.resolve()))
    return result
