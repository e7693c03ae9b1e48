"""Grad-CAM of a torch grading network with MONAI (:func:`.gradcam.gradcam_maps` calls it for torch models only)."""

from __future__ import annotations

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn

# The last feature maps of each architecture (Grad-CAM's target layer), under the wrapper's "net."
TARGET_LAYERS = {"kinet": "net.main4", "early": "net.trunk.layer4", "late": "net.trunks.{seq}.layer4",
                 "centralnet": "net.central.2"}


class _StackedInput(nn.Module):
    """The grading network as MONAI's Grad-CAM wants it: one tensor in (sequences' channels stacked)."""

    def __init__(self, net: nn.Module, sequences: list[str], channels: int, meta: torch.Tensor | None):
        super().__init__()
        self.net, self.sequences, self.channels, self.meta = net, sequences, channels, meta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = {s: x[:, i * self.channels:(i + 1) * self.channels] for i, s in enumerate(self.sequences)}
        meta = self.meta.expand(x.shape[0], -1) if self.meta is not None else None
        return self.net(parts, meta).logits


def torch_gradcam_maps(net: nn.Module, architecture: str, sequences: list[str], arrays: dict[str, np.ndarray],
                       meta: np.ndarray | None, device: str) -> np.ndarray:
    """MONAI Grad-CAM of each slice's predicted class, upsampled, not yet scaled: ``[n, size, size]`` (the caller
    scales with :func:`.gradcam.normalise_maps`; MONAI's default scaling flips magnitudes)."""
    x = torch.cat([torch.from_numpy(arrays[q]) for q in sequences], 1).to(device)
    m = torch.from_numpy(meta).to(device) if meta is not None else None
    wrapper = _StackedInput(net, sequences, x.shape[1] // len(sequences), m).eval()
    cam = GradCAM(nn_module=wrapper, target_layers=TARGET_LAYERS[architecture].format(seq=sequences[0]),
                  postprocessing=lambda maps: maps)  # scaled by the caller, not flipped as MONAI's default
    with torch.enable_grad():
        maps = cam(x, class_idx=None)
    return maps[:, 0].detach().cpu().numpy().astype(np.float32)
