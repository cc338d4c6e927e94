"""Read-only PostgreSQL logins for analysts and BI tools, that see the ``analytics`` schema
and nothing else of caseledger's database (``caseledger analysts grant|revoke``).

A role made here may connect, use schema ``analytics`` and SELECT its views and label
table, also those recreated later (default privileges of the role that creates them: the
one caseledger connects as). It holds no privilege on the tables of schema ``public`` (the
read models, the event stores, API keys, secrets), cannot create anything in either schema,
and its sessions start read-only (``default_transaction_read_only``; a session may turn
that off, so what keeps it from writing is that it holds no privilege to write).
Roles made here carry a comment naming them so; others (``postgres``, the application's
own) are never changed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from psycopg import Connection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal
from psycopg_pool import ConnectionPool

from domain.errors import InvalidCommand, NotAllowed

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
COMMENT = "caseledger analyst: read-only, schema analytics only"


@dataclass(frozen=True)
class Granted:
    """A role granted: its connection string and what may still be too wide."""

    role: str
    created: bool
    url: str
    warnings: list[str]


def grant_analyst(
    pool: ConnectionPool[Connection[DictRow]], dsn: str, name: str, password: str | None
) -> Granted:
    """Create (or update) the read-only role ``name``; a password is made when none is
    given. Answers the connection string a BI tool uses."""
    _check_name(name)
    password = password or secrets.token_urlsafe(24)
    role = Identifier(name)
    with pool.connection() as conn, conn.transaction():
        database = _scalar(conn, "SELECT current_database()")
        created = _missing(conn, name)
        verb = "CREATE" if created else "ALTER"
        conn.execute(
            SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {}"
            ).format(SQL(verb), role, Literal(password))
        )
        conn.execute(SQL("COMMENT ON ROLE {} IS {}").format(role, Literal(COMMENT)))
        for statement in (
            "ALTER ROLE {r} SET default_transaction_read_only = on",
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}",
            "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r}",
            "REVOKE CREATE ON SCHEMA public FROM {r}",
            "REVOKE CREATE ON SCHEMA analytics FROM {r}",
            "GRANT CONNECT ON DATABASE {db} TO {r}",
            "GRANT USAGE ON SCHEMA analytics TO {r}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO {r}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO {r}",
        ):
            conn.execute(SQL(statement).format(r=role, db=Identifier(database)))
        warnings = _too_wide(conn, name)
    return Granted(name, created, connection_url(dsn, name, password), warnings)


def revoke_analyst(pool: ConnectionPool[Connection[DictRow]], name: str) -> bool:
    """Take every privilege of role ``name`` in this database away and drop it; answers
    False when it still holds privileges in another database (it is then only barred
    from logging in)."""
    _check_name(name)
    role = Identifier(name)
    with pool.connection() as conn, conn.transaction():
        if _missing(conn, name):
            raise InvalidCommand(
                f"there is no analyst role called {name!r}",
                hint="list them with: SELECT rolname FROM pg_roles WHERE "
                "shobj_description(oid, 'pg_authid') LIKE 'caseledger analyst%'",
            )
        conn.execute(
            SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA analytics REVOKE ALL ON TABLES FROM {}").format(
                role
            )
        )
        conn.execute(SQL("DROP OWNED BY {}").format(role))
        conn.execute(SQL("ALTER ROLE {} NOLOGIN").format(role))
    try:
        with pool.connection() as conn:
            conn.execute(SQL("DROP ROLE {}").format(role))
    except errors.DependentObjectsStillExist:
        return False
    return True


def connection_url(dsn: str, name: str, password: str) -> str:
    """``postgresql://name:password@host:port/database`` for caseledger's database."""
    parts = conninfo_to_dict(dsn)
    host = str(parts.get("host") or "localhost")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = f":{parts['port']}" if parts.get("port") else ""
    database = quote(str(parts.get("dbname") or "postgres"), safe="")
    return f"postgresql://{quote(name, safe='')}:{quote(password, safe='')}@{host}{port}/{database}"


def _check_name(name: str) -> None:
    if not ROLE_NAME.match(name) or name.startswith("pg_"):
        raise InvalidCommand(
            f"{name!r} cannot name an analyst role",
            hint="use lower-case letters, digits and _ (at most 63, not starting with pg_), "
            "e.g. metabase or ann_analyst",
        )


def _missing(conn: Connection[DictRow], name: str) -> bool:
    """Whether ``name`` is still to be created; refuses a role this module did not make."""
    row = conn.execute(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolname = current_user AS mighty,"
        " shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return True
    if row["mighty"] or row["comment"] != COMMENT:
        raise NotAllowed(
            f"the role {name!r} exists and was not made by `caseledger analysts grant`",
            hint="choose another name: caseledger changes only the analyst roles it made",
        )
    return False


def _too_wide(conn: Connection[DictRow], name: str) -> list[str]:
    """What the role may still do beyond reading ``analytics`` because PUBLIC may."""
    warnings = []
    row = conn.execute(
        "SELECT has_schema_privilege(%s, 'public', 'CREATE') AS creates", (name,)
    ).fetchone()
    if row and row["creates"]:
        warnings.append(
            "every role may create tables in schema public here (the default before "
            "PostgreSQL 15): run REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        )
    readable = conn.execute(
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')"
        " AND has_table_privilege(%s, c.oid, 'SELECT')",
        (name,),
    ).fetchone()
    if readable and readable["n"]:
        warnings.append(
            f"{readable['n']} tables of schema public are readable by every role (granted to "
            "PUBLIC): revoke those grants from PUBLIC"
        )
    return warnings


def _scalar(conn: Connection[DictRow], query: str) -> str:
    row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return str(next(iter(row.values())))
