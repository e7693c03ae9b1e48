"""Small federated set-ups on real glioma-lgg-tcga cases: site folders (links) and configs in a tmp folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COHORT = REPO.parent / "shared" / "data" / "glioma-lgg-tcga"
SITES = ("CS", "DU", "HT")


def make_sites(tmp: Path, per_site: int = 2, institutions=SITES, val_fraction: float = 0.0) -> list[Path]:
    from MedGradeTrainLib.federated.sites import split_by_institution

    cfgs = split_by_institution(COHORT, tmp / "sites", per_site, list(institutions))
    for c in cfgs:
        data = json.loads(c.read_text())
        data.update(val_fraction=val_fraction, threads=1)
        c.write_text(json.dumps(data))
    return cfgs


def run_config(tmp: Path, **train) -> Path:
    """configs/tiny-segmentation.json with the data settings of the coordinator removed and a short round."""
    run = json.loads((REPO / "configs" / "tiny-segmentation.json").read_text())
    run["kind"].pop("patients")
    run["kind"].pop("cohort")
    run["train"].update({"max_steps_per_epoch": 2, "checkpoint_every_steps": 0, **train})
    path = tmp / "run.json"
    path.write_text(json.dumps(run))
    return path


def fed_config(tmp: Path, sites: list[Path], name: str = "fed.json", **extra) -> Path:
    cfg = {"run": str(run_config(tmp)), "sites": [str(s) for s in sites], "rounds": 2, "min_sites": 2,
           "round_timeout_s": 600, **extra}
    path = tmp / name
    path.write_text(json.dumps(cfg))
    return path


def edited_site(tmp: Path, name: str, edit, institution: str = "CS", per_site: int = 2) -> Path:
    """A site folder of real cases whose clinical.csv rows pass through ``edit(row)`` first."""
    src = list(csv.DictReader(open(COHORT / "clinical.csv", newline="")))
    rows = [r for r in src if r["institution"] == institution][:per_site]
    folder = tmp / name
    folder.mkdir(parents=True)
    for r in rows:
        os.symlink(COHORT / r["case"], folder / r["case"], target_is_directory=True)
    with open(folder / "clinical.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(src[0]))
        w.writeheader()
        w.writerows(edit(dict(r)) for r in rows)
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps({"name": name, "cohort": str(folder)}))
    return cfg


def identifiers(sites: list[Path]) -> list[str]:
    """Every patient id, case folder name, image file name and cohort path of the sites."""
    out = [".nii", "clinical.csv"]
    for s in sites:
        cohort = Path(json.loads(s.read_text())["cohort"])
        cohort = cohort if cohort.is_absolute() else (s.parent / cohort)
        out.append(str(cohort.resolve()))
        for r in csv.DictReader(open(cohort / "clinical.csv", newline="")):
            out += [r["patient_id"], r["case"]]
    return out


def make_tls(tmp: Path, sites: list[str] = ()) -> dict[str, Path]:
    """Test certificates made with ``cryptography``: a CA, a SuperLink certificate for 127.0.0.1/localhost
    signed by it, and one SuperNode authentication key per site (EC P-384, OpenSSH format, as Flower wants)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out = tmp / "tls"
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key, issuer_name, issuer_key, ca: bool):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key, server_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MedGrade test CA")])
    ca = cert("MedGrade test CA", ca_key, ca_name, ca_key, True)
    server = cert("127.0.0.1", server_key, ca_name, ca_key, False)
    files = {"ca": out / "ca.crt", "cert": out / "server.pem", "key": out / "server.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(pem_key(server_key))
    for site in sites:
        key = ec.generate_private_key(ec.SECP384R1())
        files[site] = out / f"{site}.key"
        files[site].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                  serialization.NoEncryption()))
    return files
