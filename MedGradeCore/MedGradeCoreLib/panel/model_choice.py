"""Which model a panel's presenter has chosen (no Qt): the usable library entries offered as (label, id) for
its combo box, the chosen id kept while it is still offered, else the first one chosen (a single installed
model is usable without touching the combo box)."""

from __future__ import annotations

from typing import Any


def model_items(entries: list[Any], kinds: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """``("<id> (<source>)", id)`` for each entry without a load error (of ``kinds`` when given)."""
    return [(f"{e.model_id} ({e.source})", e.model_id) for e in entries
            if not getattr(e, "error", "") and (kinds is None or e.kind in kinds)]


class ModelChoice:
    """Mixed into a presenter whose ``params`` (None until the panel has them) has a ``modelId`` field."""

    params: Any
    model_ids: list[str]

    def set_models(self, entries: list[Any]) -> list[tuple[str, str]]:
        """The usable models as (label, id); the chosen id stays when still offered, else the first is chosen
        ('' when none is)."""
        items = model_items(entries)
        self.model_ids = [i for _, i in items]
        if self.params is not None and self.params.modelId not in self.model_ids:
            self.params.modelId = self.model_ids[0] if self.model_ids else ""
        return items

    def choose_model(self, model_id: str) -> None:
        """The user's pick: an offered id, or '' (none); anything else is ignored."""
        if self.params is not None and (model_id in self.model_ids or not model_id):
            self.params.modelId = model_id
