"""The load check of bundles of the kinds only the training side writes (toy, UMAE): a verified manifest and
weights that load as safetensors with finite values (``models import`` runs it before accepting one)."""

from __future__ import annotations

from pathlib import Path

from MedGradeCoreLib.errors import BundleError


def check_trained_bundle(folder: str | Path, device: str = "cpu") -> None:
    import torch

    from MedGradeCoreLib.bundle import load_state_dict, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder, verify=True)
    weights = [f for f in manifest.files if f.endswith(".safetensors")]
    if not weights:
        raise BundleError(f"{folder}: a {manifest.kind!r} bundle without weights (.safetensors)")
    for name in weights:
        state = load_state_dict(folder / name)
        bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise BundleError(f"{folder / name}: non-finite weights ({', '.join(bad[:3])})")
