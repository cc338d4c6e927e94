"""Choice values read in French over HTTP, beside their keys, on every read path: the case,
its timeline, the case list and the CSV export; and the list's SLA deadline, which is the
case's nearest running one. Real PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from infra.bootstrap import Container
from services.auth import Role
from tests.conftest import auth
from tests.integration.test_case_types_api import CLAIM_FIELDS, install, open_case, project

FR = {"Accept-Language": "fr-FR,fr;q=0.9"}


def read(client: TestClient, key: str, path: str, **headers: str) -> Any:
    answer = client.get(path, headers={**auth(key), **headers})
    assert answer.status_code == 200, answer.text
    return answer


def test_a_choice_value_reads_in_french_beside_its_key_on_every_read_path(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    handler = keys[Role.HANDLER]
    case_id = open_case(client, handler, "insurance_claim", CLAIM_FIELDS)  # water_damage
    patched = client.patch(
        f"/cases/{case_id}/fields", json={"fields": {"category": "fire"}}, headers=auth(handler)
    )
    assert patched.status_code == 200, patched.text
    project(container)

    case = read(client, handler, f"/cases/{case_id}", **FR).json()
    choices = case["labels"]["choices"]
    assert case["fields"]["category"] == "fire"
    assert choices["category"][case["fields"]["category"]] == "Incendie"
    assert choices["category"]["water_damage"] == "Dégât des eaux"
    assert set(choices) == {"category"}  # the one choice field
    english = read(client, handler, f"/cases/{case_id}").json()["labels"]["choices"]
    assert english["category"]["fire"] == "Fire"

    timeline = read(client, handler, f"/cases/{case_id}/timeline", **FR).json()
    edit = next(e for e in timeline if e["kind"] == "CaseFieldsUpdated")
    assert edit["changes"] == [
        {
            "field": "category",
            "label": "Nature du sinistre",
            "before": "water_damage",
            "before_label": "Dégât des eaux",
            "after": "fire",
            "after_label": "Incendie",
        }
    ]

    row = read(client, handler, "/cases?case_type=insurance_claim", **FR).json()["cases"][0]
    assert (row["fields"]["category"], row["choice_labels"]) == ("fire", {"category": "Incendie"})

    exported = read(client, handler, "/exports/cases.csv?case_type=insurance_claim", **FR).text
    line = next(csv.DictReader(io.StringIO(exported)))
    assert (line["fields.category"], line["fields.category_label"]) == ("fire", "Incendie")
    assert "fields.claimed_amount_label" not in line  # only choice fields have one


def test_a_listed_case_carries_its_nearest_running_sla_deadline(
    client: TestClient, keys: dict[Role, str], container: Container
) -> None:
    install(container, "insurance_claim")
    handler = keys[Role.HANDLER]
    running = open_case(client, handler, "insurance_claim", CLAIM_FIELDS)
    none_runs = open_case(client, handler, "generic", {})
    project(container)

    rows = {r["id"]: r for r in read(client, handler, "/cases").json()["cases"]}
    clocks = read(client, handler, f"/cases/{running}").json()["slas"]
    nearest = min(datetime.fromisoformat(c["due"]["deadline"]) for c in clocks if c["running"])
    listed = rows[running]
    assert listed["sla_deadline"] is not None
    assert datetime.fromisoformat(listed["sla_deadline"]) == nearest
    assert set(listed["slas"]) == {c["sla"] for c in clocks}
    assert all(s["running"] and not s["breached"] for s in listed["slas"].values())
    assert rows[none_runs]["sla_deadline"] is None and rows[none_runs]["slas"] == {}
