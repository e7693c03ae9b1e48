"""MIG-Net: every ablation row builds and trains a step; a small MIG-Net over-fits a real slice."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.metrics import DiceMetric

from MedGradeSegmentLib.segmentation.ablation import ABLATIONS, ablation_config, ablation_names
from MedGradeSegmentLib.segmentation.baselines import build_model, unet2d
from MedGradeSegmentLib.segmentation.blocks import InvertedAttentionGate
from MedGradeSegmentLib.segmentation.data import zscore
from MedGradeSegmentLib.segmentation.fpg import fpg_weight_map
from MedGradeSegmentLib.segmentation.losses import FPGLoss, grade_loss
from MedGradeSegmentLib.segmentation.mignet import MIGNet, MIGNetConfig

TINY = dict(embed_dim=12, num_heads=(1, 2, 4, 8), decoder_depths=(0, 1, 1, 1))


def test_eight_ablation_rows():
    assert len(ABLATIONS) == 8
    assert ABLATIONS["swin-unet"] == {"fpg_loss": False, "dual_guidance": False, "iag": False, "grade_branch": False}
    assert all(ABLATIONS["mig-net"].values())
    with pytest.raises(ValueError, match="unknown ablation"):
        ablation_config("nope")


@pytest.mark.parametrize("name", ablation_names())
def test_ablation_forward_backward(name):
    torch.manual_seed(0)
    cfg = ablation_config(name, prior_size=32, **TINY)
    model = MIGNet(cfg, torch.rand(32, 32))
    x = torch.randn(2, 1, 64, 64)
    seg, grade = model(x)
    assert seg.shape == (2, 2, 64, 64)
    assert (grade is not None) == cfg.grade_branch
    if grade is not None:
        assert grade.shape == (2, 2)
    weights = fpg_weight_map(torch.rand(2, 64, 64)) if cfg.fpg_loss else None
    loss = FPGLoss(dice_weight=0.5)(seg, torch.randint(0, 2, (2, 64, 64)), weights)
    gl = grade_loss(grade, torch.tensor([0, 1]))
    (loss + (gl if gl is not None else 0)).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if cfg.dual_guidance:
        assert (model.alpha.grad != 0).all()  # the one location prior: every element trained
    # other input sizes (inference pads to a multiple of 32) work as well
    assert model.eval()(torch.randn(1, 1, 96, 64))[0].shape == (1, 2, 96, 64)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.randn(1, 1, 50, 64))


def test_iag_expands_channels_and_gates():
    gate = InvertedAttentionGate(8, 16, expansion=2)
    assert gate.wx.out_channels == 16  # expands, not reduces
    x, g = torch.randn(1, 8, 10, 10), torch.randn(1, 16, 5, 5)
    a = gate.attention(x, g)
    assert a.shape == (1, 1, 10, 10) and (a > 0).all() and (a < 1).all()
    # a = sigmoid(psi . relu6(Wx x + Wg g' + bg) + bpsi), written out with the layers' own weights
    g_up = torch.nn.functional.interpolate(g, size=(10, 10), mode="bilinear", align_corners=False)
    pre = (torch.einsum("oc,bchw->bohw", gate.wx.weight[:, :, 0, 0], x)
           + torch.einsum("oc,bchw->bohw", gate.wg.weight[:, :, 0, 0], g_up) + gate.wg.bias[None, :, None, None])
    by_hand = torch.sigmoid(torch.einsum("oc,bchw->bohw", gate.psi.weight[:, :, 0, 0], pre.clamp(0, 6))
                            + gate.psi.bias[None, :, None, None])
    assert torch.allclose(a, by_hand, atol=1e-6)
    assert torch.allclose(gate(x, g), x * by_hand, atol=1e-6)
    with torch.no_grad():  # ReLU6 really clips: huge pre-activations saturate at 6
        gate.wg.bias.fill_(100.0)
        gate.wx.weight.zero_()
    sat = gate.attention(x, torch.zeros_like(g))
    expected = torch.sigmoid(6 * gate.psi.weight.sum() + gate.psi.bias)
    assert torch.allclose(sat, expected.expand_as(sat), atol=1e-6)


def test_unet_baseline_same_interface():
    seg, grade = unet2d(8)(torch.randn(2, 1, 64, 64))
    assert seg.shape == (2, 2, 64, 64) and grade is None
    assert build_model({"name": "UNet", "width": 8})(torch.randn(1, 1, 32, 32))[0].shape == (1, 2, 32, 32)


def _brain1_slice(sample, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """brain1's slice with the most expert label, resampled (SimpleITK) to ``size`` x ``size``."""
    img = sitk.ReadImage(str(sample("brain-mr/brain1_image.nrrd")), sitk.sitkFloat32)
    lab = sitk.ReadImage(str(sample("brain-mr/brain1_label.nrrd")), sitk.sitkUInt8)
    z = int(np.argmax(sitk.GetArrayViewFromImage(lab).sum(axis=(1, 2))))
    img2, lab2 = img[:, :, z], lab[:, :, z]
    ref = sitk.Image([size, size], sitk.sitkFloat32)
    ref.SetSpacing([img2.GetSpacing()[i] * img2.GetSize()[i] / size for i in range(2)])
    ref.SetOrigin(img2.GetOrigin())
    ref.SetDirection(img2.GetDirection())
    x = sitk.GetArrayFromImage(sitk.Resample(img2, ref, sitk.Transform(), sitk.sitkLinear))
    y = sitk.GetArrayFromImage(sitk.Resample(lab2, ref, sitk.Transform(), sitk.sitkNearestNeighbor))
    return zscore(x), (y > 0).astype(np.int64)


def test_mignet_overfits_one_real_slice(sample):
    """Training really learns: DSC >= 0.9 on brain1's largest-lesion slice."""
    torch.manual_seed(0)
    x, y = _brain1_slice(sample, 64)
    assert y.sum() > 50
    xt, yt = torch.from_numpy(x)[None, None], torch.from_numpy(y)[None]
    prior = torch.from_numpy(y.astype(np.float32)) * 0.6 + 0.2
    model = MIGNet(MIGNetConfig(prior_size=64, **TINY), prior)
    w = fpg_weight_map(prior[None])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loss_fn = FPGLoss(dice_weight=1.0)
    dice = DiceMetric(include_background=False)
    best = 0.0
    for step in range(300):  # bounded by steps, not by wall time: a busy CPU trains as far, only slower
        model.train()
        seg, grade = model(xt)
        loss = loss_fn(seg, yt, w) + grade_loss(grade, torch.tensor([1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 19:
            model.eval()
            with torch.no_grad():
                pred = model(xt)[0].argmax(1, keepdim=True)
            dice.reset()
            dice(torch.nn.functional.one_hot(pred[:, 0], 2).permute(0, 3, 1, 2),
                 torch.nn.functional.one_hot(yt, 2).permute(0, 3, 1, 2))
            best = float(dice.aggregate())
            if best >= 0.9:
                break
    assert best >= 0.9, f"DSC {best:.3f} after {step + 1} steps"
