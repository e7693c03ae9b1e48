"""Federated training, no Flower run: site checks (bad inputs refused naming the site), site folders per
institution, the strategy's sample-count weighting, the DP wrapper's recorded noise, FedProx's term."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("flwr")

from federated_helpers import COHORT, edited_site, fed_config, make_sites  # noqa: E402

from MedGradeCoreLib.errors import InputError  # noqa: E402


def _check(cfg_path):
    from MedGradeTrainLib.federated.config import load_federated_config
    from MedGradeTrainLib.federated.simulate import check_sites

    return check_sites(load_federated_config(cfg_path))


def test_site_folders_per_institution(tmp_path):
    cfgs = make_sites(tmp_path, per_site=2)
    assert [c.stem for c in cfgs] == ["CS", "DU", "HT"]
    for c in cfgs:
        rows = list(csv.DictReader(open(tmp_path / "sites" / c.stem / "clinical.csv")))
        assert len(rows) == 2 and {r["institution"] for r in rows} == {c.stem}
        assert all((tmp_path / "sites" / c.stem / r["case"]).resolve() == (COHORT / r["case"]).resolve() for r in rows)
    sites = _check(fed_config(tmp_path, cfgs))
    assert [s.name for s in sites] == ["CS", "DU", "HT"]


def test_bad_sites_are_refused_naming_the_site(tmp_path):
    good = make_sites(tmp_path, per_site=2, institutions=("DU", "HT"))
    no_t1c = edited_site(tmp_path, "NOT1C", lambda r: {**r, "t1c_available": "0"})
    with pytest.raises(InputError, match=r"site NOT1C: another sequence set: .*no t1c"):
        _check(fed_config(tmp_path, [*good, no_t1c], "a.json"))
    g4 = edited_site(tmp_path, "GRADES", lambda r: {**r, "grade": "G4"})
    with pytest.raises(InputError, match=r"site GRADES: another label set: grades G4"):
        _check(fed_config(tmp_path, [*good, g4], "b.json", labels={"grades": ["G2", "G3"]}))
    with pytest.raises(InputError, match=r"site DU: another label set: mask values"):
        _check(fed_config(tmp_path, good, "c.json", labels={"mask_values": [0, 1]}))
    empty = edited_site(tmp_path, "EMPTY", lambda r: r, per_site=0)
    with pytest.raises(InputError, match=r"site EMPTY: no patients"):
        _check(fed_config(tmp_path, [*good, empty], "d.json"))
    none = tmp_path / "NONE.json"
    none.write_text(json.dumps({"name": "NONE", "cohort": str(tmp_path / "sites" / "DU"), "patients": ["X"]}))
    with pytest.raises(InputError, match=r"site NONE: no cases"):
        _check(fed_config(tmp_path, [*good, none], "e.json"))
    # as a user sees it: one line naming the site, no traceback
    r = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "federated", "simulate",
                        str(fed_config(tmp_path, [*good, no_t1c], "f.json")), "--output", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "site NOT1C" in r.stderr


def test_config_refusals(tmp_path):
    from MedGradeTrainLib.federated.config import load_federated_config
    from MedGradeTrainLib.federated.coordinator_kinds import coordinator_kind

    sites = make_sites(tmp_path, per_site=1, institutions=("DU", "HT"))
    with pytest.raises(InputError, match="strategy.name must be one of FedAvg, FedProx, FedAdam"):
        load_federated_config(fed_config(tmp_path, sites, "a.json", strategy={"name": "FedSGD"}))
    with pytest.raises(InputError, match="privacy.dp.noise_multiplier must be a positive number"):
        load_federated_config(fed_config(tmp_path, sites, "b.json", privacy={"dp": {"clipping_norm": 1.0}}))
    run = json.loads((tmp_path / "run.json").read_text())
    run["kind"]["architecture"] = {"name": "MIGNet"}
    with pytest.raises(InputError, match="without the FPG atlas"):
        coordinator_kind(run, tmp_path / "x")


def _fit_results(arrays_and_counts):
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(a), n, {"site": f"S{i}", "train_samples": n,
                                                                           "train_loss": float(i)}))
            for i, (a, n) in enumerate(arrays_and_counts)]


def _fed(**extra):
    return {"min_sites": 2, "strategy": {"name": "FedAvg"}, "privacy": {"secagg": None, "dp": None}, **extra}


def test_strategy_weights_sites_by_sample_count():
    from flwr.common import parameters_to_ndarrays

    from MedGradeTrainLib.federated.server import aggregate_site_metrics, build_strategy

    zeros, ones = [np.zeros(4, np.float32)], [np.ones(4, np.float32)]
    for name in ("FedAvg", "FedProx"):
        st = build_strategy(_fed(strategy={"name": name}), zeros, None, aggregate_site_metrics)
        params, metrics = st.aggregate_fit(1, _fit_results([(zeros, 1), (ones, 3)]), [])
        assert np.allclose(parameters_to_ndarrays(params)[0], 0.75)
        assert metrics["train_samples"] == 4 and metrics["train_loss"] == pytest.approx(0.75)
    m = aggregate_site_metrics([(1, {"site": "S0", "train_samples": 1}), (3, {"site": "S1", "train_samples": 3})])
    assert m["weights"] == {"S0": 0.25, "S1": 0.75} and m["site_counts"]["S1"] == {"train_samples": 3}


def test_dp_wrapper_adds_the_recorded_noise():
    from flwr.common import parameters_to_ndarrays

    from MedGradeTrainLib.federated.privacy import privacy_record, wrap_strategy
    from MedGradeTrainLib.federated.server import aggregate_site_metrics, build_strategy

    fed = _fed(privacy={"secagg": None, "dp": {"noise_multiplier": 0.5, "clipping_norm": 2.0}})
    zeros = [np.zeros(20000, np.float32)]
    st = wrap_strategy(build_strategy(fed, zeros, None, aggregate_site_metrics), fed)
    rec = privacy_record(fed)["differential_privacy"]
    assert rec["noise_multiplier"] == 0.5 and rec["clipping_norm"] == 2.0 and rec["noise_std"] == 0.5
    st.configure_fit(1, parameters=__import__("flwr").common.ndarrays_to_parameters(zeros), client_manager=_Manager())
    params, _ = st.aggregate_fit(1, _fit_results([(zeros, 1), (zeros, 1)]), [])
    noisy = parameters_to_ndarrays(params)[0]
    assert noisy.std() == pytest.approx(rec["noise_std"], rel=0.05)  # plain FedAvg would give exactly 0


class _Manager:
    """Two fake clients for configure_fit (the DP wrapper keeps the round's parameters from it)."""

    def num_available(self):
        return 2

    def sample(self, num_clients, min_num_clients=None, criterion=None):
        return [None, None][:num_clients]

    def wait_for(self, n, timeout=0):
        return True


def test_fedprox_term_pulls_towards_the_global_model(tmp_path):
    import torch

    from MedGradeTrainLib.federated.client import site_kind

    class Base:
        name, metric, metric_mode, collate_fn, settings, run_dir = "toy", "val_loss", "min", None, {}, tmp_path

        def build_model(self, split):
            return torch.nn.Linear(2, 1)

        def training_step(self, model, batch, device):
            return {"loss": model.weight.sum() * 0.0}

    model = torch.nn.Linear(2, 1)
    kind = site_kind(Base(), model.state_dict(), proximal_mu=0.5)
    local = kind.build_model(None)
    assert float(kind.training_step(local, None, "cpu")["loss"]) == 0.0
    with torch.no_grad():
        local.weight += 2.0  # 2 weights moved by 2: ||d||^2 = 8
    assert float(kind.training_step(local, None, "cpu")["loss"]) == pytest.approx(0.25 * 8)
    plain = site_kind(Base(), model.state_dict(), proximal_mu=0.0)
    local2 = plain.build_model(None)
    with torch.no_grad():
        local2.weight += 2.0
    assert float(plain.training_step(local2, None, "cpu")["loss"]) == 0.0


def test_fedadam_state_survives_a_checkpoint(tmp_path):
    """FedAdam's moments go into the round checkpoint (runner format) and come back on resume."""
    from flwr.common import parameters_to_ndarrays

    from MedGradeTrainLib.federated.server import (aggregate_site_metrics, build_strategy, set_strategy_state,
                                                   strategy_state)
    from MedGradeTrainLib.runner import checkpoint as ckpt

    zeros, ones = [np.zeros(3, np.float32)], [np.ones(3, np.float32)]
    fed = _fed(strategy={"name": "FedAdam", "eta": 0.1})
    st = build_strategy(fed, zeros, None, aggregate_site_metrics)
    first, _ = st.aggregate_fit(1, _fit_results([(ones, 1), (ones, 1)]), [])
    state = strategy_state(st)
    assert sorted(state) == ["current_weights", "m_t", "v_t"]
    ckpt.save_verified({"strategy": state, "round": 1}, tmp_path / "step-000000001.pt")
    resumed = build_strategy(fed, zeros, None, aggregate_site_metrics)
    set_strategy_state(resumed, ckpt.latest_valid(tmp_path)["strategy"])
    a, _ = st.aggregate_fit(2, _fit_results([(ones, 1), (ones, 1)]), [])
    b, _ = resumed.aggregate_fit(2, _fit_results([(ones, 1), (ones, 1)]), [])
    fresh, _ = build_strategy(fed, zeros, None, aggregate_site_metrics).aggregate_fit(
        2, _fit_results([(ones, 1), (ones, 1)]), [])
    assert np.allclose(parameters_to_ndarrays(a)[0], parameters_to_ndarrays(b)[0])
    assert not np.allclose(parameters_to_ndarrays(a)[0], parameters_to_ndarrays(fresh)[0])
    assert not np.allclose(parameters_to_ndarrays(first)[0], 0.0)
