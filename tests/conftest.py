"""Shared fixtures: one SparkSession for the whole test session, created only when asked for."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JARS = ROOT / "jars"


@pytest.fixture(autouse=True)
def _forget_revealed_secrets() -> Iterator[None]:
    """Redaction is process-wide; each test starts without the secrets earlier tests revealed."""
    from etlc.vault.redaction import REDACTOR

    REDACTOR.clear()
    yield
    REDACTOR.clear()


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from pyspark.sql import SparkSession

    jars = sorted(str(p) for p in JARS.glob("*.jar"))
    if not any("spark-avro" in j for j in jars):
        pytest.fail("jars/ has no spark-avro jar: run `make jars` (the test command does)")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("etlc-tests")
        .config("spark.jars", ",".join(jars))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        # A producer a test pointed at a closed port is closed soon after, not kept (the
        # default is 10 minutes) logging a reconnect warning every second through the rest.
        .config("spark.kafka.producer.cache.timeout", "5s")
        .config("spark.kafka.producer.cache.evictorThreadRunInterval", "5s")
        # What a driver that writes Delta tables gets from its submit command.
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
