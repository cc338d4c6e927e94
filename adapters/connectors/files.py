"""File drops: CSV and JSON Lines files that another system drops in a folder.

A file is read once it has not changed for ``source.settle`` (a file still being written is
left alone), oldest first, in batches of at most ``limit`` records; the runner saves
``{"file": name, "line": n, ...}`` after each stored batch, so a restart resumes inside a big
file (a batch read twice is harmless: its records are duplicates). When a file is finished,
its last batch's ``settle`` moves it:

- every record ingested (or a duplicate): to ``archive`` (default ``<folder>/archive``);
- some records not ingested: to ``archive`` as well, and its bad lines, in the same format
  (with the header for CSV), to ``quarantine`` (default ``<folder>/quarantine``) as
  ``<stem>.rejected.<ext>``, beside ``<stem>.rejected.<ext>.reason.txt`` naming each line and
  why;
- nothing readable (not decodable, no header, not CSV, not JSON Lines, empty): to
  ``quarantine`` at once, beside ``<name>.reason.txt`` saying what is wrong and how to fix it.

Moves happen only after the records are stored, and each is idempotent: a file moved already,
or found in the archive already, is fine. Names starting with ``.`` are never read (write a
file as ``.claims.csv`` and rename it, or rely on ``settle``).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import filecmp
import fnmatch
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import uuid4

from adapters.connectors import OPENERS, Access, Batch
from domain.calendar import parse_duration
from services.connectors import Connector, FileSource
from services.ingestion import RecordOutcome, SourceRecord

STORED = ("ingested", "duplicate")
_PROBE = 20  # a JSON Lines file none of whose first lines is an object is not JSON Lines
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class Unreadable(Exception):
    """A file that cannot be read at all; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class _Line:
    """One record of a file: its content (None when unreadable), text and first line."""

    record: SourceRecord
    start: int
    end: int


@dataclass
class _Open:
    """The file being read: its reader, and the next record read ahead."""

    path: Path
    stat: os.stat_result
    format: str
    header: str
    lines: Iterator[_Line]
    handle: IO[str]
    ahead: _Line | None = None
    started: bool = False

    @property
    def position(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "size": self.stat.st_size,
            "mtime_ns": self.stat.st_mtime_ns,
        }


