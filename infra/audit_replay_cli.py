"""Replay from the command line: ``caseledger audit republish`` sends a range of the event
store to Kafka again, for a consumer that lost its data; ``caseledger case-types what-if``
replays recorded cases under a draft (``services.what_if``). docs/audit.md ("Replay:
republish and what-if") tells when to use which.

Republishing sends exactly what the relay sent for those events (the same key, envelope JSON
and headers, read by ``EventStoreReader.read_messages``, through a producer with the relay's
settings), partition by partition in store order, and waits for the broker to acknowledge
each batch. It does not move the relay's position. Consumers skip what they applied already
(a case version they hold), so a range republished is harmless to them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from infra.settings import Settings

if TYPE_CHECKING:  # the others are imported where used: `caseledger --help` stays fast
    from infra.bootstrap import Container
    from infra.event_store import EventStoreReader, Message

BATCH = 2_000
_CASE_POSITIONS = (
    "SELECT notification_id FROM {events} WHERE originator_id = %s"
    " AND notification_id BETWEEN %s AND %s ORDER BY notification_id"
)
console = Console(stderr=True)


class RepublishFailed(RuntimeError):
    """The broker did not take an event: says which, what was republished, how to resume."""


@dataclass(frozen=True)
class Republished:
    events: int
    first: int
    last: int


class Republisher:
    """Sends stored case events with global positions in a range to the topic again."""

    def __init__(self, settings: Settings, reader: EventStoreReader) -> None:
        self.settings = settings
        self.reader = reader

    def run(
        self,
        first: int,
        last: int,
        case_id: UUID | None = None,
        progress: Callable[[int], None] = lambda positions: None,
    ) -> Republished:
        """Republish the case events at positions ``first..last`` (inclusive), only those
        of ``case_id`` when given; ``progress`` is told how many positions each batch
        covered. Raises :class:`RepublishFailed` when the broker does not acknowledge."""
        from infra.kafka import SEND_TIMEOUT_S, ensure_topic, new_producer  # noqa: PLC0415

        ensure_topic(self.settings)
        producer = new_producer(self.settings)
        try:
            count = len(producer.partitions_for(self.settings.kafka_topic))
            sent, position = 0, first
            for messages, covered in self._batches(first, last, case_id):
                self._send(producer, messages, count, position)
                sent, position = sent + len(messages), position + covered
                progress(covered)
            return Republished(sent, first, last)
        finally:
            producer.close(timeout=SEND_TIMEOUT_S)

    def _batches(
        self, first: int, last: int, case_id: UUID | None
    ) -> Iterator[tuple[list[Message], int]]:
        """Batches of messages, each with how many positions it covers."""
        if case_id is None:
            runs = [(first, last)]
        else:
            runs = _runs(self._case_positions(case_id, first, last))
        position = first
        key = str(case_id).encode() if case_id is not None else None
        for start, end in runs:
            after = start - 1
            while after < end:
                messages, read_to = self.reader.read_messages(after, min(BATCH, end - after))
                if read_to == after:
                    break  # nothing stored beyond: the range ends after the head
                messages = _up_to(messages, end) if read_to > end else messages
                if key is not None:
                    messages = [m for m in messages if m[0] == key]
                covered = min(read_to, end) - position + 1
                position = min(read_to, end) + 1
                after = read_to
                yield messages, covered
        if position <= last:
            yield [], last - position + 1

    def _case_positions(self, case_id: UUID, first: int, last: int) -> list[int]:
        from psycopg.rows import tuple_row  # noqa: PLC0415

        datastore = self.reader.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            rows = cursor.execute(self.reader.sql(_CASE_POSITIONS), (case_id, first, last))
            return [int(row[0]) for row in rows.fetchall()]

    def _send(self, producer: Any, messages: list[Message], count: int, first: int) -> None:
        """Send partition by partition, each in store order (as the relay does), and wait
        until the broker acknowledged every message of the batch."""
        from kafka.errors import KafkaError  # noqa: PLC0415

        from infra.kafka import SEND_TIMEOUT_S, partition_for  # noqa: PLC0415

        topic = self.settings.kafka_topic
        placed = sorted(
            ((partition_for(key, count), key, value, headers) for key, value, headers in messages),
            key=itemgetter(0),
        )
        answers = [
            (value, producer.send(topic, key=key, value=value, headers=headers, partition=p))
            for p, key, value, headers in placed
        ]
        try:
            producer.flush(timeout=SEND_TIMEOUT_S)
            for _, answer in answers:
                answer.get(timeout=SEND_TIMEOUT_S)
        except KafkaError as error:
            failed = next((v for v, a in answers if a.failed() or not a.is_done), None)
            where = f"position {_position(failed)}" if failed else "a batch"
            raise RepublishFailed(
                f"the broker did not acknowledge the event at {where} on {topic} "
                f"({type(error).__name__}: {error}); the events before position {first} are "
                f"republished, those of this batch may be partly; run again with "
                f"--from-position {first} once the broker is back"
            ) from error


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Consecutive positions as (first, last) ranges."""
    runs: list[tuple[int, int]] = []
    for position in positions:
        if runs and runs[-1][1] == position - 1:
            runs[-1] = (runs[-1][0], position)
        else:
            runs.append((position, position))
    return runs


