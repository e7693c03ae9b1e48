"""Grad-CAM (MONAI) on chosen slices, mapped back into the case's 3D geometry as a heat-map image."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import Resize
from monai.visualize import GradCAM
from torch import nn

from .cohort import clinical_vector, network_meta
from .mix_inputs import SliceInputs
from .model import GradingModel

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


def gradcam_maps(model: GradingModel, inputs: SliceInputs, positions: list[int],
                 clinical: dict | None = None) -> np.ndarray:
    """Grad-CAM of each slice's predicted class at ``positions``: ``[n, size, size]`` in [0, 1]."""
    s = model.settings
    cols = s.used_columns
    meta = None
    if s.architecture.get("n_meta"):
        vec = network_meta(clinical_vector(clinical or {}, cols)[None], cols)
        meta = torch.from_numpy(vec).to(model.device)
    if hasattr(model.net, "session"):  # ONNX: the graph gives Grad-CAM before upsampling; MONAI's own post-processing
        from monai.visualize.class_activation_maps import default_normalizer, default_upsampler

        raw = torch.from_numpy(model.net.cam({q: inputs.arrays[q][positions] for q in s.sequences},
                                             meta.expand(len(positions), -1).numpy() if meta is not None else None))
        maps = default_normalizer(default_upsampler(inputs.arrays[s.sequences[0]].shape[2:])(raw))
        return np.asarray(maps)[:, 0].astype(np.float32)
    x = torch.cat([torch.from_numpy(inputs.arrays[q][positions]) for q in s.sequences], 1).to(model.device)
    wrapper = _StackedInput(model.net, s.sequences, x.shape[1] // len(s.sequences), meta).eval()
    layer = TARGET_LAYERS[s.architecture["name"]].format(seq=s.sequences[0])
    cam = GradCAM(nn_module=wrapper, target_layers=layer)
    with torch.enable_grad():
        maps = cam(x, class_idx=None)
    return maps[:, 0].detach().cpu().numpy().astype(np.float32)


def heatmap_volume(maps: np.ndarray, inputs: SliceInputs, positions: list[int], reference: sitk.Image) -> sitk.Image:
    """Put 2D maps back at their axial slices (and crop box) of the input grid, then onto the grid of
    ``reference`` (SimpleITK linear resampling; float32, 0 outside the mapped slices)."""
    y0, y1, x0, x1 = inputs.box
    grid = inputs.grid
    shape = sitk.GetArrayViewFromImage(reference).shape if grid is None else grid.GetSize()[::-1]
    heat = np.zeros(shape, np.float32)
    back = Resize((y1 - y0, x1 - x0), mode="bilinear", anti_aliasing=False)
    for m, pos in zip(maps, positions):
        heat[inputs.slices[pos], y0:y1, x0:x1] = np.asarray(back(m[None]))[0]
    img = sitk.GetImageFromArray(heat)
    if grid is None:
        img.CopyInformation(reference)
        return img
    img.CopyInformation(grid)
    return sitk.Resample(img, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