@dataclass
class FileDrop:
    """The :class:`~adapters.connectors.Source` of a ``file`` connector."""

    source: FileSource
    position: Any = None
    clock: Any = time.time
    current: _Open | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.source.folder)
        self.archive = Path(self.source.archive) if self.source.archive else self.folder / "archive"
        self.quarantine = (
            Path(self.source.quarantine) if self.source.quarantine else self.folder / "quarantine"
        )
        self.settle_seconds = parse_duration(self.source.settle).total_seconds()
        try:
            codecs.lookup(self.source.encoding)
        except LookupError:
            raise ValueError(
                f"source.encoding: {self.source.encoding!r} is not an encoding Python knows; "
                "use a name such as utf-8, utf-8-sig, cp1252 or latin-1"
            ) from None
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"source.folder: {self.folder} is not a folder on this machine; create it or "
                "fix the connector's source.folder"
            )

    def next_batch(self, limit: int) -> Batch | None:
        while True:
            if self.current is None:
                self.current = self._next_file()
                if self.current is None:
                    return None
            batch = self._read(self.current, limit)
            if batch is not None:
                return batch
            self._finish_empty(self.current)

    def close(self) -> None:
        if self.current is not None:
            self.current.handle.close()
            self.current = None

    # -- choosing and opening files ------------------------------------------------------

    def _next_file(self) -> _Open | None:
        for path in self._settled():
            try:
                return self._open(path)
            except Unreadable as problem:
                _quarantine_file(path, self.quarantine, str(problem))
        return None

    def _settled(self) -> list[Path]:
        """The files to read now, oldest first: matching, not hidden, unchanged for settle."""
        now, found = self.clock(), []
        for entry in os.scandir(self.folder):
            if entry.name.startswith(".") or not fnmatch.fnmatch(entry.name, self.source.pattern):
                continue
            if entry.is_file() and now - entry.stat().st_mtime >= self.settle_seconds:
                found.append((entry.stat().st_mtime_ns, entry.name))
        return [self.folder / name for _, name in sorted(found)]

    def _open(self, path: Path) -> _Open:
        kind = self.source.format or _EXTENSIONS.get(path.suffix.lower())
        if kind is None:
            raise Unreadable(
                f"{path.name}: caseledger cannot tell its format from the extension "
                f"{path.suffix or '(none)'}; name CSV files .csv and JSON Lines files .jsonl, "
                "or set source.format in the connector"
            )
        stat = path.stat()
        _check_decodes(path, self.source.encoding)
        handle = path.open(encoding=self.source.encoding, newline="")
        try:
            if kind == "csv":
                header, lines = _csv_lines(handle, path.name, self.source.delimiter)
            else:
                header, lines = "", _jsonl_lines(handle, path)
        except BaseException:
            handle.close()
            raise
        opened = _Open(path, stat, kind, header, lines, handle)
        if _resumes(self.position, opened):
            skip = int(self.position["line"])
            opened.lines = (line for line in lines if line.start > skip)
            opened.started = True
        else:
            _Rejects(self.quarantine, path).forget()  # a stale journal of an earlier file
        return opened

    # -- reading batches -----------------------------------------------------------------

    def _read(self, opened: _Open, limit: int) -> Batch | None:
        taken: list[_Line] = []
        if opened.ahead is not None:
            taken.append(opened.ahead)
            opened.ahead = None
        taken += _take(opened.lines, limit - len(taken))
        opened.ahead = next(opened.lines, None)
        if not taken:
            return None
        last = opened.ahead is None
        records = [line.record for line in taken]
        first, end = taken[0].start, taken[-1].end
        opened.started = True

        def settle(outcomes: Sequence[RecordOutcome]) -> None:
            self._settle(opened, taken, outcomes, last)

        return Batch(
            records,
            f"{opened.path.name}:{first}-{end}:{uuid4().hex[:8]}",
            opened.position | {"line": end},
            settle,
        )

    def _settle(
        self, opened: _Open, taken: list[_Line], outcomes: Sequence[RecordOutcome], last: bool
    ) -> None:
        rejects = _Rejects(self.quarantine, opened.path)
        bad = [
            (line, outcome)
            for line, outcome in zip(taken, outcomes, strict=True)
            if outcome.verdict not in STORED
        ]
        rejects.add([(line.start, line.record.raw or "", _reason(line, o)) for line, o in bad])
        if last:
            opened.handle.close()
            rejects.publish(opened.format, opened.header, self.archive)
            _move(opened.path, self.archive)
            rejects.forget()
            if self.current is opened:
                self.current = None

    def _finish_empty(self, opened: _Open) -> None:
        """A file with no records left: archived now (nothing is left to store), unless it
        never had any, which is worth a look."""
        opened.handle.close()
        self.current = None
        if opened.started:
            rejects = _Rejects(self.quarantine, opened.path)
            rejects.publish(opened.format, opened.header, self.archive)
            _move(opened.path, self.archive)
            rejects.forget()
        else:
            _quarantine_file(
                opened.path,
                self.quarantine,
                f"{opened.path.name}: has no records (only a header, or blank lines); if the "
                "export really had nothing to send, delete this file",
            )


def open_file_source(connector: Connector, position: Any, access: Access) -> FileDrop:
    """The file drop of ``connector``, resuming at ``position``."""
    return FileDrop(connector.source, position)


OPENERS["file"] = open_file_source


# -- reading one file --------------------------------------------------------------------


