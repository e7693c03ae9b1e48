"""The pieces of MIG-Net (or baseline) training that the runner's ``segmentation`` kind
(:mod:`MedGradeTrainLib.kinds.segmentation`) calls: loading and registering the cases once, the FPG atlas
of a fold's training patients only, slice samples, the model, and the loss of one batch. The loop,
checkpoints, resume and k-fold bookkeeping are the runner's (``medgrade train`` / ``train-seg``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress
from MedGradeCoreLib.sample_data import sample_path
from .ablation import ablation_config
from .baselines import build_model
from .cases import TrainingCase, load_training_case
from .config import TrainConfig
from .data import CaseVolumes, case_slices, case_volumes, slice_samples
from .fpg import AtlasCase, atlas_from_warped, location_prior_2d, warp_mask_to_template
from .losses import grade_loss


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


def build_split_model(arch: dict[str, Any], atlas: sitk.Image | None, cfg: TrainConfig,
           template: sitk.Image | None = None) -> nn.Module:
    prior = None
    if arch.get("name", "MIGNet") == "MIGNet" and arch.get("dual_guidance") and atlas is not None:
        prior = torch.from_numpy(location_prior_2d(atlas, int(arch.get("prior_size", 224)), cfg.fov_mm, template,
                                                   cfg.inplane_spacing))
    return build_model(arch, prior)


def prepared_volumes(cases: list[TrainingCase], cfg: TrainConfig, atlas: sitk.Image | None,
             transforms: dict[str, sitk.Transform]) -> list[CaseVolumes]:
    return [case_volumes(c.patient_id, c.images, c.mask, c.reference, c.grade, c.brain_mask, atlas,
                         transforms.get(c.case_id), cfg.inplane_spacing, cfg.fov_mm) for c in cases]


def fold_samples(vols: list[CaseVolumes], cfg: TrainConfig) -> list[dict[str, Any]]:
    out = []
    for v in vols:
        zs = case_slices(v, cfg.slice_selection, cfg.slices_per_case, cfg.slice_margin, cfg.negative_ratio)
        out += slice_samples(v, cfg.sequences, zs, cfg.s_neg, cfg.s_pos)
    return out


def fold_atlas_image(warped: dict[str, np.ndarray], cases: list[TrainingCase], patients: list[str],
           template: sitk.Image) -> sitk.Image:
    """The FPG atlas of the cases of ``patients`` (every case of a patient counts)."""
    return atlas_from_warped([warped[c.case_id] for c in cases if c.patient_id in patients], template)


def finite_mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def load_cases(cfg: TrainConfig) -> list[TrainingCase]:
    """Every case of ``cfg`` loaded; case ids must be unique (a patient may have several cases)."""
    cases = [load_training_case(c, cfg.sequences) for c in cfg.cases]
    keys = [c.case_id for c in cases]
    if len(set(keys)) != len(keys):
        raise InputError(None, f"case ids must be unique (give case_id when a patient has several cases), got {keys}")
    return cases


def register_cases(cases: list[TrainingCase], cfg: TrainConfig, template: sitk.Image, out: Path,
                   progress: Progress, reuse: bool = True) -> tuple[dict[str, np.ndarray], dict[str, sitk.Transform]]:
    """Each case registered to the template once (transforms kept in ``out/registration`` and reused):
    the masks warped to the template (for fold atlases) and the template-to-case transforms."""
    warped: dict[str, np.ndarray] = {}
    transforms: dict[str, sitk.Transform] = {}
    (out / "registration").mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(cases):
        progress(i / len(cases), f"registering {c.case_id} to the template")
        tfm = out / "registration" / f"{c.case_id}_template_to_case.tfm"
        if reuse and tfm.is_file():  # a resumed run reuses the registrations
            transforms[c.case_id] = sitk.ReadTransform(str(tfm))
            warped[c.case_id] = sitk.GetArrayFromImage(sitk.Resample(
                c.mask, template, transforms[c.case_id], sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))
            continue
        warped[c.case_id], transforms[c.case_id] = warp_mask_to_template(
            AtlasCase(c.patient_id, c.images[c.reference], c.mask), template, cfg.atlas_affine,
            tuple(cfg.atlas_shrink))
        tmp = tfm.with_name(tfm.name + ".tmp.tfm")
        sitk.WriteTransform(transforms[c.case_id], str(tmp))
        tmp.replace(tfm)
    return warped, transforms


def training_loss(model: nn.Module, batch: dict[str, Any], cfg: TrainConfig, arch: dict[str, Any],
                  loss_fn: nn.Module, device: Any, channels_last: bool = False) -> dict[str, torch.Tensor]:
    """The thesis's loss of one batch: FPG-weighted Dice + CE, plus ``grade_weight`` x the grade loss."""
    x = batch["image"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = batch["label"].to(device, non_blocking=True)[:, 0].round().long()
    w = batch["weight"].to(device, non_blocking=True)[:, 0] if uses_fpg(arch) else None
    g = torch.as_tensor(batch["grade"], device=device)
    if arch.get("prior_input") and "prior" in batch:  # the location prior, augmented with the image (issue 17)
        seg, grade_logits = model(x, batch["prior"].to(device, non_blocking=True))
    else:
        seg, grade_logits = model(x)
    seg_loss = loss_fn(seg.float(), y, w)
    terms = {"loss": seg_loss, "seg_loss": seg_loss.detach()}
    gl = grade_loss(grade_logits.float() if grade_logits is not None else None, g)
    if gl is not None and cfg.grade_weight:
        terms["loss"] = seg_loss + cfg.grade_weight * gl
        terms["grade_loss"] = gl.detach()
    return terms
