"""Benchmarks that print each figure next to a raw baseline measured in the same run.

Run them all from the project root with ``make bench`` or ``.venv/bin/python -m bench``;
``--quick`` (or ``BENCH_QUICK=1``) makes a smaller run, and names pick some of them:
``.venv/bin/python -m bench --quick writes relay``. One module per benchmark:

- ``bench.writes``: durable commands/s through the service layer vs plain INSERTs;
- ``bench.relay``: relay events/s vs a raw producer sending the same bytes;
- ``bench.projection``: projection events/s vs a raw consumer that only decodes;
- ``bench.latency``: command-to-projection latency vs a raw produce-to-consume round trip;
- ``bench.case_rules``: commands/s with a case type of 20 rules vs the same type with none;
- ``bench.http``: commands over HTTP with wrk (whole stack running) vs a no-op FastAPI POST;
- ``bench.loading``: loading a case of 10,000 events (cold, cached, as of a past version) vs a
  raw SELECT of its rows;
- ``bench.ingest``: records/s from a legacy PostgreSQL table through the SQL source and the
  Ingestor (dedup on) vs a raw SELECT of the rows and vs batched ``ledger.save`` of new cases;
- ``bench.webhook``: signed webhook deliveries/s (1 and 10 records each) with the whole stack
  running, over HTTP with wrk, vs a no-op FastAPI POST;
- ``bench.evidence_offline``: an auditor's offline check of a 10,000-event evidence bundle
  (``domain/evidence.py``) vs ``json.loads`` of the file and one SHA-256 per event.

Each run also writes its figures to ``bench-results/`` as JSON, to compare runs.
"""
