"""Sample Data entries for Slicer come from the registry: public URLs, sha256, usable node names."""

from __future__ import annotations

from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.sample_data import dataset_files, sample_path
from MedGradeCoreLib.sequence_names import guess_sequence
from MedGradeCoreLib.slicer_sample_data import CATEGORY, entry_for, sample_entries


def test_entries_match_the_registry_and_the_real_files():
    entries = sample_entries()
    assert {e.category for e in entries} == {CATEGORY}
    for e in entries:
        n = len(e.uris)
        assert n == len(e.fileNames) == len(e.nodeNames) == len(e.checksums) == len(e.loadFileTypes)
        assert all(u.startswith("https://") for u in e.uris)
        assert all(c.startswith("SHA256:") and len(c) == 71 for c in e.checksums)
    all_names = [f for e in entries for f in e.fileNames]
    assert len(all_names) == len(set(all_names))  # unique in Slicer's download cache
    e = entry_for("brain1")
    for uri, checksum in zip(e.uris, e.checksums):
        [f] = [f for f in dataset_files("brain1") if f.url == uri]
        assert sha256_file(sample_path(f.path)) == checksum.split(":")[1]


def test_node_names_are_recognised_by_the_panels():
    e = entry_for("tcga-fg-6692")
    assert sorted(guess_sequence(n) for n in e.nodeNames) == ["flair", "t1", "t1c", "t2"]
    assert set(e.loadFileTypes) == {"VolumeFile"}
    brain = entry_for("brain1")
    assert brain.loadFileTypes == ["VolumeFile", "SegmentationFile"]
    atlas = entry_for("swiss-atlas")
    assert atlas.loadFileTypes == ["VolumeFile", "SegmentationFile"]


def test_datasets_without_public_urls_are_left_out():
    titles = {e.sampleName for e in sample_entries()}
    assert not any("DICOM" in t or "BreakHis" in t for t in titles)
