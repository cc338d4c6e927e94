"""Benchmark: signed webhook deliveries/s with the whole stack running, vs a no-op FastAPI POST.

``caseledger serve``, ``relay`` and ``project`` run as real processes on a fresh database and
broker, with a connector of kind webhook for the built-in ``generic`` case type and its
``whsec_`` secret in the secret store. Deliveries are signed beforehand (Standard Webhooks:
``webhook-id``, ``webhook-timestamp`` of now, ``webhook-signature``), each with its own id (the
id is the idempotency key: a repeated id would answer the first answer and store nothing) and
records of distinct ids, so each record opens a case. `wrk` (``make wrk``) sends them from a
file, each thread through its own slice (bench/webhook.lua), (a) one record per delivery and
(b) BATCH records per delivery. The baseline, measured in the same run by the same wrk with
the same headers and a body of the same size, is bench/http.py's no-op FastAPI POST served
with the API's options. Answers that are not 2xx are counted and printed, and so are the
records the answers say were ingested: a rate made of refusals or quarantines would mean
nothing, and a run that sent an id twice (the file was too short) is refused.

Run on its own: ``.venv/bin/python -m bench.webhook [--quick]`` (from the project root).
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from uuid import uuid4

from bench.common import CONSOLE, BenchEnv, Figure, Scale, bench_environment, run_alone
from bench.http import CONNECTIONS, THREADS, Load, load_of, noop_server, run_wrk, stack
from infra.demo import sign
from infra.embedded import free_port

NAME = "webhook"
CONNECTOR = "bench_portal"
SECRET = "bench_portal_signing"  # the name of a secret in the store, not its value
BATCH = 10
# Deliveries signed per second of run, per kind: above what the stack answers on 2 cores
# (measured: ~200/s single, ~120/s batches); a run that exhausts them is refused, not reported.
SIGNED_PER_S = {1: 1_000, BATCH: 300}
NOOP_PATH = "/cases/bench/notes"
LUA = Path(__file__).with_name("webhook.lua")
DOCUMENT: dict[str, Any] = {
    "name": CONNECTOR,
    "description": "Complaints pushed by a portal (benchmark)",
    "kind": "webhook",
    "system": "bench-portal",
    "source": {"secret": SECRET, "tolerance": "1h"},
    "mapping": {
        "case_type": "generic",
        "record_id": "record.complaint_id",
        "title": '"Complaint " + record.complaint_id',
        "party_id": "record.customer_id",
    },
}


@dataclass(frozen=True)
class Delivery:
    """Where a wrk run posts, and how many records each delivery carries."""

    path: str
    records: int


@dataclass(frozen=True)
class Outcome:
    """What one wrk run measured: the answers, and the records ingested by the 2xx ones."""

    load: Load
    ingested: int
    wrapped: int

    @property
    def records_per_s(self) -> float:
        return self.ingested / self.load.seconds if self.load.seconds else 0.0


def complaint(tag: str, n: int) -> dict[str, Any]:
    return {
        "complaint_id": f"CMP-{tag}-{n:07}",
        "customer_id": f"CUS-{n % 500:04}",
        "channel": "portal",
        "summary": "The parcel arrived damaged and the refund was refused",
    }


def signed_lines(secret: str, delivery: Delivery, count: int, noop: bool = False) -> list[str]:
    """``count`` deliveries signed now, one tab-separated line each (see webhook.lua);
    ``noop``: the same headers with a no-op note body of the same size."""
    tag, now, lines = uuid4().hex[:8], int(time.time()), []
    for i in range(count):
        records = [complaint(tag, i * delivery.records + r) for r in range(delivery.records)]
        document: Any = records[0] if delivery.records == 1 else records
        body = json.dumps(document, separators=(",", ":")).encode()
        if noop:
            body = json.dumps({"text": "x" * (len(body) - len('{"text":""}'))}).encode()
        webhook_id = f"msg_{uuid4().hex}"
        signature = sign(secret, webhook_id, now, body)
        lines.append("\t".join([delivery.path, webhook_id, str(now), signature, body.decode()]))
    return lines


def wrk(url: str, seconds: float, lines: list[str]) -> Outcome:
    """Run wrk against ``url`` for ``seconds``, each thread sending its slice of ``lines``."""
    raw = run_wrk(url, seconds, LUA, [str(THREADS), *lines])
    return Outcome(load_of(raw), int(raw["ingested"]), int(raw["wrapped"]))


def install_connector(env: BenchEnv) -> str:
    """The signing secret set and the webhook connector loaded; answers the secret."""
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    env.container.secrets.set(SECRET, secret)
    env.container.connector_admin.load(DOCUMENT, "bench")
    return secret


def deliver(base: str, seconds: float, secret: str, delivery: Delivery) -> Outcome:
    """One wrk run of fresh deliveries; refused when a thread ran out of them."""
    count = int(SIGNED_PER_S[delivery.records] * seconds) + 2 * CONNECTIONS
    outcome = wrk(base, seconds, signed_lines(secret, delivery, count))
    if outcome.wrapped:
        raise RuntimeError(
            f"{outcome.wrapped:,} deliveries of {delivery.records} record(s) were sent twice:"
            f" raise SIGNED_PER_S above {outcome.load.requests / seconds:,.0f}/s"
        )
    return outcome


@dataclass(frozen=True)
class Round:
    """Every figure of one run."""

    workers: int
    noop: Outcome
    single: Outcome
    batch: Outcome


def measure(env: BenchEnv, seconds: float) -> Round:
    settings = env.settings.model_copy(update={"api_port": free_port()})
    env = replace(env, settings=settings)
    secret = install_connector(env)
    single = Delivery(f"/connectors/{CONNECTOR}/webhook", 1)
    batch = Delivery(single.path, BATCH)
    noop_lines = signed_lines(secret, Delivery(NOOP_PATH, 1), 20_000, noop=True)
    with noop_server(settings, True, env.workdir / "noop.log") as base:
        wrk(base, 1, noop_lines)  # warm-up
        noop = wrk(base, seconds, noop_lines)  # ids repeat: the no-op reads none
    with stack(env) as base:
        deliver(base, 2, secret, single)  # warm-up
        measured_single = deliver(base, seconds, secret, single)
        measured_batch = deliver(base, seconds, secret, batch)
    return Round(settings.api_workers, noop, measured_single, measured_batch)


def ingested(outcome: Outcome, per_delivery: int) -> str:
    """Records/s, and in red how many records of the 2xx answers were not ingested."""
    sent = (outcome.load.requests - outcome.load.non_2xx) * per_delivery
    missing = sent - outcome.ingested
    short = f", [red]{missing:,} of {sent:,} records not ingested[/]" if missing else ""
    return f"{outcome.records_per_s:,.0f} records/s ingested{short}"


def report(round_: Round) -> list[Figure]:
    n = f"{round_.workers} worker{'s' if round_.workers > 1 else ''}"
    for what, outcome, sent in (
        ("no-op POST, same headers and size", round_.noop, 1),
        ("webhook, 1 record per delivery", round_.single, 1),
        (f"webhook, {BATCH} records per delivery", round_.batch, BATCH),
    ):
        records = "" if outcome is round_.noop else f", {ingested(outcome, sent)}"
        CONSOLE.print(f"    {what:<36} {outcome.load.line()}{records}")
    baseline = f"no-op FastAPI POST, {n}"
    figures = [
        Figure(NAME, f"webhook deliveries/s, 1 record each, {n}",
               round_.single.load.ok_per_s, "req/s", baseline, round_.noop.load.ok_per_s),
        Figure(NAME, f"webhook deliveries/s, {BATCH} records each, {n}",
               round_.batch.load.ok_per_s, "req/s", baseline, round_.noop.load.ok_per_s),
        Figure(NAME, f"webhook records/s, {BATCH} per delivery, {n}",
               round_.batch.records_per_s, "records/s", f"{baseline} (requests/s)",
               round_.noop.load.ok_per_s),
    ]  # fmt: skip
    for figure in figures:
        CONSOLE.print(f"    {figure.label}: [bold cyan]{figure.verdict()}[/]")
    return figures


def run(scale: Scale) -> list[Figure]:
    CONSOLE.rule(
        f"[bold]webhook deliveries with wrk ({CONNECTIONS} connections), relay and projection"
        " running, vs a no-op FastAPI POST"
    )
    seconds = 5.0 if scale.quick else 15.0
    with bench_environment(NAME) as env:
        return report(measure(env, seconds))


if __name__ == "__main__":
    run_alone(run)