def _check_decodes(path: Path, encoding: str) -> None:
    """Refuse a file that is not text in ``encoding``, naming the first bad line."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with path.open("rb") as raw:
        if raw.read(1) == b"":
            raise Unreadable(f"{path.name}: the file is empty; a file drop needs records")
        raw.seek(0)
        while chunk := raw.read(1 << 16):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as error:
                line += chunk[: error.start].count(b"\n")
                raise Unreadable(
                    f"{path.name}: line {line} is not {encoding} text ({error.reason}); save "
                    f"the export as {encoding}, or set source.encoding to the encoding it is "
                    "written in (such as cp1252 or latin-1)"
                ) from None
            line += text.count("\n")
            if "\x00" in text:
                raise Unreadable(
                    f"{path.name}: line {line} holds NUL bytes, so this is not a text file; "
                    "drop CSV or JSON Lines exports only"
                )


class _Tracked:
    """A file's lines, remembering those the CSV reader took since the last record."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.taken: list[str] = []

    def __iter__(self) -> _Tracked:
        return self

    def __next__(self) -> str:
        line = next(self.handle)
        self.taken.append(line)
        return line

    def pop(self) -> str:
        text, self.taken = "".join(self.taken), []
        return text


def _csv_lines(handle: IO[str], name: str, delimiter: str) -> tuple[str, Iterator[_Line]]:
    tracked = _Tracked(handle)
    reader = csv.reader(tracked, delimiter=delimiter)
    try:
        header = next((row for row in reader if row), None)
    except csv.Error as error:
        raise Unreadable(f"{name}: the header row is not CSV ({error})") from None
    if header is None:
        raise Unreadable(f"{name}: the file has no header row; the first line names the columns")
    _check_header(name, header, delimiter)
    return tracked.pop(), _csv_records(reader, tracked, name, header)


def _check_header(name: str, header: list[str], delimiter: str) -> None:
    names = [column.strip() for column in header]
    if not all(names):
        raise Unreadable(
            f"{name}: the header row has an empty column name (column {names.index('') + 1}); "
            "the first line must name every column"
        )
    twice = sorted({column for column in names if names.count(column) > 1})
    if twice:
        raise Unreadable(f"{name}: the header names {', '.join(twice)} more than once")
    others = [d for d in ",;\t|" if d != delimiter and d in header[0]]
    if len(header) == 1 and others:
        raise Unreadable(
            f"{name}: the header is one column, {header[0]!r}, that holds {others[0]!r}; "
            f"the file seems separated by {others[0]!r}: set source.delimiter to it"
        )


def _csv_records(reader: Any, tracked: _Tracked, name: str, header: list[str]) -> Iterator[_Line]:
    columns = [column.strip() for column in header]
    end = reader.line_num
    while True:
        try:
            row = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error as error:
            row, problem = None, str(error)
        start, end, raw = end + 1, reader.line_num, tracked.pop()
        if row == []:
            continue
        if row is not None and len(row) != len(columns):
            problem = (
                f"{len(row)} values for the {len(columns)} columns of the header; quote a "
                "value that holds the delimiter or a line break"
            )
        position = f"{name}:{start}"
        if problem is not None:
            record = SourceRecord(None, position, raw, f"line {start}: {problem}")
        else:
            record = SourceRecord(dict(zip(columns, row or [], strict=True)), position, raw)
        yield _Line(record, start, end)


def _jsonl_lines(handle: IO[str], path: Path) -> Iterator[_Line]:
    records = _jsonl_records(handle, path.name)
    probe = _take(records, _PROBE)
    if probe and all(line.record.data is None for line in probe):
        raise Unreadable(
            f"{path.name}: none of its first {len(probe)} records is a JSON object "
            f"({probe[0].record.problem}); JSON Lines holds one JSON object per line (a JSON "
            "array or an indented document is not JSON Lines)"
        )
    if not probe:
        raise Unreadable(f"{path.name}: the file has only blank lines")
    return _chain(probe, records)


def _jsonl_records(handle: IO[str], name: str) -> Iterator[_Line]:
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        position = f"{name}:{number}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            problem = f"line {number}: not JSON ({error.msg} at column {error.colno})"
            yield _Line(SourceRecord(None, position, line, problem), number, number)
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__.replace("dict", "object").replace("list", "array")
            problem = f"line {number}: a JSON object is expected, not a JSON {kind}"
            yield _Line(SourceRecord(None, position, line, problem), number, number)
            continue
        yield _Line(SourceRecord(value, position, line), number, number)


