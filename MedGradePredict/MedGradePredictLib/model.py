"""A trained grading model in memory: network + optional LightGBM head + the settings it needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from .cohort import SliceData, clinical_vector, network_meta
from .features import run_network
from .head_lgbm import head_matrix, predict_head
from .mix_inputs import SliceInputs
from .tasks import Task, get_task

if TYPE_CHECKING:
    from torch import nn


@dataclass
class GradingSettings:
    """Everything besides weights that prediction must reproduce (stored in the manifest)."""

    task: Task
    architecture: dict[str, Any]
    sequences: list[str] = field(default_factory=lambda: ["t1c", "t2"])
    input_mode: str = "mix"
    size: int = 240  # whole slice, size x size pixels at ``spacing`` mm (thesis: 240 at 1 mm)
    k: int = 20
    margin: float = 0.25  # lesion-centred crop only
    clinical_columns: list[str] = field(default_factory=lambda: ["age", "sex"])
    metadata: bool = True  # clinical columns into the network and the head
    head: str = "lightgbm"  # "lightgbm" | "network"
    fusion: str = "near"
    spacing: float = 1.0  # in-plane mm of the input grid (thesis: 1 mm)
    crop: bool = False  # lesion-centred crop instead of the whole slice (an option, not the thesis)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task"] = self.task.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GradingSettings":
        d = dict(d)
        d["task"] = get_task(d["task"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def used_columns(self) -> list[str]:
        return self.clinical_columns if self.metadata else []


class GradingModel:
    """``slice_probabilities(inputs, clinical)`` for one case; ``predict_data`` for many slices."""

    def __init__(self, net: nn.Module, settings: GradingSettings, booster: lgb.Booster | None = None,
                 model_id: str = "", weights_sha256: str = "", device: str = "cpu"):
        self.net, self.settings, self.booster = net.to(device).eval(), settings, booster
        self.model_id, self.weights_sha256, self.device = model_id, weights_sha256, device

    def _probs(self, arrays: dict[str, np.ndarray], clinical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = self.settings.used_columns
        meta = network_meta(clinical, cols) if self.settings.architecture.get("n_meta") else None
        p_net, feats = run_network(self.net, arrays, meta, self.device)
        if self.booster is None:
            return p_net, feats
        return predict_head(self.booster, head_matrix(feats, clinical)), feats

    def slice_probabilities(self, inputs: SliceInputs, clinical: dict[str, Any] | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Positive-class probability per slice and the slice feature vectors."""
        arrays = {s: inputs.arrays[s] for s in self.settings.sequences}
        vec = clinical_vector(clinical or {}, self.settings.used_columns)
        return self._probs(arrays, np.tile(vec, (len(inputs.slices), 1)))

    def predict_data(self, data: SliceData) -> np.ndarray:
        arrays = {s: data.arrays[s] for s in self.settings.sequences}
        return self._probs(arrays, data.clinical)[0]
