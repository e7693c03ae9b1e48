"""Training configuration: a dataclass read from (and written to) plain JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError
from .fpg import DEFAULT_S_NEG, DEFAULT_S_POS

DEFAULT_TEMPLATE = "atlas/sri24-brats-space/t1_skullstripped_brats_space.nii.gz"


@dataclass
class CaseSpec:
    """One training case: a preprocessed case folder, or image files + mask.

    ``lesion_labels``: mask values that count as lesion (``None`` = every non-zero value), e.g.
    ``[1, 4]`` for BraTS necrotic core + enhancing tumour. ``grade``: ``"LGG"``/``"HGG"``/``None``.
    Cases of one patient (same ``patient_id``, distinct ``case_id``) always share a fold.
    """

    patient_id: str | None = None
    case_dir: str | None = None
    images: dict[str, str] = field(default_factory=dict)
    mask: str | None = None
    lesion_labels: list[int] | None = None
    grade: str | None = None
    brain_mask: str | None = None
    reference: str | None = None
    case_id: str | None = None  # unique name when a patient has several cases (e.g. two spaces); default patient_id


@dataclass
class TrainConfig:
    """Everything a segmentation training run needs; ``architecture`` is a MIG-Net config dict
    (``{"name": "UNet", "width": 16}`` for the U-Net baseline), ``ablation`` a row name instead."""

    cases: list[CaseSpec]
    output_dir: str
    architecture: dict[str, Any] = field(default_factory=lambda: {"name": "MIGNet"})
    ablation: str | None = None
    sequences: list[str] = field(default_factory=lambda: ["t1c", "t2"])
    template: str = DEFAULT_TEMPLATE  # a file, or a sample-data registry path
    atlas_affine: bool = True
    atlas_shrink: list[int] = field(default_factory=lambda: [4, 2])  # registration pyramid
    s_neg: float = DEFAULT_S_NEG
    s_pos: float = DEFAULT_S_POS
    dice_weight: float = 0.0  # the FPG loss is the weighted CE (thesis); Dice is an explicit extra, off in ablations
    grade_weight: float = 0.3
    epochs: int = 50
    final_epochs: int | None = None  # epochs of the final fit on every patient (default: epochs)
    batch_size: int = 8
    lr: float = 3e-4
    weight_decay: float = 1e-4
    folds: int = 5
    seed: int = 0
    final_fit: bool = True  # after cross-validation, train the shipped model on every patient
    slices_per_case: int = 20  # "lesion"/"all" selections only
    slice_selection: str = "brain"  # "brain" (lesion + lesion-free slices of the brain extent) | "lesion" | "all"
    negative_ratio: float | None = 1.0  # "brain": lesion-free slices per lesion slice (None = every brain slice)
    largest_component: bool = False  # inference keeps the complete union unless this is set
    slice_margin: int = 0
    pad: int = 336
    crop: int = 224
    noise_std: float = 0.1
    rotate: bool = True
    inplane_spacing: float = 1.0
    fov_mm: float | None = None  # brain-centred in-plane field of view (mm) of every slice; None = the image's
    num_workers: int = 0
    device: str = "auto"
    amp: bool = True
    max_steps_per_epoch: int | None = None
    resume: bool = True
    model_id: str | None = None  # when set, a bundle is written to <output_dir>/bundle
    trained_on: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(source, f"unknown training option(s): {', '.join(sorted(unknown))}")
        if "cases" not in data or "output_dir" not in data:
            raise InputError(source, "a training config needs 'cases' and 'output_dir'")
        case_fields = {f.name for f in fields(CaseSpec)}
        cases = []
        for i, c in enumerate(data["cases"]):
            bad = set(c) - case_fields
            if bad:
                raise InputError(source, f"case {i}: unknown key(s) {', '.join(sorted(bad))}")
            cases.append(CaseSpec(**c))
        return cls(**{**data, "cases": cases})


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON training config; relative paths in it are resolved against its folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"unreadable training config ({exc})") from exc
    cfg = TrainConfig.from_dict(data, str(path))
    base = path.parent

    def rel(p: str | None) -> str | None:
        return p if p is None or Path(p).is_absolute() else str(base / p)

    for c in cfg.cases:
        c.case_dir, c.mask, c.brain_mask = rel(c.case_dir), rel(c.mask), rel(c.brain_mask)
        c.images = {k: rel(v) or v for k, v in c.images.items()}
    cfg.output_dir = rel(cfg.output_dir) or cfg.output_dir
    if (base / cfg.template).is_file():
        cfg.template = str(base / cfg.template)
    return cfg
