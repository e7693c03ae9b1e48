"""Cohorts for training: a folder of cases (preprocessed ``case.json`` folders, the glioma-lgg-tcga layout,
BraTS / research-client / plain volume folders) + a CSV of labels and clinical columns.

:func:`check_cohort` (``medgrade cohort check``) reports missing sequences, geometry problems (sequences or
mask on another grid, bad spacing), label balance per class and per site, duplicate patients (one patient
id in two folders; identical images under two ids), a given split file with a patient in two parts, and
which cases carry corrected masks and which version training uses (the newest by default).
:func:`MedGradeTrainLib.cohort_export.export_cohort` (``medgrade cohort export``) writes a shareable copy without identifiers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import SimpleITK as sitk

from MedGradeCoreLib.case_folder import is_case_folder, read_case_info
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.hashing import sha256_file



@dataclass
class CaseInfo:
    case_id: str
    patient_id: str
    folder: str
    layout: str
    images: dict[str, str]  # sequence -> file
    mask: str | None = None  # the mask training uses (a corrected version when there is one)
    mask_version: int | None = None  # None: the original mask
    versions: list[int] = field(default_factory=list)
    label: Any = None
    site: str | None = None
    clinical: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # key -> the reader's loader (a DICOM series is a folder that only its reader reads); not in reports
    loaders: dict[str, Callable[[], sitk.Image]] = field(default_factory=dict, repr=False, compare=False)

    def report(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "loaders"}


def corrected_mask(case_dir: str | Path, version: str | int = "newest") -> tuple[Path | None, int | None]:
    """The corrected mask of a case folder (``corrections/vNNNN/``): the newest, a given version, or none
    (``"original"``); ``(None, None)`` when the case has no corrections."""
    from MedGradeSegmentLib.segmentation.corrections import CORRECTIONS, MASK_NAME, versions

    found = versions(case_dir)
    if not found or version == "original":
        return None, None
    v = found[-1] if version == "newest" else int(version)
    if v not in found:
        raise InputError(case_dir, f"has no corrected mask version {v} (versions: {', '.join(map(str, found))})")
    return Path(case_dir) / CORRECTIONS / f"v{v:04d}" / MASK_NAME, v


def _labels(labels_csv: str | Path | None) -> dict[str, dict[str, Any]]:
    if not labels_csv:
        return {}
    from MedGradeCoreLib.io.clinical_csv import read_clinical_csv, read_labels_csv

    rows = read_clinical_csv(labels_csv)
    for pid, row in read_labels_csv(labels_csv).items():
        rows.setdefault(pid, {}).update(row)
    return rows


def scan_cohort(folder: str | Path, labels_csv: str | Path | None = None, label_column: str = "grade",
                site_column: str = "institution", mask_version: str | int = "newest") -> list[CaseInfo]:
    """One :class:`CaseInfo` per case folder (nothing but headers is read)."""
    from MedGradeCoreLib.io.lgg_tcga import MASK_FILE, SEQUENCE_FILES, is_lgg_tcga_cohort, read_lgg_cohort

    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "cohort folder not found")
    table = _labels(labels_csv)
    out: list[CaseInfo] = []
    if is_lgg_tcga_cohort(root):
        for r in read_lgg_cohort(root):
            info = CaseInfo(r.case, r.patient_id, str(r.folder), "glioma-lgg-tcga",
                            {s: str(r.folder / f) for s, f in SEQUENCE_FILES.items() if s in r.available},
                            str(r.folder / MASK_FILE), label=r.grade, site=r.institution,
                            clinical={"age": r.age, "sex": r.sex})
            info.problems += [f"{s} not acquired (the data set put FLAIR in its slot)"
                              for s in SEQUENCE_FILES if s not in r.available]
            out.append(info)
    else:
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not _inside(d, root) or any(p.is_symlink() and p.is_dir() and not _inside(p, root)
                                           for p in d.iterdir()):
                target = d.resolve() if not _inside(d, root) else "a folder outside the cohort"
                out.append(CaseInfo(d.name, d.name, str(d), "unknown", {}, problems=[
                    f"symlink leaving the cohort (-> {target}): not followed"]))
                continue
            out.append(_scan_case(d))
    for info in out:
        _outside_links(info, root)
    for info in out:
        row = table.get(info.patient_id) or table.get(info.case_id) or {}
        if row:
            info.label = row.get(label_column, info.label)
            info.site = row.get(site_column, info.site)
            info.clinical.update({k: v for k, v in row.items() if k not in (label_column, site_column)})
        p, v = corrected_mask(info.folder, mask_version)
        from MedGradeSegmentLib.segmentation.corrections import versions

        info.versions = versions(info.folder)
        if p is not None:
            info.mask, info.mask_version = str(p), v
    return out


def _scan_case(d: Path) -> CaseInfo:
    if is_case_folder(d):
        try:
            meta = read_case_info(d, required=("sequences",))
            seqs = {k: str(d / v) for k, v in dict(meta["sequences"]).items()}
        except InputError as exc:
            return CaseInfo(d.name, d.name, str(d), "preprocessed", {}, problems=[exc.problem])
        mask = str(d / meta["lesion_mask"]) if meta.get("lesion_mask") else None
        return CaseInfo(d.name, str(meta.get("patient_id", d.name)), str(d), "preprocessed", seqs, mask,
                        label=(meta.get("labels") or {}).get("grade"), clinical=dict(meta.get("clinical") or {}))
    from MedGradeCoreLib.io.loader import find_images

    try:
        found = find_images(d)
    except InputError as exc:
        return CaseInfo(d.name, d.name, str(d), "unknown", {}, problems=[exc.problem])
    images = {im.sequence or im.name: im.source for im in found.images if not im.is_mask}
    loaders = {im.sequence or im.name: im.load for im in found.images if not im.is_mask}
    masks = [im for im in found.images if im.is_mask]
    if masks:
        loaders["mask"] = masks[0].load
    return CaseInfo(d.name, d.name, str(d), found.layout, images, masks[0].source if masks else None,
                    problems=list(found.warnings), loaders=loaders)


def _is_volume_file(path: str) -> bool:
    from MedGradeCoreLib.io.volume_folder import is_volume_file

    return Path(path).is_file() and is_volume_file(Path(path))


def load_case_image(case: CaseInfo, key: str, source: str) -> sitk.Image:
    """Image ``key`` of a scanned case: through its reader (DICOM series), else the volume file."""
    if key in case.loaders and not _is_volume_file(source):
        return case.loaders[key]()
    try:
        return sitk.ReadImage(source)
    except RuntimeError as exc:
        raise InputError(source, f"unreadable ({str(exc).strip().splitlines()[-1][:120]})") from None


def _inside(path: Path, root: Path) -> bool:
    real, top = path.resolve(), root.resolve()
    return real == top or top in real.parents


def _outside_links(info: CaseInfo, root: Path) -> None:
    """Drop (and report) images and masks that resolve outside the cohort (a symlink leaving it)."""
    for key, src in list(info.images.items()):
        if not _inside(Path(src), root):
            info.problems.append(f"symlink leaving the cohort: {key} -> {Path(src).resolve()} (not followed)")
            del info.images[key]
            info.loaders.pop(key, None)
    if info.mask and not _inside(Path(info.mask), root):
        info.problems.append(f"symlink leaving the cohort: mask -> {Path(info.mask).resolve()} (not followed)")
        info.mask = None
        info.loaders.pop("mask", None)


def _header(path: str, case: CaseInfo | None = None, key: str = "") -> tuple[tuple, tuple, tuple] | str:
    if case is not None and key in case.loaders and not _is_volume_file(path):  # a DICOM series: its reader
        try:
            img = case.loaders[key]()
        except InputError as exc:
            return f"unreadable ({exc.problem[:120]})"
        return img.GetSize(), tuple(round(s, 4) for s in img.GetSpacing()), tuple(round(o, 2) for o in img.GetOrigin())
    if not _is_volume_file(path):
        return "unreadable (not an image file)"
    r = sitk.ImageFileReader()
    r.SetFileName(path)
    try:
        r.ReadImageInformation()
    except RuntimeError as exc:
        return f"unreadable ({str(exc).strip().splitlines()[-1][:120]})"
    return r.GetSize(), tuple(round(s, 4) for s in r.GetSpacing()), tuple(round(o, 2) for o in r.GetOrigin())



def check_cohort(folder: str | Path, labels_csv: str | Path | None = None, sequences: list[str] | None = None,
                 split_file: str | Path | None = None, label_column: str = "grade", site_column: str = "institution",
                 mask_version: str | int = "newest") -> dict[str, Any]:
    """The cohort report: ``errors`` (training would be wrong), ``warnings``, per-case rows, balance."""
    cases = scan_cohort(folder, labels_csv, label_column, site_column, mask_version)
    errors: list[str] = []
    warnings: list[str] = []
    for c in cases:
        for s in sequences or []:
            if s not in c.images:
                errors.append(f"{c.case_id}: missing sequence {s} (has {', '.join(sorted(c.images)) or 'none'})")
        errors += [f"{c.case_id}: {p}" for p in c.problems if p.startswith("symlink leaving")]
        warnings += [f"{c.case_id}: {p}" for p in c.problems if not p.startswith("symlink leaving")]
        if c.mask is None:
            warnings.append(f"{c.case_id}: no lesion mask")
        heads = {k: _header(v, c, k) for k, v in {**c.images, **({"mask": c.mask} if c.mask else {})}.items()}
        for k, h in heads.items():
            if isinstance(h, str):
                errors.append(f"{c.case_id}: {k} {h}")
            elif any(s <= 0 or s > 20 for s in h[1]):
                errors.append(f"{c.case_id}: {k} has implausible spacing {h[1]} mm")
        good = {k: h for k, h in heads.items() if not isinstance(h, str)}
        if good:
            ref_key = next(iter(good))
            for k, h in good.items():
                if h[0] != good[ref_key][0] or h[1] != good[ref_key][1]:
                    (errors if k == "mask" else warnings).append(
                        f"{c.case_id}: {k} grid {h[0]} at {h[1]} mm differs from {ref_key} {good[ref_key][0]} at "
                        f"{good[ref_key][1]} mm" + (" (resampled when loading)" if k != "mask" else ""))
    by_patient = defaultdict(list)
    for c in cases:
        by_patient[c.patient_id].append(c.case_id)
    for pid, ids in by_patient.items():
        if len(ids) > 1:
            warnings.append(f"patient {pid} has {len(ids)} case folders ({', '.join(ids)}): kept in one part of "
                            "every split")
    seen: dict[str, CaseInfo] = {}
    for c in cases:  # the same images under two patient ids: a duplicated patient
        ref = next(iter(sorted(c.images.items())), (None, None))[1]
        if ref and Path(ref).is_file():
            digest = sha256_file(ref)
            if digest in seen and seen[digest].patient_id != c.patient_id:
                errors.append(f"duplicate patient: {seen[digest].case_id} ({seen[digest].patient_id}) and "
                              f"{c.case_id} ({c.patient_id}) have identical images ({Path(ref).name})")
            seen.setdefault(digest, c)
    if split_file:
        from .runner.splits import read_split_file

        try:
            read_split_file(split_file, {c.patient_id for c in cases})
        except InputError as exc:
            errors.append(str(exc))
    labels = Counter(str(c.label) for c in cases if c.label is not None)
    per_site: dict[str, dict[str, int]] = defaultdict(dict)
    for c in cases:
        if c.label is not None:
            per_site[str(c.site)][str(c.label)] = per_site[str(c.site)].get(str(c.label), 0) + 1
    unlabelled = [c.case_id for c in cases if c.label is None]
    if unlabelled:
        warnings.append(f"{len(unlabelled)} case(s) without a {label_column!r} label: {', '.join(unlabelled[:5])}")
    if len(labels) == 1:
        warnings.append(f"every labelled case is {next(iter(labels))!r}: nothing to learn or validate")
    corrected = {c.case_id: c.mask_version for c in cases if c.mask_version is not None}
    return {"cohort": str(folder), "cases": len(cases), "patients": len(by_patient), "errors": errors,
            "warnings": warnings, "labels": dict(labels), "labels_per_site": {k: dict(v) for k, v in per_site.items()},
            "corrected_masks": {c.case_id: {"used": c.mask_version, "versions": c.versions} for c in cases
                                if c.versions},
            "corrected_cases": len(corrected), "rows": [c.report() for c in cases]}
