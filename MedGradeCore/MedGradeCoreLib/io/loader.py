"""Build a :class:`Case` from a file or folder in any supported layout, and iterate over a cohort."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import SEQUENCES, Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.clinical_csv import read_clinical_csv, read_labels_csv
from MedGradeCoreLib.io.dicom import read_dicom_header, find_dicom, is_dicom_folder
from MedGradeCoreLib.io.images import check_not_blank, strip_volume_suffix, validate_image, volume_suffix
from MedGradeCoreLib.io.items import Found, FoundImage
from MedGradeCoreLib.io.research_client import find_research_client, is_research_client_folder
from MedGradeCoreLib.io.volume_folder import find_volume_file, find_volume_folder, has_volume_files

Table = dict[str, dict[str, Any]]


def find_images(path: str | Path, allow_gaps: bool = False) -> Found:
    """Detect the layout of ``path`` and list the images it holds (nothing is loaded yet)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found")
    if path.is_file():
        if volume_suffix(path):
            return find_volume_file(path)
        if read_dicom_header(path) is not None:
            return find_dicom(path.parent, allow_gaps, only_file=path)
        raise InputError(path, "is neither a NIfTI/NRRD/MHA volume nor a DICOM image file")
    if has_volume_files(path):
        return find_volume_folder(path)
    if is_research_client_folder(path):
        return find_research_client(path)
    if is_dicom_folder(path):
        return find_dicom(path, allow_gaps)
    raise InputError(path, "no images found: expected NIfTI/NRRD/MHA files, DICOM files, or one sub-folder "
                           "of 2D slice images per sequence")


