"""UMAE and plain MAE of the same size (encoder width/depth/heads, decoder width/depth, patch size).

* ``mode="umae"``: the views of a sample are masked with UNM (each view its own mask), their visible
  tokens concatenated after one global token and encoded with cross-convolution projection; one decoder
  per view with residual cross-attention to the other views.
* ``mode="mae"``: every view is an independent image, random masking, linear q/k/v (MONAI blocks) and one
  shared decoder without RCA -- the baseline for "what does multi-view tokenisation bring".

The loss is the MSE over masked patches of the present views only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .decoder import ViewDecoder, masked_mse, patchify
from .encoder import EncoderConfig, Layout, ViTEncoder, sincos_2d
from .masking import random_masking, uniform_noise_masking


@dataclass
class PretrainConfig:
    views: list[str] = field(default_factory=lambda: ["view0", "view1"])
    mode: str = "umae"  # "umae" | "mae"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder_dim: int = 48
    decoder_depth: int = 3
    decoder_heads: int = 4
    mask_w: float = 0.75  # UNM regular ratio (and the random-masking ratio of plain MAE)
    mask_s: float = 0.25  # UNM noise ratio over the regular step's visible patches
    norm_pix_loss: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig(**self.encoder)
        if self.mode not in ("umae", "mae"):
            raise ValueError(f"mode must be 'umae' or 'mae', got {self.mode!r}")
        self.encoder.attention = "ccp" if self.mode == "umae" else "linear"
        self.encoder.__post_init__()
        if not self.views or len(set(self.views)) != len(self.views):
            raise ValueError(f"views must be distinct names, got {self.views}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoder"] = self.encoder.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown pre-training settings: {', '.join(sorted(unknown))}")
        return cls(**d)


class MaskedAutoencoder(nn.Module):
    def __init__(self, cfg: PretrainConfig):
        super().__init__()
        self.cfg = cfg
        e = cfg.encoder
        self.encoder = ViTEncoder(e)
        dd = cfg.decoder_dim
        self.decoder_embed = nn.Linear(e.dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        nn.init.normal_(self.mask_token, std=0.02)
        # the encoder's token at UNM noise positions (kept out of the encoder: fine-tuning never uses it,
        # and a parameter without gradient would stop DistributedDataParallel)
        self.noise_token = nn.Parameter(torch.zeros(1, 1, e.dim)) if cfg.mode == "umae" else None
        if self.noise_token is not None:
            nn.init.normal_(self.noise_token, std=0.02)
        self.register_buffer("decoder_pos", sincos_2d(e.grid, dd))
        pix = e.patch_size ** 2 * e.in_channels
        if cfg.mode == "umae":
            self.decoders = nn.ModuleDict({v: ViewDecoder(dd, cfg.decoder_heads, cfg.decoder_depth, e.mlp_ratio, pix)
                                           for v in cfg.views})
        else:
            self.decoders = nn.ModuleDict({"shared": ViewDecoder(dd, cfg.decoder_heads, cfg.decoder_depth,
                                                                 e.mlp_ratio, pix, rca=False)})

    def _decoder_input(self, latent: torch.Tensor, glob: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """latent [B, M, D] at patch indices ``visible`` [B, M] -> full sequence [B, 1 + N, Dd]."""
        b, n = latent.shape[0], self.decoder_pos.shape[1]
        lat = self.decoder_embed(latent)
        full = self.mask_token.expand(b, n, -1).clone()
        full.scatter_(1, visible[..., None].expand(-1, -1, lat.shape[-1]), lat)
        return torch.cat([self.decoder_embed(glob), full + self.decoder_pos], 1)

    def forward(self, views: torch.Tensor, present: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """views [B, V, C, H, W] (V = len(cfg.views), in that order); present [B, V] bool.
        Returns ``loss``, ``pred`` [B, V, N, P] and ``mask`` [B, V, N] (True = reconstructed)."""
        b, v = views.shape[:2]
        if v != len(self.cfg.views):
            raise ValueError(f"expected {len(self.cfg.views)} views ({', '.join(self.cfg.views)}), got {v}")
        if present is None:
            present = torch.ones(b, v, dtype=torch.bool, device=views.device)
        present = present.to(views.device, torch.bool)
        target = patchify(views.flatten(0, 1), self.cfg.encoder.patch_size)
        target = target.view(b, v, *target.shape[1:])
        if self.cfg.mode == "umae":
            pred, mask = self._forward_umae(views, present, generator)
        else:
            pred, mask = self._forward_mae(views, present, generator)
        sse, count = masked_mse(pred, target, mask & present[:, :, None], self.cfg.norm_pix_loss)
        return {"loss": sse / count.clamp(min=1), "pred": pred, "mask": mask}

    def _forward_umae(self, views: torch.Tensor, present: torch.Tensor, generator: torch.Generator | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        b, v = views.shape[:2]
        enc = self.encoder
        tok = enc.embed(views.flatten(0, 1))  # [B*V, N, D]
        m = uniform_noise_masking(b * v, enc.cfg.grid, self.cfg.mask_w, self.cfg.mask_s, generator, views.device)
        d = tok.shape[-1]
        vis = tok.gather(1, m.visible_idx[..., None].expand(-1, -1, d))
        pos = enc.pos_embed.expand(b * v, -1, -1).gather(1, m.visible_idx[..., None].expand(-1, -1, d))
        vis = torch.where(m.noise[..., None], self.noise_token + pos, vis)
        rows, cols = m.layout
        x = enc.encode(vis.reshape(b, -1, d), Layout(v, rows, cols, present))
        glob, lat = x[:, :1], x[:, 1:].reshape(b, v, rows * cols, d)
        vis_idx = m.visible_idx.view(b, v, -1)
        seqs = [self._decoder_input(lat[:, i], glob, vis_idx[:, i]) for i in range(v)]
        preds = []
        for i, name in enumerate(self.cfg.views):
            others = [(seqs[j], present[:, j]) for j in range(v) if j != i]
            preds.append(self.decoders[name](seqs[i], others))
        return torch.stack(preds, 1), m.mask.view(b, v, -1)

    def _forward_mae(self, views: torch.Tensor, present: torch.Tensor, generator: torch.Generator | None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        b, v = views.shape[:2]
        enc = self.encoder
        tok = enc.embed(views.flatten(0, 1))
        n, d = tok.shape[1:]
        m = random_masking(b * v, n, self.cfg.mask_w, generator, views.device)
        vis = tok.gather(1, m.visible_idx[..., None].expand(-1, -1, d))
        keep = present.flatten()  # absent views are simply not encoded
        x = enc.encode(vis[keep], None)
        seq = self._decoder_input(x[:, 1:], x[:, :1], m.visible_idx[keep])
        pred = tok.new_zeros(b * v, n, self.decoders["shared"].pred.out_features)
        pred[keep] = self.decoders["shared"](seq)
        return pred.view(b, v, n, -1), m.mask.view(b, v, n)
