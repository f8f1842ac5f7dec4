"""Incremental batch extracts: each run reads only what is new since its loads last committed.

An incremental extract's column gives each row a position (see
:class:`~etlc.runtime.strategies.Incremental`). Each load fed by it commits, with its rows, the
highest position the run read (observed in the plan, never by another pass): a database load
in the same transaction (:class:`~etlc.runtime.strategies.PositionedLoader`), any other in a
position file under ``etlc.state_dir``, written once the load has committed. The next run
reads the rows above that position, less the extract's ``lookback``.

Loads fed by one extract normally hold one position. After a run in which some committed and
another failed, they differ: the next run then reads only the range between them, and the loads
already past it skip the run (``step_skipped``), so that no load writes a row twice. The run
after that reads new rows for all of them again.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from etlc.runtime.environment import Environment
from etlc.runtime.errors import ConfigurationError, TerminalError, classify, summary
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.logs import EventLog
from etlc.runtime.observed import observed_metrics
from etlc.runtime.strategies import (
    Incremental,
    IncrementalExtractor,
    Position,
    PositionedLoader,
    Positions,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FILE = re.compile(r"positions-([0-9]{12})\.json")
COMMIT_ATTEMPTS, COMMIT_DELAY_S = 3, 1.0  # a position file's write, after its load committed
_KEEP = 2  # position files kept per load: the newest, and the one before for an operator
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def position(column: Column, kind: str) -> Column:
    """The position of ``column``'s values (see :class:`Incremental`)."""
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


def shown(at: Position | None, kind: str) -> str | int | None:
    """A position as an engineer reads it: a timestamp in ISO 8601 UTC, a date, a number."""
    if at is None:
        return None
    if not isinstance(at, int) or isinstance(at, bool):  # not etlc's: shown as it is kept
        return json.dumps(at)[:80]
    if kind == "timestamp":
        return (_EPOCH + timedelta(microseconds=at)).isoformat().replace("+00:00", "Z")
    if kind == "date":
        return (_EPOCH.date() + timedelta(days=at)).isoformat()
    return at


def parsed(text: str, kind: str) -> int:
    """The position a value written by an engineer stands for (``etlc state reset --to``):
    a timestamp in ISO 8601 (UTC unless it has an offset), a date, or an integer."""
    at = _parsed(text, kind)
    if not _LONG_MIN <= at <= _LONG_MAX:
        raise ConfigurationError(f"{text[:40]!r} is beyond a 64-bit {kind} position")
    return at


def _parsed(text: str, kind: str) -> int:
    try:
        if kind == "timestamp":
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return (when - _EPOCH) // timedelta(microseconds=1)
        if kind == "date":
            return (date.fromisoformat(text.strip()) - _EPOCH.date()).days
        if not _INTEGER.fullmatch(text.strip()):
            raise ValueError(text)
        return int(text.strip())
    except (ValueError, OverflowError):
        example = {"timestamp": "2026-01-31T00:00:00Z", "date": "2026-01-31"}.get(kind, "42")
        raise ConfigurationError(
            f"{text[:40]!r} is not {'an' if kind == 'integer' else 'a'} {kind} position; "
            f"write e.g. {example}"
        ) from None


