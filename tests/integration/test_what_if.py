"""What if: recorded cases replayed under a draft report exactly what the draft would change,
and the replay touches nothing live (store, topic, read models)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from domain.case import Case
from domain.context import CommandContext
from domain.definition import Definition
from domain.rules import RuleRun, facts, react
from infra.bootstrap import Container, install_case_types
from infra.cli import app
from infra.settings import Settings
from services.auth import Role
from services.case_type_document import compile_definition
from services.what_if import WhatIf, WhatIfRequest, compare_case
from tests.case_types import claim, shipped, shipped_document
from tests.conftest import auth
from tests.integration.helpers import running, wait_until

HANDLER = CommandContext("ann", "handler")
MANAGER = CommandContext("max", "manager")
ADMIN = CommandContext("test-admin", "admin")


def draft(container: Container, document: dict[str, Any]) -> int:
    _, version, problems = container.case_types.draft(document, "what if", ADMIN)
    assert problems == []
    return version


def what_if(container: Container, version: int, name: str = "insurance_claim") -> Any:
    service = WhatIf(container.ledger, container.case_types, container.case_list)
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    return service.run(WhatIfRequest(name, version))


@pytest.fixture
def claims(container: Container) -> dict[str, str]:
    """Recorded claims that went different ways: routed by the table, moved by hand,
    noted, closed and reopened, assigned; one asks for a receipt e-mail."""
    install_case_types(container.case_types, ("insurance_claim.yaml",))
    ledger = container.ledger

    def opened(title: str, fields: dict[str, Any]) -> str:
        return str(ledger.open_case("insurance_claim", title, fields, None, HANDLER).id)

    ids = {
        "leak": opened("Small leak", claim("water_damage", 8_000)),
        "flood": opened("Flood", claim("water_damage", 30_000)),
        "bike": opened("Stolen bike", claim("theft", 900, contact_email="a@b.example")),
        "fire": opened("Kitchen fire", claim("fire", 4_000)),
    }
    bike, fire = (UUID(ids[k]) for k in ("bike", "fire"))
    ledger.transition(bike, "start_review", None, {}, HANDLER, None)
    ledger.add_note(bike, "seen the receipt", HANDLER, None)
    ledger.assign(bike, "ann", HANDLER, None)
    ledger.transition(fire, "start_review", None, {"description": "pan"}, HANDLER, None)
    ledger.close_case(fire, "duplicate", HANDLER, None)
    ledger.reopen_case(fire, "not a duplicate", MANAGER, None)
    return ids


def test_a_draft_identical_to_the_published_version_reports_no_difference(
    container: Container, claims: dict[str, str]
) -> None:
    version = draft(container, shipped_document("insurance_claim"))
    report = what_if(container, version)
    assert (report.compared, report.differing, report.cases) == (4, 0, ())
    assert report.complete


def test_a_changed_routing_threshold_reports_exactly_the_cases_it_moves(
    container: Container, claims: dict[str, str]
) -> None:
    document = shipped_document("insurance_claim")
    rows = document["decision_tables"]["routing"]["rows"]
    assert rows[1]["when"] == ['"water_damage"', "> 20000"]
    rows[1]["when"] = ['"water_damage"', "> 5000"]  # the small leak becomes senior work
    report = what_if(container, draft(container, document))

    assert report.compared == 4
    [leak] = report.cases
    assert str(leak.case_id) == claims["leak"]
    assert leak.differences == ("queue", "priority")
    assert (leak.recorded.queue, leak.would_be.queue) == ("property", "senior-property")
    assert (leak.recorded.priority, leak.would_be.priority) == ("normal", "high")
    assert leak.refused == ()
    assert report.by_attribute == {
        "status": 0, "assignee": 0, "queue": 1, "priority": 1, "sla_breaches": 0,
        "notifications": 0, "refused": 0,
    }  # fmt: skip


def test_a_draft_without_a_transition_reports_the_refused_command_and_where_it_ends(
    container: Container, claims: dict[str, str]
) -> None:
    document = shipped_document("insurance_claim")
    del document["transitions"]["start_review"]
    document["transitions"]["review"] = {"from": "submitted", "to": "under_review"}
    report = what_if(container, draft(container, document))

    differing = {str(c.case_id): c for c in report.cases}
    assert set(differing) == {claims["bike"], claims["fire"]}
    bike = differing[claims["bike"]]
    [refused] = bike.refused
    assert refused.command == "CaseStatusChanged start_review"
    assert "no transition 'start_review'" in refused.reason
    assert refused.case_version > 1
    # The note and the assignment still apply; the case stays where it was.
    assert (bike.recorded.status, bike.would_be.status) == ("under_review", "submitted")
    assert bike.would_be.assignee == "ann"
    assert bike.differences == ("status",)
    assert report.by_attribute["refused"] == 2


def test_a_new_notification_rule_reports_who_would_be_written_to(
    container: Container, claims: dict[str, str]
) -> None:
    document = shipped_document("insurance_claim")
    document["notifications"]["reopened"] = {
        "channel": "email",
        "to": [{"role": "manager"}],
        "subject": "{{ case.title }} reopened",
        "body": "reopened",
    }
    document["rules"].append(
        {"name": "tell_on_reopen", "on": ["CaseReopened"], "do": [{"notify": "reopened"}]}
    )
    report = what_if(container, draft(container, document))

    [fire] = report.cases
    assert str(fire.case_id) == claims["fire"]
    assert fire.differences == ("notifications",)
    assert fire.recorded.notifications == ()
    assert [(n.notification, n.recipients) for n in fire.would_be.notifications] == [
        ("reopened", ("role:manager",))
    ]


# -- SLA clocks, at recorded times (pure: the events are made here) ------------------------

MONDAY_10 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Paris, office hours


def _at(events: Sequence[Any], moment: datetime) -> list[Case.Event]:
    return [dataclasses.replace(e, timestamp=moment) for e in events]


def _recorded_claim(published: Definition) -> list[Case.Event]:
    """A claim opened on Monday 10:00 and reviewed three working hours later: its 4 h
    first-response SLA was met."""
    context = HANDLER.as_dict()
    case = Case.open(published, "Leak", claim("water_damage", 100), None, context, MONDAY_10)
    react(RuleRun(case, published, context, MONDAY_10, lambda n: published))
    events = _at(case.collect_events(), MONDAY_10)
    later = MONDAY_10 + timedelta(hours=4)  # 3 working hours: lunch is 12:30-13:30
    context = HANDLER.as_dict()
    case.transition(published, "start_review", None, context, later, facts(case))
    react(RuleRun(case, published, context, later, lambda n: published))
    return events + _at(case.collect_events(), later)


def test_a_shorter_sla_reports_the_breach_and_what_its_actions_would_do() -> None:
    published = shipped("insurance_claim")
    events = _recorded_claim(published)
    document = shipped_document("insurance_claim")
    document["slas"][0]["deadline"] = "2h"
    shorter = compile_definition(document, 2, ["insurance_claim"])
    same = compare_case(published, uuid4(), events, lambda n: published)
    assert not same.differs

    changed = compare_case(shorter, uuid4(), events, lambda n: shorter)
    assert changed.differences == ("queue", "priority", "sla_breaches")
    assert changed.recorded.sla_breaches == ()
    assert changed.would_be is not None
    assert changed.would_be.sla_breaches == ("first_response",)
    assert (changed.would_be.queue, changed.would_be.priority) == ("claims-supervisors", "high")
    assert changed.would_be.status == "under_review"  # the review still happened after it


# -- the shadow touches nothing live -------------------------------------------------------


def table_fingerprints(container: Container) -> dict[str, str]:
    """Every table of the database, as a fingerprint of its rows (test_republish uses it)."""
    with container.pool.connection() as conn:
        names = [
            (r["table_schema"], r["table_name"])
            for r in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        ]
        prints = {}
        for schema, name in names:
            row = conn.execute(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t::text),"
                f' \'\')) AS h FROM "{schema}"."{name}" t'
            ).fetchone()
            assert row is not None
            prints[f"{schema}.{name}"] = f"{row['n']}:{row['h']}"
    return prints


def end_offsets(settings: Settings) -> dict[int, int]:
    """Each partition's end offset, as a fetch reports it (the broker's ListOffsets answers
    1 for every partition of a topic, so KafkaConsumer.end_offsets cannot tell)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_servers, enable_auto_commit=False)
    try:
        topic = settings.kafka_topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()

        def read_to_the_end() -> bool:
            consumer.poll(timeout_ms=200)
            marks = [consumer.highwater(p) for p in partitions]
            return all(
                m is not None and consumer.position(p) >= m
                for p, m in zip(partitions, marks, strict=True)
            )

        wait_until(read_to_the_end, 30, "the end of the topic")
        return {p.partition: consumer.highwater(p) or 0 for p in partitions}
    finally:
        consumer.close()


