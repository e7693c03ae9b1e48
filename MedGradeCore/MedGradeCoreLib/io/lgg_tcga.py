"""The glioma-lgg-tcga cohort layout: one folder per case (``t1``, ``flair``, ``t1c``, ``mask`` volumes) and a
``clinical.csv`` beside them (``patient_id, case, institution, age, sex, grade, slices, tumour_slices,
t1_available, t1c_available``).

In this data set (Buda et al. 2019, TCGA-LGG) a few patients have no pre- or post-contrast T1: the data
set's authors copied FLAIR into that slot. ``t1_available``/``t1c_available`` = 0 says so; such a
sequence is *not* loaded, so a model that needs it sees the patient as lacking it (never a FLAIR
disguised as T1c). The volumes carry no real geometry (1.875 mm in-plane and 150 mm / N slices are the
data set's estimates); ``Case.meta["geometry"]`` says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.clinical_csv import read_clinical_csv
from MedGradeCoreLib.io.images import read_image
from MedGradeCoreLib.io.loader import lesion_mask_on_grid

CLINICAL_CSV = "clinical.csv"
SEQUENCE_FILES = {"t1": "t1.nii.gz", "flair": "flair.nii.gz", "t1c": "t1c.nii.gz"}
MASK_FILE = "mask.nii.gz"
_AVAILABLE_FLAG = {"t1": "t1_available", "t1c": "t1c_available"}  # FLAIR is always the real FLAIR
_REQUIRED_COLUMNS = ("case", "institution", "grade", "t1_available", "t1c_available")
GEOMETRY_NOTE = ("estimated geometry: 1.875 mm in-plane assumes a 240 mm field of view, slice spacing = "
                 "150 mm / slices; images stored 2x down-sampled in-plane (128x128)")


@dataclass(frozen=True)
class LggRecord:
    """One row of the cohort's clinical.csv (nothing loaded): what a splitter or data set builder needs."""

    patient_id: str
    case: str  # the case folder's name
    folder: Path
    institution: str
    grade: str | None  # "G2" / "G3", None when the CSV has no grade
    age: float | None
    sex: str | None  # "M" / "F"
    available: tuple[str, ...]  # sequences really acquired (flags respected), in file order
    slices: int | None = None
    tumour_slices: int | None = None

    def has(self, sequences: Sequence[str]) -> bool:
        return all(s in self.available for s in sequences)


def is_lgg_tcga_cohort(root: str | Path) -> bool:
    """True for a folder holding ``clinical.csv`` with the cohort's ``case`` and availability columns."""
    csv_path = Path(root) / CLINICAL_CSV
    if not csv_path.is_file():
        return False
    header = csv_path.read_text(encoding="utf-8-sig").splitlines()[:1]
    return bool(header) and all(c in header[0].lower() for c in ("case", "t1c_available"))


def _flag(row: dict[str, Any], column: str, csv_path: Path, pid: str) -> bool:
    value = row.get(column)
    if value not in (0, 1):
        raise InputError(csv_path, f"patient {pid}: {column} is {value!r}, expected 0 or 1")
    return value == 1


def read_lgg_cohort(root: str | Path) -> list[LggRecord]:
    """Every case of the cohort, sorted by case folder; checks each folder and its files exist."""
    root = Path(root)
    csv_path = root / CLINICAL_CSV
    if not root.is_dir():
        raise InputError(root, "cohort folder not found" if not root.exists() else "is not a folder")
    table = read_clinical_csv(csv_path)
    records = []
    for pid, row in table.items():
        missing = [c for c in _REQUIRED_COLUMNS if c not in row and c != "grade"]
        if missing:
            raise InputError(csv_path, f"patient {pid}: no {', '.join(missing)} value")
        folder = root / str(row["case"])
        if not folder.is_dir():
            raise InputError(folder, f"case folder of patient {pid} (named in {csv_path.name}) not found")
        lacking = [f for f in (*SEQUENCE_FILES.values(), MASK_FILE) if not (folder / f).is_file()]
        if lacking:
            raise InputError(folder, f"missing {', '.join(lacking)}")
        grade = row.get("grade")
        if grade is not None and grade not in ("G2", "G3", "G4"):
            raise InputError(csv_path, f"patient {pid}: grade {grade!r} is not G2, G3 or G4")
        available = tuple(s for s in SEQUENCE_FILES
                          if s not in _AVAILABLE_FLAG or _flag(row, _AVAILABLE_FLAG[s], csv_path, pid))
        records.append(LggRecord(
            patient_id=pid, case=str(row["case"]), folder=folder, institution=str(row["institution"]),
            grade=grade, age=row.get("age"), sex=row.get("sex"), available=available,
            slices=row.get("slices"), tumour_slices=row.get("tumour_slices")))
    if not records:
        raise InputError(csv_path, "no patients")
    return sorted(records, key=lambda r: r.case)


def load_lgg_case(record: LggRecord, sequences: Sequence[str] | None = None, reference: str = "flair") -> Case:
    """The :class:`Case` of one cohort record: the really acquired sequences (or only ``sequences``; a
    requested one the patient lacks is an :class:`InputError` naming it), the lesion mask on the
    ``reference`` grid, clinical ``age``/``sex``/``institution`` and the label ``grade``."""
    wanted = list(sequences) if sequences else list(record.available)
    lacking = [s for s in wanted if s not in record.available]
    if lacking:
        why = " (the data set's authors put FLAIR in that slot)" if any(s in _AVAILABLE_FLAG for s in lacking) else ""
        raise InputError(record.folder, f"patient {record.patient_id} has no {', '.join(lacking)}{why}")
    unknown = [s for s in wanted if s not in SEQUENCE_FILES]
    if unknown:
        raise InputError(record.folder, f"this cohort has no {', '.join(unknown)} (it has {', '.join(SEQUENCE_FILES)})")
    case = Case(patient_id=record.patient_id, reference=reference if reference in wanted else wanted[0])
    for seq in wanted:
        path = record.folder / SEQUENCE_FILES[seq]
        case.images[seq] = read_image(path)
        case.sources[seq] = str(path)
    mask_path = record.folder / MASK_FILE
    case.mask, warnings = lesion_mask_on_grid(read_image(mask_path), case.images, case.reference, str(mask_path))
    case.sources["mask"] = str(mask_path)
    case.clinical = {k: v for k, v in (("age", record.age), ("sex", record.sex),
                                        ("institution", record.institution)) if v is not None}
    if record.grade is not None:
        case.labels["grade"] = record.grade
    case.meta.update(layout="glioma-lgg-tcga", case=record.case, geometry=GEOMETRY_NOTE, warnings=warnings,
                     available=list(record.available))
    return case


def iter_lgg_cohort(root: str | Path, sequences: Sequence[str] | None = None, graded_only: bool = False,
                    reference: str = "flair") -> Iterator[Case]:
    """Cases of the cohort that have every sequence of ``sequences`` (and a grade, with ``graded_only``)."""
    for record in read_lgg_cohort(root):
        if (sequences and not record.has(sequences)) or (graded_only and record.grade is None):
            continue
        yield load_lgg_case(record, sequences, reference)


def sample_lgg_cohort(mirrors: list[str | Path] | None = None) -> Path:
    """The cohort's root folder from the sample-data registry (``glioma-lgg-tcga``), every file verified."""
    from MedGradeCoreLib.sample_data import fetch_dataset

    files = fetch_dataset("glioma-lgg-tcga", mirrors)
    return files[f"glioma-lgg-tcga/{CLINICAL_CSV}"].parent