class PositionFile:
    """A load's positions in files under ``<state_dir>/<pipeline>/<load>/``, through Hadoop's
    file system (a local folder, HDFS or S3). Each commit writes a new file; a file a crash
    cut short does not parse and does not count, so the one before it stands."""

    def __init__(self, spark: SparkSession, root: str, pipeline: str, load: str) -> None:
        self.spark = spark
        self.folder = f"{root.rstrip('/')}/{pipeline}/{load}"

    def read(self) -> dict[str, Position]:
        found = self._committed()
        return found[-1][1] if found else {}

    def write(self, values: Mapping[str, Position], run_id: str) -> str:
        found = self._numbers()
        number = (found[-1] if found else 0) + 1
        path = f"{self.folder}/positions-{number:012d}.json"
        body = json.dumps({"positions": dict(values), "run_id": run_id}, sort_keys=True)
        fs, hpath = self._fs(path)
        out = fs.create(hpath, False)  # a file of this number already there: another writer
        try:
            out.write(bytearray(body.encode("utf-8")))
        finally:
            out.close()
        for old in found[: max(0, len(found) + 1 - _KEEP)]:
            with suppress(Exception):  # committed already: an old file left is only clutter
                fs.delete(self._path(f"{self.folder}/positions-{old:012d}.json"), False)
        return path

    def _committed(self) -> list[tuple[int, dict[str, Position]]]:
        out: list[tuple[int, dict[str, Position]]] = []
        for number in self._numbers():
            values = self._parse(f"{self.folder}/positions-{number:012d}.json")
            if values is not None:
                out.append((number, values))
        return out

    def _numbers(self) -> list[int]:
        fs, folder = self._fs(self.folder)
        if not fs.exists(folder):
            return []
        names = [status.getPath().getName() for status in fs.listStatus(folder)]
        return sorted(int(m.group(1)) for m in map(_FILE.fullmatch, names) if m)

    def _parse(self, path: str) -> dict[str, Position] | None:
        fs, hpath = self._fs(path)
        stream = fs.open(hpath)
        try:
            jvm = self.spark.sparkContext._jvm
            assert jvm is not None
            text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()
        try:
            values = json.loads(text)["positions"]
        except (ValueError, KeyError, TypeError):
            return None
        return {str(k): v for k, v in values.items()} if isinstance(values, dict) else None

    def _path(self, path: str) -> Any:
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        return jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str) -> tuple[Any, Any]:
        hpath = self._path(path)
        conf = self.spark.sparkContext._jsc.hadoopConfiguration()
        return hpath.getFileSystem(conf), hpath


@dataclass
class _Read:
    """One incremental extract's read in this run."""

    step: ExtractStep
    by: Incremental
    after: int | None  # the loads' committed position (None: read everything)
    upto: int | None  # a catch-up's bound: the position loads ahead of the others hold
    observation: Observation | None = None
    logged: bool = False
    held: bool = False  # no new rows this run: a load it feeds skips a catch-up


