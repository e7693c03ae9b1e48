"""Federated training benchmark (run by hand, issue 21): per-round wall time and bytes per site of plain
FedAvg, FedAvg + DP, SecAgg+, SecAgg+ + DP, measured in one run on the same sites and seeds.

    MEDGRADE_SAMPLE_MIRROR=../shared/data nice -n 15 python bench/bench_federated.py --out /tmp/bench-fed \
        [--kind segmentation|grading] [--rounds 3] [--per-site 2] [--width 4] [--deploy]

Engine: Flower's simulation engine (Ray, one virtual SuperNode per site: CS, DU, HT of glioma-lgg-tcga);
round 1 includes the Ray actors' start-up (torch and the kind imported once per actor), so the per-round
figure is the mean of rounds 2.. (the warm cost of a round). ``--deploy`` adds the plain arm as a real
deployment (``flower-superlink`` + three ``flower-supernode`` processes; every round starts a ClientApp
process per site). Bytes: serialized records each site received from / sent to the server per round
(SecAgg+ counts all four of its stages). Kind: segmentation (configs/tiny-segmentation.json) or grading
(configs/tiny-grading.json with ``head: network``, the federated grading network; labels G2/G3).
The machine is shared: wall seconds follow its load (printed with the results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing"))

ARMS = {"fedavg": {}, "fedavg+dp": {"dp": {"noise_multiplier": 0.1, "clipping_norm": 5.0}},
        "secagg+": {"secagg": {}}, "secagg+ +dp": {"secagg": {}, "dp": {"noise_multiplier": 0.1, "clipping_norm": 5.0}}}


def arm_figures(run: Path) -> dict:
    rows = [json.loads(x) for x in (run / "federated" / "rounds.jsonl").read_text().splitlines()]
    warm = rows[1:] or rows
    per = lambda key: {n: round(sum(r[key].get(n, 0) for r in warm) / len(warm)) for n in sorted(warm[0][key])}
    return {"round_seconds": [r["seconds"] for r in rows],
            "warm_round_seconds_mean": round(sum(r["seconds"] for r in warm) / len(warm), 2),
            "bytes_to_site_per_round": per("bytes_sent"), "bytes_from_site_per_round": per("bytes_received"),
            "final_train_loss": rows[-1]["metrics"].get("train_loss")}


def grading_run(width: int) -> dict:
    """configs/tiny-grading.json as a federated run: the network's own head, no cohort, a short round."""
    run = json.loads((REPO / "configs" / "tiny-grading.json").read_text())
    for key in ("patients", "cohort"):
        run["kind"].pop(key)
    run["kind"]["head"] = "network"
    run["kind"]["architecture"]["width"] = width
    run["train"].update(max_steps_per_epoch=2, checkpoint_every_steps=0, epochs=1)
    return run


def main() -> None:
    from federated_helpers import fed_config, make_sites

    from MedGradeTrainLib.federated.deploy import launch
    from MedGradeTrainLib.federated.simulate import simulate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--per-site", type=int, default=2)
    p.add_argument("--kind", choices=("segmentation", "grading"), default="segmentation")
    p.add_argument("--width", type=int, default=4, help="U-Net / grading network width (model size)")
    p.add_argument("--deploy", action="store_true", help="also the plain arm as a localhost deployment")
    p.add_argument("--arms", nargs="+", default=list(ARMS))
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sites = make_sites(out, per_site=args.per_site)
    results = {"load_before": os.getloadavg(), "rounds": args.rounds, "sites": [s.stem for s in sites],
               "per_site_patients": args.per_site, "kind": args.kind, "width": args.width, "arms": {}}
    labels = {"labels": {"grades": ["G2", "G3"]}} if args.kind == "grading" else {}
    for arm in args.arms:
        cfg = fed_config(out, sites, f"{arm}.json", rounds=args.rounds, min_sites=len(sites),
                         privacy={"secagg": None, "dp": None, **ARMS[arm]}, **labels)
        run_cfg = json.loads((out / "run.json").read_text())
        run_cfg["kind"]["architecture"]["width"] = args.width
        if args.kind == "grading":
            run_cfg = grading_run(args.width)
        (out / "run.json").write_text(json.dumps(run_cfg))
        t0 = time.time()
        run = simulate(cfg, out / f"sim-{arm}")
        results["arms"][arm] = {"engine": "simulation", "total_seconds": round(time.time() - t0, 1),
                                **arm_figures(run)}
        (out / "results.json").write_text(json.dumps(results, indent=1))
    if args.deploy:
        cfg = fed_config(out, sites, "deploy.json", rounds=args.rounds, min_sites=len(sites), **labels)
        if args.kind == "grading":
            (out / "run.json").write_text(json.dumps(grading_run(args.width)))
        t0 = time.time()
        launch(cfg, out / "deploy-fedavg")
        results["arms"]["fedavg (deployment)"] = {"engine": "deployment", "total_seconds": round(time.time() - t0, 1),
                                                  **arm_figures(out / "deploy-fedavg")}
    results["load_after"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(results, indent=1))
    base = results["arms"].get("fedavg")
    print(f"kind {args.kind}; load average before/after: {results['load_before']} / {results['load_after']}")
    print("| arm | warm round s | x FedAvg | bytes to site / round | bytes from site / round | final train loss |")
    print("|---|---|---|---|---|---|")
    for arm, r in results["arms"].items():
        ratio = f"{r['warm_round_seconds_mean'] / base['warm_round_seconds_mean']:.2f}" if base else "-"
        to = sorted(r["bytes_to_site_per_round"].values())
        fr = sorted(r["bytes_from_site_per_round"].values())
        print(f"| {arm} | {r['warm_round_seconds_mean']} | {ratio} | {to[0]}-{to[-1]} | {fr[0]}-{fr[-1]} | "
              f"{r['final_train_loss']:.4f} |")


if __name__ == "__main__":
    main()
