"""``grading``: KiNet (or a baseline network) + LightGBM head as a runner kind, and the grading training
API on top of it (:func:`fit_grading_model`, :func:`cross_validate`, :func:`run_ablation`).

The kind section holds the fields of :class:`MedGradePredictLib.train.TrainConfig` that are the model's
(task, architecture, loss, sequences, inputs, head, fusion, cohort/labels_csv/clinical_csv); the loop's
(epochs, batch size, optimiser, seed, device, AMP, folds) are the runner's. Each split: the network is
trained on three quarters of the training patients' slices, the LightGBM head on the network's features
of the other quarter (out of fold; ``head_fraction``, 0 = the old behaviour), and the held-out patients are
predicted (out-of-fold rows -> the run's cross-validation report).
Validation is monitored but, by default, selects nothing (``restore_best`` off, no early stopping), so
the held-out patients stay unseen by any choice.
A three-part split (split-file entries with ``test``, issue 17) is the recipe's 6:2:2: the network trains
on ``train``, the validation patients pick the checkpoint (``restore_best``, early stopping on the
validation loss) and, with ``head_fraction`` 0, are the LightGBM head's out-of-fold patients
(MedGradePredictLib.recipe: the validation part serves both), and only the ``test`` patients are predicted.
``augment`` (kind section, MedGradePredictLib.augment) adds random rotation / intensity to the flip;
``fold_bundles`` writes each fold's model as a bundle in its split folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress
from MedGradePredictLib.augment import Augment, augment_batch
from MedGradePredictLib.cohort import CohortCase, SliceData, load_cohort, network_meta, slice_data
from MedGradePredictLib.model import GradingModel
from MedGradePredictLib.networks import build_network
from MedGradePredictLib.train import (TrainConfig, batch_loss, config_dict, fit_head_model, loss_config,
                                      predict_cases)

from ..runner.kind import ModelKind, Patient, SplitData, register_kind

RUNNER_FIELDS = ("epochs", "batch_size", "lr", "weight_decay", "seed", "device", "amp", "folds", "test_fraction",
                 "output", "checkpoint_dir")


class SliceSet(Dataset):
    """Slices of a :class:`SliceData` as (inputs by sequence, metadata, label)."""

    def __init__(self, data: SliceData, sequences: list[str], meta: np.ndarray | None):
        self.data, self.sequences = data, sequences
        self.meta = meta if meta is not None else np.zeros((len(data), 0), np.float32)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return ({s: torch.from_numpy(self.data.arrays[s][i]) for s in self.sequences},
                torch.from_numpy(self.meta[i]), int(self.data.y[i]))


def lgg_cases(cfg: TrainConfig, gsettings: Any, patients: list[str] | None, progress: Progress
              ) -> list[CohortCase] | None:
    """The cases of a glioma-lgg-tcga cohort folder having every sequence of ``cfg`` (None for another
    layout); ``patients`` restricts them."""
    from MedGradePredictLib.cohort import cohort_case
    from MedGradeCoreLib.io.lgg_tcga import is_lgg_tcga_cohort, load_lgg_case, read_lgg_cohort

    if not is_lgg_tcga_cohort(cfg.cohort):
        return None
    records = [r for r in read_lgg_cohort(cfg.cohort) if r.has(cfg.sequences) and r.grade is not None
               and (not patients or r.patient_id in set(patients))]
    out = []
    for i, r in enumerate(records):
        progress(i / max(len(records), 1), f"reading {r.case}")
        case = load_lgg_case(r, cfg.sequences, cfg.sequences[0])
        out.append(cohort_case(case, gsettings.task, cfg.sequences, cfg.k, cfg.size, cfg.input_mode, cfg.margin,
                               spacing=cfg.spacing, crop=cfg.crop))
    return out


def grading_config(settings: dict[str, Any]) -> TrainConfig:
    data = {k: v for k, v in settings.items() if k not in ("config_dir", "seed", "report", "patients", "head_fraction",
                                                      "augment", "fold_bundles")}
    bad = sorted(set(data) & set(RUNNER_FIELDS))
    if bad:
        raise InputError(None, f"kind.{', kind.'.join(bad)}: set in the run config's train/split sections instead")
    cfg = TrainConfig.from_dict(data, "kind")
    base = Path(settings.get("config_dir") or ".")
    for key in ("cohort", "labels_csv", "clinical_csv"):
        value = getattr(cfg, key)
        if value and not Path(value).is_absolute():
            setattr(cfg, key, str((base / value).resolve()))
    cfg.seed = int(settings.get("seed", 0))
    return cfg


@register_kind
class GradingKind(ModelKind):
    name = "grading"
    classifies = True
    metric, metric_mode = "val_loss", "min"
    train_defaults = {"epochs": 20, "batch_size": 16, "optimizer": {"name": "AdamW", "lr": 4e-5, "weight_decay": 1e-4},
                      "scheduler": {"name": "CosineAnnealingLR"}, "restore_best": False}

    def __init__(self, settings: dict[str, Any], run_dir: Path, cases: list[CohortCase] | None = None,
                 cfg: TrainConfig | None = None):
        super().__init__(settings, run_dir)
        self.cfg = cfg or grading_config(settings)
        self.gsettings = self.cfg.settings()
        self.loss_cfg = loss_config(self.cfg)
        try:
            self.augment = Augment.from_dict(settings.get("augment"))
        except ValueError as exc:
            raise InputError(None, f"kind.{exc}") from None
        self._cases = cases
        self._heads: dict[str, GradingModel] = {}
        self.progress = Progress()
        self.report = True  # the run's cross-validation report (the API functions make their own)

    @property
    def cases(self) -> list[CohortCase]:
        if self._cases is None:
            if not self.cfg.cohort:
                raise InputError(None, "the grading kind needs 'cohort' (folder of cases)")
            c = self.cfg
            self._cases = lgg_cases(c, self.gsettings, self.settings.get("patients"), self.progress)
            if self._cases is None:
                self._cases = load_cohort(c.cohort, self.gsettings.task, c.sequences, c.labels_csv or None,
                                          c.clinical_csv or None, c.k, c.size, c.input_mode, c.margin, self.progress,
                                          spacing=c.spacing, crop=c.crop)
            if self.settings.get("patients"):
                keep = set(self.settings["patients"])
                self._cases = [x for x in self._cases if x.patient_id in keep]
            unlabelled = [x.case_id for x in self._cases if x.label is None]
            if unlabelled:
                raise InputError(c.labels_csv or c.cohort, f"no {self.gsettings.task.column!r} label for "
                                                           f"{', '.join(unlabelled[:5])}")
        return self._cases

    def patients(self) -> list[Patient]:
        return [Patient(c.patient_id, c.label, c.clinical.get("institution"), [c.case_id]) for c in self.cases]

    def _meta(self, data: SliceData) -> np.ndarray | None:
        cols = self.gsettings.used_columns
        return network_meta(data.clinical, cols) if self.gsettings.architecture.get("n_meta") else None

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        tr, va = set(train_patients), set(val_patients)
        train_cases = [c for c in self.cases if c.patient_id in tr]
        val_cases = [c for c in self.cases if c.patient_id in va]
        if not train_cases:
            raise InputError(None, f"{name}: no training case")
        cols = self.gsettings.used_columns
        head_cases: list[CohortCase] = []
        fraction = float(self.settings.get("head_fraction", 0.25))
        if self.gsettings.head == "lightgbm" and fraction > 0:
            # the thesis's 6:2:2: the head is fitted on out-of-fold features of a quarter of the training
            # patients the network never sees (MedGradePredictLib.recipe)
            from MedGradePredictLib.recipe import head_split

            ids = sorted(tr)
            first = {c.patient_id: c for c in reversed(train_cases)}
            net_ids, head_ids = head_split(ids, [first[p].label for p in ids],
                                           [first[p].clinical.get("institution") for p in ids], fraction, self.cfg.seed)
            head_cases = [c for c in train_cases if c.patient_id in set(head_ids)]
            train_cases = [c for c in train_cases if c.patient_id in set(net_ids)]
        data = slice_data(train_cases, cols)
        val = None
        if val_cases:
            vdata = slice_data(val_cases, cols)
            val = SliceSet(vdata, self.gsettings.sequences, self._meta(vdata))
        return SplitData(name, SliceSet(data, self.gsettings.sequences, self._meta(data)), val,
                         list(train_patients), list(val_patients), {"train_cases": train_cases, "val_cases": val_cases,
                                                                   "data": data, "head_cases": head_cases})

    def build_model(self, split: SplitData) -> nn.Module:
        return build_network(self.gsettings.architecture)

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        x, meta, y = batch
        x = {s: v.to(device, non_blocking=True) for s, v in x.items()}
        meta = meta.to(device) if meta.shape[1] else None
        flip = bool(torch.rand(()) < 0.5)  # torch's generator: checkpointed by the runner
        x = augment_batch(x, self.augment)
        terms = batch_loss(model, x, meta, y.to(device), self.loss_cfg, flip)
        return {"loss": terms["total"], **{k: v for k, v in terms.items() if k != "total"}}

    @torch.no_grad()
    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        val: SliceSet = split.val  # type: ignore[assignment]
        losses, probs = [], []
        for i in range(0, len(val), 64):
            idx = list(range(i, min(i + 64, len(val))))
            x = {s: torch.from_numpy(val.data.arrays[s][idx]).to(device) for s in val.sequences}
            meta = torch.from_numpy(val.meta[idx]).to(device) if val.meta.shape[1] else None
            y = torch.from_numpy(val.data.y[idx]).to(device)
            out = model(x, meta)
            losses.append(float(batch_loss(model, x, meta, y, self.loss_cfg, False)["total"]) * len(idx))
            probs.append(torch.softmax(out.logits.float(), 1)[:, 1].cpu().numpy())
        p, y = np.concatenate(probs), val.data.y
        auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")
        return {"val_loss": sum(losses) / len(val), "val_slice_auc": auc}

    def _head(self, model: nn.Module, split: SplitData, device: torch.device) -> GradingModel:
        if split.name not in self._heads:  # deterministic (LightGBM seeded): refitted the same after a resume
            head_cases = split.extra.get("head_cases") or []
            if not head_cases and split.test_patients and self.gsettings.head == "lightgbm":
                head_cases = split.extra["val_cases"]  # three-part split, head_fraction 0: the validation part
            data = slice_data(head_cases, self.gsettings.used_columns) if head_cases else split.extra["data"]
            net_cases = {c.case_id for c in split.extra["train_cases"]} if head_cases else set()
            self._heads[split.name] = fit_head_model(self.cfg, self.gsettings, model, data, device.type, net_cases)
        return self._heads[split.name]

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        gm = self._head(model, split, device)
        fold: int | str = int(split.name[4:]) if split.name.startswith("fold") else 0
        scored = split.extra["val_cases"]
        if split.test_patients:  # three-part split: the validation patients chose; the test ones are scored
            test = set(split.test_patients)
            scored = [c for c in self.cases if c.patient_id in test]
        if self.settings.get("fold_bundles") and split.name != "final":
            self._fold_bundle(gm, split)
        return {"predictions": predict_cases(gm, scored, fold) if scored else []}

    def _fold_bundle(self, gm: GradingModel, split: SplitData) -> Path:
        """``fold_bundles`` (kind section): each fold's model as a bundle in its split folder, for Grad-CAM or
        ONNX checks on the patients that fold held out (named in the manifest's metrics)."""
        import shutil

        from MedGradePredictLib.model_bundle import save_grading_bundle

        dest = self.run_dir / "splits" / split.name / "bundle"
        shutil.rmtree(dest, ignore_errors=True)  # a rerun of a split that stopped before its result was recorded
        held_out = split.test_patients or split.val_patients
        return save_grading_bundle(
            gm, dest, {"fold": split.name, "held_out_patients": sorted(held_out),
                       "validation_patients": sorted(split.val_patients) if split.test_patients else []},
            f"{len(split.train_patients)} training patients of {self.cfg.cohort} ({split.name})",
            training=self._training_record())

    def _training_record(self, **extra: Any) -> dict[str, Any]:
        """What a bundle records of its training: the kind's settings and the augmentation."""
        return dict(config_dict(self.cfg), augment=vars(self.augment), **extra)

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        rows = [r for res in results if res["name"] != "final" for r in res["finish"].get("predictions", [])]
        if not rows or not self.report:
            return {}
        from MedGradePredictLib.evaluate import write_report

        cv = self.run_dir / "cv"
        decided = [dict(r, probability=r[f"probability_{self.cfg.fusion}"]) for r in rows]
        report = write_report(decided, cv, n_boot=self.cfg.bootstrap)
        (cv / "predictions.json").write_text(json.dumps(rows, indent=1, default=str))
        return {"cross_validation": report["decision"], "by_fusion": report["by_fusion"],
                "patients_predicted": len({r["patient_id"] for r in rows})}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path:
        from MedGradePredictLib.model_bundle import save_grading_bundle

        gm = self._head(model, split, next(model.parameters()).device)
        metrics = {k: summary[k] for k in ("cross_validation", "by_fusion") if k in summary}
        return save_grading_bundle(gm, out_dir / self.cfg.model_id, metrics,
                                   self.cfg.trained_on or f"{len(self.cases)} cases from {self.cfg.cohort}",
                                   training=self._training_record(run_id=summary.get("run_id")))


def _history(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Runner metrics rows in the grading API's form (``total`` and each loss term per epoch)."""
    out = []
    for r in rows:
        h = {k[len("train_"):]: v for k, v in r.items() if k.startswith("train_") and k != "train_loss"}
        h.update(total=r["train_loss"], epoch=r["epoch"], seconds=r["seconds"])
        out.append(h)
    return out


def _run_config(cfg: TrainConfig, split: dict[str, Any], final_fit: bool) -> dict[str, Any]:
    return {"kind": {"name": GradingKind.name}, "seed": cfg.seed, "final_fit": final_fit, "register": False,
            "split": split,
            "train": {"epochs": cfg.epochs, "batch_size": max(2, cfg.batch_size), "amp": cfg.amp, "device": cfg.device,
                      "optimizer": {"name": "AdamW", "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                      "scheduler": {"name": "CosineAnnealingLR"}, "restore_best": False}}


def _run(cfg: TrainConfig, cases: list[CohortCase], split: dict[str, Any], final_fit: bool,
         progress: Progress | None, run_dir: Path | None = None, head_fraction: float | None = None):
    from ..runner.loop import run_training

    with tempfile.TemporaryDirectory() as tmp:
        out = run_dir or Path(tmp) / "run"
        kind = GradingKind({} if head_fraction is None else {"head_fraction": head_fraction}, out, cases=cases,
                           cfg=cfg)
        kind.progress = progress or Progress()
        kind.report = False
        res = run_training(_run_config(cfg, split, final_fit), out, kind=kind, progress=progress, stdout=None)
        hist = {}
        for r in res.splits:
            lines = (out / "splits" / r["name"] / "metrics.jsonl").read_text().splitlines()
            hist[r["name"]] = _history([json.loads(x) for x in lines])
        return res, hist


def fit_grading_model(cfg: TrainConfig, cases: list[CohortCase], progress: Progress | None = None
                      ) -> tuple[GradingModel, list[dict[str, float]]]:
    """Network on every case's slices (through the runner), then the LightGBM head on its features."""
    if any(c.label is None for c in cases):
        raise InputError(None, "every training case needs a label for the task")
    res, hist = _run(cfg, cases, {"mode": "none"}, True, progress,
                     Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else None)
    kind: GradingKind = res.kind  # type: ignore[assignment]
    return kind._heads["final"], hist["final"]


def cross_validate(cfg: TrainConfig, cases: list[CohortCase], progress: Progress | None = None,
                   head_fraction: float | None = None) -> tuple[list[dict[str, Any]], list[list[dict[str, float]]]]:
    """Out-of-fold predictions (patient-level splits) and each fold's training history; ``head_fraction``
    overrides the kind's out-of-fold head share (0: the head on the network's training slices)."""
    split = ({"mode": "kfold", "folds": cfg.folds} if cfg.folds > 1
             else {"mode": "holdout", "val_fraction": cfg.test_fraction})
    res, hist = _run(cfg, cases, split, False, progress, head_fraction=head_fraction)
    rows = [r for rec in res.splits for r in rec["finish"].get("predictions", [])]
    return rows, [hist[rec["name"]] for rec in res.splits]


def run_ablation(base: TrainConfig, cases: list[CohortCase], progress: Progress | None = None
                 ) -> list[dict[str, Any]]:
    """Cross-validate every KiNet ablation row on the same cases and splits; one metrics row each."""
    from MedGradePredictLib.ablation import ablation_configs
    from MedGradePredictLib.evaluate import binary_metrics

    progress = progress or Progress()
    out = []
    rows = ablation_configs(base)
    for i, (name, cfg) in enumerate(rows):
        preds, _ = cross_validate(cfg, cases, progress.sub(i / len(rows), (i + 1) / len(rows)))
        y = [r["label"] for r in preds]
        m = binary_metrics(y, [r[f"probability_{cfg.fusion}"] for r in preds], n_boot=200)
        out.append({"row": name, "auc": m["auc"], "accuracy": m["accuracy"], "n": m["n"]})
    return out


class _GivenSlices(GradingKind):
    """Slices prepared by the caller (a :class:`SliceData`) and their settings: the network only."""

    def __init__(self, cfg: TrainConfig, data: SliceData, settings: Any, run_dir: Path):
        ModelKind.__init__(self, {}, run_dir)
        self.cfg, self.gsettings, self.data, self.augment = cfg, settings, data, Augment()
        self.loss_cfg, self._heads, self.progress, self.report = loss_config(cfg), {}, Progress(), False

    def patients(self) -> list[Patient]:
        return [Patient(str(c)) for c in sorted(set(self.data.case.astype(str)))]

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        return SplitData(name, SliceSet(self.data, self.gsettings.sequences, self._meta(self.data)), None,
                         list(train_patients), [], {"data": self.data, "val_cases": []})

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        return {}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> None:
        return None


def train_network(cfg: TrainConfig, data: SliceData, progress: Progress | None = None, settings: Any = None
                  ) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train the configured network on prepared slices through the runner; returns it (eval mode) and the
    loss terms per epoch (``total`` ...). ``cfg.checkpoint_dir``, when set, is the run folder."""
    from ..runner.loop import run_training

    settings = settings or cfg.settings()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(tmp) / "run"
        kind = _GivenSlices(cfg, data, settings, run)
        res = run_training(_run_config(cfg, {"mode": "none"}, True), run, kind=kind, progress=progress, stdout=None)
        rows = [json.loads(x) for x in (run / "splits" / "final" / "metrics.jsonl").read_text().splitlines()]
    return res.model.eval(), _history(rows)
