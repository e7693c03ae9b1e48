"""``toy-regression``: the smallest real-image kind, for testing the runner itself (DDP, resume, progress).

Each axial slice of the pyradiomics brain MR (``brain-mr/brain1_image.nrrd``) is a pseudo-patient; the
target is the slice's lesion area fraction (from its expert label), regressed by a two-layer CNN on the
slice down-sampled to ``size`` pixels. Not a medical model: it exists so runner tests train in seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from ..runner.kind import ModelKind, Patient, SplitData, register_kind


def _slices(size: int) -> tuple[np.ndarray, np.ndarray]:
    from MedGradeCoreLib.sample_data import sample_path

    img = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_path("brain-mr/brain1_image.nrrd")), sitk.sitkFloat32))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(sample_path("brain-mr/brain1_label.nrrd")))) > 0
    x = torch.from_numpy((img - img.mean()) / (img.std() + 1e-6))[:, None]
    x = F.interpolate(x, size=(size, size), mode="area").numpy()
    y = (lab.reshape(lab.shape[0], -1).mean(1) * 100).astype(np.float32)  # lesion % of the slice
    return x.astype(np.float32), y


@register_kind
class ToyRegression(ModelKind):
    name = "toy-regression"
    metric, metric_mode = "val_mae", "min"
    train_defaults = {"epochs": 2, "batch_size": 4, "optimizer": {"name": "AdamW", "lr": 1e-2}}

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        super().__init__(settings, run_dir)
        self.size = int(settings.get("size", 32))
        self.width = int(settings.get("width", 4))
        self.delay_s = float(settings.get("delay_s", 0.0))  # per step: lets tests watch (and kill) a run
        self.x, self.y = _slices(self.size)

    def patients(self) -> list[Patient]:
        return [Patient(f"slice{i:02d}", int(self.y[i] > 0), "brain1", [f"slice{i:02d}"]) for i in range(len(self.y))]

    def _ds(self, ids: list[str]) -> TensorDataset:
        idx = [int(p[5:]) for p in ids]
        return TensorDataset(torch.from_numpy(self.x[idx]), torch.from_numpy(self.y[idx]))

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        return SplitData(name, self._ds(train_patients), self._ds(val_patients) if val_patients else None,
                         train_patients, val_patients)

    def build_model(self, split: SplitData) -> nn.Module:
        w = self.width
        return nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.1),
                             nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(w, 1))

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        if self.delay_s:
            time.sleep(self.delay_s)
        x, y = (t.to(device) for t in batch)
        pred = model(x)[:, 0]
        return {"loss": F.mse_loss(pred, y), "mae": (pred - y).abs().mean()}

    @torch.no_grad()
    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        x, y = split.val.tensors  # type: ignore[union-attr]
        pred = model(x.to(device))[:, 0].cpu()
        return {"val_mae": float((pred - y).abs().mean()), "val_loss": float(F.mse_loss(pred, y))}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path:
        from MedGradeCoreLib.bundle import ModelManifest, save_state_dict, write_bundle

        weights = out_dir / "weights.safetensors"
        save_state_dict(model.state_dict(), weights)
        from ..slurm import safe_token

        model_id = str(self.settings.get("model_id") or f"toy-{safe_token(summary['run_id'])}")
        manifest = ModelManifest(model_id, self.name, {"name": "toy-cnn", "width": self.width}, ["t1c"],
                                 {"size": self.size}, {"target": "lesion % of the slice"},
                                 json.loads(json.dumps(summary, default=str)),
                                 trained_on="slices of brain-mr/brain1_image.nrrd (runner test kind)")
        folder = write_bundle(out_dir / model_id, manifest, {"model.safetensors": weights})
        weights.unlink()
        return folder
