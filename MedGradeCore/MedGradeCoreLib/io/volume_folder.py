"""A folder of NIfTI/NRRD/MHA volumes (BraTS 2020/2021/2023 naming included), or a single volume file."""

from __future__ import annotations

from pathlib import Path

from MedGradeCoreLib.sequence_names import guess_sequence, is_brain_mask_name, is_lesion_mask_name, normalise_name
from MedGradeCoreLib.io.brats import brats_layout
from MedGradeCoreLib.io.images import is_volume_file, read_image, strip_volume_suffix
from MedGradeCoreLib.io.items import Found, FoundImage


def _found_file(path: Path, prefix: str = "") -> FoundImage:
    stem = strip_volume_suffix(path.name)
    rest = stem[len(prefix):] if prefix and stem.lower().startswith(prefix.lower()) else stem
    rest = rest if normalise_name(rest) else stem
    sequence = guess_sequence(rest) or guess_sequence(stem)
    return FoundImage(label=path.name, source=str(path), name=normalise_name(rest), sequence=sequence,
                      is_mask=is_lesion_mask_name(rest), load=lambda: read_image(path))


def find_volume_file(path: str | Path) -> Found:
    path = Path(path)
    return Found("single-file", [_found_file(path)])


def find_volume_folder(folder: str | Path) -> Found:
    """The volume files directly in ``folder`` (sub-folders are not searched); file names say the sequence.

    A leading patient id equal to the folder name (``BraTS-GLI-00001-000-t1c``) is ignored when guessing.
    Brain masks are skipped.
    """
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if is_volume_file(p)), key=lambda p: p.name.lower())
    found = Found(brats_layout(p.name for p in files) or "volume-folder", [])
    for p in files:
        if is_brain_mask_name(p.name):
            found.warnings.append(f"{p.name}: a brain mask, not a lesion mask; ignored")
            continue
        found.images.append(_found_file(p, prefix=folder.name))
    return found


def has_volume_files(folder: str | Path) -> bool:
    return any(is_volume_file(p) for p in Path(folder).iterdir())
