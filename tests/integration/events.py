"""Test access to the local Kafka broker, and an Avro binary codec written from the spec.

The codec is deliberately independent of Spark (and of etlc): the tests produce with it what
the drivers must decode, and decode with it what the drivers produced. It covers what the
example schemas use: records, primitives, nullable unions, enums, and the decimal (bytes),
timestamp-millis/micros and date logical types.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.integration import databases

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- the broker ------------------------------------------------------------------------------


def bootstrap() -> str:
    """The broker's address; fails the test (never skips) when the broker does not answer."""
    from confluent_kafka.admin import AdminClient

    servers = str(databases.credentials()["kafka"]["bootstrap_servers"])
    try:
        AdminClient({"bootstrap.servers": servers}).list_topics(timeout=10)
    except Exception as exc:
        pytest.fail(
            f"the Kafka broker at {servers} does not answer ({exc}): {databases.START_HINT}",
            pytrace=False,
        )
    return servers


def fresh_topic(prefix: str) -> str:
    return f"etlc-test-{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(
    servers: str, topic: str, partitions: int = 2, config: dict[str, str] | None = None
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": servers})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    admin.create_topics([new])[topic].result(timeout=30)


def produce(servers: str, topic: str, values: Sequence[bytes | None]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value=value)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0, "not every test record reached the broker"


def consume(servers: str, topic: str, timeout: float = 60) -> list[tuple[Any, ...]]:
    """Every record of ``topic`` as (key, value, partition, offset), read to the end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": f"etlc-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        marks = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in partitions
        }
        total = sum(high - low for low, high in marks.values())
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + timeout
        while len(records) < total and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            records.append((msg.key(), msg.value(), msg.partition(), msg.offset()))
        assert len(records) == total, f"read {len(records)} of {total} records of {topic}"
        return records
    finally:
        consumer.close()


def confluent_frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


# --- Avro binary encoding (https://avro.apache.org/docs/1.12.0/specification/) -----------------


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _unzigzag(data: bytes, pos: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (n >> 1) ^ -(n & 1), pos


def micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode(schema: Any, value: Any) -> bytes:
    if isinstance(schema, list):  # a union: the first branch that takes the value
        for i, branch in enumerate(schema):
            if (value is None) == (branch == "null"):
                return _zigzag(i) + encode(branch, value)
        raise ValueError(f"no branch of {schema} takes {value!r}")
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if kind == "record":
        return b"".join(encode(f["type"], value[f["name"]]) for f in schema["fields"])
    if kind == "enum":
        return _zigzag(schema["symbols"].index(value))
    if kind == "null":
        return b""
    if kind == "boolean":
        return b"\x01" if value else b"\x00"
    if kind in ("int", "long"):
        if logical == "timestamp-micros":
            value = micros(value)
        elif logical == "timestamp-millis":
            value = micros(value) // 1000
        elif logical == "date":
            value = (value - date(1970, 1, 1)).days
        return _zigzag(value)
    if kind == "float":
        return struct.pack("<f", value)
    if kind == "double":
        return struct.pack("<d", value)
    if kind == "string":
        raw = value.encode("utf-8")
        return _zigzag(len(raw)) + raw
    if kind == "bytes":
        if logical == "decimal":
            unscaled = int(value.scaleb(schema["scale"]))
            size = (unscaled + (unscaled < 0)).bit_length() // 8 + 1
            value = unscaled.to_bytes(size, "big", signed=True)
        return _zigzag(len(value)) + value
    raise ValueError(f"the test codec does not know {schema}")


def decode(schema: Any, data: bytes, pos: int = 0) -> tuple[Any, int]:
    if isinstance(schema, list):
        index, pos = _unzigzag(data, pos)
        return decode(schema[index], data, pos)
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if kind == "record":
        out = {}
        for f in schema["fields"]:
            out[f["name"]], pos = decode(f["type"], data, pos)
        return out, pos
    if kind == "enum":
        index, pos = _unzigzag(data, pos)
        return schema["symbols"][index], pos
    if kind == "null":
        return None, pos
    if kind == "boolean":
        return data[pos] == 1, pos + 1
    if kind in ("int", "long"):
        n, pos = _unzigzag(data, pos)
        if logical == "timestamp-micros":
            return EPOCH + timedelta(microseconds=n), pos
        if logical == "timestamp-millis":
            return EPOCH + timedelta(microseconds=n * 1000), pos
        if logical == "date":
            return date.fromordinal(date(1970, 1, 1).toordinal() + n), pos
        return n, pos
    if kind == "float":
        return struct.unpack_from("<f", data, pos)[0], pos + 4
    if kind == "double":
        return struct.unpack_from("<d", data, pos)[0], pos + 8
    if kind in ("string", "bytes"):
        size, pos = _unzigzag(data, pos)
        raw = data[pos : pos + size]
        if kind == "string":
            return raw.decode("utf-8"), pos + size
        if logical == "decimal":
            unscaled = int.from_bytes(raw, "big", signed=True)
            return Decimal(unscaled).scaleb(-schema["scale"]), pos + size
        return raw, pos + size
    raise ValueError(f"the test codec does not know {schema}")


def decode_all(schema: Any, data: bytes) -> Any:
    """One record that must use every byte of ``data``."""
    value, end = decode(schema, data)
    assert end == len(data), f"{len(data) - end} bytes after the record"
    return value


def delete_before(servers: str, topic: str, partition: int, offset: int) -> None:
    """Delete the partition's records below ``offset``, as retention would have."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers})
    [future] = admin.delete_records([TopicPartition(topic, partition, offset)]).values()
    assert future.result(timeout=60).low_watermark == offset
