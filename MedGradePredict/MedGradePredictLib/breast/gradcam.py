"""Grad-CAM (MONAI) of the fusion model per 2D input (MG view / US image), mapped back onto the image's
own grid as a single-slice heat-map volume (0 outside the network's crop)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.visualize import GradCAM
from torch import nn
from torch.nn import functional as F

from .case import BreastCase
from .fusion_data import FusionDataset, make_samples
from .tensors import crop_box_2d


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
            if not present[i] or b.spatial_dims != 2:
                continue
            wrapper = _OneModality(net, b.modality, x, pr).eval()
            cam = GradCAM(nn_module=wrapper, target_layers=f"net.branches.{b.modality}.layer4")
            with torch.enable_grad():
                m = cam(x[b.modality].clone().requires_grad_(True))[0, 0].detach().cpu()
            image = s.images[b.modality]
            rows, cols = crop_box_2d(image)
            h, w = rows.stop - rows.start, cols.stop - cols.start
            small = F.interpolate(m[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
            full = np.zeros(sitk.GetArrayViewFromImage(image.image).shape, np.float32)
            full[0, rows, cols] = small
            heat = sitk.GetImageFromArray(full)
            heat.CopyInformation(image.image)
            out.append({"id": s.id, "modality": b.modality, "heatmap": heat})
    return out
