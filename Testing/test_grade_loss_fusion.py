"""BMS loss terms and patient-level fusion on hand-checkable examples; the networks' shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from MedGradePredictLib.fusion import calibration_by_method, fuse
from MedGradePredictLib.kinet import NetOutput
from MedGradePredictLib.losses import LossConfig, grading_loss, siamese_similarity
from MedGradePredictLib.networks import build_network

HEADS = ("s1", "s2", "s3", "s4", "cat", "t1c", "t2")


def _out(ms: dict[str, float], pairs) -> NetOutput:
    # logits [0, log m] with target 0 give a cross-entropy of exactly log(1 + m)
    heads = {k: torch.tensor([[0.0, math.log(m)]]) for k, m in ms.items()}
    return NetOutput(heads["cat"], heads, pairs)


def test_siamese_term_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    # (1 + 4) / (2 * 2) per scale, two scales
    assert siamese_similarity([(a, b), (a, b)]).item() == pytest.approx(2.5)
    assert siamese_similarity([(a, a)]).item() == 0.0


def test_each_bms_term_by_hand():
    ms = dict(zip(HEADS, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)))
    ce = {k: math.log(1 + m) for k, m in ms.items()}
    pairs = [(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]))]  # 1 / (2 * 1) = 0.5
    t = {k: v.item() for k, v in grading_loss(_out(ms, pairs), torch.tensor([0]), LossConfig()).items()}
    for k in HEADS:
        assert t[f"L_{k}"] == pytest.approx(ce[k], rel=1e-6)
    master = 0.025 * ce["s1"] + 0.025 * ce["s2"] + 0.2 * ce["s3"] + 0.35 * ce["s4"] + 0.4 * ce["cat"]
    assert t["L_master"] == pytest.approx(master, rel=1e-6)
    main = 0.35 * ce["t1c"] + 0.4 * master + 0.25 * ce["t2"]
    assert t["L"] == pytest.approx(main, rel=1e-6)
    assert t["L_siamese"] == pytest.approx(0.025 * 0.5)  # scale 1 weighted by beta_1 (eq. 4-5)
    assert t["total"] == pytest.approx(main + 0.025 * 0.5, rel=1e-6)


def test_weights_applied_as_configured():
    ms = dict(zip(HEADS, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)))
    ce = {k: math.log(1 + m) for k, m in ms.items()}
    pairs = [(torch.tensor([[2.0]]), torch.tensor([[0.0]]))]  # 4 / 2 = 2
    cfg = LossConfig(w_a=1.0, w_master=0.0, w_b=2.0, betas=(1, 0, 0, 0, 0), w_total=0.5, w_siamese=3.0)
    t = {k: v.item() for k, v in grading_loss(_out(ms, pairs), torch.tensor([0]), cfg).items()}
    assert t["L_master"] == pytest.approx(ce["s1"], rel=1e-6)
    assert t["L"] == pytest.approx(ce["t1c"] + 2 * ce["t2"], rel=1e-6)
    assert t["total"] == pytest.approx(0.5 * (ce["t1c"] + 2 * ce["t2"]) + 3.0 * 2.0, rel=1e-6)
    # BMS off: the final classifier's cross-entropy alone
    t = grading_loss(_out(ms, pairs), torch.tensor([0]), LossConfig(bms=False))
    assert t["total"].item() == pytest.approx(ce["cat"], rel=1e-6)


def test_fusion_rules_by_hand():
    probs = [0.1, 0.2, 0.6, 0.9, 0.5, 0.3]
    areas = [0, 10, 40, 100, 60, 0]
    assert fuse(probs, areas, "all").probability == pytest.approx((0.2 + 0.6 + 0.9 + 0.5) / 4)
    near = fuse(probs, areas, "near")
    assert near.probability == pytest.approx((0.6 + 0.9 + 0.5) / 3) and near.slices_used == [2, 3, 4]
    assert fuse(probs, areas, "large").probability == pytest.approx(0.9)
    # the largest lesion on the first slice: Near has one neighbour only
    assert fuse([0.8, 0.4, 0.1], [50, 20, 5], "near").probability == pytest.approx(0.6)


def test_calibration_and_brier_per_method():
    probs = [np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.3, 0.2]), np.array([0.6, 0.9, 0.4])]
    areas = [np.array([1, 5, 1]), np.array([2, 1, 1]), np.array([1, 1, 9])]
    cal = calibration_by_method([1, 0, 1], probs, areas, n_bins=2)
    assert cal["large"]["probabilities"] == pytest.approx([0.8, 0.1, 0.4])
    assert cal["large"]["brier"] == pytest.approx(((0.2) ** 2 + 0.1 ** 2 + 0.6 ** 2) / 3)
    assert set(cal) == {"all", "near", "large"}


@pytest.mark.parametrize("name", ["kinet", "early", "late", "centralnet"])
def test_networks_shapes_and_backward(name):
    torch.manual_seed(0)
    net = build_network({"name": name, "width": 4, "n_meta": 2 if name == "kinet" else 0})
    x = {"t1c": torch.randn(3, 2, 32, 32), "t2": torch.randn(3, 2, 32, 32)}
    out = net(x, torch.randn(3, 2))
    assert out.logits.shape == (3, 2) and out.features.shape[0] == 3
    grading_loss(out, torch.tensor([0, 1, 1]), LossConfig())["total"].backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_kinet_channel_ratios_and_merge_switch():
    net = build_network({"name": "kinet", "width": 4})
    assert net.fc["s1"].in_features == 16  # [T1c 4, T2 4 : Merge-IN 8] = 1:1 (concatenated)
    assert (net.fc["s2"].in_features, net.fc["s3"].in_features) == (8 * 4, 24 * 4)  # 1:2:1, 1:4:1
    off = build_network({"name": "kinet", "width": 4, "merge_in": False})
    assert off.merge is None and net.merge is not None and off.fc["s1"].in_features == 8


def test_eight_row_ablation_configs():
    from MedGradePredictLib.ablation import ablation_configs, input_mode_configs
    from MedGradePredictLib.train import TrainConfig

    rows = ablation_configs(TrainConfig(architecture={"name": "kinet", "width": 4}))
    assert len(rows) == 8 and len({n for n, _ in rows}) == 8
    seen = set()
    for _, cfg in rows:
        s = cfg.settings()
        net = build_network(s.architecture)
        seen.add((cfg.loss["bms"], net.merge is not None, s.architecture["n_meta"]))
    assert seen == {(b, m, n) for b in (False, True) for m in (False, True) for n in (0, 2)}
    assert [c.settings().architecture["in_channels"] for _, c in input_mode_configs(TrainConfig())] == [2, 1, 1]
