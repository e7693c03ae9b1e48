"""The radiomics classifier: a scikit-learn Pipeline fitted inside each training fold only.

impute (median) -> variance filter -> standardise -> correlation filter (|r| > 0.9) -> selection
(L1-logistic or mutual information, top ``k``) -> logistic regression or LightGBM. Optional clinical
columns join the radiomics columns before the pipeline. Cross-validation is by patient
(StratifiedGroupKFold); every step, selection included, is cloned and fitted on the training part of
each fold. The final model is stored without pickle: the pipeline reduces to selected columns +
imputation values + mean/scale + the logistic coefficients (JSON) or the LightGBM booster (text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_selection import SelectKBest, VarianceThreshold, mutual_info_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from MedGradeCoreLib.errors import InputError


class CorrelationFilter(BaseEstimator, TransformerMixin):
    """Drop a column whose |Pearson r| with an earlier kept column exceeds ``threshold``."""

    def __init__(self, threshold: float = 0.9):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = np.asarray(X, float)
        r = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False))) if X.shape[1] > 1 else np.zeros((1, 1))
        keep: list[int] = []
        for j in range(X.shape[1]):
            if all(r[j, k] <= self.threshold for k in keep):
                keep.append(j)
        self.support_ = np.zeros(X.shape[1], bool)
        self.support_[keep] = True
        return self

    def transform(self, X):
        return np.asarray(X, float)[:, self.support_]

    def get_support(self) -> np.ndarray:
        return self.support_


class L1Selector(BaseEstimator, TransformerMixin):
    """Columns with a non-zero L1-logistic coefficient, the ``k`` largest |coef| (at least one; the
    penalty is relaxed tenfold, up to three times, while every coefficient is zero)."""

    def __init__(self, k: int = 20, C: float = 0.1, seed: int = 0):
        self.k, self.C, self.seed = k, C, seed

    def fit(self, X, y):
        C = self.C
        for _ in range(4):  # a penalty so strong that nothing survives: relax it tenfold
            classes = np.unique(y)
            targets = [y] if len(classes) <= 2 else [(y == c).astype(int) for c in classes]  # one-vs-rest
            score = np.max([np.abs(LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, class_weight="balanced",
                                                      random_state=self.seed, max_iter=2000).fit(X, t).coef_[0])
                            for t in targets], axis=0)
            if (score > 1e-8).any():
                break
            C *= 10
        self.C_used_ = C
        order = np.argsort(-score, kind="stable")
        n = int(min(self.k, max(1, (score > 1e-8).sum())))
        self.support_ = np.zeros(X.shape[1], bool)
        self.support_[order[:n]] = True
        return self

    def transform(self, X):
        return np.asarray(X, float)[:, self.support_]

    def get_support(self) -> np.ndarray:
        return self.support_


@dataclass
class RadiomicsConfig:
    selection: str = "l1"  # "l1" or "mi" (mutual information)
    k: int = 20
    classifier: str = "lr"  # "lr" or "lightgbm"
    correlation: float = 0.9
    clinical_columns: list[str] = field(default_factory=list)
    class_weight: str | None = "balanced"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_pipeline(cfg: RadiomicsConfig, selector: Any | None = None) -> Pipeline:
    """The unfitted pipeline (``selector`` replaces the configured selection step, e.g. in tests)."""
    if selector is None:
        if cfg.selection == "l1":
            selector = L1Selector(cfg.k, seed=cfg.seed)
        elif cfg.selection == "mi":
            selector = SelectKBest(lambda X, y: mutual_info_classif(X, y, random_state=cfg.seed), k=cfg.k)
        else:
            raise InputError(None, f"unknown feature selection {cfg.selection!r} (l1 or mi)")
    if cfg.classifier == "lr":
        clf = LogisticRegression(C=1.0, class_weight=cfg.class_weight, max_iter=5000, random_state=cfg.seed)
    elif cfg.classifier == "lightgbm":
        from lightgbm import LGBMClassifier

        clf = LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                             subsample=0.8, subsample_freq=1, colsample_bytree=0.8, class_weight=cfg.class_weight,
                             random_state=cfg.seed, n_jobs=1, verbose=-1)
    else:
        raise InputError(None, f"unknown classifier {cfg.classifier!r} (lr or lightgbm)")
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("variance", VarianceThreshold(1e-12)),
                     ("scale", StandardScaler()), ("correlation", CorrelationFilter(cfg.correlation)),
                     ("select", selector), ("classifier", clf)])


def _k_guard(pipe: Pipeline, n_columns: int) -> None:
    sel = pipe.named_steps["select"]
    if isinstance(sel, SelectKBest) and isinstance(sel.k, int):
        sel.set_params(k=min(sel.k, n_columns))


def fit_pipeline(X: np.ndarray, y: np.ndarray, cfg: RadiomicsConfig, selector: Any | None = None) -> Pipeline:
    pipe = build_pipeline(cfg, selector)
    pre = Pipeline(pipe.steps[:4]).fit(X, y)  # the filters decide how many columns selection sees
    _k_guard(pipe, pre.transform(X[:2]).shape[1])
    return pipe.fit(X, y)


def cross_validate(X: np.ndarray, y: np.ndarray, groups: Sequence[str], cfg: RadiomicsConfig, folds: int = 5,
                   selector: Any | None = None, patient_fold: dict[str, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold class probabilities (n, K) and the fold of each row; patient-level stratified folds
    (or the given ``patient_fold`` assignment, e.g. a runner split file's), the whole pipeline (selection
    included) fitted on each training part only."""
    y = np.asarray(y, int)
    k = len(np.unique(y))
    prob = np.full((len(y), k), np.nan)
    fold_of = np.full(len(y), -1)
    groups = np.asarray(groups)
    if patient_fold is not None:
        assigned = np.array([patient_fold[g] for g in groups])
        parts = [(np.nonzero(assigned != f)[0], np.nonzero(assigned == f)[0]) for f in sorted(set(assigned))]
    else:
        parts = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=cfg.seed).split(X, y, groups))
    for f, (tr, va) in enumerate(parts):
        pipe = fit_pipeline(X[tr], y[tr], cfg, None if selector is None else clone(selector))
        prob[va] = pipe.predict_proba(X[va])
        fold_of[va] = f
    return prob, fold_of


