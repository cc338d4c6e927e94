"""``caseledger case-types load|submit|approve|reject|publish``: four eyes from the command
line, each step recorded with the operator named by --as."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.bootstrap import Container
from infra.settings import Settings
from tests.conftest import settings_env
from tests.e2e.test_cli import caseledger

TINY = "name: tiny\nlabels: {en: Tiny}\nstates: {open: {initial: true}}\n"


@pytest.mark.slow
def test_load_submits_for_review_and_another_operator_approves_before_publication(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    env = settings_env(settings)
    draft = tmp_path / "tiny.yaml"
    draft.write_text(TINY)
    loaded = caseledger("case-types", "load", str(draft), "--as", "alice", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "tiny v1 awaits review" in loaded.stdout
    assert "caseledger case-types approve tiny 1" in loaded.stdout
    own = caseledger(
        "case-types", "approve", "tiny", "1", "--comment", "ok", "--as", "alice", env=env
    )
    assert own.returncode == 1
    assert "alice wrote or submitted tiny v1 and cannot approve it" in own.stderr
    assert "ask another reviewer" in own.stderr
    early = caseledger("case-types", "publish", "tiny", "1", "--as", "alice", env=env)
    assert early.returncode == 1
    assert "tiny v1 has not been approved" in early.stderr
    assert "Traceback" not in own.stderr + early.stderr
    approved = caseledger(
        "case-types", "approve", "tiny", "1", "--comment", "fine", "--as", "bob", env=env
    )
    assert approved.returncode == 0, approved.stderr
    published = caseledger("case-types", "publish", "tiny", "1", "--as", "alice", env=env)
    assert published.returncode == 0, published.stderr

    draft.write_text(TINY.replace("Tiny", "Tiny v2"))
    urgent = caseledger("case-types", "load", str(draft), "--no-review", "--as", "ops", env=env)
    assert "tiny v2 is current (review waived)" in urgent.stdout, urgent.stderr
    history: list[Any] = container.case_types.history("tiny")
    steps = [
        (type(e).__name__, e.context["actor_id"], getattr(e, "comment", getattr(e, "reason", "")))
        for e in history
    ]
    assert steps[1:] == [
        ("DraftSaved", "alice", "loaded from file"),
        ("DraftSubmitted", "alice", "loaded from file"),
        ("DraftApproved", "bob", "fine"),
        ("DraftValidated", "alice", ""),
        ("Published", "alice", "published from CLI"),
        ("DraftSaved", "ops", "loaded from file"),
        ("ReviewWaived", "ops", "--no-review by ops"),
        ("DraftValidated", "ops", ""),
        ("Published", "ops", "loaded from file"),
    ]
    assert all(e.context["source_system"] == "cli" for e in history)


def test_reject_sends_the_draft_back_with_the_comment(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    env = settings_env(settings)
    draft = tmp_path / "tiny.yaml"
    draft.write_text(TINY)
    assert caseledger("case-types", "load", str(draft), "--as", "alice", env=env).returncode == 0
    rejected = caseledger(
        "case-types", "reject", "tiny", "1", "--comment", "add French", "--as", "bob", env=env
    )
    assert rejected.returncode == 0, rejected.stderr
    record = container.case_types.version("tiny", 1)
    assert (record.review, record.reviewed_by, record.review_comment) == (
        "rejected",
        "bob",
        "add French",
    )
