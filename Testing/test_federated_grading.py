"""The grading kind federated: each site trains the grading network on its own real TCGA-LGG patients through
the runner's step (the kind's slice data set, network and loss) and reports aggregates only (counts, loss,
slice AUC on its own validation patients); the coordinator averages it (Flower's simulation engine, two
rounds, two sites holding both grades). The bundle is a normal grading bundle (manifest: site counts, rounds,
strategy, privacy) that ``medgrade predict`` runs on a patient no site had. Refused at the start: the
LightGBM head (fitted on pooled features), a site whose patients lack the grade label or the sequences."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from federated_helpers import COHORT, REPO, edited_site, identifiers, make_sites  # noqa: E402

from MedGradeCoreLib.errors import InputError  # noqa: E402

MODEL = "tiny-grading-lgg"


def _configs(tmp: Path, head: str = "network", sites: list[Path] | None = None) -> Path:
    run = json.loads((REPO / "configs" / "tiny-grading.json").read_text())
    for key in ("patients", "cohort"):
        run["kind"].pop(key)
    run["kind"]["head"] = head
    run["train"].update(max_steps_per_epoch=2, checkpoint_every_steps=0, epochs=1)
    (tmp / f"run-{head}.json").write_text(json.dumps(run))
    # 4 patients a site, half of them validation (grade-stratified: HT validates on a G2 and a G3)
    sites = sites or make_sites(tmp, per_site=4, institutions=("DU", "HT"), val_fraction=0.5)
    fed = {"run": f"run-{head}.json", "sites": [str(s) for s in sites], "rounds": 2, "min_sites": 2,
           "labels": {"grades": ["G2", "G3"]}}
    path = tmp / f"fed-{head}.json"
    path.write_text(json.dumps(fed))
    return path


def test_lightgbm_head_is_refused(tmp_path):
    from MedGradeTrainLib.federated.config import load_federated_config
    from MedGradeTrainLib.federated.server import server_kind

    fed = load_federated_config(_configs(tmp_path, head="lightgbm"))
    with pytest.raises(InputError, match='federated grading trains the network only.*"head": "network"'):
        server_kind(fed["run"], tmp_path / "run")


def test_site_without_grades_or_sequences_is_refused_naming_it(tmp_path):
    from MedGradeTrainLib.federated.simulate import simulate

    good = make_sites(tmp_path, per_site=2, institutions=("DU",))[0]
    ungraded = edited_site(tmp_path, "NOGRADE", lambda r: {**r, "grade": ""})
    with pytest.raises(InputError, match="site NOGRADE: no grade label for 2 of 2 cases"):
        simulate(_configs(tmp_path, sites=[good, ungraded]), tmp_path / "sim")
    no_t1c = edited_site(tmp_path, "NOT1C", lambda r: {**r, "t1c_available": "0"})
    with pytest.raises(InputError, match="site NOT1C: another sequence set.*no t1c"):
        simulate(_configs(tmp_path, sites=[good, no_t1c]), tmp_path / "sim2")
    assert not (tmp_path / "sim").exists() and not (tmp_path / "sim2").exists()


def test_grading_network_federated_in_the_simulation_engine(tmp_path):
    from MedGradeCoreLib.cli import main as medgrade
    from MedGradePredictLib.model_bundle import load_grading_bundle
    from MedGradeTrainLib.federated.config import load_federated_config
    from MedGradeTrainLib.federated.server import server_kind
    from MedGradeTrainLib.federated.simulate import simulate
    from MedGradeTrainLib.runner.loop import seed_everything

    cfg = _configs(tmp_path)
    run = simulate(cfg, tmp_path / "sim", capture=True)
    bundle = run / "bundle" / MODEL
    manifest = json.loads((bundle / "manifest.json").read_text())
    fed = manifest["metrics"]["summary"]["federated"]
    assert fed["rounds_run"] == 2 and fed["sites"]["count"] == 2 and set(fed["sites"]["per_site"]) == {"DU", "HT"}
    assert all(set(v) <= {"cases", "train_patients", "val_patients", "train_samples", "val_samples"}
               for v in fed["sites"]["per_site"].values())
    assert fed["strategy"]["name"] == "FedAvg" and set(fed["privacy"]) == {"secure_aggregation", "differential_privacy"}
    last = fed["last_round_metrics"]
    assert math.isfinite(last["train_loss"]) and math.isfinite(last["val_loss"])
    assert 0.0 <= last["val_slice_auc"] <= 1.0 and last["val_patients"] == 4
    assert "federated: 2 sites, 2 rounds, FedAvg" in manifest["trained_on"]
    # only the network's parameters and aggregates reached the server
    replies = [json.loads(x) for x in (run / "federated" / "received.jsonl").read_text().splitlines()]
    model = load_grading_bundle(bundle, device="cpu")
    state = model.net.state_dict()
    assert len(replies) == 4 and all(len(r["arrays"]["fitres.parameters"]) == len(state) for r in replies)
    received = (run / "federated" / "received.bin").read_bytes().decode("latin-1")
    sites = sorted((tmp_path / "sites").glob("*.json"))
    assert not [i for i in identifiers(sites) if i in received]
    # the sites trained it: the averaged network is not the coordinator's initial one (same seed, same build)
    fcfg = load_federated_config(cfg)
    seed_everything(int(fcfg["seed"]))
    init = server_kind(fcfg["run"], tmp_path / "init").build().state_dict()
    assert set(init) == set(state) and max(float((state[k].float() - init[k].float()).abs().max()) for k in state
               if state[k].is_floating_point()) > 1e-6
    # a normal grading bundle: `medgrade predict` grades a patient no site had (the network decides)
    assert model.booster is None
    out = tmp_path / "pred"
    assert medgrade(["predict", str(COHORT / "TCGA_CS_4941_19960909"), "--model", str(bundle),
                     "--output", str(out), "--age", "67", "--sex", "M"]) == 0
    rows = list(csv.DictReader(open(out / "predictions.csv", newline="")))
    assert len(rows) == 1 and rows[0]["patient_id"].startswith("TCGA_CS_4941") and 0.0 <= float(rows[0]["probability"]) <= 1.0
