"""One typed settings object, read once from the environment and a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Written by `caseledger up` with the addresses of the embedded servers it started, so that
# `caseledger status` or `keys` in another terminal find them; removed when it stops.
STACK_ENV = ".caseledger/stack.env"


class Settings(BaseSettings):
    """Everything caseledger reads from its environment.

    ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS`` keep their usual names; everything else
    is prefixed ``CASELEDGER_``. Leave the first two unset to run on the embedded servers.
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
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    broker_port: int = 9092
    db_pool_size: int = Field(default=8, ge=1)
    db_write_timeout_s: int = Field(
        default=5,
        ge=1,
        le=600,
        description="how long a write may wait for the event table's lock, and run, before "
        "it is refused with 503 (nothing stored)",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    relay_batch_size: int = Field(default=500, ge=1)
    projection_batch_size: int = Field(default=500, ge=1)
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
    reserved_topic_prefixes: str = Field(
        default="case-events,caseledger,__",
        description="comma-separated Kafka topic prefixes notifications may not publish to, "
        "besides CASELEDGER_KAFKA_TOPIC itself",
    )

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
