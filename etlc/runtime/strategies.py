"""The strategy interfaces the runtime runs: what reads, transforms and writes a dataset.

The runtime owns them; connectors (etlc.connectors) and transforms (etlc.transforms) implement
them, and a generated driver binds one to each step. So imports point one way: connectors and
transforms import the runtime, never the reverse (an import-linter contract keeps it so).

They stay tiny on purpose. The pipeline wraps every failure once, centrally, into the
framework's error taxonomy with the step named, so connectors raise what they naturally raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming.readwriter import DataStreamWriter

from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.errors import ConfigurationError, EtlcError

# A transform: a pure function from input DataFrames (and its options) to one DataFrame. It
# never performs I/O, logs, collects, registers views or touches session config.
Transform = Callable[..., DataFrame]


class Extractor(ABC):
    """Reads one dataset. The DataFrame returned is lazy; Spark reads when the stage runs."""

    @abstractmethod
    def extract(self, spark: SparkSession) -> DataFrame: ...

    def describe(self) -> dict[str, Any]:
        """Non-secret facts for the logs (system, path or table, format)."""
        return {}

    def dataset(self, spark: SparkSession) -> DatasetName | None:
        """The dataset it reads, named for the run's lineage events (None: not one dataset
        etlc can name, such as a database query)."""
        return None

    def explain(self, exc: BaseException) -> Exception | None:
        """A failure of the read, which surfaces lazily when Spark runs it, in the source's
        own terms (None: nothing to add to the generic classification)."""
        return None


class StreamExtractor(ABC):
    """Reads one dataset as an unbounded stream (Structured Streaming)."""

    @abstractmethod
    def stream(self, spark: SparkSession) -> DataFrame:
        """Decoded records plus ``_etlc_position`` (where each came from, for messages)."""

    def describe(self) -> dict[str, Any]:
        return {}

    def pace(self, trigger_ms: int, cores: int) -> dict[str, Any]:
        """Told, before ``stream``, the trigger interval its micro-batches run at and how
        many cores process them, so that it can bound each batch's intake; returns that
        bound as log fields (none: the source reads whatever has arrived)."""
        return {}

    def dataset(self, spark: SparkSession) -> DatasetName | None:
        """The dataset it reads, named for the run's lineage events (None: not one dataset
        etlc can name, such as a database query)."""
        return None

    def explain(self, exc: BaseException) -> EtlcError | None:
        """The error a query reading this stream died of, when the source can say more than
        the generic classification (which of its offsets are gone, say); None otherwise."""
        return None

    def skipped(self, source: Any) -> dict[str, Any] | None:
        """What one micro-batch of this stream passed over without reading (Spark's
        ``SourceProgress`` of a source, which may be another stream's): log fields, or None."""
        return None


@dataclass(frozen=True)
class LoadResult:
    dead_lettered: int = 0
    # Rows replaced by a later row of the same key before writing (upsert keeps the last).
    superseded: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    # The statement that created the target before this load, when it did not exist.
    created_table: str | None = None
    # Columns the load added to its target (nullable) before writing.
    added_columns: tuple[str, ...] = ()
    # Where a load's time went, by phase (a database load: `staging_ms`, `move_ms`), and how
    # its rows reached the target's staging (`copy`: the database's bulk path; `insert`).
    phases_ms: dict[str, int] = field(default_factory=dict)
    staged_with: str | None = None


# The write modes a definition may name. Which of them a load can do is its kind's to
# declare (its row of the plugin table, which the compiler checks: E401); a loader refuses,
# by what it implements, any other it is handed.
WRITE_MODES = ("append", "overwrite", "upsert")


def refuse_unknown_mode(mode: str, target: str) -> None:
    if mode not in WRITE_MODES:
        raise ConfigurationError(
            f"{target}: no write mode `{mode}`; write one of {', '.join(WRITE_MODES)}"
        )


class Loader(ABC):
    """Writes one dataset with a write mode; refuses (ConfigurationError) one it cannot do
    before it reads or writes anything."""

    @abstractmethod
    def load(self, df: DataFrame, mode: str) -> LoadResult: ...

    def describe(self) -> dict[str, Any]:
        return {}

    def dataset(self, spark: SparkSession) -> DatasetName | None:
        """The dataset it writes, named for the run's lineage events (None: not one dataset
        etlc can name, such as a database query)."""
        return None


# Called by a gated load once its records are written and before they are visible; raising
# keeps them from the target (the load removes them and raises the same error).
Gate = Callable[[], None]


class GatedLoader(ABC):
    """A loader that can write its records where no reader of the target sees them, and make
    them visible only once a check passes. A batch run then validates its extracts in the same
    pass that writes the load (one read of each source), and still leaves the target as it was
    when a record breaks a rule."""

    @abstractmethod
    def gates(self, spark: SparkSession, mode: str) -> bool:
        """Whether this load, in ``mode``, can hold its records back until the gate passes."""

    @abstractmethod
    def load_gated(self, df: DataFrame, mode: str, gate: Gate) -> LoadResult:
        """``load``, with ``gate`` called between writing the records and publishing them."""


@dataclass(frozen=True)
class BatchMarker:
    """Which micro-batch a streaming write is: a checkpoint's epoch and Spark's batch id."""

    pipeline: str
    epoch: str  # new for every fresh checkpoint, so its batch ids start over safely
    batch_id: int


class ExactlyOnceLoader(ABC):
    """A sink that commits a micro-batch and its marker atomically (streaming, exactly once)."""

    @abstractmethod
    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        """Write the batch; None when ``marker`` shows it was committed before (skipped)."""


# Where an incremental extract stands: a JSON value its kind reads (see
# etlc.runtime.positions), kept as JSON text wherever it is kept.
Position = Any


@dataclass(frozen=True)
class Incremental:
    """How an extract reads only what is new: by ``column``'s values, kept as integer
    positions (kind integer: the value; date: days since 1970-01-01; timestamp: microseconds
    since 1970-01-01 UTC), re-reading ``lookback`` positions before the last; or, with no
    column, by the source's own positions: a topic's offsets, a folder's files (whose
    ``lookback`` is in milliseconds of modification time). See :mod:`etlc.runtime.positions`."""

    kind: str  # integer | date | timestamp | offsets | files
    column: str | None = None
    lookback: int = 0


class IncrementalExtractor(ABC):
    """An extractor that can read a range of its positions."""

    incremental: Incremental | None = None

    def read_end(self, spark: SparkSession, after: Position | None) -> Position | None:
        """Where this run's read from ``after`` ends, fixed before it reads, so that every
        read of the attempt gives the same records (None: the source's end when it reads; the
        highest position read is then observed as it reads)."""
        return None

    @abstractmethod
    def extract(self, spark: SparkSession) -> DataFrame:
        """Every record (as :meth:`Extractor.extract`)."""

    def nothing(self, spark: SparkSession) -> DataFrame:
        """No record, shaped as ``extract`` gives them (a held extract no run has read)."""
        return self.extract(spark).where("false")

    @abstractmethod
    def extract_range(
        self, spark: SparkSession, after: Position | None, upto: Position | None
    ) -> DataFrame:
        """The records whose position is above ``after`` (all when None) and at most ``upto``
        (no bound when None), read lazily as ``extract`` reads all."""


@dataclass(frozen=True)
class Positions:
    """The incremental extracts' positions a load commits with its rows: what the next run
    reads after. ``values`` is asked right before the commit, when the read is done."""

    pipeline: str
    load: str
    run_id: str
    values: Callable[[], Mapping[str, Position]]
    # What the load held of each extract when the run began (absent: nothing); a load that
    # finds others there at its commit lost a race with another run of the pipeline, and
    # commits nothing. None: no check (a reset, a full refresh).
    expected: Mapping[str, Position] | None = None


class PositionedLoader(ABC):
    """A loader that commits positions in the same transaction as its rows, so that a run
    killed at any moment leaves the rows and the positions together, or neither."""

    @abstractmethod
    def positions(self, spark: SparkSession, pipeline: str, load: str) -> dict[str, Position]:
        """The positions committed for ``load`` of ``pipeline`` (empty: none yet)."""

    @abstractmethod
    def load_positioned(self, df: DataFrame, mode: str, positions: Positions) -> LoadResult:
        """``load``, committing ``positions`` with the rows."""

    @abstractmethod
    def replace_positions(self, spark: SparkSession, positions: Positions) -> None:
        """Commit ``positions`` alone, in place of the load's (an operator's reset)."""


class StreamSink(ABC):
    """A sink Spark writes a stream to itself, exactly once through its own commit log (files:
    Spark's file sink), instead of micro-batch by micro-batch through ``foreachBatch``."""

    @abstractmethod
    def sink(self, spark: SparkSession, writer: DataStreamWriter) -> DataStreamWriter:
        """``writer`` with the sink's format, path and options set."""
