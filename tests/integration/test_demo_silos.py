"""The demo silos of `make run` work as shipped: their connector documents load, the legacy
table and the CSV drop are ingested (their poison records quarantined), and a signed webhook
opens a case. (tests/e2e/test_make_run.py watches the whole `up`, in make test-all.)"""

from __future__ import annotations

import json
import threading
import time
from uuid import uuid4

from fastapi.testclient import TestClient

from infra.bootstrap import CASE_TYPES_DIR, SAMPLE_CASE_TYPES, Container, install_case_types
from infra.connector_runner import ConnectorRunner
from infra.connectors_cli import access_of
from infra.demo import CLAIMS, SECRET, drop_folder, install_demo, sign


def test_the_demo_silos_load_and_feed_cases(container: Container, client: TestClient) -> None:
    assert CASE_TYPES_DIR.exists()
    install_case_types(container.case_types, SAMPLE_CASE_TYPES)
    loaded = install_demo(container, container.settings.dsn)
    assert loaded == ["demo_claims_db v1", "demo_crm_export v1", "demo_patient_portal v1"]

    for name in ("demo_claims_db", "demo_crm_export"):
        runner = ConnectorRunner(
            container.connectors, container.ingestor, access_of(container), name
        )
        report = runner.run(threading.Event(), once=True)
        assert report.adds_up
        if name == "demo_claims_db":
            assert (report.ingested, report.quarantined) == (CLAIMS - 3, 3)
        else:
            assert (report.ingested, report.quarantined) == (40, 2)
    assert list((drop_folder(container.settings) / "archive").glob("complaints-*.csv"))

    admission = {"admission_id": "ADM-1", "patient_id": "PAT-0001", "ward": "surgery",
                 "admitted_at": "2026-11-30T08:00:00+00:00", "triage": 2}  # fmt: skip
    body = json.dumps(admission).encode()
    webhook_id, now = f"msg_{uuid4().hex}", int(time.time())
    answer = client.post(
        "/connectors/demo_patient_portal/webhook",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign(container.secrets.value(SECRET), webhook_id, now, body),
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["records"][0]["verdict"] == "ingested"
