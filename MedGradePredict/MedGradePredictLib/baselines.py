"""Baselines trained through the same code as KiNet: early, late and CentralNet-style fusion.

- early fusion: the sequences' inputs stacked as channels into one MONAI ResNet;
- late fusion: one MONAI ResNet per sequence, decisions (softmax) averaged;
- CentralNet (Vielzeuf et al., 2018): one branch per sequence plus a central branch whose input at
  every scale is a learned weighted sum of its own and the branches' feature maps.
"""

from __future__ import annotations

import torch
from monai.networks.nets import ResNet
from torch import nn

from .kinet import NetOutput
from .mix_inputs import merge_in
from .resnest import stage, stem


def _resnet(cin: int, width: int) -> ResNet:
    """A MONAI ResNet-10-like 2D trunk (stem /4 like KiNet) without its classifier (returns pooled features)."""
    return ResNet("basic", [1, 1, 1, 1], [width, 2 * width, 4 * width, 8 * width], spatial_dims=2,
                  n_input_channels=cin, conv1_t_size=3, conv1_t_stride=2, no_max_pool=False, feed_forward=False)


class EarlyFusionResNet(nn.Module):
    def __init__(self, sequences: tuple[str, ...], in_channels: int, width: int = 8, num_classes: int = 2):
        super().__init__()
        self.sequences = tuple(sequences)
        self.trunk = _resnet(in_channels * len(sequences), width)
        self.fc = nn.Linear(8 * width, num_classes)

    def forward(self, inputs: dict[str, torch.Tensor], meta: torch.Tensor | None = None) -> NetOutput:
        feats = self.trunk(merge_in(inputs, self.sequences))
        return NetOutput(self.fc(feats), {}, [], feats)


class LateFusionResNet(nn.Module):
    def __init__(self, sequences: tuple[str, ...], in_channels: int, width: int = 8, num_classes: int = 2):
        super().__init__()
        self.sequences = tuple(sequences)
        self.trunks = nn.ModuleDict({s: _resnet(in_channels, width) for s in sequences})
        self.fcs = nn.ModuleDict({s: nn.Linear(8 * width, num_classes) for s in sequences})

    def forward(self, inputs: dict[str, torch.Tensor], meta: torch.Tensor | None = None) -> NetOutput:
        feats = {s: self.trunks[s](inputs[s]) for s in self.sequences}
        heads = {s: self.fcs[s](feats[s]) for s in self.sequences}
        probs = torch.stack([torch.softmax(h.float(), 1) for h in heads.values()]).mean(0)
        return NetOutput(torch.log(probs.clamp_min(1e-7)), heads, [], torch.cat(list(feats.values()), 1))


class CentralNet(nn.Module):
    def __init__(self, sequences: tuple[str, ...], in_channels: int, width: int = 8, num_classes: int = 2,
                 radix: int = 2):
        super().__init__()
        self.sequences = tuple(sequences)
        w = width
        widths = [(w, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 8 * w, 2)]

        def branch() -> nn.ModuleList:
            return nn.ModuleList([nn.Sequential(stem(in_channels, w), stage(w, w, 1, 1, radix))]
                                 + [stage(a, b, 1, s, radix) for a, b, s in widths[1:]])

        self.branches = nn.ModuleDict({s: branch() for s in sequences})
        self.central = nn.ModuleList([stage(a, b, 1, s, radix) for a, b, s in widths[1:]])
        n = len(sequences) + 1
        self.alphas = nn.Parameter(torch.ones(len(widths), n) / n)  # fusion weights per scale
        self.fcs = nn.ModuleDict({s: nn.Linear(8 * w, num_classes) for s in sequences})
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, inputs: dict[str, torch.Tensor], meta: torch.Tensor | None = None) -> NetOutput:
        h = {s: inputs[s] for s in self.sequences}
        central = None
        for i in range(len(self.central) + 1):
            h = {s: self.branches[s][i](h[s]) for s in self.sequences}
            if i > 0:
                central = self.central[i - 1](central)
            parts = [h[s] for s in self.sequences] + ([central] if central is not None else [])
            central = sum(a * p for a, p in zip(self.alphas[i], parts))
        pooled = {s: h[s].mean((2, 3)) for s in self.sequences}
        feats = central.mean((2, 3))
        heads = {s: self.fcs[s](pooled[s]) for s in self.sequences}
        return NetOutput(self.fc(feats), heads, [], feats)
