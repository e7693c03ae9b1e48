"""A tiny real cohort for the cohort-run tests: 10-slice axial slabs of BraTS-GLI-00001 (T1c + FLAIR, BraTS space),
each slab one "patient", preprocessed (no skull stripping, same grid: no registration)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeSegmentLib.preprocess import PreprocessConfig, preprocess_case, write_preprocessed


def slab_cohort(sample: Callable[[str], Path], folder: Path, starts: Iterable[int]) -> Path:
    """``folder`` with one preprocessed case ``slab<i>`` per first axial slice in ``starts``."""
    images = {}
    for seq, name in (("t1c", "t1c"), ("flair", "t2f")):
        path = sample(f"glioma-brats-space/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{name}.nii.gz")
        images[seq] = sitk.ReadImage(str(path), sitk.sitkFloat32)
    config = PreprocessConfig(skull_strip=False, reg_skip_same_grid=True, check_sequences=False, n_slices=4,
                              min_brain_ml=50.0)  # a 10 mm slab holds ~200 ml of brain
    for i, z in enumerate(starts):
        case = Case(f"slab{i}", {s: img[:, :, z:z + 10] for s, img in images.items()}, reference="t1c")
        write_preprocessed(preprocess_case(case, config), folder, name=f"slab{i}")
    return folder
