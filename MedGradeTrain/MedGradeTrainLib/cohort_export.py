"""``medgrade cohort export``: a shareable copy of a cohort without identifiers.

Everything is an allow-list: case folders are renamed ``P0001``..., every image file gets a coded name
(its sequence, or ``image1``...), images are rewritten as NIfTI from pixels and geometry only (no DICOM
tags, no header text), and ``labels.csv`` holds the coded ids, the label, the coded site and only the
clinical columns a model config uses (``--config``; default: the graders' ``age`` and ``sex``), with free
text dropped (numbers, sex and the label's short codes are kept). The mapping (original -> coded) goes beside the export, never inside it nor over an input.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError

DEFAULT_CLINICAL = ("age", "sex")
# image keys kept as file names (every other key, e.g. a DICOM series description, becomes imageN)
CANONICAL_SEQUENCES = frozenset({"t1", "t1c", "t2", "flair", "pd", "dwi", "adc", "dce", "us", "mg", "ct"})
# a value of an allowed column: a number, or a short code (grade "G3", sex "F"); anything else is free text
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,11}")


def config_columns(config: str | Path | None) -> tuple[str | None, list[str]]:
    """(label column, clinical columns) a run config's kind uses (None, defaults without a config)."""
    if not config:
        return None, list(DEFAULT_CLINICAL)
    from .runner.config import read_config_file

    kind = read_config_file(config).get("kind")
    kind = kind if isinstance(kind, dict) else {}
    task = kind.get("task") if isinstance(kind.get("task"), dict) else {}
    label = task.get("column") or kind.get("label_column")
    clinical = kind.get("clinical_columns", list(DEFAULT_CLINICAL))
    if not isinstance(clinical, list) or not all(isinstance(c, str) for c in clinical):
        raise InputError(config, "kind.clinical_columns must be a list of column names")
    return (str(label) if label else None), clinical


