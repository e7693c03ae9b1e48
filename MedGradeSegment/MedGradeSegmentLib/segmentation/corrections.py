"""Annotator corrections: each saved corrected mask is a new version in the case folder.

``<case>/corrections/v0001/lesion_mask.nii.gz`` + ``correction.json`` (who, when, from which model
and weights, Dice and volume difference against the AI mask); earlier versions are never touched.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.outputs import active_partial as _active, write_error, write_image
from ..preprocess.quality import volume_ml

CORRECTIONS = "corrections"
MASK_NAME = "lesion_mask.nii.gz"
RECORD_NAME = "correction.json"
AI_RESULT = "segmentation.json"
_VERSION = re.compile(r"^v(\d{4,})$")
_MAX_CLAIMS = 1000


@dataclass
class CorrectionRecord:
    version: int
    folder: str
    user: str
    created: str
    model_id: str | None
    weights_sha256: str | None
    ai_mask: str | None
    dice: float | None
    volume_ai_ml: float | None
    volume_corrected_ml: float
    volume_difference_ml: float | None
    note: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dice(ai: sitk.Image, corrected: sitk.Image) -> float:
    """Dice of two binary masks (SimpleITK's overlap filter); the corrected one is put on the AI grid."""
    a = sitk.Cast(ai != 0, sitk.sitkUInt8)
    c = sitk.Resample(sitk.Cast(corrected != 0, sitk.sitkUInt8), a, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                      sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(a).any() and not sitk.GetArrayViewFromImage(c).any():
        return 1.0
    f = sitk.LabelOverlapMeasuresImageFilter()
    f.Execute(a, c)
    return float(f.GetDiceCoefficient())


def versions(case_dir: str | Path) -> list[int]:
    root = Path(case_dir) / CORRECTIONS
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _VERSION.match(p.name)))


def find_ai_result(case_dir: str | Path) -> tuple[Path | None, dict[str, Any]]:
    """The AI mask of a case folder (``segmentation/`` or the folder itself) and its provenance."""
    for folder in (Path(case_dir) / "segmentation", Path(case_dir)):
        if (folder / MASK_NAME).is_file():
            record = folder / AI_RESULT
            try:
                info = json.loads(record.read_text()) if record.is_file() else {}
            except (OSError, ValueError) as exc:
                raise InputError(record, f"unreadable segmentation record ({exc}); the segmentation was "
                                         "interrupted or damaged: run medgrade segment again") from None
            return folder / MASK_NAME, info if isinstance(info, dict) else {}
    return None, {}


def _read_mask(path: Path, what: str) -> sitk.Image:
    from MedGradeCoreLib.io.images import read_image

    try:
        return read_image(path)
    except InputError as exc:
        raise InputError(path, f"the {what} is unusable: {exc.problem}") from None


def _checked(case_dir: Path, corrected: sitk.Image, ai_mask: sitk.Image | None,
             source: str | Path | None) -> tuple[sitk.Image, list[str]]:
    """The corrected mask checked (binary, non-empty, on the case grid, inside the brain, near the AI lesion)."""
    from MedGradeCoreLib.mask_checks import check_lesion_mask

    reference, brain = ai_mask, None
    if is_case_folder(case_dir):
        from ..preprocess.io import read_preprocessed

        case, _ = read_preprocessed(case_dir)
        reference = case.reference_image()
        brain = case.meta.get("brain_mask")
    if reference is None:
        reference = corrected
    return check_lesion_mask(corrected, reference, source or "the corrected mask", brain, ai_mask,
                             "the AI mask")


def save_correction(case_dir: str | Path, corrected: sitk.Image, user: str | None = None,
                    ai_mask: sitk.Image | str | Path | None = None, model_id: str | None = None,
                    weights_sha256: str | None = None, note: str = "", source: str | Path | None = None
                    ) -> CorrectionRecord:
    """Write ``corrected`` as the next version under ``<case_dir>/corrections/``.

    ``ai_mask`` defaults to the case folder's AI result (see :func:`find_ai_result`), whose
    ``segmentation.json`` also supplies the model id and weights sha256 when not given. The version is
    written into a hidden temporary folder and renamed to ``vNNNN`` only when complete.
    """
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise InputError(case_dir, "case folder not found")
    if corrected.GetDimension() != 3:
        raise InputError(None, "the corrected mask must be a 3D image")
    ai_path: Path | None = None
    if ai_mask is None:
        ai_path, info = find_ai_result(case_dir)
        model_id = model_id or info.get("model_id")
        weights_sha256 = weights_sha256 or info.get("weights_sha256")
        ai_mask = _read_mask(ai_path, "AI mask") if ai_path else None
    elif not isinstance(ai_mask, sitk.Image):
        ai_path = Path(ai_mask)
        ai_mask = _read_mask(ai_path, "AI mask")
    binary, warnings = _checked(case_dir, corrected, ai_mask, source)
    root = case_dir / CORRECTIONS
    v_ai = volume_ml(ai_mask) if ai_mask is not None else None
    v_c = volume_ml(binary)
    similarity = dice(ai_mask, binary) if ai_mask is not None else None
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    root.mkdir(exist_ok=True)
    tmp = root / f".partial-{os.getpid()}-{threading.get_ident()}"
    with _active(tmp):
        try:
            tmp.mkdir()
            write_image(binary, str(tmp / MASK_NAME))
            # renaming onto a free vNNNN claims it atomically, even with two annotators at once; any entry named
            # like a version (a stray file too) is taken, and the search is bounded
            version = max((int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name))), default=0) + 1
            for _ in range(_MAX_CLAIMS):
                folder = root / f"v{version:04d}"
                record = CorrectionRecord(
                    version=version, folder=str(folder), user=user or getpass.getuser(), created=created,
                    model_id=model_id, weights_sha256=weights_sha256, ai_mask=str(ai_path) if ai_path else None,
                    dice=similarity, volume_ai_ml=v_ai, volume_corrected_ml=v_c,
                    volume_difference_ml=(v_c - v_ai) if v_ai is not None else None, note=note,
                    warnings=warnings)
                (tmp / RECORD_NAME).write_text(json.dumps(record.to_dict(), indent=2))
                if not os.path.lexists(folder):
                    try:
                        os.rename(tmp, folder)
                        break
                    except OSError:  # another annotator took this number first
                        pass
                version += 1
            else:
                raise InputError(root, f"no free version number after {_MAX_CLAIMS} tries (is something "
                                       "creating entries there?)")
        except (OSError, RuntimeError) as exc:
            raise write_error(root / "next version", exc) from None
    return record


def list_corrections(case_dir: str | Path) -> list[dict[str, Any]]:
    """Every saved correction record, oldest first."""
    root = Path(case_dir) / CORRECTIONS
    return [json.loads((root / f"v{v:04d}" / RECORD_NAME).read_text()) for v in versions(case_dir)
            if (root / f"v{v:04d}" / RECORD_NAME).is_file()]
