"""UMAE benchmark and experiment (by hand, not a test).

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_umae.py throughput [--rounds 5]
    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_umae.py lgg --out bench/results/umae-lgg

``throughput``: pre-training tokens per second (forward + backward + AdamW step) of UMAE and of plain MAE
of the same size (same ViT width/depth/heads/patch, same decoder width/depth), measured alternately in
the same run on real LGG slices (3 sequences per sample); medians of ``--rounds`` rounds and the ratio
(the cost of CCP and RCA). A token is one image patch of one view. Runs on CUDA in bf16 when available.

``lgg``: on glioma-lgg-tcga, pre-train UMAE and plain MAE on every slice of the cohort's patients (no
labels), then fine-tune a FLAIR G2/G3 slice classifier through the training runner on the same
patient-level stratified folds: from scratch, from MAE, from UMAE (and the linear probes); the patient
probability is the mean over the patient's tumour slices; pooled out-of-fold AUC with its bootstrap and
DeLong 95% CI (``MedGradePredictLib.evaluate``). No model selection on the held-out folds: fixed
epochs, last epoch kept. Writes ``results.json`` and ``table.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from MedGradePredictLib.pretrain.data import MultiViewDataset, read_mri_cohort
from MedGradePredictLib.pretrain.model import MaskedAutoencoder, PretrainConfig

SEQUENCES = ["t1", "t1c", "flair"]


def _encoder(size: int, patch: int, dim: int, depth: int, heads: int) -> dict:
    return {"image_size": size, "patch_size": patch, "in_channels": 1, "dim": dim, "depth": depth, "heads": heads}


def throughput(args: argparse.Namespace) -> dict:
    from MedGradeCoreLib.io import sample_lgg_cohort

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    samples = read_mri_cohort(sample_lgg_cohort(), SEQUENCES, patients={"TCGA_CS_4941", "TCGA_CS_4942"})
    out = {"device": torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} thread(s)",
           "dtype": "bf16 autocast" if cuda else "fp32", "sizes": []}
    for size, patch, dim, depth, heads, batch in args.sizes:
        ds = MultiViewDataset(samples[:batch], SEQUENCES, (size, size), 1)
        b = torch.utils.data.default_collate([ds[i] for i in range(batch)])
        views, present = b["views"].to(device), b["present"].to(device)
        models, opts, times = {}, {}, {"umae": [], "mae": []}
        for mode in ("umae", "mae"):
            torch.manual_seed(0)
            cfg = PretrainConfig(views=SEQUENCES, mode=mode, encoder=_encoder(size, patch, dim, depth, heads),
                                 decoder_dim=max(32, dim // 2 // 4 * 4), decoder_heads=4)
            models[mode] = MaskedAutoencoder(cfg).to(device)
            opts[mode] = torch.optim.AdamW(models[mode].parameters(), lr=1e-4)

        def steps(mode: str, n: int) -> float:
            m, opt = models[mode], opts[mode]
            t = time.perf_counter()
            for _ in range(n):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    loss = m(views, present)["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - t

        for mode in models:
            steps(mode, 1)  # warm-up
        for _ in range(args.rounds):
            for mode in models:
                times[mode].append(steps(mode, args.steps))
        tokens = batch * len(SEQUENCES) * (size // patch) ** 2 * args.steps
        row = {"image": size, "patch": patch, "dim": dim, "depth": depth, "heads": heads, "batch": batch,
               "views": len(SEQUENCES), "tokens_per_step": tokens // args.steps}
        for mode in models:
            row[f"{mode}_params"] = sum(p.numel() for p in models[mode].parameters())
            row[f"{mode}_tokens_per_s"] = round(tokens / statistics.median(times[mode]), 1)
        row["umae_over_mae_time"] = round(row["mae_tokens_per_s"] / row["umae_tokens_per_s"], 3)
        out["sizes"].append(row)
        print(json.dumps(row), flush=True)
    return out


KIND = {"module": "MedGradeTrainLib.kinds.umae"}
LGG = {"source": "lgg", "root": "sample:glioma-lgg-tcga"}


def _run(cfg: dict, run_dir: Path):
    from MedGradeTrainLib.runner.loop import run_training

    t = time.perf_counter()
    result = run_training(cfg, run_dir, stdout=None)
    return result, round(time.perf_counter() - t, 1)


def lgg(args: argparse.Namespace) -> dict:
    """Pre-train UMAE / MAE on every slice (no labels), fine-tune FLAIR G2/G3 on the same folds."""
    import numpy as np

    from MedGradePredictLib.evaluate import binary_metrics, delong_auc_ci, delong_test

    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = _encoder(args.size, 8, 64, 4, 4)
    opt = {"name": "AdamW", "lr": 1.5e-3, "weight_decay": 0.05}
    report: dict = {"data": "glioma-lgg-tcga (78 patients; 77 graded G2/G3), 128x128 slices resized to "
                            f"{args.size}x{args.size}", "encoder": encoder, "pretrain": {}, "finetune": {}}
    bundles = {}
    for mode in ("umae", "mae"):
        cfg = {"kind": {**KIND, "name": "umae-pretrain", "data": {**LGG, "sequences": SEQUENCES},
                        "model": {"mode": mode, "encoder": encoder}, "model_id": f"lgg-{mode}"},
               "seed": 0, "split": {"mode": "none"},
               "train": {"epochs": args.pretrain_epochs, "batch_size": 32, "optimizer": opt,
                         "scheduler": {"name": "CosineAnnealingLR"}, "device": "cpu"}, "register": False}
        result, secs = _run(cfg, out_dir / f"pretrain-{mode}")
        metrics = result.run_dir / "splits" / result.splits[-1]["name"] / "metrics.jsonl"
        hist = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
        report["pretrain"][mode] = {"seconds": secs, "bundle": str(result.bundle), "train_loss_by_epoch":
                                    [round(r["train_loss"], 4) for r in hist] if hist else None}
        bundles[mode] = str(result.bundle)
        print(json.dumps({"pretrain": mode, **report["pretrain"][mode]}), flush=True)
    conditions = {"scratch": {}, "mae": {"pretrained": bundles["mae"]}, "umae": {"pretrained": bundles["umae"]},
                  "mae-linear-probe": {"pretrained": bundles["mae"], "linear_probe": True},
                  "umae-linear-probe": {"pretrained": bundles["umae"], "linear_probe": True}}
    if args.skip_probes:
        conditions = {k: v for k, v in conditions.items() if not v.get("linear_probe")}
    preds, splits = {}, {}
    for name, extra in conditions.items():
        lr = 5e-3 if extra.get("linear_probe") else 5e-4
        cfg = {"kind": {**KIND, "name": "umae-finetune", "encoder": encoder, "model_id": f"lgg-ft-{name}", **extra,
                        "data": {**LGG, "sequences": ["flair"], "view": "flair", "positive": "G3",
                                 "tumour_slices_only": True}},
               "seed": 0, "split": {"mode": "kfold", "folds": args.folds}, "final_fit": False,
               "train": {"epochs": args.finetune_epochs, "batch_size": 32, "restore_best": False,
                         "early_stopping": None, "optimizer": {**opt, "lr": lr},
                         "scheduler": {"name": "CosineAnnealingLR"}, "device": "cpu"}, "register": False}
        result, secs = _run(cfg, out_dir / f"finetune-{name}")
        rows = sorted((r for rec in result.splits for r in (rec.get("finish") or {}).get("predictions", [])),
                      key=lambda r: r["patient_id"])
        preds[name] = rows
        splits[name] = json.loads((result.run_dir / "split.json").read_text())["splits"]
        y, p = [r["label"] for r in rows], [r["probability"] for r in rows]
        m = binary_metrics(y, p, n_boot=2000)
        fold_aucs = []
        for f in sorted({r["fold"] for r in rows}):
            sub = [r for r in rows if r["fold"] == f]
            if len({r["label"] for r in sub}) == 2:
                fold_aucs.append(binary_metrics([r["label"] for r in sub], [r["probability"] for r in sub],
                                                n_boot=10)["auc"])
        report["finetune"][name] = {
            "seconds": secs, "n_patients": m["n"], "n_g3": m["n_positive"], "auc": m["auc"],
            "auc_ci95_bootstrap": m["auc_ci95"], "auc_ci95_delong": delong_auc_ci(y, p)["ci95"],
            "fold_auc_mean": float(np.mean(fold_aucs)), "fold_auc_sd": float(np.std(fold_aucs, ddof=1)),
            "accuracy": m["accuracy"], "brier": m["brier"]}
        print(json.dumps({"finetune": name, **report["finetune"][name]}, default=str), flush=True)
    first = next(iter(splits.values()))
    report["same_folds"] = all(s == first for s in splits.values())
    ids = [r["patient_id"] for r in preds["scratch"]]
    y = [r["label"] for r in preds["scratch"]]
    prob = {k: [r["probability"] for r in v] for k, v in preds.items() if [r["patient_id"] for r in v] == ids}
    report["delong"] = {f"{a} vs {b}": {k: delong_test(y, prob[a], prob[b])[k]
                                        for k in ("difference", "ci95", "p_value")}
                        for a, b in (("umae", "scratch"), ("mae", "scratch"), ("umae", "mae"),
                                     ("umae-linear-probe", "mae-linear-probe")) if a in prob and b in prob}
    lines = ["| initialisation | pooled patient AUC | 95% CI (bootstrap) | 95% CI (DeLong) | fold AUC mean ± sd |",
             "|---|---|---|---|---|"]
    for name, r in report["finetune"].items():
        lines.append(f"| {name} | {r['auc']:.3f} | {r['auc_ci95_bootstrap'][0]:.3f}-{r['auc_ci95_bootstrap'][1]:.3f} | "
                     f"{r['auc_ci95_delong'][0]:.3f}-{r['auc_ci95_delong'][1]:.3f} | "
                     f"{r['fold_auc_mean']:.3f} ± {r['fold_auc_sd']:.3f} |")
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--rounds", type=int, default=5)
    t.add_argument("--steps", type=int, default=3)
    t.add_argument("--sizes", type=lambda s: [tuple(int(x) for x in v.split("x")) for v in s.split(",")],
                   default=[(64, 8, 64, 4, 4, 16), (128, 16, 192, 6, 6, 8)],
                   help="image x patch x dim x depth x heads x batch, comma-separated")
    t.add_argument("--out", type=Path)
    lg = sub.add_parser("lgg")
    lg.add_argument("--out", type=Path, required=True)
    lg.add_argument("--pretrain-epochs", type=int, default=8)
    lg.add_argument("--finetune-epochs", type=int, default=8)
    lg.add_argument("--folds", type=int, default=5)
    lg.add_argument("--size", type=int, default=64)
    lg.add_argument("--skip-probes", action="store_true", help="no linear-probe runs")
    args = p.parse_args()
    result = throughput(args) if args.what == "throughput" else lgg(args)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.what}.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
