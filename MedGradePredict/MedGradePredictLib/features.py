"""Run a grading network over slices: slice probabilities and the multi-scale feature vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn


def run_network(net: nn.Module | Any, arrays: dict[str, np.ndarray], meta: np.ndarray | None = None,
                device: Any = "cpu", batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities of the positive class [N], features [N, F])`` with the network in eval mode (an ONNX
    Runtime network, :class:`.onnx_runtime.OnnxGradingNet`, runs itself, without torch)."""
    if hasattr(net, "session"):
        return net.run(arrays, meta, batch_size)
    import torch

    net.eval()
    n = len(next(iter(arrays.values())))
    probs, feats = [], []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            x = {s: torch.from_numpy(np.ascontiguousarray(a[i:i + batch_size])).to(device) for s, a in arrays.items()}
            m = torch.from_numpy(meta[i:i + batch_size]).to(device) if meta is not None and meta.shape[1] else None
            out = net(x, m)
            probs.append(torch.softmax(out.logits.float(), 1)[:, 1].cpu().numpy())
            feats.append(out.features.float().cpu().numpy())
    return np.concatenate(probs).astype(np.float64), np.concatenate(feats)


def feature_names(n_features: int, clinical_columns: list[str]) -> list[str]:
    """Column names of the head's input: ``f000 ...`` then the clinical columns."""
    return [f"f{i:03d}" for i in range(n_features)] + [f"clin_{c}" for c in clinical_columns]
