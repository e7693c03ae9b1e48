"""The preprocessed case folder of docs/CONTRACTS.md: ``write_preprocessed`` and ``read_preprocessed``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.case_folder import CASE_FILE, read_case_info, sanitise_patient_id, write_case_info
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.outputs import OutputLock, staged_folder, write_image
from .pipeline import PreprocessResult


def case_json(result: PreprocessResult) -> dict[str, Any]:
    """The ``case.json`` content for ``result``."""
    return {
        "patient_id": result.patient_id,
        "reference": result.reference,
        "sequences": {seq: f"{seq}.nii.gz" for seq in result.images},
        "brain_mask": "brain_mask.nii.gz",
        "search_mask": "search_mask.nii.gz",
        "brain_extraction": dict(result.brain_extraction, lesion_margin_mm=result.config.lesion_margin_mm),
        "transforms": {seq: f"transforms/{seq}_to_{result.reference}.tfm" for seq in result.transforms},
        "lesion_mask": "lesion_mask.nii.gz" if result.lesion_mask is not None else None,
        "slices": list(result.slices),
        "clinical": result.clinical,
        "labels": result.labels,
        "parameters": result.config.to_dict(),
        "sources": {k: str(v) for k, v in result.sources.items()},
        "medgrade_version": result.version,
    }


def case_folder(out_dir: str | Path, patient_id: str) -> Path:
    """``<out_dir>/<patient id made a safe folder name>``: where :func:`write_preprocessed` puts a case."""
    return Path(out_dir) / sanitise_patient_id(patient_id)


def write_preprocessed(result: PreprocessResult, out_dir: str | Path, name: str | None = None) -> Path:
    """Write ``<out_dir>/<patient_id>/`` (or ``<out_dir>/<name>/``) atomically (a hidden partial folder renamed
    at the end) under the case's output lock, and return its path. An existing non-case folder of that name
    is never replaced."""
    final = case_folder(out_dir, name or result.patient_id)
    with OutputLock(final), staged_folder(final, markers=(CASE_FILE,)) as partial:
        (partial / "transforms").mkdir()
        info = case_json(result)
        for seq, image in result.images.items():
            write_image(image, str(partial / info["sequences"][seq]), True)
        write_image(result.brain_mask, str(partial / info["brain_mask"]), True)
        write_image(result.lesion_search_mask(), str(partial / info["search_mask"]), True)
        if result.lesion_mask is not None:
            write_image(result.lesion_mask, str(partial / info["lesion_mask"]), True)
        for seq, transform in result.transforms.items():
            sitk.WriteTransform(transform, str(partial / info["transforms"][seq]))
        (partial / "quality.json").write_text(json.dumps(result.quality.to_dict(), indent=1))
        write_case_info(partial, info)
    return final


def _read(folder: Path, rel: str, what: str) -> sitk.Image:
    path = folder / rel
    if not path.is_file():
        raise InputError(path, f"{what} listed in case.json is missing")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(path, f"cannot read the {what}: {str(exc).strip().splitlines()[-1]}") from None


def read_preprocessed(folder: str | Path) -> tuple[Case, dict[str, Any]]:
    """Load a preprocessed case folder back: the :class:`Case` (images, lesion mask; ``meta`` holds
    ``brain_mask``, ``slices``, ``transforms``) and the ``case.json`` dict (plus ``quality``)."""
    folder = Path(folder)
    info = read_case_info(folder, required=("sequences",))
    sequences = dict(info["sequences"])
    case = Case(patient_id=str(info.get("patient_id", folder.name)), reference=info.get("reference", "t1c"),
                clinical=dict(info.get("clinical") or {}), labels=dict(info.get("labels") or {}),
                sources=dict(info.get("sources") or {}))
    for seq, rel in sequences.items():
        case.images[seq] = _read(folder, rel, f"{seq} image")
    if info.get("lesion_mask"):
        case.mask = sitk.Cast(_read(folder, info["lesion_mask"], "lesion mask"), sitk.sitkUInt8)
    if info.get("brain_mask"):
        case.meta["brain_mask"] = sitk.Cast(_read(folder, info["brain_mask"], "brain mask"), sitk.sitkUInt8)
    if info.get("search_mask"):  # brain + margin (folders written before it existed: the brain mask)
        case.meta["search_mask"] = sitk.Cast(_read(folder, info["search_mask"], "lesion search mask"), sitk.sitkUInt8)
    elif "brain_mask" in case.meta:
        case.meta["search_mask"] = case.meta["brain_mask"]
    case.meta["brain_extraction"] = dict(info.get("brain_extraction") or {})
    case.meta["slices"] = list(info.get("slices") or [])
    case.meta["transforms"] = {}
    for seq, rel in (info.get("transforms") or {}).items():
        tfm = folder / rel
        if not tfm.is_file():
            raise InputError(tfm, "transform listed in case.json is missing")
        case.meta["transforms"][seq] = sitk.ReadTransform(str(tfm))
    quality = folder / "quality.json"
    if quality.is_file():
        try:
            info["quality"] = json.loads(quality.read_text())
        except ValueError as exc:
            raise InputError(quality, f"invalid JSON ({exc})") from None
    return case, info
