"""Which failed pipelined saves may be stored all the same (their COMMIT had gone out): those
are looked up, never retried blindly nor answered "not stored" (CI found a note answered 503
that was stored: the server's fast shutdown ended the session after the commit record was
flushed, and psycopg did not yet see the connection as broken)."""

from __future__ import annotations

import pytest
from psycopg import OperationalError, errors

from infra.recorder import _may_have_committed


@pytest.mark.parametrize(
    "error",
    [errors.AdminShutdown("terminating connection"), OperationalError("server closed")],
    ids=["fast shutdown", "connection lost"],
)
def test_a_session_ended_by_the_server_may_have_committed(error: Exception) -> None:
    assert _may_have_committed(error, broken=False)


@pytest.mark.parametrize(
    "error",
    [
        errors.LockNotAvailable("lock timeout"),
        errors.QueryCanceled("statement timeout"),
        errors.UniqueViolation("duplicate key"),
    ],
    ids=["lock timeout", "statement timeout", "conflict"],
)
def test_a_statement_that_failed_aborted_its_transaction(error: Exception) -> None:
    assert not _may_have_committed(error, broken=False)
    assert _may_have_committed(error, broken=True)  # a broken connection is always in doubt
