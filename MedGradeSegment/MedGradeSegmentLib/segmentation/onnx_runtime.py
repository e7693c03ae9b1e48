"""A segmentation network exported to ONNX, run with ONNX Runtime (CPU execution provider): no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT, OUTPUT = "slices", "probability"  # [N, 1, H, W] z-scored, padded to ``divisor`` -> [N, H, W] lesion


class OnnxSegmenter:
    """``predict_padded(x)``: lesion probability of padded slices (what :func:`infer.predict_slices` calls)."""

    def __init__(self, path: str | Path, divisor: int, threads: int = 0):
        from MedGradeCoreLib.onnx_models import session

        self.path, self.divisor = Path(path), divisor
        self.session = session(path, threads)

    def predict_padded(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT], {INPUT: x.astype(np.float32, copy=False)})[0]

    def to(self, device: str) -> "OnnxSegmenter":  # the CPU execution provider whatever the device asked
        return self

    def eval(self) -> "OnnxSegmenter":
        return self
