"""Files on any Hadoop filesystem path (local, hdfs://, s3a://): CSV, JSON, Parquet, Avro, and
Delta Lake tables (the one format here with upsert).

An ``incremental`` extract lists its path's files before it reads (on the driver, through
Hadoop's file system, skipping the names Spark skips: ``_*`` but partition folders, ``.*``)
and reads the ones its loads have not (see :class:`~etlc.runtime.positions.FilePositions`), by
name: a file that appears while the run reads, modified within the lookback, waits for the
next run."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql.streaming.readwriter import DataStreamWriter
from pyspark.sql.types import StructType

from etlc.connectors import delta, pending_files
from etlc.connectors.conform import column_differences, conform
from etlc.connectors.hadoop_fs import file_system
from etlc.runtime import dataset_names
from etlc.runtime.dataset_names import GLOB, DatasetName
from etlc.runtime.errors import ConfigurationError, SchemaIncompatibleError
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.positions import files_between, files_end
from etlc.runtime.rules import CORRUPT_COLUMN
from etlc.runtime.strategies import (
    Extractor,
    Gate,
    GatedLoader,
    Incremental,
    IncrementalExtractor,
    Loader,
    LoadResult,
    Position,
    StreamSink,
    refuse_unknown_mode,
)

TEXT_FORMATS = ("csv", "json")
_GLOB_CHAR = re.compile(r"[\\\[\]{}*?]")
FORMATS = ("csv", "json", "parquet", "avro", delta.FORMAT)


# Spark's message when a CSV file's header is not the schema's columns in the schema's order.
_CSV_HEADER = re.compile(
    r"(?:CSV header does not conform to the schema\.|Number of column in CSV header is not "
    r"equal to number of fields in the schema:)(?P<detail>.*?)CSV file: (?P<file>\S+)",
    re.S,
)


class FilesExtractor(Extractor, IncrementalExtractor):
    def __init__(
        self,
        path: str,
        format: str,
        schema: DatasetSchema,
        options: Mapping[str, str] | None = None,
        *,
        incremental: Mapping[str, Any] | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ConfigurationError(f"unsupported file format `{format}`")
        self.path = path
        self.format = format
        self.schema = schema.struct()
        self.options = dict(options or {})
        self.incremental = None if incremental is None else Incremental(**incremental)
        if self.incremental is not None and format == delta.FORMAT:
            raise ConfigurationError("a Delta table is read whole: it takes no `incremental`")

    def describe(self) -> dict[str, Any]:
        return {"system": "files", "path": self.path, "format": self.format}

    def dataset(self, spark: SparkSession) -> DatasetName:
        return dataset_names.path(spark, self.path)

    def extract(self, spark: SparkSession) -> DataFrame:
        return self._read(spark, self.path)

    def read_end(self, spark: SparkSession, after: Position | None) -> Position | None:
        """The files position of every file listed now (None: not incremental)."""
        if self.incremental is None:
            return None
        return self._end(self.listing(spark, must_exist=after is None), after)

    def extract_range(
        self, spark: SparkSession, after: Position | None, upto: Position | None
    ) -> DataFrame:
        """The files listed that ``upto`` (every file listed now, when None) holds as read
        and ``after`` does not, read by name."""
        assert self.incremental is not None
        listing = self.listing(spark, must_exist=after is None)
        end = self._end(listing, after) if upto is None else upto
        return self._read(spark, files_between(listing, after, end))

    def _end(self, listing: Mapping[str, int], after: Position | None) -> Position:
        """Where a read of ``listing``, listed now, from ``after`` ends."""
        assert self.incremental is not None
        listed_at = int(time.time() * 1000)
        return files_end(listing, after, self.incremental.lookback, listed_at)

    def nothing(self, spark: SparkSession) -> DataFrame:
        return self._read(spark, [])

    def listing(self, spark: SparkSession, *, must_exist: bool = True) -> dict[str, int]:
        """The files Spark reads at the path, by full name: their modification times in
        milliseconds. Those directly in a folder and in its partition folders (``key=value``),
        or with ``recursive``, every folder below it; for a glob, those of its matches. A
        path with no file or folder there is refused when ``must_exist`` (a first run: a
        mistake in the path, more likely than a folder not made yet), else holds nothing."""
        jvm, fs = file_system(spark, self.path)
        matches = fs.globStatus(jvm.org.apache.hadoop.fs.Path(self.path))
        if not matches:
            if must_exist:
                raise ConfigurationError(f"source {self.path}: no file or folder there")
            return {}
        recursive = self.options.get("recursiveFileLookup") == "true"
        globbed = _globbed_parts(self.path)
        found: dict[str, int] = {}
        for match in matches:
            parts = str(match.getPath().toUri().getPath()).rstrip("/").split("/")
            if globbed and _hidden("/".join(parts[-globbed:])):
                continue  # a name a wildcard matched: Spark leaves out `_temporary` too
            if match.isFile():
                found[str(match.getPath())] = int(match.getModificationTime())
                continue
            folders = [match.getPath()]
            while folders:
                for status in fs.listStatus(folders.pop()):
                    name = str(status.getPath().getName())
                    if _hidden(name):
                        continue
                    if not status.isDirectory():
                        found[str(status.getPath())] = int(status.getModificationTime())
                    elif recursive or "=" in name:
                        folders.append(status.getPath())
        return found

    def _folder(self, spark: SparkSession) -> bool:
        jvm, fs = file_system(spark, self.path)
        return bool(fs.getFileStatus(jvm.org.apache.hadoop.fs.Path(self.path)).isDirectory())

    def _read(self, spark: SparkSession, paths: str | list[str]) -> DataFrame:
        """The records of ``paths`` (a path or glob, or files by name; none: no record)."""
        if isinstance(paths, list) and not paths:
            columns = self._text_schema() if self.format in TEXT_FORMATS else self.schema
            empty = spark.createDataFrame([], columns)
            return empty if self.format in TEXT_FORMATS else conform(self.path, empty, self.schema)
        options = dict(self.options)
        if isinstance(paths, list):
            # Spark reads a name with [ ] { } * ? as a glob: each is escaped, to mean itself.
            paths = [_GLOB_CHAR.sub(r"\\\g<0>", p) for p in paths]
            if not GLOB.search(self.path) and self._folder(spark):
                options.setdefault("basePath", self.path)  # partition folders stay columns
        if self.format in TEXT_FORMATS:
            return self._read_text(spark, paths, options)
        df = spark.read.format(self.format).options(**options).load(paths)
        return conform(self.path, df, self.schema)

    def _text_schema(self) -> StructType:
        return StructType([*self.schema.fields]).add(CORRUPT_COLUMN, "string")

    def _read_text(
        self, spark: SparkSession, paths: str | list[str], options: Mapping[str, str]
    ) -> DataFrame:
        reader = spark.read.format(self.format).options(**options)
        if self.format == "csv" and self.options.get("header") == "true":
            # Spark checks every file's header against the schema, names and order, as it
            # reads it: no extra pass, and a file whose columns are reordered is refused
            # instead of read by position into the wrong columns.
            reader = reader.option("enforceSchema", "false")
        return (
            reader.option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .schema(self._text_schema())
            .load(paths)
        )

    def explain(self, exc: BaseException) -> Exception | None:
        found = _CSV_HEADER.search(str(exc))
        if found is None:
            return None
        file = found.group("file")
        declared = self.schema.fieldNames()
        try:  # the failure path only: the one offending file's header line, for the names
            spark = SparkSession.getActiveSession()
            header = spark.read.options(**self.options).csv(file).columns if spark else []
        except Exception:
            header = []
        parts = column_differences(header, declared, "file") if header else []
        if header and not parts:
            parts = [f"columns in another order: {', '.join(header)}; the schema's order is "
                     f"{', '.join(declared)}"]  # fmt: skip
        detail = "; ".join(parts) or " ".join(found.group("detail").split())
        return SchemaIncompatibleError(
            f"source {self.path}: the CSV header of {file} does not match its Avro schema "
            f"({detail}); update the .avsc (schema evolution) or the source"
        )


def _globbed_parts(path: str) -> int:
    """How many of ``path``'s last names are matched by a glob (from the first with a
    wildcard on)."""
    parts = path.rstrip("/").split("/")
    first = next((i for i, part in enumerate(parts) if GLOB.search(part)), len(parts))
    return len(parts) - first


def _hidden(relative: str) -> bool:
    """Whether Spark leaves a file out of a folder's read: a name below the folder starting
    with ``.``, or with ``_`` unless a partition folder's (``_key=value``); a copy in flight."""
    parts = relative.split("/")
    return relative.endswith("._COPYING_") or any(
        p.startswith(".") or (p.startswith("_") and "=" not in p) for p in parts
    )


