"""The Kafka connector without a broker: client settings, keys, Avro decoding, error mapping."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from etlc.connectors.kafka import (
    CONSUMER_DEFAULTS,
    DECODED,
    PRODUCER_DEFAULTS,
    V1_SOURCES,
    KafkaExtractor,
    KafkaLoader,
    _through_data_source_v2,
    classify_kafka,
    client_config,
    lost_offsets,
    reader_schema,
    record_key,
    spark_options,
    translate_errors,
)
from etlc.profiles import KafkaProfile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    DataLossError,
    SchemaIncompatibleError,
    TerminalError,
    TransientError,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.rules import CORRUPT_COLUMN, EVENT_TIME_COLUMN, POSITION_COLUMN
from etlc.runtime.stage_store import StageStore

SECRET = 'pa"ss\\word-LEAK'

AVRO = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "etlc.examples",
        "fields": [
            {"name": "order_id", "type": "long"},
            {
                "name": "amount",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
            },
            {
                "name": "status",
                "type": {"type": "enum", "name": "status_enum", "symbols": ["NEW", "PAID"]},
            },
            {"name": "ordered_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "coupon", "type": ["null", "string"], "default": None},
        ],
    }
)
DDL = (
    "`order_id` BIGINT, `amount` DECIMAL(12,2), `status` STRING, `ordered_at` TIMESTAMP, "
    "`coupon` STRING"
)
SCHEMA = DatasetSchema(json.loads(AVRO), DDL)
COLUMNS = ["order_id", "amount", "status", "ordered_at", "coupon"]
ROWS = [
    (1, Decimal("12.50"), "NEW", datetime(2026, 1, 1, 10, 0, tzinfo=UTC), None),
    (2, Decimal("0.99"), "PAID", datetime(2026, 1, 2, 11, 30, tzinfo=UTC), "SPRING"),
    (3, Decimal("1000.00"), "PAID", datetime(2026, 1, 3, 12, 45, tzinfo=UTC), "WELCOME"),
]
KAFKA_ROWS = "value binary, partition int, offset long"


class Hidden:
    def __init__(self, value: str = SECRET) -> None:
        self.value = value

    def reveal(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return "[hidden]"


def connection(**profile: Any) -> KafkaProfile:
    doc = {"system": "kafka", "bootstrap_servers": "b1:9092,b2:9092", **profile}
    return open_profile("events", doc, "dev.json", lambda ref: Hidden(), KafkaProfile)


SASL = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "username": "etl",
    "password": "vault://kafka/prod#password",
}


# --- client settings ------------------------------------------------------------------------


def test_a_plain_profile_gives_bootstrap_servers_and_bounded_timeouts() -> None:
    config = client_config(connection(), CONSUMER_DEFAULTS)
    assert config == {
        "bootstrap.servers": "b1:9092,b2:9092",
        "security.protocol": "PLAINTEXT",
        "request.timeout.ms": "15000",
        "default.api.timeout.ms": "15000",
    }
    assert spark_options(config)["kafka.bootstrap.servers"] == "b1:9092,b2:9092"
    producer = client_config(connection(), PRODUCER_DEFAULTS)
    assert producer["max.block.ms"] == "15000" and "default.api.timeout.ms" not in producer


def test_properties_pass_through_and_may_override_the_timeouts() -> None:
    c = connection(properties={"default.api.timeout.ms": 3000, "client.id": "etl"})
    options = spark_options(client_config(c, CONSUMER_DEFAULTS))
    assert options["kafka.default.api.timeout.ms"] == "3000"
    assert options["kafka.client.id"] == "etl"


def test_sasl_puts_the_secret_only_into_the_jaas_config() -> None:
    c = connection(**SASL)
    config = client_config(c, CONSUMER_DEFAULTS)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    # Quotes and backslashes in the password are escaped for the JAAS parser.
    assert config["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="etl" password="pa\\"ss\\\\word-LEAK";'
    )
    assert [k for k, v in config.items() if "LEAK" in v] == ["sasl.jaas.config"]
    loader = KafkaLoader(c, "orders", SCHEMA, keys=("order_id",))
    texts = [repr(c), repr(loader), repr(vars(loader)), json.dumps(loader.describe())]
    assert not any("LEAK" in t for t in texts)
    assert loader.describe() == {"system": "kafka", "connection": "events", "topic": "orders"}


def test_plain_mechanism_and_a_username_from_the_vault() -> None:
    c = connection(**{**SASL, "sasl_mechanism": "PLAIN", "username": "vault://kafka/prod#user"})
    jaas = client_config(c, {})["sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")


@pytest.mark.parametrize(
    ("profile", "fragment"),
    [
        ({"security_protocol": "SASL_SSL", "username": "u", "password": "vault://k#p"}, "sasl_"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "username": "u"}, "secret"),
        ({"username": "u", "password": "vault://k#p"}, "SASL_SSL"),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"bootstrap": "x"}, "unknown fields: bootstrap"),
        ({"properties": {"sasl.jaas.config": "x"}}, "sasl.jaas.config"),
        ({"properties": {"bootstrap.servers": "x"}}, "bootstrap.servers"),
        ({"properties": {"ssl.truststore.password": "x"}}, "credential"),
        ({"properties": {"ssl.truststore.type": "vault://k#p"}}, "credential"),
    ],
)
def test_profiles_that_cannot_work_are_refused(profile: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        connection(**profile)
    assert fragment in str(err.value) and "events" in str(err.value)
    assert "LEAK" not in str(err.value)


def test_a_profile_without_bootstrap_servers_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="bootstrap_servers"):
        c = open_profile(
            "events", {"system": "kafka"}, "dev.json", lambda ref: Hidden(), KafkaProfile
        )
        KafkaLoader(c, "orders", SCHEMA)


# --- keys and values ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orders(spark: Any) -> Any:
    return spark.createDataFrame(ROWS, DDL)


def test_the_key_is_null_the_single_key_as_text_or_json_of_several(spark: Any, orders: Any) -> None:
    got = orders.select(
        record_key(()).alias("none"),
        record_key(("order_id",)).alias("one"),
        record_key(("status",)).alias("text"),
        record_key(("order_id", "coupon")).alias("several"),
    ).collect()
    assert [tuple(r) for r in got] == [
        (None, "1", "NEW", '{"order_id":1,"coupon":null}'),
        (None, "2", "PAID", '{"order_id":2,"coupon":"SPRING"}'),
        (None, "3", "PAID", '{"order_id":3,"coupon":"WELCOME"}'),
    ]


def test_records_are_avro_values_that_decode_back(spark: Any, orders: Any) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    records = KafkaLoader(connection(), "orders", SCHEMA, keys=("order_id",)).records(orders)
    assert records.columns == ["key", "value"]
    back = records.select("key", from_avro("value", AVRO).alias("r")).select("key", "r.*")
    assert sorted(tuple(r) for r in back.collect()) == sorted(
        (str(r[0]), *r) for r in orders.collect()
    )
    assert records.where(F.col("value").isNull()).count() == 0


@pytest.mark.parametrize(
    ("keys", "mode", "fragment"),
    [
        (("order_id",), "overwrite", "append-only"),
        ((), "upsert", "needs `keys`"),
        (("nope",), "append", "nope"),
    ],
)
def test_loads_refuse_what_kafka_cannot_do(
    orders: Any, keys: tuple[str, ...], mode: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        KafkaLoader(connection(), "orders", SCHEMA, keys=keys).load(orders, mode)
    assert fragment in str(err.value)


# --- decoding -------------------------------------------------------------------------------


def extractor(**kwargs: Any) -> KafkaExtractor:
    return KafkaExtractor(connection(), SCHEMA, "orders", **kwargs)


def kafka_rows(spark: Any, orders: Any, header: bytes = b"") -> Any:
    """``orders`` as Kafka would hand them over: Avro values (after ``header``), offsets."""
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import to_avro

    value = to_avro(F.struct(*COLUMNS), AVRO)
    if header:
        value = F.concat(F.lit(bytearray(header)), value)
    return orders.select(
        value.alias("value"),
        F.lit(0).alias("partition"),
        (F.col("order_id") + 100).cast("long").alias("offset"),
    )


def test_values_decode_into_the_declared_columns(spark: Any, orders: Any) -> None:
    df = extractor().decode(kafka_rows(spark, orders))
    assert df.columns == [*COLUMNS, CORRUPT_COLUMN]
    assert df.dtypes[:4] == [
        ("order_id", "bigint"),
        ("amount", "decimal(12,2)"),
        ("status", "string"),
        ("ordered_at", "timestamp"),
    ]
    assert sorted(tuple(r) for r in df.collect()) == sorted((*r, None) for r in orders.collect())


def test_a_stream_keeps_each_record_position_and_source_time(spark: Any, orders: Any) -> None:
    from pyspark.sql import functions as F

    rows = kafka_rows(spark, orders).withColumn("timestamp", F.timestamp_seconds(F.col("offset")))
    df = extractor().decode(rows, positions=True)
    assert df.columns == [*COLUMNS, CORRUPT_COLUMN, POSITION_COLUMN, EVENT_TIME_COLUMN]
    first = df.orderBy("order_id").first()
    assert first is not None
    assert first[POSITION_COLUMN] == f"partition 0 offset {first['order_id'] + 100}"


def test_confluent_framing_is_cut_off_in_the_plan(spark: Any, orders: Any) -> None:
    framed = kafka_rows(spark, orders, header=b"\x00\x00\x00\x01\x2a")  # schema id 298
    df = extractor(confluent_framing=True).decode(framed)
    assert sorted(tuple(r) for r in df.collect()) == sorted((*r, None) for r in orders.collect())
    plan = df._jdf.queryExecution().optimizedPlan().toString()
    assert "PythonUDF" not in plan and "BatchEvalPython" not in plan
    # Unframed values in a framed topic are not records.
    unframed = extractor(confluent_framing=True).decode(kafka_rows(spark, orders))
    assert unframed.where(f"{CORRUPT_COLUMN} IS NULL").count() == 0


GARBAGE = [
    (bytearray(b"\xff" * 11), 0, 7),  # not even a valid long
    (bytearray(b"\x02"), 1, 8),  # a record cut short
    (None, 0, 9),  # a tombstone
]


def test_values_that_are_not_records_get_the_corrupt_marker(spark: Any, orders: Any) -> None:
    bad = spark.createDataFrame(GARBAGE, KAFKA_ROWS)
    df = extractor().decode(kafka_rows(spark, orders).unionByName(bad))
    marks = sorted(
        r[0] for r in df.where(f"{CORRUPT_COLUMN} IS NOT NULL").select(CORRUPT_COLUMN).collect()
    )
    assert marks == [
        "partition 0 offset 7: 11 bytes FFFFFFFFFFFFFFFFFFFFFF",
        "partition 0 offset 9: null value (tombstone)",
        "partition 1 offset 8: 1 bytes 02",
    ]
    assert df.where(f"{CORRUPT_COLUMN} IS NULL").count() == len(ROWS)


def test_framed_values_with_a_wrong_magic_byte_or_too_short_are_corrupt(
    spark: Any, orders: Any
) -> None:
    good = kafka_rows(spark, orders, header=b"\x00\x00\x00\x00\x01")
    bad = kafka_rows(spark, orders.limit(1), header=b"\x01\x00\x00\x00\x01").unionByName(
        spark.createDataFrame([(bytearray(b"\x00\x00"), 0, 1)], KAFKA_ROWS)
    )
    df = extractor(confluent_framing=True).decode(good.unionByName(bad))
    assert df.where(f"{CORRUPT_COLUMN} IS NOT NULL").count() == 2
    assert df.where(f"{CORRUPT_COLUMN} IS NULL").count() == len(ROWS)


def test_a_long_corrupt_value_is_shown_by_its_first_bytes(spark: Any) -> None:
    bad = spark.createDataFrame([(bytearray(b"\xff" * 100), 2, 5)], KAFKA_ROWS)
    mark = extractor().decode(bad).collect()[0][CORRUPT_COLUMN]
    assert mark == "partition 2 offset 5: 100 bytes " + "FF" * 64 + "..."


def test_corrupt_values_fail_the_parse_rule_of_the_stage_store(
    spark: Any, orders: Any, tmp_path: Path
) -> None:
    bad = spark.createDataFrame(GARBAGE[:1], KAFKA_ROWS)
    df = extractor().decode(kafka_rows(spark, orders).unionByName(bad))
    store = StageStore(spark, str(tmp_path), "run", 1)
    result = store.write_validated("orders", df, (("not_null:order_id", "`order_id` IS NOT NULL"),))
    assert (result.records, result.invalid) == (len(ROWS) + 1, 1)
    assert result.violations == {"parse": 1, "not_null:order_id": 1}
    sample = store.sample_invalid("orders", 5)
    assert sample[0]["_etlc_violation"] == "parse"
    assert sample[0][CORRUPT_COLUMN].startswith("partition 0 offset 7:")


def test_a_schema_ddl_that_disagrees_with_the_avro_schema_is_an_incompatibility(
    spark: Any, orders: Any
) -> None:
    ex = KafkaExtractor(
        connection(), DatasetSchema(json.loads(AVRO), DDL + ", `channel` STRING"), "orders"
    )
    with pytest.raises(SchemaIncompatibleError, match="channel"):
        ex.decode(kafka_rows(spark, orders))


def test_the_reader_schema_adds_a_defaulted_marker_field() -> None:
    fields = json.loads(reader_schema(json.loads(AVRO)))["fields"]
    assert fields[-1] == {"name": DECODED, "type": "boolean", "default": True}
    assert [f["name"] for f in fields[:-1]] == COLUMNS
    with pytest.raises(ConfigurationError, match="reserved"):
        reader_schema({"type": "record", "name": "R", "fields": fields})


def test_extractor_arguments(spark: Any) -> None:
    assert extractor().describe() == {"system": "kafka", "connection": "events", "topic": "orders"}
    # A batch read refuses a range that reads nothing, before it contacts the broker; a
    # stream may start at `latest`.
    with pytest.raises(ConfigurationError, match="latest"):
        extractor(starting_offsets="latest").extract(spark)
    with pytest.raises(ConfigurationError, match="earliest"):
        extractor(ending_offsets="earliest").extract(spark)
    pattern = KafkaExtractor(connection(), SCHEMA, topic_pattern=r"orders\..*")
    assert pattern.subscription == ("subscribePattern", r"orders\..*")
    assert pattern.describe()["topic"] == r"/orders\..*/"
    assert extractor().subscription == ("subscribe", "orders")
    with pytest.raises(ConfigurationError, match="`topic` or a `topic_pattern`"):
        KafkaExtractor(connection(), SCHEMA)
    sasl = KafkaExtractor(connection(**SASL), SCHEMA, "orders")
    assert "LEAK" not in repr(vars(sasl)) + json.dumps(sasl.describe())


# --- errors ---------------------------------------------------------------------------------

ERR = "org.apache.kafka.common.errors."


class FakeClass:
    def __init__(self, name: str, parents: tuple[str, ...] = ()) -> None:
        self.name, self.parents = name, parents

    def getName(self) -> str:  # noqa: N802 - mirrors java.lang.Class
        return self.name

    def getSuperclass(self) -> FakeClass | None:  # noqa: N802
        if not self.parents:
            return None
        return FakeClass(self.parents[0], self.parents[1:])


class FakeJava:
    def __init__(
        self, cls: str, parents: tuple[str, ...] = (), cause: Any = None, message: str = ""
    ) -> None:
        self.cls, self.parents, self.cause, self.message = cls, parents, cause, message

    def getClass(self) -> FakeClass:  # noqa: N802
        return FakeClass(self.cls, self.parents)

    def getCause(self) -> Any:  # noqa: N802
        return self.cause

    def getMessage(self) -> str:  # noqa: N802
        return self.message


class CapturedError(Exception):
    def __init__(self, origin: Any) -> None:
        super().__init__(f"sasl.jaas.config password={SECRET} in driver text")
        self.java_exception = origin


def wrapped(java: FakeJava) -> CapturedError:
    return CapturedError(FakeJava("java.util.concurrent.ExecutionException", cause=java))


@pytest.mark.parametrize(
    ("java", "expected", "fragment"),
    [
        (FakeJava(ERR + "SaslAuthenticationException"), AuthenticationError, "authentication"),
        (
            FakeJava(ERR + "TopicAuthorizationException", (ERR + "AuthorizationException",)),
            AuthenticationError,
            "authorization",
        ),
        (
            FakeJava(
                ERR + "UnknownTopicOrPartitionException",
                (ERR + "InvalidMetadataException", ERR + "RetriableException"),
            ),
            TerminalError,
            "does not exist",
        ),
        (FakeJava(ERR + "TimeoutException"), TransientError, "did not answer"),
        (FakeJava("java.net.ConnectException"), TransientError, "did not answer"),
        (
            FakeJava(ERR + "NotLeaderOrFollowerException", (ERR + "RetriableException",)),
            TransientError,
            "NotLeaderOrFollowerException",
        ),
        (
            FakeJava("org.apache.kafka.common.config.ConfigException", message="bad value"),
            ConfigurationError,
            "bad value",
        ),
    ],
)
def test_kafka_failures_are_classified_by_java_type(
    java: FakeJava, expected: type, fragment: str
) -> None:
    spark_failure = CapturedError(FakeJava("org.apache.spark.SparkException", cause=java))
    for exc in (wrapped(java), spark_failure):
        err = classify_kafka(exc, connection(**SASL), "orders")
        assert type(err) is expected
        text = str(err)
        assert fragment in text and "`events`" in text and "`orders`" in text
        assert "LEAK" not in text


def test_unknown_failures_are_left_to_the_pipeline() -> None:
    exc = wrapped(FakeJava("java.lang.IllegalStateException"))
    assert classify_kafka(exc, connection(), "orders") is None

    def fail() -> None:
        raise exc

    with pytest.raises(CapturedError):
        translate_errors(fail, connection(), "orders")

    def time_out() -> None:
        raise wrapped(FakeJava(ERR + "TimeoutException"))

    with pytest.raises(TransientError):
        translate_errors(time_out, connection(), "orders")


def test_options_spark_refuses_are_configuration_errors(spark: Any) -> None:
    reader = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", "127.0.0.1:9")
        .option("subscribe", "orders")
        .option("endingOffsets", "earliest")
    )
    with pytest.raises(ConfigurationError) as err:
        translate_errors(reader.load, connection(), "orders")
    assert "`events`" in str(err.value) and "earliest" in str(err.value)


def unreachable(**timeouts: int) -> KafkaProfile:
    """A profile pointing at a port nobody listens on, with short timeouts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = {"system": "kafka", "bootstrap_servers": f"127.0.0.1:{port}", "properties": timeouts}
    return open_profile("events", profile, "dev.json", lambda ref: Hidden(), KafkaProfile)


