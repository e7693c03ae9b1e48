"""The sample-data registry resolves real files from the mirror and refuses wrong hashes."""

from __future__ import annotations

import shutil

import pytest

from MedGradeCoreLib import sample_data
from MedGradeCoreLib.errors import InputError


def test_every_registered_file_resolves_from_the_mirror():
    for name in sample_data.dataset_names():
        paths = sample_data.fetch_dataset(name)
        assert len(paths) == len(sample_data.dataset_files(name))
        assert all(p.is_file() for p in paths.values())


def test_mismatching_mirror_file_is_refused(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "brain-mr"
    mirror.mkdir(parents=True)
    (mirror / "brain1_label.nrrd").write_bytes(b"corrupted")
    monkeypatch.setenv("MEDGRADE_SAMPLE_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path / "cache"))
    f = next(f for f in sample_data.dataset_files("brain1") if f.path.endswith("label.nrrd"))
    # The corrupted mirror copy is skipped; with no network the download fails with a clear message.
    monkeypatch.setattr(sample_data.urllib.request, "urlopen",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(InputError, match="download failed"):
        sample_data.fetch_file(f)


def test_download_with_wrong_hash_is_refused(tmp_path, monkeypatch, sample):
    src = sample("brain-mr/brain1_label.nrrd")
    monkeypatch.setenv("MEDGRADE_SAMPLE_MIRROR", "")
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path / "cache"))
    wrong = sample_data.SampleFile("brain-mr/brain1_label.nrrd", src.as_uri(), "0" * 64)
    with pytest.raises(InputError, match="refused"):
        sample_data.fetch_file(wrong)
    assert not list((tmp_path / "cache").rglob("*.nrrd*"))
    right = sample_data.SampleFile("brain-mr/brain1_label.nrrd", src.as_uri(),
                                   sample_data.sha256_file(src))
    got = sample_data.fetch_file(right)
    assert got.read_bytes() == src.read_bytes() and str(tmp_path) in str(got)


def test_unknown_dataset_message():
    with pytest.raises(InputError, match="unknown sample dataset 'nope'"):
        sample_data.dataset_files("nope")
