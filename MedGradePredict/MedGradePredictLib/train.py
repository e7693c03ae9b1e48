"""Training KiNet (or a baseline through the same code), the LightGBM head, cross-validation.

One :class:`TrainConfig` (JSON) drives everything: the architecture and its ablation switches
(``bms``, ``merge_in``, ``metadata``), the loss weights, inputs, optimiser, device (AMP on CUDA),
checkpoints. Progress and cancel go through :class:`Progress`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedGradeSegmentLib.bundle import save_state_dict
from MedGradeSegmentLib.devices import choose_device
from MedGradeSegmentLib.errors import InputError
from MedGradeSegmentLib.progress import Progress

from .cohort import CohortCase, SliceData, network_meta, patient_folds, patient_holdout, slice_data
from .features import feature_names, run_network
from .fusion import METHODS, fuse
from .head_lgbm import fit_head, head_matrix
from .losses import LossConfig, grading_loss
from .model import GradingModel, GradingSettings
from .networks import build_network
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
    k: int = 20
    margin: float = 0.25
    metadata: bool = True
    clinical_columns: list[str] = field(default_factory=lambda: ["age", "sex"])
    head: str = "lightgbm"
    lgbm: dict[str, Any] = field(default_factory=dict)
    fusion: str = "near"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
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
                               self.fusion)


def _device(pref: str) -> str:
    return choose_device(pref).device


def train_network(cfg: TrainConfig, data: SliceData, progress: Progress | None = None,
                  settings: GradingSettings | None = None) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Train the configured network on slices; returns it (eval mode) and the loss per epoch."""
    progress = progress or Progress()
    settings = settings or cfg.settings()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = _device(cfg.device)
    net = build_network(settings.architecture).to(device)
    loss_cfg = LossConfig(**{**cfg.loss, "betas": tuple(cfg.loss.get("betas", LossConfig.betas))})
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.epochs, 1))
    use_amp = cfg.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    meta_all = network_meta(data.clinical, settings.used_columns) if settings.architecture.get("n_meta") else None
    n, bs = len(data), max(2, min(cfg.batch_size, len(data)))
    history: list[dict[str, float]] = []
    ckpt = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(n)
        sums: dict[str, float] = {}
        batches = [order[i:i + bs] for i in range(0, n, bs) if len(order[i:i + bs]) > 1]
        t0 = time.perf_counter()
        for b, idx in enumerate(batches):
            progress((epoch + b / len(batches)) / cfg.epochs, f"epoch {epoch + 1}/{cfg.epochs}")
            x = {s: torch.from_numpy(data.arrays[s][idx]).to(device, non_blocking=True) for s in settings.sequences}
            if rng.random() < 0.5:  # the same left-right flip for every sequence of the batch
                x = {s: v.flip(-1) for s, v in x.items()}
            y = torch.from_numpy(data.y[idx]).to(device)
            meta = torch.from_numpy(meta_all[idx]).to(device) if meta_all is not None else None
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                terms = grading_loss(net(x, meta), y, loss_cfg)
            opt.zero_grad(set_to_none=True)
            scaler.scale(terms["total"]).backward()
            scaler.step(opt)
            scaler.update()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        sched.step()
        row = {k: v / max(len(batches), 1) for k, v in sums.items()}
        row.update(epoch=epoch + 1, seconds=time.perf_counter() - t0, slices_per_s=n / (time.perf_counter() - t0))
        history.append(row)
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            save_state_dict(net.state_dict(), ckpt / "last.safetensors")
            (ckpt / "history.json").write_text(json.dumps(history, indent=1))
    progress(1.0, "network trained")
    return net.eval(), history


def fit_grading_model(cfg: TrainConfig, cases: list[CohortCase], progress: Progress | None = None
                      ) -> tuple[GradingModel, list[dict[str, float]]]:
    """Network on the cases' slices, then (head ``lightgbm``) LightGBM on its features + clinical data."""
    progress = progress or Progress()
    settings = cfg.settings()
    if any(c.label is None for c in cases):
        raise InputError(None, "every training case needs a label for the task")
    data = slice_data(cases, settings.used_columns)
    net, history = train_network(cfg, data, progress.sub(0, 0.9), settings)
    device = next(net.parameters()).device.type
    booster = None
    if settings.head == "lightgbm":
        progress(0.92, "fitting the LightGBM head")
        meta = network_meta(data.clinical, settings.used_columns) if settings.architecture.get("n_meta") else None
        _, feats = run_network(net, {s: data.arrays[s] for s in settings.sequences}, meta, device)
        names = feature_names(feats.shape[1], settings.used_columns)
        booster = fit_head(head_matrix(feats, data.clinical), data.y, dict(cfg.lgbm, seed=cfg.seed),
                           feature_names=names)
    progress(1.0, "model fitted")
    return GradingModel(net, settings, booster, cfg.model_id, device=device), history


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


def cross_validate(cfg: TrainConfig, cases: list[CohortCase], progress: Progress | None = None
                   ) -> tuple[list[dict[str, Any]], list[list[dict[str, float]]]]:
    """Out-of-fold predictions (patient-level splits) and each fold's training history."""
    progress = progress or Progress()
    splits = (patient_folds(cases, cfg.folds, cfg.seed) if cfg.folds > 1
              else [patient_holdout(cases, cfg.test_fraction, cfg.seed)])
    rows, histories = [], []
    for f, (train, test) in enumerate(splits):
        model, hist = fit_grading_model(cfg, train, progress.sub(f / len(splits), (f + 1) / len(splits)))
        rows += predict_cases(model, test, f)
        histories.append(hist)
    return rows, histories


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
