"""The model library: list, install from a URL (resume, sha256), import offline, remove, CLI."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from MedGradeCoreLib import model_library as ml
from MedGradeCoreLib.bundle import ModelManifest, write_bundle, zip_bundle
from MedGradeCoreLib.errors import BundleError
from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.progress import Progress


@pytest.fixture(autouse=True)
def _transport_only(monkeypatch):
    """These tests are about transport and the library's files, with a synthetic bundle no kind's loader
    loads; the kind check itself is tested in test_safety_outputs.py."""
    monkeypatch.setattr(ml, "check_bundle_kind", lambda folder, manifest: None)


@pytest.fixture
def bundle_zip(tmp_path: Path) -> Path:
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(300_000))  # incompressible, so the zip is ~300 kB
    manifest = ModelManifest(model_id="tiny-seg", kind="segmentation", architecture={"name": "MIGNet"},
                             inputs=["t1c", "t2"], task={"label": "lesion"}, trained_on="test data",
                             metrics={"pooled": {"dsc": 0.81, "hd95": 12.5}}, min_gpu_memory_mb=2048)
    folder = write_bundle(tmp_path / "src" / "tiny-seg", manifest, {"weights.bin": weights})
    return zip_bundle(folder, tmp_path / "tiny-seg.zip")


class _Server:
    """Serves one file on 127.0.0.1 with Range support; can cut the first transfer short."""

    def __init__(self, payload: bytes, cut_first_after: int | None = None):
        self.payload, self.cut = payload, cut_first_after
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                server.requests.append(dict(self.headers))
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                body = server.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut is not None and len(server.requests) == 1:
                    self.wfile.write(body[:server.cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/tiny-seg.zip"

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_install_from_url_lists_the_bundle(tmp_path, bundle_zip):
    seen: list[float] = []
    with _Server(bundle_zip.read_bytes()) as srv:
        entry = ml.install_from_url(srv.url, sha256_file(bundle_zip), tmp_path / "lib",
                                    progress=Progress(lambda f, m: seen.append(f)), timeout=10)
    assert entry.model_id == "tiny-seg" and entry.source == "installed"
    assert entry.inputs == ["t1c", "t2"] and entry.trained_on == "test data"
    assert entry.metrics_summary() == "dsc=0.81, hd95=12.5"
    assert entry.size_bytes > 300_000 and len(entry.sha256) == 64
    assert seen and seen[-1] == pytest.approx(1.0)
    listed = [e for e in ml.list_models(tmp_path / "lib") if e.source == "installed"]
    assert listed == [entry]
    assert not list((tmp_path / "lib" / ".downloads").glob("*"))  # download cleaned up


def test_interrupted_transfer_resumes_with_range(tmp_path, bundle_zip):
    payload = bundle_zip.read_bytes()
    with _Server(payload, cut_first_after=100_000) as srv:
        entry = ml.install_from_url(srv.url, sha256_file(bundle_zip), tmp_path / "lib", timeout=10)
    assert "Range" not in srv.requests[0]
    assert srv.requests[1]["Range"] == "bytes=100000-"
    assert len(srv.requests) == 2
    assert entry.model_id == "tiny-seg"


def test_resume_across_calls_keeps_the_part_file(tmp_path, bundle_zip):
    payload = bundle_zip.read_bytes()
    sha = sha256_file(bundle_zip)
    with _Server(payload, cut_first_after=50_000) as srv:
        with pytest.raises(BundleError, match="interrupted.*50000 bytes kept"):
            ml.install_from_url(srv.url, sha, tmp_path / "lib", retries=0, timeout=10)
        entry = ml.install_from_url(srv.url, sha, tmp_path / "lib", retries=0, timeout=10)
    assert srv.requests[1]["Range"] == "bytes=50000-"
    assert entry.model_id == "tiny-seg"


def test_wrong_sha256_is_refused_and_nothing_installed(tmp_path, bundle_zip):
    with _Server(bundle_zip.read_bytes()) as srv:
        with pytest.raises(BundleError, match="refused, nothing installed"):
            ml.install_from_url(srv.url, "0" * 64, tmp_path / "lib", timeout=10)
    assert [e for e in ml.list_models(tmp_path / "lib") if e.source == "installed"] == []
    assert not any((tmp_path / "lib").rglob("*.part"))
    assert not (tmp_path / "lib" / "tiny-seg").exists()


def test_offline_import_gives_the_same_entry(tmp_path, bundle_zip):
    with _Server(bundle_zip.read_bytes()) as srv:
        online = ml.install_from_url(srv.url, sha256_file(bundle_zip), tmp_path / "lib", timeout=10)
    ml.remove_model("tiny-seg", tmp_path / "lib")
    assert not (tmp_path / "lib" / "tiny-seg").exists()
    offline = ml.import_bundle(bundle_zip, tmp_path / "lib")
    assert offline == online
    # importing the identical bundle again is a no-op; a folder import gives the same entry too
    assert ml.import_bundle(bundle_zip, tmp_path / "lib") == online
    other = ml.import_bundle(tmp_path / "lib" / "tiny-seg", tmp_path / "lib2")
    assert {**other.to_dict(), "path": ""} == {**online.to_dict(), "path": ""}


def test_tampered_import_and_conflicting_id_are_refused(tmp_path, bundle_zip):
    folder = ml.import_bundle(bundle_zip, tmp_path / "a").path
    (Path(folder) / "weights.bin").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="does not match"):
        ml.import_bundle(folder, tmp_path / "b")
    (Path(folder) / "weights.bin").unlink()
    ml.remove_model("tiny-seg", tmp_path / "a")
    ml.import_bundle(bundle_zip, tmp_path / "a")
    with pytest.raises(BundleError, match="different model"):
        ml.import_bundle(_other_bundle(tmp_path), tmp_path / "a")


def _other_bundle(tmp_path: Path) -> Path:
    w = tmp_path / "w2.bin"
    w.write_bytes(b"other weights")
    m = ModelManifest(model_id="tiny-seg", kind="segmentation", architecture={"name": "UNet"}, inputs=["t1c"])
    return write_bundle(tmp_path / "other" / "tiny-seg", m, {"weights.bin": w})


def test_bundled_models_are_listed_read_only(tmp_path, monkeypatch):
    shipped = tmp_path / "pkg" / "bundled_models"
    shipped.mkdir(parents=True)
    _other_bundle(tmp_path).rename(shipped / "tiny-seg")
    monkeypatch.setattr(ml, "bundled_dirs", lambda: [shipped])
    [entry] = ml.list_models(tmp_path / "lib")
    assert entry.source == "bundled" and entry.read_only
    with pytest.raises(BundleError, match="cannot be removed"):
        ml.remove_model("tiny-seg", tmp_path / "lib")


def test_library_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGRADE_MODELS", str(tmp_path / "m"))
    assert ml.library_root() == tmp_path / "m"
    monkeypatch.delenv("MEDGRADE_MODELS")
    monkeypatch.setenv("MEDGRADE_CACHE", str(tmp_path / "c"))
    assert ml.library_root() == tmp_path / "c" / "models"


def test_shipped_sources_file_is_valid_and_schema_catches_mistakes():
    repo = Path(__file__).resolve().parents[1]
    data = json.loads((repo / "Resources" / "model-sources.json").read_text())
    assert ml.validate_sources(data) == []
    assert ml.load_sources(repo / "Resources" / "model-sources.json") is not None
    bad = {"models": [{"model_id": "x", "url": "ftp://x", "sha256": "a" * 64}, {"model_id": "y"}]}
    problems = ml.validate_sources(bad)
    assert any("not http" in p for p in problems) and any("lacks url, sha256" in p for p in problems)


def test_models_cli_list_import_remove(tmp_path, bundle_zip, capsys, monkeypatch):
    from MedGradeCoreLib.cli import main

    monkeypatch.setenv("MEDGRADE_MODELS", str(tmp_path / "lib"))
    assert main(["models", "import", str(bundle_zip)]) == 0
    assert "tiny-seg" in capsys.readouterr().out
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model_id"] for r in rows if r["source"] == "installed"] == ["tiny-seg"]
    assert main(["models", "path", "tiny-seg"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "lib" / "tiny-seg")
    assert main(["models", "remove", "tiny-seg"]) == 0
    assert main(["models", "remove", "tiny-seg"]) == 2
    assert "not in the library" in capsys.readouterr().err
    with _Server(bundle_zip.read_bytes()) as srv:
        assert main(["models", "install", srv.url, "--sha256", sha256_file(bundle_zip)]) == 0
