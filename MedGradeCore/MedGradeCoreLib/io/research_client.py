"""The original research client's layout: one folder per patient, one sub-folder per sequence of 2D slices.

```
<cohort>/clinical.csv                  id, age, sex (0 = male, 1 = female), extra columns
<cohort>/labels.csv                    id, grade, ki67 ... (optional)
<cohort>/<patient>/<sequence>/001.png  same-named slice images in every sequence sub-folder
<cohort>/<patient>/mask/001.png        optional lesion mask slices (non-zero = lesion)
<cohort>/<patient>/medgrade_geometry.json   optional sidecar written by MedGrade (see below)
```

Slices are stacked in natural sort order of their names (``2.png`` before ``10.png``). Slice images
carry no geometry and only 8/16-bit unsigned values, so MedGrade's writer adds a small JSON sidecar with
each sequence's spacing, origin, direction, pixel type and the linear map from PNG values back to
image values. Without it (folders from the original client) the spacing is taken as 1 mm, the origin
as 0 and the direction as identity, and that is recorded as a warning. What the layout cannot carry
even with the sidecar: float intensities beyond 16-bit precision (quantised, marked ``lossy``), DICOM
headers and any per-slice metadata.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.sequence_names import guess_sequence, is_lesion_mask_name, normalise_name
from MedGradeCoreLib.io.clinical_csv import upsert_csv_row
from MedGradeCoreLib.io.images import check_declared_size, validate_image
from MedGradeCoreLib.io.items import Found, FoundImage

SLICE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SIDECAR = "medgrade_geometry.json"
MASK_FOLDER = "mask"
CLINICAL_CSV = "clinical.csv"
LABELS_CSV = "labels.csv"


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def slice_files(folder: Path) -> list[Path]:
    """The 2D slice images directly in ``folder``, in natural sort order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SLICE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: _natural_key(p.name))


def is_research_client_folder(folder: str | Path) -> bool:
    """True when ``folder`` has at least one sub-folder holding 2D slice images."""
    folder = Path(folder)
    return folder.is_dir() and any(d.is_dir() and slice_files(d) for d in folder.iterdir())


def _to_scalar(image: sitk.Image, where: Path) -> sitk.Image:
    """Grey value of an RGB(A) slice stack whose colour channels are equal; refuse true colour."""
    n = image.GetNumberOfComponentsPerPixel()
    if n == 1:
        return image
    channels = [sitk.VectorIndexSelectionCast(image, i) for i in range(min(n, 3))]
    first = sitk.GetArrayViewFromImage(channels[0])
    if any(not np.array_equal(first, sitk.GetArrayViewFromImage(c)) for c in channels[1:]):
        raise InputError(where, "slice images are in colour; grey-level slices are needed")
    return channels[0]


def read_slice_folder(folder: str | Path, geometry: dict | None = None) -> sitk.Image:
    """Stack a sub-folder's 2D slices into a 3D image, restoring geometry and intensities from ``geometry``."""
    folder = Path(folder)
    files = slice_files(folder)
    if len(files) < 2:
        raise InputError(folder, f"holds {len(files)} slice image(s); a 3D volume needs several slices")
    sizes = {}
    for f in files:
        if f.stat().st_size == 0:
            raise InputError(f, "the slice image is empty (0 bytes)")
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(f))
        try:
            reader.ReadImageInformation()
        except (RuntimeError, OverflowError):
            raise InputError(f, "cannot be read as an image (truncated or corrupt)") from None
        check_declared_size(f, reader, len(files))  # before decoding: a PNG bomb is refused here
        sizes.setdefault(reader.GetSize()[:2], f)
    if len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        raise InputError(folder, f"slices differ in size: {f1.name} is {s1[0]}×{s1[1]}, {f2.name} is {s2[0]}×{s2[1]}")
    try:
        image = sitk.ReadImage([str(f) for f in files])
    except RuntimeError as exc:
        raise InputError(folder, f"slice images cannot be read ({str(exc).strip().splitlines()[-1][:160]})") from None
    image = _to_scalar(image, folder)
    if geometry:
        arr = sitk.GetArrayFromImage(image).astype(np.float64) * geometry.get("slope", 1.0) + geometry.get(
            "intercept", 0.0)
        dtype = np.dtype(geometry.get("dtype", "float32"))
        if np.issubdtype(dtype, np.integer):
            arr = np.rint(arr)
        out = sitk.GetImageFromArray(arr.astype(dtype))
        out.SetSpacing(geometry["spacing"])
        out.SetOrigin(geometry["origin"])
        out.SetDirection(geometry["direction"])
        image = out
    else:
        image.SetSpacing((1.0, 1.0, 1.0))
        image.SetOrigin((0.0, 0.0, 0.0))
        image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return validate_image(image, folder)


