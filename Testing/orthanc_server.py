"""A real Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) on free localhost ports with a temporary config and
storage, for the PACS tests; ``start_orthanc`` returns None and the reason when it cannot start."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

PLUGIN_DIRS = [Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc/plugins")]
USER, PASSWORD = "medgrade", "orthanc-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    process: subprocess.Popen
    http_port: int
    dicom_port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, path: str, method: str = "GET", **kw):
        r = requests.request(method, f"{self.url}{path}", auth=(USER, PASSWORD), timeout=30, **kw)
        r.raise_for_status()
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    def upload(self, files) -> None:
        for f in files:
            self.rest("/instances", "POST", data=Path(f).read_bytes())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_orthanc(folder: Path) -> tuple[Orthanc | None, str]:
    """(server, "") or (None, why it cannot start)."""
    binary = shutil.which("Orthanc")
    if binary is None:
        return None, "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    plugin = next((d / "libOrthancDicomWeb.so" for d in PLUGIN_DIRS if (d / "libOrthancDicomWeb.so").is_file()), None)
    if plugin is None:
        return None, "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    http_port, dicom_port = free_port(), free_port()
    (folder / "storage").mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "medgrade-test", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}, "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True, "StableAge": 1, "HttpTimeout": 30, "ConcurrentJobs": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "w")
    proc = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(proc, http_port, dicom_port, folder)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, f"Orthanc exited with code {proc.returncode}: {(folder / 'orthanc.log').read_text()[-400:]}"
        try:
            server.rest("/system")
            server.rest("/dicom-web/studies")
            return server, ""
        except requests.RequestException:
            time.sleep(0.5)
    server.stop()
    return None, "Orthanc did not answer on its HTTP port within 60 s"
