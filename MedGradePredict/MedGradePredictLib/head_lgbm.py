"""The LightGBM head: multi-scale network features + clinical columns -> slice probability.

Saved in LightGBM's own text model format (never pickled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.1, "num_leaves": 7, "min_data_in_leaf": 3,
    "feature_fraction": 0.8, "bagging_fraction": 1.0, "lambda_l2": 1.0, "verbose": -1,
    "deterministic": True, "force_row_wise": True, "num_threads": 1, "seed": 0,
}


def head_matrix(features: np.ndarray, clinical: np.ndarray) -> np.ndarray:
    """Features ``[N, F]`` and clinical columns ``[N, M]`` (NaN = unknown) side by side."""
    return np.concatenate([features.astype(np.float64), clinical.astype(np.float64)], 1)


def fit_head(x: np.ndarray, y: np.ndarray, params: dict[str, Any] | None = None, rounds: int = 60,
             feature_names: list[str] | None = None) -> lgb.Booster:
    p = dict(DEFAULT_PARAMS, **(params or {}))
    rounds = int(p.pop("num_boost_round", rounds))
    ds = lgb.Dataset(x, label=y.astype(np.float64), feature_name=feature_names or "auto", free_raw_data=True)
    return lgb.train(p, ds, num_boost_round=rounds)


def save_head(booster: lgb.Booster, path: str | Path) -> Path:
    booster.save_model(str(path))
    return Path(path)


def load_head(path: str | Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))


def predict_head(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)