# ----------------------------------------------------------------------------- export without pickle
@dataclass
class RadiomicsModel:
    """A fitted pipeline reduced to plain numbers (+ a LightGBM booster string)."""

    columns: list[str]  # selected input columns, in order
    impute: list[float]
    mean: list[float]
    scale: list[float]
    classifier: str
    classes: list[str]
    coef: list[list[float]] | None = None
    intercept: list[float] | None = None
    booster: str | None = None
    n_input_columns: int = 0

    @classmethod
    def from_pipeline(cls, pipe: Pipeline, columns: list[str], classes: list[str]) -> "RadiomicsModel":
        steps = pipe.named_steps
        idx = np.arange(len(columns))
        idx = idx[steps["variance"].get_support()]
        scale_keep = np.arange(len(idx))
        corr = steps["correlation"].get_support()
        sel = steps["select"].get_support()
        chosen = scale_keep[corr][sel]
        orig = idx[chosen]
        clf = steps["classifier"]
        out = cls([columns[i] for i in orig], steps["impute"].statistics_[orig].tolist(),
                  steps["scale"].mean_[chosen].tolist(), steps["scale"].scale_[chosen].tolist(),
                  "lr" if isinstance(clf, LogisticRegression) else "lightgbm", list(classes),
                  n_input_columns=len(columns))
        if out.classifier == "lr":
            out.coef, out.intercept = clf.coef_.tolist(), clf.intercept_.tolist()
        else:
            out.booster = clf.booster_.model_to_string()
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, float)
        nan = np.isnan(X)
        X[nan] = np.take(self.impute, np.nonzero(nan)[1])
        return (X - np.array(self.mean)) / np.array(self.scale)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(n, K) class probabilities from the selected columns (in ``self.columns`` order)."""
        Z = self.transform(X)
        if self.classifier == "lr":
            lr = LogisticRegression()
            lr.coef_, lr.intercept_ = np.array(self.coef), np.array(self.intercept)
            lr.classes_ = np.arange(len(self.classes))
            return lr.predict_proba(Z)
        import lightgbm as lgb

        p = lgb.Booster(model_str=self.booster).predict(Z)
        return np.c_[1 - p, p] if p.ndim == 1 else p

    def coefficient_table(self) -> list[dict[str, Any]]:
        """Logistic coefficients per selected feature (standardised: per SD), with odds ratios."""
        if self.classifier != "lr":
            return []
        coef = np.array(self.coef)
        rows = []
        for j, name in enumerate(self.columns):
            if coef.shape[0] == 1:
                rows.append({"feature": name, "coefficient": float(coef[0, j]),
                             "odds_ratio_per_sd": float(np.exp(coef[0, j]))})
            else:
                rows.append({"feature": name, **{f"coefficient_{c}": float(coef[i, j])
                                                 for i, c in enumerate(self.classes)}})
        rows.sort(key=lambda r: -max(abs(v) for k, v in r.items() if k.startswith("coefficient")))
        intercept = {"feature": "(intercept)"}
        if coef.shape[0] == 1:
            intercept.update(coefficient=float(self.intercept[0]), odds_ratio_per_sd=float(np.exp(self.intercept[0])))
        else:
            intercept.update({f"coefficient_{c}": float(v) for c, v in zip(self.classes, self.intercept)})
        return rows + [intercept]

    def to_json(self) -> str:
        d = dict(self.__dict__)
        d.pop("booster")
        return json.dumps(d, indent=1)

    @classmethod
    def load(cls, json_path: Path, booster_path: Path | None = None) -> "RadiomicsModel":
        from MedGradeCoreLib.errors import BundleError

        try:
            d = json.loads(Path(json_path).read_text())
            model = cls(**d)
        except (OSError, ValueError, TypeError) as exc:
            raise BundleError(f"{json_path}: not a radiomics model ({exc})") from None
        if len(model.columns) != len(model.mean) or len(model.columns) != len(model.scale):
            raise BundleError(f"{json_path}: columns, means and scales differ in length")
        if booster_path is not None:
            from ..head_lgbm import load_head  # structure checked and probed in a child process first

            load_head(booster_path)
            model.booster = Path(booster_path).read_text()
        return model


def design_matrix(rows, task: str, clinical_columns: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, list[str],
                                                                                     np.ndarray, list]:
    """(X, y, columns, groups, kept rows) of labelled feature rows (radiomics + optional clinical columns)."""
    from .case import encode_label

    kept = [r for r in rows if encode_label(task, r.labels) is not None]
    if not kept:
        raise InputError(None, f"no feature row has a label for task {task!r}")
    cols = sorted(kept[0].features)
    X = np.array([[r.features[c] for c in cols] + [_clinical(r, c) for c in clinical_columns] for r in kept], float)
    y = np.array([encode_label(task, r.labels) for r in kept], int)
    return X, y, cols + [f"clinical_{c}" for c in clinical_columns], np.array([r.patient_id for r in kept]), kept


def _clinical(row, column: str) -> float:
    v = row.clinical.get(column)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def fit_final(rows, task: str, cfg: RadiomicsConfig) -> tuple[RadiomicsModel, Pipeline]:
    """The model fitted on every labelled row (for shipping; its figures come from cross_validate)."""
    from .case import task_classes

    X, y, cols, _, _ = design_matrix(rows, task, cfg.clinical_columns)
    classes = list(task_classes(task))
    missing = [c for i, c in enumerate(classes) if not (y == i).any()]
    if missing:
        raise InputError(None, f"task {task!r}: no training row of class {', '.join(missing)}; every class is needed")
    pipe = fit_pipeline(X, y, cfg)
    return RadiomicsModel.from_pipeline(pipe, cols, classes), pipe


def model_matrix(model: RadiomicsModel, rows) -> np.ndarray:
    """The selected columns of feature rows (clinical columns prefixed ``clinical_``)."""
    out = []
    for r in rows:
        vals = []
        for c in model.columns:
            if c.startswith("clinical_"):
                vals.append(_clinical(r, c[len("clinical_"):]))
            elif c in r.features:
                vals.append(r.features[c])
            else:
                raise InputError(r.id, f"feature {c} the model needs is missing")
        out.append(vals)
    return np.array(out, float)
