"""The thesis's grading recipe, as settings and patient-level splits.

- Optimiser defaults: Adam-type with lr 4e-5, batch 16, Kaiming initialisation (:func:`kinet.kaiming_init`).
- Splits: 6:2:2 by patient (train : validation : test); the network is selected on the validation part
  (best validation loss over epochs); k outer folds are an option (each test fold 1/k, the rest split
  3:1 into train : validation, i.e. 6:2:2 for k = 5). Folds are stratified by grade *and* institution
  when the cohort has one (TCGA-LGG's grades are unevenly spread across sites); strata too small to be
  split fall back to the grade alone.
- LightGBM head: fitted on *out-of-fold* network features, i.e. on the validation patients' slices, which
  the network never trained on; never on the features of the network's own training slices (those are
  over-fitted and would teach the head to trust them). Choice where the thesis is silent: the validation
  part serves both model selection and the head (a third split would leave ~14 patients per part here).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from MedGradeCoreLib.errors import InputError

RECIPE: dict[str, Any] = {"lr": 4e-5, "batch_size": 16, "init": "kaiming", "split": (0.6, 0.2, 0.2),
                          "selection": "validation loss", "head_fit_on": "validation (out-of-fold) features"}


@dataclass
class PatientSplit:
    """Patient ids of one split; ``check()`` refuses any patient on two sides."""

    name: str
    train: list[str]
    val: list[str]
    test: list[str] = field(default_factory=list)

    def check(self) -> "PatientSplit":
        parts = {"train": set(self.train), "validation": set(self.val), "test": set(self.test)}
        names = list(parts)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                both = sorted(parts[a] & parts[b])
                if both:
                    raise InputError(None, f"{self.name}: patient {both[0]} is in both the {a} and the {b} set")
        return self


def strata(labels: Sequence[Any], sites: Sequence[Any] | None, min_count: int) -> list[str]:
    """``grade|site`` per patient; a grade-site pair with fewer than ``min_count`` patients uses the grade."""
    if sites is None:
        return [str(g) for g in labels]
    pairs = [f"{g}|{s}" for g, s in zip(labels, sites)]
    counts = Counter(pairs)
    return [p if counts[p] >= min_count else str(g) for p, g in zip(pairs, labels)]


def _two_way(ids: list[str], y: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    counts = Counter(y)
    strat = [v if counts[v] >= 2 else v.split("|")[0] for v in y]
    if min(Counter(strat).values()) < 2:
        strat = None
    a, b = train_test_split(ids, test_size=fraction, stratify=strat, random_state=seed)
    return sorted(a), sorted(b)


def split_622(patients: Sequence[str], labels: Sequence[Any], sites: Sequence[Any] | None = None,
              seed: int = 0) -> PatientSplit:
    """One 6:2:2 train/validation/test split of patients, stratified by label (and site)."""
    ids = list(patients)
    y = strata(labels, sites, 5)
    rest, test = _two_way(ids, y, 0.2, seed)
    by_id = dict(zip(ids, y))
    train, val = _two_way(rest, [by_id[p] for p in rest], 0.25, seed)
    return PatientSplit("split622", train, val, test).check()


def outer_folds(patients: Sequence[str], labels: Sequence[Any], sites: Sequence[Any] | None = None, k: int = 5,
                seed: int = 0, val_fraction: float = 0.25) -> list[PatientSplit]:
    """k stratified outer folds; in each the non-test patients are split train : validation (3:1)."""
    ids = list(patients)
    y = strata(labels, sites, k)
    by_id = dict(zip(ids, y))
    folds = []
    skf = StratifiedKFold(k, shuffle=True, random_state=seed)
    for i, (rest_idx, test_idx) in enumerate(skf.split(ids, [v.split("|")[0] if Counter(y)[v] < k else v
                                                             for v in y])):
        rest = [ids[j] for j in rest_idx]
        train, val = _two_way(rest, [by_id[p] for p in rest], val_fraction, seed + i)
        folds.append(PatientSplit(f"fold{i}", train, val, sorted(ids[j] for j in test_idx)).check())
    return folds


def slice_mask(case_ids: np.ndarray, patients: Sequence[str]) -> np.ndarray:
    """Boolean mask of the slices (by their case id) that belong to ``patients``."""
    return np.isin(case_ids.astype(str), np.asarray(list(patients), dtype=str))


def head_split(patients: Sequence[str], labels: Sequence[Any], sites: Sequence[Any] | None = None,
               fraction: float = 0.25, seed: int = 0) -> tuple[list[str], list[str]]:
    """(network patients, head patients): the training patients of a split divided 3:1, stratified by label
    (and site), so the LightGBM head is fitted on features of patients the network never trained on."""
    ids = list(patients)
    classes = len(set(map(str, labels)))
    n_head = min(max(int(round(fraction * len(ids))), classes), len(ids) - classes)
    if n_head < 1:
        raise InputError(None, f"{len(ids)} training patient(s) cannot be split into a network part and an "
                               "out-of-fold head part; use more patients or head_fraction 0")
    y = strata(labels, sites, 2)
    for stratify in (y, [str(v) for v in labels], None):  # grade x site, else grade, else none
        try:
            a, b = train_test_split(ids, test_size=n_head, stratify=stratify, random_state=seed)
            return sorted(a), sorted(b)
        except ValueError:
            continue
    raise InputError(None, "could not split the training patients for the out-of-fold head")
