"""The coordinator's side of a federated run (runs inside Flower's ServerApp).

Flower's strategies aggregate (FedAvg by default, FedProx, FedAdam; weighted by each site's training
sample count), Flower's workflows run a round (the default fit workflow, or SecAgg+'s). Around them this
module adds what MedGrade's runner gives every run: the initial model built from the config and its seed,
a verified checkpoint after every finished round (runner checkpoint format: ``federated/checkpoints/
step-<round>.pt``), resume from the last finished round, one JSON line per round (wall time, bytes per
site, sites that replied / were dropped after the round time-out, aggregated site metrics) and, at the end,
a normal MedGrade bundle whose manifest records the federation (site counts, rounds, strategy, privacy)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from MedGradeCoreLib.errors import InputError

from ..runner import checkpoint as ckpt
from .config import model_settings
from .wire import WatchedGrid

FED_DIR = "federated"
NUMERIC_SUMS = ("train_patients", "val_patients", "train_samples")


def server_kind(run_cfg: dict[str, Any], run_dir: Path):
    """The run's model kind without any data: builds the initial model and writes the bundle."""
    from .coordinator_kinds import coordinator_kind

    return coordinator_kind(model_settings(run_cfg), run_dir)


def state_to_arrays(state: dict[str, Any]) -> list[np.ndarray]:
    return [v.detach().cpu().numpy() for v in state.values()]


