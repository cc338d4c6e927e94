"""Erasing a data subject: record the erasure on each of its cases, then destroy its key.

    report = erase_subject(ledger, vault, "cust-7", "GDPR art. 17 request #42", context)

Refused, before anything is recorded, while any of the subject's cases is on legal hold
(:class:`~domain.case.LegalHoldBlocks`, naming them). Safe to run again: a run interrupted
halfway is finished by the next one, and a run over an erased subject records nothing new.
Used by ``POST /subjects/{subject}/erasure`` and ``caseledger subjects erase``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from domain.case import MAX_NOTE, LegalHoldBlocks, check_text
from domain.context import CommandContext
from services.application import CaseLedger
from services.errors import CaseNotFound
from services.personal_data import Vault


class SubjectNotFound(CaseNotFound):
    """No case holds personal data of that subject."""

    code = "subject_not_found"


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did: the subject's cases, those that got their erasure event in this
    run, and whether this run destroyed the key (``False``: it was destroyed before)."""

    subject: str
    cases: list[UUID]
    recorded: list[UUID]
    key_destroyed: bool


def erase_subject(
    ledger: CaseLedger,
    vault: Vault,
    subject: str,
    reason: str,
    context: CommandContext,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ErasureReport:
    """Erase the personal data of ``subject`` everywhere (see the module's docstring);
    ``progress(done, total)`` is called after each case."""
    check_text("reason", reason, MAX_NOTE)
    indexed = vault.cases_of(subject)
    if not indexed and not vault.is_erased(subject):
        raise SubjectNotFound(
            f"no case holds personal data of the subject {subject!r}",
            hint="a case's subject is its party_id, or case:<case id> for a case without one",
        )
    cases = [case for case in indexed if _exists(ledger, case)]
    held = [case for case in cases if ledger.get_case(case).legal_hold is not None]
    if held:
        raise LegalHoldBlocks(
            f"cases of {subject!r} are on legal hold: {', '.join(map(str, held))}; "
            "nothing was erased",
            hint="lift each hold (DELETE /cases/{id}/legal-hold) once the law allows, then "
            "erase again",
        )
    recorded = []
    for done, case_id in enumerate(cases, start=1):
        if ledger.erase_personal_data(case_id, reason, context):
            recorded.append(case_id)
        progress(done, len(cases))
    destroyed = vault.erase(subject, context.actor_id, reason)
    return ErasureReport(subject, cases, recorded, destroyed)


def _exists(ledger: CaseLedger, case_id: UUID) -> bool:
    """Whether the case was stored (an index entry may outlive a save that failed)."""
    try:
        ledger.get_case(case_id)
    except CaseNotFound:
        return False
    return True
