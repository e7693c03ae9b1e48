"""Training MIG-Net (or a baseline) with patient-level k-fold cross-validation.

``train(config, progress)``: loads the cases, registers each to the template once, builds the FPG
atlas per fold from that fold's training patients only, trains with the thesis's augmentation
(AMP on CUDA), checkpoints every epoch (resumable), scores each fold with MONAI's DSC/HD95, and
optionally fits the shipped model on every patient. Outputs go to ``config.output_dir``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..devices import choose_device
from ..errors import InputError
from ..progress import Progress
from ..sample_data import sample_path
from .ablation import ablation_config
from .baselines import build_model
from .cases import TrainingCase, load_training_case
from .config import TrainConfig
from .data import (CaseVolumes, case_volumes, eval_transforms, fold_split, patient_kfold, select_slices,
                   slice_dataset, slice_samples, train_transforms)
from .fpg import AtlasCase, atlas_from_warped, location_prior_2d, warp_mask_to_template
from .infer import amp_context
from .losses import FPGLoss, grade_loss
from .metrics import evaluate


@dataclass
class TrainResult:
    """The trained model, its FPG atlas, per-fold metrics and where things were written."""

    model: nn.Module
    architecture: dict[str, Any]
    atlas: sitk.Image | None
    folds: list[dict[str, Any]]
    summary: dict[str, Any]
    output_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    bundle: Path | None = None


def resolve_architecture(cfg: TrainConfig) -> dict[str, Any]:
    """The architecture dict (an ablation row's switches applied over ``cfg.architecture``)."""
    arch = dict(cfg.architecture)
    if cfg.ablation:
        overrides = {k: v for k, v in arch.items() if k != "name"}
        arch = ablation_config(cfg.ablation, **overrides).to_dict()
    elif arch.get("name", "MIGNet") == "MIGNet":
        from .mignet import MIGNetConfig

        arch = MIGNetConfig.from_dict(arch).to_dict()
    arch.setdefault("crop", cfg.crop)
    return arch


def uses_fpg(arch: dict[str, Any]) -> bool:
    return bool(arch.get("fpg_loss", False))


def template_image(cfg: TrainConfig) -> sitk.Image:
    path = Path(cfg.template)
    if not path.is_file():
        path = sample_path(cfg.template)
    return sitk.ReadImage(str(path), sitk.sitkFloat32)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def _build(arch: dict[str, Any], atlas: sitk.Image | None, cfg: TrainConfig,
           template: sitk.Image | None = None) -> nn.Module:
    prior = None
    if arch.get("name", "MIGNet") == "MIGNet" and arch.get("dual_guidance") and atlas is not None:
        prior = torch.from_numpy(location_prior_2d(atlas, int(arch.get("prior_size", 224)), cfg.fov_mm, template,
                                                   cfg.inplane_spacing))
    return build_model(arch, prior)


def fit(model: nn.Module, samples: list[dict[str, Any]], cfg: TrainConfig, arch: dict[str, Any], device: str,
        ckpt: Path, progress: Progress, epochs: int | None = None) -> list[dict[str, Any]]:
    """Train ``model`` on ``samples`` for ``epochs`` (default ``cfg.epochs``); resumes from ``ckpt``."""
    epochs = cfg.epochs if epochs is None else epochs
    torch.manual_seed(cfg.seed)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    state = _load_checkpoint(ckpt) if cfg.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, history = int(state["epoch"]) + 1, json.loads(state["history"])
    ds = slice_dataset(samples, train_transforms(cfg.pad, cfg.crop, cfg.noise_std, rotate=cfg.rotate))
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
                        drop_last=len(ds) > cfg.batch_size, pin_memory=device.startswith("cuda"),
                        persistent_workers=cfg.num_workers > 0)
    loss_fn = FPGLoss(cfg.dice_weight)
    fpg = uses_fpg(arch)
    steps = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
    for epoch in range(start_epoch, epochs):
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        for step, batch in enumerate(loader):
            if step >= steps:
                break
            progress((epoch + step / steps) / epochs, f"epoch {epoch + 1}/{epochs} step {step + 1}/{steps}")
            x = batch["image"].to(device, non_blocking=True)
            y = batch["label"].to(device, non_blocking=True)[:, 0].round().long()
            w = batch["weight"].to(device, non_blocking=True)[:, 0] if fpg else None
            g = torch.as_tensor(batch["grade"], device=device)
            with amp_context(device, use_amp):
                seg, grade_logits = model(x)
            loss = loss_fn(seg, y, w)
            gl = grade_loss(grade_logits, g)
            if gl is not None and cfg.grade_weight:
                loss = loss + cfg.grade_weight * gl
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total, n = total + float(loss.detach()), n + 1
        history.append({"epoch": epoch, "loss": total / max(n, 1), "seconds": time.perf_counter() - t0})
        _save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scaler": scaler.state_dict(), "epoch": epoch, "history": json.dumps(history)})
    progress(1.0, "training done")
    return history


