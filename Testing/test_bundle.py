"""Model bundles: hashed manifest, tamper refusal, zip round trip, safe weights."""

from __future__ import annotations

import pytest
import torch

from MedGradeCoreLib.bundle import (ModelManifest, load_state_dict, read_manifest, save_state_dict,
                                       unzip_bundle, write_bundle, zip_bundle)
from MedGradeCoreLib.errors import BundleError


def _make_bundle(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_state_dict({"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, weights)
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on nothing")
    m = ModelManifest(model_id="toy-1", kind="segmentation", architecture={"name": "Toy"}, inputs=["t1c"])
    return write_bundle(tmp_path / "bundle", m, {"weights.safetensors": weights, "notes.txt": notes})


def test_bundle_round_trip_and_weights(tmp_path):
    folder = _make_bundle(tmp_path)
    m = read_manifest(folder)
    assert set(m.files) == {"weights.safetensors", "notes.txt"}
    state = load_state_dict(folder / "weights.safetensors")
    assert torch.equal(state["layer.weight"], torch.arange(6, dtype=torch.float32).reshape(2, 3))


def test_tampered_bundle_is_refused(tmp_path):
    folder = _make_bundle(tmp_path)
    (folder / "notes.txt").write_text("changed")
    with pytest.raises(BundleError, match="notes.txt.*does not match"):
        read_manifest(folder)
    (folder / "notes.txt").unlink()
    with pytest.raises(BundleError, match="missing"):
        read_manifest(folder)


def test_zip_import_and_refusal(tmp_path):
    folder = _make_bundle(tmp_path)
    z = zip_bundle(folder, tmp_path / "toy.zip")
    lib = tmp_path / "lib"
    lib.mkdir()
    installed = unzip_bundle(z, lib)
    assert installed.name == "toy-1" and read_manifest(installed).model_id == "toy-1"
    with pytest.raises(BundleError, match="already installed"):
        unzip_bundle(z, lib)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="bad.zip"):
        unzip_bundle(bad, lib)
    assert sorted(p.name for p in lib.iterdir()) == ["toy-1"]  # nothing half-installed


def test_existing_bundle_folder_not_overwritten(tmp_path):
    _make_bundle(tmp_path)
    with pytest.raises(BundleError, match="already exists"):
        _make_bundle(tmp_path)
