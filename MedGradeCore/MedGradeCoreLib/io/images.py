"""Read one NIfTI/NRRD/MHA volume and refuse what is not a usable 3D scalar image."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.nifti import check_memory, check_nifti

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
MIN_VOXELS = 1000  # fewer voxels than a 10x10x10 block is not a scan (a damaged header, a stray file)
MAX_2D_PIXELS = 1 << 28  # 16384²: no photo, ultrasound, mammogram or slice is larger (a PNG/JPEG bomb is)


def volume_suffix(path: str | Path) -> str | None:
    """The volume-file suffix of ``path`` (``.nii.gz`` ...), or None for other files."""
    name = Path(path).name.lower()
    return next((s for s in VOLUME_SUFFIXES if name.endswith(s)), None)


def is_volume_file(path: str | Path) -> bool:
    return Path(path).is_file() and volume_suffix(path) is not None and not Path(path).name.startswith(".")


def strip_volume_suffix(name: str) -> str:
    """``"a_t1.nii.gz"`` -> ``"a_t1"``."""
    suffix = volume_suffix(name)
    return name[: -len(suffix)] if suffix else name


def _size_text(image: sitk.Image) -> str:
    return "×".join(str(s) for s in image.GetSize())


def _bytes_per_voxel(reader: sitk.ImageFileReader) -> int:
    return sitk.GetArrayViewFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())).itemsize


def _nifti_complete(path: Path, reader: sitk.ImageFileReader) -> str | None:
    """A problem text when a NIfTI file holds fewer voxel bytes than its header promises.

    ITK's NIfTI reader fills a truncated file's missing voxels silently, so the length is checked here.
    """
    n_vox = int(np.prod(reader.GetSize())) * reader.GetNumberOfComponents()
    bytes_per = sitk.GetArrayViewFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())).itemsize
    offset = int(float(reader.GetMetaData("vox_offset"))) if reader.HasMetaDataKey("vox_offset") else 352
    expected = offset + n_vox * bytes_per
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        actual = 0
        try:
            with gzip.open(path, "rb") as f:
                while block := f.read(1 << 22):
                    actual += len(block)
        except (EOFError, OSError, zlib.error):
            return "the file is truncated or corrupt (its compressed data ends early)"
    else:
        actual = path.stat().st_size
    if actual < expected:
        return f"the file is truncated: it holds {actual} bytes of the {expected} its header announces"
    return None


def _nifti_spacing(path: Path) -> tuple[float, float, float] | None:
    """pixdim[1:4] as stored in a NIfTI-1/2 header (ITK silently turns 0 into 1 and drops signs)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(540)
    except (OSError, EOFError, zlib.error):
        return None
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            return struct.unpack(endian + "8f", head[76:108])[1:4]
        if len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            return struct.unpack(endian + "8d", head[104:168])[1:4]
    return None


def validate_image(image: sitk.Image, source: str | Path) -> sitk.Image:
    """Raise :class:`InputError` unless ``image`` is a 3D scalar volume with finite voxels and positive spacing."""
    dim = image.GetDimension()
    size = image.GetSize()
    if dim == 2 or (dim == 3 and min(size) == 1):
        raise InputError(source, f"is a 2D image ({_size_text(image)}); a 3D volume with several slices is needed")
    if dim > 3:
        raise InputError(source, f"is a {dim}D image ({_size_text(image)}), e.g. a time series; "
                                 "a single 3D volume is needed")
    if dim != 3:
        raise InputError(source, f"is a {dim}D image; a 3D volume is needed")
    if int(np.prod(size)) < MIN_VOXELS:
        raise InputError(source, f"has only {int(np.prod(size))} voxels ({_size_text(image)}); too small to be a scan")
    ncomp = image.GetNumberOfComponentsPerPixel()
    if ncomp > 1:
        raise InputError(source, f"has {ncomp} values per voxel (vector, RGB or multi-volume image); "
                                 "a single-valued (scalar) 3D volume is needed")
    spacing = image.GetSpacing()
    if any(not np.isfinite(s) or s <= 0 for s in spacing):
        raise InputError(source, f"has zero or negative voxel spacing {tuple(round(s, 4) for s in spacing)}")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
        raise InputError(source, "has a degenerate orientation (direction) matrix")
    if not np.all(np.isfinite(image.GetOrigin())):
        raise InputError(source, "has a non-finite origin")
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.floating):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            n_nan = int(np.count_nonzero(np.isnan(arr)))
            kinds = "NaN" if n_nan == bad else ("infinite" if n_nan == 0 else "NaN or infinite")
            raise InputError(source, f"contains {bad} {kinds} voxel values (of {arr.size}); "
                                     "the image is damaged or was saved from a failed computation")
    return image


