"""UMAE model kinds of the training runner: ``umae-pretrain`` (UMAE or plain MAE, no labels) and
``umae-finetune`` (a single-view classifier initialised from a pre-trained encoder, or from scratch).

Kind settings (the run config's ``kind`` section, besides ``name``/``module``):

* both: ``data`` (see :mod:`MedGradePredictLib.pretrain.sources`), ``eval_batch_size`` (32), ``val_seed`` (0: masks of validation);
* ``umae-pretrain``: ``model``: :class:`PretrainConfig` fields except ``views`` (taken from ``data``);
* ``umae-finetune``: ``data.view`` (the one view used), ``data.positive`` (the positive label value, e.g.
  ``"G3"`` / ``"malignant"``), ``data.tumour_slices_only`` (MRI: slices the manual mask touches),
  ``pretrained`` (a pre-training bundle folder or model id; omit for training from scratch, then
  ``encoder`` gives the :class:`EncoderConfig`), ``linear_probe`` (false).

Fine-tuning predicts a patient's probability as the mean over that patient's slices/images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from MedGradeCoreLib.errors import InputError
from MedGradePredictLib.pretrain.data import ImageCache, MultiViewDataset, SingleViewDataset, ViewSample
from MedGradePredictLib.pretrain.encoder import EncoderConfig
from MedGradePredictLib.pretrain.finetune import ViTClassifier, encoder_state, load_encoder
from MedGradePredictLib.pretrain.model import MaskedAutoencoder, PretrainConfig
from MedGradePredictLib.pretrain.sources import read_samples, resolve_path, view_names

from ..runner.kind import ModelKind, Patient, SplitData, register_kind

PRETRAIN_KIND, FINETUNE_KIND, CLASSIFIER_KIND = "umae-pretrain", "umae-finetune", "umae-classifier"
WEIGHTS = "model.safetensors"
PREPROCESSING = "each view: area resize to image_size, channel mean (grey) or repeat (RGB), z-score per view"


def _by_patient(samples: list[ViewSample], patients: list[str]) -> list[ViewSample]:
    keep = set(patients)
    return [s for s in samples if s.patient_id in keep]


def _trained_on(data: dict[str, Any], samples: list[ViewSample]) -> str:
    where = data.get("root") or data.get("csv")
    return (f"{len(samples)} samples of {len({s.patient_id for s in samples})} patients, source "
            f"{data.get('source')} {where}")


def _write(out_dir: Path, model: nn.Module, manifest_args: dict[str, Any]) -> Path:
    from MedGradeCoreLib.bundle import ModelManifest, save_state_dict, write_bundle

    weights = out_dir / WEIGHTS
    save_state_dict(model.state_dict(), weights)
    manifest = ModelManifest(**manifest_args)
    folder = write_bundle(out_dir / manifest.model_id, manifest, {WEIGHTS: weights})
    weights.unlink()
    return folder


def load_pretrained(ref: str, config_dir: str | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """(manifest architecture, weights, model id) of a pre-training bundle (folder or library id)."""
    from MedGradeCoreLib.bundle import load_state_dict, read_manifest
    from MedGradeCoreLib.model_library import load_model_manifest

    folder = resolve_path(ref, config_dir)
    if (folder / "manifest.json").is_file():
        manifest = read_manifest(folder)
    else:
        folder, manifest = load_model_manifest(ref)
    if manifest.kind != PRETRAIN_KIND:
        raise InputError(folder, f"is a {manifest.kind!r} model, not a {PRETRAIN_KIND!r} bundle")
    return manifest.architecture, load_state_dict(Path(folder) / WEIGHTS), manifest.model_id


def _encoder_config(d: Any, where: str) -> EncoderConfig:
    try:
        return EncoderConfig(**d)
    except (TypeError, ValueError) as exc:
        raise InputError(None, f"{where}: {exc}") from None


class _Base(ModelKind):
    train_defaults = {"epochs": 2, "batch_size": 8, "amp": False, "channels_last": False,
                      "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05}}

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        super().__init__(settings, run_dir)
        self.data = dict(settings.get("data") or {})
        self.config_dir = settings.get("config_dir")
        self.samples = read_samples(self.data, self.config_dir)
        self.views = view_names(self.data)
        self.cache = ImageCache()
        self.eval_batch = int(settings.get("eval_batch_size", 32))

    def _loader(self, ds) -> DataLoader:
        return DataLoader(ds, batch_size=self.eval_batch, shuffle=False)


@register_kind
class UMAEPretrain(_Base):
    name = PRETRAIN_KIND
    metric, metric_mode = "val_loss", "min"

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        super().__init__(settings, run_dir)
        model = dict(settings.get("model") or {})
        try:
            self.cfg = PretrainConfig.from_dict({**model, "views": self.views})
        except (TypeError, ValueError) as exc:
            raise InputError(None, f"kind.model: {exc}") from None
        self.val_seed = int(settings.get("val_seed", 0))

    def patients(self) -> list[Patient]:
        ids: dict[str, list[str]] = {}
        for s in self.samples:
            ids.setdefault(s.patient_id, []).append(s.sample_id)
        return [Patient(p, None, None, cases) for p, cases in ids.items()]  # no labels are used

    def _ds(self, patients: list[str]) -> MultiViewDataset:
        e = self.cfg.encoder
        return MultiViewDataset(_by_patient(self.samples, patients), self.views, e.image_size, e.in_channels,
                                cache=self.cache)

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        return SplitData(name, self._ds(train_patients), self._ds(val_patients) if val_patients else None,
                         train_patients, val_patients)

    def build_model(self, split: SplitData) -> nn.Module:
        return MaskedAutoencoder(self.cfg)

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        out = model(batch["views"].to(device), batch["present"].to(device))
        return {"loss": out["loss"]}

    @torch.no_grad()
    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        gen = torch.Generator().manual_seed(self.val_seed)  # the same masks at every validation
        total, n = 0.0, 0
        for batch in self._loader(split.val):
            out = model(batch["views"].to(device), batch["present"].to(device), generator=gen)
            total += float(out["loss"]) * len(batch["views"])
            n += len(batch["views"])
        return {"val_loss": total / max(n, 1)}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path:
        e = self.cfg.encoder
        model_id = str(self.settings.get("model_id") or f"{self.cfg.mode}-{summary.get('run_id', 'run')}")
        return _write(out_dir, model, dict(
            model_id=model_id, kind=PRETRAIN_KIND, architecture={"name": self.cfg.mode, **self.cfg.to_dict()},
            inputs=self.views, preprocessing={"image_size": list(e.image_size), "channels": e.in_channels,
                                              "steps": PREPROCESSING},
            task={"objective": "masked patch reconstruction (MSE on masked patches)", "labels_used": False},
            metrics=json.loads(json.dumps(summary, default=str)),
            trained_on=_trained_on(self.data, _by_patient(self.samples, split.train_patients)),
            description=f"{self.cfg.mode.upper()} pre-trained ViT encoder ({e.dim}d x {e.depth}); "
                        "fine-tune it with `medgrade finetune`"))


@register_kind
class UMAEFinetune(_Base):
    name = FINETUNE_KIND
    metric, metric_mode = "val_loss", "min"

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        super().__init__(settings, run_dir)
        self.view = str(self.data.get("view") or self.views[0])
        for s in self.samples:
            s.label = None if s.label is None else str(s.label)
        positive = self.data.get("positive")
        values = sorted({str(s.label) for s in self.samples if s.label is not None})
        if positive is None or str(positive) not in values or len(values) != 2:
            raise InputError(None, f"data.positive must be one of the two label values {values}, got {positive!r}")
        self.labels = {v: int(v == str(positive)) for v in values}
        if self.data.get("tumour_slices_only"):
            self.samples = [s for s in self.samples if s.extra.get("tumour")]
        self.samples = [s for s in self.samples if s.label is not None and self.view in s.views]
        if not self.samples:
            raise InputError(None, f"no labelled sample has the view {self.view!r}")
        self.pretrained = settings.get("pretrained")
        self.linear_probe = bool(settings.get("linear_probe", False))
        if self.pretrained:
            arch, weights, self.pretrained_id = load_pretrained(str(self.pretrained), self.config_dir)
            self.encoder_cfg = _encoder_config(arch.get("encoder"), f"bundle {self.pretrained_id}")
            self.encoder_weights = encoder_state(weights)
        else:
            if not settings.get("encoder"):
                raise InputError(None, "give 'pretrained' (a pre-training bundle) or 'encoder' (from scratch)")
            self.encoder_cfg = _encoder_config(settings["encoder"], "kind.encoder")
            self.encoder_weights, self.pretrained_id = None, None

    def patients(self) -> list[Patient]:
        ids: dict[str, list[str]] = {}
        first: dict[str, ViewSample] = {}
        for s in self.samples:
            ids.setdefault(s.patient_id, []).append(s.sample_id)
            first.setdefault(s.patient_id, s)
        return [Patient(p, self.labels[first[p].label], first[p].extra.get("institution"), c) for p, c in ids.items()]

    def _ds(self, patients: list[str]) -> SingleViewDataset:
        e = self.encoder_cfg
        return SingleViewDataset(_by_patient(self.samples, patients), self.view, e.image_size, e.in_channels,
                                 self.labels, self.cache)

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        return SplitData(name, self._ds(train_patients), self._ds(val_patients) if val_patients else None,
                         train_patients, val_patients)

    def build_model(self, split: SplitData) -> nn.Module:
        model = ViTClassifier(self.encoder_cfg, 2, self.linear_probe)
        if self.encoder_weights is not None:
            load_encoder(model.encoder, self.encoder_weights)
        return model

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        logits = model(batch["image"].to(device))
        y = batch["label"].to(device)
        return {"loss": F.cross_entropy(logits, y), "accuracy": (logits.argmax(1) == y).float().mean()}

    @torch.no_grad()
    def predict_patients(self, model: nn.Module, ds: SingleViewDataset, device: torch.device) -> list[dict[str, Any]]:
        probs, losses = {}, []
        for batch in self._loader(ds):
            logits = model(batch["image"].to(device)).float().cpu()
            losses.append(F.cross_entropy(logits, batch["label"], reduction="sum").item())
            for i, p in zip(batch["index"].tolist(), logits.softmax(1)[:, 1].tolist()):
                probs.setdefault(ds.samples[i].patient_id, []).append(p)
        self._last_loss = sum(losses) / max(len(ds), 1)
        label = {s.patient_id: self.labels[s.label] for s in ds.samples}
        return [{"patient_id": p, "label": label[p], "probability": float(np.mean(v)), "n_slices": len(v)}
                for p, v in sorted(probs.items())]

    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        rows = self.predict_patients(model, split.val, device)
        y = [r["label"] for r in rows]
        auc = roc_auc_score(y, [r["probability"] for r in rows]) if len(set(y)) == 2 else float("nan")
        return {"val_loss": self._last_loss, "val_auc": float(auc)}

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        if split.val is None:
            return {}
        return {"predictions": [{**r, "fold": split.name} for r in self.predict_patients(model, split.val, device)]}

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """Pooled out-of-fold patient AUC with its bootstrap 95% CI (``MedGradePredictLib.evaluate``)."""
        from MedGradePredictLib.evaluate import binary_metrics

        rows = [r for rec in results for r in (rec.get("finish") or {}).get("predictions", [])]
        if not rows or len({r["label"] for r in rows}) < 2:
            return {}
        m = binary_metrics([r["label"] for r in rows], [r["probability"] for r in rows])
        return {"pooled": {k: m[k] for k in ("n", "n_positive", "auc", "auc_ci95", "accuracy", "brier")}}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path:
        e = self.encoder_cfg
        model_id = str(self.settings.get("model_id") or f"umae-classifier-{summary.get('run_id', 'run')}")
        positive = next(k for k, v in self.labels.items() if v == 1)
        return _write(out_dir, model, dict(
            model_id=model_id, kind=CLASSIFIER_KIND,
            architecture={"name": "vit-classifier", "encoder": e.to_dict(), "num_classes": 2,
                          "linear_probe": self.linear_probe, "pretrained_from": self.pretrained_id},
            inputs=[self.view], preprocessing={"image_size": list(e.image_size), "channels": e.in_channels,
                                               "steps": PREPROCESSING,
                                               "patient_probability": "mean over the patient's slices/images"},
            task={"labels": self.labels, "positive_class": positive},
            metrics=json.loads(json.dumps(summary, default=str)),
            trained_on=_trained_on(self.data, _by_patient(self.samples, split.train_patients)),
            description="ViT classifier (global token -> LayerNorm -> linear) "
                        + (f"fine-tuned from {self.pretrained_id}" if self.pretrained_id else "trained from scratch")))