def _volumes(cases: list[TrainingCase], cfg: TrainConfig, atlas: sitk.Image | None,
             transforms: dict[str, sitk.Transform]) -> list[CaseVolumes]:
    return [case_volumes(c.patient_id, c.images, c.mask, c.reference, c.grade, c.brain_mask, atlas,
                         transforms.get(c.case_id), cfg.inplane_spacing, cfg.fov_mm) for c in cases]


def _samples(vols: list[CaseVolumes], cfg: TrainConfig) -> list[dict[str, Any]]:
    out = []
    for v in vols:
        zs = select_slices(v.label, cfg.slices_per_case, cfg.slice_selection, cfg.slice_margin)
        out += slice_samples(v, cfg.sequences, zs, cfg.s_neg, cfg.s_pos)
    return out


def _atlas(warped: dict[str, np.ndarray], cases: list[TrainingCase], patients: list[str],
           template: sitk.Image) -> sitk.Image:
    """The FPG atlas of the cases of ``patients`` (every case of a patient counts)."""
    return atlas_from_warped([warped[c.case_id] for c in cases if c.patient_id in patients], template)


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def train(cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Cross-validate and (with ``final_fit``) train the shipped model; see the module docstring."""
    progress = progress or Progress()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    arch = resolve_architecture(cfg)
    device = choose_device(cfg.device).device
    progress(0.0, "loading cases")
    cases = [load_training_case(c, cfg.sequences) for c in cfg.cases]
    keys = [c.case_id for c in cases]
    if len(set(keys)) != len(keys):
        raise InputError(None, f"case ids must be unique (give case_id when a patient has several cases), got {keys}")
    ids = sorted({c.patient_id for c in cases})  # folds are split by patient, never by case
    needs_atlas = uses_fpg(arch) or bool(arch.get("dual_guidance"))
    warped: dict[str, np.ndarray] = {}
    transforms: dict[str, sitk.Transform] = {}
    template = None
    if needs_atlas:
        template = template_image(cfg)
        reg = progress.sub(0.0, 0.1)
        (out / "registration").mkdir(exist_ok=True)
        for i, c in enumerate(cases):
            reg(i / len(cases), f"registering {c.case_id} to the template")
            tfm = out / "registration" / f"{c.case_id}_template_to_case.tfm"
            if cfg.resume and tfm.is_file():  # a resumed run reuses the registrations
                transforms[c.case_id] = sitk.ReadTransform(str(tfm))
                warped[c.case_id] = sitk.GetArrayFromImage(sitk.Resample(
                    c.mask, template, transforms[c.case_id], sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))
                continue
            warped[c.case_id], transforms[c.case_id] = warp_mask_to_template(
                AtlasCase(c.patient_id, c.images[c.reference], c.mask), template, cfg.atlas_affine,
                tuple(cfg.atlas_shrink))
            sitk.WriteTransform(transforms[c.case_id], str(tfm))
    n_runs = (cfg.folds if cfg.folds >= 2 else 0) + int(cfg.final_fit or cfg.folds < 2)
    folds = patient_kfold(ids, cfg.folds, cfg.seed) if cfg.folds >= 2 else []
    fold_metrics: list[dict[str, Any]] = []
    run = 0
    for k in range(len(folds)):
        sub = progress.sub(0.1 + 0.9 * run / n_runs, 0.1 + 0.9 * (run + 1) / n_runs)
        run += 1
        train_ids = [p for p in ids if p not in folds[k]]
        atlas = _atlas(warped, cases, train_ids, template) if needs_atlas else None
        vols = _volumes(cases, cfg, atlas, transforms)
        train_s, val_s = fold_split(_samples(vols, cfg), folds, k)
        model = _build(arch, atlas, cfg, template)
        fdir = out / f"fold{k}"
        fdir.mkdir(exist_ok=True)
        hist = fit(model, train_s, cfg, arch, device, fdir / "checkpoint.pt", sub.sub(0, 0.9))
        sub(0.95, f"fold {k}: validation")
        m = evaluate(model, val_s, device, cfg.batch_size,
                     cfg.inplane_spacing or 1.0)
        m.update({"fold": k, "train_patients": train_ids, "val_patients": list(folds[k]),
                  "final_loss": hist[-1]["loss"] if hist else math.nan})
        (fdir / "metrics.json").write_text(json.dumps(m, indent=2))
        fold_metrics.append(m)
    summary = {"folds": len(folds), "fold_epochs": cfg.epochs, "dsc_mean": _mean([m["dsc"] for m in fold_metrics]),
               "hd95_mm_mean": _mean([m["hd95_mm"] for m in fold_metrics]), "device": device,
               "architecture": arch.get("name", "MIGNet")}
    if cfg.final_fit or not folds:
        sub = progress.sub(0.1 + 0.9 * run / n_runs, 1.0)
        atlas = atlas_from_warped(list(warped.values()), template) if needs_atlas else None
        vols = _volumes(cases, cfg, atlas, transforms)
        samples = _samples(vols, cfg)
        model = _build(arch, atlas, cfg, template)
        (out / "final").mkdir(exist_ok=True)
        hist = fit(model, samples, cfg, arch, device, out / "final" / "checkpoint.pt", sub, cfg.final_epochs)
        summary["final_epochs"] = cfg.final_epochs or cfg.epochs
        summary["final_train"] = evaluate(model, samples, device, cfg.batch_size, cfg.inplane_spacing or 1.0)
        summary["final_train"]["note"] = "scored on its own training slices (not a validation score)"
    else:
        best = int(np.nanargmax([m["dsc"] if not math.isnan(m["dsc"]) else -1 for m in fold_metrics]))
        train_ids = [p for p in ids if p not in folds[best]]
        atlas = _atlas(warped, cases, train_ids, template) if needs_atlas else None
        model = _build(arch, atlas, cfg, template)
        model.load_state_dict(torch.load(out / f"fold{best}" / "checkpoint.pt", map_location="cpu",
                                         weights_only=True)["model"])
        hist = []
        summary["shipped_fold"] = best
    model.to("cpu").eval()
    if atlas is not None:
        sitk.WriteImage(atlas, str(out / "fpg_atlas.nii.gz"))
    (out / "metrics.json").write_text(json.dumps({"summary": summary, "folds": fold_metrics}, indent=2))
    result = TrainResult(model, arch, atlas, fold_metrics, summary, out, hist)
    if cfg.model_id:
        import shutil

        from .model_bundle import write_model_bundle

        shutil.rmtree(out / "bundle", ignore_errors=True)  # this run's own previous bundle
        result.bundle = write_model_bundle(out / "bundle", result, cfg)
    progress(1.0, "done")
    return result
