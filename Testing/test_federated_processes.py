"""Federated deployment, no Flower run: the Flower processes are started and ended through the core's
portable process layer (MedGradeCoreLib.jobs), never by federated/ itself."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FEDERATED = REPO / "MedGradeTrain" / "MedGradeTrainLib" / "federated"
# a "Flower process" that starts a worker of its own (as a SuperNode starts its ClientApp processes)
PARENT = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
          " print(c.pid, flush=True); time.sleep(120)")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_federated_code_leaves_process_groups_and_signals_to_the_core():
    pattern = re.compile(r"\bos\.(killpg|setsid|kill|setpgrp|getpgid)\b|preexec_fn|start_new_session|"
                         r"^\s*(import signal|from signal import)|\bsignal\.")
    hits = [f"{p.name}:{i}" for p in sorted(FEDERATED.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits


@pytest.mark.skipif(sys.platform == "win32" or not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("force", [False, True])
def test_stop_ends_the_flower_process_and_its_workers(tmp_path, force):
    from MedGradeTrainLib.federated import deploy

    log = tmp_path / "logs" / "node.log"
    proc = deploy._popen([sys.executable, "-c", PARENT], log, deploy.flower_env(tmp_path / "home"))
    try:
        t0 = time.time()
        while not log.read_text().strip() and time.time() - t0 < 30:
            time.sleep(0.05)
        child = int(log.read_text().split()[0])
        assert _alive(child)
        deploy.stop(proc, force=force, grace_s=5)
        assert proc.poll() is not None
        t0 = time.time()
        while _alive(child) and time.time() - t0 < 10:
            time.sleep(0.05)
        assert not _alive(child), "the Flower process's worker outlived it"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_tls_and_node_auth_options_are_checked_before_anything_starts(tmp_path):
    from types import SimpleNamespace

    from federated_helpers import fed_config, make_sites, make_tls

    from MedGradeCoreLib.errors import InputError
    from MedGradeTrainLib.federated import deploy, security

    tls = make_tls(tmp_path, ["CS"])
    with pytest.raises(InputError, match="missing: --ssl-keyfile"):
        security.Security.from_args(SimpleNamespace(ssl_ca_certfile=str(tls["ca"]), ssl_certfile=str(tls["cert"])))
    with pytest.raises(InputError, match="nope.crt: --root-certificates: no such file"):
        security.Security.from_args(SimpleNamespace(root_certificates=str(tmp_path / "nope.crt")))
    sec = security.Security.from_args(SimpleNamespace(ssl_ca_certfile=str(tls["ca"]), ssl_certfile=str(tls["cert"]),
                                                      ssl_keyfile=str(tls["key"]), enable_supernode_auth=True))
    assert sec.ca == str(tls["ca"].resolve()) and security.Security.from_record(sec.record()) == sec
    assert security.superlink_args(sec.tls, True)[-1] == "--enable-supernode-auth"
    assert security.superlink_args(None, False) == ["--insecure"] == security.supernode_args(None, None)
    with pytest.raises(InputError, match="needs a TLS SuperLink"):
        security.superlink_args(None, True)
    with pytest.raises(InputError, match="only over TLS"):
        security.supernode_args(None, str(tls["CS"]))
    # node authentication: a site without its key is refused by name before a Flower process starts
    sites = make_sites(tmp_path, per_site=1, institutions=("CS", "DU"))
    with pytest.raises(InputError, match="site CS: SuperNode authentication needs the site's auth_private_key"):
        deploy.launch(fed_config(tmp_path, sites), tmp_path / "run", security=sec)
    assert not (tmp_path / "run" / "federated" / "logs").exists()
    with pytest.raises(InputError, match="own TLS and authentication settings"):
        deploy.launch(fed_config(tmp_path, sites), tmp_path / "run", superlink="127.0.0.1:9", security=sec)


def test_the_registered_public_key_is_the_one_flower_reads(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    from federated_helpers import make_tls

    from MedGradeCoreLib.errors import InputError
    from MedGradeTrainLib.federated.security import public_key_file

    key = make_tls(tmp_path, ["CS"])["CS"]
    pub = public_key_file(str(key), tmp_path / "keys" / "CS.pub")
    private = serialization.load_ssh_private_key(key.read_bytes(), None)
    assert try_load_public_key(pub) == public_key_to_bytes(private.public_key())  # what the SuperNode signs with
    with pytest.raises(InputError, match="not an unencrypted OpenSSH private key"):
        public_key_file(str(make_tls(tmp_path / "b")["key"]), tmp_path / "x.pub")  # a PEM TLS key


def test_node_auth_without_tls_is_refused_first(tmp_path):
    from federated_helpers import fed_config, make_sites

    from MedGradeCoreLib.errors import InputError
    from MedGradeTrainLib.federated import deploy, security

    sites = make_sites(tmp_path, per_site=1, institutions=("CS", "DU"))
    with pytest.raises(InputError, match="SuperNode authentication needs a TLS SuperLink"):
        deploy.launch(fed_config(tmp_path, sites), tmp_path / "run", security=security.Security(node_auth=True))
