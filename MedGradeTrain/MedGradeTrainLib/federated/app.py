"""The Flower app: ``server_app`` (the coordinator) and ``client_app`` (a site), the same objects in a
deployment (SuperLink + SuperNodes, started by ``flwr run``) and in Flower's simulation engine.

Deployment: the run config (``flwr run --run-config``) names the federated config and the run folder on the
coordinator's machine; each SuperNode names its site config (``--node-config 'site-config="/path.json"'``).
Simulation: :func:`make_server_app` / :func:`make_client_app` close over the same values (the simulation's
virtual SuperNodes are the config's sites, in order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

APP_NAME = "medgrade-federated"
APP_CONFIG = {"config": "", "output": "", "resume": False, "capture": False}


def _log(message: str) -> None:
    from logging import INFO

    from flwr.supercore import log

    log(INFO, "medgrade: %s", message)


def make_server_app(values: dict[str, Any] | None = None):
    """A ServerApp running :class:`~.server.Coordinator`; ``values`` (simulation) replace the run config."""
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        from .config import load_federated_config
        from .server import Coordinator

        rc = {**APP_CONFIG, **dict(context.run_config), **(values or {})}
        fed = load_federated_config(rc["config"])
        Coordinator(fed, Path(str(rc["output"])), bool(rc["resume"]), bool(rc["capture"]), log=_log).run(grid, context)

    return app


def make_client_app(sites: list[Any] | None = None):
    """A ClientApp; its site is the SuperNode's ``site-config`` or (simulation) ``sites[partition-id]``."""
    from flwr.client import ClientApp

    from .privacy import SITE_MODS

    def client_fn(context):
        from .client import make_client

        nc = dict(context.node_config)
        spec = nc.get("site-config") or (sites[int(nc["partition-id"])] if sites else None)
        if not spec:
            raise RuntimeError("this SuperNode names no site (start it with --node-config "
                               "'site-config=\"/path/to/site.json\"')")
        return make_client(spec).to_client()

    return ClientApp(client_fn=client_fn, mods=list(SITE_MODS))


server_app = make_server_app()
client_app = make_client_app()


def write_app(folder: str | Path) -> Path:
    """The Flower app folder ``flwr run`` builds its FAB from: a pyproject.toml pointing at the installed
    MedGradeTrainLib (every machine has MedGrade installed; nothing is installed at run time)."""
    from flwr import __version__ as flwr_version

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = f'''[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{APP_NAME}"
version = "1.0.0"
description = "MedGrade federated training (the installed MedGradeTrainLib)"
license = "Apache-2.0"
dependencies = ["flwr>={flwr_version}"]

[tool.flwr.app]
publisher = "medgrade"

[tool.flwr.app.components]
serverapp = "MedGradeTrainLib.federated.app:server_app"
clientapp = "MedGradeTrainLib.federated.app:client_app"

[tool.flwr.app.config]
config = ""
output = ""
resume = false
capture = false
'''
    (folder / "pyproject.toml").write_text(text)
    return folder
