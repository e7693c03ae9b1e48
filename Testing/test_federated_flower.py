"""Federated runs on Flower itself, on localhost: a deployment (one ``flower-superlink``, three
``flower-supernode`` processes, ``flwr run``) on real TCGA-LGG cases of three institutions, two rounds, a
tiny config, over TLS with SuperNode authentication (test certificates and keys made with
``cryptography``); the same app in Flower's simulation engine; a SuperNode killed mid-round and the
SuperLink killed after round 1, then resumed, while an insecure and an unregistered SuperNode are refused;
SecAgg+ and DP changing what the server sees.

Slow: every Flower ClientApp is a fresh process (torch and the kind import in each), and the SuperLink
needs up to a minute (its heartbeat) to declare a killed SuperNode unavailable."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from federated_helpers import COHORT, SITES, fed_config, identifiers, make_sites, make_tls  # noqa: E402

pytestmark = pytest.mark.slow

MODEL = "tiny-segmentation-lgg"


def _weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "bundle" / MODEL / "weights.safetensors"))


def _rounds(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "federated" / "rounds.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fed")
    sites = make_sites(tmp, per_site=2)
    tls = make_tls(tmp, SITES)
    for s in sites:  # each hospital's SuperNode key (used only where the SuperNode starts, never sent)
        s.write_text(json.dumps({**json.loads(s.read_text()), "auth_private_key": str(tls[s.stem])}))
    return tmp, sites, fed_config(tmp, sites, min_sites=3), tls


def _link_tls(tls):
    from MedGradeTrainLib.federated.security import LinkTls

    return LinkTls(str(tls["ca"]), str(tls["cert"]), str(tls["key"]))


@pytest.fixture(scope="module")
def simulated(setup):
    from MedGradeTrainLib.federated.simulate import simulate

    tmp, _, cfg, _ = setup
    return simulate(cfg, tmp / "sim", capture=True)


def test_deployment_three_supernodes_only_parameters_cross(setup, simulated):
    import SimpleITK as sitk

    from MedGradeCoreLib.io.lgg_tcga import SEQUENCE_FILES
    from MedGradeSegmentLib.segmentation.model_bundle import load_segmentation_model, segment_with_model
    from MedGradeTrainLib.federated.deploy import launch
    from MedGradeTrainLib.federated.security import Security

    tmp, sites, cfg, tls = setup
    run = tmp / "deploy"
    bundle = launch(cfg, run, capture=True, security=Security(_link_tls(tls), node_auth=True))
    assert bundle == run / "bundle" / MODEL
    logs = run / "federated" / "logs"
    assert (logs / "superlink.log").is_file() and len(list(logs.glob("supernode-*.log"))) == 3
    # HTTPS with the test CA, and only the three registered SuperNodes
    assert "insecure" not in (run / "federated" / "flwr-home" / "config.toml").read_text()
    assert sorted(p.name for p in (run / "federated" / "keys").iterdir()) == ["CS.pub", "DU.pub", "HT.pub"]
    # the bundle loads and segments a patient no site trained on
    loaded = load_segmentation_model(bundle)
    folder = COHORT / "TCGA_CS_4943_20000902"
    images = {s: sitk.ReadImage(str(folder / SEQUENCE_FILES[s])) for s in ("flair", "t1c")}
    mask = segment_with_model(loaded, images, "flair").mask
    assert mask.GetSize() == images["flair"].GetSize()
    fed = json.loads((bundle / "manifest.json").read_text())["metrics"]["summary"]["federated"]
    assert fed["rounds_run"] == 2 and fed["strategy"]["name"] == "FedAvg" and fed["sites"]["count"] == 3
    assert fed["sites"]["per_site"]["HT"]["train_patients"] == 2
    assert fed["privacy"] == {"secure_aggregation": None, "differential_privacy": None}
    # what the server logged and received: parameters and aggregates, no file name, no patient id
    received = (run / "federated" / "received.bin").read_bytes()
    texts = {"server log": (logs / "server.log").read_text(errors="replace"),
             "superlink log": (logs / "superlink.log").read_text(errors="replace"),
             "capture": received.decode("latin-1"), "rounds": (run / "federated" / "rounds.jsonl").read_text()}
    for ident in identifiers(sites):
        for name, text in texts.items():
            assert ident not in text, f"{ident!r} reached the server ({name})"
    replies = [json.loads(x) for x in (run / "federated" / "received.jsonl").read_text().splitlines()]
    assert len(replies) == 6  # 3 sites x 2 rounds
    weights = _weights(run)
    for r in replies:  # one serialized array per model tensor (the legacy NumPy format), nothing else
        sizes = r["arrays"]["fitres.parameters"]
        assert len(sizes) == len(weights) and sum(sizes) >= sum(v.nbytes for v in weights.values())
        assert set(r["configs"]["fitres.metrics"]) <= {"site", "train_loss", "train_patients", "train_samples",
                                                        "val_patients", "val_dsc", "val_hd95_mm"}
    rounds = _rounds(run)
    assert [r["round"] for r in rounds] == [1, 2] and all(r["replied"] == 3 and not r["dropped"] for r in rounds)
    assert all(len(r["bytes_received"]) == 3 and min(r["bytes_received"].values()) > 10_000 for r in rounds)
    # the simulation engine gives the same model for the same seeds, within numerical noise: the two engines'
    # client processes may run torch on different thread counts (reduction order), measured up to 2.4e-4 after
    # two rounds on a quiet 2-core machine (3e-8 under load); another seed changes the initial weights by the
    # initialisation's scale (~0.1)
    a, b = _weights(run), _weights(simulated)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-3
    assert _rounds(simulated)[-1]["metrics"]["train_loss"] == pytest.approx(rounds[-1]["metrics"]["train_loss"],
                                                                            rel=1e-3)


def _wait(predicate, timeout: float, what: str) -> None:
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_killed_supernode_and_superlink_then_resume(setup):
    from MedGradeCoreLib.errors import MedGradeError
    from MedGradeTrainLib.federated import deploy
    from MedGradeTrainLib.federated.security import Security, public_key_file, register_supernode

    tmp, sites, _, tls = setup
    cfg = fed_config(tmp, sites, "fed-kill.json", min_sites=2)
    run, link = tmp / "killed", tmp / "link"
    (link / "logs").mkdir(parents=True)
    port = deploy.free_port()
    address = f"127.0.0.1:{port}"
    procs = {"link": deploy.start_superlink(port, link, _link_tls(tls), node_auth=True)}
    try:  # the hospitals' public keys registered on the coordinator, as docs/federated.md says
        env = deploy.write_connection(link / "flwr-home", address, str(tls["ca"]))
        for s in sites:
            pub = public_key_file(str(tls[s.stem]), link / "keys" / f"{s.stem}.pub")
            register_supernode(deploy.flower_exe("flwr"), pub, deploy.CONNECTION, env)
            procs[s.stem] = deploy.start_supernode(str(s), address, link, s.stem, str(tls["ca"]), str(tls[s.stem]))
        # refused while TLS and authentication are required: a SuperNode without TLS, one with an unknown key
        rogue = make_tls(tmp / "rogue", ["X"])["X"]
        give_up = ("--max-retries", "2", "--max-wait-time", "60")
        refused = {"insecure": deploy.start_supernode(str(sites[0]), address, link, "insecure", extra=give_up),
                   "unregistered": deploy.start_supernode(str(sites[0]), address, link, "unregistered",
                                                          str(tls["ca"]), str(rogue), extra=give_up)}
        procs.update(refused)
        why = {"insecure": "Server disconnected without sending a response", "unregistered": "Failed to activate"}
        for name, p in refused.items():  # they give up (the SuperLink is up and the three others join)
            assert p.wait(120) != 0, name
            log = (link / "logs" / f"supernode-{name}.log").read_text()
            assert "could not establish a connection" in log and why[name] in log, log[-2000:]
        failure: list[BaseException] = []

        def first() -> None:
            try:
                deploy.launch(cfg, run, superlink=address, security=Security(root_certificates=str(tls["ca"])))
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                failure.append(exc)

        t = threading.Thread(target=first)
        t.start()
        ht_log = link / "logs" / "supernode-HT.log"
        _wait(lambda: ht_log.is_file() and "Start `flwr-clientapp` process" in ht_log.read_text(), 400, "round 1 at HT")
        deploy.stop(procs.pop("HT"), force=True)  # a hospital goes away mid-round
        ck1 = run / "federated" / "checkpoints" / "step-000000001.pt.sha256"
        _wait(ck1.is_file, 400, "round 1 to finish without HT")
        deploy.stop(procs.pop("link"), force=True)  # the coordinator's SuperLink dies after round 1
        t.join(120)
        assert failure and isinstance(failure[0], MedGradeError) and "federated resume" in str(failure[0])
        assert not (run / "bundle").exists()
        # same port, database (nodes and their keys) and certificates: the nodes come back
        procs["link"] = deploy.start_superlink(port, link, _link_tls(tls), node_auth=True)
        bundle = deploy.resume(run)
    finally:
        for p in procs.values():
            deploy.stop(p, force=True)
    rounds = _rounds(run)
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["replied"] == 2 and len(rounds[0]["dropped"]) == 1
    assert rounds[1]["replied"] == 2
    log = (run / "federated" / "logs" / "coordinator.log").read_text()
    assert "round 1: node-" in log and "dropped from the round" in log and "resuming after round 1" in log
    assert "resuming after round 1" in (run / "federated" / "logs" / "server.log").read_text(errors="replace")
    fed = json.loads((bundle / "manifest.json").read_text())["metrics"]["summary"]["federated"]
    assert fed["rounds_run"] == 2 and fed["dropped"][0]["round"] == 1


def test_secagg_and_dp_change_what_the_server_sees(setup, simulated):
    from MedGradeTrainLib.federated.simulate import simulate

    tmp, sites, _, _ = setup
    dp = {"noise_multiplier": 0.1, "clipping_norm": 5.0}
    cfg = fed_config(tmp, sites, "fed-private.json", min_sites=3, privacy={"secagg": {}, "dp": dp})
    run = simulate(cfg, tmp / "private", capture=True)
    plain = [json.loads(x) for x in (simulated / "federated" / "received.jsonl").read_text().splitlines()]
    private = [json.loads(x) for x in (run / "federated" / "received.jsonl").read_text().splitlines()]
    assert all(len(r["arrays"]["fitres.parameters"]) == len(_weights(simulated)) for r in plain)
    # SecAgg+: no site's parameters reach the server, only masked vectors (and the protocol's key shares)
    assert all(not r["arrays"].get("fitres.parameters") for r in private)
    assert any("masked_params" in r["configs"].get("secaggplus_configs", []) for r in private)
    fed = json.loads((run / "bundle" / MODEL / "manifest.json").read_text())["metrics"]["summary"]["federated"]
    assert fed["privacy"]["differential_privacy"]["noise_multiplier"] == 0.1
    assert fed["privacy"]["differential_privacy"]["clipping_norm"] == 5.0
    assert fed["privacy"]["secure_aggregation"]["num_shares"] == 3
    # DP noise (std 0.1 * 5 / 3) moves the model away from plain FedAvg's
    a, b = _weights(run), _weights(simulated)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) > 0.05
