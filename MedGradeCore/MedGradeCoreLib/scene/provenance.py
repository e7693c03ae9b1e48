"""Provenance attributes on output nodes: ``MedGrade.step``, ``MedGrade.parameters`` (JSON) ..."""

from __future__ import annotations

import json
from typing import Any

PREFIX = "MedGrade."


def _version() -> str:
    from MedGradeCoreLib import __version__

    return __version__


def set_provenance(
    node: Any,
    step: str,
    parameters: dict[str, Any] | None = None,
    model_id: str | None = None,
    weights_sha256: str | None = None,
    version: str | None = None,
    **extra: Any,
) -> None:
    """Record how ``node`` was made. Strings stay as they are; other extras are stored as JSON."""
    values: dict[str, Any] = {
        "step": step,
        "parameters": json.dumps(parameters or {}, sort_keys=True, default=str),
        "version": version or _version(),
        "modelId": model_id,
        "weightsSha256": weights_sha256,
    }
    for key, value in extra.items():
        values[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    for key, value in values.items():
        if value is not None:
            node.SetAttribute(PREFIX + key, value)


def get_provenance(node: Any) -> dict[str, Any]:
    """All ``MedGrade.*`` attributes of ``node`` (``parameters`` decoded from JSON)."""
    out: dict[str, Any] = {}
    for name in node.GetAttributeNames() or ():
        if name.startswith(PREFIX):
            out[name[len(PREFIX):]] = node.GetAttribute(name)
    if "parameters" in out:
        out["parameters"] = json.loads(out["parameters"])
    return out