def test_an_unreachable_broker_fails_an_extract_as_transient(spark: Any) -> None:
    """The real Admin client and its real exceptions; no broker needed. (That the wait is
    bounded is the client settings' doing: see the bounded-timeouts test above.)"""
    c = unreachable(**{"default.api.timeout.ms": 1500, "request.timeout.ms": 1000})
    with pytest.raises(TransientError) as err:
        KafkaExtractor(c, SCHEMA, "orders").extract(spark)
    assert "`events`" in str(err.value) and "`orders`" in str(err.value)
    assert "TimeoutException" in str(err.value)


def test_an_unreachable_broker_fails_a_load_as_transient(spark: Any, orders: Any) -> None:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    before = spark.conf.get(V1_SOURCES)
    c = unreachable(**{"max.block.ms": 1500, "request.timeout.ms": 1000})
    observed = orders.observe(Observation("kafka_load"), F.count(F.lit(1)).alias("records"))
    with pytest.raises(TransientError) as err:
        KafkaLoader(c, "orders", SCHEMA).load(observed, "append")
    assert "`events`" in str(err.value) and "`orders`" in str(err.value)
    assert spark.conf.get(V1_SOURCES) == before  # the write path switch is undone


def test_writes_take_the_v2_path_so_observed_counts_arrive(spark: Any) -> None:
    """Spark's V1 Kafka writer never delivers `observe` metrics; the pipeline waits on them."""
    before = spark.conf.get(V1_SOURCES)
    assert "kafka" in before.split(",")
    with _through_data_source_v2(spark):
        assert "kafka" not in spark.conf.get(V1_SOURCES).split(",")
        assert "parquet" in spark.conf.get(V1_SOURCES).split(",")
    assert spark.conf.get(V1_SOURCES) == before


