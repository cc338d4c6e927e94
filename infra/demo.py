"""Three demo silos, so that a newcomer sees cases arrive from each without doing anything
(``caseledger up`` installs and feeds them while ``CASELEDGER_DEMO_SILOS`` is on, its default
in development):

- a legacy claims database: the table ``legacy_claims.claims`` in the embedded PostgreSQL, a
  few thousand rows (three of them with a category code the mapping does not know, which end
  in the quarantine), polled by ``connectors/demo_claims_db.yaml``;
- a CRM that exports complaints as CSV files into ``.caseledger/drop/crm``, read by
  ``connectors/demo_crm_export.yaml``;
- a patient portal that posts signed webhooks to ``connectors/demo_patient_portal.yaml``.

The feeder (``caseledger demo-feed``) keeps them alive: a new claim row and a signed admission
every few seconds, a small CSV export now and then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from uuid import uuid4

import requests
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from infra.bootstrap import Container
from infra.db import open_pool
from infra.secrets import SecretStore
from infra.settings import Settings
from services.connectors import read_document
from services.secret_store import SecretNotFound

Pool = ConnectionPool[Connection[DictRow]]
CONNECTORS_DIR = Path(__file__).resolve().parent.parent / "connectors"
DEMO_CONNECTORS = ("demo_claims_db.yaml", "demo_crm_export.yaml", "demo_patient_portal.yaml")
SECRET = "demo_portal_webhook"  # noqa: S105 - the name of a secret, not its value
CLAIMS = 3_000
CATEGORIES = ("WD", "FI", "TH", "ST", "GL")
WARDS = ("emergency", "cardiology", "surgery", "paediatrics", "general")
log = logging.getLogger("caseledger.demo")

_CLAIMS_TABLE = """
CREATE SCHEMA IF NOT EXISTS legacy_claims;
CREATE TABLE IF NOT EXISTS legacy_claims.claims (
    claim_no      text PRIMARY KEY,
    policy_no     text NOT NULL,
    holder_id     text NOT NULL,
    holder_name   text NOT NULL,
    category_code text NOT NULL,
    amount        numeric(12, 2) NOT NULL,
    incident_date date NOT NULL,
    status        text NOT NULL DEFAULT 'N',
    remarks       text NOT NULL DEFAULT '',
    updated_at    timestamp NOT NULL DEFAULT now()
);
"""
_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")


def drop_folder(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "drop" / "crm"


def install_demo(container: Container, database_url: str) -> list[str]:
    """Create the demo silos (once) and load their connectors; answers what was loaded."""
    settings = container.settings
    _claims(container.pool, 0, CLAIMS)
    folder = drop_folder(settings)
    if not folder.exists():
        folder.mkdir(parents=True)
        _export(folder, 40, bad_lines=2)
    try:
        container.secrets.value(SECRET)
    except SecretNotFound:
        container.secrets.set(SECRET, "whsec_" + base64.b64encode(os.urandom(24)).decode())
    values = {"DATABASE_URL": database_url, "DROP_FOLDER": str(folder)}
    loaded = []
    for name in DEMO_CONNECTORS:
        text = Template((CONNECTORS_DIR / name).read_text()).safe_substitute(values)
        connector, _ = container.connector_admin.load(
            read_document(text.encode(), "application/yaml"), "caseledger demo"
        )
        loaded.append(f"{connector.name} v{connector.version}")
    return loaded


def _claims(pool: Pool, start: int, count: int) -> None:
    """Rows ``start`` .. ``start + count`` of the legacy claims table (kept if there)."""
    chance = random.Random(start)
    rows = []
    for n in range(start, start + count):
        code = "XX" if n in (17, 1_234, 2_718) else chance.choice(CATEGORIES)  # poison rows
        name = chance.choice(_NAMES)
        rows.append((
            f"CLM-{n:06}", f"PO-{chance.randrange(10**6):06}", f"CUST-{n % 997:04}", name,
            code, round(chance.uniform(150, 60_000), 2),
            datetime(2026, 1, 1, tzinfo=UTC).date() + timedelta(days=chance.randrange(330)),
            f"reported by {name}",
        ))  # fmt: skip
    with pool.connection() as conn:
        conn.execute(_CLAIMS_TABLE)
        with conn.cursor() as curs:
            curs.executemany(
                "INSERT INTO legacy_claims.claims (claim_no, policy_no, holder_id, holder_name,"
                " category_code, amount, incident_date, remarks)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )


def _export(folder: Path, count: int, bad_lines: int = 0) -> Path:
    """A CRM export of ``count`` complaints (and ``bad_lines`` broken ones), dropped whole."""
    chance = random.Random()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    lines = ["ticket;customer_no;channel;topic;severity;text;order_ref;created"]
    for _ in range(count):
        ticket = f"T-{uuid4().hex[:8].upper()}"
        created = datetime.now(UTC) - timedelta(hours=chance.randrange(72))
        lines.append(";".join((
            ticket, f"CUST-{chance.randrange(997):04}",
            chance.choice(("email", "phone", "letter", "web", "store")),
            chance.choice(("billing", "delivery", "product_quality", "staff", "other")),
            chance.choice(("low", "medium", "high")), "The customer is not happy",
            f"ORD-{chance.randrange(10**5):05}", created.strftime("%Y-%m-%d %H:%M"),
        )))  # fmt: skip
    lines += ["broken line without separators"] * bad_lines
    staged = folder.parent / f".complaints-{stamp}.csv"
    staged.write_text("\n".join(lines) + "\n")
    target = folder / f"complaints-{stamp}.csv"
    staged.rename(target)
    return target


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header of a delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class DemoFeeder:
    """Keeps the demo silos alive (see the module's docstring), on two connections of its
    own: a process of the stack that needs no ledger."""

    settings: Settings
    every_s: float = 5.0

    def __post_init__(self) -> None:
        self.pool = open_pool(self.settings.dsn, 2, "demo-feed")
        self.secrets = SecretStore(self.pool)
        self.base_url = f"http://{self.settings.api_host}:{self.settings.api_port}"

    def close(self) -> None:
        self.pool.close()

    def run(self, stop: threading.Event) -> None:
        rows, turn = CLAIMS, 0
        while not stop.wait(self.every_s):
            turn += 1
            try:
                _claims(self.pool, rows, 1)
                rows += 1
                self._admission()
                if turn % 6 == 0:
                    _export(drop_folder(self.settings), 5)
            except (requests.RequestException, OSError) as error:
                log.warning("demo feed: %s (retrying)", error)

    def _admission(self) -> None:
        admitted = datetime.now(UTC) - timedelta(minutes=random.randrange(240))
        admission = {
            "admission_id": f"ADM-{uuid4().hex[:10]}",
            "patient_id": f"PAT-{random.randrange(500):04}",
            "admitted_at": admitted.isoformat(),
            "ward": random.choice(WARDS),
            "triage": random.randint(1, 5),
        }
        body = json.dumps(admission).encode()
        webhook_id, now = f"msg_{uuid4().hex}", int(time.time())
        secret = self.secrets.value(SECRET).split()[0]
        requests.post(
            f"{self.base_url}/connectors/demo_patient_portal/webhook",
            data=body,
            headers={
                "content-type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(now),
                "webhook-signature": sign(secret, webhook_id, now, body),
            },
            timeout=10,
        )
