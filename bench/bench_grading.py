"""Grading benchmark (by hand, not a test): patient-level prediction time, KiNet vs early fusion, memory.

    MEDGRADE_SAMPLE_MIRROR=../shared/data python bench/bench_grading.py [--repeats 5] [--no-train]

Case: TCGA-FG-6692 (brats-space, model lesion label), K = 20 slices, the bundled demonstrator model
(KiNet width 8, 64x64 MIX inputs, LightGBM head). Prints seconds per stage, warm and including
model load, ratios against a plain early-fusion MONAI ResNet of similar size measured in the same
run, peak memory, and (only with CUDA) GPU training throughput. The toy-label comparison is about
the training path, not about Ki-67.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from MedGradeCoreLib.io import load_case
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradePredictLib.cohort import clinical_vector
from MedGradePredictLib.features import run_network
from MedGradePredictLib.fusion import fuse
from MedGradePredictLib.head_lgbm import head_matrix, predict_head
from MedGradePredictLib.mix_inputs import build_slice_inputs
from MedGradePredictLib.model_bundle import load_grading_bundle
from MedGradePredictLib.networks import build_network
from MedGradePredictLib.predict import predict_case

DEMO = "kinet-lgg-g2g3-t1c-flair-v1"


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def similar_early_width(target: int) -> int:
    return min(range(4, 65, 2), key=lambda w: abs(n_params(build_network({"name": "early", "width": w})) - target))


def prediction(case, repeats: int) -> None:
    t = time.perf_counter()
    model = load_grading_bundle(DEMO, device="auto")
    load_s = time.perf_counter() - t
    r = predict_case(model, case, "near", gradcam=False)
    cold = time.perf_counter() - t
    warm, r = timed(lambda: predict_case(model, case, "near", gradcam=False), repeats)
    s = model.settings
    t_in, inputs = timed(lambda: build_slice_inputs(case, s.sequences, None, s.k, s.size, s.input_mode, s.margin),
                         repeats)
    arrays = {q: inputs.arrays[q] for q in s.sequences}
    clin = np.tile(clinical_vector(case.clinical, s.used_columns), (len(inputs.slices), 1))
    meta = np.zeros((len(inputs.slices), s.architecture.get("n_meta", 0)), np.float32)
    t_net, (_, feats) = timed(lambda: run_network(model.net, arrays, meta, model.device), repeats)
    x = head_matrix(feats, clin)
    t_gbm, probs = timed(lambda: predict_head(model.booster, x), repeats)
    t_fuse, _ = timed(lambda: fuse(probs, inputs.areas, "near"), repeats)
    t_cam, _ = timed(lambda: predict_case(model, case, "near", gradcam=True), max(1, repeats // 2))
    print(f"device: {model.device}; slices: {len(r.slices)}; model: {DEMO} ({n_params(model.net):,} parameters)")
    print(f"patient-level prediction, warm (median of {repeats}): {warm:.3f} s  "
          f"[target <= 1 s: {'met' if warm <= 1 else 'NOT met'}; ratio to target {warm:.2f}]")
    print(f"  stages: MIX inputs {t_in:.3f} s | network + features {t_net:.3f} s | LightGBM {t_gbm * 1e3:.1f} ms | "
          f"fusion {t_fuse * 1e6:.0f} us")
    print(f"including model load (first call): {cold:.3f} s (bundle verify + load {load_s:.3f} s)")
    print(f"with Grad-CAM on the Near slices: {t_cam:.3f} s ({t_cam / warm:.2f}x the warm prediction)")


def kinet_vs_early(repeats: int) -> None:
    kinet = build_network({"name": "kinet", "width": 8}).eval()
    w = similar_early_width(n_params(kinet))
    early = build_network({"name": "early", "width": w}).eval()
    x = {s: torch.randn(20, 2, 64, 64) for s in ("t1c", "t2")}
    y = torch.randint(0, 2, (16,))
    xb = {s: v[:16] for s, v in x.items()}
    res = {}
    for name, net in (("KiNet w=8", kinet), (f"early-fusion ResNet w={w}", early)):
        with torch.no_grad():
            net(x)
            t_inf, _ = timed(lambda: net(x), repeats)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb).logits, y).backward()
            opt.step()

        step()
        t_tr, _ = timed(step, repeats)
        net.eval()
        res[name] = (n_params(net), t_inf, t_tr)
    (kn, ki, kt), (en, ei, et) = res.values()
    for name, (n, ti, tt) in res.items():
        print(f"  {name:28s} {n:>10,} params | inference 20 slices {ti:.3f} s | train step (16) {tt:.3f} s")
    print(f"  ratio KiNet / early fusion: params {kn / en:.2f}, inference {ki / ei:.2f}, train step {kt / et:.2f}")


def toy_comparison(case) -> None:
    from MedGradePredictLib.evaluate import binary_metrics
    from MedGradePredictLib.toy import TOY_TASK, swap_toy_cohort
    from MedGradePredictLib.train import TrainConfig
    from MedGradeTrainLib.kinds.grading import cross_validate

    cases = swap_toy_cohort(case, window=4, size=32)
    kinet_w = 4
    early_w = similar_early_width(n_params(build_network({"name": "kinet", "width": kinet_w})))
    for arch in ({"name": "kinet", "width": kinet_w}, {"name": "early", "width": early_w}):
        cfg = TrainConfig(task=TOY_TASK.to_dict(), architecture=arch, size=32, epochs=5, lr=3e-3, test_fraction=0.3,
                          metadata=False)
        t = time.perf_counter()
        rows, hist = cross_validate(cfg, cases)
        m = binary_metrics([r["label"] for r in rows], [r["probability_near"] for r in rows], n_boot=200)
        print(f"  {arch['name']:6s} w={arch['width']:<3d} toy hold-out ({m['n']} pseudo-patients): AUC {m['auc']:.3f}, "
              f"loss {hist[0][0]['total']:.2f} -> {hist[0][-1]['total']:.2f}, {time.perf_counter() - t:.1f} s")


def gpu_throughput(case) -> None:
    if not torch.cuda.is_available():
        print("GPU training throughput: no CUDA device here; skipped")
        return
    inputs = build_slice_inputs(case, ("t1c", "t2"), list(range(40, 120, 1)), size=64)
    x = {s: torch.from_numpy(np.repeat(v, 4, 0)[:256]).cuda() for s, v in inputs.arrays.items()}
    y = torch.randint(0, 2, (256,), device="cuda")
    for arch in ({"name": "kinet", "width": 8}, {"name": "early", "width": similar_early_width(1_009_014)}):
        net = build_network(arch).cuda().train()
        opt = torch.optim.AdamW(net.parameters(), 1e-3)
        scaler = torch.amp.GradScaler("cuda")
        torch.cuda.reset_peak_memory_stats()
        for i in range(25):
            if i == 5:
                torch.cuda.synchronize()
                t = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.float16):
                loss = torch.nn.functional.cross_entropy(net(x).logits.float(), y)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        torch.cuda.synchronize()
        sps = 20 * 256 / (time.perf_counter() - t)
        print(f"  GPU {arch['name']}: {sps:,.0f} slices/s (AMP, batch 256, 64x64); "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-train", action="store_true", help="skip the toy training comparison")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    files = fetch_dataset("tcga-fg-6692-brats-space")
    case = load_case(next(iter(files.values())).parent, ["t1c", "t2"], patient_id="TCGA-FG-6692")
    case.clinical = {"age": 45.0, "sex": "F"}
    prediction(case, args.repeats)
    print("KiNet vs early-fusion MONAI ResNet of similar size (CPU, 64x64 MIX inputs):")
    kinet_vs_early(args.repeats)
    if not args.no_train:
        print("Toy label (T1c/T2 swapped) training comparison, same run:")
        toy_comparison(case)
    gpu_throughput(case)
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
