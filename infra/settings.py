"""One typed settings object, read once from the environment and a ``.env`` file."""

from __future__ import annotations

import os
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.auth import Role

# Written by `caseledger up` with the addresses of the embedded servers it started, so that
# `caseledger status` or `keys` in another terminal find them; removed when it stops.
STACK_ENV = ".caseledger/stack.env"


class Settings(BaseSettings):
    """Everything caseledger reads from its environment.

    ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` keep their usual names; everything else
    is prefixed ``CASELEDGER_``. Leave the first two unset to run on the embedded servers.

    ``CASELEDGER_ENVIRONMENT=production`` refuses to start (these settings do not load) on
    the insecure defaults made for a laptop:

    - no ``DATABASE_URL`` or no ``KAFKA_BOOTSTRAP_SERVERS`` (the embedded servers);
    - an API listening beyond loopback (``CASELEDGER_API_HOST=0.0.0.0``) in plain HTTP:
      give it ``CASELEDGER_TLS_CERT_FILE`` and ``CASELEDGER_TLS_KEY_FILE``, or say with
      ``CASELEDGER_BEHIND_TLS_PROXY=true`` that a TLS-terminating proxy is the only way in.

    ``caseledger up`` refuses production, and the API refuses to serve while a development
    key (made by ``caseledger up``) is valid: ``caseledger keys revoke`` it.
    """

    model_config = SettingsConfigDict(
        env_prefix="CASELEDGER_",
        env_file=(".env", STACK_ENV),
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    environment: Literal["development", "production"] = "development"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CASELEDGER_DATABASE_URL")
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "CASELEDGER_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    kafka_topic: str = "case-events"
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    projection_group: str = "caseledger-case-list"
    data_dir: Path = Path(".caseledger")
    demo_silos: bool = Field(
        default=True,
        description="`caseledger up` creates three demo silos (a legacy claims table, a CSV "
        "drop folder, a webhook sender) with their connectors, and feeds them",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        default_factory=lambda: max(1, min(os.cpu_count() or 1, 4)),
        ge=1,
        le=64,
        description="how many processes serve the API on its port (each with its own "
        "connection pools: up to about 26 PostgreSQL connections under load); default one per "
        "CPU, at most 4 (more would compete with PostgreSQL and the workers on one machine)",
    )
    tls_cert_file: Path | None = Field(default=None, description="the API's TLS certificate")
    tls_key_file: Path | None = Field(default=None, description="its private key")
    behind_tls_proxy: bool = Field(
        default=False,
        description="true when a TLS-terminating proxy is the only way to the API (lets "
        "production listen beyond loopback in plain HTTP)",
    )
    broker_port: int = 9092
    db_pool_size: int = Field(default=8, ge=1)
    case_cache_size: int = Field(
        default=1000,
        ge=0,
        le=1_000_000,
        description="how many recently used cases each process keeps in memory, brought up "
        "to date from the store before every use (0: none; a case of 10,000 notes takes a few MB)",
    )
    db_write_timeout_s: int = Field(
        default=5,
        ge=1,
        le=600,
        description="how long a write may wait for the event table's lock, and run, before "
        "it is refused with 503 (nothing stored)",
    )
    command_deadline_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="how long a command or a case read may take; a command that cannot be "
        "stored in time is refused with 503 and never stored later",
    )
    idempotency_keep_s: float = Field(
        default=86_400.0,
        gt=0,
        description="how long an Idempotency-Key of a case command is remembered",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    max_document_bytes: int = Field(
        default=16 * 1_048_576,
        ge=1_024,
        description="the largest document POST /documents takes (documents and attachments "
        "are kept in the content store, not in events)",
    )
    relay_batch_size: int = Field(
        default=2000,
        ge=1,
        description="events the relay reads and sends at a time (2,000 against 500: ~45% more "
        "events/s, fuller partition batches; a crash re-sends at most two batches)",
    )
    projection_batch_size: int = Field(default=2_000, ge=1)
    #: Stored events a rebuild or drift check reads and applies per transaction.
    projection_rebuild_chunk: int = Field(default=5_000, ge=1, le=100_000)
    relay_idle_wait_s: float = Field(default=0.5, gt=0)
    projection_idle_sweep_s: float = Field(default=10.0, gt=0)
    sla_poll_s: float = Field(default=1.0, gt=0)
    notify_poll_s: float = Field(default=1.0, gt=0)
    notify_max_attempts: int = Field(default=5, ge=1)
    smtp_url: str | None = Field(
        default=None, description="smtp://host:port of the mail relay for e-mail notifications"
    )
    mail_from: str = "caseledger@localhost"
    notify_role_addresses: str = Field(
        default="{}",
        description='JSON: who receives notifications sent to a role, e.g. {"manager": '
        '["claims-managers@example.com"]}',
    )
    webhook_allowlist: str = Field(
        default="",
        description="comma-separated webhook targets IT allows: host, host:port, *.domain "
        "(any host under it), * (any public host), or URL prefixes "
        "(https://hooks.example.com/claims/). Private, loopback, link-local and other internal "
        "addresses are reached only when an entry names them exactly (10.0.0.8:8080, "
        "localhost:9000). Empty: no webhook may be published or sent.",
    )
    # --- tamper evidence (infra.audit_ledger, docs/audit.md) ---
    audit_checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="how often `caseledger up`'s checkpointer signs the event logs' Merkle "
        "roots (only when a log grew since its last checkpoint)",
    )
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="the Ed25519 checkpoint signing key (PEM); default "
        "<CASELEDGER_DATA_DIR>/audit/checkpoint-signing.key, made on first use. Keep it out "
        "of reach of whoever can write the database",
    )
    audit_topic: str = Field(
        default="audit-checkpoints",
        description="the Kafka topic every signed checkpoint is published to",
    )
    reserved_topic_prefixes: str = Field(
        default="case-events,caseledger,__",
        description="comma-separated Kafka topic prefixes notifications may not publish to, "
        "besides CASELEDGER_KAFKA_TOPIC itself",
    )

    # --- four-eyes publication of case types (docs/case-types.md, "Drafts, review and
    # publication"): which roles do what, comma-separated; a reviewer must also be another
    # person than whoever wrote or submitted the draft ---
    case_type_authors: str = Field(
        default="admin",
        description="roles that draft, edit, validate, submit and discard case-type versions",
    )
    case_type_reviewers: str = Field(
        default="admin,manager",
        description="roles that approve or reject a submitted case-type draft (never their own)",
    )
    case_type_publishers: str = Field(
        default="admin", description="roles that publish an approved case-type draft"
    )

    @field_validator("case_type_authors", "case_type_reviewers", "case_type_publishers")
    @classmethod
    def _known_roles(cls, text: str) -> str:
        roles_in(text)
        return text

    @model_validator(mode="after")
    def _safe_for_production(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both CASELEDGER_TLS_CERT_FILE and CASELEDGER_TLS_KEY_FILE")
        problems = self.production_problems() if self.environment == "production" else []
        if problems:
            raise ValueError("production refuses to start: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What makes these settings unsafe outside a laptop, each with its fix."""
        problems = []
        if not self.database_url:
            problems.append(
                "DATABASE_URL is not set (the embedded PostgreSQL is for development): "
                "point it at your PostgreSQL server"
            )
        if not self.kafka_bootstrap_servers:
            problems.append(
                "KAFKA_BOOTSTRAP_SERVERS is not set (the embedded broker is for development): "
                "point it at your Kafka cluster"
            )
        tls = self.tls_cert_file is not None or self.behind_tls_proxy
        if not _loopback(self.api_host) and not tls:
            problems.append(
                f"the API would serve plain HTTP on {self.api_host}: set "
                "CASELEDGER_TLS_CERT_FILE and CASELEDGER_TLS_KEY_FILE, or "
                "CASELEDGER_BEHIND_TLS_PROXY=true when a TLS proxy is the only way in"
            )
        return problems

    def as_env(self) -> dict[str, str]:
        """Environment variables that make a child process read these same settings."""
        plain = {
            "database_url": "DATABASE_URL",
            "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
        }
        return {
            plain.get(name, f"CASELEDGER_{name.upper()}"): str(value)
            for name in type(self).model_fields
            if (value := getattr(self, name)) is not None
        }

    @property
    def kafka_servers(self) -> list[str]:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: run `caseledger up` to start the embedded "
                "broker, or set it to your Kafka cluster (host:port,host:port)"
            )
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    @property
    def dsn(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set: run `caseledger up` to start the embedded PostgreSQL, "
                "or set it, e.g. postgresql://user:password@host:5432/caseledger"
            )
        return self.database_url


def roles_in(text: str) -> frozenset[Role]:
    """The roles a comma-separated setting names (``admin,manager``); at least one, each a
    known role."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    known = ", ".join(r.value for r in Role)
    unknown = [n for n in names if n not in {r.value for r in Role}]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}; roles are {known} (comma-separated)")
    if not names:
        raise ValueError(f"name at least one role ({known}), comma-separated")
    return frozenset(Role(n) for n in names)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
