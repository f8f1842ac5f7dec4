"""Smoke test of the local services the connector tests run against (`make services-up`).

One real round trip each, with the users and passwords `scripts/services.sh up` wrote to
`.services/credentials.json`: PostgreSQL and MariaDB (a row in and out), Kafka (one message
produced and consumed), S3 on moto (an object put and read back). A service that is down fails
here, naming the service and the command that starts it; it is never skipped.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
START_HINT = (
    "start the services with `make services-up` (`scripts/services.sh status` shows them; "
    "logs are in .services/)"
)


class Redacted(dict[str, Any]):
    """The credentials, with a repr that hides them: pytest prints test arguments on failure."""

    def __repr__(self) -> str:
        return "<credentials from .services/credentials.json, redacted>"


@pytest.fixture(scope="module")
def creds() -> dict[str, Any]:
    path = Path(
        os.environ.get("ETLC_SERVICES_CREDENTIALS", ROOT / ".services" / "credentials.json")
    )
    if not path.is_file():
        pytest.fail(f"no credentials file at {path}: {START_HINT}", pytrace=False)
    assert path.stat().st_mode & 0o077 == 0, f"{path} must be readable by its owner only"
    return Redacted(
        (name, Redacted(section))
        for name, section in json.loads(path.read_text(encoding="utf-8")).items()
    )


def reach(service: str, connect: Callable[[], T]) -> T:
    """``connect()``, or fail naming the service, without a traceback (its frames hold secrets)."""
    try:
        return connect()
    except Exception as exc:
        message = f"{service} is down or refused us ({type(exc).__name__}: {exc}): {START_HINT}"
    pytest.fail(message, pytrace=False)


def test_postgres_round_trip(creds: dict[str, Any]) -> None:
    import psycopg

    c = creds["postgres"]
    for database in (c["database"], c["test_database"]):
        conn = reach(
            f"PostgreSQL at {c['host']}:{c['port']} (database {database})",
            lambda db=database: psycopg.connect(
                host=c["host"],
                port=c["port"],
                user=c["user"],
                password=c["password"],
                dbname=db,
                connect_timeout=5,
            ),
        )
        with conn:
            conn.execute("CREATE TEMP TABLE smoke (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO smoke VALUES (%s, %s)", (1, "ünïcode"))
            assert conn.execute("SELECT id, name FROM smoke").fetchall() == [(1, "ünïcode")]
            assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
            version = conn.execute("SHOW server_version_num").fetchone()
            assert version is not None and int(version[0]) >= 150000


def test_mariadb_round_trip(creds: dict[str, Any]) -> None:
    import pymysql

    c = creds["mysql"]
    for database in (c["database"], c["test_database"]):
        conn = reach(
            f"MariaDB at {c['host']}:{c['port']} (database {database})",
            lambda db=database: pymysql.connect(
                host=c["host"],
                port=c["port"],
                user=c["user"],
                password=c["password"],
                database=db,
                connect_timeout=5,
                charset="utf8mb4",
            ),
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION(), @@bind_address")
                version, bind = cur.fetchone()
                assert "MariaDB" in version
                assert bind == "127.0.0.1"
                cur.execute("CREATE TEMPORARY TABLE smoke (id INT PRIMARY KEY, name TEXT)")
                cur.execute("INSERT INTO smoke VALUES (%s, %s)", (1, "ünïcode"))
                cur.execute("SELECT id, name FROM smoke")
                assert cur.fetchall() == ((1, "ünïcode"),)
        finally:
            conn.close()


def test_kafka_produce_and_consume_one_message(creds: dict[str, Any]) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = creds["kafka"]["bootstrap_servers"]
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
    meta = reach(f"Kafka at {bootstrap}", lambda: admin.list_topics(timeout=10))
    assert [b.host for b in meta.brokers.values()] == ["127.0.0.1"]

    topic = f"etlc-smoke-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=20
    )
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 15000})
        delivered: list[Any] = []
        producer.produce(
            topic, key=b"k1", value=b"hello", on_delivery=lambda e, m: delivered.append(e)
        )
        assert producer.flush(20) == 0, f"Kafka at {bootstrap} did not acknowledge the message"
        assert delivered == [None]

        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        try:
            deadline = time.monotonic() + 20
            msg = None
            while msg is None and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
            assert msg is not None, f"no message came back from {topic} within 20 s"
            assert msg.error() is None, msg.error()
            assert (msg.key(), msg.value()) == (b"k1", b"hello")
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic], operation_timeout=10)


def test_s3_put_and_get(creds: dict[str, Any]) -> None:
    import boto3
    from botocore.config import Config

    c = creds["s3"]
    s3 = boto3.client(
        "s3",
        endpoint_url=c["endpoint"],
        region_name=c["region"],
        aws_access_key_id=c["access_key"],
        aws_secret_access_key=c["secret_key"],
        config=Config(
            connect_timeout=5,
            read_timeout=10,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )
    bucket = f"etlc-smoke-{uuid.uuid4().hex[:12]}"
    reach(f"S3 (moto) at {c['endpoint']}", lambda: s3.create_bucket(Bucket=bucket))
    try:
        s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello s3")
        assert s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"hello s3"
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
        assert [o["Key"] for o in listed["Contents"]] == ["dir/hello.txt"]
    finally:
        s3.delete_object(Bucket=bucket, Key="dir/hello.txt")
        s3.delete_bucket(Bucket=bucket)
