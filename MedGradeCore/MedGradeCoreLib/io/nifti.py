"""A NIfTI file's header and voxel bytes checked in Python before ITK reads it.

ITK's NIfTI reader silently turns NaN/Inf voxels into 0, fills a truncated file's missing voxels, and
allocates whatever matrix a (damaged or hostile) header announces. :func:`check_nifti` reads the header
itself, refuses a malformed one, checks the matrix against the memory available, then streams the voxel
bytes once (compressed or not) to find truncation and non-finite values.
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from MedGradeCoreLib.errors import InputError

# NIfTI datatype code -> (numpy kind, bytes per voxel); None: not a scalar volume MedGrade reads
_DTYPES: dict[int, tuple[str, int] | None] = {
    2: ("u1", 1), 4: ("i2", 2), 8: ("i4", 4), 16: ("f4", 4), 64: ("f8", 8), 256: ("i1", 1), 512: ("u2", 2),
    768: ("u4", 4), 1024: ("i8", 8), 1280: ("u8", 8),
    1: None, 32: None, 128: None, 1536: None, 1792: None, 2048: None, 2304: None,
}
_NOT_SCALAR = {1: "1-bit", 32: "complex", 128: "RGB", 1536: "128-bit float", 1792: "complex", 2048: "complex",
               2304: "RGBA"}
_CHUNK = 1 << 22
MAX_VOXELS = 1 << 33  # 8.6e9 voxels (2048³): no scan is this large; a header announcing more is damaged


@dataclass
class NiftiHeader:
    shape: tuple[int, ...]  # dim[1..dim[0]]
    dtype: np.dtype
    vox_offset: int
    compressed: bool

    @property
    def voxels(self) -> int:
        return int(np.prod(self.shape, dtype=np.float64))

    @property
    def data_bytes(self) -> int:
        return self.voxels * self.dtype.itemsize


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if hasattr(os, "sysconf") and sys.platform != "win32":
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    return None


def check_memory(path: str | Path, shape: tuple[int, ...], bytes_per_voxel: int) -> None:
    """Refuse, before reading, an image whose matrix does not fit in the memory available (it is read once
    and converted to 32-bit floats once, so twice the larger of the two sizes is needed)."""
    voxels = float(np.prod([float(s) for s in shape]))
    size = "×".join(str(s) for s in shape)
    if voxels > MAX_VOXELS:
        raise InputError(path, f"its header announces {size} voxels ({voxels:.3g}), far more than any scan; "
                               "the header is damaged")
    need = int(voxels) * max(bytes_per_voxel, 4) * 2
    free = available_memory()
    if free is not None and need > free:
        raise InputError(path, f"its header announces {size} voxels, which needs about {need / 2**30:.1f} GiB "
                               f"of memory to read; only {free / 2**30:.1f} GiB is available. Refused before "
                               "reading (a damaged header, or a volume to crop or down-sample first)")


def _open(path: Path, compressed: bool):
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def read_header(path: str | Path) -> NiftiHeader:
    """Parse a NIfTI-1/2 header; :class:`InputError` for a malformed one. A file named ``.gz`` that is not
    gzip-compressed is read as the plain NIfTI it is."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(2)
    compressed = magic == b"\x1f\x8b"
    try:
        with _open(path, compressed) as f:
            head = f.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"the file is truncated or corrupt ({exc})") from None
    for endian in "<>":
        if len(head) >= 4 and struct.unpack(endian + "i", head[:4])[0] in (348, 540):
            break
    else:
        raise InputError(path, "cannot be read as a NIfTI image: its header does not start with a NIfTI-1 or NIfTI-2 size")
    version = 1 if struct.unpack(endian + "i", head[:4])[0] == 348 else 2
    if len(head) < (348 if version == 1 else 540):
        raise InputError(path, "the file is truncated inside its NIfTI header")
    if version == 1:
        dims = struct.unpack(endian + "8h", head[40:56])
        datatype = struct.unpack(endian + "h", head[70:72])[0]
        vox_offset = struct.unpack(endian + "f", head[108:112])[0]
        magic4 = head[344:348]
    else:
        datatype = struct.unpack(endian + "h", head[12:14])[0]
        dims = struct.unpack(endian + "8q", head[16:80])
        vox_offset = struct.unpack(endian + "q", head[168:176])[0]
        magic4 = head[4:8]
    if magic4[:3] in (b"ni1", b"ni2"):
        raise InputError(path, "is the header of a .hdr/.img pair, not a single-file NIfTI")
    if magic4[:3] not in (b"n+1", b"n+2"):
        raise InputError(path, f"cannot be read as a NIfTI image: wrong magic {magic4!r} in its header")
    n = dims[0]
    if not 1 <= n <= 7 or any(d < 1 for d in dims[1:n + 1]):
        raise InputError(path, f"its NIfTI header has an invalid matrix size (dim = {list(dims[:n + 1 if 0 <= n < 8 else 8])})")
    if datatype not in _DTYPES:
        raise InputError(path, f"its NIfTI header has an unknown voxel type (datatype {datatype})")
    kind = _DTYPES[datatype]
    if kind is None:
        raise InputError(path, f"holds {_NOT_SCALAR[datatype]} voxels (NIfTI datatype {datatype}); "
                               "a single-valued (scalar) 3D volume is needed")
    header_size = 352 if version == 1 else 544
    if not np.isfinite(vox_offset) or int(vox_offset) < header_size - 4 or int(vox_offset) > 1 << 30:
        raise InputError(path, f"its NIfTI header has an invalid data offset (vox_offset {vox_offset})")
    return NiftiHeader(tuple(int(d) for d in dims[1:n + 1]), np.dtype(endian + kind[0]), int(vox_offset),
                       compressed)


def data_problem(path: str | Path, header: NiftiHeader) -> str | None:
    """Stream the voxel bytes once: a problem text for a truncated file or NaN/Inf voxels, else None."""
    path = Path(path)
    expected = header.data_bytes
    floating = header.dtype.kind == "f"
    item = header.dtype.itemsize
    total = nonfinite = nans = 0
    carry = b""
    try:
        with _open(path, header.compressed) as f:
            skip = header.vox_offset
            while skip > 0:
                block = f.read(min(skip, _CHUNK))
                if not block:
                    break
                skip -= len(block)
            while total < expected and (block := f.read(min(_CHUNK, expected - total))):
                total += len(block)
                if floating:
                    data = carry + block
                    usable = len(data) - len(data) % item
                    values = np.frombuffer(data[:usable], dtype=header.dtype)
                    bad = ~np.isfinite(values)
                    if bad.any():
                        nonfinite += int(bad.sum())
                        nans += int(np.isnan(values).sum())
                    carry = data[usable:]
    except (EOFError, OSError, zlib.error):
        return "the file is truncated or corrupt (its compressed data ends early)"
    if total < expected:
        return (f"the file is truncated: it holds {header.vox_offset + total} bytes of the "
                f"{header.vox_offset + expected} its header announces")
    if nonfinite:
        kinds = "NaN" if nans == nonfinite else ("infinite" if nans == 0 else "NaN or infinite")
        return (f"contains {nonfinite} {kinds} voxel values (of {header.voxels}); the image is damaged or was "
                "saved from a failed computation")
    return None


def check_nifti(path: str | Path) -> NiftiHeader:
    """Header, memory and voxel-data checks of a NIfTI file, before ITK reads it."""
    header = read_header(path)
    check_memory(path, header.shape, header.dtype.itemsize)
    problem = data_problem(path, header)
    if problem:
        raise InputError(path, problem)
    return header
