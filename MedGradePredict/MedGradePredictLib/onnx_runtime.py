"""A grading network exported to ONNX, run with ONNX Runtime (CPU execution provider).

The graph takes each sequence's MIX slices (``[N, C, S, S]``, named by sequence) and, when the network has
metadata inputs, ``meta`` ``[N, n_meta]``; it returns the positive-class probability, the multi-scale feature
vector (the LightGBM head's input) and the Grad-CAM map of the predicted class at the target layer before
upsampling (``cam``: for KiNet the class score is linear in the pooled last feature maps, so Grad-CAM's weights
are that linear layer's row divided by the map size: exact, no gradient needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUTPUTS = ("probability", "features", "cam")


class OnnxGradingNet:
    """Stands in for the torch network: ``run`` (probabilities, features) and ``cam`` (raw Grad-CAM maps)."""

    def __init__(self, path: str | Path, sequences: list[str], has_meta: bool, threads: int = 0):
        from MedGradeCoreLib.onnx_models import session

        self.path, self.sequences, self.has_meta = Path(path), list(sequences), has_meta
        self.session = session(path, threads)

    def _feed(self, arrays: dict[str, np.ndarray], meta: np.ndarray | None, n: int) -> dict[str, np.ndarray]:
        feed = {s: np.ascontiguousarray(arrays[s], np.float32) for s in self.sequences}
        if self.has_meta:
            feed["meta"] = np.ascontiguousarray(meta if meta is not None else np.zeros((n, 0)), np.float32)
        return feed

    def run(self, arrays: dict[str, np.ndarray], meta: np.ndarray | None = None,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities of the positive class [N], features [N, F])``, as ``features.run_network``."""
        n = len(next(iter(arrays.values())))
        probs, feats = [], []
        for i in range(0, n, batch_size):
            part = {s: a[i:i + batch_size] for s, a in arrays.items()}
            m = meta[i:i + batch_size] if meta is not None else None
            p, f = self.session.run(list(OUTPUTS[:2]), self._feed(part, m, len(next(iter(part.values())))))
            probs.append(p)
            feats.append(f)
        return np.concatenate(probs).astype(np.float64), np.concatenate(feats)

    def cam(self, arrays: dict[str, np.ndarray], meta: np.ndarray | None = None) -> np.ndarray:
        """Grad-CAM of the predicted class before upsampling and scaling: ``[N, 1, h, w]``."""
        n = len(next(iter(arrays.values())))
        return self.session.run(["cam"], self._feed(arrays, meta, n))[0]

    def to(self, device: str) -> "OnnxGradingNet":  # the CPU execution provider whatever the device asked
        return self

    def eval(self) -> "OnnxGradingNet":
        return self
