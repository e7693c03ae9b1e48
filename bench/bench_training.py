"""Training-runner benchmark (by hand, not a test): what the runner costs and where time goes, on the CPU.

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_training.py [--patients 8] [--steps 40]

1. Segmentation loader + training step, samples/s: slices from the memory-mapped slice cache vs reading the
   NIfTI files (SimpleITK read, resample, z-score, FPG-style weight) for every sample, same U-Net, same
   batches. Data: the first --patients graded patients of glioma-lgg-tcga (FLAIR + T1c, manual masks).
2. 1 vs 2 processes (torchrun, gloo on the CPU): the tiny segmentation config through ``medgrade train``;
   samples/s of the final split's epochs as the runner logs them, and wall time.
3. Checkpoint overhead: a full-size MIG-Net (default config) + AdamW state written with the runner's
   verified atomic checkpoint (write, fsync, sha256, rename) against one epoch of the tiny run.
GPU paths (AMP, channels-last, NCCL, loader vs loader-free steps/s on a GPU) are not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def lgg_kind(patients: int, cache: bool, run_dir: Path):
    from MedGradeCoreLib.io.lgg_tcga import read_lgg_cohort, sample_lgg_cohort
    from MedGradeTrainLib.kinds.segmentation import SegmentationKind

    root = sample_lgg_cohort()
    ids = [r.patient_id for r in read_lgg_cohort(root) if r.has(["flair", "t1c"]) and r.grade][:patients]
    settings = {"cohort": str(root), "patients": ids, "sequences": ["flair", "t1c"],
                "architecture": {"name": "UNet", "width": 8}, "slices_per_case": 8, "pad": 96, "crop": 64,
                "inplane_spacing": 3.75, "slice_cache": cache}
    return SegmentationKind(settings, run_dir), ids


class NiftiEachStep(torch.utils.data.Dataset):
    """The same samples, but every item re-reads and re-resamples its case's NIfTI files."""

    def __init__(self, kind, samples, transform):
        from MedGradeSegmentLib.segmentation.train import fold_samples, prepared_volumes

        self.kind, self.samples, self.transform = kind, samples, transform
        self._samples, self._volumes = fold_samples, prepared_volumes
        self.case_of = {c.patient_id: i for i, c in enumerate(kind.cases)}

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        from MedGradeSegmentLib.segmentation.cases import load_training_case

        s = self.samples[i]
        spec = self.kind.cfg.cases[self.case_of[s["patient_id"]]]
        case = load_training_case(spec, self.kind.cfg.sequences)  # SimpleITK reads the NIfTI files
        fresh = self._samples(self._volumes([case], self.kind.cfg, None, {}), self.kind.cfg)
        item = next(x for x in fresh if x["z"] == s["z"] and x["sequence"] == s["sequence"])
        return self.transform(item)


def loader_bench(patients: int, steps: int) -> dict:
    from MedGradeSegmentLib.segmentation.data import slice_dataset

    tmp = Path(tempfile.mkdtemp())
    os.environ["MEDGRADE_CACHE"] = str(tmp / "cache")
    kind, ids = lgg_kind(patients, True, tmp)
    split = kind.split_data("final", ids, [])  # builds the cache
    t0 = time.perf_counter()
    kind2, _ = lgg_kind(patients, True, tmp)
    split = kind2.split_data("final", ids, [])
    cache_read_s = time.perf_counter() - t0
    samples = split.extra["train_samples"]
    out = {"patients": len(ids), "slices": len(samples), "cache_hits": kind2.cache_hits,
           "cache_read_s": round(cache_read_s, 3)}
    for name, ds in (("slice cache (mmap)", split.train),
                     ("NIfTI each sample", NiftiEachStep(kind2, samples, split.train.transform))):
        torch.manual_seed(0)
        model = kind2.build_model(split)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, drop_last=True)
        n, t_load, t_all, t = 0, 0.0, 0.0, time.perf_counter()
        it = iter(loader)
        for _ in range(steps):
            t1 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            t_load += time.perf_counter() - t1
            loss = kind2.training_step(model, batch, torch.device("cpu"))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += batch["image"].shape[0]
        t_all = time.perf_counter() - t
        out[name] = {"samples_per_s": round(n / t_all, 1), "loader_only_samples_per_s": round(n / t_load, 1),
                     "loader_share": round(t_load / t_all, 3), "steps": steps}
    return out


def processes_bench(epochs: int) -> dict:
    cfg = json.loads((REPO / "configs" / "tiny-segmentation.json").read_text())
    cfg["kind"]["cohort"] = str((REPO / "configs" / cfg["kind"]["cohort"]).resolve())
    cfg["train"]["epochs"] = epochs
    cfg["split"] = {"mode": "none"}
    out = {}
    for n in (1, 2):
        tmp = Path(tempfile.mkdtemp())
        (tmp / "cfg.json").write_text(json.dumps(cfg))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "train", "--config", str(tmp / "cfg.json"),
                        "--output", str(tmp / "run"), "--launcher", "torchrun", "--gpus", str(n)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        rows = [json.loads(x) for x in (tmp / "run" / "splits" / "final" / "metrics.jsonl").read_text().splitlines()]
        out[f"{n} process(es)"] = {"wall_s": round(wall, 1),
                                   "samples_per_s": round(statistics.mean(r["samples_per_s"] for r in rows[1:] or rows), 1),
                                   "epoch_s": round(statistics.mean(r["seconds"] for r in rows[1:] or rows), 3)}
    return out


def checkpoint_bench(repeats: int) -> dict:
    from MedGradeSegmentLib.segmentation.baselines import build_model
    from MedGradeSegmentLib.segmentation.mignet import MIGNetConfig
    from MedGradeTrainLib.runner import checkpoint as ckpt

    model = build_model(MIGNetConfig().to_dict(), None)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    x = torch.randn(2, 1, 224, 224)
    seg, _ = model(x)
    seg.mean().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": [ckpt.rng_state()]}
    tmp = Path(tempfile.mkdtemp())
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        ckpt.save_verified(state, tmp / f"step-{i:09d}.pt")
        times.append(time.perf_counter() - t)
    size = (tmp / "step-000000000.pt").stat().st_size / 2 ** 20
    t = time.perf_counter()
    ckpt.load_verified(tmp / "step-000000000.pt")
    return {"model": "MIG-Net default config", "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "checkpoint_mb": round(size, 1), "save_s_median": round(statistics.median(times), 3),
            "load_verify_s": round(time.perf_counter() - t, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--skip-processes", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "gpu": torch.cuda.is_available(),
              "loader": loader_bench(args.patients, args.steps), "checkpoint": checkpoint_bench(3)}
    if not args.skip_processes:
        result["processes"] = processes_bench(args.epochs)
        one = result["processes"]["1 process(es)"]
        result["checkpoint"]["share_of_tiny_epoch"] = round(result["checkpoint"]["save_s_median"] /
                                                          max(one["epoch_s"], 1e-9), 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
