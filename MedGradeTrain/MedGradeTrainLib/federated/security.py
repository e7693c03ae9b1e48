"""TLS and SuperNode authentication of a Flower deployment, as Flower 1.42 provides them.

TLS: the SuperLink serves its one HTTP port (Fleet, Control, Runtime APIs) over HTTPS with
``--ssl-ca-certfile/--ssl-certfile/--ssl-keyfile``; SuperNodes verify it with ``--root-certificates`` and
the ``flwr`` CLI with ``root-certificates`` in its connection. Without certificates every process runs
``--insecure`` (localhost only).

Node authentication: ``flower-superlink --enable-supernode-auth`` (TLS required) accepts only SuperNodes
whose public key was registered through the Control API (``flwr supernode register KEY.pub CONNECTION``);
each SuperNode signs its requests with its private key (``--auth-supernode-private-key``): an EC key on a
NIST curve (P-384) in OpenSSH format, e.g. ``ssh-keygen -t ecdsa -b 384 -N '' -f site``."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from MedGradeCoreLib.errors import InputError, MedGradeError


@dataclass(frozen=True)
class LinkTls:
    """The SuperLink's certificates: the CA that signed it, its certificate (naming its host) and key."""

    ca_certfile: str
    certfile: str
    keyfile: str

    @classmethod
    def of(cls, ca_certfile: str | None, certfile: str | None, keyfile: str | None) -> "LinkTls | None":
        """All three files (checked, absolute), or None when none is given; some but not all is refused."""
        given = {"--ssl-ca-certfile": ca_certfile, "--ssl-certfile": certfile, "--ssl-keyfile": keyfile}
        if not any(given.values()):
            return None
        missing = [k for k, v in given.items() if not v]
        if missing:
            raise InputError(None, f"a TLS SuperLink needs all of --ssl-ca-certfile, --ssl-certfile, --ssl-keyfile "
                                   f"(missing: {', '.join(missing)})")
        return cls(*(existing_file(v, k) for k, v in given.items()))


@dataclass(frozen=True)
class Security:
    """How a deployment run connects: the localhost SuperLink's certificates (``tls``), the CA certificate
    the ``flwr`` CLI (and the localhost SuperNodes, unless their site config names one) verify the SuperLink
    with (``root_certificates``; default: ``tls.ca_certfile``), and whether only registered SuperNodes may
    join (``node_auth``: every site config then names its ``auth_private_key``)."""

    tls: LinkTls | None = None
    root_certificates: str | None = None
    node_auth: bool = False

    @property
    def ca(self) -> str | None:
        return self.root_certificates or (self.tls.ca_certfile if self.tls else None)

    def record(self) -> dict:
        return {"tls": None if self.tls is None else vars(self.tls), "root_certificates": self.root_certificates,
                "node_auth": self.node_auth}

    @classmethod
    def from_record(cls, rec: dict | None) -> "Security":
        rec = rec or {}
        tls = rec.get("tls")
        return cls(LinkTls(**tls) if tls else None, rec.get("root_certificates"), bool(rec.get("node_auth")))

    @classmethod
    def from_args(cls, args) -> "Security":
        """From ``medgrade train --launcher flower``'s options (absent options: insecure)."""
        tls = LinkTls.of(getattr(args, "ssl_ca_certfile", None), getattr(args, "ssl_certfile", None),
                         getattr(args, "ssl_keyfile", None))
        ca = getattr(args, "root_certificates", None)
        return cls(tls, existing_file(ca, "--root-certificates") if ca else None,
                   bool(getattr(args, "enable_supernode_auth", False)))


def existing_file(path: str | Path | None, what: str) -> str:
    """``path`` resolved to absolute; a missing file is refused naming ``what``."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise InputError(p, f"{what}: no such file")
    return str(p.resolve())


def superlink_args(tls: LinkTls | None, node_auth: bool) -> list[str]:
    """``flower-superlink`` options: HTTPS with the certificates (and node authentication), else insecure."""
    if tls is None:
        if node_auth:
            raise InputError(None, "SuperNode authentication needs a TLS SuperLink (--ssl-ca-certfile, "
                                   "--ssl-certfile, --ssl-keyfile)")
        return ["--insecure"]
    args = ["--ssl-ca-certfile", tls.ca_certfile, "--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile]
    return args + (["--enable-supernode-auth"] if node_auth else [])


def supernode_args(root_certificates: str | None, auth_private_key: str | None) -> list[str]:
    """``flower-supernode`` options: verify the SuperLink with the CA certificate (and sign with the site's
    key), else insecure."""
    if root_certificates is None:
        if auth_private_key:
            raise InputError(auth_private_key, "a SuperNode authenticates only over TLS (root_certificates)")
        return ["--insecure"]
    args = ["--root-certificates", existing_file(root_certificates, "root_certificates")]
    if auth_private_key:
        args += ["--auth-supernode-private-key", existing_file(auth_private_key, "auth_private_key")]
    return args


def public_key_file(private_key: str, out: Path) -> Path:
    """The OpenSSH public key of a site's private key (what the coordinator registers), written to ``out``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = existing_file(private_key, "auth_private_key")
    try:
        key = serialization.load_ssh_private_key(Path(path).read_bytes(), None)
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"not an unencrypted OpenSSH private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(path, "Flower authenticates SuperNodes with EC keys (NIST curve, e.g. P-384) only")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return out


def register_supernode(flwr: str, public_key: Path, connection: str, env: dict[str, str]) -> None:
    """``flwr supernode register`` of one site's public key; a key the SuperLink's database already holds
    (a restarted SuperLink, a resumed run) is fine."""
    res = subprocess.run([flwr, "supernode", "register", str(public_key), connection], capture_output=True,
                         text=True, errors="replace", env=env)
    text = res.stdout + res.stderr
    if res.returncode != 0 and "already" not in text.lower():
        last = [line for line in text.splitlines() if line.strip()][-1:] or [f"exit {res.returncode}"]
        raise MedGradeError(f"error: {public_key}: the SuperLink refused to register the SuperNode ({last[0].strip()})")
