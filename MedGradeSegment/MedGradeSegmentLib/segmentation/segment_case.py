"""A case (preprocessed folder or any readable input) in, mask + probability + provenance files out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.case import Case
from MedGradeCoreLib.outputs import OutputLock, staged_folder, write_image
from MedGradeCoreLib.progress import Progress
from .corrections import AI_RESULT, MASK_NAME
from .infer import SegmentationResult
from .model_bundle import LoadedModel, segment_with_model

PROBABILITY_NAME = "lesion_probability.nii.gz"
ORIGINAL_MASK_NAME = "lesion_mask_original.nii.gz"


def original_geometry(case: Case) -> sitk.Image | None:
    """An empty image with the grid of the reference sequence's source file (before preprocessing),
    or None when the source is not a single readable volume file."""
    src = case.sources.get(case.reference)
    if not src or not Path(src).is_file():
        return None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(src))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    if reader.GetDimension() != 3:
        return None
    grid = sitk.Image(reader.GetSize(), sitk.sitkUInt8)
    grid.SetSpacing(reader.GetSpacing())
    grid.SetOrigin(reader.GetOrigin())
    grid.SetDirection(reader.GetDirection())
    return grid


def read_input_case(path: str | Path, sequences: list[str] | None = None) -> tuple[Case, sitk.Image | None]:
    """(case, mask to search the lesion in or None): a preprocessed folder (``case.json``; its brain mask plus
    the configured margin) or anything ``load_case`` reads."""
    path = Path(path)
    if is_case_folder(path):
        from ..preprocess.io import read_preprocessed

        case, info = read_preprocessed(path)
        brain = case.meta.get("search_mask", case.meta.get("brain_mask"))
        case.meta.setdefault("preprocessing", info.get("parameters", {}))
        return case, brain
    from MedGradeCoreLib.io import load_case

    return load_case(path), None


def segment_case(case: Case, loaded: LoadedModel, brain_mask: sitk.Image | None = None, device: str = "cpu",
                 keep_largest: bool | None = None, batch_size: int = 8, progress: Progress | None = None
                 ) -> SegmentationResult:
    """Segment a case on its reference image's exact grid."""
    return segment_with_model(loaded, case.images, case.reference, case.reference_image(), brain_mask,
                              keep_largest, device, batch_size, progress)


def write_result(result: SegmentationResult, out_dir: str | Path, case: Case | None = None) -> dict[str, Any]:
    """Write ``lesion_mask.nii.gz``, ``lesion_probability.nii.gz`` and ``segmentation.json`` into ``out_dir``:
    all written into a temporary folder first, then renamed in, ``segmentation.json`` last (other files in
    ``out_dir`` are kept). A full disk or read-only folder is an :class:`InputError` and changes nothing."""
    out = Path(out_dir)
    info = dict(result.info)
    info.update(mask=MASK_NAME, probability=PROBABILITY_NAME)
    with OutputLock(out), staged_folder(out, merge=True, last=(AI_RESULT,)) as tmp:
        write_image(result.mask, str(tmp / MASK_NAME))
        write_image(result.probability, str(tmp / PROBABILITY_NAME))
        grid = original_geometry(case) if case is not None else None
        if grid is not None and not _same_grid(grid, result.mask):
            original = sitk.Resample(result.mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                     sitk.sitkUInt8)
            write_image(original, str(tmp / ORIGINAL_MASK_NAME))
            info.update(mask_original=ORIGINAL_MASK_NAME, original_source=case.sources.get(case.reference))
        if case is not None:
            info.update(patient_id=case.patient_id, sources=case.sources,
                        case_preprocessing=case.meta.get("preprocessing"))
        (tmp / AI_RESULT).write_text(json.dumps(info, indent=2, default=str))
    return info


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    import numpy as np

    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-4)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4))
