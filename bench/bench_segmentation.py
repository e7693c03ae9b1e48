"""Segmentation benchmark (run by hand): MIG-Net inference vs a same-width MONAI SwinUNETR-2D
measured in the same run, whole-case segmentation time and peak memory; on a CUDA machine also
training steps/s with and without the data loader.

    MEDGRADE_SAMPLE_MIRROR=../shared/data python bench/bench_segmentation.py [--widths 24 48] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.commands.segment import DEFAULT_MODEL
from MedGradeCoreLib.sample_data import sample_path
from MedGradeSegmentLib.segmentation.baselines import swinunetr2d
from MedGradeSegmentLib.segmentation.data import case_volumes, slice_dataset, slice_samples, train_transforms
from MedGradeSegmentLib.segmentation.infer import amp_context
from MedGradeSegmentLib.segmentation.losses import FPGLoss, grade_loss
from MedGradeSegmentLib.segmentation.mignet import MIGNet, MIGNetConfig
from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model, segment_with_model

BUNDLE = Path(__file__).resolve().parents[1] / "MedGradeSegment" / "MedGradeSegmentLib" / "bundled_models" / DEFAULT_MODEL
BRATS = "glioma-native/TCGA-FG-6692/brats-space/"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def _time_forward(model: torch.nn.Module, x: torch.Tensor, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    with amp_context(device):
        model(x)
    _sync(device)
    return time.perf_counter() - t


def inference_ratio(width: int, size: int, batch: int, reps: int, device: str) -> dict:
    """Slices/s of MIG-Net and SwinUNETR-2D of the same width, runs interleaved (fair on a busy CPU)."""
    heads = (3, 6, 12, 24) if width % 3 == 0 else (2, 4, 8, 16)
    models = {"mignet": MIGNet(MIGNetConfig(embed_dim=width, num_heads=heads, prior_size=size)),
              "swinunetr": swinunetr2d(width)}
    x = torch.randn(batch, 1, size, size, device=device)
    times: dict[str, list[float]] = {k: [] for k in models}
    for m in models.values():
        m.to(device).eval()
        _time_forward(m, x, device)  # warm-up
    for _ in range(reps):
        for name, m in models.items():
            times[name].append(_time_forward(m, x, device))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"width": width, "size": size, "batch": batch,
            "params_m": {k: sum(p.numel() for p in m.parameters()) / 1e6 for k, m in models.items()},
            "slices_per_s": {k: batch / v for k, v in med.items()},
            "time_ratio_mignet_over_swinunetr": med["mignet"] / med["swinunetr"]}


def whole_case(device: str) -> dict:
    loaded = load_segmentation_model(BUNDLE, device)
    images = {s: sitk.ReadImage(str(sample_path(BRATS + f"{s}_bet.nii.gz"))) for s in ("t1c", "t2")}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    res = segment_with_model(loaded, images, "t1c", device=device, batch_size=16)
    out = {"case": "TCGA-FG-6692 BraTS space, T1c + T2, 240x240x155", "model": DEFAULT_MODEL,
           "seconds": time.perf_counter() - t, "slices_segmented": res.info["slices_segmented"],
           "volume_ml": res.info["volume_ml"], "peak_rss_mb": peak_rss_mb()}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def training_steps(device: str, width: int = 48, batch: int = 16, steps: int = 30, workers: int = 4) -> dict:
    """Training steps/s with the real data loader vs the same batch kept on the GPU (AMP)."""
    from torch.utils.data import DataLoader

    cv = case_volumes("TCGA-FG-6692", {s: sitk.ReadImage(str(sample_path(BRATS + f"{s}_bet.nii.gz")))
                                       for s in ("t1c", "t2")},
                      sitk.ReadImage(str(sample_path(BRATS + "seg_model_fusion.nii.gz"))) > 0)
    samples = slice_samples(cv, ["t1c", "t2"], range(40, 120), 0.3, 0.5)
    loader = DataLoader(slice_dataset(samples, train_transforms()), batch_size=batch, shuffle=True,
                        num_workers=workers, pin_memory=True, persistent_workers=True, drop_last=True)
    model = MIGNet(MIGNetConfig(embed_dim=width)).to(device)
    opt = torch.optim.AdamW(model.parameters(), 3e-4)
    scaler = torch.amp.GradScaler("cuda")
    loss_fn = FPGLoss(1.0)

    def step(b: dict) -> None:
        with amp_context(device):
            seg, g = model(b["image"])
        loss = loss_fn(seg, b["label"][:, 0].round().long(), b["weight"][:, 0]) + 0.3 * grade_loss(g, b["grade"])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def to_dev(b: dict) -> dict:
        return {"image": b["image"].to(device, non_blocking=True), "label": b["label"].to(device, non_blocking=True),
                "weight": b["weight"].to(device, non_blocking=True), "grade": torch.as_tensor(b["grade"], device=device)}

    it = iter(loader)
    fixed = to_dev(next(it))
    for _ in range(5):
        step(fixed)
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step(fixed)
    _sync(device)
    no_loader = steps / (time.perf_counter() - t)
    done, t = 0, time.perf_counter()
    while done < steps:
        for b in loader:
            step(to_dev(b))
            done += 1
            if done >= steps:
                break
    _sync(device)
    with_loader = steps / (time.perf_counter() - t)
    return {"width": width, "batch": batch, "workers": workers, "steps_per_s_no_loader": no_loader,
            "steps_per_s_with_loader": with_loader, "loader_cost": 1 - with_loader / no_loader,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[24, 48], help="multiples of 12 (SwinUNETR)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU x{torch.get_num_threads()} threads",
                    "torch": torch.__version__}
    report["inference"] = [inference_ratio(w, args.size, args.batch, args.reps, device) for w in args.widths]
    for r in report["inference"]:
        print(f"width {r['width']:3d}: MIG-Net {r['slices_per_s']['mignet']:.2f} slices/s, SwinUNETR-2D "
              f"{r['slices_per_s']['swinunetr']:.2f} slices/s -> time ratio {r['time_ratio_mignet_over_swinunetr']:.2f} "
              "(target <= 1.3)", flush=True)
    report["whole_case"] = whole_case(device)
    wc = report["whole_case"]
    print(f"whole case ({wc['slices_segmented']} slices): {wc['seconds']:.1f} s, peak RSS {wc['peak_rss_mb']:.0f} MB",
          flush=True)
    if device == "cuda":
        report["training"] = training_steps(device)
        tr = report["training"]
        print(f"training: {tr['steps_per_s_no_loader']:.2f} steps/s without loader, {tr['steps_per_s_with_loader']:.2f} "
              f"with -> loader costs {tr['loader_cost']:.0%} (target < 20%)")
    else:
        print("training steps/s: skipped (no CUDA)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
