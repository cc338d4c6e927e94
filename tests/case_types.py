"""Case-type definitions for tests: the shipped documents, and small ones written inline."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from domain.definition import Definition
from services.case_type_document import compile_definition, read_document

SHIPPED = Path(__file__).resolve().parent.parent / "casetypes"


@cache
def shipped(name: str, version: int = 1) -> Definition:
    """A shipped case type (``generic``, ``insurance_claim``, ...), compiled."""
    document = read_document((SHIPPED / f"{name}.yaml").read_bytes(), "application/yaml")
    return compile_definition(document, version, known_case_types=[name])


def shipped_document(name: str) -> dict[str, Any]:
    return read_document((SHIPPED / f"{name}.yaml").read_bytes(), "application/yaml")


def from_yaml(text: str, version: int = 1, known: tuple[str, ...] = ()) -> Definition:
    """Compile a document written in a test."""
    document = read_document(text.encode(), "application/yaml")
    return compile_definition(document, version, known_case_types=[document["name"], *known])


# A small case type exercising every kind of rule action and SLA, on a 24/7 calendar.
REPAIR = """
name: repair
labels: {en: Repair, fr: Réparation}
states:
  new: {initial: true, labels: {en: New}}
  working: {labels: {en: Working}}
  on_hold: {labels: {en: On hold}}
  done: {final: true, labels: {en: Done}}
transitions:
  start: {from: new, to: working, labels: {en: Start}}
  hold: {from: working, to: on_hold, labels: {en: Hold}}
  resume: {from: on_hold, to: working, labels: {en: Resume}}
  finish: {from: working, to: done, requires: [cost], roles: [handler, manager],
           if: 'fields.cost.amount < 1000.0', labels: {en: Finish}}
fields:
  cost: {type: money, currencies: [EUR], labels: {en: Cost}}
  urgent: {type: boolean, labels: {en: Urgent}}
  contact: {type: text, labels: {en: Contact}}
slas:
  - name: fix_time
    deadline: 2h
    goal: 1h
    warn_at: [50]
    paused_in: [on_hold]
    on_breach:
      - escalate: {reason: fix time exceeded, queue: supervisors}
  - name: pickup
    state: new
    deadline: 30m
rules:
  - name: urgent_first
    on: [CaseOpened, CaseFieldsUpdated]
    if: 'has(fields.urgent) && fields.urgent'
    do:
      - set_priority: urgent
      - assign: {queue: urgent-repairs}
      - notify: tell_contact
notifications:
  tell_contact:
    channel: email
    to: [{field: contact}, {role: manager}]
    subject: "Repair {{ case.title }}"
    body: "Your repair is {{ case.priority }}."
views:
  handler: {see: [cost, urgent], edit: [cost], columns: [title, status, fields.cost]}
"""