def _chain(first: list[_Line], rest: Iterator[_Line]) -> Iterator[_Line]:
    yield from first
    yield from rest


def _take(lines: Iterator[_Line], count: int) -> list[_Line]:
    taken: list[_Line] = []
    while len(taken) < count:
        line = next(lines, None)
        if line is None:
            break
        taken.append(line)
    return taken


def _resumes(position: Any, opened: _Open) -> bool:
    """Whether the saved position is inside this very file (same name, size and time)."""
    if not isinstance(position, dict) or not isinstance(position.get("line"), int):
        return False
    return all(position.get(key) == value for key, value in opened.position.items())


def _reason(line: _Line, outcome: RecordOutcome) -> str:
    reason = line.record.problem or outcome.reason or outcome.verdict
    return reason if reason.startswith("line ") else f"line {line.start}: {reason}"


# -- rejected lines and moves ------------------------------------------------------------


class _Rejects:
    """A file's bad lines, journaled in the quarantine folder as its batches settle, and
    published as ``<stem>.rejected.<ext>`` with a reason file when the file is finished."""

    def __init__(self, quarantine: Path, path: Path) -> None:
        self.quarantine, self.path = quarantine, path
        self.journal = quarantine / f".{path.name}.rejected.journal"

    def add(self, lines: list[tuple[int, str, str]]) -> None:
        if not lines:
            return
        self.quarantine.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a", encoding="utf-8") as journal:
            for start, raw, reason in lines:
                journal.write(json.dumps({"line": start, "raw": raw, "reason": reason}) + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def publish(self, kind: str, header: str, archive: Path) -> None:
        if not self.journal.exists():
            return
        lines: dict[int, dict[str, Any]] = {}
        for text in self.journal.read_text(encoding="utf-8").splitlines():
            if text.strip():
                entry = json.loads(text)
                lines[entry["line"]] = entry  # a batch settled twice journals its lines twice
        entries = [lines[n] for n in sorted(lines)]
        name = f"{self.path.stem}.rejected{self.path.suffix}"
        body = header + "".join(_ended(e["raw"]) for e in entries)
        _write(self.quarantine / name, body)
        listed = "".join(f"  {e['reason']}\n" for e in entries)
        _write(
            self.quarantine / f"{name}.reason.txt",
            f"{self.path.name}: {len(entries)} record(s) were not ingested; the others are "
            f"case history, and the file is archived in {archive}.\n\n{listed}\n"
            f"{name} holds these lines ({kind}{', with the header' if header else ''}). They "
            "are also kept in caseledger's quarantine with their reason: after fixing the "
            "mapping or the case type, `caseledger connectors replay` ingests them again. A "
            "line that could not be read at all is fixed in this file, which is then dropped "
            "in the connector's folder again under a name matching its pattern.\n",
        )

    def forget(self) -> None:
        self.journal.unlink(missing_ok=True)


def _ended(raw: str) -> str:
    return raw if raw.endswith(("\n", "\r")) else raw + "\n"


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid4().hex[:8]}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _quarantine_file(path: Path, quarantine: Path, reason: str) -> None:
    """Move an unreadable file to ``quarantine``, its reason written first beside it."""
    _write(quarantine / f"{path.name}.reason.txt", reason + "\n")
    _move(path, quarantine)


def _move(path: Path, folder: Path) -> None:
    """Move ``path`` into ``folder``; already moved, or the same file there already, is fine.
    A different file of the same name there is kept: this one gets a time-stamped name."""
    if not path.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        if filecmp.cmp(path, target, shallow=False):
            path.unlink()
            return
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = folder / f"{path.stem}.{stamp}.{uuid4().hex[:6]}{path.suffix}"
    try:
        os.replace(path, target)
    except OSError:  # another file system: copy whole, then remove
        temporary = folder / f".{target.name}.{uuid4().hex[:8]}.tmp"
        shutil.copy2(path, temporary)
        os.replace(temporary, target)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