def _position(value: bytes) -> int:
    return int(orjson.loads(value)["global_position"])


def _up_to(messages: list[Message], end: int) -> list[Message]:
    return [m for m in messages if _position(m[1]) <= end]


def _container() -> Container:
    from infra.bootstrap import bootstrap  # noqa: PLC0415 - the CLI starts fast without it
    from infra.cli import _settings  # noqa: PLC0415

    return bootstrap(_settings(), name="replay-cli")


def republish(
    from_position: Annotated[
        int, typer.Option("--from-position", min=1, help="the first global position to send")
    ] = 1,
    to_position: Annotated[
        int | None,
        typer.Option("--to-position", min=1, help="the last one (default: the store's head)"),
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="only this case's events (its id)")
    ] = None,
) -> None:
    """Publish the stored events at global positions --from-position..--to-position
    (inclusive) to the case-events topic again, for a consumer that lost its data: the same
    key, envelope and headers as the relay sent, in per-partition store order, each batch
    acknowledged by the broker before the next. Consumers skip what they applied already,
    so republishing is harmless to them; the relay's position does not move."""
    case_id = _case_id(case) if case is not None else None
    container = _container()
    try:
        last = to_position or container.reader.head()
        if last < from_position:
            typer.echo(
                f"nothing to republish: --to-position {last} is before --from-position "
                f"{from_position} (the store's head is {container.reader.head()})",
                err=True,
            )
            raise typer.Exit(1)
        republisher = Republisher(container.settings, container.reader)
        with Progress(console=console, transient=False) as bar:
            task = bar.add_task("republishing", total=last - from_position + 1)
            done = republisher.run(from_position, last, case_id, lambda n: bar.advance(task, n))
    except RepublishFailed as error:
        typer.echo(f"caseledger: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(
        f"republished {done.events} events (positions {from_position}..{last}) to "
        f"{container.settings.kafka_topic}"
    )


def _case_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a case id (a UUID)", param_hint="--case"
        ) from None


# -- what if ---------------------------------------------------------------------------------


def case_types_what_if(
    name: Annotated[str, typer.Argument(help="the case type")],
    version: Annotated[int, typer.Argument(help="its draft version to try")],
    days: Annotated[
        int, typer.Option(min=1, help="replay the cases opened in the last DAYS days")
    ] = 30,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="replay this case only; repeat as needed")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="at most this many cases, newest first")
    ] = 1_000,
    budget: Annotated[
        float, typer.Option(min=1, help="stop after this many seconds, with what was compared")
    ] = 600,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Replay recorded cases of NAME under its draft VERSION, in memory (nothing is stored,
    published or projected), and show the cases that would end differently: status,
    assignee, queue, priority, SLA breaches, notifications, and the recorded commands the
    draft would refuse (e.g. a transition it lacks). Cases are those opened in the last
    --days days (newest first, at most --limit), or those given with --case."""
    from domain.errors import DomainError  # noqa: PLC0415
    from services.what_if import WhatIf, WhatIfRequest  # noqa: PLC0415

    ids = tuple(_case_id(text) for text in case or [])
    request = WhatIfRequest(name, version, days, ids, limit, budget)
    container = _container()
    try:
        service = WhatIf(container.ledger, container.case_types, container.case_list)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("replaying", total=None)
            report = service.run(
                request, lambda done, total: bar.update(task, completed=done, total=total)
            )
    except DomainError as error:
        typer.echo(f"refused: {error.message}\n  {error.hint}", err=True)
        for problem in getattr(error, "problems", []):
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str, indent=2))
        return
    _print_report(report)


def _print_report(report: Any) -> None:
    table = Table(title=f"{report.case_type} v{report.version}: what would differ")
    for column in ("case", "title", "attribute", "recorded", "would be"):
        table.add_column(column, overflow="fold")
    for case in report.cases:
        rows = [
            (
                attribute,
                _shown(getattr(case.recorded, attribute)),
                _shown(getattr(case.would_be, attribute) if case.would_be else "(not opened)"),
            )
            for attribute in case.differences
        ]
        rows += [("refused", r.command, r.reason) for r in case.refused]
        for index, (attribute, before, after) in enumerate(rows):
            first = index == 0
            table.add_row(
                str(case.case_id) if first else "", case.title if first else "", attribute,
                before, after,
            )  # fmt: skip
    if report.cases:
        Console(width=200).print(table)
    counts = ", ".join(f"{n} {a}" for a, n in report.by_attribute.items() if n)
    typer.echo(
        f"{report.differing} of {report.compared} cases would differ"
        + (f" ({counts})" if counts else "")
    )
    if not report.complete:
        typer.echo(f"stopped early: {report.stopped}")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return (
            ", ".join(
                f"{v.notification} to {', '.join(v.recipients) or 'nobody'}"
                if hasattr(v, "notification")
                else str(v)
                for v in value
            )
            or "-"
        )
    return "-" if value is None else str(value)
