"""What an incremental extract's position is, per kind: how positions order, where a read starts,
how an operator reads and writes one.

- ``integer``, ``date``, ``timestamp``: a column's values, kept as one integer (an integer
  column's value; a date's days since 1970-01-01; a timestamp's microseconds since 1970-01-01
  UTC). A read takes the rows above it, less the extract's lookback.
- ``offsets``: a Kafka topic's next offsets, ``{"topic": {"partition": offset}}``. A read
  takes each partition's records from its offset up to the offsets fixed before the read.
- ``files``: the files of a folder read so far, ``{"listed_at": ms, "covered_upto": ms,
  "seen": [paths]}``: every file modified up to ``covered_upto``, and the files modified after
  it that were read, by name. A run covers up to its newest file less the lookback. It reads
  the files listed that the end fixed before it covers and the position it starts from does
  not (see :func:`files_between`).

Positions are kept as JSON wherever they are kept (see :data:`~etlc.runtime.strategies.Position`).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.strategies import Incremental, Position

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_PARTITION = re.compile(r"[0-9]{1,10}")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
COLUMN_KINDS = ("integer", "date", "timestamp")
OFFSETS = "offsets"
FILES = "files"


def position(column: Column, kind: str) -> Column:
    """The position of ``column``'s values (a column kind)."""
    if kind == "timestamp":
        return F.unix_micros(column)
    if kind == "date":
        return F.unix_date(column)
    return column.cast("long")


def value_at(at: int, kind: str) -> Column:
    """The column value at position ``at``, as a literal Spark folds (and pushes to a
    database) before it reads."""
    if kind == "timestamp":
        return F.timestamp_micros(F.lit(at))
    if kind == "date":
        return F.date_from_unix_date(F.lit(at))
    return F.lit(at)


def in_range(column: Column, kind: str, after: int | None, upto: int | None) -> Column | None:
    """The predicate of a read above ``after`` and up to ``upto`` (None: no bound at all)."""
    found = [
        *([column > value_at(after, kind)] if after is not None else []),
        *([column <= value_at(upto, kind)] if upto is not None else []),
    ]
    if not found:
        return None
    return found[0] if len(found) == 1 else found[0] & found[1]


class PositionKind(ABC):
    """The order and the text of one kind's positions."""

    @abstractmethod
    def valid(self, at: Position) -> bool:
        """Whether ``at`` is a position of this kind (a kept one may have been edited)."""

    @abstractmethod
    def lowest(self, values: Sequence[Position]) -> Position:
        """Where a read that leaves none of the loads holding ``values`` behind starts."""

    @abstractmethod
    def highest(self, values: Sequence[Position]) -> Position:
        """Where the load furthest ahead of those holding ``values`` stands."""

    @abstractmethod
    def start(self, after: Position, lookback: int) -> Position:
        """Where a read after ``after`` starts, ``lookback`` before it."""

    @abstractmethod
    def shown(self, at: Position) -> str | int:
        """``at`` as an engineer reads it."""

    @abstractmethod
    def parsed(self, text: str) -> Position:
        """The position a value written by an engineer (``etlc state reset --to``) stands for."""

    def text(self, at: Position) -> str:
        """``at`` as ``etlc state reset --to`` takes it back, exactly."""
        return str(self.shown(at))

    def replaced(self, before: Position | None, given: Position) -> Position:
        """What ``etlc state reset --to given`` keeps, where ``before`` was kept."""
        return given


class ColumnPositions(PositionKind):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def valid(self, at: Position) -> bool:
        return isinstance(at, int) and not isinstance(at, bool)

    def lowest(self, values: Sequence[Position]) -> Position:
        return min(values)

    def highest(self, values: Sequence[Position]) -> Position:
        return max(values)

    def start(self, after: Position, lookback: int) -> Position:
        return int(after) - lookback

    def shown(self, at: Position) -> str | int:
        if not self.valid(at):  # not etlc's: shown as it is kept
            return json.dumps(at)[:80]
        if self.kind == "timestamp":
            return (_EPOCH + timedelta(microseconds=at)).isoformat().replace("+00:00", "Z")
        if self.kind == "date":
            return (_EPOCH.date() + timedelta(days=at)).isoformat()
        return int(at)

    def parsed(self, text: str) -> Position:
        """A timestamp in ISO 8601 (UTC unless it has an offset), a date, or an integer."""
        at = self._parsed(text)
        if not _LONG_MIN <= at <= _LONG_MAX:
            raise ConfigurationError(f"{text[:40]!r} is beyond a 64-bit {self.kind} position")
        return at

    def _parsed(self, text: str) -> int:
        try:
            if self.kind == "timestamp":
                when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return (when - _EPOCH) // timedelta(microseconds=1)
            if self.kind == "date":
                return (date.fromisoformat(text.strip()) - _EPOCH.date()).days
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError(text)
            return int(text.strip())
        except (ValueError, OverflowError):
            example = {"timestamp": "2026-01-31T00:00:00Z", "date": "2026-01-31"}.get(
                self.kind, "42"
            )
            article = "an" if self.kind == "integer" else "a"
            raise ConfigurationError(
                f"{text[:40]!r} is not {article} {self.kind} position; write e.g. {example}"
            ) from None


