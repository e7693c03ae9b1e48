"""Grading-model training pieces: the :class:`TrainConfig` (JSON), the loss of one batch, the LightGBM
head on a trained network's features, predictions per case. The loop, splits, checkpoints and resume are
the runner's: :mod:`MedGradeTrainLib.kinds.grading` (``fit_grading_model``, ``cross_validate``,
``medgrade train-grade`` / ``medgrade train``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedGradeCoreLib.errors import InputError

from .cohort import CohortCase, SliceData, network_meta
from .features import feature_names, run_network
from .fusion import METHODS, fuse
from .head_lgbm import fit_head, fit_head_out_of_fold, head_matrix
from .losses import LossConfig, grading_loss
from .model import GradingModel, GradingSettings
from .tasks import get_task
from .mix_inputs import channels_per_sequence


@dataclass
class TrainConfig:
    model_id: str = "kinet-grading"
    task: Any = "ki67"
    architecture: dict[str, Any] = field(default_factory=lambda: {"name": "kinet", "width": 8, "merge_in": True})
    loss: dict[str, Any] = field(default_factory=dict)  # LossConfig fields, e.g. {"bms": false}
    sequences: list[str] = field(default_factory=lambda: ["t1c", "t2"])
    input_mode: str = "mix"
    size: int = 64
    spacing: float = 1.0  # in-plane mm of the whole-slice input grid (size x spacing = field of view)
    crop: bool = False  # lesion-centred crop instead of the whole slice
    k: int = 20
    margin: float = 0.25
    metadata: bool = True
    clinical_columns: list[str] = field(default_factory=lambda: ["age", "sex"])
    head: str = "lightgbm"
    lgbm: dict[str, Any] = field(default_factory=dict)
    fusion: str = "near"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 4e-5  # the thesis's recipe (MedGradePredictLib.recipe.RECIPE)
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    folds: int = 0  # 0: one stratified hold-out of test_fraction; >1: K patient-level folds
    test_fraction: float = 0.25
    bootstrap: int = 1000  # resamples for the AUC 95% CI of the cross-validation report
    cohort: str = ""
    labels_csv: str = ""
    clinical_csv: str = ""
    output: str = ""
    checkpoint_dir: str = ""
    trained_on: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "TrainConfig":
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(source, f"unknown setting(s) {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"unreadable training config ({exc})") from None
        cfg = cls.from_dict(data, str(path))
        base = Path(path).resolve().parent
        for key in ("cohort", "labels_csv", "clinical_csv", "output", "checkpoint_dir"):
            value = getattr(cfg, key)
            if value and not Path(value).is_absolute():
                setattr(cfg, key, str(base / value))
        return cfg

    def settings(self) -> GradingSettings:
        arch = dict(self.architecture, sequences=list(self.sequences),
                    in_channels=channels_per_sequence(self.input_mode))
        cols = self.clinical_columns if self.metadata else []
        if arch.get("name") == "kinet":
            arch["n_meta"] = len(cols)
        return GradingSettings(get_task(self.task), arch, list(self.sequences), self.input_mode, self.size,
                               self.k, self.margin, list(self.clinical_columns), self.metadata, self.head,
                               self.fusion, self.spacing, self.crop)


def loss_config(cfg: TrainConfig) -> LossConfig:
    return LossConfig(**{**cfg.loss, "betas": tuple(cfg.loss.get("betas", LossConfig.betas))})


def network_inputs(data: SliceData, idx: np.ndarray, settings: GradingSettings, meta_all: np.ndarray | None
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, torch.Tensor]:
    """The network's inputs, metadata and targets of the slices ``idx``."""
    x = {s: torch.from_numpy(data.arrays[s][idx]) for s in settings.sequences}
    meta = torch.from_numpy(meta_all[idx]) if meta_all is not None else None
    return x, meta, torch.from_numpy(data.y[idx])


def batch_loss(net: torch.nn.Module, x: dict[str, torch.Tensor], meta: torch.Tensor | None, y: torch.Tensor,
               loss_cfg: LossConfig, flip: bool) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (``flip``: the same left-right flip for every sequence of the batch)."""
    if flip:
        x = {s: v.flip(-1) for s, v in x.items()}
    return grading_loss(net(x, meta), y, loss_cfg)


def fit_head_model(cfg: TrainConfig, settings: GradingSettings, net: torch.nn.Module, data: SliceData,
                   device: str, network_cases: set[str] | None = None) -> GradingModel:
    """The grading model of a trained network: with head ``lightgbm``, LightGBM on the network's features
    of ``data`` + clinical data; with ``network_cases`` (the cases the network trained on) ``data`` must be
    out of fold (:func:`head_lgbm.fit_head_out_of_fold` refuses otherwise)."""
    booster = None
    if settings.head == "lightgbm":
        meta = network_meta(data.clinical, settings.used_columns) if settings.architecture.get("n_meta") else None
        _, feats = run_network(net, {s: data.arrays[s] for s in settings.sequences}, meta, device)
        names = feature_names(feats.shape[1], settings.used_columns)
        if network_cases:
            booster = fit_head_out_of_fold(head_matrix(feats, data.clinical), data.y, data.case, network_cases,
                                           dict(cfg.lgbm, seed=cfg.seed), feature_names=names)
        else:
            booster = fit_head(head_matrix(feats, data.clinical), data.y, dict(cfg.lgbm, seed=cfg.seed),
                               feature_names=names)
    return GradingModel(net.eval(), settings, booster, cfg.model_id, device=device)


def predict_cases(model: GradingModel, cases: list[CohortCase], fold: int | str = "") -> list[dict[str, Any]]:
    """One row per case: label, slice probabilities and the patient probability per fusion method."""
    rows = []
    for c in cases:
        probs, _ = model.slice_probabilities(c.inputs, c.clinical)
        row: dict[str, Any] = {"case_id": c.case_id, "patient_id": c.patient_id, "fold": fold, "label": c.label,
                               "slice_probabilities": probs.tolist(), "slice_areas": c.inputs.areas.tolist()}
        for m in METHODS:
            row[f"probability_{m}"] = fuse(probs, c.inputs.areas, m).probability
        rows.append(row)
    return rows


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
