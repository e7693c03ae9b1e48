"""Damaged and hostile image files (issue 10: items 17, 18 and the Messages list), built on the fly from real
images: every one is an InputError naming the file and the problem, never a silent change or a traceback."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_case, read_image

T1 = "glioma-lgg-tcga/TCGA_CS_4941_19960909/t1.nii.gz"


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(InputError) as info:
        read_image(path)
    text = str(info.value)
    assert path.name in text, text
    for w in words:
        assert w.lower() in text.lower(), text
    return text


# --- 17. NaN / Inf voxels in NIfTI (ITK's reader turns them into 0) -----------------------------------------

@pytest.mark.parametrize("name,dtype", [("t1.nii.gz", np.float32), ("t1.nii", np.float64)])
def test_nan_and_inf_voxels_in_nifti_are_detected(sample, tmp_path, name, dtype):
    image = sitk.Cast(read_image(sample(T1)), sitk.sitkFloat32 if dtype == np.float32 else sitk.sitkFloat64)
    arr = sitk.GetArrayFromImage(image)
    arr[5, 60, 60:63] = np.nan
    arr[6, 10, 10] = np.inf
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(image)
    sitk.WriteImage(bad, str(tmp_path / name))
    assert not np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name)))).any()  # ITK hides them
    _refused(tmp_path / name, "4 NaN or infinite voxel values")


# --- 18. a header announcing a huge matrix is refused before reading, with the size -------------------------

def _with_dims(src: Path, dst: Path, dims: tuple[int, int, int]) -> Path:
    raw = bytearray(gzip.decompress(src.read_bytes()))
    raw[40:56] = struct.pack("<8h", 3, *dims, 1, 1, 1, 1)
    dst.write_bytes(gzip.compress(bytes(raw), 1))
    return dst


def test_huge_matrix_in_a_small_file_is_refused_before_reading(sample, tmp_path):
    bomb = _with_dims(Path(sample(T1)), tmp_path / "bomb.nii.gz", (30000, 30000, 30000))
    assert bomb.stat().st_size < 1 << 20
    _refused(bomb, "30000×30000×30000", "damaged")
    big = _with_dims(Path(sample(T1)), tmp_path / "big.nii.gz", (2048, 2048, 1400))  # 11 GiB as float
    text = _refused(big, "2048×2048×1400", "gib")
    assert "available" in text or "truncated" in text


def test_image_larger_than_the_memory_available_is_refused(sample, tmp_path, monkeypatch):
    from MedGradeCoreLib.io import nifti

    monkeypatch.setattr(nifti, "available_memory", lambda: 1 << 20)  # a machine with 1 MiB free
    _refused(Path(sample(T1)), "needs about", "only 0.0 gib is available")
    shutil.copy(sample("brain-mr/brain1_image.nrrd"), tmp_path / "brain.nrrd")
    _refused(tmp_path / "brain.nrrd", "256×256×25")


# --- Messages: blank, tiny, mislabelled and truncated files ------------------------------------------------

@pytest.mark.parametrize("value", [0, 7])
def test_all_zero_or_constant_image_is_named(sample, tmp_path, value):
    image = read_image(sample(T1))
    blank = sitk.Image(image.GetSize(), image.GetPixelID()) + value
    blank.CopyInformation(image)
    case = tmp_path / "case"
    case.mkdir()
    sitk.WriteImage(blank, str(case / "t1.nii.gz"))
    with pytest.raises(InputError, match=r"t1\.nii\.gz: every voxel has the same value"):
        load_case(case, ["t1"])


def test_three_voxel_image_is_named(tmp_path):
    tiny = sitk.GetImageFromArray(np.arange(27, dtype=np.int16).reshape(3, 3, 3))
    sitk.WriteImage(tiny, str(tmp_path / "tiny.nii.gz"))
    _refused(tmp_path / "tiny.nii.gz", "only 27 voxels", "too small")
    sitk.WriteImage(tiny, str(tmp_path / "tiny.nrrd"))
    _refused(tmp_path / "tiny.nrrd", "only 27 voxels")


def test_uncompressed_nifti_named_gz_is_read_as_what_it_is(sample, tmp_path):
    plain = tmp_path / "t1.nii.gz"
    plain.write_bytes(gzip.decompress(Path(sample(T1)).read_bytes()))
    assert np.array_equal(sitk.GetArrayViewFromImage(read_image(plain)),
                          sitk.GetArrayViewFromImage(read_image(sample(T1))))


def _dicom_folder(sample, tmp_path: Path, n: int = 6) -> Path:
    folder = tmp_path / "dicom"
    folder.mkdir()
    for i in range(81, 81 + n):
        shutil.copy(sample(f"dicom/t1_mprage_sagittal/{i:05d}.dcm"), folder / f"{i:05d}.dcm")
    return folder


@pytest.mark.parametrize("cut", ["header", "pixels"])
def test_truncated_dicom_file_is_named(sample, tmp_path, cut):
    folder = _dicom_folder(sample, tmp_path)
    victim = folder / "00083.dcm"
    data = victim.read_bytes()
    victim.write_bytes(data[:1500] if cut == "header" else data[: len(data) - 40000])
    with pytest.raises(InputError) as info:
        load_case(folder, ["t1"])
    text = str(info.value)
    assert text.startswith(str(victim)) and ("header" if cut == "header" else "pixel data") in text, text


def test_dicom_gap_message_offers_the_command_line_option(sample, tmp_path, capsys, monkeypatch):
    from MedGradeCoreLib.cli import main
    import MedGradeSegmentLib.preprocess as pre

    folder = _dicom_folder(sample, tmp_path)
    (folder / "00083.dcm").unlink()
    assert main(["preprocess", str(folder), "--output", str(tmp_path / "out"), "--sequences", "t1"]) == 1
    err = capsys.readouterr().err
    assert "missing slices" in err and "--allow-gaps" in err and "allow_gaps=True" not in err

    def stop(case, *a, **k):  # the case was read: the option reached the reader
        raise InputError(case.patient_id, f"read with {case.images['t1'].GetSize()[2]} slices")

    monkeypatch.setattr(pre, "preprocess_case", stop)
    assert main(["preprocess", str(folder), "--output", str(tmp_path / "out"), "--sequences", "t1",
                 "--allow-gaps"]) == 1
    assert "read with 5 slices" in capsys.readouterr().err
