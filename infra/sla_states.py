"""What state an SLA clock is in, in SQL, defined once and shared by the case search
(``infra.case_list_store``), the read-model queries (``infra.read_model_store``) and the
analysts' views (``infra.analytics``), so that the API, the CSV exports and plain SQL agree
on what "at risk" means (``projections.case_list.AT_RISK_SHARE``; docs/read-models.md, "SLA
status").

A clock is a row ``(sla, clock)`` of ``jsonb_each(case_list.slas)``: its ``deadline``, its
``run`` (the case version that started it), whether it is ``running`` and was ``warned``.
"""

from __future__ import annotations

from projections.case_list import AT_RISK_SHARE

#: Run before a query that reads clocks: PostgreSQL guesses a hundred rows for each
#: ``jsonb_each`` (cases hold one or two clocks), and the cost it then expects passes
#: ``jit_above_cost``: compiling took 800 ms of a 50 ms query (bench/read_models.py).
NO_JIT = "SET LOCAL jit = off"
#: Ranks of a case's worst running SLA clock (0: it runs none).
SLA_RANK = {"on_time": 1, "at_risk": 2, "breached": 3}


def clock_state_sql(now: str, case: str = "c", clock: str = "s") -> str:
    """The state of one running clock: ``{clock}`` is a row ``(sla, clock)`` of
    ``jsonb_each({case}.slas)``, ``now`` the SQL of the instant to judge at."""
    due = f"({clock}.clock->>'deadline')::timestamptz"
    started = (
        f"(SELECT o.at FROM sla_outcomes o WHERE o.case_id = {case}.case_id"
        f" AND o.sla = {clock}.sla AND o.run = ({clock}.clock->>'run')::integer"
        " AND o.milestone = 'started')"
    )
    # A clock starts no earlier than its case opened: when even the span from the opening
    # leaves more than the share, it is on time without reading its start.
    return (
        f"CASE WHEN {due} <= {now} THEN 'breached'"
        f" WHEN coalesce(({clock}.clock->>'warned')::boolean, false) THEN 'at_risk'"
        f" WHEN {due} - {now} > ({due} - {case}.opened_at) * {AT_RISK_SHARE} THEN 'on_time'"
        f" WHEN {due} - {now} <= ({due} - {started}) * {AT_RISK_SHARE} THEN 'at_risk'"
        " ELSE 'on_time' END"
    )


def running_clock_sql(clock: str = "s") -> str:
    """Whether a row of ``jsonb_each(slas)`` is a running clock with a deadline."""
    return (
        f"coalesce(({clock}.clock->>'running')::boolean, false)"
        f" AND {clock}.clock->>'deadline' IS NOT NULL"
    )


def case_sla_rank_sql(now: str, case: str = "c") -> str:
    """The rank (:data:`SLA_RANK`) of a case's worst running clock, 0 when none runs: from
    the case list's nearest deadline and the instant its first clock is at risk
    (``sla_at_risk_at``, which the projection keeps by the rule of :func:`clock_state_sql`)."""
    return (
        f"CASE WHEN {case}.sla_deadline IS NULL THEN 0"
        f" WHEN {case}.sla_deadline <= {now} THEN 3"
        f" WHEN {case}.sla_at_risk_at <= {now} THEN 2 ELSE 1 END"
    )