class OffsetPositions(PositionKind):
    """A topic's next offsets per partition. Loads that stand apart are compared partition by
    partition: a partition some load has never read is read from its first offset."""

    def valid(self, at: Position) -> bool:
        return (
            isinstance(at, dict)
            and bool(at)
            and all(
                isinstance(topic, str)
                and _TOPIC.fullmatch(topic) is not None
                and isinstance(partitions, dict)
                and bool(partitions)
                and all(
                    _PARTITION.fullmatch(str(p)) is not None
                    and isinstance(o, int)
                    and not isinstance(o, bool)
                    and 0 <= o <= _LONG_MAX
                    for p, o in partitions.items()
                )
                for topic, partitions in at.items()
            )
        )

    def lowest(self, values: Sequence[Position]) -> Position:
        shared = set.intersection(*(set(_flat(v)) for v in values))
        return _nested({tp: min(_flat(v)[tp] for v in values) for tp in shared})

    def highest(self, values: Sequence[Position]) -> Position:
        out: dict[tuple[str, str], int] = {}
        for v in values:
            for tp, offset in _flat(v).items():
                out[tp] = max(offset, out.get(tp, offset))
        return _nested(out)

    def start(self, after: Position, lookback: int) -> Position:
        return after

    def shown(self, at: Position) -> str | int:
        return compact_json(at)

    def text(self, at: Position) -> str:
        return compact_json(at)

    def replaced(self, before: Position | None, given: Position) -> Position:
        """The partitions ``given`` names set; the others keep their offsets (one left out
        would be read again from its earliest)."""
        if before is None:
            return given
        return _nested({**_flat(before), **_flat(given)})

    def parsed(self, text: str) -> Position:
        """JSON like ``{"orders": {"0": 42, "1": 7}}``: each partition's next offset."""
        try:
            at = json.loads(text)
        except (ValueError, RecursionError):
            at = None
        if not self.valid(at):
            raise ConfigurationError(
                f"{text[:40]!r} is not a topic's offsets; write JSON like "
                '{"orders": {"0": 42, "1": 7}}: each partition\'s next offset'
            )
        return {t: {str(int(p)): o for p, o in parts.items()} for t, parts in at.items()}


