"""What a reader may do with a case now, decided once for every screen: the transitions its
role may take from the case's state (each enabled, or disabled with a reason in plain words),
and the other commands (assign, close, reopen, edit fields, add a note).

The decisions follow the same rules as the commands: the role's permissions
(``services.auth``), the case type's transition roles, guards and required fields, and the
role's view of the fields. A disabled transition says why in the reader's language, never
with the raw condition.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.case import Case
from domain.definition import Definition, Transition, View, label_in
from domain.errors import BudgetExceeded
from domain.rules import facts
from services.auth import REOPEN_CASE, UPDATE_CASE, WORK_CASE, Role
from services.case_view_phrases import listing, say


@dataclass(frozen=True)
class Reader:
    """Who reads a case view: the role whose rights apply, the actor (transition guards may
    read ``actor.id`` and ``actor.role``) and the languages wanted, best first."""

    role: Role
    actor_id: str
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransitionOption:
    """A transition the reader's role may take from the case's state. ``enabled`` is false
    while its required fields are empty or its condition does not hold; ``reason`` then says
    why, in the view's language."""

    name: str
    label: str
    to: str
    to_label: str
    enabled: bool
    reason: str | None


@dataclass(frozen=True)
class CaseActions:
    """The commands besides transitions that the reader's role may run on the case in its
    state: assign, close and edit fields on an open case, reopen a closed one, add a note."""

    assign: bool
    close: bool
    reopen: bool
    edit_fields: bool
    add_note: bool


def decide_actions(case: Case, definition: Definition, view: View, role: Role) -> CaseActions:
    """The commands ``role`` may run on ``case`` now. A case is done once closed or in a final
    state of its type: it is then locked (``domain.case``): it may be reopened, and no longer
    assigned, closed or edited, but for the fields marked ``editable_when_final``."""
    done = case.is_done(definition)
    editable = editable_fields(case, definition, view)
    return CaseActions(
        assign=role in WORK_CASE and not done,
        close=role in WORK_CASE and not done,
        reopen=role in REOPEN_CASE and done,
        edit_fields=role in UPDATE_CASE and (editable is None or bool(editable)),
        add_note=role in UPDATE_CASE,
    )


def editable_fields(case: Case, definition: Definition, view: View) -> list[str] | None:
    """The fields the role of ``view`` may change on ``case`` now (``None``: every field):
    those its view edits; once the case is done, only those of them the case type marks
    ``editable_when_final``."""
    if not case.is_done(definition):
        return sorted(view.edit) if view.edit is not None else None
    still = definition.editable_when_final
    return sorted(still if view.edit is None else view.edit & still)


def decide_transitions(
    case: Case, definition: Definition, reader: Reader, language: str
) -> list[TransitionOption]:
    """Every transition leaving the case's state that the reader's role may take, in the
    case type's order; none once the case is done, or for a role that may not move cases."""
    if reader.role not in UPDATE_CASE or case.is_done(definition):
        return []
    known = facts(case, None, {"id": reader.actor_id, "role": reader.role.value})
    options = []
    for move in definition.available(case.status, reader.role.value):
        reason = blocked_reason(move, case, definition, known, language)
        target = definition.states.get(move.target)
        options.append(
            TransitionOption(
                name=move.name,
                label=label_in(move.labels, (language,), move.name),
                to=move.target,
                to_label=label_in(target.labels, (language,), move.target)
                if target
                else move.target,
                enabled=reason is None,
                reason=reason,
            )
        )
    return options


def blocked_reason(
    move: Transition,
    case: Case,
    definition: Definition,
    known: dict[str, object],
    language: str,
) -> str | None:
    """Why ``move`` cannot be taken now, in ``language``, or ``None`` when it can. Empty
    required fields are named first (the command checks them first); then the condition,
    explained by the case type's ``blocked_reason`` or by a general sentence."""
    missing = [name for name in move.requires if case.fields.get(name) is None]
    if missing:
        labels = [_field_label(definition, name, language) for name in missing]
        return say(language, "fill_in", fields=listing(language, labels))
    if move.guard is None or _holds(move, known):
        return None
    if move.blocked_reason:
        return label_in(move.blocked_reason, (language,), "")
    return say(language, "not_met")


def _holds(move: Transition, known: dict[str, object]) -> bool:
    assert move.guard is not None
    try:
        return move.guard.holds(known)
    except BudgetExceeded:  # the command would fail the same way
        return False


def _field_label(definition: Definition, name: str, language: str) -> str:
    spec = definition.fields.get(name)
    return label_in(spec.labels, (language,), name) if spec else name