def arrays_to_state(template: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    import torch

    if len(arrays) != len(template):
        raise InputError(None, f"the aggregated model has {len(arrays)} arrays, the model {len(template)}")
    return {k: torch.from_numpy(np.asarray(a)).to(v.dtype).reshape(v.shape) for (k, v), a in zip(template.items(), arrays)}


def aggregate_site_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Site metrics -> the round's: counts summed, means weighted by training samples, sites counted."""
    out: dict[str, Any] = {"sites": len(results)}
    total = sum(n for n, _ in results) or 1
    keys = sorted({k for _, m in results for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    for k in keys:
        vals = [(n, float(m[k])) for n, m in results if isinstance(m.get(k), (int, float)) and np.isfinite(m[k])]
        if k in NUMERIC_SUMS:
            out[k] = int(sum(v for _, v in vals))
        elif vals:
            out[k] = sum(n * v for n, v in vals) / max(sum(n for n, _ in vals), 1)
    out["site_counts"] = {str(m.get("site", f"site{i}")): {k: int(m[k]) for k in NUMERIC_SUMS if k in m}
                          for i, (_, m) in enumerate(results)}
    out["weights"] = {str(m.get("site", f"site{i}")): round(n / total, 6) for i, (n, m) in enumerate(results)}
    return out


def build_strategy(fed: dict[str, Any], initial: list[np.ndarray], fit_config, metrics_fn):
    """Flower's FedAvg / FedProx / FedAdam with the run's settings (weights: each site's sample count)."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server import strategy as fs

    st = dict(fed["strategy"])
    name = st.pop("name")
    common = dict(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=fed["min_sites"],
                  min_available_clients=fed["min_sites"], min_evaluate_clients=0,
                  initial_parameters=ndarrays_to_parameters(initial), on_fit_config_fn=fit_config,
                  fit_metrics_aggregation_fn=metrics_fn, accept_failures=True)
    if name == "FedProx":
        return fs.FedProx(proximal_mu=float(st.get("proximal_mu", 0.01)), **common)
    if name == "FedAdam":
        return fs.FedAdam(**common, **{k: float(v) for k, v in st.items()})
    return fs.FedAvg(**common)


def _inner(strategy):
    return getattr(strategy, "strategy", strategy)  # a DP wrapper holds the aggregating strategy


def strategy_state(strategy) -> dict[str, Any]:
    """FedAdam's moments and current weights (empty for FedAvg/FedProx), storable with ``weights_only``."""
    import torch

    s = _inner(strategy)
    out = {}
    for key in ("m_t", "v_t", "current_weights"):
        val = getattr(s, key, None)
        if val is not None and key in vars(s):
            out[key] = [torch.from_numpy(np.array(a)) for a in val]
    return out


def set_strategy_state(strategy, state: dict[str, Any]) -> None:
    s = _inner(strategy)
    for key, val in state.items():
        setattr(s, key, [t.numpy() for t in val])


class Coordinator:
    """One federated run's server side: rounds, checkpoints, the final bundle."""

    def __init__(self, fed: dict[str, Any], run_dir: str | Path, resume: bool = False, capture: bool = False,
                 log=print):
        self.fed, self.run_dir, self.resume, self.capture, self._log = fed, Path(run_dir), resume, capture, log
        self.fdir = self.run_dir / FED_DIR
        self.cdir = self.fdir / "checkpoints"
        self.last_metrics: dict[str, Any] = {}

    def log(self, message: str) -> None:
        """To Flower's log (streamed by ``flwr run``) and to ``federated/logs/coordinator.log`` at once (a
        SuperLink killed mid-run cuts the stream, never the file)."""
        self._log(message)
        (self.fdir / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.fdir / "logs" / "coordinator.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def fit_config(self, server_round: int) -> dict[str, Any]:
        """What every site gets with the global model: the model/training settings, the round, the seeds."""
        return {"round": int(server_round), "seed": int(self.fed["seed"]),
                "local_epochs": int(self.fed["local_epochs"]), "run": json.dumps(model_settings(self.fed["run"])),
                "labels": json.dumps(self.fed["labels"] or {})}

    def metrics_fn(self, results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        self.last_metrics = aggregate_site_metrics(results)
        return {k: v for k, v in self.last_metrics.items() if isinstance(v, (int, float))}

    def _record(self, rec: dict[str, Any]) -> None:
        path = self.fdir / "rounds.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
        rows = [r for r in rows if r["round"] < rec["round"]] + [rec]
        ckpt.atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))

    def run(self, grid, context) -> Path | None:
        from flwr.common import ConfigRecord, ndarrays_to_parameters, parameters_to_ndarrays
        import flwr.compat.common.recorddict_compat as compat
        from flwr.server import LegacyContext, ServerConfig
        from flwr.server.compat.app_utils import start_update_client_manager_thread
        from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

        from ..runner.loop import seed_everything
        from .privacy import fit_workflow, privacy_record, wrap_strategy

        fed = self.fed
        self.fdir.mkdir(parents=True, exist_ok=True)
        seed_everything(int(fed["seed"]))
        kind = server_kind(fed["run"], self.run_dir)
        model = kind.build()
        template = model.state_dict()
        arrays, start, strat_state = state_to_arrays(template), 1, {}
        state = ckpt.latest_valid(self.cdir, warn=self.log) if self.resume else None
        if state is not None:
            arrays = state_to_arrays(state["model"])
            start, strat_state = int(state["round"]) + 1, state.get("strategy") or {}
            self.log(f"resuming after round {state['round']} (checkpoint {Path(state['_path']).name})")
        elif self.resume:
            self.log("no finished round to resume from; starting at round 1")
        strategy = wrap_strategy(build_strategy(fed, arrays, self.fit_config, self.metrics_fn), fed)
        set_strategy_state(strategy, strat_state)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=fed["rounds"]), strategy=strategy)
        watched = WatchedGrid(grid, float(fed["round_timeout_s"]), self.fdir / "received.bin" if self.capture else None)
        thread, f_stop, c_done = start_update_client_manager_thread(watched, legacy.client_manager)
        c_done.wait()
        workflow = fit_workflow(fed)
        legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters(arrays), keep_input=True)
        cfg = ConfigRecord()
        cfg[Key.START_TIME] = time.time()
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = cfg
        try:
            for rnd in range(start, fed["rounds"] + 1):
                cfg[Key.CURRENT_ROUND] = rnd
                self.last_metrics = {}
                watched.begin_round()
                t0 = time.perf_counter()
                workflow(watched, legacy)
                seconds = time.perf_counter() - t0
                params = compat.arrayrecord_to_parameters(legacy.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
                # back to the model's dtypes (SecAgg+ de-quantises to float64): what the next round sends
                arrays = [np.asarray(a, dtype=t.numpy().dtype) for a, t in zip(parameters_to_ndarrays(params),
                                                                               template.values())]
                legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
                    ndarrays_to_parameters(arrays), keep_input=True)
                traffic = watched.round_summary()
                rec = {"round": rnd, "seconds": round(seconds, 3), **traffic, "metrics": self.last_metrics}
                for node in traffic["dropped"]:
                    self.log(f"round {rnd}: {node} sent no reply (unavailable or past the {fed['round_timeout_s']} s "
                             "time-out); dropped from the round")
                for reason in traffic["errors"]:
                    self.log(f"round {rnd}: a site failed: {reason}")
                if traffic["replied"] == 0:
                    raise InputError(self.run_dir, f"round {rnd}: no site replied (the model was not updated)")
                ckpt.save_verified({"model": arrays_to_state(template, arrays), "round": rnd,
                                    "strategy": strategy_state(strategy), "rng": ckpt.rng_state(),
                                    "record": json.dumps(rec, default=str)},
                                   self.cdir / f"step-{rnd:09d}.pt")
                ckpt.prune(self.cdir, 2)
                self._record(rec)
                self.log(f"round {rnd}/{fed['rounds']} done in {seconds:.1f} s: {traffic['replied']} site(s), "
                         f"metrics {json.dumps({k: v for k, v in self.last_metrics.items() if isinstance(v, float)})}")
        finally:
            f_stop.set()
            thread.join()
        model.load_state_dict(arrays_to_state(template, arrays))
        return self.write_bundle(kind, model, privacy_record(fed))

    def write_bundle(self, kind, model, privacy: dict[str, Any]) -> Path | None:
        path = self.fdir / "rounds.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
        last = rows[-1]["metrics"] if rows else {}
        counts = {}
        for r in rows:  # the newest count each site reported
            counts.update((r.get("metrics") or {}).get("site_counts") or {})
        fed = self.fed
        record = {"strategy": fed["strategy"], "rounds": fed["rounds"], "rounds_run": len(rows),
                  "local_epochs": fed["local_epochs"], "min_sites": fed["min_sites"], "seed": fed["seed"],
                  "round_timeout_s": fed["round_timeout_s"], "privacy": privacy,
                  "sites": {"count": len(counts) or (rows[-1]["replied"] if rows else 0), "per_site": counts},
                  "dropped": [{"round": r["round"], "nodes": r["dropped"]} for r in rows if r["dropped"]],
                  "last_round_metrics": {k: v for k, v in last.items() if isinstance(v, (int, float))},
                  "engine": f"flwr {__import__('flwr').__version__}"}
        summary = {"federated": record, "metric": last.get("val_dsc"), "kind": kind.name}
        tmp = self.run_dir / "bundle.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        written = kind.write_federated_bundle(model, tmp, summary)
        final = self.run_dir / "bundle"
        shutil.rmtree(final, ignore_errors=True)
        if written is None:  # the config names no model_id: no bundle asked for
            shutil.rmtree(tmp, ignore_errors=True)
            bundle = None
        else:
            tmp.rename(final)
            bundle = final / Path(written).relative_to(tmp)
        ckpt.atomic_write_text(self.run_dir / "summary.json", json.dumps({**summary, "bundle": str(bundle)},
                                                                         indent=1, default=str))
        self.log(f"bundle written: {bundle}")
        return bundle
