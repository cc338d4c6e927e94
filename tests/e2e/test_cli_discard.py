"""``caseledger case-types discard``: a draft leaves the list; a published version stays."""

from __future__ import annotations

from pathlib import Path

from infra.bootstrap import Container
from infra.settings import Settings
from tests.conftest import settings_env
from tests.e2e.test_cli import caseledger


def test_discard_removes_a_draft_and_refuses_a_published_version_with_a_reason(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    env = settings_env(settings)
    draft = tmp_path / "tiny.yaml"
    draft.write_text("name: tiny\nlabels: {en: Tiny}\nstates: {open: {initial: true}}\n")
    assert caseledger("case-types", "load", "--draft-only", str(draft), env=env).returncode == 0
    discarded = caseledger("case-types", "discard", "tiny", "1", "--reason", "typo", env=env)
    assert discarded.returncode == 0, discarded.stderr
    assert "tiny v1 discarded" in discarded.stdout
    assert "tiny" not in caseledger("case-types", "list", env=env).stdout
    kept = caseledger("case-types", "discard", "generic", "1", env=env)
    assert kept.returncode == 1
    assert "generic v1 is published and cannot be discarded" in kept.stderr
    assert "Traceback" not in kept.stderr
