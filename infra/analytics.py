"""The ``analytics`` schema: views with stable names and columns over the read-model tables,
the contract for analysts and BI tools (docs/read-models.md, "The analytics schema").

This module owns the schema: its label table ``analytics.labels`` (one row per label a
published case-type version declares) and its views. The views are plain SQL over the
projections' live tables; a rebuild's swap drops those tables (and so the views over them),
so :meth:`Analytics.recreate_views` is registered in ``ProjectionSet.after_swap`` and runs
inside the swap's transaction: analysts never see a view missing.

Labels are copied from the case-type definitions when a process starts (bootstrap), and
then lazily: :meth:`Analytics.refresh_labels` looks at the case-type store's head (one
cheap query, at most every :data:`LABEL_CHECK_S`) and loads the versions published since;
the read-model API calls it before each answer. Views show English labels (else the key);
``analytics.labels`` holds every language.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from domain.definition import Definition
from infra.sla_states import case_sla_rank_sql, clock_state_sql, running_clock_sql
from services.case_types import CaseTypeRegistry
from services.case_view_phrases import CLOSED_STATUS, PRIORITIES

SCHEMA = "analytics"
#: How often, at most, a process asks the case-type store whether a version was published.
LABEL_CHECK_S = 2.0

_LABELS_TABLE = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.labels (
    case_type          text NOT NULL,
    case_type_version  integer NOT NULL,
    kind               text NOT NULL,
    key                text NOT NULL,
    language           text NOT NULL,
    label              text NOT NULL,
    PRIMARY KEY (case_type, case_type_version, kind, key, language)
);
"""


def _label(alias: str, kind: str, key: str, case_type: str, version: str | None) -> str:
    """A join on the English label of ``key``: of the version, or of the latest one."""
    if version is None:
        return (
            f" LEFT JOIN analytics.current_labels {alias} ON {alias}.case_type = {case_type}"
            f" AND {alias}.kind = '{kind}' AND {alias}.key = {key} AND {alias}.language = 'en'"
        )
    return (
        f" LEFT JOIN analytics.labels {alias} ON {alias}.case_type = {case_type}"
        f" AND {alias}.case_type_version = {version} AND {alias}.kind = '{kind}'"
        f" AND {alias}.key = {key} AND {alias}.language = 'en'"
    )


_STAY = "extract(epoch FROM {end} - {start})::double precision"
_PERCENTILES = (
    "percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY {value}) AS p, count(*) AS n"
)

#: A case's fields with each personal value, sealed under its data subject's key, as null:
#: ciphertext says nothing to an analyst (docs/read-models.md, docs/audit.md).
_OPEN_FIELDS = """(SELECT coalesce(jsonb_object_agg(f.key, CASE
          WHEN jsonb_typeof(f.value) = 'object' AND f.value ? 'sealed' THEN 'null'::jsonb
          ELSE f.value END), '{}'::jsonb)
        FROM jsonb_each(c.fields) f)"""
