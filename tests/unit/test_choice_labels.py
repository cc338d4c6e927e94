"""Labels of choice values (``choice_labels`` of a choice field): how a case-type document
declares them, what is refused and with which path, and how the timeline and the CSV export
put them beside the values. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.case import Case
from domain.context import CommandContext
from domain.definition import View
from services.case_type_document import InvalidDocument, compile_definition, problems_in
from services.case_view_csv import export_columns
from services.case_views import choice_labels, choice_options, seen_event
from services.timeline import Wording, tell
from tests.case_types import shipped

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ANN = CommandContext("Ann", "handler").as_dict()


def document(**category: Any) -> dict[str, Any]:
    """A small case type whose ``category`` field takes ``category``'s options."""
    return {
        "name": "claim",
        "labels": {"en": "Claim", "fr": "Sinistre"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": {
            "category": {"type": "choice", "choices": ["water", "fire", "theft"], **category},
            "note": {"type": "text"},
        },
        "views": {"handler": {"see": ["category"], "edit": "all"}},
    }


LABELS = {
    "water": {"en": "Water damage", "fr": "Dégât des eaux"},
    "fire": {"en": "Fire", "fr": "Incendie"},
}


def test_a_choice_fields_values_take_their_label_in_the_readers_language() -> None:
    category = compile_definition(document(choice_labels=LABELS), 1).fields["category"]
    assert category.choice_labels == LABELS
    assert category.value_label("water", ("fr",)) == "Dégât des eaux"
    assert category.value_label("water", ("de",)) == "Water damage"  # else English
    assert category.value_label("theft", ("fr",)) == "theft"  # no labels: the value itself
    assert category.value_label(None, ("fr",)) is None
    note = compile_definition(document(), 1).fields["note"]
    assert note.value_label("water", ("fr",)) is None  # not a choice field


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        (
            {"choice_labels": {"watr": {"en": "Water"}}},
            ["fields.category.choice_labels.watr: unknown choice 'watr'; "
             "choices are water, fire, theft"],
        ),
        (
            {"choice_labels": {"fire": {"fr": "Incendie"}}},
            ["fields.category.choice_labels.fire: has no English text; "
             "add en (other languages are optional)"],
        ),
        (
            {"choice_labels": {"fire": {}}},
            ["fields.category.choice_labels.fire: has no English text; "
             "add en (other languages are optional)"],
        ),
        (
            {"choice_labels": {"fire": {"en": "Fire", "french": "Feu", "fr": " "}}},
            ["fields.category.choice_labels.fire.french: is not a language code such as en or fr",
             "fields.category.choice_labels.fire.fr: must not be empty"],
        ),
        (
            {"choice_labels": {"fire": "Fire"}},
            ["fields.category.choice_labels.fire: must be a mapping (key: value), not 'Fire'"],
        ),
    ],
    ids=["unknown choice", "no English", "empty", "bad languages", "not a mapping"],
)  # fmt: skip
def test_bad_choice_labels_are_refused_with_their_path(
    category: dict[str, Any], expected: list[str]
) -> None:
    refused = document(**category)
    assert problems_in(refused) == expected
    with pytest.raises(InvalidDocument) as error:
        compile_definition(refused, 1)
    assert error.value.problems == expected


def test_choice_labels_belong_to_choice_fields_only() -> None:
    refused = document()
    refused["fields"]["note"]["choice_labels"] = {"a": {"en": "A"}}
    assert problems_in(refused) == ["fields.note.choice_labels: applies only to choice fields"]


@pytest.mark.parametrize("name", ["insurance_claim", "patient_care", "customer_complaint"])
def test_every_choice_of_the_shipped_case_types_reads_in_english_and_french(name: str) -> None:
    choices = [f for f in shipped(name).fields.values() if f.kind == "choice"]
    assert choices
    for spec in choices:
        assert set(spec.choice_labels) == set(spec.choices), spec.name
        assert all({"en", "fr"} <= set(labels) for labels in spec.choice_labels.values())


def test_views_label_the_choice_fields_the_role_sees() -> None:
    definition = compile_definition(document(choice_labels=LABELS), 1)
    values = {"category": "fire", "note": "fire"}
    assert choice_labels(definition.fields, values, "fr") == {"category": "Incendie"}
    assert choice_options(definition.fields, "en") == {
        "category": {"water": "Water damage", "fire": "Fire", "theft": "theft"}
    }


def test_the_timeline_puts_each_choice_values_label_beside_it() -> None:
    definition = compile_definition(document(choice_labels=LABELS), 1)
    case = Case.open(definition, "Leak", {"category": "water", "note": "n"}, None, ANN, NOW)
    case.update_fields(definition, {"category": "fire", "note": "m"}, ANN, None)
    events = [e for e in case.collect_events() if isinstance(e, Case.Event)]
    view = View("admin", see=None, edit=None)
    seen = [seen_event(e, view, lambda *_: None) for e in events]
    entries = tell(seen, Wording("fr", definition, lambda _: definition, str))
    updated = next(e for e in entries if e.kind == "CaseFieldsUpdated")
    told = {c.field: (c.before, c.before_label, c.after, c.after_label) for c in updated.changes}
    assert told == {
        "category": ("water", "Dégât des eaux", "fire", "Incendie"),
        "note": ("n", None, "m", None),  # not a choice field: no label
    }
    opened = next(e for e in entries if e.kind == "CaseOpened")
    first = next(c for c in opened.changes if c.field == "category")
    assert (first.before_label, first.after_label) == (None, "Dégât des eaux")


def test_the_csv_export_puts_a_label_column_beside_each_choice_field() -> None:
    columns = export_columns(
        ["title", "status", "fields.category", "fields.note"], None, frozenset({"category"})
    )
    assert [c.header for c in columns] == [
        "id", "title", "status", "status_label", "fields.category", "fields.category_label",
        "fields.note",
    ]  # fmt: skip
    hidden = export_columns(["fields.category"], frozenset({"note"}), frozenset({"category"}))
    assert [c.header for c in hidden] == ["id"]  # a hidden field has neither column
