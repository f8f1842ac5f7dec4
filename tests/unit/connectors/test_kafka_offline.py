"""The Kafka connector's reads and writes without a broker.

Spark's Kafka source and sink only reach a broker when a query runs, and etlc's own metadata
check (``_check_topic``) is the one call before that. So these tests replace that check, or
Spark's reader and writer, by recorders that keep what etlc hands to Spark (options, the
subscription, the records produced) and assert it exactly; the rows they return are real
Kafka-shaped DataFrames, so the decoding runs for real.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, DataFrameWriter
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

from etlc.connectors import kafka
from etlc.connectors.kafka import (
    V1_SOURCES,
    KafkaExtractor,
    KafkaLoader,
    classify_kafka,
    default_max_offsets,
    reader_schema,
)
from etlc.profiles import KafkaProfile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import ConfigurationError, TransientError
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.rules import CORRUPT_COLUMN, EVENT_TIME_COLUMN, POSITION_COLUMN
from etlc.runtime.strategies import StreamExtractor
from etlc.vault import Secret

PASSWORD = "kafka-pa$$word-CANARY"
AVRO: dict[str, Any] = {
    "type": "record",
    "name": "Reading",
    "namespace": "etlc.tests",
    "fields": [
        {"name": "sensor", "type": "string"},
        {"name": "version", "type": "long"},
        {"name": "value", "type": "double"},
    ],
}
DDL = "`sensor` STRING, `version` BIGINT, `value` DOUBLE"
SCHEMA = DatasetSchema(AVRO, DDL)
ROWS = [("a", 1, 1.5), ("b", 1, 2.5), ("a", 3, 3.5), ("a", 2, 9.0), ("c", 7, 0.25)]
SASL = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-256",
    "username": "etl",
    "password": "vault://kafka/dev#password",
}
CONFIG_EXCEPTION = "org.apache.kafka.common.config.ConfigException"


def profile(bootstrap: str = "b1:9092", **fields: Any) -> KafkaProfile:
    doc = {"system": "kafka", "bootstrap_servers": bootstrap, **fields}
    return open_profile("events", doc, "dev.json", lambda ref: Secret(PASSWORD), KafkaProfile)


def free_port() -> int:
    """A port nothing listens on once the socket is closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- recorders ------------------------------------------------------------------------------


class RecordingReader:
    """``spark.read`` / ``spark.readStream``: keeps the format and options, loads ``rows``."""

    def __init__(self, rows: DataFrame) -> None:
        self.rows = rows
        self.formats: list[str] = []
        self.given: dict[str, str] = {}
        self.loads = 0

    def format(self, name: str) -> RecordingReader:
        self.formats.append(name)
        return self

    def option(self, key: str, value: str) -> RecordingReader:
        assert key not in self.given, f"option {key} set twice"
        self.given[key] = value
        return self

    def options(self, **values: str) -> RecordingReader:
        for key, value in values.items():
            self.option(key, value)
        return self

    def load(self) -> DataFrame:
        self.loads += 1
        return self.rows


class RecordingSession:
    """A SparkSession as far as an extract uses one once the topic check has passed."""

    def __init__(self, rows: DataFrame) -> None:
        self.read = RecordingReader(rows)
        self.readStream = RecordingReader(rows)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, str], str | None]]:
    """The broker check replaced: each call's client config and topic, in order."""
    calls: list[tuple[dict[str, str], str | None]] = []

    def check(spark: Any, config: dict[str, str], topic: str | None) -> None:
        calls.append((dict(config), topic))

    monkeypatch.setattr(kafka, "_check_topic", check)
    return calls


def kafka_rows(spark: Any, rows: list[tuple[str, int, float]]) -> DataFrame:
    """``rows`` as Spark's Kafka source hands them over: Avro values with their positions."""
    df: DataFrame = spark.createDataFrame(rows, DDL)
    return df.select(
        to_avro(F.struct("sensor", "version", "value"), json.dumps(AVRO)).alias("value"),
        F.lit(0).alias("partition"),
        (F.col("version") * 10).alias("offset"),
        F.timestamp_seconds(F.col("version") * 60).alias("timestamp"),
    )