LOSS = "org.apache.spark.sql.kafka010.KafkaIllegalStateException"


class FakeDataLoss(FakeJava):
    """Spark's KAFKA_DATA_LOSS error: a condition and its message parameters."""

    def __init__(self, condition: str, params: dict[str, str]) -> None:
        super().__init__(LOSS, ("java.lang.IllegalStateException",))
        self.condition, self.params = condition, params

    def getCondition(self) -> str:  # noqa: N802 - mirrors SparkThrowable
        return self.condition

    def getMessageParameters(self) -> dict[str, str]:  # noqa: N802
        return self.params


RANGE = {"topicPartition": "orders-0", "startOffset": "1000", "endOffset": "2000", "groupId": "g"}


@pytest.mark.parametrize(
    ("condition", "params", "said"),
    [
        ("COULD_NOT_READ_OFFSET_RANGE", RANGE, "orders-0: offsets [1000, 2000) could not be read"),
        (
            "START_OFFSET_RESET",
            {"topicPartition": "orders-1", "offset": "5", "fetchedOffset": "9"},
            "orders-1: the stream was at offset 5, the earliest still in Kafka is 9",
        ),
        ("PARTITIONS_DELETED", {"partitions": "orders-2"}, "partitions orders-2 were deleted"),
        ("SOMETHING_NEW", RANGE, ""),  # a reason this Spark did not have: not guessed at
        ("COULD_NOT_READ_OFFSET_RANGE", {"renamed": "x"}, ""),
    ],
)
def test_lost_offsets_are_named_from_the_condition_and_its_parameters(
    condition: str, params: dict[str, str], said: str
) -> None:
    assert lost_offsets(FakeDataLoss(f"KAFKA_DATA_LOSS.{condition}", params)) == said
    assert lost_offsets(object()) == ""  # not a SparkThrowable


