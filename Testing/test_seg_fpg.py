"""FPG weight map, FPG loss and the atlas built by registration on real images."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MedGradeSegmentLib.segmentation.fpg import (AtlasCase, build_fpg_atlas, fpg_weight_map, location_prior_2d,
                                                 prior_on_case)
from MedGradeSegmentLib.segmentation.losses import FPGLoss, grade_loss


def test_weight_map_shape_of_the_asymmetric_gaussian():
    p = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)
    w = fpg_weight_map(p, s_neg=0.2, s_pos=0.4)
    assert w[2] == pytest.approx(1.0)
    assert w.max() == pytest.approx(1.0) and np.argmax(w) == 2
    assert w[0] < 1 and w[4] < 1
    assert w[4] > w[0] and w[3] > w[1]  # positives above negatives at equal distance from 0.5
    assert np.allclose(fpg_weight_map(torch.from_numpy(p), 0.2, 0.4).numpy(), w)
    with pytest.raises(ValueError, match="s_neg < s_pos"):
        fpg_weight_map(p, s_neg=0.5, s_pos=0.3)


def test_fpg_loss_gradient_follows_the_weights():
    torch.manual_seed(0)
    logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    target = torch.ones(1, 4, 4, dtype=torch.long)
    prior = torch.zeros(1, 4, 4)
    prior[0, :2] = 0.5  # top half ambiguous -> weight 1; bottom half P = 0 -> smaller weight
    weights = fpg_weight_map(prior, 0.3, 0.5)
    loss = FPGLoss(dice_weight=0.0)(logits, target, weights)
    loss.backward()
    g = logits.grad.abs().sum(1)[0]
    assert torch.isfinite(logits.grad).all()
    assert (g[:2] > g[2:].max() * 1.5).all()
    # with Dice added it stays finite, and the grade loss ignores unknown grades
    logits2 = torch.randn(2, 2, 8, 8, requires_grad=True)
    total = FPGLoss(dice_weight=1.0)(logits2, torch.randint(0, 2, (2, 1, 8, 8)), torch.rand(2, 8, 8))
    total.backward()
    assert torch.isfinite(logits2.grad).all()
    assert grade_loss(torch.randn(2, 2), torch.tensor([-1, -1])) is None
    assert torch.isfinite(grade_loss(torch.randn(2, 2), torch.tensor([1, -1])))


def test_atlas_from_registered_real_cases(sample):
    """P is the average of masks carried to SRI24; a case already in SRI24 space lands on itself."""
    template = sitk.ReadImage(str(sample("atlas/sri24-brats-space/t1_skullstripped_brats_space.nii.gz")))
    image = sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/brats-space/t1c_bet.nii.gz")))
    seg = sitk.ReadImage(str(sample("glioma-native/TCGA-FG-6692/brats-space/seg_model_fusion.nii.gz")))
    lesion = sitk.Cast((seg == 1) | (seg == 4), sitk.sitkUInt8)
    shrink = lambda im: sitk.Shrink(im, [2, 2, 2])  # noqa: E731 - keep the test fast
    t_small, i_small, l_small = shrink(template), shrink(image), shrink(lesion)
    empty = sitk.Image(l_small.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(l_small)
    atlas, transforms = build_fpg_atlas([AtlasCase("a", i_small, l_small), AtlasCase("b", i_small, empty)], t_small)
    p = sitk.GetArrayFromImage(atlas)
    assert p.min() >= 0 and p.max() == pytest.approx(0.5)  # one of two cases has lesion there
    back = sitk.GetArrayFromImage(prior_on_case(atlas, l_small, transforms["a"])) > 0.25
    les = sitk.GetArrayFromImage(l_small) > 0
    dice = 2 * (back & les).sum() / (back.sum() + les.sum())
    assert dice > 0.7, dice
    prior2d = location_prior_2d(atlas, 56)
    assert prior2d.shape == (56, 56) and 0.2 < prior2d.max() <= 0.5
