"""Grad-CAM (MONAI) of the fusion model per input (MG view, US image, MRI case), mapped back onto the
input's own grid (2D inputs: a single-slice volume; MRI: the first phase's grid); 0 outside the crop."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.visualize import GradCAM
from torch import nn
from torch.nn import functional as F

from ..gradcam import normalise_maps

from .case import BreastCase
from .fusion_data import FusionDataset, make_samples
from .tensors import crop_box_2d, crop_box_3d


class _OneModality(nn.Module):
    """The fusion network with every input but ``modality`` fixed (what Grad-CAM wants: one tensor in)."""

    def __init__(self, net: nn.Module, modality: str, inputs: dict[str, torch.Tensor], present: torch.Tensor):
        super().__init__()
        self.net, self.modality, self.inputs, self.present = net, modality, inputs, present

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(dict(self.inputs, **{self.modality: x}), self.present)


def breast_gradcam(predictor, cases: Sequence[BreastCase]) -> list[dict]:
    """``[{"id", "modality", "heatmap": sitk.Image}]`` for every present 2D input of every sample."""
    net = predictor.net
    samples = make_samples(cases, predictor.branches, None)
    ds = FusionDataset(samples, predictor.branches)
    out = []
    for s, (inputs, present) in zip(samples, ds.cache):
        x = {k: torch.nan_to_num(v)[None].to(predictor.device) for k, v in inputs.items()}
        pr = present[None].to(predictor.device)
        for i, b in enumerate(predictor.branches):
            if not present[i]:
                continue
            wrapper = _OneModality(net, b.modality, x, pr).eval()
            # (min, max) -> (0, 1): MONAI's default post-processing flips magnitudes (hot = weakest evidence)
            cam = GradCAM(nn_module=wrapper, target_layers=f"net.branches.{b.modality}.layer4",
                          postprocessing=lambda t: torch.from_numpy(normalise_maps(t.detach().cpu().numpy())))
            with torch.enable_grad():
                m = cam(x[b.modality].clone().requires_grad_(True))[0, 0].detach().cpu()
            if b.spatial_dims == 2:
                image = s.images[b.modality]
                box = (slice(0, 1), *crop_box_2d(image))
                m = m[None]
            else:
                image = s.images[b.modality][b.phases[0]]
                box = crop_box_3d(s.images[b.modality], b.phases)
            size = tuple(sl.stop - sl.start for sl in box)
            small = F.interpolate(m[None, None], size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
            full = np.zeros(sitk.GetArrayViewFromImage(image.image).shape, np.float32)
            full[box] = small
            heat = sitk.GetImageFromArray(full)
            heat.CopyInformation(image.image)
            out.append({"id": s.id, "modality": b.modality, "heatmap": heat})
    return out
