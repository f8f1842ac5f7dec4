"""The Kafka extract and load: records of a topic (or of the topics a pattern matches).

The Kafka extract is the one stream source: in a streaming pipeline its dataset is unbounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag
from etlc.dsl.incremental import refused_in_stream
from etlc.dsl.java_regex import HINT as JAVA_REGEX_HINT
from etlc.dsl.java_regex import java_regex
from etlc.dsl.plan import SchemaOf
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.dsl.upserts import check_sequence
from etlc.plugins import MavenArtifact, PluginSpec, SparkTarget
from etlc.profiles import KafkaProfile


@dataclass(frozen=True, kw_only=True)
class KafkaExtract(ast.Step):
    role: ClassVar[str] = "extract"
    connection: ast.Name
    schema: ast.Name
    topic: ast.Name | None = None
    topic_pattern: ast.Name | None = None
    starting_offsets: ast.Name | None = None
    ending_offsets: ast.Name | None = None
    confluent_framing: ast.Flag | None = None
    max_offsets_per_trigger: ast.Number | None = None  # streaming only
    fail_on_data_loss: ast.Flag | None = None  # streaming only
    incremental: ast.Flag | None = None  # batch only


@dataclass(frozen=True, kw_only=True)
class KafkaLoad(ast.Step):
    role: ClassVar[str] = "load"
    input: ast.Name
    connection: ast.Name
    topic: ast.Name
    mode: ast.Name
    keys: tuple[ast.Name, ...] = ()
    sequence_by: ast.Name | None = None

    def inputs(self) -> list[ast.Name]:
        return [self.input]


_KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_KAFKA_MAX_PARTITION = 2**31 - 1


def check_extract(
    ctx: CheckContext, step: KafkaExtract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    if not ctx.streaming:
        ctx.batch_ignores(step, "max_offsets_per_trigger", step.max_offsets_per_trigger)
        ctx.batch_ignores(step, "fail_on_data_loss", step.fail_on_data_loss)
    if (step.topic is None) == (step.topic_pattern is None):
        ctx.error(
            "E210",
            "a kafka extract needs exactly one of `topic` or `topic_pattern`",
            step.span,
            'name the topic ("topic": "orders") or a pattern ("topic_pattern": "orders\\..*")',
        )
        return None
    if step.topic_pattern is not None:
        # Kafka's consumer compiles it with java.util.regex, not Python's re.
        found = java_regex(step.topic_pattern.value)
        if isinstance(found, str):
            ctx.error(
                "E216",
                f"`topic_pattern` is not a regular expression Java compiles: {found}",
                step.topic_pattern.span,
                JAVA_REGEX_HINT + "; escape the dots of topic names: `orders\\..*`",
            )
            return None
    offsets = [
        _kafka_offsets_problem(node, ending, step.topic)
        for node, ending in ((step.starting_offsets, False), (step.ending_offsets, True))
        if node is not None
    ]
    if any(offsets):
        ctx.report(d for d in offsets if d is not None)
        return None
    incremental = step.incremental is not None and step.incremental.value
    if incremental and not _incremental_ok(ctx, step):
        return None
    connection = ctx.connection(step.connection, KafkaProfile)
    schema = ctx.load_avro(step.schema)
    if schema is None:
        return None
    args = {"connection": connection, **_extract_args(ctx, step, incremental)}
    return Lowered(args, schema, rules=ctx.validation_rules(schema, step.schema))


def _extract_args(ctx: CheckContext, step: KafkaExtract, incremental: bool) -> dict[str, Any]:
    """The extractor's arguments of a checked step, but its connection."""
    args: dict[str, Any] = {}
    if step.topic is not None:
        args["topic"] = step.topic.value
    else:
        assert step.topic_pattern is not None
        args["topic_pattern"] = step.topic_pattern.value
    args["schema"] = SchemaOf(step.id.value)
    if step.starting_offsets is not None:
        args["starting_offsets"] = step.starting_offsets.value
    if step.ending_offsets is not None:
        args["ending_offsets"] = step.ending_offsets.value
    if step.confluent_framing is not None and step.confluent_framing.value:
        args["confluent_framing"] = True
    if incremental:
        args["incremental"] = {"kind": "offsets"}
    if ctx.streaming:
        if step.max_offsets_per_trigger is not None:
            args["max_offsets_per_trigger"] = int(step.max_offsets_per_trigger.value)
        # Only the departure from the default (Spark's too), as for confluent_framing.
        if step.fail_on_data_loss is not None and not step.fail_on_data_loss.value:
            args["fail_on_data_loss"] = False
    return args


