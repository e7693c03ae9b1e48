"""Grading bundles to ONNX (:mod:`MedGradeCoreLib.onnx_models` finds this module by its name).

KiNet only: its Grad-CAM is computed inside the graph (see :mod:`.onnx_runtime`); the LightGBM head and the
fusion stay as they are (the head file is copied into the export). Static INT8 is calibrated on the MIX slices
of preprocessed cases that have a lesion mask (a cohort folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from MedGradeCoreLib.bundle import ModelManifest
from MedGradeCoreLib.errors import BundleError, InputError
from MedGradeCoreLib.onnx_models import ONNX_FILE, copy_files, export_graph, finish_export

KINDS = ("grading",)
MAX_CALIBRATION_CASES = 16
STATIC_OP_TYPES = ("Conv", "MatMul", "Gemm")
INT8_CAUTION = ("INT8 changes grading decisions: on 68 cross-validation patients dynamic INT8 changed 4 and static "
                "INT8 9 decisions at 0.5 (AUC -0.002 / -0.032); the FP32 export gave identical probabilities")


def calibration_inputs(folder: str | Path, model: Any, batch: int = 20) -> list[dict[str, np.ndarray]]:
    """The network inputs (MIX slices, metadata) of up to ``MAX_CALIBRATION_CASES`` cases under ``folder``."""
    from MedGradeSegmentLib.onnx_export import case_folders

    from .cohort import clinical_vector, load_grading_case, network_meta
    from .mix_inputs import build_slice_inputs

    s = model.settings
    out = []
    for case_dir in case_folders(folder)[:MAX_CALIBRATION_CASES]:
        case = load_grading_case(case_dir, None, None, None)
        if case.mask is None:
            continue
        inputs = build_slice_inputs(case, s.sequences, None, s.k, s.size, s.input_mode, s.margin, s.spacing, s.crop)
        feed = {q: inputs.arrays[q].astype(np.float32) for q in s.sequences}
        if s.architecture.get("n_meta"):
            vec = clinical_vector(case.clinical, s.used_columns)
            feed["meta"] = network_meta(np.tile(vec, (len(inputs.slices), 1)), s.used_columns)
        for i in range(0, len(inputs.slices), batch):
            out.append({k: v[i:i + batch] for k, v in feed.items()})
    if not out:
        raise InputError(folder, "no preprocessed case with a lesion mask to calibrate the grading network on")
    return out


def export(src: Path, manifest: ModelManifest, work: Path, int8: str | None,
           calibration: str | Path | None) -> tuple[dict[str, Path], dict[str, Any]]:
    """(files of the exported bundle, its architecture) for the grading bundle in ``src``."""
    import torch
    import torch.nn.functional as F

    from .model_bundle import HEAD, load_grading_bundle

    if manifest.architecture.get("name") != "kinet":
        raise BundleError(f"{src}: ONNX export covers KiNet grading networks, not {manifest.architecture.get('name')!r}")
    model = load_grading_bundle(src, "cpu")
    net, s = model.net.eval(), model.settings
    seqs, has_meta = list(s.sequences), bool(s.architecture.get("n_meta"))
    captured: dict[str, torch.Tensor] = {}
    hook = net.main4.register_forward_hook(lambda _m, _i, out: captured.__setitem__("a", out))

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            out = self.net(dict(zip(seqs, xs)), xs[len(seqs)] if has_meta else None)
            acts = captured["a"]
            n_act = acts.shape[1]
            weight = self.net.fc["cat"].weight[:, self.net.feature_dim - n_act:self.net.feature_dim]
            cls = out.logits.argmax(1)
            w = weight[cls] / (acts.shape[2] * acts.shape[3])  # d score / d activation, MONAI Grad-CAM's weights
            cam = F.relu((w[:, :, None, None] * acts).sum(1, keepdim=True))
            return torch.softmax(out.logits.float(), 1)[:, 1], out.features.float(), cam

    c = int(s.architecture.get("in_channels", 2))
    dummy = [torch.zeros(2, c, s.size, s.size) for _ in seqs]
    names = seqs + (["meta"] if has_meta else [])
    if has_meta:
        dummy.append(torch.zeros(2, int(s.architecture["n_meta"])))
    outputs = ["probability", "features", "cam"]
    try:
        fp32 = export_graph(Exported(), tuple(dummy), work, int8, names, outputs,
                            {n: {0: "n"} for n in names + outputs})
    finally:
        hook.remove()
    arch = dict(manifest.architecture, onnx_inputs={q: f"[N,{c},{s.size},{s.size}] MIX slices" for q in seqs},
                onnx_outputs="probability [N], features [N,F], cam [N,1,h,w] (Grad-CAM of the predicted class)")
    if has_meta:
        arch["onnx_inputs"]["meta"] = f"[N,{s.architecture['n_meta']}] network metadata (age/100, sex)"
    # static INT8 quantises the convolutions and the linear layers only: QDQ around the Grad-CAM branch (a slice
    # of the classifier's weights times the last feature maps) fails in ONNX Runtime's per-axis QuantizeLinear
    # ("scale must be 1D tensor with size ..."), and that branch is a negligible share of the compute
    onnx = finish_export(fp32, work, arch, int8, calibration, lambda: calibration_inputs(calibration, model),
                         op_types=STATIC_OP_TYPES if int8 == "static" else None)
    if int8:  # measured on the CV patients of the shipped recipe (experiments/results/grade_cv_1mm/int8.json)
        arch["quantization"]["caution"] = INT8_CAUTION
    files = {ONNX_FILE: onnx}
    files.update(copy_files(src, manifest, [HEAD], work))
    return files, arch
