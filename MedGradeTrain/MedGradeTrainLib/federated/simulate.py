"""``medgrade federated simulate``: the same Flower app in Flower's simulation engine (Ray backend), one
virtual SuperNode per site of the config, on this machine: for tests and for planning a federation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError


def check_sites(fed: dict[str, Any]) -> list[Any]:
    """Every site of the config, checked against the run before anything starts (the error names the site)."""
    from .sites import check_site, load_site

    if not fed["sites"]:
        raise InputError(None, "the federated config lists no sites")
    sites = [load_site(s, source=f"sites[{i}]") for i, s in enumerate(fed["sites"])]
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        raise InputError(None, f"site names must differ (got {', '.join(names)})")
    for s in sites:
        check_site(s, fed["run"]["kind"], fed["labels"])
    if len(sites) < fed["min_sites"]:
        raise InputError(None, f"min_sites is {fed['min_sites']} but the config lists {len(sites)} site(s)")
    return sites


def simulate(config: str | Path, output: str | Path, resume: bool = False, capture: bool = False,
             cpus: int | None = None) -> Path:
    """Run the federated config in the simulation engine; returns the run folder."""
    from flwr.simulation import run_simulation

    from .app import make_client_app, make_server_app
    from .config import load_federated_config

    fed = load_federated_config(config)
    check_sites(fed)
    out = Path(output).resolve()
    if not resume and (out / "federated" / "checkpoints").is_dir():
        raise InputError(out, "already holds a federated run; resume it or choose another --output folder")
    out.mkdir(parents=True, exist_ok=True)
    n = len(fed["sites"])
    cpus = int(cpus or min(n, os.cpu_count() or 1))
    values = {"config": str(Path(config).resolve()), "output": str(out), "resume": resume, "capture": capture}
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    run_simulation(make_server_app(values), make_client_app(list(fed["sites"])), num_supernodes=n,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": cpus, "include_dashboard": False,
                                                 "logging_level": "ERROR", "log_to_driver": True}})
    if not (out / "summary.json").is_file():
        raise InputError(out, "the simulation ended without finishing the run (see the log above)")
    return out
