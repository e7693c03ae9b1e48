"""Late-fusion network: one MONAI branch per modality -> feature vector -> learnable modality weights ->
concatenation (+ presence flags) -> MLP -> 2 or 3 classes. The single-modality model is the same code
with one branch.

Absent modalities are masked, never zero-filled: a branch runs only on the samples that have its
modality, an absent modality's slot holds a learned "absent" embedding, the modality weights are a
softmax over the present modalities only, and the presence flags enter the MLP. So the output does
not depend on what an absent modality's tensor contains. Modality dropout (training only) marks
present modalities absent at random, keeping at least one per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from MedGradeCoreLib.errors import InputError


@dataclass
class BranchSpec:
    """One modality branch: a small MONAI ResNet (2D for MG/US, 3D for MRI)."""

    modality: str
    spatial_dims: int = 2
    in_channels: int = 2
    size: list[int] = field(default_factory=lambda: [64, 64])
    widths: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    phases: list[str] = field(default_factory=list)  # MRI: DCE phases / sequences, in channel order

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BranchSpec":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_branch(spec: BranchSpec) -> nn.Module:
    from monai.networks.nets import ResNet

    return ResNet(block="basic", layers=[1, 1, 1, 1], block_inplanes=list(spec.widths),
                  spatial_dims=spec.spatial_dims, n_input_channels=spec.in_channels, conv1_t_size=3,
                  conv1_t_stride=1, feed_forward=False)


class LateFusionNet(nn.Module):
    def __init__(self, branches: list[BranchSpec], num_classes: int, embed: int = 32, hidden: int = 32,
                 dropout: float = 0.2, modality_dropout: float = 0.0):
        super().__init__()
        if not branches:
            raise InputError(None, "a fusion model needs at least one modality branch")
        self.names = [b.modality for b in branches]
        self.branches = nn.ModuleDict({b.modality: build_branch(b) for b in branches})
        self.project = nn.ModuleDict({b.modality: nn.Linear(b.widths[-1], embed) for b in branches})
        self.modality_logits = nn.Parameter(torch.zeros(len(branches)))
        self.absent = nn.Parameter(torch.zeros(len(branches), embed))
        self.head = nn.Sequential(nn.Linear(len(branches) * (embed + 1), hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_classes))
        self.modality_dropout = modality_dropout
        self.frozen_branches = False
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))  # staged training, resumable

    def modality_weights(self, present: torch.Tensor) -> torch.Tensor:
        """(B, M) softmax of the learned weights over each sample's present modalities (x M, so that a
        sample with every modality has weights averaging 1)."""
        logits = self.modality_logits.expand_as(present).masked_fill(~present, float("-inf"))
        return torch.softmax(logits, dim=1).nan_to_num(0.0) * present.shape[1]

    def _drop(self, present: torch.Tensor) -> torch.Tensor:
        if not self.training or self.modality_dropout <= 0 or present.shape[1] < 2:
            return present
        keep = present & (torch.rand(present.shape, device=present.device) >= self.modality_dropout)
        empty = ~keep.any(dim=1)
        if empty.any():  # restore one present modality of each emptied sample
            first = torch.argmax(present[empty].int(), dim=1)
            keep[empty.nonzero()[:, 0], first] = True
        return keep

    def features(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M * (embed + 1)) fused features and the (B, M) presence actually used."""
        present = self._drop(present.bool())
        if not present.any(dim=1).all():
            raise InputError(None, "a sample has none of the model's modalities")
        b = present.shape[0]
        w = self.modality_weights(present)
        slots = []
        for i, m in enumerate(self.names):
            rows = present[:, i]
            slot = self.absent[i].expand(b, -1)
            if rows.any():
                x = inputs[m][rows]
                if self.frozen_branches:
                    with torch.no_grad():
                        f = self.branches[m](x)
                else:
                    f = self.branches[m](x)
                f = self.project[m](f) * w[rows, i:i + 1]
                slot = slot.clone()
                slot = slot.index_put((rows.nonzero()[:, 0],), f)
            slots += [slot, present[:, i:i + 1].float()]
        return torch.cat(slots, dim=1), present

    def forward(self, inputs: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs, present)[0])

    def freeze_branches(self, frozen: bool) -> None:
        """Stage 1 of staged training: branches frozen (no gradients, batch-norm statistics fixed)."""
        self.frozen_branches = frozen
        for m in self.branches.values():
            m.requires_grad_(not frozen)
            m.train(self.training and not frozen)

    def train(self, mode: bool = True) -> "LateFusionNet":
        super().train(mode)
        if self.frozen_branches:
            for m in self.branches.values():
                m.eval()
        return self


def load_branch_weights(net: LateFusionNet, modality: str, path: str | Path) -> dict[str, int]:
    """Initialise one branch from a local weights file (safetensors or torch weights-only); keys may
    carry a prefix (e.g. ``encoder.``). Refuses a file of which no tensor fits the branch."""
    from MedGradeCoreLib.bundle import load_state_dict

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "initial weights file not found")
    try:
        state = load_state_dict(p)
    except Exception as exc:  # safetensors / torch raise several types for a bad file
        raise InputError(p, f"not a readable weights file ({exc})") from None
    own = net.branches[modality].state_dict()
    matched = {}
    for k, v in state.items():
        for cand in (k, k.split(".", 1)[-1]):
            if cand in own and tuple(own[cand].shape) == tuple(v.shape):
                matched[cand] = v
                break
    if not matched:
        raise InputError(p, f"no tensor of this file fits the {modality} branch ({len(own)} tensors expected)")
    net.branches[modality].load_state_dict(matched, strict=False)
    return {"matched": len(matched), "branch_tensors": len(own), "file_tensors": len(state)}
