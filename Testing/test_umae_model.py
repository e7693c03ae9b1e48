"""UMAE pieces: uniform noise masking, cross-convolution projection, residual cross-attention, the loss on
masked patches only, plain MAE of the same size, fine-tuning from the encoder, transfer into KiNet."""

from __future__ import annotations

import pytest
import torch

from MedGradePredictLib.pretrain.decoder import ResidualCrossAttention, ViewDecoder, masked_mse, patchify, unpatchify
from MedGradePredictLib.pretrain.encoder import CrossConvProjection, EncoderConfig, Layout
from MedGradePredictLib.pretrain.finetune import ViTClassifier, encoder_state, load_encoder, transfer_matching
from MedGradePredictLib.pretrain.masking import (cell_indices, expected_fraction, random_masking,
                                                 uniform_noise_masking)
from MedGradePredictLib.pretrain.model import MaskedAutoencoder, PretrainConfig

TINY = {"image_size": 32, "patch_size": 8, "in_channels": 1, "dim": 32, "depth": 2, "heads": 4}


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("grid,w,s", [((14, 14), 0.75, 0.25), ((8, 12), 0.75, 0.5), ((8, 8), 0.5, 0.25)])
def test_unm_exact_fractions(seed: int, grid: tuple[int, int], w: float, s: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    m = uniform_noise_masking(5, grid, w, s, generator=gen)
    cells = cell_indices(grid)
    n = grid[0] * grid[1]
    # regular step: exactly 4w of the 4 patches of every 2x2 cell, in every sample
    per_cell = m.regular_mask[:, cells].sum(-1)
    assert (per_cell == int(4 * w)).all()
    # the noise step masks exactly round(s * visible) of the visible patches, nothing else
    n_vis = cells.shape[0] * (4 - int(4 * w))
    assert (m.noise.sum(1) == round(s * n_vis)).all()
    assert ((m.mask.sum(1) - m.regular_mask.sum(1)) == round(s * n_vis)).all()
    assert not (m.regular_mask & ~m.mask).any()  # the noise only adds
    frac = m.mask.float().mean(1)
    assert torch.allclose(frac, torch.full_like(frac, expected_fraction(w, s, grid)))
    assert abs(expected_fraction(w, s, grid) - (w + s * (1 - w))) <= 1 / n + 1e-9  # the formula, to one patch
    # the visible patches are exactly the unmasked ones of the regular step, one grid of tokens
    assert (m.regular_mask.gather(1, m.visible_idx) == 0).all()
    assert m.layout[0] * m.layout[1] == m.visible_idx.shape[1]


def test_unm_seeded_and_varied() -> None:
    a = uniform_noise_masking(3, (8, 8), generator=torch.Generator().manual_seed(5)).mask
    b = uniform_noise_masking(3, (8, 8), generator=torch.Generator().manual_seed(5)).mask
    c = uniform_noise_masking(3, (8, 8), generator=torch.Generator().manual_seed(6)).mask
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a[0], a[1])
    with pytest.raises(ValueError, match="whole number"):
        uniform_noise_masking(1, (8, 8), w=0.6)
    with pytest.raises(ValueError, match="even"):
        uniform_noise_masking(1, (7, 8))
    r = random_masking(4, 64, 0.75, torch.Generator().manual_seed(0))
    assert (r.mask.sum(1) == 48).all()


def test_ccp_shapes_and_both_orderings_averaged() -> None:
    torch.manual_seed(0)
    v, h, w, d = 3, 2, 4, 8
    ccp = CrossConvProjection(d)
    x = torch.randn(2, 1 + v * h * w, d)
    out = ccp(x, Layout(v, h, w))
    assert out.shape == (2, 1 + v * h * w, 3 * d)
    t = x[:, 1:].reshape(2, v, h, w, d)
    # ordering a stacks views, ordering b interleaves their rows: different neighbours
    oa, ob = ccp.order_a(t), ccp.order_b(t)
    assert torch.equal(oa[0, :, h - 1, 0], t[0, 0, h - 1, 0]) and torch.equal(oa[0, :, h, 0], t[0, 1, 0, 0])
    assert torch.equal(ob[0, :, 1, 0], t[0, 1, 0, 0]) and torch.equal(ob[0, :, v, 0], t[0, 0, 1, 0])
    a = ccp.unorder_a(ccp.conv_a(oa), v)
    b = ccp.unorder_b(ccp.conv_b(ob), v)
    assert not torch.allclose(a, b)
    assert torch.allclose(out[:, 1:], ((a + b) / 2).reshape(2, -1, 3 * d), atol=1e-6)
    assert torch.allclose(out[:, :1], ccp.global_qkv(x[:, :1]))
    # each ordering's convolution matters
    with torch.no_grad():
        ccp.conv_b.weight.zero_()
        ccp.conv_b.bias.zero_()
    assert torch.allclose(ccp(x, Layout(v, h, w))[:, 1:], (a / 2).reshape(2, -1, 3 * d), atol=1e-6)


