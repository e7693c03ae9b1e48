"""DICOM folders: group files into series (pydicom headers), check slice positions, read with SimpleITK."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.sequence_names import guess_sequence, normalise_name
from MedGradeCoreLib.io.images import validate_image, volume_suffix
from MedGradeCoreLib.io.nifti import check_memory
from MedGradeCoreLib.io.items import Found, FoundImage

GAP_FACTOR = 1.5  # a step larger than this times the median step means missing slices
UNEVEN_TOLERANCE = 0.05  # relative step deviation reported as uneven spacing

_TAGS = ["SeriesInstanceUID", "StudyInstanceUID", "SeriesDescription", "ProtocolName", "Modality", "PatientID",
         "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "Rows", "Columns",
         "NumberOfFrames", "SOPClassUID"]
_SKIP_SUFFIXES = (".txt", ".md", ".json", ".csv", ".xml", ".png", ".jpg", ".jpeg", ".pdf", ".zip", ".py")


@dataclass
class SeriesInfo:
    """One DICOM image series found in a folder, with its files in slice order and what is odd about it."""

    uid: str
    description: str
    modality: str
    study_uid: str
    patient_id: str
    folder: str
    files: list[str] = field(default_factory=list)  # sorted along the slice normal
    positions: list[float] = field(default_factory=list)  # mm along the slice normal, one per file
    series_number: int | None = None
    number_of_frames: int = 1
    gaps: list[str] = field(default_factory=list)  # plain-words location of each run of missing slices
    duplicates: list[str] = field(default_factory=list)  # plain-words description of repeated positions
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``"'t1_mprage' (series 19)"``: how messages name this series."""
        number = f" (series {self.series_number})" if self.series_number is not None else ""
        return f"'{self.description or '(no description)'}'{number}"