@pytest.fixture
def published(container: Container, claims: dict[str, str]) -> Iterator[None]:
    """The claims on the topic and in every read model."""
    with running(container.relay.run):
        wait_until(lambda: container.relay.position() >= container.reader.head(), 30, "relay")
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    yield


def test_the_shadow_changes_nothing_in_the_store_the_topic_or_the_read_models(
    container: Container, settings: Settings, published: None
) -> None:
    document = copy.deepcopy(shipped_document("insurance_claim"))
    document["rules"][0]["do"] = [{"assign": {"queue": "elsewhere"}}, {"assign": {"user": "zed"}}]
    version = draft(container, document)
    head, tables = container.reader.head(), table_fingerprints(container)
    offsets = end_offsets(settings)
    assert sum(offsets.values()) > 0

    report = WhatIf(container.ledger, container.case_types, container.case_list).run(
        WhatIfRequest("insurance_claim", version)
    )
    assert report.differing == 4  # it did replay something
    assert report.by_attribute["assignee"] > 0  # the assignee is compared too
    moved = [c.would_be for c in report.cases if "assignee" in c.differences]
    assert "zed" in {outcome.assignee for outcome in moved if outcome is not None}

    assert container.reader.head() == head
    assert table_fingerprints(container) == tables
    assert end_offsets(settings) == offsets