def read_image(path: str | Path) -> sitk.Image:
    """Read a NIfTI/NRRD/MHA volume; :class:`InputError` names the file and the problem when it is unusable."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image file")
    if volume_suffix(path) is None:
        raise InputError(path, f"is not a supported image file (expected one of {', '.join(VOLUME_SUFFIXES)})")
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    nifti = volume_suffix(path) in (".nii", ".nii.gz")
    if nifti:  # header, memory, truncation and NaN/Inf checked in Python first (ITK hides them)
        check_nifti(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        if nifti:
            spacing = _nifti_spacing(path)
            if spacing and any(not s > 0 for s in spacing[: reader.GetDimension()]):
                raise InputError(path, f"has zero or negative voxel spacing {tuple(spacing)} in its header")
        else:
            check_memory(path, reader.GetSize(), _bytes_per_voxel(reader) * reader.GetNumberOfComponents())
        image = reader.Execute()
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        reason = next((ln.strip() for ln in reversed(detail) if ln.strip()), "unknown reason")
        if "spacing" in reason.lower():
            raise InputError(path, f"has zero, negative or invalid voxel spacing ({reason[:160]})") from None
        raise InputError(path, f"cannot be read as an image; the file is truncated, corrupt or not "
                               f"a {volume_suffix(path)} file ({reason[:160]})") from None
    return validate_image(image, path)


def read_image_file(path: str | Path) -> sitk.Image:
    """Any image file SimpleITK reads (PNG/JPEG/BMP/TIFF, DICOM, volumes), its declared size checked against
    :data:`MAX_2D_PIXELS` and the free memory *before* decoding (a 2 MB PNG can declare 50000×50000)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(path, f"unreadable image ({_last_line(exc)})") from None
    check_declared_size(path, reader)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(path, f"unreadable image ({_last_line(exc)})") from None
    except MemoryError:
        raise InputError(path, "not enough memory to decode the image") from None


def check_declared_size(path: str | Path, reader: sitk.ImageFileReader, n_files: int = 1) -> None:
    """Refuse (before decoding) a header declaring more pixels than any image, or than the free memory."""
    size = tuple(int(s) for s in reader.GetSize())
    flat = len(size) == 2 or (len(size) == 3 and size[2] == 1)
    pixels = float(np.prod([float(s) for s in size[:2]]))
    if flat and pixels > MAX_2D_PIXELS:
        raise InputError(path, f"its header declares {size[0]}×{size[1]} pixels ({pixels:.3g}), more than any medical "
                               "image; refused before decoding (a decompression bomb or a damaged header)")
    shape = (*size, n_files) if n_files > 1 else size
    check_memory(path, shape, _bytes_per_voxel(reader) * max(reader.GetNumberOfComponents(), 1))


def _last_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:160]


def check_not_blank(image: sitk.Image, source: str | Path) -> sitk.Image:
    """Refuse an image whose voxels all hold one value (an all-zero export, a failed conversion)."""
    arr = sitk.GetArrayViewFromImage(image)
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if lo == hi:
        raise InputError(source, f"every voxel has the same value ({lo:g}): a blank image, not a scan")
    return image
