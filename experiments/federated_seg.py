"""Federated segmentation on glioma-lgg-tcga with the five TCGA institutions as sites (issue 21).

Arms, all scored on the same held-out patients (a patient-level test split stratified by grade x
institution, drawn once): centralised training (every training patient pooled, the runner's ``local``
launcher), federated FedAvg and FedProx (Flower's simulation engine, one virtual SuperNode per institution,
each on its own training patients only), and each site alone (its own training patients, the same budget).
Budget: every arm sees ``rounds x local_epochs`` epochs of its data. Metric: 3D Dice per held-out patient
(whole volume, the segmentation kind's ``patient_metrics``), mean with a 95% bootstrap CI (scipy), overall
and per institution of the held-out patient.

    nice -n 15 python experiments/federated_seg.py --out experiments/results/federated_seg            # full
    nice -n 15 python experiments/federated_seg.py --out /tmp/fed-short --short                      # plumbing

``--short``: 2 rounds, 2 steps per epoch, a tiny U-Net, 2 training and 2 test patients per site: proves the
pipeline, says nothing about accuracy.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COHORT = REPO.parent / "shared" / "data" / "glioma-lgg-tcga"


def test_split(rows: list[dict[str, str]], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Held-out patients stratified by grade x institution (strata of one patient stay in training)."""
    rng = np.random.default_rng(seed)
    strata: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        strata.setdefault((r["grade"], r["institution"]), []).append(r["patient_id"])
    test = []
    for key in sorted(strata):
        ids = sorted(strata[key])
        k = int(round(fraction * len(ids))) if len(ids) > 1 else 0
        test += list(rng.choice(ids, size=k, replace=False)) if k else []
    train = sorted(r["patient_id"] for r in rows if r["patient_id"] not in set(test))
    return train, sorted(test)


def run_config(args) -> dict:
    kind = {"name": "segmentation", "model_id": "fed-seg-lgg", "architecture": {"name": "UNet", "width": args.width},
            "sequences": ["flair", "t1c"], "slices_per_case": args.slices, "pad": 96 if args.short else 160,
            "crop": 64 if args.short else 128, "inplane_spacing": 3.75 if args.short else 1.875,
            "trained_on": "glioma-lgg-tcga training patients (experiments/federated_seg.py)",
            # the Dice term of the shipped recipe (seg_cv.py --dice-weight 1): with cross-entropy alone the first
            # full run (12 rounds) left the centralised arm, FedProx and two sites at the all-background solution
            "dice_weight": args.dice_weight}
    train = {"epochs": 1, "batch_size": 8, "device": "cpu", "checkpoint_every_steps": 0}
    if args.steps:
        train["max_steps_per_epoch"] = args.steps
    return {"kind": kind, "seed": args.seed, "split": {"mode": "none"}, "final_fit": True, "train": train,
            "register": False}


def score(model, patients: list[str], cfg: dict, work: Path, site_of: dict[str, str]) -> dict:
    """Per-patient 3D Dice of ``model`` on ``patients`` (the kind's whole-volume metrics), mean + 95% CI."""
    import torch
    from scipy.stats import bootstrap

    from MedGradeTrainLib.kinds.segmentation import SegmentationKind

    settings = {k: v for k, v in cfg["kind"].items() if k != "name"}
    kind = SegmentationKind({**settings, "cohort": str(COHORT), "patients": patients}, work)
    rows = kind.patient_metrics(model.eval(), patients, torch.device("cpu"))
    dice = np.array([r["dice_3d"] for r in rows], float)

    def summary(v: np.ndarray) -> dict:
        out = {"n": int(len(v)), "mean": float(v.mean()) if len(v) else None}
        if len(v) > 2 and np.ptp(v) > 0:
            ci = bootstrap((v,), np.mean, n_resamples=2000, confidence_level=0.95, random_state=0).confidence_interval
            out["ci95"] = [float(ci.low), float(ci.high)]
        return out

    per_site = {s: summary(np.array([r["dice_3d"] for r in rows if site_of[r["patient_id"]] == s], float))
                for s in sorted({site_of[p] for p in patients})}
    return {"dice_3d": summary(dice), "per_site": per_site,
            "per_patient": {r["patient_id"]: float(r["dice_3d"]) for r in rows}}


def central(cfg: dict, patients: list[str], epochs: int, out: Path):
    from MedGradeTrainLib.runner.loop import run_training

    c = json.loads(json.dumps(cfg))
    c["kind"].update(cohort=str(COHORT), patients=patients)
    c["train"]["epochs"] = epochs
    return run_training(c, out, stdout=None).model


