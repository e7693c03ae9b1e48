"""Samples, data set, losses and metrics of the late-fusion model (used by the ``breast-fusion`` kind of
the training runner and by prediction).

A sample is one combination of a case's images: with several US images (BUS-BRA has two views of most
lesions) each image makes a sample with the case's other modalities (cycled). Per-image labels win
over case labels. Oversampling repeats minority-class samples (deterministically) in the training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from MedGradeCoreLib.errors import InputError

from .case import BreastCase, BreastImage, encode_label
from .fusion_net import BranchSpec
from .tensors import image_2d_input, mri_input


@dataclass
class FusionSample:
    id: str
    case_id: str
    patient_id: str
    images: dict[str, Any]  # modality -> BreastImage (2D) or dict phase -> BreastImage (MRI)
    label: int | None
    site: str | None = None


def make_samples(cases: Sequence[BreastCase], branches: Sequence[BranchSpec], task: str | None) -> list[FusionSample]:
    """Every sample of ``cases`` that has at least one of the branches' modalities (label None when
    unknown or when ``task`` is None)."""
    out = []
    for case in cases:
        mods: dict[str, list[Any]] = {}
        for b in branches:
            imgs = case.modality(b.modality)
            if not imgs:
                continue
            if b.modality == "mri":
                if all(p in imgs for p in b.phases):
                    mods["mri"] = [imgs]
            else:
                mods[b.modality] = [imgs[k] for k in sorted(imgs)]
        if not mods:
            continue
        n = max(len(v) for v in mods.values())
        for i in range(n):
            chosen = {m: v[i % len(v)] for m, v in mods.items()}
            names = [im.source.rsplit("/", 1)[-1] for m, im in chosen.items() if isinstance(im, BreastImage)]
            us = chosen.get("us")
            label = None
            if task is not None:
                labels = dict(case.labels)
                for im in chosen.values():
                    if isinstance(im, BreastImage):
                        labels.update(im.labels)
                label = encode_label(task, labels)
            sid = case.case_id if n == 1 and len(case.images()) == 1 else f"{case.case_id}/{'+'.join(names) or i}"
            if us is not None and len(chosen) == 1:
                sid = next(k for k, v in case.us.items() if v is us)
            out.append(FusionSample(sid, case.case_id, case.patient_id, chosen, label, case.site))
    return out


def sample_tensors(sample: FusionSample, branches: Sequence[BranchSpec]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs by modality and the presence mask. An absent modality gets a placeholder of the right
    shape that the network never reads (it is masked)."""
    inputs, present = {}, []
    for b in branches:
        im = sample.images.get(b.modality)
        if im is None:
            inputs[b.modality] = torch.full((b.in_channels, *b.size), float("nan"))
            present.append(False)
        elif b.modality == "mri":
            inputs[b.modality] = mri_input(im, b.phases, b.size)
            present.append(True)
        else:
            inputs[b.modality] = image_2d_input(im, b.size[0])
            present.append(True)
    return inputs, torch.tensor(present)


class FusionDataset(Dataset):
    """Pre-computed inputs of samples; training sets flip 2D inputs left-right at random (seeded per
    sample by the runner through :meth:`set_sample_seed`) and may oversample the minority classes."""

    def __init__(self, samples: Sequence[FusionSample], branches: Sequence[BranchSpec], train: bool = False,
                 oversample: bool = False):
        self.samples = list(samples)
        self.branches = list(branches)
        self.train = train
        self.cache = [sample_tensors(s, self.branches) for s in self.samples]
        self.index = list(range(len(self.samples)))
        if oversample:
            labels = np.array([s.label for s in self.samples])
            counts = {c: int((labels == c).sum()) for c in set(labels.tolist())}
            top = max(counts.values())
            for c, n in sorted(counts.items()):
                members = [i for i in range(len(labels)) if labels[i] == c]
                self.index += [members[j % n] for j in range(top - n)]
        self._rng = np.random.default_rng(0)

    def set_sample_seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.index)

    def labels(self) -> np.ndarray:
        return np.array([self.samples[i].label for i in self.index])

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = self.index[i]
        inputs, present = self.cache[j]
        if self.train:
            inputs = dict(inputs)
            for b in self.branches:
                if b.spatial_dims == 2 and self._rng.random() < 0.5:
                    inputs[b.modality] = torch.flip(inputs[b.modality], dims=[-1])
        inputs = {k: torch.nan_to_num(v, nan=0.0) if not present[n] else v
                  for n, (k, v) in enumerate(inputs.items())}  # collatable; masked in the network anyway
        label = self.samples[j].label
        return {"inputs": inputs, "present": present, "label": -1 if label is None else int(label), "index": j}


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """'balanced' weights n / (K * n_c) from the training labels."""
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(float)
    if (counts == 0).any():
        raise InputError(None, f"a class has no training sample (counts {counts.astype(int).tolist()})")
    return torch.tensor(counts.sum() / (num_classes * counts), dtype=torch.float32)


def loss_fn(kind: str, weights: torch.Tensor | None, gamma: float = 2.0):
    """``ce`` (optionally class-weighted) or ``focal`` (MONAI FocalLoss, softmax; class weights as alpha)."""
    if kind == "ce":
        return lambda logits, y: F.cross_entropy(logits, y, weight=None if weights is None else weights.to(logits.device))
    if kind == "focal":
        from monai.losses import FocalLoss

        fl = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=gamma,
                       weight=None if weights is None else weights.tolist())
        return lambda logits, y: fl(logits, y[:, None])
    raise InputError(None, f"unknown loss {kind!r} (ce or focal)")


def score(y: np.ndarray, prob: np.ndarray) -> float | None:
    """AUC (binary, positive = last class) or macro one-vs-rest AUC (several classes)."""
    from sklearn.metrics import roc_auc_score

    k = prob.shape[1]
    if len(np.unique(y)) < k:
        return None
    return float(roc_auc_score(y, prob[:, 1]) if k == 2 else roc_auc_score(y, prob, multi_class="ovr"))


@torch.no_grad()
def predict_dataset(net, ds: FusionDataset, device: torch.device, batch: int = 64) -> np.ndarray:
    """(n samples, K) softmax probabilities in sample order (no oversampling, no augmentation)."""
    net.eval()
    out = []
    for s in range(0, len(ds.samples), batch):
        items = [ds.cache[j] for j in range(s, min(len(ds.samples), s + batch))]
        present = torch.stack([p for _, p in items]).to(device)
        inputs = {b.modality: torch.stack([torch.nan_to_num(x[b.modality]) for x, _ in items]).to(device)
                  for b in ds.branches}
        out.append(torch.softmax(net(inputs, present), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))
