"""A real plugin distribution for tests: a folder with a module and its ``.dist-info``
(METADATA and entry_points.txt), put on ``sys.path`` so that ``importlib.metadata`` finds its
entry points exactly as it finds an installed package's."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.plugins import rescan

MODULE = "caseledger_testplugin"
SOURCE = '''
"""Test plugin: a risk score by postcode, and actions that behave and misbehave."""

from typing import Any


def score(postcode: str) -> float:
    """Risk from 0 to 10 for a postcode: 9.5 for the 75xxx area, else 2."""
    return 9.5 if postcode.startswith("75") else 2.0


def explode(postcode: str) -> bool:
    """Raises, always."""
    raise ValueError(f"no risk data for {postcode}")


def spin(postcode: str) -> bool:
    """Never returns."""
    while True:
        pass


def strange(postcode: str) -> Any:
    """Returns a value that is not plain JSON."""
    return object()


def flag(facts: dict[str, Any], *, reason: str, queue: str = "review") -> list[dict[str, Any]]:
    """Flag the case for review: urgent, escalated, in the review queue."""
    return [
        {"set_priority": "urgent"},
        {"escalate": {"reason": f"{reason} ({facts['case']['title']})", "queue": queue}},
    ]


def bad(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Returns one good action and one that is not in the vocabulary."""
    return [{"set_priority": "urgent"}, {"delete_everything": True}]


def boom(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Raises."""
    raise RuntimeError("the review service is down")


def forever(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Never returns."""
    while True:
        pass
'''
ENTRY_POINTS = """
[caseledger.functions]
testrisk.score = caseledger_testplugin:score
testrisk.explode = caseledger_testplugin:explode
testrisk.spin = caseledger_testplugin:spin
testrisk.strange = caseledger_testplugin:strange

[caseledger.actions]
testrisk.flag = caseledger_testplugin:flag
testrisk.bad = caseledger_testplugin:bad
testrisk.boom = caseledger_testplugin:boom
testrisk.forever = caseledger_testplugin:forever
"""
METADATA = """Metadata-Version: 2.1
Name: caseledger-testplugin
Version: 0.1
Summary: Risk scores for tests
"""


@contextmanager
def installed_test_plugin(folder: Path) -> Iterator[Path]:
    """The test plugin installed in ``folder`` (added to ``sys.path``) while in the block."""
    (folder / f"{MODULE}.py").write_text(SOURCE)
    info = folder / f"{MODULE}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(METADATA)
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.append(str(folder))
    rescan()
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(MODULE, None)
        rescan()