class FilesLoader(Loader, GatedLoader, StreamSink):
    def __init__(
        self,
        path: str,
        format: str,
        options: Mapping[str, str] | None = None,
        partition_by: Sequence[str] = (),
        single_file: bool = False,
        *,
        keys: Sequence[str] = (),
        sequence_by: str | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ConfigurationError(f"unsupported file format `{format}`")
        self.path = path
        self.format = format
        self.options = dict(options or {})
        self.partition_by = tuple(partition_by)
        self.single_file = single_file
        self.keys = tuple(keys)
        self.sequence_by = sequence_by

    def supported(self, mode: str) -> None:
        refuse_unknown_mode(mode, f"`{self.path}`")
        if mode == "upsert" and self.format != delta.FORMAT:
            raise ConfigurationError(
                f"{self.format} files have no MERGE, so no `upsert`: write `append` or "
                "`overwrite` (upsert needs format `delta`)"
            )

    def sink(self, spark: SparkSession, writer: DataStreamWriter) -> DataStreamWriter:
        """Spark's file sink: each micro-batch's files become visible in one commit of the
        sink's log (``_spark_metadata``, or Delta's log), so a replay writes nothing twice."""
        out = writer.format(self.format).options(**self.options).option("path", self.path)
        return out.partitionBy(*self.partition_by) if self.partition_by else out

    def write_delta(self, df: DataFrame, mode: str) -> LoadResult:
        return delta.write(
            df,
            self.path,
            mode,
            partition_by=self.partition_by,
            keys=self.keys,
            sequence_by=self.sequence_by,
        )

    def describe(self) -> dict[str, Any]:
        return {"system": "files", "path": self.path, "format": self.format}

    def dataset(self, spark: SparkSession) -> DatasetName:
        return dataset_names.path(spark, self.path)

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        self.supported(mode)
        if self.format == delta.FORMAT:
            return self.write_delta(df, mode)
        self._writer(df, mode).save(self.path)
        return LoadResult()

    def gates(self, spark: SparkSession, mode: str) -> bool:
        # Delta commits through its log in the write itself. One file is written by one task,
        # and in a single pass that task would also read and check the whole source.
        if self.format == delta.FORMAT or self.single_file:
            return False
        return pending_files.renames_in_place(spark, self.path)

    def load_gated(self, df: DataFrame, mode: str, gate: Gate) -> LoadResult:
        self.supported(mode)
        spark = df.sparkSession
        pending = pending_files.pending_path(self.path)
        made = pending_files.missing(spark, self.path)
        try:
            self._writer(df, "overwrite").save(pending)
            gate()
        except BaseException:
            pending_files.discard(spark, pending, made=made)
            raise
        replace: pending_files.Replace = "none"
        if mode == "overwrite":
            replace = "partitions" if self.partition_by else "all"
        pending_files.publish(spark, pending, self.path, replace, len(self.partition_by))
        return LoadResult()

    def _writer(self, df: DataFrame, mode: str) -> DataFrameWriter:
        out = df.coalesce(1) if self.single_file else df
        writer = out.write.format(self.format).mode(mode).options(**self.options)
        if self.partition_by:
            # Overwrite replaces only the partitions this run writes, never the whole table.
            writer = writer.partitionBy(*self.partition_by).option(
                "partitionOverwriteMode", "dynamic"
            )
        return writer