#: name -> SELECT; created in this order (later views read earlier ones).
VIEWS: dict[str, str] = {
    "current_labels": """
SELECT DISTINCT ON (case_type, kind, key, language)
       case_type, case_type_version, kind, key, language, label
FROM analytics.labels
ORDER BY case_type, kind, key, language, case_type_version DESC""",
    "cases": f"""
SELECT c.case_id, c.case_type, coalesce(lt.label, c.case_type) AS case_type_label,
       c.case_type_version, c.title, c.status, coalesce(ls.label, c.status) AS status_label,
       c.final, c.priority, coalesce(lp.label, c.priority) AS priority_label,
       c.assignee, c.queue, c.party_id, c.opened_at, c.updated_at, c.closed_at,
       {_STAY.format(end="c.closed_at", start="c.opened_at")} AS cycle_time_s,
       c.reopened AS reopen_count, c.notes AS note_count, c.escalations, c.sla_breaches,
       c.sla_deadline, c.source->>'system' AS source_system,
       c.source->>'record_id' AS source_record_id, c.source, {_OPEN_FIELDS} AS fields, c.version
FROM public.case_list c
{_label("lt", "case_type", "c.case_type", "c.case_type", "c.case_type_version")}
{_label("ls", "state", "c.status", "c.case_type", "c.case_type_version")}
{_label("lp", "priority", "c.priority", "c.case_type", "c.case_type_version")}""",
    "status_history": f"""
SELECT h.case_id, h.seq, h.case_type, coalesce(lt.label, h.case_type) AS case_type_label,
       h.status, coalesce(ls.label, h.status) AS status_label, h.final, h.kind,
       h.transition, coalesce(ltr.label, h.transition) AS transition_label,
       h.from_status, coalesce(lf.label, h.from_status) AS from_status_label,
       h.entered_at, h.left_at,
       {_STAY.format(end="h.left_at", start="h.entered_at")} AS duration_s,
       h.actor_id, h.actor_role, h.reason, h.case_version
FROM public.status_history h
LEFT JOIN public.case_list c ON c.case_id = h.case_id
{_label("lt", "case_type", "h.case_type", "h.case_type", "c.case_type_version")}
{_label("ls", "state", "h.status", "h.case_type", "c.case_type_version")}
{_label("ltr", "transition", "h.transition", "h.case_type", "c.case_type_version")}
{_label("lf", "state", "h.from_status", "h.case_type", "c.case_type_version")}""",
    "sla_outcomes": f"""
SELECT o.case_id, o.case_type, coalesce(lt.label, o.case_type) AS case_type_label,
       o.sla, o.run, o.milestone, o.outcome, o.due_at, o.at,
       c.queue, c.assignee
FROM public.sla_outcomes o
LEFT JOIN public.case_list c ON c.case_id = o.case_id
{_label("lt", "case_type", "o.case_type", "o.case_type", None)}""",
    "sla_status": f"""
SELECT c.case_id, c.title, c.case_type, coalesce(lt.label, c.case_type) AS case_type_label,
       s.sla, {clock_state_sql("now()")} AS state,
       (s.clock->>'deadline')::timestamptz AS due_at,
       extract(epoch FROM (s.clock->>'deadline')::timestamptz - now())::double precision
           AS time_left_s,
       coalesce((s.clock->>'warned')::boolean, false) AS warned,
       c.priority, c.assignee, c.queue
FROM public.case_list c
CROSS JOIN LATERAL jsonb_each(c.slas) AS s(sla, clock)
{_label("lt", "case_type", "c.case_type", "c.case_type", "c.case_type_version")}
WHERE NOT c.final AND c.sla_deadline IS NOT NULL AND {running_clock_sql()}""",
    "cycle_times": f"""
SELECT g.case_type, coalesce(lt.label, g.case_type) AS case_type_label, g.state,
       coalesce(ls.label, g.state) AS state_label, g.month,
       g.p[1] AS p50_s, g.p[2] AS p90_s, g.p[3] AS p99_s, g.n AS count
FROM (
    SELECT case_type, NULL::text AS state, month, {_PERCENTILES.format(value="took")}
    FROM (SELECT case_type, date_trunc('month', closed_at AT TIME ZONE 'UTC')::date AS month,
                 {_STAY.format(end="closed_at", start="opened_at")} AS took
          FROM public.case_list WHERE closed_at IS NOT NULL) closed
    GROUP BY GROUPING SETS ((case_type), (case_type, month))
    UNION ALL
    SELECT case_type, status, month, {_PERCENTILES.format(value="took")}
    FROM (SELECT case_type, status,
                 date_trunc('month', left_at AT TIME ZONE 'UTC')::date AS month,
                 {_STAY.format(end="left_at", start="entered_at")} AS took
          FROM public.status_history WHERE left_at IS NOT NULL) stays
    GROUP BY GROUPING SETS ((case_type, status), (case_type, status, month))
) g
{_label("lt", "case_type", "g.case_type", "g.case_type", None)}
{_label("ls", "state", "g.state", "g.case_type", None)}""",
    "throughput_daily": f"""
SELECT m.day, m.case_type, coalesce(lt.label, m.case_type) AS case_type_label,
       m.opened, m.closed, m.reopened
FROM (
    SELECT (h.entered_at AT TIME ZONE 'UTC')::date AS day, h.case_type,
           count(*) FILTER (WHERE h.kind = 'opened') AS opened,
           count(*) FILTER (WHERE h.closes) AS closed,
           count(*) FILTER (WHERE h.kind = 'reopened') AS reopened
    FROM public.status_history h
    GROUP BY 1, 2
) m
{_label("lt", "case_type", "m.case_type", "m.case_type", None)}""",
    "workload": f"""
SELECT w.dimension, w.key, w.case_type, coalesce(lt.label, w.case_type) AS case_type_label,
       w.open_cases, w.at_risk, w.breached
FROM (
    SELECT d.dimension, CASE d.dimension WHEN 'assignee' THEN c.assignee ELSE c.queue END
               AS key,
           c.case_type, count(*) AS open_cases,
           count(*) FILTER (WHERE c.rank = 2) AS at_risk,
           count(*) FILTER (WHERE c.rank = 3) AS breached
    FROM (SELECT c.*, {case_sla_rank_sql("now()")} AS rank
          FROM public.case_list c WHERE NOT c.final) c
    CROSS JOIN (VALUES ('assignee'), ('queue')) AS d(dimension)
    GROUP BY 1, 2, 3
) w
{_label("lt", "case_type", "w.case_type", "w.case_type", None)}""",
}
#: Changes whenever a view's SQL changes: views are recreated only then (or after a swap).
VIEWS_DIGEST = hashlib.sha256("".join(VIEWS.values()).encode()).hexdigest()[:16]
_MARK = f"caseledger analytics views {VIEWS_DIGEST}"


