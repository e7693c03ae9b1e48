"""One bundle resolver for every loader, and it honours the models root: a model id installed under a chosen
root (the Slicer setting, ``--models-root``) is found by the segmentation, grading and retrain code alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from MedGradeCoreLib.bundle import ModelManifest, write_bundle
from MedGradeCoreLib.errors import BundleError
from MedGradeCoreLib.model_library import resolve_bundle


@pytest.fixture
def root_with_bundle(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("MEDGRADE_MODELS", raising=False)
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\0" * 64)
    manifest = ModelManifest(model_id="only-under-root", kind="grading", architecture={"name": "early"},
                             inputs=["t1c", "flair"], task={"label": "grade"}, trained_on="test")
    root = tmp_path / "library"
    write_bundle(root / "only-under-root", manifest, {"weights.bin": weights})
    return root


def test_every_loader_resolves_through_the_models_root(root_with_bundle):
    from MedGradePredictLib.model_bundle import resolve_bundle as grading_resolve
    from MedGradeSegmentLib.segmentation.model_bundle import bundle_folder

    want = root_with_bundle / "only-under-root"
    assert resolve_bundle("only-under-root", root_with_bundle) == want
    assert bundle_folder("only-under-root", root_with_bundle) == want
    assert grading_resolve("only-under-root", root_with_bundle) == want
    assert resolve_bundle(want) == want  # a folder is taken as it is
    with pytest.raises(BundleError, match="not in the library"):
        resolve_bundle("only-under-root")  # the default library does not hold it


def test_a_zip_must_be_imported_first(tmp_path):
    with pytest.raises(BundleError, match="import the zip"):
        resolve_bundle(tmp_path / "model.zip")
