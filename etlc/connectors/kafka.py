"""Kafka topics, in batch and as streams: Avro record values in, Avro record values out.

Reading takes a topic from its starting to its ending offsets with Spark's Kafka source and
decodes each value with ``from_avro`` under the step's schema, all inside the plan. A value the
schema does not admit never crashes the job: ``from_avro`` runs in PERMISSIVE mode with a reader
schema that adds one field, defaulted to ``true`` by Avro's schema resolution, so that field is
true exactly for the records that decoded; for the others the extract emits
:data:`CORRUPT_COLUMN` (partition, offset, length and the first bytes in hex) and the stage
store's ``parse`` rule halts the run with counts and a sample. A null value (a tombstone) is not
a record either and fails the same rule. Avro binary carries no length, so trailing bytes after
a complete record go unnoticed (as in every Avro decoder).

With ``confluent_framing`` the Confluent wire-format header (magic byte 0 and a 4-byte schema
id) is checked and cut off in the plan (``substring`` on the binary value); the schema id is
not looked up: values are decoded with the step's schema.

Before Spark plans a read, one metadata call on the driver (the Kafka Admin client, bounded by
``default.api.timeout.ms``) checks that the broker answers, the credentials are accepted and the
topic exists, so a down broker fails in bounded time with a :class:`TransientError` naming the
connection and topic, instead of Spark's own retries of its offset lookups.

An ``incremental`` batch extract reads each run the records after the offsets its loads
committed (see :mod:`etlc.runtime.incremental`): before it reads, the Admin client fixes the
topic's latest offsets (the last stable ones under ``isolation.level`` read_committed) as the
run's end, and the read assigns exactly those partitions from the committed offsets to that end,
so every read in one attempt gives the same records and the loads commit exactly that end. The
first run starts at ``starting_offsets``; a partition added after it, at its earliest offset.

Writing produces ``to_avro(struct(all columns))`` as the value. The key (see :func:`record_key`):
no ``keys``, a null key; one key column, its value cast to a string (``42``, ``PAID``); several,
``to_json`` of a struct of the key columns in the declared order, nulls kept
(``{"order_id":42,"line":1}``). Both are UTF-8 text that any consumer or compaction can compare.
``upsert`` needs keys and produces one record per key (the last in input order), so a compacted
topic keeps exactly the latest row per key; ``append`` produces every row, keyed when keys are
given. ``overwrite`` is refused: a topic is an append-only log.

Connection profile (``connections.<name>`` in the environment file)::

    {"system": "kafka", "bootstrap_servers": "broker1:9092,broker2:9092",
     "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
     "username": "etl", "password": "vault://kafka/prod#password",
     "properties": {"ssl.endpoint.identification.algorithm": "https"}}

``properties`` become Kafka client settings (Spark's ``kafka.<name>`` options) and may override
the timeouts below; they may not carry credentials or the settings the profile's own fields own.
The password is revealed only while building ``sasl.jaas.config``, in the options of the Spark
call (and the Admin client) that need it; Spark redacts ``jaas`` options in plans and logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from py4j.java_gateway import JavaClass
from pyspark.errors import IllegalArgumentException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from etlc.connectors.conform import conform
from etlc.connectors.dedupe import latest_per_key, none_superseded
from etlc.connectors.failures import translated
from etlc.profiles import KafkaProfile
from etlc.runtime import dataset_names
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.errors import (
    MAX_CAUSES,
    TRANSIENT_JAVA,
    AuthenticationError,
    ConfigurationError,
    DataLossError,
    EtlcError,
    TerminalError,
    TransientError,
    error_condition,
    java_cause,
    java_chain,
    summary,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.positions import compact_json
from etlc.runtime.rules import CORRUPT_COLUMN, EVENT_TIME_COLUMN, POSITION_COLUMN
from etlc.runtime.strategies import (
    Extractor,
    Incremental,
    IncrementalExtractor,
    Loader,
    LoadResult,
    Position,
    StreamExtractor,
    refuse_unknown_mode,
)

SYSTEM = "kafka"
TIMEOUT_MS = 15_000  # request and API-call timeouts: a down broker fails in bounded time
SASL_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
CONSUMER_DEFAULTS = {
    "request.timeout.ms": str(TIMEOUT_MS),
    "default.api.timeout.ms": str(TIMEOUT_MS),
}
PRODUCER_DEFAULTS = {
    "request.timeout.ms": str(TIMEOUT_MS),
    "max.block.ms": str(TIMEOUT_MS),  # waiting for metadata (broker down, topic missing)
}
CONFLUENT_HEADER = 5  # magic byte 0 + 4-byte schema id
DECODED = "_etlc_decoded"  # the reader-schema field that is true for every decoded record
SAMPLE_BYTES = 64  # of a corrupt value, shown in hex in the validation sample
V1_SOURCES = "spark.sql.sources.useV1SourceList"

_RECORD = "_etlc_record"

_KAFKA_CLIENT = "org.apache.kafka."
_ERRORS = "org.apache.kafka.common.errors."
AUTH_JAVA = frozenset(
    {
        _ERRORS + "AuthenticationException",
        _ERRORS + "SaslAuthenticationException",
        _ERRORS + "SslAuthenticationException",
        _ERRORS + "IllegalSaslStateException",
        _ERRORS + "AuthorizationException",
        _ERRORS + "TopicAuthorizationException",
        _ERRORS + "GroupAuthorizationException",
        _ERRORS + "ClusterAuthorizationException",
    }
)
MISSING_TOPIC_JAVA = frozenset(
    {_ERRORS + "UnknownTopicOrPartitionException", _ERRORS + "InvalidTopicException"}
)
CONFIG_JAVA = frozenset({"org.apache.kafka.common.config.ConfigException"})
# Kafka marks every error worth retrying with RetriableException (timeouts, disconnects,
# leader elections); the base classes are seen because superclasses are walked too.
KAFKA_TRANSIENT_JAVA = TRANSIENT_JAVA | {
    _ERRORS + "RetriableException",
    _ERRORS + "TimeoutException",
    _ERRORS + "NetworkException",
    _ERRORS + "DisconnectException",
    _ERRORS + "InterruptException",
}

# What Spark's Kafka source throws when offsets it must read are gone (KAFKA_DATA_LOSS.*).
DATA_LOSS_JAVA = "org.apache.spark.sql.kafka010.KafkaIllegalStateException"
# Each KAFKA_DATA_LOSS reason, from its message parameters (the consumer group is left out).
_LOSS_REASONS = {
    "COULD_NOT_READ_OFFSET_RANGE": "{topicPartition}: offsets [{startOffset}, {endOffset}) "
    "could not be read",
    "START_OFFSET_RESET": "{topicPartition}: the stream was at offset {offset}, the earliest "
    "still in Kafka is {fetchedOffset}",
    "PARTITION_OFFSET_CHANGED": "{topicPartition}: offset changed from {prevOffset} to "
    "{newOffset} (was the topic deleted and re-created?)",
    "ADDED_PARTITION_DOES_NOT_START_FROM_OFFSET_ZERO": "{topicPartition}, a new partition, "
    "starts at offset {startOffset}, not 0",
    "INITIAL_OFFSET_NOT_FOUND_FOR_PARTITIONS": "no initial offsets for {partitions}",
    "PARTITIONS_DELETED": "partitions {partitions} were deleted",
    "PARTITIONS_DELETED_AND_GROUP_ID_CONFIG_PRESENT": "partitions {partitions} were deleted",
}

T = TypeVar("T")


# --- the client configuration -----------------------------------------------------------


def client_config(c: KafkaProfile, defaults: dict[str, str]) -> dict[str, str]:
    """Kafka client settings for the profile (without Spark's ``kafka.`` prefix).

    Holds the revealed password inside ``sasl.jaas.config`` when the profile uses SASL: build
    it only for the call that needs it and never log it.
    """
    config = {
        **defaults,
        **c.properties,
        "bootstrap.servers": c.bootstrap_servers,
        "security.protocol": c.security_protocol,
    }
    if c.sasl:
        # The profile refused SASL without a mechanism, a username or a password.
        assert c.username is not None and c.password is not None
        username = c.username if isinstance(c.username, str) else c.username.reveal()
        config["sasl.mechanism"] = c.sasl_mechanism
        config["sasl.jaas.config"] = (
            f"{SASL_LOGIN_MODULES[c.sasl_mechanism]} required "
            f"username={_jaas_quote(username)} "
            f"password={_jaas_quote(c.password.reveal())};"
        )
    return config


def spark_options(config: dict[str, str]) -> dict[str, str]:
    return {f"kafka.{k}": v for k, v in config.items()}


def _jaas_quote(value: str) -> str:
    """A JAAS option value: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- errors -------------------------------------------------------------------------------


def _java_causes(exc: BaseException) -> Iterator[tuple[str, ...]]:
    """For each Java exception along the cause chain of ``exc``: its class name, then the
    names of its superclasses (so a subclass of a known type is recognised)."""
    for origin in java_chain(exc):
        try:
            names: list[str] = []
            cls = origin.getClass()
            while cls is not None and len(names) < MAX_CAUSES:
                names.append(str(cls.getName()))
                cls = cls.getSuperclass() if hasattr(cls, "getSuperclass") else None
        except Exception:  # a dead gateway cannot tell us more
            return
        yield tuple(names)


def _java_message(exc: BaseException, names: frozenset[str]) -> str:
    for origin in java_chain(exc):
        try:
            if str(origin.getClass().getName()) in names:
                return str(origin.getMessage() or "")
        except Exception:
            return ""
    return ""


def classify_kafka(exc: BaseException, connection: KafkaProfile, topic: str) -> Exception | None:
    """The framework error for a Kafka failure, judged by Java exception types; ``None`` when
    the failure is not Kafka's to explain. Messages name the connection and topic only."""
    causes = list(_java_causes(exc))
    types = {name for cause in causes for name in cause}
    where = f"kafka connection `{connection.name}`, topic `{topic}`"
    if types & AUTH_JAVA:
        return AuthenticationError(
            f"{where}: authentication or authorization failed; check the username, the vault "
            "entry of the password, the SASL mechanism and the topic's ACLs"
        )
    if types & MISSING_TOPIC_JAVA:
        return TerminalError(
            f"{where}: the topic does not exist (or its name is not valid); "
            "create it or fix the name"
        )
    if types & CONFIG_JAVA:
        detail = _java_message(exc, CONFIG_JAVA)
        return ConfigurationError(
            f"{where}: the client configuration was refused" + (f": {detail}" if detail else "")
        )
    if types & KAFKA_TRANSIENT_JAVA:
        seen = [c[0].rsplit(".", 1)[-1] for c in causes if KAFKA_TRANSIENT_JAVA.intersection(c)]
        return TransientError(
            f"{where}: the broker did not answer in time or the connection failed "
            f"({', '.join(dict.fromkeys(seen))}); is it up and reachable?"
        )
    return None


def lost_offsets(error: Any) -> str:
    """Which offsets a KAFKA_DATA_LOSS error says are gone, from its condition and message
    parameters (never its text, which names the consumer group); "" when it does not say."""
    condition = error_condition(error)
    try:
        params = {str(k): str(v) for k, v in dict(error.getMessageParameters() or {}).items()}
    except Exception:  # an older Spark, or a dead gateway
        return ""
    template = _LOSS_REASONS.get(condition.rsplit(".", 1)[-1])
    try:
        return template.format(**params) if template else ""
    except KeyError:  # a parameter renamed in another Spark version
        return ""


def _partition_offsets(offsets: Any) -> dict[str, dict[str, int]]:
    """Spark's Kafka offsets, ``{"topic": {"0": 1000}}`` (JSON text in a progress report)."""
    try:
        parsed = json.loads(offsets) if isinstance(offsets, str) else offsets
        return {
            str(topic): {str(p): int(o) for p, o in dict(partitions).items()}
            for topic, partitions in dict(parsed or {}).items()
        }
    except (TypeError, ValueError):
        return {}


def translate_errors(call: Callable[[], T], connection: KafkaProfile, topic: str) -> T:
    """Run a Kafka call; what Kafka's exception types explain becomes a typed error."""

    def classify(exc: Exception) -> Exception | None:
        if isinstance(exc, IllegalArgumentException):  # Spark's Kafka source refused an option
            return ConfigurationError(
                f"kafka connection `{connection.name}`, topic `{topic}`: {summary(exc)}"
            )
        return classify_kafka(exc, connection, topic)

    return translated(call, classify)


# --- reading ------------------------------------------------------------------------------


def reader_schema(schema: Mapping[str, Any]) -> str:
    """The writer schema plus a boolean field defaulted to true (see the module's docstring)."""
    if schema.get("type") != "record":
        raise ConfigurationError("a kafka extract's schema must be an Avro record")
    if any(f.get("name") == DECODED for f in schema.get("fields", [])):
        raise ConfigurationError(f"`{DECODED}` is a reserved field name")
    fields = [*schema.get("fields", []), {"name": DECODED, "type": "boolean", "default": True}]
    return json.dumps({**schema, "fields": fields})


# What one core kept up with in etlc's streaming benchmark (bench/results/latest.md: Kafka ->
# one-minute windows -> PostgreSQL kept up with 150,000 events/s on 2 cores).
EVENTS_PER_CORE_SECOND = 75_000


def default_max_offsets(trigger_ms: int, cores: int) -> int:
    """A stream's intake bound per micro-batch when the definition sets none: twice what its
    cores kept up with over one trigger interval (a second when it has none). Steady intake
    stays under it; a backlog (a restart after downtime) drains in batches of bounded size,
    each done in about a trigger interval, instead of one batch holding all of it."""
    seconds = max(trigger_ms, 1_000) / 1_000
    return int(2 * EVENTS_PER_CORE_SECOND * max(cores, 1) * seconds)


class KafkaExtractor(Extractor, StreamExtractor, IncrementalExtractor):
    def __init__(
        self,
        connection: KafkaProfile,
        schema: DatasetSchema,
        topic: str | None = None,
        *,
        topic_pattern: str | None = None,
        starting_offsets: str = "earliest",
        ending_offsets: str = "latest",
        confluent_framing: bool = False,
        max_offsets_per_trigger: int | None = None,
        fail_on_data_loss: bool = True,
        incremental: Mapping[str, Any] | None = None,
    ) -> None:
        self.connection = connection
        self.schema: StructType = schema.struct()
        self.avro_schema = schema.avro_json
        self.reader_schema = reader_schema(schema.avro)
        self.field_names = [str(f["name"]) for f in schema.avro["fields"]]
        if (topic is None) == (topic_pattern is None):
            raise ConfigurationError("a kafka extract reads a `topic` or a `topic_pattern`")
        # What messages name: the topic, or the pattern of topics.
        self.topic = topic if topic is not None else f"/{topic_pattern}/"
        self.subscription = (
            ("subscribe", topic) if topic is not None else ("subscribePattern", str(topic_pattern))
        )
        self.starting_offsets = starting_offsets
        self.ending_offsets = ending_offsets
        self.confluent_framing = confluent_framing
        self.max_offsets_per_trigger = max_offsets_per_trigger
        self.fail_on_data_loss = fail_on_data_loss
        self.paced: int | None = None  # the bound pace() derived, when none was set
        self.incremental = None if incremental is None else Incremental(**incremental)
        if self.incremental is not None and topic is None:
            raise ConfigurationError("an incremental kafka extract reads one `topic`")

    def describe(self) -> dict[str, Any]:
        return {"system": SYSTEM, "connection": self.connection.name, "topic": self.topic}

    def dataset(self, spark: SparkSession) -> DatasetName | None:
        if self.subscription[0] != "subscribe":
            return None  # a pattern is no one topic: which it matches changes as topics come
        return dataset_names.topic(self.connection.bootstrap_servers, self.topic)

    def extract(self, spark: SparkSession) -> DataFrame:
        if self.starting_offsets.strip().lower() == "latest":
            raise ConfigurationError(
                f"topic `{self.topic}`: a batch read cannot start at `latest` (it reads nothing)"
            )
        if self.ending_offsets.strip().lower() == "earliest":
            raise ConfigurationError(f"topic `{self.topic}`: a batch read cannot end at `earliest`")
        config = self._checked_config(spark)
        reader = (
            spark.read.format("kafka")
            .options(**spark_options(config))
            .option(*self.subscription)
            .option("startingOffsets", self.starting_offsets)
            .option("endingOffsets", self.ending_offsets)
        )
        raw = translate_errors(reader.load, self.connection, self.topic)
        return self.decode(raw)

    def read_end(self, spark: SparkSession, after: Position | None) -> Position | None:
        """The topic's latest offsets, ``{"topic": {"partition": offset}}``, as this run's end
        (None: not incremental)."""
        if self.incremental is None:
            return None
        # Its describe of the topic checks what _checked_config would: broker, credentials,
        # topic. One Admin client, not two.
        config = client_config(self.connection, CONSUMER_DEFAULTS)
        ends = translate_errors(
            lambda: _latest_offsets(spark, config, self.topic), self.connection, self.topic
        )
        return {self.topic: ends}

    def extract_range(
        self, spark: SparkSession, after: Position | None, upto: Position | None
    ) -> DataFrame:
        """The records of the partitions in ``upto`` (the topic's latest offsets when None),
        each from its offset in ``after`` to its offset in ``upto``; without ``after``, from
        ``starting_offsets``."""
        end = self.read_end(spark, after) if upto is None else upto
        ends: dict[str, int] = dict(dict(end or {}).get(self.topic, {}))
        starts = self._starts(after, ends)
        for partition, start in sorted(starts.items()):
            if start > ends[partition]:
                raise ConfigurationError(
                    f"kafka connection `{self.connection.name}`, topic `{self.topic}` partition "
                    f"{partition}: the loads hold offset {start}, past the topic's end "
                    f"{ends[partition]} (was the topic recreated?); set the position with "
                    "`etlc state reset`"
                )
        config = client_config(self.connection, CONSUMER_DEFAULTS)
        reader = (
            spark.read.format("kafka")
            .options(**spark_options(config))
            .option("assign", json.dumps({self.topic: sorted(int(p) for p in ends)}))
            .option("startingOffsets", compact_json({self.topic: starts}))
            .option("endingOffsets", compact_json({self.topic: ends}))
        )
        raw = translate_errors(reader.load, self.connection, self.topic)
        return self.decode(raw)

    def _starts(self, after: Position | None, ends: Mapping[str, int]) -> dict[str, int]:
        """Where each partition's read starts: its offset in ``after``. The first run starts
        at ``starting_offsets``; a partition added since then at its earliest offset, as a
        stream reads a new partition."""
        held: dict[str, int] = dict(dict(after or {}).get(self.topic, {}))
        return {
            p: held[p] if p in held else (self._first(p, end) if after is None else -2)
            for p, end in ends.items()
        }

    def _first(self, partition: str, end: int) -> int:
        """Where a partition the loads have not read starts: ``starting_offsets`` (earliest
        unless it says otherwise; latest is the run's end)."""
        given = self.starting_offsets.strip()
        if given.lower() == "latest":
            return end
        if not given.startswith("{"):
            return -2  # earliest
        at = int(dict(json.loads(given).get(self.topic, {})).get(partition, -2))
        return end if at == -1 else at

    def pace(self, trigger_ms: int, cores: int) -> dict[str, Any]:
        if self.max_offsets_per_trigger is not None:
            return {"max_offsets_per_trigger": self.max_offsets_per_trigger}
        if cores <= 0:  # no number of cores to size a bound by: none
            self.paced = None
            return {}
        self.paced = default_max_offsets(trigger_ms, cores)
        return {"max_offsets_per_trigger": self.paced, "max_offsets_derived": True}

    def stream(self, spark: SparkSession) -> DataFrame:
        """The topic as a stream; ``starting_offsets`` applies to a fresh checkpoint only."""
        config = self._checked_config(spark)
        reader = (
            spark.readStream.format("kafka")
            .options(**spark_options(config))
            .option(*self.subscription)
            .option("startingOffsets", self.starting_offsets)
            .option("failOnDataLoss", str(self.fail_on_data_loss).lower())
        )
        bound = self.max_offsets_per_trigger or self.paced
        if bound is not None:
            # The backpressure bound: a slow sink makes batches wait, never grow.
            reader = reader.option("maxOffsetsPerTrigger", str(bound))
        raw = translate_errors(reader.load, self.connection, self.topic)
        return self.decode(raw, positions=True)

    def explain(self, exc: BaseException) -> EtlcError | None:
        """A failure of this stream's query that Kafka's own exceptions explain: offsets it
        had not read that are gone (it fails on them unless ``fail_on_data_loss`` is false),
        or the broker unreachable, the credentials refused, the topic missing."""
        error = java_cause(exc, DATA_LOSS_JAVA)
        if error is None:
            # Only a failure with a Kafka client exception in it is this source's to explain:
            # a sink's refused connection looks the same further down the chain.
            kafka = any(n.startswith(_KAFKA_CLIENT) for c in _java_causes(exc) for n in c)
            explained = classify_kafka(exc, self.connection, self.topic) if kafka else None
            return explained if isinstance(explained, EtlcError) else None
        lost = lost_offsets(error)
        where = f"kafka connection `{self.connection.name}`, topic `{self.topic}`: records the "
        gone = "are gone from Kafka (deleted, or aged out by retention)" + (
            f": {lost}" if lost else ""
        )
        if self.incremental is not None:
            return DataLossError(
                f"{where}run was to read after the offsets its loads committed {gone}; it "
                "wrote nothing. To skip what is gone, set the offsets to start from with "
                "`etlc state reset <definition> --extract <this extract> --to '<offsets JSON>'`"
            )
        return DataLossError(
            f"{where}stream had not read {gone}; the micro-batch that needed them wrote "
            "nothing. To skip what is gone and go on, set `fail_on_data_loss: false` on this "
            "extract"
        )

    def skipped(self, source: Any) -> dict[str, Any] | None:
        """The offsets a micro-batch passed over without a record, when this stream was told
        to go on past lost data (``fail_on_data_loss: false``): records deleted or aged out
        before it read them (a compacted topic's removed keys and a transactional producer's
        commit markers leave such gaps too). With the default the loss halts the query."""
        # How Spark's Kafka source describes itself: KafkaV2[Subscribe[topic]].
        strategy = {"subscribe": "Subscribe", "subscribePattern": "SubscribePattern"}
        wanted = f"{strategy[self.subscription[0]]}[{self.subscription[1]}]"
        if self.fail_on_data_loss or wanted not in str(source.description):
            return None
        start, end = _partition_offsets(source.startOffset), _partition_offsets(source.endOffset)
        ranges = {
            f"{topic}-{partition}": (start[topic][partition], last)
            for topic, partitions in end.items()
            for partition, last in partitions.items()
            if start.get(topic, {}).get(partition, last) < last
        }
        spanned = sum(last - first for first, last in ranges.values())
        records = int(source.numInputRows or 0)
        if spanned <= records:
            return None
        return {
            "topic": self.topic,
            "offsets": spanned,
            "records": records,
            "skipped": spanned - records,
            "ranges": {name: list(bounds) for name, bounds in sorted(ranges.items())},
        }

    def _checked_config(self, spark: SparkSession) -> dict[str, str]:
        config = client_config(self.connection, CONSUMER_DEFAULTS)
        topic = self.subscription[1] if self.subscription[0] == "subscribe" else None
        translate_errors(lambda: _check_topic(spark, config, topic), self.connection, self.topic)
        return config

    def decode(self, raw: DataFrame, positions: bool = False) -> DataFrame:
        """Kafka rows (``value``, ``partition``, ``offset``) -> the declared columns plus
        :data:`CORRUPT_COLUMN`, set for every value that is not a record of the schema. With
        ``positions``, also :data:`POSITION_COLUMN` (where each record is) and
        :data:`EVENT_TIME_COLUMN` (the record's Kafka timestamp), for streams."""
        value = F.col("value")
        body: Column = value
        if self.confluent_framing:
            framed = (F.length(value) >= CONFLUENT_HEADER) & (
                value.substr(1, 1) == F.lit(bytearray(1))
            )
            body = F.when(
                framed,
                value.substr(F.lit(CONFLUENT_HEADER + 1), F.length(value) - CONFLUENT_HEADER),
            )
        options = {"mode": "PERMISSIVE", "avroSchema": self.reader_schema}
        kept = ["value", "partition", "offset", *(["timestamp"] if positions else [])]
        decoded = raw.select(from_avro(body, self.avro_schema, options).alias(_RECORD), *kept)
        record = F.col(_RECORD)
        corrupt = F.when(record.getField(DECODED).isNull(), _describe_value())
        extra = [StructField(CORRUPT_COLUMN, StringType())]
        columns = [
            *(record.getField(n).alias(n) for n in self.field_names),
            corrupt.alias(CORRUPT_COLUMN),
        ]
        if positions:
            where = F.format_string("partition %d offset %d", F.col("partition"), F.col("offset"))
            columns += [where.alias(POSITION_COLUMN), F.col("timestamp").alias(EVENT_TIME_COLUMN)]
            extra += [
                StructField(POSITION_COLUMN, StringType()),
                StructField(EVENT_TIME_COLUMN, TimestampType()),
            ]
        flat = decoded.select(*columns)
        declared = StructType([*self.schema.fields, *extra])
        source = f"kafka topic {self.topic} (connection `{self.connection.name}`)"
        return conform(source, flat, declared)


def _describe_value() -> Column:
    """Where a bad value is and how it starts: ``partition 0 offset 7: 15 bytes 6E6F74...``."""
    value = F.col("value")
    where = F.format_string("partition %d offset %d: ", F.col("partition"), F.col("offset"))
    head = F.concat(
        F.format_string("%d bytes ", F.length(value)),
        F.hex(value.substr(1, SAMPLE_BYTES)),
        F.when(F.length(value) > SAMPLE_BYTES, F.lit("...")).otherwise(F.lit("")),
    )
    return F.concat(where, F.when(value.isNull(), F.lit("null value (tombstone)")).otherwise(head))


@contextmanager
def _admin(spark: SparkSession, config: dict[str, str]) -> Iterator[tuple[Any, int, Any]]:
    """Kafka's Admin client on the driver, with its wait bound and time unit."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    admin_class = jvm.org.apache.kafka.clients.admin.Admin
    if not isinstance(admin_class, JavaClass):  # a JavaPackage: the class was not found
        raise ConfigurationError(
            "the Kafka client (kafka-clients jar) is not on the driver's classpath; submit with "
            "the generated .submit.sh, which ships the Kafka jars"
        )
    props = jvm.java.util.Properties()
    for key, value in config.items():
        props.setProperty(key, value)
    wait_ms = int(config.get("default.api.timeout.ms", TIMEOUT_MS)) + 5_000
    admin = admin_class.create(props)
    try:
        yield admin, wait_ms, jvm.java.util.concurrent.TimeUnit.MILLISECONDS
    finally:
        # The answer (or the error) matters more than a clean close.
        with suppress(Exception):
            admin.close(jvm.java.time.Duration.ofSeconds(5))


def _check_topic(spark: SparkSession, config: dict[str, str], topic: str | None) -> None:
    """One bounded metadata call on the driver: broker up, credentials good, topic there (for
    a pattern, which may match nothing yet, only the first two)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    with _admin(spark, config) as (admin, wait_ms, unit):
        if topic is None:
            admin.listTopics().names().get(wait_ms, unit)
        else:
            admin.describeTopics(jvm.java.util.List.of(topic)).allTopicNames().get(wait_ms, unit)


def _latest_offsets(spark: SparkSession, config: dict[str, str], topic: str) -> dict[str, int]:
    """Each partition of ``topic`` and its latest offset: the last stable one when the
    consumer reads committed records only (a transaction still open ends the read before it)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    kafka = jvm.org.apache.kafka
    with _admin(spark, config) as (admin, wait_ms, unit):
        described = admin.describeTopics(jvm.java.util.List.of(topic)).allTopicNames()
        info = described.get(wait_ms, unit).get(topic)
        wanted = jvm.java.util.HashMap()
        for partition in info.partitions():
            where = kafka.common.TopicPartition(topic, partition.partition())
            wanted.put(where, kafka.clients.admin.OffsetSpec.latest())
        committed = config.get("isolation.level", "").lower() == "read_committed"
        level = kafka.common.IsolationLevel
        options = kafka.clients.admin.ListOffsetsOptions(
            level.READ_COMMITTED if committed else level.READ_UNCOMMITTED
        )
        found = admin.listOffsets(wanted, options).all().get(wait_ms, unit)
        return {str(tp.partition()): int(found.get(tp).offset()) for tp in found.keySet()}


# --- writing ------------------------------------------------------------------------------


def record_key(keys: Sequence[str]) -> Column:
    """The Kafka key of a row: null, the single key as text, or JSON of several keys."""
    if not keys:
        return F.lit(None).cast("string")
    if len(keys) == 1:
        return F.col(f"`{keys[0]}`").cast("string")
    columns = [F.col(f"`{k}`").alias(k) for k in keys]
    return F.to_json(F.struct(*columns), {"ignoreNullFields": "false"})


@contextmanager
def _through_data_source_v2(spark: SparkSession) -> Iterator[None]:
    """Let Spark write to Kafka through its DataSource V2 path for the duration of one write.

    Spark's default (V1) Kafka batch writer runs its input through a bare RDD job, outside any
    SQL execution, so ``DataFrame.observe`` metrics on that input (the pipeline's record counts)
    are never delivered and ``Observation.get`` waits forever. The V2 writer runs the input as
    part of the write's own plan; the records produced are the same.
    """
    before = spark.conf.get(V1_SOURCES) or ""
    v1 = [s for s in before.split(",") if s.strip().lower() != SYSTEM]
    spark.conf.set(V1_SOURCES, ",".join(v1))
    try:
        yield
    finally:
        spark.conf.set(V1_SOURCES, before)


class KafkaLoader(Loader):
    def __init__(
        self,
        connection: KafkaProfile,
        topic: str,
        schema: DatasetSchema,
        *,
        keys: Sequence[str] = (),
        sequence_by: str | None = None,
    ) -> None:
        self.connection = connection
        self.topic = topic
        self.avro_schema = schema.avro_json
        self.keys = tuple(keys)
        self.sequence_by = sequence_by

    def describe(self) -> dict[str, Any]:
        return {"system": SYSTEM, "connection": self.connection.name, "topic": self.topic}

    def dataset(self, spark: SparkSession) -> DatasetName:
        return dataset_names.topic(self.connection.bootstrap_servers, self.topic)

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        refuse_unknown_mode(mode, f"kafka topic `{self.topic}`")
        if mode == "overwrite":
            raise ConfigurationError(
                f"kafka topic `{self.topic}` cannot be overwritten: a topic is an append-only "
                "log; write `append`, or `upsert` on a compacted topic"
            )
        if mode == "upsert" and not self.keys:
            raise ConfigurationError(f"upsert into topic `{self.topic}` needs `keys`")
        missing = [k for k in self.keys if k not in df.columns]
        if missing:
            raise ConfigurationError(f"keys not among the columns: {', '.join(missing)}")
        superseded = none_superseded
        rows = df
        if mode == "upsert":
            rows, superseded = latest_per_key(df, self.keys, self.sequence_by)
        out = self.records(rows)
        config = client_config(self.connection, PRODUCER_DEFAULTS)
        writer = (
            out.write.format("kafka")
            .mode("append")
            .options(**spark_options(config))
            .option("topic", self.topic)
        )
        with _through_data_source_v2(df.sparkSession):
            translate_errors(writer.save, self.connection, self.topic)
        return LoadResult(superseded=superseded())

    def records(self, df: DataFrame) -> DataFrame:
        """``key`` and ``value`` columns for Spark's Kafka sink."""
        value = to_avro(F.struct(*(F.col(f"`{c}`") for c in df.columns)), self.avro_schema)
        return df.select(record_key(self.keys).alias("key"), value.alias("value"))
