"""Readers for breast images and the public layouts researchers already have.

- one image: PNG/JPEG (no physical spacing: sizes in pixels), DICOM MG/US (``PixelSpacing`` or
  ``ImagerPixelSpacing``), NRRD/NIfTI/MHA MRI; 2D images become single-slice volumes;
- BUSI: ``<root>/{benign,malignant,normal}/<name>.png`` + ``<name>_mask.png`` (``_mask_1``... united).
  BUSI has no patient ids: every image is its own case and patient (``busi:<name>``); a patient with
  several images may therefore sit in two folds -- say so wherever BUSI figures are shown;
- BUS-BRA: ``images/``, ``masks/``, ``bus_data.csv``; patient = ``Case``, one case holds its images;
- a breast case folder: ``mg_<view>.*``, ``us_<name>.*``, ``mri_<phase>.*`` with ``<stem>_mask.*`` or
  ``<stem>_box.json`` (``{"box": [x0, y0, x1, y1]}``; ``mri_mask.*``/``mri_box.json`` serve every phase)
  and an optional ``case.json`` (patient_id, clinical, labels, subtype, site);
- a folder of breast case folders.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder, read_case_info
from MedGradeCoreLib.errors import InputError

from .case import BreastCase, BreastImage, as_volume, mask_from_box, mask_on_image

PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
BUSI_CLASSES = ("benign", "malignant", "normal")
CASE_FILE_RE = re.compile(r"^(mg|us|mri)(?:_(.+?))?$", re.I)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in (*VOLUME_SUFFIXES, *PLAIN_SUFFIXES, *DICOM_SUFFIXES) if name.endswith(s)), "")


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(_suffix(path))] if _suffix(path) else path.stem


def is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and bool(_suffix(path))


def dicom_pixel_spacing(path: Path) -> tuple[float, float] | None:
    """(x, y) pixel spacing in mm of a 2D DICOM: ``PixelSpacing`` / ``ImagerPixelSpacing`` (MG), else the
    first ultrasound region's physical deltas in cm (US); None when the file has none."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise InputError(path, f"not a readable DICOM file ({exc})") from None
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        if key in ds and ds[key].value and len(ds[key].value) == 2:
            row, col = (float(v) for v in ds[key].value)
            if row > 0 and col > 0:
                return col, row
    for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
        if region.get("PhysicalUnitsXDirection") == 3 and region.get("PhysicalUnitsYDirection") == 3:  # cm
            dx, dy = float(region.PhysicalDeltaX) * 10, float(region.PhysicalDeltaY) * 10
            if dx > 0 and dy > 0:
                return dx, dy
    return None


