"""Files on any Hadoop filesystem path (local, hdfs://, s3a://): CSV, JSON, Parquet, Avro, and
Delta Lake tables (the one format here with upsert)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql.streaming.readwriter import DataStreamWriter
from pyspark.sql.types import StructType

from etlc.connectors import delta, pending_files
from etlc.connectors.conform import column_differences, conform
from etlc.runtime import dataset_names
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.errors import ConfigurationError, SchemaIncompatibleError
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.rules import CORRUPT_COLUMN
from etlc.runtime.strategies import (
    Extractor,
    Gate,
    GatedLoader,
    Loader,
    LoadResult,
    StreamSink,
    refuse_unknown_mode,
)

TEXT_FORMATS = ("csv", "json")
FORMATS = ("csv", "json", "parquet", "avro", delta.FORMAT)


# Spark's message when a CSV file's header is not the schema's columns in the schema's order.
_CSV_HEADER = re.compile(
    r"(?:CSV header does not conform to the schema\.|Number of column in CSV header is not "
    r"equal to number of fields in the schema:)(?P<detail>.*?)CSV file: (?P<file>\S+)",
    re.S,
)


class FilesExtractor(Extractor):
    def __init__(
        self,
        path: str,
        format: str,
        schema: DatasetSchema,
        options: Mapping[str, str] | None = None,
    ) -> None:
        if format not in FORMATS:
            raise ConfigurationError(f"unsupported file format `{format}`")
        self.path = path
        self.format = format
        self.schema = schema.struct()
        self.options = dict(options or {})

    def describe(self) -> dict[str, Any]:
        return {"system": "files", "path": self.path, "format": self.format}

    def dataset(self, spark: SparkSession) -> DatasetName:
        return dataset_names.path(spark, self.path)

    def extract(self, spark: SparkSession) -> DataFrame:
        if self.format in TEXT_FORMATS:
            return self._read_text(spark)
        return self._read_self_describing(spark)

    def _read_text(self, spark: SparkSession) -> DataFrame:
        schema = StructType([*self.schema.fields]).add(CORRUPT_COLUMN, "string")
        reader = spark.read.format(self.format).options(**self.options)
        if self.format == "csv" and self.options.get("header") == "true":
            # Spark checks every file's header against the schema, names and order, as it
            # reads it: no extra pass, and a file whose columns are reordered is refused
            # instead of read by position into the wrong columns.
            reader = reader.option("enforceSchema", "false")
        return (
            reader.option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .schema(schema)
            .load(self.path)
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

    def _read_self_describing(self, spark: SparkSession) -> DataFrame:
        df = spark.read.format(self.format).options(**self.options).load(self.path)
        return conform(self.path, df, self.schema)


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
