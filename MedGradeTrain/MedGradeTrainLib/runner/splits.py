"""Patient-level splits with a fixed seed: stratified k-fold, train/validation(/test) hold-out, or none.

Rows are patients (never cases or slices), stratified by class and, where every stratum is large enough,
by class x site (scikit-learn's StratifiedKFold / train_test_split). The split file records every part;
a split file given by the user is checked: a patient in two parts is an error naming the patient.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

from .kind import Patient


class SplitLeakError(InputError):
    """A patient appears in two parts of a split."""


def merge_patients(patients: list[Patient]) -> list[Patient]:
    """One entry per patient id (cases of repeated entries united; the first case's label stratifies, as
    cases of one patient may carry different labels, e.g. two lesions)."""
    out: dict[str, Patient] = {}
    for p in patients:
        if p.patient_id in out:
            q = out[p.patient_id]
            q.cases += [c for c in p.cases if c not in q.cases]
            q.label = q.label if q.label is not None else p.label
        else:
            out[p.patient_id] = Patient(p.patient_id, p.label, p.site, list(p.cases))
    return sorted(out.values(), key=lambda p: p.patient_id)


def _strata(patients: list[Patient], n_min: int) -> list[str] | None:
    """Class x site where every stratum has ``n_min`` patients, else class, else None (unlabelled, or a
    class too small to appear in every part)."""
    if any(p.label is None for p in patients):
        return None
    for keys in ([f"{p.label}|{p.site}" for p in patients], [str(p.label) for p in patients]):
        if len(set(keys)) > 1 and min(Counter(keys).values()) >= n_min:
            return keys
    return None


def check_split(parts: dict[str, list[str]], source: str | Path | None = None) -> None:
    """Every patient in at most one part of each split (train/val/test of a fold)."""
    seen: dict[str, str] = {}
    for part, ids in parts.items():
        for pid in ids:
            if pid in seen:
                raise SplitLeakError(source, f"patient {pid!r} is in both {seen[pid]} and {part}")
            seen[pid] = part


def make_splits(patients: list[Patient], mode: str = "kfold", folds: int = 5, val_fraction: float = 0.2,
                test_fraction: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """The split file's content: ``{"test": [...], "splits": [{"name", "train", "val"}, ...]}``."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    patients = merge_patients(patients)
    ids = [p.patient_id for p in patients]
    if len(ids) < 2 and mode != "none":
        raise InputError(None, f"a {mode} split needs at least 2 patients, the cohort has {len(ids)}")
    test: list[str] = []
    if test_fraction and mode != "none":
        strata = _strata(patients, 2)
        rest, test = train_test_split(ids, test_size=test_fraction, random_state=seed, stratify=strata)
        patients = [p for p in patients if p.patient_id in set(rest)]
        ids = [p.patient_id for p in patients]
    splits: list[dict[str, Any]] = []
    if mode == "kfold":
        if folds > len(ids):
            raise InputError(None, f"{folds} folds need at least {folds} patients, the cohort has {len(ids)}")
        strata = _strata(patients, folds)
        splitter = (StratifiedKFold(folds, shuffle=True, random_state=seed) if strata
                    else KFold(folds, shuffle=True, random_state=seed))
        for k, (tr, va) in enumerate(splitter.split(ids, strata)):
            splits.append({"name": f"fold{k}", "train": sorted(ids[i] for i in tr), "val": sorted(ids[i] for i in va)})
    elif mode == "holdout":
        strata = _strata(patients, 2)
        tr, va = train_test_split(ids, test_size=val_fraction, random_state=seed, stratify=strata)
        splits.append({"name": "holdout", "train": sorted(tr), "val": sorted(va)})
    out = {"mode": mode, "seed": seed, "patients": len(ids) + len(test), "test": sorted(test), "splits": splits,
           "labels": {p.patient_id: p.label for p in merge_patients(patients)}}
    validate_split_file(out)
    return out


def validate_split_file(data: dict[str, Any], source: str | Path | None = None,
                        known: set[str] | None = None) -> None:
    """Each split's train/val/test disjoint; every id a known patient (when ``known`` is given)."""
    test = list(data.get("test", []))
    for s in data.get("splits", []):
        check_split({f"{s['name']} train": s["train"], f"{s['name']} validation": s.get("val", []),
                     f"{s['name']} test": s.get("test", []), "test": test}, source)
        if known is not None:
            unknown = sorted((set(s["train"]) | set(s.get("val", [])) | set(s.get("test", []))) - known)
            if unknown:
                raise InputError(source, f"{s['name']}: patient(s) not in the cohort: {', '.join(unknown[:5])}")


def read_split_file(path: str | Path, known: set[str] | None = None) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
        data.setdefault("test", [])
        for s in data["splits"]:
            s["train"], s["val"] = list(s["train"]), list(s.get("val", []))
            if "test" in s:  # per-split test patients (three-part split: train / validation / test)
                s["test"] = list(s["test"])
            s["name"] = str(s["name"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"unreadable split file ({exc})") from None
    validate_split_file(data, path, known)
    return data