# -- the API and the CLI -------------------------------------------------------------------


def test_the_api_answers_the_report_to_admins_and_refuses_a_published_version(
    client: TestClient, container: Container, keys: dict[Role, str], claims: dict[str, str]
) -> None:
    document = shipped_document("insurance_claim")
    document["rules"][0]["do"] = [{"assign": {"queue": "everything"}}]
    version = draft(container, document)
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    path = f"/case-types/insurance_claim/versions/{version}/what-if"

    answer = client.post(path, json={"days": 7}, headers=auth(keys[Role.ADMIN]))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["compared"], report["differing"]) == (4, 4)
    leak = next(c for c in report["cases"] if c["case_id"] == claims["leak"])
    assert leak["differences"] == ["queue"]
    assert leak["recorded"]["queue"] == "property"
    assert leak["would_be"]["queue"] == "everything"

    one = client.post(path, json={"case_ids": [claims["bike"]]}, headers=auth(keys[Role.ADMIN]))
    assert [c["case_id"] for c in one.json()["cases"]] == [claims["bike"]]

    published = client.post(
        "/case-types/insurance_claim/versions/1/what-if", json={}, headers=auth(keys[Role.ADMIN])
    )
    assert published.status_code == 422, published.text
    assert "not a draft" in published.json()["detail"]
    wrong = client.post(path, json={"days": 0}, headers=auth(keys[Role.ADMIN]))
    assert wrong.status_code == 422
    refused = client.post(path, json={}, headers=auth(keys[Role.HANDLER]))
    assert refused.status_code == 403


def test_the_cli_prints_the_differing_cases_and_the_totals(
    container: Container, settings: Settings, claims: dict[str, str]
) -> None:
    document = shipped_document("insurance_claim")
    rows = document["decision_tables"]["routing"]["rows"]
    rows[1]["when"] = ['"water_damage"', "> 5000"]
    version = draft(container, document)
    container.projections.catch_up_from_store(container.reader.head(), 100_000)
    runner, env = CliRunner(), settings.as_env()

    shown = runner.invoke(app, ["case-types", "what-if", "insurance_claim", str(version)], env=env)
    assert shown.exit_code == 0, shown.output
    assert claims["leak"] in shown.output
    assert "1 of 4 cases would differ" in shown.output

    as_json = runner.invoke(
        app,
        ["case-types", "what-if", "insurance_claim", str(version), "--json", "--case",
         claims["leak"], "--case", claims["flood"]],
        env=env,
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert (report["compared"], report["differing"]) == (2, 1)

    refused = runner.invoke(app, ["case-types", "what-if", "insurance_claim", "1"], env=env)
    assert refused.exit_code == 1
    assert "not a draft" in refused.output
