"""Help texts of fields (``help`` of a field, per language like its labels): how a case-type
document declares them, what is refused and with which path, and how a case view carries them
in the reader's language. No I/O."""

from __future__ import annotations

from typing import Any

import pytest

from services.case_type_checks import HELP_LENGTH
from services.case_type_document import compile_definition, problems_in
from tests.case_types import shipped

HELP = {"en": "As printed on the policy, e.g. AB-123456", "fr": "Tel qu'imprimé sur le contrat"}


def document(**policy: Any) -> dict[str, Any]:
    """A small case type whose ``policy`` field takes ``policy``'s options."""
    return {
        "name": "claim",
        "labels": {"en": "Claim"},
        "states": {"open": {"initial": True}, "done": {"final": True}},
        "fields": {"policy": {"type": "text", **policy}, "note": {"type": "text"}},
    }


def test_a_field_carries_its_help_text_per_language() -> None:
    definition = compile_definition(document(help=HELP), 1)
    assert definition.fields["policy"].help == HELP
    assert definition.fields["note"].help == {}


def test_the_shipped_insurance_claim_explains_some_fields_in_english_and_french() -> None:
    fields = shipped("insurance_claim").fields
    helped = [name for name, spec in fields.items() if spec.help]
    assert len(helped) >= 3
    assert all({"en", "fr"} <= set(fields[name].help) for name in helped)


@pytest.mark.parametrize(
    ("help_text", "expected"),
    [
        pytest.param({"fr": "Aide"}, ["fields.policy.help: has no English text; add en "
                                      "(other languages are optional)"], id="no English"),
        pytest.param({"en": "  "}, ["fields.policy.help.en: must not be empty"], id="blank"),
        pytest.param({"en": "Help", "french": "Aide"},
                     ["fields.policy.help.french: is not a language code such as en or fr"],
                     id="bad language"),
        pytest.param({"en": "Line\x00"}, ["fields.policy.help.en: must be plain text: no NUL "
                                          "(\\u0000) or other control characters except line "
                                          "breaks and tabs"], id="NUL"),
        pytest.param({"en": "x" * (HELP_LENGTH + 1)},
                     [f"fields.policy.help.en: is {HELP_LENGTH + 1} characters long; a help text "
                      f"holds at most {HELP_LENGTH}: keep it to a sentence or two"], id="too long"),
        pytest.param({"en": 5}, ["fields.policy.help.en: must be text, not 5"], id="not text"),
        pytest.param("Help", ["fields.policy.help: must be a mapping (key: value), not 'Help'"],
                     id="not per language"),
    ],
)  # fmt: skip
def test_a_bad_help_text_is_refused_with_its_path(help_text: Any, expected: list[str]) -> None:
    assert problems_in(document(help=help_text)) == expected


def test_a_help_text_at_the_limit_with_line_breaks_is_accepted() -> None:
    text = "First line\n\tsecond line " + "x" * (HELP_LENGTH - 24)
    assert len(text) == HELP_LENGTH
    assert problems_in(document(help={"en": text})) == []
