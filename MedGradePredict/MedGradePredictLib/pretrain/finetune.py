"""Fine-tuning a pre-trained (U)MAE encoder on single-view input.

:class:`ViTClassifier`: encoder (every patch, no mask) -> global token -> LayerNorm -> linear. With
``linear_probe`` the encoder is frozen (no gradients, kept in eval mode) and only the head trains.

Initialising other graders from the encoder, where shapes allow:

* :class:`ViTClassifier` and :class:`ViTBranch` of the same :class:`EncoderConfig`: every tensor.
* KiNet's sequence branches (``MedGradePredictLib.kinet``) and the baselines are ResNeSt CNNs (3x3
  stride-2 stem + BatchNorm, split-attention residual stages); the breast late-fusion branches
  (``MedGradePredictLib.breast.fusion_net``) are MONAI ResNets. No tensor of the ViT (p x p patch
  embedding, 3x3 CCP convolutions from ``dim`` to ``3 dim`` channels, linear/LayerNorm weights) has a
  matching role and shape there: :func:`transfer_matching` copies nothing into them and reports every
  tensor as skipped, and the breast ``load_branch_weights`` refuses the file. UMAE weights do not
  initialise these CNN branches; a ViT branch would be needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .encoder import EncoderConfig, ViTEncoder

ENCODER_PREFIX = "encoder."


class ViTBranch(nn.Module):
    """The encoder as a feature extractor: one view -> its global token [B, dim] (``feature_dim``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.encoder = ViTEncoder(cfg)
        self.feature_dim = cfg.dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[:, 0]


class ViTClassifier(nn.Module):
    def __init__(self, cfg: EncoderConfig, num_classes: int = 2, linear_probe: bool = False):
        super().__init__()
        self.encoder = ViTEncoder(cfg)
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, num_classes))
        self.linear_probe = linear_probe
        if linear_probe:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "ViTClassifier":
        super().train(mode)
        if self.linear_probe:
            self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.linear_probe:
            with torch.no_grad():
                g = self.encoder(images)[:, 0]
        else:
            g = self.encoder(images)[:, 0]
        return self.head(g)


def encoder_state(pretrained_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors of a pre-trained MaskedAutoencoder state dict, without the prefix."""
    out = {k[len(ENCODER_PREFIX):]: v for k, v in pretrained_state.items() if k.startswith(ENCODER_PREFIX)}
    if not out:
        raise ValueError("the weights hold no encoder tensors (expected keys starting with 'encoder.')")
    return out


def load_encoder(encoder: ViTEncoder, state: dict[str, torch.Tensor]) -> None:
    """Load encoder tensors strictly (same configuration)."""
    own = encoder.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise ValueError(f"pre-trained encoder does not match this configuration: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, other shapes {wrong[:3]}")
    encoder.load_state_dict(state)


@dataclass
class TransferReport:
    copied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # target parameter -> why

    def to_dict(self) -> dict[str, Any]:
        return {"copied": self.copied, "skipped": self.skipped}


def transfer_matching(target: nn.Module, state: dict[str, torch.Tensor], prefix: str = "") -> TransferReport:
    """Copy every tensor of ``state`` (encoder names) into ``target``'s parameter ``prefix + name``
    when that parameter exists with the same shape; report the rest of ``target`` as skipped."""
    report = TransferReport()
    own = target.state_dict()
    with torch.no_grad():
        for name, tensor in own.items():
            src = state.get(name[len(prefix):]) if name.startswith(prefix) else None
            if src is None:
                report.skipped[name] = "no pre-trained tensor of that name"
            elif src.shape != tensor.shape:
                report.skipped[name] = f"shape {tuple(src.shape)} != {tuple(tensor.shape)}"
            else:
                tensor.copy_(src)
                report.copied.append(name)
    return report