def plain_options(topic_key: str = "subscribe", topic: str = "readings") -> dict[str, str]:
    return {
        "kafka.bootstrap.servers": "b1:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "kafka.request.timeout.ms": "15000",
        "kafka.default.api.timeout.ms": "15000",
        topic_key: topic,
    }


# --- batch reads ----------------------------------------------------------------------------


def test_a_batch_read_checks_the_topic_then_reads_the_offset_range_and_decodes(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    session = RecordingSession(kafka_rows(spark, ROWS))
    ex = KafkaExtractor(profile(), SCHEMA, "readings", ending_offsets='{"readings":{"0":40}}')
    df = ex.extract(session)  # type: ignore[arg-type]
    assert session.read.formats == ["kafka"] and session.read.loads == 1
    assert session.read.given == {
        **plain_options(),
        "startingOffsets": "earliest",
        "endingOffsets": '{"readings":{"0":40}}',
    }
    assert session.readStream.loads == 0
    assert checks == [
        (
            {
                "bootstrap.servers": "b1:9092",
                "security.protocol": "PLAINTEXT",
                "request.timeout.ms": "15000",
                "default.api.timeout.ms": "15000",
            },
            "readings",
        )
    ]
    assert df.columns == ["sensor", "version", "value", CORRUPT_COLUMN]
    assert sorted(tuple(r) for r in df.collect()) == sorted((*r, None) for r in ROWS)


def test_a_batch_read_of_a_pattern_subscribes_to_it_and_checks_no_single_topic(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    session = RecordingSession(kafka_rows(spark, ROWS[:1]))
    ex = KafkaExtractor(profile(), SCHEMA, topic_pattern=r"readings\..*", starting_offsets="1")
    rows = ex.extract(session).collect()  # type: ignore[arg-type]
    assert session.read.given == {
        **plain_options("subscribePattern", r"readings\..*"),
        "startingOffsets": "1",
        "endingOffsets": "latest",
    }
    assert [topic for _, topic in checks] == [None]
    assert [tuple(r) for r in rows] == [("a", 1, 1.5, None)]


def test_a_batch_read_with_sasl_reveals_the_password_only_in_the_jaas_option(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    session = RecordingSession(kafka_rows(spark, ROWS[:1]))
    KafkaExtractor(profile(**SASL), SCHEMA, "readings").extract(session)  # type: ignore[arg-type]
    options = session.read.given
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-256"
    assert options["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="etl" password="{PASSWORD}";'
    )
    assert [k for k, v in options.items() if PASSWORD in v] == ["kafka.sasl.jaas.config"]
    # The broker check authenticates with the same client settings.
    assert checks[0][0]["sasl.jaas.config"] == options["kafka.sasl.jaas.config"]


def test_spark_builds_a_batch_kafka_read_without_contacting_the_broker(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    """Nothing listens on the port: building the plan must not need the broker."""
    c = profile(f"127.0.0.1:{free_port()}")
    df = KafkaExtractor(c, SCHEMA, "readings").extract(spark)
    assert df.columns == ["sensor", "version", "value", CORRUPT_COLUMN]
    assert not df.isStreaming
    assert [topic for _, topic in checks] == ["readings"]


# --- streams --------------------------------------------------------------------------------


def test_a_stream_subscribes_from_the_starting_offsets_and_fails_on_data_loss_by_default(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    session = RecordingSession(kafka_rows(spark, ROWS))
    df = KafkaExtractor(profile(), SCHEMA, "readings", starting_offsets="latest").stream(
        session  # type: ignore[arg-type]
    )
    assert session.readStream.formats == ["kafka"] and session.read.loads == 0
    assert session.readStream.given == {
        **plain_options(),
        "startingOffsets": "latest",
        "failOnDataLoss": "true",
    }
    assert [topic for _, topic in checks] == ["readings"]
    assert df.columns == [
        "sensor",
        "version",
        "value",
        CORRUPT_COLUMN,
        POSITION_COLUMN,
        EVENT_TIME_COLUMN,
    ]
    # PySpark hands timestamps back as naive datetimes in the local time zone.
    assert sorted(tuple(r) for r in df.collect()) == sorted(
        (s, v, x, None, f"partition 0 offset {v * 10}", datetime.fromtimestamp(v * 60))
        for s, v, x in ROWS
    )


def test_a_stream_may_tolerate_data_loss_and_bound_each_batch(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    session = RecordingSession(kafka_rows(spark, ROWS[:1]))
    ex = KafkaExtractor(
        profile(**SASL),
        SCHEMA,
        topic_pattern="readings-.*",
        fail_on_data_loss=False,
        max_offsets_per_trigger=500,
    )
    ex.stream(session)  # type: ignore[arg-type]
    options = session.readStream.given
    assert {k: v for k, v in options.items() if not k.startswith("kafka.")} == {
        "subscribePattern": "readings-.*",
        "startingOffsets": "earliest",
        "failOnDataLoss": "false",
        "maxOffsetsPerTrigger": "500",
    }
    assert [k for k, v in options.items() if PASSWORD in v] == ["kafka.sasl.jaas.config"]
    assert [topic for _, topic in checks] == [None]


def test_a_stream_with_no_bound_gets_one_from_its_trigger_and_cores(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    assert [default_max_offsets(t, c) for t, c in ((1_000, 2), (0, 2), (10_000, 8))] == [
        300_000,
        300_000,  # no trigger interval: a second's worth
        12_000_000,
    ]
    session = RecordingSession(kafka_rows(spark, ROWS[:1]))
    ex = KafkaExtractor(profile(**SASL), SCHEMA, "readings")
    assert ex.pace(2_000, 2) == {"max_offsets_per_trigger": 600_000, "max_offsets_derived": True}
    ex.stream(session)  # type: ignore[arg-type]
    assert session.readStream.given["maxOffsetsPerTrigger"] == "600000"
    assert ex.pace(2_000, 0) == {} and ex.paced is None  # dynamic allocation, no maximum
    own = KafkaExtractor(profile(**SASL), SCHEMA, "readings", max_offsets_per_trigger=500)
    assert own.pace(2_000, 2) == {"max_offsets_per_trigger": 500}
    assert StreamExtractor.pace(own, 2_000, 2) == {}  # a source that bounds nothing says so


def test_spark_builds_a_kafka_stream_without_contacting_the_broker(
    spark: Any, checks: list[tuple[dict[str, str], str | None]]
) -> None:
    c = profile(f"127.0.0.1:{free_port()}")
    ex = KafkaExtractor(c, SCHEMA, "readings", fail_on_data_loss=False, max_offsets_per_trigger=9)
    df = ex.stream(spark)
    assert df.isStreaming
    assert df.columns == [
        "sensor",
        "version",
        "value",
        CORRUPT_COLUMN,
        POSITION_COLUMN,
        EVENT_TIME_COLUMN,
    ]
    assert len(checks) == 1


# --- the broker check -----------------------------------------------------------------------


def test_an_unreachable_broker_fails_a_pattern_read_before_spark_is_asked(spark: Any) -> None:
    """A pattern may match no topic yet, so the check lists topics: that, too, is bounded."""
    timeouts = {"default.api.timeout.ms": 1500, "request.timeout.ms": 1000}
    c = profile(f"127.0.0.1:{free_port()}", properties=timeouts)
    with pytest.raises(TransientError) as err:
        KafkaExtractor(c, SCHEMA, topic_pattern="readings-.*").stream(spark)
    text = str(err.value)
    assert "`events`" in text and "`/readings-.*/`" in text and "TimeoutException" in text


class MissingClass:
    """What Py4J gives for a name the JVM has no class for: a package, at any depth."""

    def __getattr__(self, name: str) -> MissingClass:
        return self


class NoKafkaJars:
    """A session whose driver classpath has no kafka-clients jar."""

    def __init__(self, rows: DataFrame) -> None:
        self.sparkContext = type("Context", (), {"_jvm": MissingClass()})()
        self.read = RecordingReader(rows)
        self.readStream = RecordingReader(rows)


def test_without_the_kafka_client_on_the_classpath_the_read_is_refused_with_a_hint(
    spark: Any,
) -> None:
    session = NoKafkaJars(kafka_rows(spark, ROWS[:1]))
    with pytest.raises(ConfigurationError) as err:
        KafkaExtractor(profile(), SCHEMA, "readings").extract(session)  # type: ignore[arg-type]
    assert "kafka-clients jar" in str(err.value) and ".submit.sh" in str(err.value)
    assert session.read.loads == 0 and session.read.given == {}


# --- writes ---------------------------------------------------------------------------------


class Produced:
    """What reached Spark's Kafka sink: options, and the records collected at ``save``."""

    def __init__(self) -> None:
        self.options: dict[str, str] = {}
        self.records: list[tuple[str | None, dict[str, Any]]] = []
        self.v1_sources: list[str] = []


@pytest.fixture
def produced(monkeypatch: pytest.MonkeyPatch) -> Produced:
    """Spark's writer with ``save`` replaced: the records are collected instead of sent."""
    out = Produced()
    option, options = DataFrameWriter.option, DataFrameWriter.options

    def record_option(self: DataFrameWriter, key: str, value: Any) -> DataFrameWriter:
        out.options[key] = str(value)
        return option(self, key, value)

    def record_options(self: DataFrameWriter, **values: Any) -> DataFrameWriter:
        out.options.update({k: str(v) for k, v in values.items()})
        return options(self, **values)

    def save(self: DataFrameWriter, path: str | None = None, **kwargs: Any) -> None:
        df: DataFrame = self._df
        out.v1_sources = (df.sparkSession.conf.get(V1_SOURCES) or "").split(",")
        decoded = df.select("key", from_avro("value", json.dumps(AVRO)).alias("r"))
        out.records = [(r["key"], r["r"].asDict()) for r in decoded.collect()]

    monkeypatch.setattr(DataFrameWriter, "option", record_option)
    monkeypatch.setattr(DataFrameWriter, "options", record_options)
    monkeypatch.setattr(DataFrameWriter, "save", save)
    return out


def test_an_upsert_produces_the_latest_row_per_key_and_counts_the_superseded(
    spark: Any, produced: Produced
) -> None:
    df = spark.createDataFrame(ROWS, DDL)
    loader = KafkaLoader(profile(), "latest", SCHEMA, keys=("sensor",), sequence_by="version")
    result = loader.load(df, "upsert")
    assert sorted(produced.records, key=lambda r: str(r[0])) == [
        ("a", {"sensor": "a", "version": 3, "value": 3.5}),
        ("b", {"sensor": "b", "version": 1, "value": 2.5}),
        ("c", {"sensor": "c", "version": 7, "value": 0.25}),
    ]
    assert result.superseded == 2  # ("a", 1) and ("a", 2)
    assert produced.options == {
        "kafka.bootstrap.servers": "b1:9092",
        "kafka.security.protocol": "PLAINTEXT",
        "kafka.request.timeout.ms": "15000",
        "kafka.max.block.ms": "15000",
        "topic": "latest",
    }
    # Written through the V2 path (observed counts arrive), and switched back afterwards.
    assert "kafka" not in produced.v1_sources
    assert "kafka" in spark.conf.get(V1_SOURCES).split(",")


def test_an_append_produces_every_row_keyed_and_supersedes_nothing(
    spark: Any, produced: Produced
) -> None:
    df = spark.createDataFrame(ROWS, DDL)
    result = KafkaLoader(profile(**SASL), "all", SCHEMA, keys=("sensor",)).load(df, "append")
    assert sorted(produced.records, key=lambda r: (str(r[0]), r[1]["version"])) == [
        (s, {"sensor": s, "version": v, "value": x}) for s, v, x in sorted(ROWS)
    ]
    assert result.superseded == 0 and result.dead_lettered == 0
    assert [k for k, v in produced.options.items() if PASSWORD in v] == ["kafka.sasl.jaas.config"]


# --- error classification -------------------------------------------------------------------


class JavaClass:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def getName(self) -> str:  # noqa: N802 - mirrors java.lang.Class
        return self.names[0]

    def getSuperclass(self) -> JavaClass | None:  # noqa: N802
        return JavaClass(self.names[1:]) if len(self.names) > 1 else None


class JavaError:
    """A Java exception through Py4J; ``broken`` names the calls that fail as on a dead gateway."""

    def __init__(
        self, *names: str, cause: Any = None, message: str = "", broken: tuple[str, ...] = ()
    ) -> None:
        self.names, self.cause, self.message, self.broken = names, cause, message, broken

    def _call(self, name: str) -> None:
        if name in self.broken:
            raise ConnectionError("py4j: Answer from Java side is empty")

    def getClass(self) -> JavaClass:  # noqa: N802
        self._call("getClass")
        return JavaClass(self.names)

    def getCause(self) -> Any:  # noqa: N802
        self._call("getCause")
        return self.cause

    def getMessage(self) -> str:  # noqa: N802
        self._call("getMessage")
        return self.message


class CapturedError(Exception):
    def __init__(self, origin: JavaError) -> None:
        super().__init__(f"driver text with password={PASSWORD}")
        self.java_exception = origin


def spark_failure(cause: JavaError) -> CapturedError:
    return CapturedError(JavaError("org.apache.spark.SparkException", cause=cause))


def test_a_dead_gateway_leaves_the_failure_to_the_pipeline() -> None:
    exc = spark_failure(JavaError("java.lang.Object", broken=("getClass",)))
    assert classify_kafka(exc, profile(), "readings") is None
    # What was read before the gateway died still counts.
    exc = CapturedError(
        JavaError(
            "org.apache.kafka.common.errors.TimeoutException",
            cause=JavaError("java.lang.Object", broken=("getClass",)),
        )
    )
    err = classify_kafka(exc, profile(), "readings")
    assert type(err) is TransientError and "(TimeoutException)" in str(err)


def test_a_refused_configuration_without_a_readable_message_names_no_detail() -> None:
    exc = spark_failure(JavaError(CONFIG_EXCEPTION, message="x", broken=("getMessage",)))
    err = classify_kafka(exc, profile(), "readings")
    assert type(err) is ConfigurationError
    assert str(err) == (
        "kafka connection `events`, topic `readings`: the client configuration was refused"
    )


def test_a_subclass_of_config_exception_is_a_configuration_error_without_its_text() -> None:
    """Only ConfigException's own message is quoted; a subclass may carry other values."""
    sub = JavaError("org.example.StrictConfigException", CONFIG_EXCEPTION, message="secret=1")
    err = classify_kafka(spark_failure(sub), profile(), "readings")
    assert type(err) is ConfigurationError
    assert str(err).endswith("the client configuration was refused")
    assert "secret=1" not in str(err) and PASSWORD not in str(err)


def test_a_configured_message_is_quoted_once_found_along_the_cause_chain() -> None:
    cause = JavaError(CONFIG_EXCEPTION, message="Invalid value x for acks")
    err = classify_kafka(spark_failure(cause), profile(), "readings")
    assert str(err).endswith("the client configuration was refused: Invalid value x for acks")


def test_a_schema_that_is_not_a_record_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be an Avro record"):
        reader_schema({"type": "enum", "name": "E", "symbols": ["A"]})
