"""Benchmarks that print each figure next to a raw baseline measured in the same run.

Run them all from the project root with ``make bench`` or ``.venv/bin/python -m bench``;
``--quick`` (or ``BENCH_QUICK=1``) makes a smaller run, and names pick some of them:
``.venv/bin/python -m bench --quick writes relay``. One module per benchmark:

- ``bench.writes``: durable commands/s through the service layer vs plain INSERTs;
- ``bench.relay``: relay events/s vs a raw producer sending the same bytes;
- ``bench.projection``: projection events/s vs a raw consumer that only decodes;
- ``bench.latency``: command-to-projection latency vs a raw produce-to-consume round trip;
- ``bench.case_rules``: commands/s with a case type of 20 rules vs the same type with none.
"""
