"""A cohort of graded cases (MIX inputs + clinical data + label) and patient-level splits.

Every case has a ``case_id`` (unique) and a ``patient_id``; several cases may share a patient
(two studies, or pseudo-patients built from one real patient). Splits are made over patients with
scikit-learn, and any split that puts one patient on both sides is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress

from .mix_inputs import SliceInputs, build_slice_inputs
from .tasks import Task

AGE_SCALE = 100.0  # age in years / 100 as the network's metadata input


@dataclass
class CohortCase:
    case_id: str
    patient_id: str
    inputs: SliceInputs
    clinical: dict[str, Any] = field(default_factory=dict)
    label: int | None = None  # 1 = the task's positive class


@dataclass
class SliceData:
    """All slices of a set of cases, flattened: ``arrays[seq]`` is ``[N, C, H, W]``."""

    arrays: dict[str, np.ndarray]
    y: np.ndarray
    clinical: np.ndarray  # [N, M] raw clinical values (NaN = unknown)
    case: np.ndarray  # case id per slice

    def __len__(self) -> int:
        return len(self.y)


def clinical_vector(clinical: dict[str, Any], columns: list[str]) -> np.ndarray:
    """Clinical values as floats in ``columns`` order: sex M -> 0, F -> 1; unknown -> NaN."""
    out = np.full(len(columns), np.nan, np.float32)
    for i, c in enumerate(columns):
        v = clinical.get(c)
        if c == "sex" and isinstance(v, str):
            v = {"M": 0.0, "F": 1.0}.get(v.upper()[:1])
        try:
            out[i] = float(v) if v is not None and v != "" else np.nan
        except (TypeError, ValueError):
            raise InputError(None, f"clinical column {c!r}: value {v!r} is not a number") from None
    return out


def network_meta(clinical: np.ndarray, columns: list[str]) -> np.ndarray:
    """The network's metadata input: age / 100, others as they are, unknown -> 0."""
    scale = np.array([AGE_SCALE if c == "age" else 1.0 for c in columns], np.float32)
    return np.nan_to_num(clinical / scale, nan=0.0).astype(np.float32)


def slice_data(cases: list[CohortCase], columns: list[str]) -> SliceData:
    seqs = list(cases[0].inputs.arrays)
    arrays = {s: np.concatenate([c.inputs.arrays[s] for c in cases]) for s in seqs}
    n = [len(c.inputs.slices) for c in cases]
    y = np.concatenate([np.full(k, -1 if c.label is None else c.label) for c, k in zip(cases, n)])
    clin = np.concatenate([np.tile(clinical_vector(c.clinical, columns), (k, 1)) for c, k in zip(cases, n)])
    ids = np.concatenate([np.full(k, c.case_id, dtype=object) for c, k in zip(cases, n)])
    return SliceData(arrays, y.astype(np.int64), clin.reshape(len(y), len(columns)), ids)


def check_split(train: Iterable[CohortCase], test: Iterable[CohortCase]) -> None:
    """Refuse a split that has a patient in both the training and the test set."""
    tr = {c.patient_id for c in train}
    both = sorted(tr & {c.patient_id for c in test})
    if both:
        raise InputError(None, f"patient {both[0]} is in both the training and the test set"
                               f"{f' (and {len(both) - 1} more)' if len(both) > 1 else ''}; "
                               "split the cohort by patient, not by case or slice")


def split_cases(cases: list[CohortCase], train_idx: Iterable[int], test_idx: Iterable[int]
                ) -> tuple[list[CohortCase], list[CohortCase]]:
    """Cases by index into a training and a test list, refused when a patient is on both sides."""
    train, test = [cases[i] for i in train_idx], [cases[i] for i in test_idx]
    check_split(train, test)
    return train, test


def _patients(cases: list[CohortCase]) -> tuple[list[str], list[int]]:
    pats: dict[str, int] = {}
    for c in cases:
        if c.label is None:
            raise InputError(None, f"case {c.case_id} has no label for the task; cannot split for training")
        pats.setdefault(c.patient_id, c.label)
    return list(pats), list(pats.values())


