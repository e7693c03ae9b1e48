"""Hostile model bundles (issue 10, items 1-4): every bundle is built on the fly by an 'attacker'.

Path-traversing model ids, unlisted files, zip bombs, a sha256 used as a path, and malformed LightGBM /
safetensors files with matching hashes must be refused with a BundleError, leave nothing behind, and never
touch a file outside the library or crash the process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from MedGradeCoreLib import bundle as bundle_mod
from MedGradeCoreLib import model_library as ml
from MedGradeCoreLib.bundle import ModelManifest, write_bundle, zip_bundle
from MedGradeCoreLib.errors import BundleError

PREDICT_LIB = Path(__file__).resolve().parents[1] / "MedGradePredict" / "MedGradePredictLib"
DEMO_GRADING = PREDICT_LIB / "bundled_models" / "kinet-lgg-g2g3-t1c-flair-v1"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(model_id: str, files: dict[str, bytes]) -> dict:
    return {"model_id": model_id, "kind": "segmentation", "architecture": {"name": "Toy"}, "inputs": ["t1c"],
            "files": {name: _sha(data) for name, data in files.items()}}


def _hostile_zip(path: Path, manifest: dict, members: dict[str, bytes], folder: str = "b",
                 compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip written member by member, exactly as an attacker chooses (no help from zip_bundle)."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr(f"{folder}/manifest.json", json.dumps(manifest))
        for name, data in members.items():
            zf.writestr(name if name.startswith(("/", "..")) or "/" in name else f"{folder}/{name}", data)
    return path


def _library_is_empty(root: Path) -> bool:
    return not root.exists() or not any(root.iterdir())


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    return tmp_path / "home" / "lib"


# --- 1. model ids are folder names: strict pattern, everything resolved inside the library -------------------

@pytest.mark.parametrize("bad_id", ["../../escaped", "/tmp/medgrade-abs-escape",
                                    "../../.local/lib/python3.11/site-packages/usercustomize", "a/b", "..", ".hidden",
                                    "with space", ""])
def test_zip_with_path_like_model_id_is_refused(tmp_path, lib, bad_id):
    w = b"weights"
    z = _hostile_zip(tmp_path / "evil.zip", _manifest(bad_id, {"w.bin": w}), {"w.bin": w})
    with pytest.raises(BundleError, match="model_id .* is not allowed"):
        ml.import_bundle(z, lib)
    assert _library_is_empty(lib)
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/medgrade-abs-escape").exists()
    assert not (tmp_path / "home" / ".local").exists()


def test_folder_import_cannot_delete_a_folder_outside_the_library(tmp_path, lib):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.docx").write_text("years of work")
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.bin").write_bytes(b"w")
    (src / "manifest.json").write_text(json.dumps(_manifest("../../victim", {"w.bin": b"w"})))
    with pytest.raises(BundleError, match="not allowed"):
        ml.import_bundle(src, lib)
    assert (victim / "thesis.docx").read_text() == "years of work"


def test_folder_import_refuses_links_and_unlisted_files(tmp_path, lib):
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.bin").write_bytes(b"w")
    (src / "manifest.json").write_text(json.dumps(_manifest("ok-id", {"w.bin": b"w"})))
    (src / "extra.py").write_text("import os")
    with pytest.raises(BundleError, match="extra.py: not listed"):
        ml.import_bundle(src, lib)
    (src / "extra.py").unlink()
    (src / "leak.txt").symlink_to(secret)
    with pytest.raises(BundleError, match="symbolic link"):
        ml.import_bundle(src, lib)
    assert not (lib / "ok-id").exists() and not list(lib.glob(".*"))


def test_remove_never_follows_a_link_out_of_the_library(tmp_path, lib):
    outside = tmp_path / "outside-bundle"
    outside.mkdir()
    (outside / "w.bin").write_bytes(b"w")
    (outside / "manifest.json").write_text(json.dumps(_manifest("linked", {"w.bin": b"w"})))
    lib.mkdir(parents=True)
    (lib / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BundleError, match="outside the model library"):
        ml.remove_model("linked", lib)
    assert (outside / "w.bin").is_file()
    with pytest.raises(BundleError, match="not allowed"):
        ml.remove_model("../outside-bundle", lib)


def test_cli_refuses_a_model_id_with_a_slash(tmp_path, lib, capsys):
    from MedGradeCoreLib.cli import main

    assert main(["models", "--root", str(lib), "remove", "../x"]) == 2
    assert "is not allowed" in capsys.readouterr().err


# --- 2. zips: member list and sizes checked against the manifest before anything is extracted --------------

def test_unlisted_file_in_zip_is_refused_before_extraction(tmp_path, lib):
    w = b"weights"
    z = _hostile_zip(tmp_path / "x.zip", _manifest("tiny", {"w.bin": w}), {"w.bin": w, "payload.so": b"\x7fELF"})
    with pytest.raises(BundleError, match="payload.so.*not listed"):
        ml.import_bundle(z, lib)
    assert _library_is_empty(lib)


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, lib, monkeypatch):
    zeros = bytes(64 << 20)  # 64 MiB of zeros -> ~65 kB deflated (ratio ~1000)
    z = _hostile_zip(tmp_path / "bomb.zip", _manifest("bomb", {"big.bin": zeros}), {"big.bin": zeros})
    assert z.stat().st_size < 1 << 20
    with pytest.raises(BundleError, match="expands .* times"):
        ml.import_bundle(z, lib)
    assert _library_is_empty(lib)
    # the total bound: an incompressible payload above the limit is refused the same way
    data = os.urandom(300_000)
    z2 = _hostile_zip(tmp_path / "big.zip", _manifest("big", {"r.bin": data}), {"r.bin": data})
    monkeypatch.setattr(bundle_mod, "MAX_BUNDLE_BYTES", 100_000)
    with pytest.raises(BundleError, match="would expand to .* limit"):
        ml.import_bundle(z2, lib)
    assert _library_is_empty(lib)


@pytest.mark.parametrize("entry", ["../../etc/hostname", "/etc/hostname", "a/../../x", "C:/x", "manifest.json"])
def test_manifest_entry_pointing_outside_the_bundle_is_refused(tmp_path, lib, entry):
    manifest = _manifest("tiny", {})
    manifest["files"] = {entry: _sha(b"anything")}
    z = _hostile_zip(tmp_path / "x.zip", manifest, {})
    with pytest.raises(BundleError, match="outside the bundle"):
        ml.import_bundle(z, lib)
    assert _library_is_empty(lib)
    folder = tmp_path / "folder-bundle"  # the same manifest as a folder
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle"):
        ml.import_bundle(folder, lib)


def test_member_whose_bytes_do_not_match_the_manifest_leaves_nothing(tmp_path, lib):
    z = _hostile_zip(tmp_path / "x.zip", _manifest("tiny", {"w.bin": b"good"}), {"w.bin": b"evil"})
    with pytest.raises(BundleError, match="sha256"):
        ml.import_bundle(z, lib)
    assert not [p for p in lib.iterdir()]


# --- 3. --sha256 is 64 hex digits, never a path; refused installs leave nothing -----------------------------

@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_sha256_argument_is_never_used_as_a_path(tmp_path, lib, http_dir, capsys):
    from MedGradeCoreLib.cli import main

    served, base = http_dir
    victim = lib.parent / "victim"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("keep me")
    (served / "b.zip").write_bytes(b"zip")
    for bad in ("../../victim", "../victim" + "0" * 56, "g" * 64, "0" * 63):
        with pytest.raises(BundleError, match="not a sha256"):
            ml.install_from_url(f"{base}/b.zip", bad, lib)
    assert main(["models", "--root", str(lib), "install", f"{base}/b.zip", "--sha256", "../../victim"]) == 2
    assert "not a sha256" in capsys.readouterr().err
    assert victim.read_text() == "keep me"
    assert _library_is_empty(lib)


def test_refused_install_leaves_no_download_or_partial(tmp_path, lib, http_dir):
    served, base = http_dir
    w = b"weights"
    z = _hostile_zip(served / "evil.zip", _manifest("tiny", {"w.bin": w}), {"w.bin": w, "extra": b"x"})
    with pytest.raises(BundleError, match="not listed"):
        ml.install_from_url(f"{base}/evil.zip", _sha(z.read_bytes()), lib)
    assert _library_is_empty(lib)
    with pytest.raises(BundleError, match="refused, nothing installed"):  # wrong hash
        ml.install_from_url(f"{base}/evil.zip", "0" * 64, lib)
    assert _library_is_empty(lib)


# --- 4. malformed LightGBM text / corrupt weights with matching hashes: an error, never a crash ------------

def _booster_text() -> str:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(float)
    params = {"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 3, "verbose": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=3).model_to_string()


_MUTATIONS = {
    "child out of range": lambda t: t.replace("left_child=", "left_child=999999 ", 1),
    "num_leaves lies": lambda t: t.replace("num_leaves=4", "num_leaves=400", 1),
    "feature out of range": lambda t: t.replace("split_feature=", "split_feature=99999999 ", 1),
    "negative leaves": lambda t: t.replace("num_leaves=4", "num_leaves=-5", 1),
    "tree_sizes lie": lambda t: t.replace("tree_sizes=", "tree_sizes=1 ", 1),
    "truncated": lambda t: t[: len(t) // 2],
    "not a model": lambda t: "hello",
}


@pytest.mark.parametrize("mutation", list(_MUTATIONS))
def test_malformed_lightgbm_text_is_a_bundle_error(tmp_path, mutation):
    from MedGradePredictLib.head_lgbm import load_head

    path = tmp_path / "head.txt"
    path.write_text(_MUTATIONS[mutation](_booster_text()))
    with pytest.raises(BundleError, match="head.txt"):
        load_head(path)


def test_child_process_catches_a_crash_the_structure_check_misses(tmp_path, monkeypatch):
    from MedGradePredictLib import head_lgbm

    path = tmp_path / "head.txt"
    path.write_text(_MUTATIONS["child out of range"](_booster_text()))
    monkeypatch.setattr(head_lgbm, "check_model_text", lambda text, where="": 5)
    with pytest.raises(BundleError, match="separate process crashed with SIG"):
        head_lgbm.load_head(path)


def _grading_bundle_with(tmp_path: Path, replace: dict[str, bytes]) -> Path:
    """A copy of the shipped grading bundle with some files replaced and the manifest re-hashed."""
    src = tmp_path / "src"
    shutil.copytree(DEMO_GRADING, src)
    for name, data in replace.items():
        (src / name).write_bytes(data)
    m = json.loads((src / "manifest.json").read_text())
    m["files"] = {k: _sha((src / k).read_bytes()) for k in m["files"]}
    (src / "manifest.json").write_text(json.dumps(m))
    return src


def test_grading_bundle_with_malformed_head_and_matching_hashes(tmp_path):
    from MedGradePredictLib.model_bundle import load_grading_bundle

    head = re.sub(r"left_child=-?\d+", "left_child=999999", (DEMO_GRADING / "head_lightgbm.txt").read_text(), count=1)
    assert "left_child=999999" in head  # the first tree's first child now points outside the tree
    folder = _grading_bundle_with(tmp_path, {"head_lightgbm.txt": head.encode()})
    with pytest.raises(BundleError, match="head_lightgbm.txt.*outside the tree"):
        load_grading_bundle(folder, "cpu")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors_is_a_clear_error(tmp_path, damage):
    from MedGradePredictLib.model_bundle import load_grading_bundle

    raw = (DEMO_GRADING / "network.safetensors").read_bytes()
    data = raw[: len(raw) // 3] if damage == "truncated" else b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"
    folder = _grading_bundle_with(tmp_path, {"network.safetensors": data})
    with pytest.raises(BundleError, match="network.safetensors: the weights file is corrupt"):
        load_grading_bundle(folder, "cpu")


def test_zip_built_by_medgrade_still_installs(tmp_path, lib, monkeypatch):
    monkeypatch.setattr(ml, "check_bundle_kind", lambda folder, manifest: None)  # a synthetic bundle (zip mechanics)
    w = tmp_path / "w.bin"
    w.write_bytes(os.urandom(5000))
    m = ModelManifest(model_id="fine-1.0_a", kind="segmentation", architecture={"name": "Toy"}, inputs=["t1c"])
    z = zip_bundle(write_bundle(tmp_path / "fine-1.0_a", m, {"sub/w.bin": w}), tmp_path / "fine.zip")
    entry = ml.import_bundle(z, lib)
    assert entry.model_id == "fine-1.0_a" and (lib / "fine-1.0_a" / "sub" / "w.bin").read_bytes() == w.read_bytes()
    assert sorted(p.name for p in lib.iterdir()) == ["fine-1.0_a"]
    ml.remove_model("fine-1.0_a", lib)
    assert _library_is_empty(lib)