def test_a_stream_whose_offsets_are_gone_explains_its_failure(spark: Any) -> None:
    gone = FakeDataLoss("KAFKA_DATA_LOSS.COULD_NOT_READ_OFFSET_RANGE", RANGE)
    failure = CapturedError(FakeJava("org.apache.spark.SparkException", cause=gone))
    err = extractor().explain(failure)
    assert isinstance(err, DataLossError) and err.kind == "data_loss" and not err.transient
    text = str(err)
    assert "`events`" in text and "`orders`" in text and "[1000, 2000)" in text
    assert "fail_on_data_loss: false" in text and "LEAK" not in text and "`g`" not in text
    broker = extractor().explain(wrapped(FakeJava(ERR + "TimeoutException")))
    assert isinstance(broker, TransientError) and "did not answer" in str(broker)
    # A refused connection with no Kafka client exception in the chain is a sink's, not Kafka's.
    assert extractor().explain(wrapped(FakeJava("java.net.ConnectException"))) is None


def source(description: str, start: Any, end: Any, rows: int) -> SimpleNamespace:
    return SimpleNamespace(
        description=description, startOffset=start, endOffset=end, numInputRows=rows
    )


def test_offsets_a_lenient_stream_passed_over_are_reported(spark: Any) -> None:
    lenient = extractor(fail_on_data_loss=False)
    start = json.dumps({"orders": {"0": 1000, "1": 50}})
    end = json.dumps({"orders": {"0": 2000, "1": 50, "2": 7}})  # partition 2 is new
    gap = lenient.skipped(source("KafkaV2[Subscribe[orders]]", start, end, 400))
    assert gap == {
        "topic": "orders",
        "offsets": 1000,
        "records": 400,
        "skipped": 600,
        "ranges": {"orders-0": [1000, 2000]},
    }
    # Every offset read, another stream's source, or a stream that halts on loss: nothing.
    assert lenient.skipped(source("KafkaV2[Subscribe[orders]]", start, end, 1000)) is None
    assert lenient.skipped(source("KafkaV2[Subscribe[other]]", start, end, 400)) is None
    assert extractor().skipped(source("KafkaV2[Subscribe[orders]]", start, end, 400)) is None
    assert lenient.skipped(source("KafkaV2[Subscribe[orders]]", "not json", end, 0)) is None
    pattern = KafkaExtractor(
        connection(), SCHEMA, topic_pattern=r"orders\..*", fail_on_data_loss=False
    )
    described = r"KafkaV2[SubscribePattern[orders\..*]]"
    assert pattern.skipped(source(described, start, end, 0))["skipped"] == 1000  # type: ignore[index]