class Analytics:
    """Owns the ``analytics`` schema: its label table and its views."""

    def __init__(
        self, pool: ConnectionPool[Connection[DictRow]], case_types: CaseTypeRegistry
    ) -> None:
        self.pool = pool
        self.case_types = case_types
        self._lock = threading.Lock()
        self._seen_head: int | None = None
        self._checked_at = -LABEL_CHECK_S

    def create(self) -> None:
        """Create the schema, its label table, and its views when their SQL changed (call
        under ``infra.db.schema_lock``)."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(_LABELS_TABLE)
            row = conn.execute(
                "SELECT obj_description('analytics'::regnamespace, 'pg_namespace') AS mark"
            ).fetchone()
            if row is None or row["mark"] != _MARK:
                self.replace_views(conn)
                conn.execute(f"COMMENT ON SCHEMA analytics IS '{_MARK}'".encode())
            else:
                self.recreate_views(conn)

    @staticmethod
    def recreate_views(conn: Connection[DictRow]) -> None:
        """Create the views a swap dropped (those over the tables it replaced), in the
        swap's transaction; the others are left alone, so that a BI query reading them
        does not hold the swap."""
        present = _present(conn)
        for name, select in VIEWS.items():
            if name not in present:
                conn.execute(f"CREATE VIEW analytics.{name} AS {select}".encode())

    @staticmethod
    def replace_views(conn: Connection[DictRow]) -> None:
        """Drop and create every view (their SQL changed)."""
        for name in reversed(VIEWS):
            conn.execute(f"DROP VIEW IF EXISTS analytics.{name} CASCADE".encode())
        for name, select in VIEWS.items():
            conn.execute(f"CREATE VIEW analytics.{name} AS {select}".encode())

    def refresh_labels(self, force: bool = False) -> int:
        """Copy the labels of case-type versions published since the last look; answers
        how many versions were copied. Cheap when nothing was published: one query, and
        none within :data:`LABEL_CHECK_S` of the last look (unless ``force``)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked_at < LABEL_CHECK_S:
                return 0
            self._checked_at = now
            head = self.case_types.recorder.max_notification_id()
            if not force and head == self._seen_head:
                return 0
            copied = self._copy_new_versions()
            self._seen_head = head
            return copied

    def _copy_new_versions(self) -> int:
        with self.pool.connection() as conn:
            loaded = {
                (r["case_type"], r["case_type_version"])
                for r in conn.execute(
                    "SELECT DISTINCT case_type, case_type_version FROM analytics.labels"
                )
            }
        missing = [
            (name, version)
            for name in self.case_types.names()
            for version, record in self.case_types.case_type(name).versions.items()
            if record.status == "published" and (name, version) not in loaded
        ]
        rows = [
            row
            for name, version in missing
            for row in label_rows(self.case_types.definition(name, version))
        ]
        if rows:
            with self.pool.connection() as conn, conn.transaction():
                conn.cursor().executemany(
                    "INSERT INTO analytics.labels VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    rows,
                )
        return len(missing)


LabelRow = tuple[str, int, str, str, str, str]


def label_rows(definition: Definition) -> Iterator[LabelRow]:
    """Every label of a case-type version: (case type, version, kind, key, language,
    label), kinds ``case_type``, ``state`` (with ``closed``), ``transition``, ``field``
    and ``priority``."""
    name, version = definition.name, definition.version
    labelled: list[tuple[str, str, dict[str, str]]] = [("case_type", name, dict(definition.labels))]
    labelled += [("state", s.name, dict(s.labels)) for s in definition.states.values()]
    if "closed" not in definition.states:
        labelled.append(("state", "closed", CLOSED_STATUS))
    labelled += [("transition", t.name, dict(t.labels)) for t in definition.transitions.values()]
    labelled += [("field", f.name, dict(f.labels)) for f in definition.fields.values()]
    for priority in PRIORITIES["en"]:
        words = {language: PRIORITIES[language][priority] for language in PRIORITIES}
        labelled.append(("priority", priority, words))
    for kind, key, labels in labelled:
        for language, label in labels.items():
            yield (name, version, kind, key, language, label)


def _present(conn: Connection[DictRow]) -> set[str]:
    rows = conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'analytics'")
    return {r["viewname"] for r in rows}
