"""The model choice both the Segment and the Predict presenters use (MedGradeCoreLib.panel.model_choice)."""

from __future__ import annotations

from dataclasses import dataclass

from MedGradeCoreLib.panel.model_choice import ModelChoice, model_items


@dataclass
class Entry:
    model_id: str
    kind: str = "segmentation"
    source: str = "installed"
    error: str = ""


@dataclass
class Params:
    modelId: str = ""


class Presenter(ModelChoice):
    def __init__(self, params: Params | None) -> None:
        self.params, self.model_ids = params, []


def test_items_leave_out_unusable_entries_and_other_kinds():
    entries = [Entry("a"), Entry("broken", error="bad manifest"), Entry("b", kind="grading", source="bundled")]
    assert model_items(entries) == [("a (installed)", "a"), ("b (bundled)", "b")]
    assert model_items(entries, ("grading",)) == [("b (bundled)", "b")]


def test_the_choice_is_kept_while_offered_else_the_first():
    p = Params()
    presenter = Presenter(p)
    assert presenter.set_models([Entry("a"), Entry("b")]) == [("a (installed)", "a"), ("b (installed)", "b")]
    assert p.modelId == "a" and presenter.model_ids == ["a", "b"]  # nothing chosen yet: the first
    presenter.choose_model("b")
    presenter.set_models([Entry("c"), Entry("b")])
    assert p.modelId == "b"  # still offered: kept
    presenter.set_models([Entry("c"), Entry("b", error="unreadable")])
    assert p.modelId == "c"  # no longer usable: the first usable one
    presenter.set_models([])
    assert p.modelId == "" and presenter.model_ids == []


def test_choose_model_takes_only_offered_ids_or_none():
    p = Params()
    presenter = Presenter(p)
    presenter.set_models([Entry("a"), Entry("b")])
    presenter.choose_model("not-installed")
    assert p.modelId == "a"
    presenter.choose_model("b")
    assert p.modelId == "b"
    presenter.choose_model("")
    assert p.modelId == ""


def test_without_parameters_only_the_list_changes():
    presenter = Presenter(None)
    assert presenter.set_models([Entry("a")]) == [("a (installed)", "a")]
    presenter.choose_model("a")
    assert presenter.model_ids == ["a"] and presenter.params is None