def test_rca_uses_other_views_and_ignores_absent_ones() -> None:
    torch.manual_seed(0)
    dec = ViewDecoder(16, 4, 3, 2.0, 12)
    x, o1, o2 = (torch.randn(2, 1 + 9, 16) for _ in range(3))
    yes, no = torch.ones(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)
    base = dec(x, [(o1, yes), (o2, yes)])
    assert base.shape == (2, 9, 12)
    assert not torch.allclose(base, dec(x, [(o1, yes), (o2 * 2, yes)]))  # keys of view 2 matter
    assert not torch.allclose(base, dec(x, [(o1 + 1, yes), (o2, yes)]))  # and those of view 1
    assert torch.allclose(dec(x, [(o1, yes), (o2, no)]), dec(x, [(o1, yes)]))  # absent view: no term
    rca = ResidualCrossAttention(16, 4)
    assert rca(x, o1).shape == x.shape
    with pytest.raises(ValueError, match="same token grid"):
        rca(x, o1[:, :5])


def test_loss_ignores_visible_patches() -> None:
    torch.manual_seed(0)
    model = MaskedAutoencoder(PretrainConfig(views=["a", "b"], encoder=dict(TINY)))
    views = torch.randn(2, 2, 1, 32, 32)
    out = model(views, generator=torch.Generator().manual_seed(3))
    pred, mask = out["pred"], out["mask"]
    target = patchify(views.flatten(0, 1), 8).view(2, 2, 16, -1)
    sse, cnt = masked_mse(pred, target, mask)
    assert torch.allclose(out["loss"], sse / cnt)
    vis = (~mask).nonzero()[0].tolist()
    masked = mask.nonzero()[0].tolist()
    changed = target.clone()
    changed[tuple(vis)] += 5.0
    assert torch.equal(masked_mse(pred, changed, mask)[0], sse)  # a visible patch's target: no effect
    changed[tuple(masked)] += 5.0
    assert masked_mse(pred, changed, mask)[0] > sse
    assert torch.equal(unpatchify(patchify(views[:, 0], 8), 8, (32, 32), 1), views[:, 0])
    # a view marked absent contributes no loss
    present = torch.tensor([[True, False], [True, False]])
    out2 = model(views, present, generator=torch.Generator().manual_seed(3))
    sse_a, cnt_a = masked_mse(out2["pred"][:, :1], target[:, :1], out2["mask"][:, :1])
    assert torch.allclose(out2["loss"], sse_a / cnt_a)


def test_plain_mae_same_size_and_both_train() -> None:
    umae = MaskedAutoencoder(PretrainConfig(views=["a", "b"], encoder=dict(TINY), mode="umae"))
    mae = MaskedAutoencoder(PretrainConfig(views=["a", "b"], encoder=dict(TINY), mode="mae"))
    for m in (umae, mae):
        e = m.cfg.encoder
        assert (e.dim, e.depth, e.heads, e.patch_size, m.cfg.decoder_dim, m.cfg.decoder_depth) == (32, 2, 4, 8, 48, 3)
        out = m(torch.randn(2, 2, 1, 32, 32))
        out["loss"].backward()
        assert out["pred"].shape == (2, 2, 16, 64)
        # every trainable parameter gets a gradient (DistributedDataParallel refuses unused ones)
        assert not [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert umae.cfg.encoder.attention == "ccp" and mae.cfg.encoder.attention == "linear"
    assert abs(mae(torch.randn(1, 2, 1, 32, 32))["mask"].float().mean().item() - 0.75) < 1e-6
    assert len(umae.decoders) == 2 and len(mae.decoders) == 1


def test_finetune_loads_encoder_linear_probe_and_cnn_transfer(tmp_path) -> None:
    from MedGradePredictLib.breast.fusion_net import BranchSpec, LateFusionNet, load_branch_weights
    from MedGradePredictLib.kinet import KiNet, KiNetConfig
    from MedGradeCoreLib.bundle import save_state_dict
    from MedGradeCoreLib.errors import InputError

    torch.manual_seed(0)
    pre = MaskedAutoencoder(PretrainConfig(views=["a", "b"], encoder=dict(TINY)))
    state = encoder_state(pre.state_dict())
    clf = ViTClassifier(pre.cfg.encoder, 2)
    load_encoder(clf.encoder, state)
    for k, v in clf.encoder.state_dict().items():
        assert torch.equal(v, state[k]), k
    probe = ViTClassifier(pre.cfg.encoder, 2, linear_probe=True)
    load_encoder(probe.encoder, state)
    opt = torch.optim.SGD([p for p in probe.parameters() if p.requires_grad], lr=0.1)
    before = {k: v.clone() for k, v in probe.state_dict().items()}
    loss = torch.nn.functional.cross_entropy(probe(torch.randn(4, 1, 32, 32)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    opt.step()
    after = probe.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(after["head.1.weight"], before["head.1.weight"])
    with pytest.raises(ValueError, match="does not match"):
        load_encoder(ViTClassifier(EncoderConfig(**{**TINY, "dim": 48}), 2).encoder, state)
    # KiNet's sequence branches (ResNeSt) and the breast fusion branches (MONAI ResNet) are CNNs:
    # no encoder tensor fits, nothing is copied
    report = transfer_matching(KiNet(KiNetConfig(in_channels=1)), state)
    assert report.copied == [] and report.skipped
    fusion = LateFusionNet([BranchSpec("us", in_channels=1, size=[32, 32])], 2)
    assert transfer_matching(fusion.branches["us"], state).copied == []
    weights = tmp_path / "umae.safetensors"
    save_state_dict(pre.state_dict(), weights)
    with pytest.raises(InputError, match="no tensor of this file fits"):
        load_branch_weights(fusion, "us", weights)
