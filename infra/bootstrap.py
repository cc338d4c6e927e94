"""The composition root: builds every component from one Settings object.

Each builder takes keyword arguments so tests can swap a piece; nothing else in the code
reads the environment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from adapters.channels import Channel
from adapters.channels.email import EmailChannel
from adapters.channels.kafka_topic import KafkaTopicChannel
from adapters.channels.webhook import TargetRefused, WebhookChannel
from adapters.connectors import Access
from domain.context import CommandContext
from infra.analytics import Analytics
from infra.audit_bundle import AuditTrail
from infra.audit_ledger import CheckpointStore, event_tables
from infra.audit_ledger import install as install_audit
from infra.case_list_store import CaseListStore
from infra.connector_runner import IngestWorker
from infra.connector_store import ConnectorStore
from infra.content_store import PostgresContentStore
from infra.db import eventsourcing_env, migrate, open_pool, redact, schema_lock
from infra.egress import EgressPolicy, EgressRefused, IPAddress, NotificationRules, Target
from infra.event_store import EventStoreReader
from infra.health import HealthChecks, broker_check, database_check
from infra.idempotency import PostgresIdempotencyStore
from infra.kafka import BrokerProbe, ensure_topic, new_producer, topic_state
from infra.keys import PostgresKeyStore, valid_development_keys
from infra.live_metrics_store import LiveMetricsStore
from infra.notifier import Notifier, RetryPolicy
from infra.pipeline_figures import STATUS_BUDGET_S, read_pipeline_figures, status_figures
from infra.projection_set import ProjectionSet, all_projections
from infra.projector import ProjectionWorker
from infra.quarantine_store import QuarantineStore
from infra.read_model_store import ReadModelStore
from infra.relay import Relay
from infra.secrets import SecretStore
from infra.settings import Settings, roles_in
from infra.sla_watcher import SlaWatcher
from infra.subject_keys import SubjectKeys, subject_keys_for
from infra.work_queue_store import PostgresOutbox, WorkQueueStore
from services.api.app import create_app
from services.api.deps import ApiDependencies, CaseTypeRoles, WebhookIntake
from services.application import CaseLedger, Definitions
from services.case_type_document import read_document
from services.case_types import CaseTypeRegistry
from services.case_views import CaseViews
from services.connector_admin import ConnectorAdmin
from services.errors import VersionConflict
from services.ingestion import Ingestor
from services.metrics import FIGURES_BUDGET_S, MetricsPage, PipelineCollector
from services.read_models import ReadModels
from services.retry import Retry

CASE_TYPES_DIR = Path(__file__).resolve().parent.parent / "casetypes"
BUILT_IN_CASE_TYPES = ("generic.yaml",)
SAMPLE_CASE_TYPES = ("insurance_claim.yaml", "patient_care.yaml", "customer_complaint.yaml")
INSTALLER = CommandContext(actor_id="caseledger", actor_role="admin")
SCRAPE_S = 0.9 * FIGURES_BUDGET_S  # the read gives up before the scrape stops waiting for it
INSTALL_RETRY = Retry(attempts=3, lost=(VersionConflict,))


@dataclass
class Container:
    """The wired components of one process."""

    settings: Settings
    pool: ConnectionPool[Connection[DictRow]]
    case_types: CaseTypeRegistry
    ledger: CaseLedger
    reader: EventStoreReader
    case_list: CaseListStore
    projections: ProjectionSet
    work_queues: WorkQueueStore
    keys: PostgresKeyStore
    relay: Relay
    secrets: SecretStore
    connectors: ConnectorStore
    quarantine: QuarantineStore
    ingestor: Ingestor
    connector_admin: ConnectorAdmin
    #: The analysts' schema (labels and views over the read models).
    analytics: Analytics
    #: The signed checkpoints of the event logs (tamper evidence, ``infra.audit_ledger``).
    audit: CheckpointStore
    #: The keys of data subjects (personal fields are sealed under them).
    subject_keys: SubjectKeys
    #: Called on close, for what the builders below add (e.g. the API's broker probe).
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.on_close:
            close()
        self.relay.close()
        self.projections.close()
        self.ledger.close()
        self.case_types.close()
        self.pool.close()


def bootstrap(settings: Settings, name: str = "app") -> Container:
    """Connect to PostgreSQL, create missing tables, and wire the components."""
    pool = open_pool(settings.dsn, settings.db_pool_size, name)
    migrate(pool)
    with schema_lock(pool):
        timeout = settings.db_write_timeout_s
        subject_keys = subject_keys_for(pool, settings.data_dir)
        subject_keys.create()
        secrets = SecretStore(pool)
        policy = NotificationRules(EgressPolicy.from_settings(settings), secrets)
        case_types = CaseTypeRegistry(
            env=eventsourcing_env(settings.dsn, 2, timeout), policy=policy
        )
        ledger = CaseLedger(
            case_types,
            env=eventsourcing_env(
                settings.dsn, settings.db_pool_size, timeout, settings.case_cache_size
            ),
            deadline_s=settings.command_deadline_s,
            vault=subject_keys,
        )
        install_audit(pool, event_tables(ledger, case_types))  # before anything is written
        install_case_types(case_types, BUILT_IN_CASE_TYPES)
    reader = EventStoreReader(ledger)
    ledger.recorded_versions = reader  # "the case as recorded at T" in one query (audit)
    projections = ProjectionSet(pool, reader, all_projections(ledger))
    analytics = Analytics(pool, case_types)
    with schema_lock(pool):
        projections.create_tables()
        analytics.create()
    projections.after_swap.append(analytics.recreate_views)
    analytics.refresh_labels(force=True)
    quarantine = QuarantineStore(pool)
    claims = PostgresIdempotencyStore(pool, settings.idempotency_keep_s)
    ingestor = Ingestor(ledger, claims, quarantine)
    connectors = ConnectorStore(pool, case_types.current)
    case_types.dependents.append(connectors.feeding)
    return Container(
        settings=settings,
        pool=pool,
        case_types=case_types,
        ledger=ledger,
        reader=reader,
        case_list=CaseListStore(pool, clock=lambda: ledger.clock()),  # noqa: PLW0108 - tests swap it
        projections=projections,
        work_queues=WorkQueueStore(pool),
        keys=PostgresKeyStore(pool),
        relay=Relay(settings, pool, reader),
        secrets=secrets,
        connectors=connectors,
        quarantine=quarantine,
        ingestor=ingestor,
        connector_admin=ConnectorAdmin(connectors, quarantine, ingestor, case_types.current),
        analytics=analytics,
        audit=CheckpointStore(pool, event_tables(ledger, case_types), settings),
        subject_keys=subject_keys,
    )


def install_case_types(registry: CaseTypeRegistry, files: tuple[str, ...]) -> dict[str, int]:
    """Publish the shipped case-type documents that are not current yet (safe to repeat,
    also from several processes at once); answers each type's current version."""
    installed = {}
    for name in files:
        path = CASE_TYPES_DIR / name
        document = read_document(path.read_bytes(), "application/yaml")
        reason = f"shipped with caseledger ({name})"
        # Another process installing it at the same moment: the next attempt finds it current.
        installed[document["name"]] = INSTALL_RETRY.run(
            partial(registry.install, document, reason, INSTALLER)
        )
    return installed


