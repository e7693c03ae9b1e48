"""The Segment panel's "Export as DICOM SEG": the current (possibly corrected) segmentation of a volume loaded
from Slicer's DICOM database, as a DICOM SEG on that volume's series, ready to be added to the database.

Scene layer only: the volume's ``DICOM.instanceUIDs`` attribute (set by Slicer's DICOM loader) names the source
instances, ``file_for_instance`` (``slicer.dicomDatabase.fileForInstance`` in Slicer) finds their files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pydicom

from MedGradeCoreLib.dicom_out.references import source_from_files
from MedGradeCoreLib.dicom_out.seg import Algorithm, build_segmentation
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.scene import get_provenance

from .scene_segmentation import edited_mask


def export_seg_from_scene(segmentation_node: Any, reference_node: Any, out_dir: str | Path,
                          file_for_instance: Callable[[str], str], annotator: str | None = None,
                          ai_seg: str | Path | None = None) -> Path:
    """Write ``out_dir/<SOPInstanceUID>.dcm`` and return it. With ``annotator`` the SEG is the person's
    correction (SEMIAUTOMATIC, referencing ``ai_seg`` when given); otherwise the model's (AUTOMATIC)."""
    name = reference_node.GetName()
    uids = (reference_node.GetAttribute("DICOM.instanceUIDs") or "").split()
    if not uids:
        raise InputError(name, "was not loaded from the DICOM database (no DICOM instance UIDs); a DICOM SEG "
                               "needs a DICOM source volume")
    files = [file_for_instance(u) or "" for u in uids]
    missing = [u for u, f in zip(uids, files) if not f or not Path(f).is_file()]
    if missing:
        raise InputError(name, f"{len(missing)} of its {len(uids)} DICOM instances are not in the database "
                               f"(first: {missing[0]})")
    source = source_from_files(files, name)
    prov = get_provenance(segmentation_node)
    algorithm = Algorithm(str(prov.get("modelId") or ""), str(prov.get("weightsSha256") or ""),
                          annotator=annotator, correction="exported from Slicer" if annotator else None)
    if not algorithm.model_id and annotator is None:
        raise InputError(segmentation_node.GetName(), "has no model provenance; give the annotator's name to "
                                                      "export it as a manual segmentation")
    corrects = pydicom.dcmread(ai_seg, stop_before_pixels=False) if ai_seg else None
    seg = build_segmentation(source, edited_mask(segmentation_node, reference_node), algorithm, corrects=corrects)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"{seg.SOPInstanceUID}.dcm"
    tmp = out / f".{final.name}.{os.getpid()}.partial"
    try:
        seg.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def export_to_dicom_database(segmentation_node: Any, database: Any, annotator: str | None = None,
                             ai_seg: str | Path | None = None) -> str:
    """The panel's one call: the SEG of ``segmentation_node`` on its reference volume (the node it was made on)
    written to a temporary folder and inserted into ``database`` (``slicer.dicomDatabase``: ``fileForInstance``,
    ``insert``), where it appears under the source study in the DICOM browser. Returns its SOP Instance UID."""
    import shutil
    import tempfile

    if segmentation_node is None:
        raise InputError(None, "no lesion segmentation to export; segment the lesion first")
    annotator = annotator or None  # the panel's empty annotator field: the model's result
    reference = segmentation_node.GetNodeReference("referenceImageGeometryRef")
    if reference is None:
        raise InputError(segmentation_node.GetName(), "has no reference volume; segment a DICOM-loaded volume first")
    folder = Path(tempfile.mkdtemp(prefix="medgrade-seg-"))
    try:
        path = export_seg_from_scene(segmentation_node, reference, folder, database.fileForInstance, annotator,
                                     ai_seg)
        database.insert(str(path))  # ctkDICOMDatabase copies the file into its own storage
        return path.stem
    finally:
        shutil.rmtree(folder, ignore_errors=True)
