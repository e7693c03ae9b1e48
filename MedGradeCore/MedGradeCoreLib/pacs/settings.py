"""PACS connection settings: a TOML file and the environment, never the command line (a password there would
show in the process list and the shell history).

File (``--pacs-config FILE``, else ``$MEDGRADE_PACS_CONFIG``, else ``~/.config/medgrade/pacs.toml``)::

    [dicomweb]
    url = "https://pacs.example.org/dicom-web"   # QIDO-RS / WADO-RS / STOW-RS root
    username = "medgrade"
    password = "..."          # or leave it out and set MEDGRADE_PACS_PASSWORD
    ca_bundle = "/etc/ssl/hospital-ca.pem"       # TLS: verified against this bundle (default: the system's)
    timeout_s = 30

    [dimse]
    host = "pacs.example.org"
    port = 104
    called_aet = "PACS"
    calling_aet = "MEDGRADE"
    timeout_s = 30

Environment (overrides the file): ``MEDGRADE_PACS_URL``, ``MEDGRADE_PACS_USER``, ``MEDGRADE_PACS_PASSWORD``,
``MEDGRADE_PACS_CA_BUNDLE``, ``MEDGRADE_PACS_HOST``, ``MEDGRADE_PACS_PORT``, ``MEDGRADE_PACS_AET``,
``MEDGRADE_PACS_CALLING_AET``, ``MEDGRADE_PACS_TIMEOUT``.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from MedGradeCoreLib.errors import InputError

DEFAULT_FILE = Path("~/.config/medgrade/pacs.toml")


@dataclass
class PacsSettings:
    url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    host: str | None = None
    port: int | None = None
    called_aet: str = "ANY-SCP"
    calling_aet: str = "MEDGRADE"
    timeout_s: float = 30.0
    source: str = "environment"  # where they were read (named in messages)
    warnings: list[str] = field(default_factory=list)

    def peer(self, via: str) -> str:
        """How messages name the peer: the URL or ``AET@host:port``."""
        return self.url or "" if via == "dicomweb" else f"{self.called_aet}@{self.host}:{self.port}"


def _file(config: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if config:
        path = Path(config).expanduser()
        if not path.is_file():
            raise InputError(path, "PACS settings file not found")
        return path
    if env.get("MEDGRADE_PACS_CONFIG"):
        return _file(env["MEDGRADE_PACS_CONFIG"], {})
    default = DEFAULT_FILE.expanduser()
    return default if default.is_file() else None


def load_settings(config: str | Path | None = None, env: Mapping[str, str] | None = None) -> PacsSettings:
    """Settings from the file (if any) then the environment; a malformed file or value is an :class:`InputError`."""
    env = os.environ if env is None else env
    s = PacsSettings()
    path = _file(config, env)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InputError(path, f"unreadable PACS settings ({exc})") from None
        web, dimse = data.get("dicomweb", {}) or {}, data.get("dimse", {}) or {}
        unknown = set(data) - {"dicomweb", "dimse"}
        if unknown or not isinstance(web, dict) or not isinstance(dimse, dict):
            raise InputError(path, f"expected [dicomweb] and [dimse] tables (found {', '.join(sorted(data))})")
        s.url, s.username, s.password = web.get("url"), web.get("username"), web.get("password")
        s.ca_bundle = web.get("ca_bundle")
        s.host, s.port = dimse.get("host"), dimse.get("port")
        s.called_aet = dimse.get("called_aet", s.called_aet)
        s.calling_aet = dimse.get("calling_aet", s.calling_aet)
        s.timeout_s = web.get("timeout_s", dimse.get("timeout_s", s.timeout_s))
        s.source = str(path)
        if s.password and path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            s.warnings.append(f"{path} holds a password and is readable by other users (chmod 600 it)")
    for attr, name in (("url", "URL"), ("username", "USER"), ("password", "PASSWORD"), ("ca_bundle", "CA_BUNDLE"),
                       ("host", "HOST"), ("port", "PORT"), ("called_aet", "AET"), ("calling_aet", "CALLING_AET"),
                       ("timeout_s", "TIMEOUT")):
        if env.get(f"MEDGRADE_PACS_{name}"):
            setattr(s, attr, env[f"MEDGRADE_PACS_{name}"])
    try:
        s.port = int(s.port) if s.port not in (None, "") else None
        s.timeout_s = float(s.timeout_s)
    except (TypeError, ValueError):
        raise InputError(s.source, f"PACS port {s.port!r} / timeout {s.timeout_s!r}: expected numbers") from None
    if s.url and not str(s.url).startswith(("http://", "https://")):
        raise InputError(s.source, f"DICOMweb url {s.url!r} must start with http:// or https://")
    if s.ca_bundle and not Path(s.ca_bundle).expanduser().is_file():
        raise InputError(s.ca_bundle, "CA bundle for the DICOMweb TLS connection not found")
    return s
