"""The nine thesis-fidelity points of issue 9, each checked where the old code differed.

Real images: the glioma-lgg-tcga cohort (FLAIR + T1c, manual masks) through the sample-data registry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from torch import nn

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_lgg_case, read_lgg_cohort, sample_lgg_cohort


@pytest.fixture(scope="module")
def lgg_case():
    record = next(r for r in read_lgg_cohort(sample_lgg_cohort()) if r.patient_id == "TCGA_DU_6404")
    return load_lgg_case(record, ["t1c", "flair"])


# 1. BMS: the Siamese term weights each scale by beta_i (eq. 4-5)
def test_bms_siamese_scales_weighted_by_beta():
    from MedGradePredictLib.kinet import NetOutput
    from MedGradePredictLib.losses import LossConfig, grading_loss

    heads = {k: torch.zeros(1, 2) for k in ("s1", "s2", "s3", "s4", "t1c", "flair", "cat")}
    pairs = [(torch.full((1, 2), float(i + 1)), torch.zeros(1, 2)) for i in range(4)]  # ||A-B||^2 = 2 (i+1)^2
    t = grading_loss(NetOutput(heads["cat"], heads, pairs), torch.tensor([0]), LossConfig())
    expected = sum(b * 2 * (i + 1) ** 2 / 2 for i, b in enumerate((0.025, 0.025, 0.2, 0.35)))
    assert t["L_siamese"].item() == pytest.approx(expected)  # unweighted it would be 30
    assert t["L"].item() == pytest.approx(math.log(2) * (0.35 + 0.4 + 0.25))  # side heads by sequence name


# 2. one slice rule: K slices over the lesion extent of the mask that is graded
def test_prediction_resamples_slices_from_the_graded_mask(lgg_case):
    from MedGradePredictLib.mix_inputs import input_grid, sample_lesion_slices
    from MedGradePredictLib.model import GradingModel, GradingSettings
    from MedGradePredictLib.networks import build_network
    from MedGradePredictLib.predict import predict_case
    from MedGradePredictLib.tasks import Task

    settings = GradingSettings(Task("grade", "grade", "G3", "G2"), {"name": "kinet", "width": 4, "n_meta": 0,
                               "sequences": ["t1c", "flair"]}, ["t1c", "flair"], size=32, spacing=7.5,
                               metadata=False, head="network")
    model = GradingModel(build_network(settings.architecture), settings)
    depth = lgg_case.mask.GetSize()[2]
    lgg_case.meta["slices"] = list(range(depth))[:20]  # what a brain-wide preprocessing recorded
    result = predict_case(model, lgg_case, "all", gradcam=False)
    _, mask, _ = input_grid(lgg_case, 7.5, 32)
    z = np.flatnonzero(mask.any((1, 2)))
    assert result.slices == sample_lesion_slices(mask, 20)
    assert min(result.slices) == z.min() and max(result.slices) == z.max() and all(a > 0 for a in result.slice_areas)
    # a corrected (smaller) mask given later: the slices follow it
    arr = sitk.GetArrayFromImage(lgg_case.mask)
    keep = np.zeros_like(arr)
    keep[z.min():z.min() + 2] = arr[z.min():z.min() + 2]
    small = sitk.GetImageFromArray(keep)
    small.CopyInformation(lgg_case.mask)
    lgg_case.mask, original = small, lgg_case.mask
    try:
        assert set(predict_case(model, lgg_case, "all", gradcam=False).slices) <= {int(z.min()), int(z.min()) + 1}
    finally:
        lgg_case.mask = original


# 3. segmentation sees the whole brain extent; evaluation counts false positives
def test_segmentation_slices_include_lesion_free_brain_at_a_ratio():
    from MedGradeSegmentLib.segmentation.config import TrainConfig
    from MedGradeSegmentLib.segmentation.data import select_slices

    label = np.zeros((30, 8, 8), np.uint8)
    label[10:14, 2:4, 2:4] = 1
    image = np.zeros((30, 8, 8), np.float32)
    image[3:27] = 1.0  # brain extent: slices 3..26
    zs = select_slices(label, 20, "brain", image=image, negative_ratio=1.0)
    assert {10, 11, 12, 13} <= set(zs) and len(zs) == 8 and all(3 <= z <= 26 for z in zs)
    assert len(select_slices(label, 20, "brain", image=image, negative_ratio=None)) == 24
    assert len(select_slices(label, 20, "brain", image=image, negative_ratio=0.5)) == 6
    cfg = TrainConfig(cases=[], output_dir="x")
    assert cfg.slice_selection == "brain" and cfg.negative_ratio == 1.0


def test_patient_metrics_count_false_positives_and_max_hd():
    from MedGradeSegmentLib.segmentation.metrics import patient_metrics

    label = np.zeros((6, 20, 20), bool)
    label[2, 5:10, 5:10] = True
    pred = label.copy()
    pred[5, 0, 0] = True  # one false-positive voxel on a lesion-free slice, 3 slices away
    m = patient_metrics(pred, label, (4.0, 1.0, 1.0))
    assert m["dice_3d"] == pytest.approx(50 / 51)
    assert m["slice_dsc_all"] == pytest.approx(5 / 6) and m["n_false_positive_slices"] == 1
    assert m["hd_max_mm"] == pytest.approx(math.sqrt(12 ** 2 + 5 ** 2 + 5 ** 2), rel=1e-4)
    assert m["hd95_mm"] < m["hd_max_mm"]


# 4. KiNet inputs: the whole slice on the 1 mm grid at 240 x 240, per-volume normalisation
def test_kinet_inputs_default_to_whole_slices_per_volume_normalised(lgg_case):
    from MedGradePredictLib.mix_inputs import build_slice_inputs, input_grid
    from MedGradePredictLib.model import GradingSettings
    from MedGradePredictLib.tasks import get_task

    s = GradingSettings(get_task("grade"), {"name": "kinet"})
    assert (s.size, s.spacing, s.crop, s.input_mode) == (240, 1.0, False, "mix")
    x = build_slice_inputs(lgg_case, ("t1c", "flair"), k=6, size=64, spacing=3.75)  # 240 mm at 3.75 mm
    _, mask, brain = input_grid(lgg_case, 3.75, 64)
    img = x.arrays["flair"][:, 0]
    assert img.shape == (6, 64, 64) and x.box == (0, 64, 0, 64)
    head = brain[x.slices]
    assert (img[head] != 0).mean() > 0.95  # the whole slice, not a lesion crop
    slice_means = [float(img[i][head[i]].mean()) for i in range(6)]
    assert np.std(slice_means) > 0.05  # z-scored per volume: per-slice z-scores would all have mean 0
    np.testing.assert_allclose(x.arrays["flair"][:, 1], img * mask[x.slices])  # ROI = IMG inside the lesion


# 5. one location prior alpha for both branches, from the atlas with anti-aliasing, all elements trained
def test_mignet_one_shared_alpha_antialiased_and_fully_trained():
    from MedGradeSegmentLib.segmentation.mignet import MIGNet, MIGNetConfig

    torch.manual_seed(0)
    atlas = torch.zeros(64, 64)
    atlas[::2, ::2] = 1.0  # a fine checkerboard: any element-picking resize gives 0 or 1, anti-aliasing ~0.25
    cfg = MIGNetConfig(embed_dim=12, num_heads=(1, 2, 4, 8), decoder_depths=(0, 1, 1, 1), prior_size=64)
    model = MIGNet(cfg, atlas)
    alphas = [p for n, p in model.named_parameters() if "alpha" in n]
    assert len(alphas) == 1 and tuple(alphas[0].shape) == (1, 1, 2, 2)
    assert torch.allclose(model.alpha.detach(), torch.full((1, 1, 2, 2), 0.25), atol=0.05)
    seg, grade = model(torch.randn(2, 1, 64, 64))
    (seg.mean() + grade.mean()).backward()
    assert (model.alpha.grad != 0).all()


# 6. Merge-IN joins the side branches by concatenation at every linked scale (1:1, 1:2:1, 1:4:1)
def test_kinet_concatenates_with_the_thesis_channel_ratios():
    from MedGradePredictLib.networks import build_network

    w = 4
    net = build_network({"name": "kinet", "width": w, "sequences": ["t1c", "flair"]})
    seen: dict[str, int] = {}

    def hook(name):
        return lambda m, i, o: seen.__setitem__(name, (i[0] if name.endswith("_in") else o).shape[1])

    net.side_a[0].register_forward_hook(hook("a1"))
    net.side_b[0].register_forward_hook(hook("b1"))
    net.merge.register_forward_hook(hook("m1"))
    net.main2.register_forward_hook(hook("m2"))
    net.side_a[1].register_forward_hook(hook("a2"))
    net.side_b[1].register_forward_hook(hook("b2"))
    net.main3.register_forward_hook(hook("m3"))
    net.side_a[2].register_forward_hook(hook("a3"))
    net.main2.register_forward_hook(hook("f1_in"))
    net.main3.register_forward_hook(hook("f2_in"))
    net.main4.register_forward_hook(hook("f3_in"))
    net({s: torch.randn(2, 2, 64, 64) for s in ("t1c", "flair")})
    assert seen["f1_in"] == seen["a1"] + seen["b1"] + seen["m1"] and seen["a1"] + seen["b1"] == seen["m1"]  # 1:1
    assert seen["f2_in"] == seen["a2"] + seen["m2"] + seen["b2"] and seen["m2"] == 2 * seen["a2"]  # 1:2:1
    assert seen["f3_in"] == 2 * seen["a3"] + seen["m3"] and seen["m3"] == 4 * seen["a3"]  # 1:4:1


# 7. the FPG loss is the weighted cross-entropy; Dice only when asked
def test_fpg_loss_is_weighted_cross_entropy_by_default():
    from MedGradeSegmentLib.segmentation.config import TrainConfig
    from MedGradeSegmentLib.segmentation.losses import FPGLoss

    cfg = TrainConfig(cases=[], output_dir="x")
    assert cfg.dice_weight == 0.0
    torch.manual_seed(0)
    logits, target, w = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8)), torch.rand(2, 8, 8)
    ce = nn.functional.cross_entropy(logits, target, reduction="none")
    assert FPGLoss(cfg.dice_weight)(logits, target, w).item() == pytest.approx(((w * ce).sum() / w.sum()).item())
    assert FPGLoss(1.0)(logits, target, w).item() > FPGLoss(0.0)(logits, target, w).item()


# 8. grading recipe: lr 4e-5, batch 16, Kaiming, 6:2:2 patient splits by grade and site, out-of-fold head
def test_grading_recipe_splits_init_and_out_of_fold_head():
    from MedGradePredictLib.head_lgbm import fit_head_out_of_fold
    from MedGradePredictLib.networks import build_network
    from MedGradePredictLib.recipe import RECIPE, outer_folds, split_622

    assert (RECIPE["lr"], RECIPE["batch_size"], RECIPE["init"]) == (4e-5, 16, "kaiming")
    records = [r for r in read_lgg_cohort(sample_lgg_cohort()) if r.grade and r.has(("flair", "t1c"))]
    ids, grades, sites = [r.patient_id for r in records], [r.grade for r in records], [r.institution for r in records]
    s = split_622(ids, grades, sites)
    assert (len(s.train), len(s.val), len(s.test)) == (40, 14, 14)
    folds = outer_folds(ids, grades, sites, k=5)
    assert sorted(p for f in folds for p in f.test) == sorted(ids)
    g3 = [sum(grades[ids.index(p)] == "G3" for p in f.test) / len(f.test) for f in folds]
    assert max(g3) - min(g3) < 0.2  # grade spread evenly over the test folds
    du = [sum(sites[ids.index(p)] == "DU" for p in f.test) for f in folds]
    assert max(du) - min(du) <= 1  # and the largest site too
    conv = build_network({"name": "kinet", "width": 8}).side_a[1][0].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.25)
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.array([0, 1] * 10)
    with pytest.raises(ValueError, match="out-of-fold"):
        fit_head_out_of_fold(x, y, np.array(["P1"] * 20), {"P1"})
    fit_head_out_of_fold(x, y, np.array(["P2"] * 20), {"P1"}, rounds=2)


# 9. the union of the per-sequence masks is kept complete
def test_union_of_sequences_is_complete_by_default():
    from MedGradeSegmentLib.segmentation.baselines import SegOnly
    from MedGradeSegmentLib.segmentation.infer import segment_images

    class Bright(nn.Module):  # "lesion" wherever the z-scored input is high
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), 10 * (x - 1.0)], 1)

    a, b = np.zeros((4, 32, 32), np.float32), np.zeros((4, 32, 32), np.float32)
    a[:, 4:28, 4:28], b[:, 4:28, 4:28] = 1.0, 1.0
    a[1:3, 6:14, 6:14] = 9.0  # a large lesion part seen on FLAIR
    b[1:3, 20:23, 20:23] = 9.0  # a small, separate part seen on T1c only
    images = {}
    for name, arr in (("flair", a), ("t1c", b)):
        images[name] = sitk.GetImageFromArray(arr)
    result = segment_images(SegOnly(Bright(), 1), images, ["flair", "t1c"], "flair", inplane_spacing=None)
    mask = sitk.GetArrayFromImage(result.mask)
    assert mask[1:3, 6:14, 6:14].all() and mask[1:3, 20:23, 20:23].all()
    assert result.info["largest_component"] is False
    with pytest.raises(InputError, match="the case lacks t1c, which this model needs"):
        segment_images(SegOnly(Bright(), 1), {"flair": images["flair"]}, ["flair", "t1c"], "flair")


# issue 17: the lesion mask stays inside the search mask (a grader refuses masks that leave the brain)
def test_lesion_mask_never_leaves_the_search_mask():
    from MedGradeSegmentLib.segmentation.baselines import SegOnly
    from MedGradeSegmentLib.segmentation.infer import segment_images

    class Everywhere(nn.Module):  # "lesion" on every pixel, background included
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), torch.full_like(x, 10.0)], 1)

    arr = np.zeros((4, 32, 32), np.float32)
    arr[:, 8:24, 8:24] = np.random.default_rng(0).normal(5.0, 1.0, (4, 16, 16))
    image = sitk.GetImageFromArray(arr)
    search = sitk.GetImageFromArray((arr != 0).astype(np.uint8))
    search.CopyInformation(image)
    free = sitk.GetArrayFromImage(segment_images(SegOnly(Everywhere(), 1), {"flair": image}, ["flair"],
                                                 "flair", inplane_spacing=None).mask)
    assert free.all()  # without a search mask the network's answer stands everywhere
    result = segment_images(SegOnly(Everywhere(), 1), {"flair": image}, ["flair"], "flair",
                            inplane_spacing=None, brain_mask=search)
    mask, prob = sitk.GetArrayFromImage(result.mask), sitk.GetArrayFromImage(result.probability)
    inside = sitk.GetArrayFromImage(search) > 0
    assert mask[inside].all() and not mask[~inside].any() and not prob[~inside].any()
