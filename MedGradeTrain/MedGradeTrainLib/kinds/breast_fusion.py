"""``breast-fusion``: the late-fusion breast model (one MONAI branch per modality) as a kind of the runner.

Kind settings (the ``kind`` section of a run config)::

    inputs: [../shared/data/breast-us-busbra, ../shared/data/breast-us-busi]  # BUSI / BUS-BRA / case folders
    task: pathology            # or birads3 (stand-in tasks: no public breast data set has histological grade)
    branches: [{modality: us, size: [64, 64], widths: [8, 16, 32, 64]}]     # mri: spatial_dims 3, phases
    loss: ce                   # or focal (focal_gamma)
    class_weights: true        # 'balanced' weights from the training split only
    oversample: false          # repeat minority-class samples in the training set
    modality_dropout: 0.0
    freeze_steps: 0            # staged training: branches frozen for the first N optimizer steps
    init_weights: {us: path/to/encoder.safetensors}                          # optional, local files
    model_id: ..., description: ...

Patients are BUS-BRA ``Case`` ids, ``busi:<image>`` for BUSI (no patient ids there), or a case
folder's ``patient_id``; folds never share a patient.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from MedGradePredictLib.breast.bundles import FUSION_KIND
from MedGradePredictLib.breast.case import BreastCase, TASKS, task_classes
from MedGradePredictLib.breast.fusion_data import (FusionDataset, class_weights, loss_fn, make_samples,
                                                   predict_dataset, score)
from MedGradePredictLib.breast.fusion_net import BranchSpec, LateFusionNet, load_branch_weights
from MedGradePredictLib.breast.predict import WEIGHTS
from MedGradePredictLib.breast.readers import load_breast_input
from MedGradeCoreLib.errors import InputError

from ..runner.kind import ModelKind, Patient, SplitData, register_kind

DEFAULTS: dict[str, Any] = {"inputs": [], "task": "pathology", "branches": [{"modality": "us"}], "loss": "ce",
                            "focal_gamma": 2.0, "class_weights": True, "oversample": False, "modality_dropout": 0.0,
                            "freeze_steps": 0, "init_weights": {}, "embed": 32, "hidden": 32, "dropout": 0.2,
                            "model_id": "", "description": "", "max_cases": None}


@register_kind
class BreastFusionKind(ModelKind):
    name = FUSION_KIND
    classifies = True
    metric, metric_mode = "val_auc", "max"
    train_defaults = {"epochs": 8, "batch_size": 32, "optimizer": {"name": "AdamW", "lr": 2e-3, "weight_decay": 1e-4},
                      "amp": False, "channels_last": False}

    def __init__(self, settings: dict[str, Any], run_dir: Path, cases: list[BreastCase] | None = None):
        unknown = sorted(set(settings) - set(DEFAULTS) - {"name", "module", "config_dir"})
        if unknown:
            raise InputError("kind", f"unknown breast-fusion setting(s): {', '.join(unknown)}")
        super().__init__({**DEFAULTS, **settings}, run_dir)
        s = self.settings
        base = Path(s.get("config_dir") or ".")  # relative paths of a config file resolve against its folder
        s["inputs"] = [str(base / p) for p in s["inputs"]]
        s["init_weights"] = {m: str(base / p) for m, p in (s["init_weights"] or {}).items()}
        self.task = s["task"]
        self.classes = list(task_classes(self.task))
        self.branches = [BranchSpec.from_dict(b) for b in s["branches"]]
        for b in self.branches:
            if b.modality == "mri":
                b.spatial_dims = 3
                b.in_channels = 2 * len(b.phases)
                if len(b.size) != 3:
                    b.size = [16, 48, 48]
        if cases is None:
            if not s["inputs"]:
                raise InputError("kind", "breast-fusion needs 'inputs' (BUSI / BUS-BRA / breast case folders)")
            cases = [c for p in s["inputs"] for c in load_breast_input(p)[1]]
        self.samples = [x for x in make_samples(cases, self.branches, self.task) if x.label is not None]
        if s["max_cases"]:
            keep = sorted({x.patient_id for x in self.samples})[: int(s["max_cases"])]
            self.samples = [x for x in self.samples if x.patient_id in set(keep)]
        if not self.samples:
            raise InputError("kind", f"no labelled sample for task {self.task!r} in the inputs")
        self.sources = [str(p) for p in s["inputs"]]

    # --- cohort and splits
    def patients(self) -> list[Patient]:
        by: dict[str, list] = {}
        for x in self.samples:
            by.setdefault(x.patient_id, []).append(x)
        return [Patient(pid, Counter(x.label for x in xs).most_common(1)[0][0], xs[0].site, [x.id for x in xs])
                for pid, xs in sorted(by.items())]

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        tr, va = set(train_patients), set(val_patients)
        train = [x for x in self.samples if x.patient_id in tr]
        val = [x for x in self.samples if x.patient_id in va]
        ds_train = FusionDataset(train, self.branches, train=True, oversample=bool(self.settings["oversample"]))
        weights = class_weights(np.array([x.label for x in train]), len(self.classes)) \
            if self.settings["class_weights"] else None
        return SplitData(name, ds_train, FusionDataset(val, self.branches) if val else None, train_patients,
                         val_patients, extra={"class_weights": weights})

    # --- model and loss
    def build_model(self, split: SplitData) -> nn.Module:
        s = self.settings
        net = LateFusionNet(self.branches, len(self.classes), int(s["embed"]), int(s["hidden"]), float(s["dropout"]),
                            float(s["modality_dropout"]))
        for modality, path in (s["init_weights"] or {}).items():
            split.extra.setdefault("init", {})[modality] = load_branch_weights(net, modality, path)
        self._loss = loss_fn(s["loss"], split.extra.get("class_weights"), float(s["focal_gamma"]))
        return net

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        net = model.module if hasattr(model, "module") else model
        frozen = int(net.steps_seen) < int(self.settings["freeze_steps"])
        if frozen != net.frozen_branches:
            net.freeze_branches(frozen)
        net.steps_seen += 1
        inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
        logits = model(inputs, batch["present"].to(device))
        return {"loss": self._loss(logits, batch["label"].to(device))}

    @torch.no_grad()
    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        net = model.module if hasattr(model, "module") else model
        ds: FusionDataset = split.val  # type: ignore[assignment]
        prob = predict_dataset(net, ds, device)
        y = np.array([x.label for x in ds.samples])
        auc = score(y, prob)
        loss = float(torch.nn.functional.nll_loss(torch.log(torch.from_numpy(prob).clamp_min(1e-7)), torch.from_numpy(y)))
        return {"val_auc": auc if auc is not None else 0.5, "val_loss": loss}

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        if split.val is None:
            return {}
        net = model.module if hasattr(model, "module") else model
        ds: FusionDataset = split.val  # type: ignore[assignment]
        prob = predict_dataset(net, ds, device)
        return {"predictions": [{"id": x.id, "patient_id": x.patient_id, "site": x.site, "label": x.label,
                                 "prob": p.tolist()} for x, p in zip(ds.samples, prob)]}

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        from MedGradePredictLib.evaluate import evaluate_predictions

        rows = [r for res in results for r in (res.get("finish") or {}).get("predictions", [])]
        if not rows:
            return {}
        y = np.array([r["label"] for r in rows])
        prob = np.array([r["prob"] for r in rows])
        rep = evaluate_predictions(y, prob if len(self.classes) > 2 else prob[:, 1], None, self.classes,
                                   ordinal=self.task == "birads3", n_boot=500)
        m = rep["metrics"]
        keys = ("n", "auc", "auc_ci95", "macro_auc", "macro_auc_ci95", "accuracy", "sensitivity", "specificity",
                "kappa", "kappa_quadratic")
        out = {"out_of_fold": {k: m[k] for k in keys if k in m}, "stand_in_task": TASKS[self.task][1]}
        source = np.array([str(r["patient_id"]).split(":", 1)[0] if ":" in str(r["patient_id"]) else "cases"
                           for r in rows])
        if len(set(source)) > 1 and len(self.classes) == 2:
            from MedGradePredictLib.evaluate import binary_metrics

            out["out_of_fold_by_source"] = {}
            for src in sorted(set(source)):
                sel = source == src
                if len(set(y[sel])) == 2:
                    bm = binary_metrics(y[sel], prob[sel, 1], n_boot=500)
                    out["out_of_fold_by_source"][src] = {k: bm[k] for k in ("n", "auc", "auc_ci95")}
        return out

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path:
        from MedGradeCoreLib.bundle import ModelManifest, save_state_dict, write_bundle

        net = model.module if hasattr(model, "module") else model
        s = self.settings
        sites = Counter(x.site or "unknown" for x in self.samples)
        model_id = s["model_id"] or f"breast-fusion-{'-'.join(b.modality for b in self.branches)}-{self.task}"
        manifest = ModelManifest(
            model_id, FUSION_KIND,
            {"name": "LateFusionNet", "branches": [b.__dict__ for b in self.branches], "embed": int(s["embed"]),
             "hidden": int(s["hidden"]), "backbone": "monai.networks.nets.ResNet (basic, layers 1-1-1-1)"},
            [b.modality for b in self.branches],
            {"input": "ROI box + 25% margin, resized; channels image and image inside the ROI; 1-99th percentile "
                      "scaling", "loss": s["loss"], "class_weights": s["class_weights"], "oversample": s["oversample"],
             "modality_dropout": s["modality_dropout"], "freeze_steps": s["freeze_steps"],
             "init_weights": {k: str(v) for k, v in (s["init_weights"] or {}).items()}},
            {"name": self.task, "classes": self.classes, "positive_class": self.classes[-1],
             "stand_in": TASKS[self.task][1]},
            _honest_metrics(summary),
            trained_on=f"{len(self.samples)} samples of {len({x.patient_id for x in self.samples})} patients from "
                       f"{', '.join(Path(p).name for p in self.sources) or 'given cases'}; sites {dict(sites)}",
            description=s["description"] or f"late-fusion {'+'.join(b.modality for b in self.branches)} "
                                            f"model, {TASKS[self.task][1]}")
        with tempfile.TemporaryDirectory() as tmp:
            w = Path(tmp) / WEIGHTS
            save_state_dict(net.state_dict(), w)
            return write_bundle(out_dir / model_id, manifest, {WEIGHTS: w})


def _honest_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The manifest's figures: pooled out-of-fold predictions (what the library shows first); the runner's
    per-fold best validation AUC is kept apart and labelled optimistic (a maximum over epochs)."""
    s = json.loads(json.dumps(summary, default=str))
    oof = s.get("out_of_fold") or {}
    return {"pooled": {k: v for k, v in oof.items() if k != "auc_ci95"},
            "auc_ci95": oof.get("auc_ci95"), "stand_in_task": s.get("stand_in_task"),
            "by_source": s.get("out_of_fold_by_source"),
            "evaluation": "pooled out-of-fold predictions of each fold's model after the configured epochs "
                          "(patient-level folds)",
            "per_fold_best_val_auc_optimistic": {sp["name"]: sp.get("best_metric") for sp in s.get("splits", [])
                                                 if sp.get("name") != "final"},
            "run": {k: s.get(k) for k in ("run_id", "seed", "device", "world_size", "bundle_from")}}