def build_api(container: Container) -> FastAPI:
    """The HTTP API; in production, refused while a development key is valid."""
    if container.settings.environment == "production":
        _refuse_development_keys(container.keys)
    probe = BrokerProbe(container.settings)
    health = HealthChecks(
        {"database": database_check(container.pool), "broker": broker_check(probe)}
    )
    container.on_close.extend([health.close, probe.close])

    deps = ApiDependencies(
        ledger=container.ledger,
        case_types=container.case_types,
        cases=container.case_list,
        keys=container.keys,
        views=CaseViews(container.ledger),
        secrets=container.secrets,
        contents=PostgresContentStore(container.pool),
        idempotency=PostgresIdempotencyStore(container.pool, container.settings.idempotency_keep_s),
        health=health,
        max_body_bytes=container.settings.max_body_bytes,
        max_document_bytes=container.settings.max_document_bytes,
        deadline_s=container.settings.command_deadline_s,
        metrics=metrics_page(container),
        connector_admin=container.connector_admin,
        projections=container.projections,
        audit=AuditTrail(container.audit, publish=False),  # the checkpointer publishes
        read_models=ReadModels(
            ReadModelStore(container.pool),
            container.case_types,
            clock=lambda: container.ledger.clock(),  # noqa: PLW0108 - tests replace the clock
            before_read=container.analytics.refresh_labels,
        ),
        webhooks=WebhookIntake(
            container.connectors.current,
            container.secrets.value,
            container.ingestor,
            container.connectors.count_pushed,
        ),
        case_type_roles=case_type_roles(container.settings),
    )
    api = create_app(deps)
    api.state.live_metrics = LiveMetricsStore(container.pool)  # GET /live-metrics reads it
    return api