def federated(cfg: dict, site_cfgs: list[Path], strategy: dict, args, out: Path):
    from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model
    from MedGradeTrainLib.federated.simulate import simulate

    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(cfg))
    fed = {"run": str(out / "run.json"), "sites": [str(s) for s in site_cfgs], "rounds": args.rounds,
           "local_epochs": args.local_epochs, "min_sites": len(site_cfgs), "round_timeout_s": 3600,
           "strategy": strategy, "seed": args.seed}
    (out / "fed.json").write_text(json.dumps(fed))
    run = simulate(out / "fed.json", out / "run")
    return load_segmentation_model(run / "bundle" / cfg["kind"]["model_id"]).model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--short", action="store_true")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--local-epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="max optimiser steps per epoch (0: all)")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--slices", type=int, default=8, help="slices per case (the 'lesion'/'all' selections only)")
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--dice-weight", type=float, default=1.0, help="Dice term beside cross-entropy (0: CE alone)")
    p.add_argument("--mu", type=float, default=0.01, help="FedProx proximal_mu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", nargs="+", default=["central", "fedavg", "fedprox", "local"])
    p.add_argument("--max-per-site", type=int, default=0, help="at most N training and N test patients per site")
    args = p.parse_args()
    if args.short:
        args.rounds, args.steps, args.width, args.slices = 2, 2, 4, 2
        args.max_per_site = args.max_per_site or 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(COHORT / "clinical.csv", newline="")))
    train, test = test_split(rows, args.test_fraction, args.seed)
    site_of = {r["patient_id"]: r["institution"] for r in rows}
    if args.max_per_site:
        def cap(ids):
            kept: dict[str, list[str]] = {}
            for pid in ids:
                kept.setdefault(site_of[pid], [])
                if len(kept[site_of[pid]]) < args.max_per_site:
                    kept[site_of[pid]].append(pid)
            return sorted(p for v in kept.values() for p in v)
        train, test = cap(train), cap(test)
    sites = sorted({site_of[p] for p in train})
    site_cfgs = []
    for s in sites:  # each site's own training patients (the cohort folder is the shared one, filtered)
        path = out / "sites" / f"{s}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": s, "cohort": str(COHORT), "val_fraction": 0.0, "threads": 1,
                                    "patients": [p for p in train if site_of[p] == s]}))
        site_cfgs.append(path)
    cfg = run_config(args)
    epochs = args.rounds * args.local_epochs
    results: dict = {"split": {"train": Counter(site_of[p] for p in train), "test": Counter(site_of[p] for p in test),
                               "test_patients": test, "seed": args.seed},
                     "budget": {"rounds": args.rounds, "local_epochs": args.local_epochs, "steps": args.steps,
                                "width": args.width, "short": args.short, "dice_weight": args.dice_weight,
                                # the kind's default "brain" selection: every lesion slice + as many lesion-free
                                # brain slices per patient (``slices_per_case`` applies to "lesion"/"all" only)
                                "slice_selection": cfg["kind"].get("slice_selection", "brain")},
                     "arms": {}}
    if (out / "results.json").is_file():  # arms of an earlier call on the same split are kept
        before = json.loads((out / "results.json").read_text())
        if before["split"]["test_patients"] == test:
            results["arms"] = before["arms"]
    for arm in args.arms:
        t0 = time.time()
        if arm == "central":
            results["arms"]["central"] = score(central(cfg, train, epochs, out / "central"), test, cfg, out / "eval", site_of)
        elif arm in ("fedavg", "fedprox"):
            st = {"name": "FedAvg"} if arm == "fedavg" else {"name": "FedProx", "proximal_mu": args.mu}
            model = federated(cfg, site_cfgs, st, args, out / arm)
            results["arms"][arm] = score(model, test, cfg, out / "eval", site_of)
        elif arm == "local":
            for s in sites:
                own = [p for p in train if site_of[p] == s]
                results["arms"][f"local-{s}"] = score(central(cfg, own, epochs, out / f"local-{s}"), test, cfg,
                                                      out / "eval", site_of)
                results["arms"][f"local-{s}"]["train_patients"] = len(own)
        for k, v in results["arms"].items():
            v.setdefault("seconds", round(time.time() - t0, 1))
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    lines = ["| arm | train patients | 3D Dice mean (95% CI), all held-out | " + " | ".join(
        f"{s} (n={results['split']['test'].get(s, 0)})" for s in sorted(results['split']['test'])) + " |",
             "|---|---|---|" + "---|" * len(results["split"]["test"])]
    for name, r in results["arms"].items():
        d = r["dice_3d"]
        ci = f" ({d['ci95'][0]:.3f}-{d['ci95'][1]:.3f})" if "ci95" in d else ""
        n = r.get("train_patients", len(train))
        lines.append(f"| {name} | {n} | {d['mean']:.3f}{ci} | " + " | ".join(
            f"{r['per_site'][s]['mean']:.3f}" if s in r["per_site"] else "-" for s in sorted(results["split"]["test"]))
            + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