def _is_candidate(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith(".") and name != "dicomdir" and not name.endswith(_SKIP_SUFFIXES) \
        and volume_suffix(path) is None


def _has_dicom_preamble(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_dicom_header(path: str | Path) -> pydicom.Dataset | None:
    """The header of a DICOM image file (the tags MedGrade uses), or None for anything else.

    A file that announces itself as DICOM (the ``DICM`` preamble) but whose header cannot be parsed is
    damaged, not "something else": :class:`InputError` names it."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        for tag in _TAGS:  # values are decoded lazily: decode them here, where a damaged one names the file
            ds.get(tag)
    except Exception as exc:  # pydicom raises many kinds (ValueError, NotImplementedError, ...) on damaged files
        if _has_dicom_preamble(path):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise InputError(path, f"is a DICOM file truncated or damaged in its header ({reason})") from None
        return None
    if "SeriesInstanceUID" not in ds or "Rows" not in ds:  # not an image (SR, PR, DICOMDIR, ...) or cut short
        sop = ds.get("file_meta", {}).get("MediaStorageSOPClassUID") if hasattr(ds, "file_meta") else None
        if sop is not None and "Image Storage" in getattr(sop, "name", "") and _has_dicom_preamble(path):
            raise InputError(path, f"is a DICOM {sop.name} file truncated or damaged in its header "
                                   "(its series or image size is missing)")
        return None
    return ds


def is_dicom_folder(folder: str | Path, max_files: int = 20) -> bool:
    """True when one of the first ``max_files`` candidate files under ``folder`` is a DICOM image."""
    seen = 0
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if not _is_candidate(p):
                continue
            try:
                if read_dicom_header(p) is not None:
                    return True
            except InputError:  # a damaged DICOM image file: still a DICOM folder (reading it names the file)
                return True
            seen += 1
            if seen >= max_files:
                return False
    return False


def _floats(value, n: int) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.size == n and np.all(np.isfinite(arr)) else None


def _describe_position(info: SeriesInfo, i: int) -> str:
    return f"{Path(info.files[i]).name} at {info.positions[i]:.2f} mm"


def _check_positions(info: SeriesInfo) -> None:
    """Fill ``gaps``, ``duplicates`` and ``warnings`` from the sorted slice positions."""
    pos = np.asarray(info.positions)
    if pos.size < 2:
        return
    steps = np.diff(pos)
    dup = np.flatnonzero(steps < 1e-3)
    for i in dup:
        info.duplicates.append(f"{Path(info.files[i]).name} and {Path(info.files[i + 1]).name} "
                               f"share position {pos[i]:.2f} mm")
    good = steps[steps >= 1e-3]
    if good.size == 0:
        return
    median = float(np.median(good))
    for i in np.flatnonzero(steps > GAP_FACTOR * median):
        missing = int(round(steps[i] / median)) - 1
        info.gaps.append(f"between {_describe_position(info, i)} and {_describe_position(info, i + 1)} "
                         f"(a {steps[i]:.2f} mm step where slices are {median:.2f} mm apart: "
                         f"about {max(missing, 1)} slice(s) missing)")
    regular = good[good <= GAP_FACTOR * median]
    if regular.size and float(np.max(np.abs(regular - median))) > UNEVEN_TOLERANCE * median:
        info.warnings.append(f"uneven slice spacing: steps range {regular.min():.3f}-{regular.max():.3f} mm "
                             f"(median {median:.3f} mm); the volume is read with the mean spacing")


def _build_series(uid: str, items: list[tuple[Path, pydicom.Dataset]], folder: Path) -> SeriesInfo:
    first = items[0][1]
    description = str(first.get("SeriesDescription", "") or first.get("ProtocolName", "") or "")
    number = first.get("SeriesNumber")
    info = SeriesInfo(uid=uid, description=description.strip(), modality=str(first.get("Modality", "")),
                      study_uid=str(first.get("StudyInstanceUID", "")), patient_id=str(first.get("PatientID", "")),
                      folder=str(folder), series_number=int(number) if number not in (None, "") else None)
    frames = int(first.get("NumberOfFrames", 1) or 1)
    if len(items) == 1 and frames > 1:  # enhanced multi-frame: one file holds the volume
        info.files, info.number_of_frames = [str(items[0][0])], frames
        return info
    orientations = [_floats(ds.get("ImageOrientationPatient"), 6) for _, ds in items]
    positions = [_floats(ds.get("ImagePositionPatient"), 3) for _, ds in items]
    if any(o is None for o in orientations) or any(p is None for p in positions):
        items = sorted(items, key=lambda it: (int(it[1].get("InstanceNumber", 0) or 0), it[0].name))
        info.files = [str(p) for p, _ in items]
        info.positions = [float(i) for i in range(len(items))]
        info.warnings.append("some slices have no position/orientation; ordered by instance number, "
                             "geometry cannot be checked")
        return info
    ref = orientations[0]
    if any(np.max(np.abs(o - ref)) > 1e-3 for o in orientations):
        info.warnings.append("slices have different orientations (e.g. a 3-plane localiser); "
                             "not one volume")
    normal = np.cross(ref[:3], ref[3:])
    dist = [float(np.dot(p, normal)) for p in positions]
    order = sorted(range(len(items)), key=lambda i: (dist[i], items[i][0].name))
    info.files = [str(items[i][0]) for i in order]
    info.positions = [dist[i] for i in order]
    if len(items) == 1:
        info.warnings.append("a single slice; not a 3D volume")
    _check_positions(info)
    return info


def scan_dicom_folder(folder: str | Path) -> list[SeriesInfo]:
    """Every DICOM image series under ``folder`` (searched recursively), files sorted along the slice normal.

    Headers only are read (pydicom, ``stop_before_pixels``); non-DICOM files are skipped. Gaps, duplicated
    positions and uneven spacing are recorded on each :class:`SeriesInfo`, not raised.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "folder not found" if not folder.exists() else "is not a folder")
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            p = Path(root) / name
            if _is_candidate(p) and (ds := read_dicom_header(p)) is not None:
                groups[str(ds.SeriesInstanceUID)].append((p, ds))
    series = [_build_series(uid, items, folder) for uid, items in groups.items()]
    return sorted(series, key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.uid))