def _incremental_ok(ctx: CheckContext, step: KafkaExtract) -> bool:
    """Whether an ``incremental`` Kafka extract can read by offsets: in a batch run, of one
    topic, to the end the run fixes."""
    assert step.incremental is not None
    if refused_in_stream(ctx, step.incremental.span):
        return False
    if step.topic is None:
        ctx.error(
            "E216",
            "an incremental kafka extract reads one `topic`: the topics a pattern matches "
            "change between runs",
            step.incremental.span,
            "name the topic; for several topics, one extract each",
        )
        return False
    if step.ending_offsets is not None:
        ctx.error(
            "E216",
            "an incremental kafka extract ends each run at the topic's latest offsets, fixed "
            "as the run starts; `ending_offsets` would stop it there every run",
            step.ending_offsets.span,
            "drop `ending_offsets`",
        )
        return False
    return True


def streaming_extract(ctx: CheckContext, step: KafkaExtract) -> None:
    if step.ending_offsets is not None:
        ctx.error(
            "E408",
            f"kafka extract `{step.id.value}` sets `ending_offsets`, but a stream has no end",
            step.ending_offsets.span,
            'remove `ending_offsets`, or set "mode": "batch" to read a fixed range',
        )


def check_load(
    ctx: CheckContext, step: KafkaLoad, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    [schema] = inputs
    connection = ctx.connection(step.connection, KafkaProfile)
    if not ctx.columns_exist(step.keys, schema, "keys"):
        return None
    args: dict[str, Any] = {
        "connection": connection,
        "topic": step.topic.value,
        "schema": SchemaOf(step.input.value),
    }
    if step.keys:
        args["keys"] = tuple(k.value for k in step.keys)
    if not check_sequence(ctx, step, schema, args):
        return None
    return Lowered(args, schema, mode=step.mode.value)


def _kafka_offsets_problem(
    node: ast.Name, ending: bool, topic: ast.Name | None
) -> Diagnostic | None:
    """`earliest`/`latest` or Spark's JSON {"topic": {"partition": offset}}; -2 means earliest
    and -1 latest in the JSON, and an end cannot be earliest."""
    text = node.value
    which = "ending_offsets" if ending else "starting_offsets"
    words = ("latest",) if ending else ("earliest", "latest")
    if text in words:
        return None
    lowest = -1 if ending else -2

    def problem(why: str) -> Diagnostic:
        return diag(
            "E216",
            f"`{which}` {why}",
            node.span,
            f"write {' or '.join(repr(w) for w in words)}, or JSON like "
            '{"orders": {"0": 42, "1": -1}}',
        )

    if not text.lstrip().startswith("{"):
        return problem(f"must be {' or '.join(words)}, or a JSON object of offsets")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return problem(f"is not valid JSON: {str(exc)[:80]}")
    if not isinstance(doc, dict) or not doc:
        return problem("must be a non-empty JSON object of topics")
    for name, partitions in doc.items():
        if not _KAFKA_TOPIC.fullmatch(name):
            return problem(f"names {name[:40]!r}, which is not a Kafka topic name")
        if topic is not None and name != topic.value:
            return problem(f"names topic `{name}`, but this step reads `{topic.value}`")
        if not isinstance(partitions, dict) or not partitions:
            return problem(f"must map topic `{name}` to {{partition: offset}}")
        for partition, offset in partitions.items():
            if not (partition.isascii() and partition.isdigit()) or (
                int(partition) > _KAFKA_MAX_PARTITION
            ):
                return problem(f"has partition {partition[:20]!r}, not a partition number")
            if (
                not isinstance(offset, int)
                or isinstance(offset, bool)
                or not lowest <= offset < 2**63
            ):
                return problem(
                    f"has offset {str(offset)[:30]} for `{name}` partition {partition}: "
                    f"offsets are integers from {lowest}"
                    + (" (-2 earliest, -1 latest)" if not ending else " (-1 latest)")
                )
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key is given twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def kafka_jars(target: SparkTarget) -> tuple[MavenArtifact, ...]:
    """Spark's Kafka source and sink, with the client and pool versions that release uses."""
    return (
        target.spark_module("spark-sql-kafka-0-10"),
        target.spark_module("spark-token-provider-kafka-0-10"),
        MavenArtifact("org.apache.kafka", "kafka-clients", target.kafka_clients),
        MavenArtifact("org.apache.commons", "commons-pool2", target.commons_pool2),
    )


EXTRACT = PluginSpec(
    "kafka",
    "extract",
    "etlc.connectors.kafka:KafkaExtractor",
    streaming=True,
    stream_source=True,
    artifacts=kafka_jars,
)
LOAD = PluginSpec(
    "kafka",
    "load",
    "etlc.connectors.kafka:KafkaLoader",
    streaming=True,
    write_modes=frozenset({"append", "upsert"}),
    write_mode_notes={
        "overwrite": "a Kafka topic is an append-only log and cannot be replaced; use "
        "`append`, or `upsert` with `keys` on a compacted topic"
    },
    artifacts=kafka_jars,
)
KINDS = (
    StepKind(KafkaExtract, check_extract, streaming_extract, specs=(EXTRACT,)),
    StepKind(KafkaLoad, check_load, specs=(LOAD,)),
)