class FilePositions(PositionKind):
    """The files of a folder read so far: every file modified up to ``covered_upto``, and the
    files modified after it that were read, by name (``seen``). ``listed_at`` is when the run
    that reached it listed the folder: of two loads' positions the later listing is ahead
    (the files seen are no measure: files are deleted)."""

    def valid(self, at: Position) -> bool:
        return (
            isinstance(at, dict)
            and set(at) == {"listed_at", "covered_upto", "seen"}
            and all(_millis(at[k]) for k in ("listed_at", "covered_upto"))
            and isinstance(at["seen"], list)
            and all(isinstance(p, str) and p for p in at["seen"])
        )

    def lowest(self, values: Sequence[Position]) -> Position:
        return min(values, key=_file_order)

    def highest(self, values: Sequence[Position]) -> Position:
        return max(values, key=_file_order)

    def start(self, after: Position, lookback: int) -> Position:
        return after  # the lookback is in the position's cover (see files_end)

    def shown(self, at: Position) -> str | int:
        return (
            f"files modified up to {_iso_ms(at['covered_upto'])} and {len(at['seen'])} after "
            f"it (listed {_iso_ms(at['listed_at'])})"
        )

    def text(self, at: Position) -> str:
        return compact_json(at)

    def parsed(self, text: str) -> Position:
        """An ISO 8601 time (the next run reads the files modified after it), or the JSON a
        position holds."""
        if not text.lstrip().startswith("{"):
            micros = ColumnPositions("timestamp").parsed(text)
            if micros < 0:
                raise ConfigurationError(f"{text[:40]!r} is before 1970")
            # Listed then, as far as the order of loads goes: behind every later run.
            return {"listed_at": micros // 1000, "covered_upto": micros // 1000, "seen": []}
        try:
            at = json.loads(text)
        except (ValueError, RecursionError):
            at = None
        if not self.valid(at):
            raise ConfigurationError(
                f"{text[:40]!r} is not a files position; write a time (2026-01-31T00:00:00Z) "
                'or JSON like {"listed_at": 1769817600000, "covered_upto": 1769814000000, '
                '"seen": []}'
            )
        return {**at, "seen": sorted(set(at["seen"]))}


def files_end(
    listing: Mapping[str, int], after: Position | None, lookback: int, listed_at: int
) -> Position:
    """The files position a read of ``listing`` (path -> modified ms), listed at
    ``listed_at``, reaches from ``after``: every file modified up to the newest listed less
    the lookback (never less than ``after`` covered), and every file listed after that.

    A file dated in the future (copied with its times kept) counts as modified when listed:
    the cover never passes the listing, which would hold every later file as read. The
    listing time never goes back from ``after``'s (a driver whose clock is behind), so that
    a later position always sorts after the one it started from."""
    newest = min(max(listing.values(), default=0), listed_at)
    cover = max(newest - lookback, int(after["covered_upto"]) if after else 0, 0)
    seen = sorted(p for p, modified in listing.items() if modified > cover)
    if after is not None:
        listed_at = max(listed_at, int(after["listed_at"]) + 1)
    return {"listed_at": listed_at, "covered_upto": cover, "seen": seen}


def files_between(listing: Mapping[str, int], after: Position | None, upto: Position) -> list[str]:
    """The files of ``listing`` that ``upto`` holds as read and ``after`` does not."""
    return sorted(set(_covered(listing, upto)) - set(_covered(listing, after)))


def _covered(listing: Mapping[str, int], at: Position | None) -> list[str]:
    if at is None:
        return []
    cover, seen = int(at["covered_upto"]), frozenset(at["seen"])
    return [p for p, modified in listing.items() if modified <= cover or p in seen]


def _millis(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _LONG_MAX


def _iso_ms(ms: int) -> str:
    when = _EPOCH + timedelta(milliseconds=int(ms))
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _file_order(at: Position) -> tuple[int, int]:
    return int(at["listed_at"]), int(at["covered_upto"])


def _flat(at: Position) -> dict[tuple[str, str], int]:
    return {(t, str(p)): int(o) for t, parts in dict(at).items() for p, o in dict(parts).items()}


def _nested(flat: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(flat.items(), key=lambda i: (i[0][0], int(i[0][1]))):
        out.setdefault(topic, {})[partition] = offset
    return out


def kind_of(kind: str) -> PositionKind:
    if kind == OFFSETS:
        return OffsetPositions()
    if kind == FILES:
        return FilePositions()
    if kind in COLUMN_KINDS:
        return ColumnPositions(kind)
    raise ConfigurationError(f"{kind[:40]!r} is not a kind of incremental position")


def order_of(by: Incremental) -> PositionKind:
    return kind_of(by.kind)


def lookback_shown(by: Incremental) -> str | int | None:
    """An extract's lookback as an engineer wrote it: seconds or days, or an integer column's
    units (None: none)."""
    if not by.lookback:
        return None
    if by.kind == "timestamp":
        return f"{by.lookback // 1_000_000} s"
    if by.kind == FILES:
        return f"{by.lookback // 1000} s"
    if by.kind == "date":
        return f"{by.lookback} days"
    return by.lookback


def shown(at: Position | None, kind: str) -> str | int | None:
    """A position as an engineer reads it: a timestamp in ISO 8601 UTC, a date, a number, a
    topic's offsets as JSON."""
    return None if at is None else kind_of(kind).shown(at)


def parsed(text: str, kind: str) -> Position:
    """The position a value written by an engineer (``etlc state reset --to``) stands for."""
    return kind_of(kind).parsed(text)


def compact_json(at: Any) -> str:
    """A position as one line of JSON, keys sorted: the text an operator passes to `--to`,
    and offsets as Spark's Kafka source reads them."""
    return json.dumps(at, sort_keys=True, separators=(",", ":"))
