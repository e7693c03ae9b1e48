"""Privacy options, all Flower's own: secure aggregation (SecAgg+: the server only ever sees the sum of
masked, quantised site updates) and differential privacy (client-side fixed clipping: each site clips its
update to ``clipping_norm`` before it leaves, the server adds Gaussian noise of std
``noise_multiplier * clipping_norm / sites`` to the aggregate). Both are recorded in the run and in the
bundle's manifest. The site mods act only on messages that ask for them, so one ClientApp serves runs with
and without privacy."""

from __future__ import annotations

from typing import Any


def wrap_strategy(strategy, fed: dict[str, Any]):
    """The strategy inside Flower's DP wrapper when ``privacy.dp`` is set."""
    dp = fed["privacy"].get("dp")
    if not dp:
        return strategy
    from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping

    return DifferentialPrivacyClientSideFixedClipping(strategy, noise_multiplier=float(dp["noise_multiplier"]),
                                                      clipping_norm=float(dp["clipping_norm"]),
                                                      num_sampled_clients=int(fed["min_sites"]))


def secagg_settings(fed: dict[str, Any]) -> dict[str, Any] | None:
    sa = fed["privacy"].get("secagg")
    if sa is None:
        return None
    n = int(fed["min_sites"])
    out = {"num_shares": sa.get("num_shares", n), "reconstruction_threshold": sa.get("reconstruction_threshold",
                                                                                     max(2, n - 1))}
    for k in ("clipping_range", "quantization_range"):
        if k in sa:
            out[k] = sa[k]
    return out


def fit_workflow(fed: dict[str, Any]):
    """Flower's fit workflow of one round: SecAgg+'s when asked for, else the default one."""
    sa = secagg_settings(fed)
    if sa is None:
        from flwr.server.workflow.default_workflows import default_fit_workflow

        return default_fit_workflow
    from flwr.server.workflow import SecAggPlusWorkflow

    return SecAggPlusWorkflow(**sa, timeout=float(fed["round_timeout_s"]))


def privacy_record(fed: dict[str, Any]) -> dict[str, Any]:
    """What the run and the manifest record about privacy."""
    dp = fed["privacy"].get("dp")
    rec: dict[str, Any] = {"secure_aggregation": None, "differential_privacy": None}
    sa = secagg_settings(fed)
    if sa is not None:
        rec["secure_aggregation"] = {"protocol": "SecAgg+ (Flower SecAggPlusWorkflow)", **sa}
    if dp:
        nm, clip, n = float(dp["noise_multiplier"]), float(dp["clipping_norm"]), int(fed["min_sites"])
        rec["differential_privacy"] = {"mechanism": "Gaussian, client-side fixed clipping (Flower "
                                                    "DifferentialPrivacyClientSideFixedClipping)",
                                       "noise_multiplier": nm, "clipping_norm": clip, "sampled_sites": n,
                                       "noise_std": nm * clip / n}
    return rec


def _is_train(msg) -> bool:
    from flwr.app import MessageType

    return msg.metadata.message_type == MessageType.TRAIN


def secagg_when_asked(msg, ctxt, call_next):
    """Flower's ``secaggplus_mod`` on the messages of a SecAgg+ round; others pass through."""
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if _is_train(msg) and RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


def clip_when_asked(msg, ctxt, call_next):
    """Flower's ``fixedclipping_mod`` when the server's fit config carries a clipping norm."""
    from flwr.client.mod import fixedclipping_mod
    from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

    if _is_train(msg) and any(KEY_CLIPPING_NORM in c for c in msg.content.config_records.values()):
        return fixedclipping_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


SITE_MODS = [secagg_when_asked, clip_when_asked]