def patient_folds(cases: list[CohortCase], n_folds: int = 5, seed: int = 0
                  ) -> list[tuple[list[CohortCase], list[CohortCase]]]:
    """Stratified K folds over patients (scikit-learn); each fold checked with :func:`check_split`."""
    pats, labels = _patients(cases)
    folds = []
    for tr, te in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(pats, labels):
        test_p = {pats[i] for i in te}
        folds.append(split_cases(cases, [i for i, c in enumerate(cases) if c.patient_id not in test_p],
                                 [i for i, c in enumerate(cases) if c.patient_id in test_p]))
    return folds


def patient_holdout(cases: list[CohortCase], test_fraction: float = 0.25, seed: int = 0
                    ) -> tuple[list[CohortCase], list[CohortCase]]:
    """One stratified train/test split over patients."""
    pats, labels = _patients(cases)
    _, test_p = train_test_split(pats, test_size=test_fraction, stratify=labels, random_state=seed)
    test_p = set(test_p)
    return split_cases(cases, [i for i, c in enumerate(cases) if c.patient_id not in test_p],
                       [i for i, c in enumerate(cases) if c.patient_id in test_p])


def cohort_case(case: Case, task: Task | None, sequences: list[str], k: int = 20, size: int = 240,
                mode: str = "mix", margin: float = 0.25, slices: list[int] | None = None, spacing: float = 1.0,
                crop: bool = False) -> CohortCase:
    """One :class:`Case` as a cohort entry (label encoded when the case has the task's column); the slices
    follow the same lesion-extent rule as prediction unless ``slices`` are given."""
    inputs = build_slice_inputs(case, sequences, slices, k, size, mode, margin, spacing, crop)
    label = None
    if task is not None and task.column in case.labels:
        label = task.encode(case.labels[task.column])
    return CohortCase(case.patient_id, case.patient_id, inputs, dict(case.clinical), label)


def load_grading_case(path: str | Path, sequences: list[str] | None = None, clinical_csv: str | Path | None = None,
                      labels_csv: str | Path | None = None) -> Case:
    """A preprocessed case folder (``case.json``) or any folder the readers understand."""
    path = Path(path)
    if is_case_folder(path):
        from MedGradeSegmentLib.preprocess.io import read_preprocessed

        case, info = read_preprocessed(path)
        if info.get("slices"):
            case.meta["slices"] = list(info["slices"])
        from MedGradeCoreLib.io import read_clinical_csv, read_labels_csv

        if clinical_csv:
            case.clinical.update(read_clinical_csv(clinical_csv).get(case.patient_id, {}))
        if labels_csv:
            case.labels.update(read_labels_csv(labels_csv).get(case.patient_id, {}))
        return case
    from MedGradeCoreLib.io import load_case

    return load_case(path, sequences, clinical_csv, labels_csv)


def is_cohort_folder(path: str | Path) -> bool:
    """A folder whose sub-folders are cases (rather than a case folder itself)."""
    path = Path(path)
    if not path.is_dir() or is_case_folder(path):
        return False
    subs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return bool(subs) and not any(p.suffix in (".gz", ".nii", ".nrrd", ".mha") for p in path.iterdir())


def load_cohort(folder: str | Path, task: Task, sequences: list[str], labels_csv: str | Path | None = None,
                clinical_csv: str | Path | None = None, k: int = 20, size: int = 240, mode: str = "mix",
                margin: float = 0.25, progress: Progress | None = None, spacing: float = 1.0,
                crop: bool = False) -> list[CohortCase]:
    """Every case sub-folder of ``folder`` as a cohort entry; unreadable cases raise naming the case."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "cohort folder not found")
    subs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    out = []
    for i, sub in enumerate(subs):
        if progress is not None:
            progress(i / max(len(subs), 1), f"reading {sub.name}")
        case = load_grading_case(sub, sequences, clinical_csv, labels_csv)
        out.append(cohort_case(case, task, sequences, k, size, mode, margin, spacing=spacing, crop=crop))
    if not out:
        raise InputError(folder, "no case sub-folders in the cohort folder")
    return out