def read_dicom_series(series: SeriesInfo, allow_gaps: bool = False) -> sitk.Image:
    """Read one series with SimpleITK's ImageSeriesReader.

    Raises :class:`InputError` naming the folder, the series and the place for missing slices (unless
    ``allow_gaps``), duplicated slice positions, mixed orientations or a single slice.
    """
    where = series.folder
    if not series.files:
        raise InputError(where, f"series {series.label} has no image files")
    if series.duplicates:
        raise InputError(where, f"series {series.label} has duplicated slices: {'; '.join(series.duplicates[:3])}"
                                f"{' ...' if len(series.duplicates) > 3 else ''} (it may hold several volumes, "
                                "e.g. echoes, phases or a repeated acquisition)")
    if series.gaps and not allow_gaps:
        raise InputError(where, f"series {series.label} has missing slices {'; '.join(series.gaps)}; "
                                "refusing to read it with wrong geometry (run again with --allow-gaps to read it "
                                "anyway, with approximate geometry)")
    bad = [w for w in series.warnings if w.startswith(("slices have different orientations", "a single slice"))]
    if bad:
        raise InputError(where, f"series {series.label}: {bad[0]}")
    try:
        first = pydicom.dcmread(series.files[0], stop_before_pixels=True,
                                specific_tags=["Rows", "Columns", "BitsAllocated", "SamplesPerPixel"])
        rows, cols = int(first.Rows), int(first.Columns)
        bytes_per = max(int(first.get("BitsAllocated", 16) or 16) // 8, 1) * int(first.get("SamplesPerPixel", 1) or 1)
    except Exception:  # a damaged header
        raise InputError(series.files[0], "DICOM header without a valid Rows/Columns/BitsAllocated") from None
    check_memory(where, (cols, rows, len(series.files) * series.number_of_frames), bytes_per)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series.files)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        broken = _damaged_file(series.files)
        if broken:
            raise InputError(broken[0], f"{broken[1]} (series {series.label} in {where})") from None
        reason = next((ln.strip() for ln in reversed(str(exc).strip().splitlines()) if ln.strip()), "")
        raise InputError(where, f"series {series.label} cannot be read ({reason[:160]})") from None
    return validate_image(image, f"{where} (series {series.label})")


def _damaged_file(files: list[str]) -> tuple[str, str] | None:
    """(file, problem) of the first file of a series whose pixel data is missing or shorter than its header
    says (found after ITK refused the series, to name the file)."""
    for f in files:
        try:
            ds = pydicom.dcmread(f)
            data = ds.PixelData
            if not ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian).is_compressed:
                frames = int(ds.get("NumberOfFrames", 1) or 1)
                expected = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
                            * int(ds.BitsAllocated) // 8 * frames)
                if len(data) < expected:
                    return f, f"is a DICOM file truncated in its pixel data ({len(data)} of {expected} bytes)"
        except Exception as exc:  # pydicom raises many types on damaged files
            return f, f"is a DICOM file truncated or damaged ({type(exc).__name__}: {str(exc)[:100]})"
    return None


_NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "SR", "PR", "KO", "REG", "RTPLAN", "RTDOSE"}


def find_dicom(folder: str | Path, allow_gaps: bool = False, only_file: str | Path | None = None) -> Found:
    """The image series of a DICOM folder as case candidates; the series description says the sequence.

    Several series guessed as one sequence are ranked by slice count (the largest wins, with a warning).
    With ``only_file``, only the series holding that file is kept.
    """
    found = Found("dicom", [])
    for s in scan_dicom_folder(folder):
        if only_file is not None and str(Path(only_file)) not in s.files:
            continue
        if s.modality.upper() in _NON_IMAGE_MODALITIES:
            found.warnings.append(f"series {s.label} is a {s.modality} object, not an image; ignored")
            continue
        found.warnings.extend(f"series {s.label}: {w}" for w in s.warnings)
        if allow_gaps:
            found.warnings.extend(f"series {s.label}: missing slices {g}; read with approximate geometry"
                                  for g in s.gaps)
        meta = {"SeriesInstanceUID": s.uid, "StudyInstanceUID": s.study_uid, "PatientID": s.patient_id,
                "SeriesDescription": s.description, "Modality": s.modality, "SeriesNumber": s.series_number,
                "files": len(s.files)}
        found.images.append(FoundImage(
            label=f"series {s.label}", source=s.folder, name=normalise_name(s.description),
            sequence=guess_sequence(s.description), is_mask=False, rank=len(s.files) * s.number_of_frames,
            load=lambda s=s: read_dicom_series(s, allow_gaps=allow_gaps), meta=meta))
    return found
