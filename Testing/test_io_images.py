"""read_image on real volumes, and the bad inputs a user meets, each refused with the file and the problem."""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_case, read_image

T1 = "glioma-native/TCGA-FG-6692/t1.nii.gz"
BRAIN = "brain-mr/brain1_image.nrrd"


def refused(path: Path, *words: str) -> InputError:
    """Assert read_image refuses ``path`` with a message naming the file and containing ``words``."""
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert path.name in message
    for word in words:
        assert word.lower() in message.lower(), message
    return info.value


def test_reads_real_volumes_unchanged(sample) -> None:
    for rel, size in [(T1, (256, 224, 26)), (BRAIN, (256, 256, 25)), ("atlas/swiss/atlasImage.mha", (240, 193, 180))]:
        image = read_image(sample(rel))
        assert image.GetSize() == size
        assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(sitk.ReadImage(str(sample(rel)))))


def test_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "t1c.nii.gz", "not found")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "t1c.nii.gz"
    empty.write_bytes(b"")
    refused(empty, "empty")


def test_truncated_compressed_nifti(sample, tmp_path: Path) -> None:
    data = Path(sample(T1)).read_bytes()
    cut = tmp_path / "t1_cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    refused(cut, "truncated")


def test_truncated_plain_nifti(sample, tmp_path: Path) -> None:
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(read_image(sample(T1)), str(plain))
    data = plain.read_bytes()
    cut = tmp_path / "t1_cut.nii"
    cut.write_bytes(data[: len(data) - 1000])
    refused(cut, "truncated")


def test_truncated_nrrd(sample, tmp_path: Path) -> None:
    data = Path(sample(BRAIN)).read_bytes()
    cut = tmp_path / "brain_cut.nrrd"
    cut.write_bytes(data[: len(data) * 2 // 3])
    refused(cut, "truncated")


def test_not_an_image(tmp_path: Path) -> None:
    fake = tmp_path / "notes.nii.gz"
    fake.write_text("these are not voxels")
    refused(fake, "cannot be read")


def test_2d_image(sample, tmp_path: Path) -> None:
    flat = tmp_path / "one_slice.nii.gz"
    sitk.WriteImage(read_image(sample(T1))[:, :, 13], str(flat))
    refused(flat, "2D image")


def test_single_slice_3d_image_is_2d(sample, tmp_path: Path) -> None:
    flat = tmp_path / "one_slice.nrrd"
    sitk.WriteImage(read_image(sample(BRAIN))[:, :, 10:11], str(flat))
    refused(flat, "2D image", "256×256×1")


def test_4d_image(sample, tmp_path: Path) -> None:
    image = read_image(sample(T1))
    series = tmp_path / "timeseries.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([image, image, image]), str(series))
    refused(series, "4D image", "single 3D volume")


def test_vector_image(sample, tmp_path: Path) -> None:
    image = read_image(sample(BRAIN))
    vec = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.Compose(image, image, image), str(vec))
    refused(vec, "3 values per voxel")


def test_nan_voxels(sample, tmp_path: Path) -> None:
    image = read_image(sample(BRAIN))
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    arr[12, 100:110, 100:110] = np.nan
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(image)
    path = tmp_path / "brain_nan.nrrd"
    sitk.WriteImage(bad, str(path))
    refused(path, "100 NaN voxel")


def test_infinite_voxels(sample, tmp_path: Path) -> None:
    image = read_image(sample(T1))
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    arr[0, 0, :3] = np.inf
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(image)
    path = tmp_path / "t1_inf.mha"  # (ITK's NIfTI writer turns inf into 0, MetaImage keeps it)
    sitk.WriteImage(bad, str(path))
    refused(path, "3 infinite")


def test_zero_spacing_nifti(sample, tmp_path: Path) -> None:
    plain = tmp_path / "plain.nii"
    sitk.WriteImage(read_image(sample(BRAIN)), str(plain))
    header = bytearray(plain.read_bytes())
    header[80:84] = struct.pack("<f", 0.0)  # pixdim[1]
    header[252:256] = struct.pack("<hh", 0, 0)  # qform/sform codes: geometry from pixdim only
    bad = tmp_path / "zero_spacing.nii"
    bad.write_bytes(bytes(header))
    refused(bad, "zero or negative voxel spacing")


def test_zero_spacing_nrrd(sample, tmp_path: Path) -> None:
    plain = tmp_path / "plain.nrrd"
    sitk.WriteImage(read_image(sample(BRAIN)), str(plain), False)
    raw = plain.read_bytes()
    end = raw.index(b"\n\n")
    header = re.sub(r"space directions: \([^)]*\)", "space directions: (0,0,0)", raw[:end].decode())
    bad = tmp_path / "zero_spacing.nrrd"
    bad.write_bytes(header.encode() + raw[end:])
    refused(bad, "spacing")


def test_unsupported_extension(sample, tmp_path: Path) -> None:
    other = tmp_path / "brain.png"
    shutil.copy(sample(BRAIN), other)
    refused(other, "not a supported image file")


def test_missing_required_sequence_names_folder_and_sequence(sample, tmp_path: Path) -> None:
    folder = tmp_path / "patient7"
    folder.mkdir()
    for seq in ("t1", "t1c", "flair"):
        shutil.copy(sample(f"glioma-native/TCGA-FG-6692/{seq}.nii.gz"), folder / f"{seq}.nii.gz")
    with pytest.raises(InputError) as info:
        load_case(folder, sequences=["t1c", "t2"])
    message = str(info.value)
    assert "patient7" in message and "missing required sequence t2" in message
    assert "t1c (t1c.nii.gz)" in message  # says what it did find


def test_bad_file_inside_a_case_folder_names_that_file(sample, tmp_path: Path) -> None:
    folder = tmp_path / "patient8"
    folder.mkdir()
    shutil.copy(sample("glioma-native/TCGA-FG-6692/t1c.nii.gz"), folder / "t1c.nii.gz")
    data = Path(sample("glioma-native/TCGA-FG-6692/t2.nii.gz")).read_bytes()
    (folder / "t2.nii.gz").write_bytes(data[:5000])
    with pytest.raises(InputError) as info:
        load_case(folder)
    assert "t2.nii.gz" in str(info.value) and "truncated" in str(info.value)