def _same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-3) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=tol, atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=max(tol, tol * max(b.GetSpacing())))
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def lesion_mask_on_grid(mask: sitk.Image, images: dict[str, sitk.Image], reference: str,
                        source: str) -> tuple[sitk.Image, list[str]]:
    """Binary uint8 lesion mask (non-zero = lesion) on the reference image's grid, plus warnings.

    A mask on the grid of another sequence of the case is resampled (nearest neighbour, SimpleITK)
    onto the reference grid; a mask matching no image of the case is refused.
    """
    validate_image(mask, source)
    ref_name = reference if reference in images else next(iter(images))
    ref = images[ref_name]
    binary = sitk.Cast(sitk.NotEqual(mask, 0), sitk.sitkUInt8)
    if _same_grid(binary, ref):
        binary.CopyInformation(ref)
        return binary, []
    for name, image in images.items():
        if _same_grid(binary, image):
            binary.CopyInformation(image)
            out = sitk.Resample(binary, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            return out, [f"lesion mask is on the {name} grid; resampled onto the {ref_name} grid"]
    size = "×".join(map(str, mask.GetSize()))
    raise InputError(source, f"the lesion mask ({size} voxels) is on the grid of none of the case's images "
                             f"({', '.join(f'{n} ' + '×'.join(map(str, i.GetSize())) for n, i in images.items())})")


def _choose(path: Path, found: Found, wanted: list[str] | None, reference: str,
            warnings: list[str]) -> tuple[dict[str, FoundImage], list[FoundImage]]:
    """Pick one found image per sequence; unrecognised ones are returned apart."""
    by_seq: dict[str, list[FoundImage]] = {}
    unrecognised = []
    for f in (f for f in found.images if not f.is_mask):
        seq = f.name if wanted and f.sequence not in wanted and f.name in wanted else f.sequence
        if seq is None:
            unrecognised.append(f)
        else:
            by_seq.setdefault(seq, []).append(f)
    if not by_seq and len(unrecognised) == 1:
        name = wanted[0] if wanted and len(wanted) == 1 else reference
        warnings.append(f"{unrecognised[0].label}: sequence not recognised from its name; taken as {name}")
        by_seq[name], unrecognised = unrecognised, []
    chosen = {}
    for seq, candidates in by_seq.items():
        if wanted and seq not in wanted:
            continue
        candidates = sorted(candidates, key=lambda f: -f.rank)
        if len(candidates) > 1:
            if candidates[0].rank == candidates[1].rank:
                raise InputError(path, f"several images look like {seq}: "
                                       f"{', '.join(c.label for c in candidates)}; keep one or pass the file itself")
            warnings.append(f"{seq}: took {candidates[0].label} (the largest) over "
                            f"{', '.join(c.label for c in candidates[1:])}")
        chosen[seq] = candidates[0]
    missing = [s for s in wanted or [] if s not in chosen]
    if missing or not chosen:
        have = ", ".join(f"{s} ({f.label})" for s, f in chosen.items()) or "none"
        other = f"; not recognised: {', '.join(f.label for f in unrecognised)}" if unrecognised else ""
        what = (f"missing required sequence{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                if missing else f"no image recognised as one of {', '.join(SEQUENCES)}")
        raise InputError(path, f"{what} (found: {have}{other}); name files or series after the sequence "
                               "(t1, t1c, t2, flair)")
    order = wanted or [*SEQUENCES, *sorted(set(chosen) - set(SEQUENCES))]
    return {s: chosen[s] for s in order if s in chosen}, unrecognised


def _table(value: str | Path | Table | None, reader: Callable[[str | Path], Table]) -> Table | None:
    return value if isinstance(value, dict) or value is None else reader(value)


def load_case(path: str | Path, sequences: Sequence[str] | None = None, clinical_csv: str | Path | Table | None = None,
              labels_csv: str | Path | Table | None = None, patient_id: str | None = None, reference: str = "t1c",
              allow_gaps: bool = False) -> Case:
    """Read one patient's images (+ lesion mask, clinical data, labels) from a file or folder.

    ``path``: a NIfTI/NRRD/MHA file, a folder of such files (BraTS naming included), a DICOM folder, a
    DICOM file (its series), or a research-client patient folder. ``sequences``: the sequences required
    (and the only ones loaded); a missing one is an :class:`InputError` naming the folder and the
    sequence. ``patient_id`` defaults to the folder name (the file name for a single file); clinical and
    label CSVs (paths or already-read tables) are looked up by it. ``allow_gaps`` reads DICOM series
    with missing slices instead of refusing them.
    """
    path = Path(path)
    found = find_images(path, allow_gaps)
    pid = patient_id or (strip_volume_suffix(path.name) if path.is_file() and volume_suffix(path) else
                         path.parent.name if path.is_file() else path.name)
    clinical_table = _table(clinical_csv, read_clinical_csv)
    labels_table = _table(labels_csv, read_labels_csv)
    warnings = list(found.warnings)
    chosen, unrecognised = _choose(path, found, list(sequences) if sequences else None, reference, warnings)
    case = Case(patient_id=pid, reference=reference)
    case.meta.update(found.meta, layout=found.layout)
    for seq, f in chosen.items():
        case.images[seq] = check_not_blank(f.load(), f.source)
        case.sources[seq] = f.source
        if f.meta:
            case.meta.setdefault("series", {})[seq] = f.meta
    if unrecognised:
        case.meta["unrecognised"] = [f.label for f in unrecognised]
    masks = [f for f in found.images if f.is_mask]
    if len(masks) > 1:
        raise InputError(path, f"several lesion masks: {', '.join(m.label for m in masks)}; keep one")
    if masks:
        raw = masks[0].load()
        case.meta["mask_labels"] = sorted(int(v) for v in np.unique(sitk.GetArrayViewFromImage(raw)) if v != 0)
        case.mask, mask_warnings = lesion_mask_on_grid(raw, case.images, reference, masks[0].source)
        case.sources["mask"] = masks[0].source
        warnings += mask_warnings
    if "series" in case.meta:
        first = case.meta["series"].get(reference) or next(iter(case.meta["series"].values()))
        for key in ("StudyInstanceUID", "PatientID", "SeriesDescription"):
            case.meta[key] = first[key]
    for table, field_name, what in ((clinical_table, "clinical", "clinical"), (labels_table, "labels", "labels")):
        if table is not None:
            if pid in table:
                setattr(case, field_name, dict(table[pid]))
            else:
                warnings.append(f"no row for patient {pid} in the {what} CSV")
    case.meta["warnings"] = warnings
    return case


def read_research_client_case(folder: str | Path, sequences: Sequence[str] | None = None,
                              clinical_csv: str | Path | Table | None = None,
                              labels_csv: str | Path | Table | None = None, reference: str = "t1c") -> Case:
    """Read one research-client patient folder (one sub-folder of 2D slices per sequence)."""
    if not is_research_client_folder(folder):
        raise InputError(folder, "not a research-client patient folder (no sub-folder holds 2D slice images)")
    return load_case(folder, sequences, clinical_csv, labels_csv, reference=reference)


def iter_cohort(folder: str | Path, clinical_csv: str | Path | Table | None = None,
                labels_csv: str | Path | Table | None = None, sequences: Sequence[str] | None = None,
                reference: str = "t1c", allow_gaps: bool = False) -> Iterator[Case | InputError]:
    """One :class:`Case` per patient sub-folder of ``folder`` (sorted), or the :class:`InputError` that
    patient raised, so that callers can report it and go on. A bad CSV is raised at once."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "cohort folder not found" if not folder.exists() else "is not a folder")
    clinical = _table(clinical_csv, read_clinical_csv)
    labels = _table(labels_csv, read_labels_csv)
    for sub in sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: d.name):
        top, real = folder.resolve(), sub.resolve()
        if sub.is_symlink() and (real == top or real in top.parents):  # a link to / or up the tree: no case
            yield InputError(sub, f"symlink to an enclosing folder (-> {real}): not followed")
            continue
        try:
            yield load_case(sub, sequences, clinical, labels, reference=reference, allow_gaps=allow_gaps)
        except InputError as exc:
            yield exc
