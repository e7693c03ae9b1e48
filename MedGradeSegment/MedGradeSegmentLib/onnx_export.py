"""Segmentation bundles to ONNX (:mod:`MedGradeCoreLib.onnx_models` finds this module by its name).

The exported graph is the network plus its softmax: padded z-scored slices ``[N, 1, H, W]`` -> lesion probability
``[N, H, W]``; batch and slice size are dynamic. Static INT8 is calibrated on the slices inference itself would
feed the network (same grid, z-score, padding) from preprocessed case folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from MedGradeCoreLib.bundle import ModelManifest
from MedGradeCoreLib.case_folder import is_case_folder
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.onnx_models import ONNX_FILE, copy_files, export_graph, finish_export

KINDS = ("segmentation",)
MAX_CALIBRATION_SLICES = 64


def case_folders(path: str | Path) -> list[Path]:
    """``path`` when it is a preprocessed case folder, else its preprocessed case sub-folders (any depth 2)."""
    path = Path(path)
    if is_case_folder(path):
        return [path]
    found = sorted(p.parent for p in path.glob("*/case.json")) + sorted(p.parent for p in path.glob("*/*/case.json"))
    if not found:
        raise InputError(path, "no preprocessed case folder (case.json) to calibrate on; run medgrade preprocess")
    return found


class _Recorder:
    """Stands in for the network during a normal inference run and keeps the slices it was given."""

    def __init__(self, divisor: int):
        self.divisor, self.slices = divisor, []

    def predict_padded(self, x: np.ndarray) -> np.ndarray:
        self.slices.append(x.copy())
        return np.zeros((x.shape[0], x.shape[2], x.shape[3]), np.float32)

    def to(self, device: str) -> "_Recorder":
        return self


def calibration_slices(folder: str | Path, manifest: ModelManifest, divisor: int,
                       limit: int = MAX_CALIBRATION_SLICES, batch: int = 8) -> list[dict[str, np.ndarray]]:
    """Up to ``limit`` network inputs from the cases under ``folder``, evenly spread, in batches of ``batch``."""
    from .segmentation.model_bundle import LoadedModel
    from .segmentation.segment_case import read_input_case, segment_case

    recorder = _Recorder(divisor)
    loaded = LoadedModel(recorder, manifest, Path(folder), "", None)
    for case_dir in case_folders(folder):
        case, search = read_input_case(case_dir)
        segment_case(case, loaded, search, "cpu", False)
    slices = np.concatenate(recorder.slices) if recorder.slices else np.zeros((0,))
    if not len(slices):
        raise InputError(folder, "no slices with signal to calibrate on")
    by_shape: dict[tuple, list[np.ndarray]] = {}
    for i in np.linspace(0, len(slices) - 1, min(limit, len(slices))).round().astype(int):
        by_shape.setdefault(slices[i].shape, []).append(slices[i])
    return [{"slices": np.stack(v[j:j + batch])} for v in by_shape.values() for j in range(0, len(v), batch)]


def export(src: Path, manifest: ModelManifest, work: Path, int8: str | None,
           calibration: str | Path | None) -> tuple[dict[str, Path], dict[str, Any]]:
    """(files of the exported bundle, its architecture) for the bundle in ``src``."""
    import torch

    from .segmentation.baselines import input_divisor
    from .segmentation.model_bundle import ATLAS, load_segmentation_model

    net = load_segmentation_model(src, "cpu").model
    k = input_divisor(net)

    class Probability(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(x)[0].float(), dim=1)[:, 1]

    fov = manifest.preprocessing.get("field_of_view_mm")
    side = int(round(fov / manifest.preprocessing.get("inplane_spacing_mm", 1.0))) if fov else 8 * k
    side += (-side) % k
    fp32 = export_graph(Probability(), (torch.zeros(2, 1, side, side),), work, int8, ["slices"], ["probability"],
                        {"slices": {0: "n", 2: "h", 3: "w"}, "probability": {0: "n", 1: "h", 2: "w"}})
    arch = dict(manifest.architecture, divisor=k, onnx_input="slices [N,1,H,W], z-scored, zero-padded to the divisor",
                onnx_output="probability [N,H,W] of the lesion class")
    files = {ONNX_FILE: finish_export(fp32, work, arch, int8, calibration,
                                      lambda: calibration_slices(calibration, manifest, k))}
    files.update(copy_files(src, manifest, [ATLAS], work))
    return files, arch