@pytest.mark.parametrize(
    ("starting", "first"),
    [
        ("earliest", {"0": -2, "1": -2}),
        ("latest", {"0": 50, "1": 70}),  # the run's end: the first run reads nothing
        ('{"orders": {"0": 12, "1": -1}}', {"0": 12, "1": 70}),
        ('{"orders": {"0": 12}}', {"0": 12, "1": -2}),
    ],
)
def test_a_partition_never_read_starts_at_the_starting_offsets(
    spark: Any, starting: str, first: dict[str, int]
) -> None:
    ex = extractor(starting_offsets=starting, incremental={"kind": "offsets"})
    assert ex._starts(None, {"0": 50, "1": 70}) == first
    # After the first run, a partition added since starts at its earliest offset.
    assert ex._starts({"orders": {"0": 9}}, {"0": 50, "1": 70}) == {"0": 9, "1": -2}


def test_an_incremental_read_refuses_offsets_past_the_topics_end(spark: Any) -> None:
    ex = extractor(incremental={"kind": "offsets"})
    # The end is given (as a run fixes it), so this reaches no broker.
    with pytest.raises(ConfigurationError, match="partition 1: the loads hold offset 90, past"):
        ex.extract_range(spark, {"orders": {"0": 3, "1": 90}}, {"orders": {"0": 5, "1": 80}})
    with pytest.raises(ConfigurationError, match="reads one `topic`"):
        KafkaExtractor(connection(), SCHEMA, topic_pattern="o.*", incremental={"kind": "offsets"})
    assert extractor().read_end(spark, None) is None  # not incremental: the source's own end