def _clean_value(value: Any, column: str, label: bool = False) -> Any:
    """What of ``value`` may leave: a number below 1000 (an MRN is a number too), sex as ``M``/``F``, and for
    the label a short code (``G3``, ``high``); every other text is free text and dropped (``""``)."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, (int, float)):
        return value if abs(value) < 1000 else ""
    text = str(value).strip()
    if column == "sex":
        return {"m": "M", "f": "F", "male": "M", "female": "F", "0": "M", "1": "F"}.get(text.lower(), "")
    if label and _CODE.fullmatch(text) and not re.search(r"\d{4}", text):
        return text
    return ""


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def _check_paths(folder: Path, out: Path, mapping: Path, labels_csv: str | Path | None, config: Any) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(out, "the export folder is an existing file; choose a new folder")
    if _inside(out, folder) or _inside(folder, out):
        raise InputError(out, f"the export folder must lie outside the cohort {folder}")
    if out.exists() and any(out.iterdir()):
        raise InputError(out, "export folder exists and is not empty; choose another")
    if _inside(mapping, out):
        raise InputError(mapping, "the mapping file must not be inside the export folder")
    if _inside(mapping, folder) or mapping.is_dir():
        raise InputError(mapping, "the mapping file must not be inside the cohort or be a folder")
    for given in (labels_csv, config):
        if given and mapping.resolve() == Path(given).resolve():
            raise InputError(mapping, "the mapping file would overwrite an input file")


def _image_names(images: dict[str, str]) -> dict[str, str]:
    """sequence key -> coded file stem: canonical sequence names stay, anything else is ``imageN``."""
    out, n = {}, 0
    for key in images:
        if key in CANONICAL_SEQUENCES:
            out[key] = key
        else:
            n += 1
            out[key] = f"image{n}"
    return out


def _write_clean(image: sitk.Image, path: Path) -> None:
    clean = sitk.GetImageFromArray(sitk.GetArrayFromImage(image), isVector=image.GetNumberOfComponentsPerPixel() > 1)
    clean.CopyInformation(image)  # geometry only: origin, spacing, direction
    sitk.WriteImage(clean, str(path), useCompression=True)


def export_cohort(folder: str | Path, output: str | Path, labels_csv: str | Path | None = None,
                  mapping: str | Path | None = None, label_column: str = "grade", site_column: str = "institution",
                  prefix: str = "P", config: str | Path | None = None,
                  columns: list[str] | None = None) -> dict[str, Any]:
    """Write the export (see the module docstring); returns counts, paths and the kept columns."""
    from .cohort import scan_cohort

    folder, out = Path(folder), Path(output)
    cfg_label, clinical = config_columns(config)
    label_column = cfg_label or label_column
    clinical = list(dict.fromkeys([*clinical, *(columns or [])]))
    mapping = Path(mapping) if mapping else out.with_name(out.name + "-mapping-KEEP-LOCAL.csv")
    _check_paths(folder, out, mapping, labels_csv, config)
    cases = scan_cohort(folder, labels_csv, label_column, site_column)
    unreadable = [f"{c.case_id}: {p}" for c in cases for p in c.problems if "symlink" in p]
    if unreadable:
        raise InputError(folder, f"cannot export: {unreadable[0]}")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        result = _write(cases, tmp, mapping, label_column, clinical, prefix, bool(config))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**result, "output": str(out), "mapping": str(mapping)}


def _write(cases, tmp: Path, mapping: Path, label_column: str, clinical: list[str], prefix: str,
           labels_needed: bool) -> dict[str, Any]:
    from .cohort import load_case_image

    patients = sorted({c.patient_id for c in cases})
    new_id = {p: f"{prefix}{i + 1:04d}" for i, p in enumerate(patients)}
    sites = {s: f"S{i + 1}" for i, s in enumerate(sorted({str(c.site) for c in cases if c.site is not None}))}
    rows, map_rows, n_case, dropped = [], [], Counter(), Counter()
    for c in cases:
        pid = new_id[c.patient_id]
        n_case[pid] += 1
        cid = pid if n_case[pid] == 1 else f"{pid}-{n_case[pid]}"
        d = tmp / cid
        d.mkdir()
        names = _image_names(c.images)
        for key, src in {**c.images, **({"mask": c.mask} if c.mask else {})}.items():
            _write_clean(load_case_image(c, key, src), d / f"{names.get(key, 'mask')}.nii.gz")
        row: dict[str, Any] = {"id": cid, "patient": pid, label_column: _clean_value(c.label, label_column, label=True),
                               "site": sites.get(str(c.site), "") if c.site is not None else ""}
        for col in clinical:
            if col in (label_column, "id", "patient", "site"):
                continue
            value = _clean_value(c.clinical.get(col), col)
            if value == "" and c.clinical.get(col) not in (None, ""):
                dropped[col] += 1
            row[col] = value
        rows.append(row)
        map_rows.append({"export_id": cid, "patient_id": c.patient_id, "case": c.case_id, "folder": c.folder,
                         "mask_version": c.mask_version or ""})
    unlabelled = [r[label_column] for r in rows].count("")
    if labels_needed and unlabelled:
        raise InputError(cases[0].folder, f"{unlabelled} case(s) have no {label_column!r} label the config needs "
                                          "(give --labels with that column)")
    present = {k for c in cases for k, v in c.clinical.items() if v not in (None, "")}
    missing = [c for c in clinical if c not in present and c not in ("id", "patient", "site", label_column)]
    cols = ["id", "patient", label_column, "site", *[c for c in clinical if c not in ("id", "patient", "site",
                                                                                      label_column, *missing)]]
    with (tmp / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    (tmp / "README.txt").write_text("Exported by medgrade cohort export: identifiers removed; the mapping to the "
                                    "original patients is kept by the exporting site only.\n")
    mapping.parent.mkdir(parents=True, exist_ok=True)
    part = mapping.with_name(f".{mapping.name}.partial")
    with part.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(map_rows[0]) if map_rows else ["export_id"])
        w.writeheader()
        w.writerows(map_rows)
    part.replace(mapping)
    return {"cases": len(rows), "patients": len(patients), "columns": cols, "missing_columns": missing,
            "unlabelled": unlabelled,
            "dropped_free_text": dict(dropped)}
