"""``medgrade train --launcher flower``: a federated run on Flower's own executables.

With ``--superlink HOST:PORT`` the run goes to a running SuperLink whose SuperNodes the hospitals started
(``flower-supernode --superlink HOST:PORT --node-config 'site-config="/their/site.json"'``): this machine
only writes the Flower app and calls ``flwr run``. Without it, everything runs on localhost: one
``flower-superlink`` and one ``flower-supernode`` per site of the config, on free ports, each SuperNode
with its own Flower home; their logs go to ``RUN/federated/logs``. The SuperLink keeps its state in
``RUN/federated/superlink.db``. ``medgrade federated resume RUN`` continues after the last finished round.
TLS and SuperNode authentication (:mod:`.security`): ``--ssl-ca-certfile/--ssl-certfile/--ssl-keyfile``
serve the localhost SuperLink over HTTPS, ``--root-certificates`` is the CA the ``flwr`` CLI and the
SuperNodes verify it with (a site config may name its own), ``--enable-supernode-auth`` registers each
site's public key (from its ``auth_private_key``) and lets only those SuperNodes in."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.jobs import kill_tree, process_group_options, signal_tree

from .security import LinkTls, Security, public_key_file, register_supernode, superlink_args, supernode_args

LAUNCH_FILE = "launch.json"
CONNECTION = "medgrade"


def flower_exe(name: str) -> str:
    """A Flower executable of this environment (beside the interpreter), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        raise MedGradeError(f"error: {name}: not installed (pip install 'medgrade[federated]')")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flower_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_UPDATE_CHECK="1",
               FLWR_SUPEREXEC_TASK_POLL_INTERVAL="0.2", PYTHONUNBUFFERED="1")
    return env


def _popen(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, **process_group_options())


def start_superlink(port: int, fdir: Path, tls: LinkTls | None = None, node_auth: bool = False) -> subprocess.Popen:
    """``flower-superlink`` on 127.0.0.1:port (one HTTP port: Fleet, Control and Runtime APIs; HTTPS with
    ``tls``, only registered SuperNodes with ``node_auth``), its state in ``superlink.db`` (a restarted
    SuperLink knows the run's nodes and their keys), no app installation at run time."""
    cmd = [flower_exe("flower-superlink"), *superlink_args(tls, node_auth), "--host", "127.0.0.1", "--port",
           str(port), "--database", str(fdir / "superlink.db"), "--disable-runtime-dependency-installation"]
    proc = _popen(cmd, fdir / "logs" / "superlink.log", flower_env(fdir / "flwr-home"))
    wait_port(port, proc, fdir / "logs" / "superlink.log")
    return proc


def start_supernode(site_config: str, superlink: str, fdir: Path, name: str, root_certificates: str | None = None,
                    auth_private_key: str | None = None, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """``flower-supernode`` for one site: its ``site-config`` node config, its own Runtime API port and home;
    over TLS with ``root_certificates`` (signing with ``auth_private_key``), else insecure."""
    home = fdir / "nodes" / name
    cmd = [flower_exe("flower-supernode"), *supernode_args(root_certificates, auth_private_key), "--superlink",
           superlink, "--port", str(free_port()), *extra,
           "--node-config", f"site-config={json.dumps(str(Path(site_config).resolve()))}"]
    return _popen(cmd, fdir / "logs" / f"supernode-{name}.log", flower_env(home))


def write_connection(home: Path, superlink: str, root_certificates: str | None) -> dict[str, str]:
    """The ``flwr`` CLI's connection ``medgrade`` to ``superlink`` (TLS verified with ``root_certificates``,
    else insecure) in ``home/config.toml``; returns the CLI's environment."""
    home.mkdir(parents=True, exist_ok=True)
    conn = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
            f"address = {json.dumps(superlink)}"]
    conn.append(f"root-certificates = {json.dumps(root_certificates)}" if root_certificates else "insecure = true")
    (home / "config.toml").write_text("\n".join(conn) + "\n")
    return flower_env(home)


