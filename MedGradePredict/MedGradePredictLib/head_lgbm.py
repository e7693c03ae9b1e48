"""The LightGBM head: multi-scale network features + clinical columns -> slice probability.

Saved in LightGBM's own text model format (never pickled). A model text from a bundle is untrusted:
LightGBM's C++ parser aborts or segfaults the whole process (in Slicer: the application) on malformed
trees, so :func:`load_head` first checks the text's structure (:func:`check_model_text`) and then loads
it and predicts once in a child process (:func:`probe_in_child`) before the host process touches it.
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from MedGradeCoreLib.errors import BundleError

_PROBED: set[str] = set()  # sha256 of model texts that loaded cleanly in a child process
_TREE_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")
_PROBE = ("import sys, numpy as np, lightgbm as lgb\n"
          "b = lgb.Booster(model_file=sys.argv[1])\n"
          "b.predict(np.zeros((2, int(sys.argv[2]))), num_threads=1)\n")

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


def _numbers(values: dict[str, str], key: str, kind: type, where: str) -> list:
    try:
        return [kind(v) for v in values.get(key, "").split()]
    except ValueError:
        raise BundleError(f"{where}: {key} holds a value that is not a number") from None


def _check_tree(block: str, n_features: int, where: str) -> None:
    values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    try:
        leaves, n_cat = int(values["num_leaves"]), int(values.get("num_cat", "0"))
    except (KeyError, ValueError):
        raise BundleError(f"{where}: num_leaves/num_cat missing or not integers") from None
    if leaves < 1 or n_cat < 0:
        raise BundleError(f"{where}: num_leaves {leaves} / num_cat {n_cat} out of range")
    if values.get("is_linear", "0") != "0":
        raise BundleError(f"{where}: linear trees are not supported by MedGrade")
    if len(_numbers(values, "leaf_value", float, where)) != leaves:
        raise BundleError(f"{where}: leaf_value does not hold num_leaves = {leaves} values")
    if leaves == 1:
        return
    arrays = {k: _numbers(values, k, float if k == "threshold" else int, where) for k in _TREE_ARRAYS}
    for key, arr in arrays.items():
        if len(arr) != leaves - 1:
            raise BundleError(f"{where}: {key} holds {len(arr)} values, num_leaves - 1 = {leaves - 1} expected")
    if any(not 0 <= f < n_features for f in arrays["split_feature"]):
        raise BundleError(f"{where}: split_feature refers to a feature outside 0..{n_features - 1}")
    for child in arrays["left_child"] + arrays["right_child"]:
        if not (0 < child < leaves - 1 if child >= 0 else ~child < leaves):
            raise BundleError(f"{where}: child index {child} outside the tree")
    if any(d & 1 for d in arrays["decision_type"]):
        bounds = _numbers(values, "cat_boundaries", int, where)
        cats = _numbers(values, "cat_threshold", int, where)
        if len(bounds) != n_cat + 1 or bounds[0] != 0 or bounds != sorted(bounds) or bounds[-1] != len(cats):
            raise BundleError(f"{where}: cat_boundaries do not match num_cat / cat_threshold")
        for d, t in zip(arrays["decision_type"], arrays["threshold"]):
            if d & 1 and not 0 <= int(t) < n_cat:
                raise BundleError(f"{where}: a categorical split refers to category set {int(t)} of {n_cat}")


def check_model_text(text: str, where: str = "LightGBM model") -> int:
    """Refuse a LightGBM text model whose structure would crash LightGBM's parser; returns the feature count.

    Checks the header, ``tree_sizes`` against the tree blocks (LightGBM seeks with them), and in every tree
    the array lengths, feature indices, child indices and categorical bounds.
    """
    head, sep, _ = text.partition("\nTree=")
    if not text.startswith("tree\n") or not sep or "\nend of trees" not in text:
        raise BundleError(f"{where}: not a LightGBM text model (header, trees or 'end of trees' missing)")
    header = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    try:
        n_features = int(header["max_feature_idx"]) + 1
        n_class = int(header.get("num_class", "1"))
        per_iter = int(header.get("num_tree_per_iteration", "1"))
    except (KeyError, ValueError):
        raise BundleError(f"{where}: max_feature_idx/num_class missing or not integers") from None
    if not 1 <= n_features <= 1_000_000 or not 1 <= n_class <= 1000 or not 1 <= per_iter <= 1000:
        raise BundleError(f"{where}: header counts out of range (features {n_features}, classes {n_class})")
    names = header.get("feature_names")
    if names is not None and len(names.split()) != n_features:
        raise BundleError(f"{where}: feature_names lists {len(names.split())} names for {n_features} features")
    end = text.index("\nend of trees") + 1
    starts = [m.start() for m in re.finditer(r"^Tree=", text, re.M)]
    blocks = [text[a:b] for a, b in zip(starts, starts[1:] + [end])]
    for i, block in enumerate(blocks):
        if not block.startswith(f"Tree={i}\n"):
            raise BundleError(f"{where}: tree {i} is missing or out of order")
        _check_tree(block, n_features, f"{where}: tree {i}")
    if "tree_sizes" in header:
        sizes = _numbers(header, "tree_sizes", int, where)
        if sizes != [len(b.encode()) for b in blocks]:
            raise BundleError(f"{where}: tree_sizes do not match the trees in the file")
    if len(blocks) % per_iter:
        raise BundleError(f"{where}: {len(blocks)} trees is not a multiple of num_tree_per_iteration {per_iter}")
    return n_features


def probe_in_child(path: str | Path, n_features: int, timeout: float = 120.0) -> None:
    """Load the model and predict once in a separate Python process; :class:`BundleError` if it crashes."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(n_features)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BundleError(f"{path}: loading the LightGBM model did not finish in {timeout:.0f} s; refused") from None
    if proc.returncode != 0:
        if proc.returncode < 0:
            try:
                how = f"crashed with {signal.Signals(-proc.returncode).name}"
            except ValueError:
                how = f"crashed with signal {-proc.returncode}"
        else:
            lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
            how = f"failed ({(lines[-1] if lines else f'exit {proc.returncode}')[:200]})"
        raise BundleError(f"{path}: the LightGBM model is malformed: loading it in a separate process {how}; "
                          "refused (MedGrade itself was not affected)")


def load_head(path: str | Path) -> lgb.Booster:
    """Load an untrusted LightGBM text model; a malformed one is a :class:`BundleError`, never a crash."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the LightGBM model as text ({exc})") from None
    n_features = check_model_text(text, str(path))
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in _PROBED:
        probe_in_child(path, n_features)
        _PROBED.add(digest)
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise BundleError(f"{path}: LightGBM refused the model ({exc})") from None


def predict_head(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=1), dtype=np.float64)


def fit_head_out_of_fold(x: np.ndarray, y: np.ndarray, case_ids: np.ndarray, network_train_cases: set[str],
                         params: dict[str, Any] | None = None, rounds: int = 60,
                         feature_names: list[str] | None = None) -> lgb.Booster:
    """:func:`fit_head` on features of cases the network never trained on (refuses any that it did)."""
    seen = sorted(set(np.asarray(case_ids).astype(str)) & {str(c) for c in network_train_cases})
    if seen:
        raise ValueError(f"the LightGBM head must be fitted on out-of-fold features; {len(seen)} case(s) "
                         f"(e.g. {seen[0]}) trained the network")
    return fit_head(x, y, params, rounds, feature_names)