def read_breast_image(path: str | Path) -> tuple[sitk.Image, bool]:
    """(float32 3D volume, whether its spacing is physical) from one image file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "image file not found")
    suffix = _suffix(p)
    if not suffix:
        raise InputError(p, "not an image file MedGrade reads (PNG/JPEG/BMP/TIFF, DICOM, NRRD/NIfTI/MHA)")
    from MedGradeCoreLib.io.images import read_image_file

    image = read_image_file(p)  # the declared size is checked before decoding (PNG/JPEG bombs)
    known = suffix in VOLUME_SUFFIXES
    if suffix in DICOM_SUFFIXES:
        flat = image.GetDimension() == 2 or image.GetSize()[2] == 1
        spacing = dicom_pixel_spacing(p) if flat else None
        if spacing is not None:
            image.SetSpacing(spacing if image.GetDimension() == 2 else (*spacing, image.GetSpacing()[2]))
        known = spacing is not None or not flat  # a multi-frame volume keeps SimpleITK's geometry
    vol = as_volume(image, str(p))
    if min(vol.GetSize()[:2]) < 2:
        raise InputError(p, f"image of size {vol.GetSize()} is too small")
    return vol, known


def read_roi(image: sitk.Image, mask_path: Path | None = None, box_path: Path | None = None) -> sitk.Image | None:
    """The ROI of ``image`` from a mask file or a box JSON (None when neither is given)."""
    if mask_path is not None:
        mask, _ = read_breast_image(mask_path)
        return mask_on_image(mask, image, str(mask_path))
    if box_path is not None:
        try:
            box = json.loads(box_path.read_text())["box"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(box_path, f"expected {{\"box\": [x0, y0, x1, y1]}} ({exc})") from None
        return mask_from_box(image, box, str(box_path))
    return None


def load_image_with_roi(path: Path, mask_path: Path | None = None, box_path: Path | None = None,
                        labels: dict[str, Any] | None = None) -> BreastImage:
    image, known = read_breast_image(path)
    return BreastImage(image, read_roi(image, mask_path, box_path), str(path), known, dict(labels or {}))


# ----------------------------------------------------------------------------- BUSI
def is_busi_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / c).is_dir() and any((p / c).glob("*.png")) for c in BUSI_CLASSES)


def read_busi(path: str | Path, classes: tuple[str, ...] = ("benign", "malignant"),
              ids: set[str] | None = None) -> list[BreastCase]:
    """One case per BUSI image (``busi:<name>``; no patient ids in BUSI); label ``pathology`` = folder;
    ``ids``: only these image names (e.g. ``benign_1``)."""
    root = Path(path)
    if not is_busi_folder(root):
        raise InputError(root, f"not a BUSI folder (needs {'/'.join(BUSI_CLASSES)} sub-folders of PNG files)")
    cases = []
    for cls in classes:
        folder = root / cls
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.png"), key=_natural):
            if "_mask" in f.stem or (ids is not None and f.stem not in ids):
                continue
            masks = sorted(folder.glob(f"{f.stem}_mask*.png"))
            image = load_image_with_roi(f)
            if masks:
                rois = [mask_on_image(read_breast_image(m)[0], image.image, str(m)) for m in masks]
                roi = rois[0]
                for extra in rois[1:]:
                    roi = sitk.Or(roi, extra)
                image.roi = roi
            cases.append(BreastCase(f.stem, f"busi:{f.stem}", us={f.stem: image},
                                    labels={"pathology": cls}, site="BUSI (Baheya hospital, Cairo)",
                                    meta={"layout": "BUSI", "patient_id_note": "BUSI has no patient ids"}))
    if not cases:
        raise InputError(root, f"no BUSI images of the classes {', '.join(classes)}")
    return cases


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


# ----------------------------------------------------------------------------- BUS-BRA
def is_busbra_folder(path: str | Path) -> bool:
    p = Path(path)
    return (p / "bus_data.csv").is_file() and (p / "images").is_dir()


def read_busbra_table(path: str | Path) -> list[dict[str, str]]:
    csv_path = Path(path) / "bus_data.csv"
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(csv_path, f"unreadable ({exc})") from None
    need = {"ID", "Case", "Pathology"}
    if not rows or need - set(rows[0]):
        raise InputError(csv_path, f"not a BUS-BRA table (needs columns {', '.join(sorted(need))})")
    return rows


def read_busbra(path: str | Path, ids: set[str] | None = None) -> list[BreastCase]:
    """One case per BUS-BRA patient (``Case``) holding its images; per-image ``pathology``/``birads``."""
    root = Path(path)
    if not is_busbra_folder(root):
        raise InputError(root, "not a BUS-BRA folder (needs images/ and bus_data.csv)")
    by_case: dict[str, BreastCase] = {}
    for line, row in enumerate(read_busbra_table(root), 2):
        if ids is not None and row["ID"] not in ids:
            continue
        img = root / "images" / f"{row['ID']}.png"
        if not img.is_file():
            raise InputError(img, f"listed in bus_data.csv line {line} but missing")
        mask = root / "masks" / f"{row['ID']}.png"
        labels = {"pathology": row["Pathology"].strip().lower(), "birads": row.get("BIRADS", "").strip(),
                  "histology": row.get("Histology", "").strip()}
        image = load_image_with_roi(img, mask if mask.is_file() else None, labels=labels)
        image.meta.update(side=row.get("Side", ""), device=row.get("Device", ""))
        pid = f"busbra:{int(row['Case']):04d}" if row["Case"].isdigit() else f"busbra:{row['Case']}"
        case = by_case.setdefault(pid, BreastCase(pid, pid, labels={"pathology": labels["pathology"]},
                                                  site=row.get("Device", "").strip() or None,
                                                  meta={"layout": "BUS-BRA"}))
        case.us[row["ID"]] = image
    if not by_case:
        raise InputError(root, "no BUS-BRA images selected")
    return list(by_case.values())


# ----------------------------------------------------------------------------- breast case folders
def _case_files(folder: Path) -> dict[str, dict[str, Path]]:
    """stem -> {"image": path, "mask": path, "box": path} for the mg_/us_/mri_ files of a folder."""
    out: dict[str, dict[str, Path]] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        stem = _stem(f) if is_image_file(f) else (f.stem if f.suffix.lower() == ".json" else None)
        if stem is None:
            continue
        role = "image"
        for tag in ("mask", "box"):
            if stem.lower().endswith(f"_{tag}") or stem.lower() == tag:
                role, stem = tag, stem[: -len(tag) - 1] if stem.lower() != tag else ""
        if role == "box" and f.suffix.lower() != ".json":
            continue
        if role == "image" and f.suffix.lower() == ".json":
            continue
        if CASE_FILE_RE.match(stem):
            out.setdefault(stem, {})[role] = f
    return out


def is_breast_case_folder(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any("image" in v for v in _case_files(p).values())


def read_breast_case(path: str | Path) -> BreastCase:
    """A breast case folder (see the module docstring)."""
    folder = Path(path)
    files = _case_files(folder) if folder.is_dir() else {}
    if not any("image" in v for v in files.values()):
        raise InputError(folder, "no mg_*/us_*/mri_* image in this breast case folder")
    meta: dict[str, Any] = {}
    if is_case_folder(folder):
        meta = read_case_info(folder, required=())
    case = BreastCase(folder.name, str(meta.get("patient_id", "")), clinical=dict(meta.get("clinical", {})),
                      labels=dict(meta.get("labels", {})), subtype=meta.get("subtype"), site=meta.get("site"),
                      meta={"layout": "breast case folder"})
    shared_mri = files.get("mri", {}) if "image" not in files.get("mri", {}) else {}
    for stem, parts in files.items():
        if "image" not in parts:
            continue
        modality, _, name = stem.partition("_")
        modality = modality.lower()
        name = name or modality
        roi_parts = parts if ("mask" in parts or "box" in parts) or modality != "mri" else shared_mri
        image = load_image_with_roi(parts["image"], roi_parts.get("mask"), roi_parts.get("box"))
        if modality == "mri" and image.is_2d:
            raise InputError(parts["image"], "an MRI sequence must be a 3D volume")
        case.modality(modality)[name] = image
    return case


def load_breast_input(path: str | Path) -> tuple[str, list[BreastCase]]:
    """(layout name, cases) of a BUSI folder, BUS-BRA folder, breast case folder, folder of breast case
    folders, or a single US image file (with ``<stem>_mask.*`` beside it when there is one)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "not found")
    if p.is_file():
        mask = next((m for m in sorted(p.parent.glob(f"{_stem(p)}_mask*")) if is_image_file(m)), None)
        image = load_image_with_roi(p, mask)
        return "image", [BreastCase(_stem(p), us={_stem(p): image}, meta={"layout": "single image"})]
    if is_busbra_folder(p):
        return "BUS-BRA", read_busbra(p)
    if is_busi_folder(p):
        return "BUSI", read_busi(p)
    if is_breast_case_folder(p):
        return "breast case", [read_breast_case(p)]
    subs = [d for d in sorted(p.iterdir()) if d.is_dir() and is_breast_case_folder(d)]
    if subs:
        return "breast cohort", [read_breast_case(d) for d in subs]
    raise InputError(p, "not a breast input: expected a BUSI or BUS-BRA folder, a breast case folder "
                        "(mg_*/us_*/mri_* files) or a folder of them")


def looks_like_breast_input(path: str | Path) -> bool:
    """Cheap test used by ``medgrade predict`` to dispatch breast inputs."""
    p = Path(path)
    if p.is_file():
        return _suffix(p) in PLAIN_SUFFIXES
    if not p.is_dir():
        return False
    return (is_busbra_folder(p) or is_busi_folder(p) or is_breast_case_folder(p)
            or any(d.is_dir() and is_breast_case_folder(d) for d in p.iterdir()))
