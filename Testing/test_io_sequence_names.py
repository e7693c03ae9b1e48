"""Sequence names from real-world file names and DICOM series descriptions."""

from __future__ import annotations

import pytest

from MedGradeCoreLib.sequence_names import guess_sequence, is_brain_mask_name, is_lesion_mask_name

NAMES = [
    # BraTS 2020/2021
    ("BraTS20_Training_001_t1.nii.gz", "t1"),
    ("BraTS20_Training_001_t1ce.nii.gz", "t1c"),
    ("BraTS20_Training_001_t2.nii.gz", "t2"),
    ("BraTS20_Training_001_flair.nii.gz", "flair"),
    ("BraTS2021_00000_t1ce.nii.gz", "t1c"),
    ("BraTS2021_00000_t2.nii.gz", "t2"),
    # BraTS 2023
    ("BraTS-GLI-00001-000-t1c.nii.gz", "t1c"),
    ("BraTS-GLI-00001-000-t1n.nii.gz", "t1"),
    ("BraTS-GLI-00001-000-t2w.nii.gz", "t2"),
    ("BraTS-GLI-00001-000-t2f.nii.gz", "flair"),
    # plain file names
    ("t1.nii.gz", "t1"), ("t1c.nii.gz", "t1c"), ("T2.nrrd", "t2"), ("FLAIR.mha", "flair"),
    ("t1gd.nii", "t1c"), ("T1_Gd.nii.gz", "t1c"), ("t1c_bet.nii.gz", "t1c"), ("fla_bet.nii.gz", "flair"),
    ("t1w.nii.gz", "t1"), ("T1-weighted.nii.gz", "t1"), ("t2w.nii.gz", "t2"),
    # scanner series descriptions
    ("t1_MPRAGEcr_noGRAPPA", "t1"), ("t1_mprage_sag_p2_iso", "t1"), ("MPRAGE", "t1"),
    ("MPRAGE+Gd", "t1c"), ("MPRAGE POST", "t1c"), ("T1+C", "t1c"), ("Ax T1 +C", "t1c"),
    ("AX T1 POST GD", "t1c"), ("AX T1 PRE", "t1"), ("T1_pre_contrast", "t1"), ("T1 FS POST", "t1c"),
    ("t1_se_tra_KM", "t1c"), ("3D T1 SPGR POST", "t1c"), ("Sag 3D FSPGR BRAVO", "t1"), ("ce-T1", "t1c"),
    ("T1W_SE_GD", "t1c"), ("AX POST GAD", "t1c"), ("t1_vibe_fs_tra_post", "t1c"),
    ("AX T2 FSE", "t2"), ("t2_tse_tra", "t2"), ("T2W_TSE", "t2"), ("Ax T2 FRFSE", "t2"),
    ("Ax T2 FLAIR", "flair"), ("t2_tirm_tra_dark-fluid", "flair"), ("FLAIR_3D", "flair"), ("T2-FLAIR", "flair"),
    ("3D_FLAIR_SAG", "flair"),
    # things that are none of the four
    ("t2_swi_tra", None), ("T2*", None), ("AX T2* GRE", None), ("ep2d_diff_3scan_trace", None), ("ADC", None),
    ("DWI b1000", None), ("localizer", None), ("AAHead_Scout", None), ("BraTS20_Training_001_seg.nii.gz", None),
    ("brain1_label.nrrd", None), ("brain_mask.nii.gz", None), ("seg_model_fusion.nii.gz", None),
    ("brain1_image.nrrd", None), ("t1_fl2d_tra", "t1"),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_guess_sequence_real_world_names(name: str, expected: str | None) -> None:
    assert guess_sequence(name) == expected


@pytest.mark.parametrize("name", ["BraTS20_Training_001_seg.nii.gz", "BraTS-GLI-00001-000-seg.nii.gz",
                                  "brain1_label.nrrd", "seg_model_fusion.nii.gz", "lesion_mask.nii.gz",
                                  "tumor_roi.nrrd", "mask"])
def test_lesion_mask_names(name: str) -> None:
    assert is_lesion_mask_name(name)
    assert guess_sequence(name) is None


@pytest.mark.parametrize("name", ["t1c.nii.gz", "brain_mask.nii.gz", "BraTS-GLI-00001-000-t2f.nii.gz", "image"])
def test_not_lesion_mask_names(name: str) -> None:
    assert not is_lesion_mask_name(name)


def test_brain_mask_name() -> None:
    assert is_brain_mask_name("brain_mask.nii.gz") and not is_brain_mask_name("t1.nii.gz")