def read_sidecar(folder: Path) -> dict:
    path = folder / SIDECAR
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())["sequences"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"unreadable geometry sidecar ({exc})") from None


def find_research_client(folder: str | Path) -> Found:
    """The sequence (and mask) sub-folders of one research-client patient folder."""
    folder = Path(folder)
    sidecar = read_sidecar(folder)
    found = Found("research-client", [])
    names: dict[str, list[str]] = {}
    for sub in sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: d.name.lower()):
        files = slice_files(sub)
        if not files:
            continue
        names[sub.name] = [f.name for f in files]
        geometry = sidecar.get(sub.name)
        found.images.append(FoundImage(
            label=f"sub-folder {sub.name}/", source=str(sub), name=normalise_name(sub.name),
            sequence=guess_sequence(sub.name), is_mask=is_lesion_mask_name(sub.name),
            load=lambda sub=sub, geometry=geometry: read_slice_folder(sub, geometry)))
    if not sidecar:
        found.warnings.append("slice images carry no voxel spacing or position; assumed 1 mm spacing, "
                              "origin 0 and identity orientation")
    if len({tuple(v) for v in names.values()}) > 1:
        found.warnings.append("sequence sub-folders hold differently named slices: "
                              + "; ".join(f"{k}/ {len(v)} slices" for k, v in names.items()))
    return found


def _png_mapping(arr: np.ndarray) -> tuple[float, float, bool]:
    """(slope, intercept, lossy) such that ``value = png * slope + intercept`` with png in 0..65535."""
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer) or np.array_equal(arr, np.rint(arr)):
        intercept = min(0.0, lo) if hi - min(0.0, lo) <= 65535 else lo
        if hi - intercept <= 65535:
            return 1.0, intercept, False
    slope = (hi - lo) / 65535 if hi > lo else 1.0
    return slope, lo, True


def _write_slices(arr: np.ndarray, folder: Path, slope: float, intercept: float, dtype) -> None:
    png = np.clip(np.rint((arr.astype(np.float64) - intercept) / slope), 0, np.iinfo(dtype).max).astype(dtype)
    folder.mkdir(parents=True)
    width = max(3, len(str(png.shape[0])))
    for k in range(png.shape[0]):
        sitk.WriteImage(sitk.GetImageFromArray(png[k]), str(folder / f"{k + 1:0{width}d}.png"))


def write_research_client_case(case: Case, folder: str | Path) -> Path:
    """Write ``case`` into cohort folder ``folder`` in the research-client layout; returns the patient folder.

    Writes ``<folder>/<patient_id>/<sequence>/NNN.png`` (16-bit, 8-bit for the 0/255 mask), the geometry
    sidecar, and adds the patient's row to ``<folder>/clinical.csv`` (and ``labels.csv`` when it has labels).
    """
    folder = Path(folder)
    patient = folder / case.patient_id
    if patient.exists():
        raise InputError(patient, "already exists; remove it or write to another folder")
    if not case.images:
        raise InputError(patient, f"case {case.patient_id} has no images to write")
    sidecar: dict[str, dict] = {}
    written = [(name, image, False) for name, image in case.images.items()]
    if case.mask is not None:
        written.append((MASK_FOLDER, case.mask, True))
    try:
        for name, image, is_mask in written:
            validate_image(image, f"{case.patient_id}/{name}")
            arr = sitk.GetArrayViewFromImage(image)
            if is_mask:  # 0/255 slices so that the lesion is visible in any image viewer
                arr = (arr > 0).astype(np.uint8)
                slope, intercept, lossy, png_dtype = 1 / 255, 0.0, False, np.uint8
            else:
                slope, intercept, lossy = _png_mapping(arr)
                png_dtype = np.uint16
            _write_slices(arr, patient / name, slope, intercept, png_dtype)
            sidecar[name] = {"spacing": list(image.GetSpacing()), "origin": list(image.GetOrigin()),
                             "direction": list(image.GetDirection()), "dtype": str(arr.dtype),
                             "slope": slope, "intercept": intercept, "lossy": lossy}
        (patient / SIDECAR).write_text(json.dumps({"format": 1, "sequences": sidecar}, indent=1))
    except BaseException:
        shutil.rmtree(patient, ignore_errors=True)
        raise
    upsert_csv_row(folder / CLINICAL_CSV, case.patient_id, case.clinical, first_columns=("age", "sex"))
    if case.labels:
        upsert_csv_row(folder / LABELS_CSV, case.patient_id, case.labels, labels=True)
    return patient
