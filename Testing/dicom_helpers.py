"""Test helpers: real TCGA-LGG volumes written as a DICOM MR study (one series per sequence, their real voxels)."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk
from pydicom.uid import generate_uid

from MedGradeCoreLib.dicom_out.mr_series import write_mr_series

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LGG = DATA / "glioma-lgg-tcga"
MPRAGE = DATA / "dicom" / "t1_mprage_sagittal"


def lgg_case(name: str = "TCGA_CS_4941_19960909") -> Path:
    return LGG / name


def write_lgg_study(case: Path, out: Path, sequences: tuple[str, ...] = ("t1c", "flair")) -> str:
    """``out/<seq>/*.dcm`` for each sequence, one study, one frame of reference; returns the StudyInstanceUID."""
    study, frame = generate_uid(), generate_uid()
    pid = case.name.rsplit("_", 1)[0]
    for i, seq in enumerate(sequences):
        write_mr_series(sitk.ReadImage(str(case / f"{seq}.nii.gz")), out / seq, pid, str(case / f"{seq}.nii.gz"),
                        study_uid=study, series_description=seq, series_number=i + 1,
                        frame_of_reference_uid=frame)
    return study