@dataclass
class IncrementalRun:
    """A batch run's incremental reads: where each extract starts and stops, which loads skip
    the run, and each load's positions to commit."""

    graph: PipelineGraph
    spark: SparkSession
    env: Environment
    log: EventLog
    reads: dict[str, _Read] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    sleep: Callable[[float], None] = time.sleep  # between attempts at a position file
    # What each load held when the run planned (None: a full refresh, which does not ask).
    held: dict[str, dict[str, int]] | None = None

    def plan(self, *, full_refresh: bool = False) -> None:
        """The committed positions read from every load's store, and the run's ranges; a
        full refresh reads every row, whatever the loads committed."""
        self.reads, self.skipped = {}, set()
        self.held = None if full_refresh else {}
        held: dict[str, dict[str, int | None]] = {}  # extract -> load -> position
        for ld in self.graph.loads:
            fed = self.fed_by(ld)
            if not fed:
                continue
            try:
                committed = {} if full_refresh else self._stored(ld)
            except Exception as exc:
                raise classify(exc, ld.id) from exc
            if self.held is not None:
                self.held[ld.id] = committed
            for ex in fed:
                held.setdefault(ex.id, {})[ld.id] = committed.get(ex.id)
        for ex in self.incremental_extracts():
            stands = held.get(ex.id, {})
            assert isinstance(ex.extractor, IncrementalExtractor)
            by = ex.extractor.incremental
            assert by is not None
            known = [p for p in stands.values() if p is not None]
            low = None if len(known) < len(stands) or not known else min(known)
            high = max(known) if known else None
            caught_up = high is not None and low != high
            self.reads[ex.id] = _Read(ex, by, low, high if caught_up else None)
            self.log.info(
                "incremental_range",
                stage="extract",
                step=ex.id,
                column=by.column,
                after=shown(low, by.kind),
                lookback=by.lookback or None,
                upto=shown(high, by.kind) if caught_up else None,
                catch_up=caught_up or None,
                full_refresh=full_refresh or None,
            )
        for ld in self.graph.loads:
            self._decide(ld, held)
        self._hold()

    def _hold(self) -> None:
        """A load that skips a catch-up keeps its positions of its other extracts too: so
        that it stays level with their other loads, those read no new rows of them in this
        run (the next run, every load level again, reads them)."""
        for ld in (ld for ld in self.graph.loads if ld.id in self.skipped):
            for ex in self.fed_by(ld):
                read = self.reads[ex.id]
                if read.upto is None:
                    read.upto, read.held = read.after, True
                    self.log.info(
                        "incremental_held",
                        stage="extract",
                        step=ex.id,
                        at=shown(read.after, read.by.kind),
                        reason=f"load `{ld.id}` skips a catch-up",
                    )

    def _decide(self, ld: LoadStep, held: Mapping[str, Mapping[str, int | None]]) -> None:
        """Whether a load reads this run's range, or skips it: it is past a catch-up (level
        with the others on its other extracts, it takes their new rows in a later run)."""
        ahead: list[str] = []
        behind: list[str] = []
        for ex in self.fed_by(ld):
            read = self.reads[ex.id]
            if read.upto is None:  # no catch-up: every load of it reads the new rows
                continue
            mine = held[ex.id][ld.id]
            (ahead if mine == read.upto else behind).append(ex.id)
            if mine not in (read.upto, read.after):
                raise ConfigurationError(
                    f"load `{ld.id}` holds position {shown(mine, read.by.kind)} of `{ex.id}`, "
                    "neither where the other loads stand nor the last one any reached; set "
                    "them with `etlc state reset`"
                )
        if ahead and behind:
            raise ConfigurationError(
                f"load `{ld.id}` is past `{', '.join(ahead)}` and behind `{', '.join(behind)}`"
                "; set the positions with `etlc state reset`"
            )
        if ahead:
            self.skipped.add(ld.id)

    def incremental_extracts(self) -> list[ExtractStep]:
        return [
            ex
            for ex in self.graph.extracts
            if isinstance(ex.extractor, IncrementalExtractor)
            and ex.extractor.incremental is not None
        ]

    def fed_by(self, ld: LoadStep) -> list[ExtractStep]:
        """The incremental extracts upstream of ``ld``."""
        upstream = self.graph.upstream(ld.input)
        return [ex for ex in self.incremental_extracts() if ex.id in upstream]

    def source(self, step: ExtractStep) -> DataFrame:
        """``step``'s records for this run: its range, with the highest position and the
        count observed as they are read."""
        read = self.reads.get(step.id)
        if read is None:
            return step.extractor.extract(self.spark)
        assert isinstance(step.extractor, IncrementalExtractor)
        after = None if read.after is None else read.after - read.by.lookback
        df = step.extractor.extract_range(self.spark, after, read.upto)
        if read.held and read.after is None:  # never read: nothing is below a position
            df = df.where(F.lit(False))
        if read.observation is not None:
            # Read again in this attempt (a staging for a count, a sample): the loads wrote
            # what the first read gave, and rows committed since must wait for the next run.
            return df
        read.observation = Observation(f"etlc:incremental:{step.id}")
        at = position(F.col(f"`{read.by.column}`"), read.by.kind)
        return df.observe(
            read.observation, F.max(at).alias("position"), F.count(F.lit(1)).alias("records")
        )

    def positions(self, ld: LoadStep) -> Positions | None:
        """What ``ld`` commits with its rows (None: no incremental extract feeds it)."""
        fed = self.fed_by(ld)
        if not fed:
            return None
        ctx = self.log.context

        def values() -> dict[str, int]:
            return {ex.id: p for ex in fed if (p := self._reached(ex.id)) is not None}

        expected = None if self.held is None else self.held.get(ld.id, {})
        return Positions(ctx.pipeline, ld.id, ctx.run_id, values, expected)

    def commit(self, ld: LoadStep) -> None:
        """The positions of a load that cannot commit them with its rows, written now that
        it has committed; tried again on failure, then the run stops with the command that
        sets them by hand (its rows are in: the next run must not read them again)."""
        positions = self.positions(ld)
        if positions is None:
            return
        values = positions.values()
        root = self.env.settings.state_dir
        store = PositionFile(self.spark, root, self.log.context.pipeline, ld.id)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                path = store.write(values, positions.run_id)
                break
            except Exception as exc:
                if attempt == COMMIT_ATTEMPTS:
                    raise self._uncommitted(ld, values, store.folder, exc) from exc
                self.sleep(COMMIT_DELAY_S)
        self.log.info("positions_committed", stage="load", step=ld.id, path=path)

    def _uncommitted(
        self, ld: LoadStep, values: Mapping[str, int], folder: str, exc: Exception
    ) -> TerminalError:
        commands = "; ".join(
            f"etlc state reset <definition> --load {ld.id} --extract {extract} --to "
            f"{shown(at, self.reads[extract].by.kind)}"
            for extract, at in sorted(values.items())
        )
        return TerminalError(
            f"its rows are committed, but its positions could not be written to {folder} "
            f"({summary(exc)}); before the next run, set them: {commands}",
            ld.id,
        )

    def _reached(self, extract: str) -> int | None:
        """The position ``extract``'s read reached: the highest it read, never below where
        it started (a lookback re-reads rows below), or where it started when it read none; a
        catch-up's bound, which it read up to."""
        read = self.reads[extract]
        assert read.observation is not None, f"{extract} was not read"
        found = observed_metrics(read.observation, extract)
        top = found.get("position")
        if read.upto is not None:  # a catch-up read all of its range
            reached: int | None = read.upto
        elif top is None:
            reached = read.after
        else:
            reached = int(top) if read.after is None else max(int(top), read.after)
        if not read.logged:
            read.logged = True
            self.log.info(
                "incremental_read",
                stage="extract",
                step=extract,
                column=read.by.column,
                after=shown(read.after, read.by.kind),
                reached=shown(reached, read.by.kind),
                records=int(found.get("records") or 0),
            )
        return reached

    def _stored(self, ld: LoadStep) -> dict[str, int]:
        """The load's positions of the column-read extracts feeding it: integers (anything
        else was not written by etlc, and is refused rather than guessed at)."""
        found = LoadPositions(ld, self.spark, self.env, self.log.context.pipeline).read()
        fed = {ex.id for ex in self.fed_by(ld)}
        for extract, at in found.items():
            if extract in fed and (not isinstance(at, int) or isinstance(at, bool)):
                raise ConfigurationError(
                    f"its position of `{extract}` is {json.dumps(at)[:40]}, not a column's "
                    "position; set it with `etlc state reset`"
                )
        return {k: v for k, v in found.items() if k in fed}


@dataclass
class LoadPositions:
    """Where a load's positions are kept: its own database, or a position file."""

    load: LoadStep
    spark: SparkSession
    env: Environment
    pipeline: str

    def read(self) -> dict[str, Position]:
        if isinstance(self.load.loader, PositionedLoader):
            return self.load.loader.positions(self.spark, self.pipeline, self.load.id)
        return self._file().read()

    def replace(self, values: Mapping[str, Position], run_id: str) -> None:
        """``values`` in place of the load's positions, committed alone."""
        if isinstance(self.load.loader, PositionedLoader):
            kept = dict(values)
            positions = Positions(self.pipeline, self.load.id, run_id, lambda: kept)
            self.load.loader.replace_positions(self.spark, positions)
        else:
            self._file().write(values, run_id)

    def where(self) -> str:
        """Where they are, for an operator: a table, or a folder."""
        if isinstance(self.load.loader, PositionedLoader):
            return "table etlc_incremental_state of the load's database"
        return self._file().folder

    def _file(self) -> PositionFile:
        root = self.env.settings.state_dir
        return PositionFile(self.spark, root, self.pipeline, self.load.id)