def wait_port(port: int, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 60.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise MedGradeError(f"error: {log}: the Flower process exited ({proc.returncode}) before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise MedGradeError(f"error: {log}: nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def stop(proc: subprocess.Popen | None, force: bool = False, grace_s: float = 10.0) -> None:
    """End a Flower process and what it started (its ClientApp/ServerApp processes) through the core's
    portable process-tree kill: terminate, then kill after ``grace_s``; ``force``: kill at once (a machine
    that goes away)."""
    if proc is None or proc.poll() is not None:
        return
    if force:
        signal_tree(proc.pid, force=True)
        proc.wait()
    else:
        kill_tree(proc, grace_s)


def flwr_run(run_dir: Path, config: Path, superlink: str, resume: bool, capture: bool,
             root_certificates: str | None = None) -> int:
    """``flwr run`` of the app (written into ``RUN/federated/app``) against ``superlink``; streams its log."""
    from .app import write_app

    fdir = run_dir / "federated"
    app = write_app(fdir / "app")
    env = write_connection(fdir / "flwr-home", superlink, root_certificates)
    values = (f"config={json.dumps(str(config))} output={json.dumps(str(run_dir))} "
              f"resume={'true' if resume else 'false'} capture={'true' if capture else 'false'}")
    cmd = [flower_exe("flwr"), "run", str(app), CONNECTION, "--run-config", values, "--stream"]
    with open(fdir / "logs" / "server.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                **process_group_options())
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            sys.stdout.write(line.decode(errors="replace"))
        return proc.wait()


def launch(config: str | Path, run_dir: str | Path, superlink: str | None = None, resume: bool = False,
           capture: bool = False, security: Security | None = None) -> Path:
    """A federated run (see the module docstring); returns the bundle folder."""
    from .config import load_federated_config
    from .simulate import check_sites

    security = security or Security()
    run_dir = Path(run_dir).resolve()
    fdir = run_dir / "federated"
    config = Path(config).resolve()
    fed = load_federated_config(config)
    if not resume and (fdir / "checkpoints").is_dir():
        raise InputError(run_dir, "already holds a federated run; resume it ('medgrade federated resume') or "
                                  "choose another --output folder")
    if superlink is not None and (security.tls or security.node_auth):
        raise InputError(superlink, "a running SuperLink has its own TLS and authentication settings; give the "
                                    "flwr CLI only its CA certificate (--root-certificates)")
    superlink_args(security.tls, security.node_auth)  # refuses authentication without TLS before anything starts
    sites = check_sites(fed) if superlink is None else []
    keyless = [s for s in sites if not s.auth_private_key]
    if security.node_auth and keyless:
        raise InputError(keyless[0].source, f"site {keyless[0].name}: SuperNode authentication needs the site's "
                                            "auth_private_key")
    (fdir / "logs").mkdir(parents=True, exist_ok=True)
    (fdir / LAUNCH_FILE).write_text(json.dumps({"config": str(config), "superlink": superlink, "capture": capture,
                                                "security": security.record()}, indent=1))
    procs: list[subprocess.Popen] = []
    try:
        address = superlink
        if superlink is None:
            port = free_port()
            procs.append(start_superlink(port, fdir, security.tls, security.node_auth))
            address = f"127.0.0.1:{port}"
            env = write_connection(fdir / "flwr-home", address, security.ca)
            for site, spec in zip(sites, fed["sites"]):
                if security.node_auth:  # the coordinator registers each site's public key first
                    pub = public_key_file(str(site.auth_private_key), fdir / "keys" / f"{site.name}.pub")
                    register_supernode(flower_exe("flwr"), pub, CONNECTION, env)
                procs.append(start_supernode(spec if isinstance(spec, str) else _write_site(fdir, spec), address,
                                             fdir, site.name, site.root_certificates or security.ca,
                                             site.auth_private_key if security.node_auth else None))
        json_rec = json.loads((fdir / LAUNCH_FILE).read_text())
        json_rec.update(address=address, pids=[p.pid for p in procs])
        (fdir / LAUNCH_FILE).write_text(json.dumps(json_rec, indent=1))
        rc = flwr_run(run_dir, config, str(address), resume, capture, security.ca)
    finally:
        for p in reversed(procs):
            stop(p)
    summary = run_dir / "summary.json"
    if rc != 0 or not summary.is_file():
        raise MedGradeError(f"error: {run_dir}: the federated run stopped before its last round (flwr run exited "
                            f"{rc}); see {fdir / 'logs'}; continue it with 'medgrade federated resume {run_dir}'")
    return Path(json.loads(summary.read_text())["bundle"] or run_dir)


def _write_site(fdir: Path, spec: dict[str, Any]) -> str:
    path = fdir / "sites" / f"{spec['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1))
    return str(path)


def resume(run_dir: str | Path, superlink: str | None = None) -> Path:
    """Continue a federated run after its last finished round, launched as it was first (same certificates)."""
    fdir = Path(run_dir) / "federated"
    rec_path = fdir / LAUNCH_FILE
    if not rec_path.is_file():
        raise InputError(run_dir, "not a federated run folder (no federated/launch.json)")
    rec = json.loads(rec_path.read_text())
    return launch(rec["config"], run_dir, superlink or rec.get("superlink"), resume=True,
                  capture=bool(rec.get("capture")), security=Security.from_record(rec.get("security")))


def launch_from_args(args, resume_run: bool = False) -> int:
    """``medgrade train --launcher flower`` (and ``resume --launcher flower``)."""
    if resume_run:
        bundle = resume(args.output, getattr(args, "superlink", None))
    else:
        bundle = launch(args.config, args.output, getattr(args, "superlink", None),
                        security=Security.from_args(args))
    print(json.dumps({"run_dir": str(Path(args.output).resolve()), "bundle": str(bundle)}), file=sys.stderr)
    return 0