def case_type_roles(settings: Settings) -> CaseTypeRoles:
    """Which roles author, review and publish case types, from the settings."""
    return CaseTypeRoles(
        authors=roles_in(settings.case_type_authors),
        reviewers=roles_in(settings.case_type_reviewers),
        publishers=roles_in(settings.case_type_publishers),
    )


def metrics_page(container: Container) -> MetricsPage:
    """What GET /metrics answers, with the pipeline's figures read at each scrape."""
    page = MetricsPage(PipelineCollector(lambda: read_pipeline_figures(container, SCRAPE_S)))
    container.on_close.append(page.close)
    return page


def _refuse_development_keys(keys: PostgresKeyStore) -> None:
    found = valid_development_keys(keys)
    if found:
        ids = ", ".join(f"{k.key_id} ({k.label})" for k in found)
        raise RuntimeError(
            f"production refuses to serve while development keys work: {ids}; revoke each "
            "with `caseledger keys revoke ID` and create real ones with `caseledger keys create`"
        )


def build_projector(container: Container) -> ProjectionWorker:
    return ProjectionWorker(container.settings, container.projections)


def build_ingest_worker(container: Container) -> IngestWorker:
    access = Access(
        secret=container.secrets.value,
        kafka_bootstrap_servers=",".join(container.settings.kafka_servers),
    )
    return IngestWorker(container.connectors, container.ingestor, access)


def build_sla_watcher(container: Container) -> SlaWatcher:
    return SlaWatcher(container.ledger, container.work_queues, container.settings.sla_poll_s)


def build_notifier(container: Container, settings: Settings | None = None) -> Notifier:
    """The notifier, sending through the channels of :func:`notification_channels`;
    ``settings`` replaces the container's for it (another mail relay, fewer attempts)."""
    settings = settings or container.settings
    channels = notification_channels(settings, container.ledger.definitions, container.secrets)
    notifier = Notifier(
        PostgresOutbox(container.pool),
        container.ledger,
        channels,
        retry=RetryPolicy(settings.notify_max_attempts),
        poll_s=settings.notify_poll_s,
    )
    container.on_close.append(notifier.close)
    return notifier


def notification_channels(
    settings: Settings, definitions: Definitions, secrets: SecretStore
) -> dict[str, Channel]:
    """The channels notifications leave by, under the names case types give them; webhooks
    and topics are checked against the egress policy IT sets."""
    egress = EgressPolicy.from_settings(settings)
    return {
        "email": EmailChannel(
            settings.smtp_url, settings.mail_from, json.loads(settings.notify_role_addresses)
        ),
        "webhook": WebhookChannel(CheckedEgress(egress), definitions, secrets),
        "kafka": KafkaTopicChannel(
            topic_problem=egress.topic_problem,
            ensure_topic=partial(_ensure_notification_topic, settings),
            new_producer=partial(new_producer, settings),
        ),
    }


@dataclass(frozen=True)
class CheckedEgress:
    """The egress policy as the webhook channel asks it (a refusal is its TargetRefused)."""

    policy: EgressPolicy

    def resolve(self, url: str) -> tuple[Target, IPAddress]:
        try:
            return self.policy.resolve(url)
        except EgressRefused as refused:
            raise TargetRefused(str(refused)) from None


def _ensure_notification_topic(settings: Settings, topic: str) -> None:
    ensure_topic(settings.model_copy(update={"kafka_topic": topic}))


def status_report(container: Container) -> dict[str, Any]:
    """Where the relay and each projection stand, against the event store's head: the
    figures ``GET /metrics`` shows too (``infra.pipeline_figures``)."""
    settings = container.settings
    figures = read_pipeline_figures(container, STATUS_BUDGET_S)
    return {
        "database_url": redact(settings.dsn),
        "kafka": {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "topic": settings.kafka_topic,
            **topic_state(settings),
        },
        **status_figures(figures),
    }
