"""Incremental batch extracts: each run reads only what is new since its loads last committed.

An incremental extract gives each record a position (see :mod:`etlc.runtime.positions`): its
column's value, or its Kafka offset. Each load fed by it commits, with its rows, the position
the run reached: the end the source fixed before the read (a topic's latest offsets), or else
the highest position read (observed in the plan, never by another pass). A database load
commits it in the same transaction (:class:`~etlc.runtime.strategies.PositionedLoader`), any
other in a position file under ``etlc.state_dir``, written once the load has committed. The
next run reads the records after that position, less the extract's ``lookback``.

Loads fed by one extract normally hold one position. After a run in which some committed and
another failed, they differ: the next run then reads only the range between them, and the loads
already past it skip the run (``step_skipped``), so that no load writes a row twice. The run
after that reads new rows for all of them again.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from etlc.runtime.environment import Environment
from etlc.runtime.errors import ConfigurationError, TerminalError, classify, summary
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.logs import EventLog
from etlc.runtime.observed import observed_metrics
from etlc.runtime.positions import kind_of, lookback_shown, order_of, position, shown
from etlc.runtime.strategies import (
    Incremental,
    IncrementalExtractor,
    Position,
    PositionedLoader,
    Positions,
)

_FILE = re.compile(r"positions-([0-9]{12})\.json")
COMMIT_ATTEMPTS, COMMIT_DELAY_S = 3, 1.0  # a position file's write, after its load committed
_KEEP = 2  # position files kept per load: the newest, and the one before for an operator


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
    after: Position | None  # the loads' committed position (None: read everything)
    upto: Position | None  # a catch-up's bound: the position loads ahead of the others hold
    fixed: Position | None = None  # the end the source fixed before the read (see read_end)
    observation: Observation | None = None
    logged: bool = False
    held: bool = False  # no new rows this run: a load it feeds skips a catch-up

    @property
    def end(self) -> Position | None:
        """Where the read stops (None: wherever the source ends as it reads)."""
        return self.upto if self.held or self.upto is not None else self.fixed


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
    held: dict[str, dict[str, Position]] | None = None

    def plan(self, *, full_refresh: bool = False) -> None:
        """The committed positions read from every load's store, and the run's ranges; a
        full refresh reads every record, whatever the loads committed."""
        self.reads, self.skipped = {}, set()
        self.held = None if full_refresh else {}
        held: dict[str, dict[str, Position | None]] = {}  # extract -> load -> position
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
            self.reads[ex.id] = self._range(ex, held.get(ex.id, {}), full_refresh)
        for ld in self.graph.loads:
            self._decide(ld, held)
        self._hold()

    def _range(
        self, ex: ExtractStep, stands: Mapping[str, Position | None], full_refresh: bool
    ) -> _Read:
        """``ex``'s read: above the lowest of its loads' positions (none: every record), up to
        the highest when they differ (a catch-up), else up to the end its source fixes."""
        by = by_of(ex)
        order = order_of(by)
        known = [p for p in stands.values() if p is not None]
        low = None if len(known) < len(stands) or not known else order.lowest(known)
        high = order.highest(known) if known else None
        caught_up = high is not None and low != high
        read = _Read(ex, by, low, high if caught_up else None)
        if not caught_up:
            assert isinstance(ex.extractor, IncrementalExtractor)
            try:
                read.fixed = ex.extractor.read_end(self.spark, low)
            except Exception as exc:
                raise classify(exc, ex.id) from exc
        self.log.info(
            "incremental_range",
            stage="extract",
            step=ex.id,
            column=by.column,
            after=shown(low, by.kind),
            lookback=lookback_shown(by),
            upto=shown(read.end, by.kind),
            catch_up=caught_up or None,
            full_refresh=full_refresh or None,
        )
        return read

    def _hold(self) -> None:
        """A load that skips a catch-up keeps its positions of its other extracts too: so
        that it stays level with their other loads, those read no new records of them in
        this run (the next run, every load level again, reads them)."""
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

    def _decide(self, ld: LoadStep, held: Mapping[str, Mapping[str, Position | None]]) -> None:
        """Whether a load reads this run's range, or skips it: it is past a catch-up (level
        with the others on its other extracts, it takes their new records in a later run)."""
        ahead: list[str] = []
        behind: list[str] = []
        for ex in self.fed_by(ld):
            read = self.reads[ex.id]
            if read.upto is None:  # no catch-up: every load of it reads the new records
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
        """``step``'s records for this run: its range, with the count (and, where the
        source fixed no end, the highest position) observed as they are read."""
        read = self.reads.get(step.id)
        if read is None:
            return step.extractor.extract(self.spark)
        assert isinstance(step.extractor, IncrementalExtractor)
        order = order_of(read.by)
        after = None if read.after is None else order.start(read.after, read.by.lookback)
        if read.held and read.after is None:  # never read: nothing is below a position
            df = step.extractor.nothing(self.spark)
        else:
            df = step.extractor.extract_range(self.spark, after, read.end)
        if read.observation is not None:
            # Read again in this attempt (a staging for a count, a sample): the loads wrote
            # what the first read gave, and records committed since must wait for the next run.
            return df
        read.observation = Observation(f"etlc:incremental:{step.id}")
        metrics = [F.count(F.lit(1)).alias("records")]
        if read.by.column is not None:
            at = position(F.col(f"`{read.by.column}`"), read.by.kind)
            metrics.append(F.max(at).alias("position"))
        return df.observe(read.observation, *metrics)

    def positions(self, ld: LoadStep) -> Positions | None:
        """What ``ld`` commits with its rows (None: no incremental extract feeds it)."""
        fed = self.fed_by(ld)
        if not fed:
            return None
        ctx = self.log.context

        def values() -> dict[str, Position]:
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
        store = LoadPositions(ld, self.spark, self.env, self.log.context.pipeline)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                path = store.write_file(values, positions.run_id)
                break
            except Exception as exc:
                if attempt == COMMIT_ATTEMPTS:
                    raise self._uncommitted(ld, values, store.where(), exc) from exc
                self.sleep(COMMIT_DELAY_S)
        self.log.info("positions_committed", stage="load", step=ld.id, path=path)

    def _uncommitted(
        self, ld: LoadStep, values: Mapping[str, Position], folder: str, exc: Exception
    ) -> TerminalError:
        commands = "; ".join(
            f"etlc state reset <definition> --load {ld.id} --extract {extract} --to "
            + shlex.quote(kind_of(self.reads[extract].by.kind).text(at))
            for extract, at in sorted(values.items())
        )
        return TerminalError(
            f"its rows are committed, but its positions could not be written to {folder} "
            f"({summary(exc)}); before the next run, set them: {commands}",
            ld.id,
        )

    def _reached(self, extract: str) -> Position | None:
        """The position ``extract``'s read reached: the end fixed before it read (a
        catch-up's bound, a source's own end); else the highest it read, never below where it
        started (a lookback re-reads records below), or where it started when it read none."""
        read = self.reads[extract]
        assert read.observation is not None, f"{extract} was not read"
        found = observed_metrics(read.observation, extract)
        top = found.get("position")
        reached: Position | None
        if read.held or read.end is not None:  # an end fixed before the read
            reached = read.end
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

    def _stored(self, ld: LoadStep) -> dict[str, Position]:
        """The load's positions of the incremental extracts feeding it, each of its kind
        (anything else was not written by etlc, and is refused rather than guessed at)."""
        found = LoadPositions(ld, self.spark, self.env, self.log.context.pipeline).read()
        fed = {ex.id: ex for ex in self.fed_by(ld)}
        for extract, at in found.items():
            if extract in fed and not order_of(by_of(fed[extract])).valid(at):
                raise ConfigurationError(
                    f"its position of `{extract}` is {json.dumps(at)[:40]}, not a position "
                    f"of its kind ({by_of(fed[extract]).kind}); set it with `etlc state reset`"
                )
        return {k: v for k, v in found.items() if k in fed}


def by_of(step: ExtractStep) -> Incremental:
    """How ``step`` (an incremental extract) reads only what is new."""
    assert isinstance(step.extractor, IncrementalExtractor)
    assert step.extractor.incremental is not None
    return step.extractor.incremental


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
            self.write_file(values, run_id)

    def write_file(self, values: Mapping[str, Position], run_id: str) -> str:
        """``values`` in a new position file; its path."""
        return self._file().write(values, run_id)

    def where(self) -> str:
        """Where they are, for an operator: a table, or a folder."""
        if isinstance(self.load.loader, PositionedLoader):
            return "table etlc_incremental_state of the load's database"
        return self._file().folder

    def _file(self) -> PositionFile:
        root = self.env.settings.state_dir
        return PositionFile(self.spark, root, self.pipeline, self.load.id)
