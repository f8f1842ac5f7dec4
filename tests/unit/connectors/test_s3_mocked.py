"""The S3 connector end to end against moto running inside the test process.

Spark reaches S3 through Hadoop's S3A client in the JVM, which moto's ``mock_aws`` (a patch of
botocore) never sees; so moto's own HTTP server runs in a thread of this process and S3A and
boto3 both talk to it over 127.0.0.1. No service of scripts/services.sh is involved. Each test
uses its own bucket: S3A keeps one client per bucket per JVM, built from the configuration of
first use, and etlc binds each bucket to one connection profile.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame

from etlc.connectors import delta
from etlc.connectors.files import FilesExtractor
from etlc.connectors.s3 import (
    S3Extractor,
    S3Loader,
    classify_error,
    commit_plan,
    s3a_committers_available,
)
from etlc.profiles import S3Profile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    SchemaIncompatibleError,
    TerminalError,
    TransientError,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.rules import CORRUPT_COLUMN
from etlc.vault import Secret

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCESS = "AKIAMOTOTESTACCESS01"
SECRET = "moto/test+secret=="
PROTOCOL_CONF = "spark.sql.sources.commitProtocolClass"

DDL = "`id` BIGINT, `name` STRING, `region` STRING"
SCHEMA = DatasetSchema(
    {
        "type": "record",
        "name": "row",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "region", "type": "string"},
        ],
    },
    DDL,
)
VERSIONED_DDL = "`id` BIGINT, `version` BIGINT, `name` STRING, `region` STRING"
VERSIONED = DatasetSchema(
    {
        "type": "record",
        "name": "versioned",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "version", "type": "long"},
            {"name": "name", "type": "string"},
            {"name": "region", "type": "string"},
        ],
    },
    VERSIONED_DDL,
)
Row = tuple[int, str, str]
FIRST: list[Row] = [(1, "ann", "eu"), (2, "bob", "us"), (3, "cid", "eu"), (4, "dan", "us")]
SECOND: list[Row] = [(5, "eve", "eu"), (6, "fay", "ap")]


# --- moto in this process -------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on once the socket is closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # Werkzeug logs every request at INFO; a failure's report should show the test, not those.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(endpoint: str, access_key: str = ACCESS, secret_key: str = SECRET) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return client(endpoint)


def keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(found)


def data_files(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Committed data objects: no `_SUCCESS`, logs, directory markers or hidden files."""
    return [
        k
        for k in keys(s3, bucket, prefix)
        if not k.endswith("/") and not any(part.startswith(("_", ".")) for part in k.split("/"))
    ]


def manifest(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The `_SUCCESS` manifest; {} for FileOutputCommitter's empty marker."""
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/_SUCCESS")["Body"].read()
    return dict(json.loads(body)) if body.strip() else {}


def pending_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def drop_bucket(s3: Any, bucket: str) -> None:
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for key in keys(s3, bucket):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


def unique(kind: str) -> str:
    return f"etlc-{kind}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A new bucket for one test, emptied and deleted after it."""
    name = unique("unit")
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        drop_bucket(s3, name)


def lake(
    endpoint: str,
    secret_key: str = SECRET,
    access_key: str = ACCESS,
    **properties: str,
) -> S3Profile:
    values = {"vault://s3/dev#access_key": access_key, "vault://s3/dev#secret_key": secret_key}
    doc: dict[str, Any] = {
        "system": "s3",
        "endpoint": endpoint,
        "region": REGION,
        "path_style_access": True,
        "access_key": "vault://s3/dev#access_key",
        "secret_key": "vault://s3/dev#secret_key",
    }
    if properties:
        doc["properties"] = properties
    return open_profile("lake", doc, "dev.json", lambda ref: Secret(values[ref]), S3Profile)


def frame(spark: Any, rows: list[Row]) -> DataFrame:
    df: DataFrame = spark.createDataFrame(rows, "id bigint, name string, region string")
    return df


def read_back(spark: Any, endpoint: str, path: str, fmt: str) -> list[tuple[Any, ...]]:
    """The rows an S3 extract of ``path`` yields, in the schema's column order, sorted."""
    df = S3Extractor(lake(endpoint), path, fmt, SCHEMA).extract(spark)
    columns = ["id", "name", "region", *([CORRUPT_COLUMN] if fmt == "json" else [])]
    return sorted(tuple(r) for r in df.select(*columns).collect())


def parsed(rows: list[Row], fmt: str) -> list[tuple[Any, ...]]:
    """``rows`` as read back: text formats add the (empty) corrupt-record column."""
    return sorted((*r, None) if fmt == "json" else r for r in rows)


def expected_committer(spark: Any, mode: str, partitioned: bool) -> str:
    return commit_plan(mode, partitioned, s3a_committers=s3a_committers_available(spark)).committer


# --- writes and reads back ------------------------------------------------------------------


def test_spark_hadoop_cloud_is_on_the_test_classpath_so_s3a_committers_are_used(
    spark: Any,
) -> None:
    """The tests below assert the magic and partitioned committers; that needs this jar."""
    assert s3a_committers_available(spark)


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_append_adds_and_overwrite_replaces_through_the_magic_committer(
    spark: Any, endpoint: str, s3: Any, bucket: str, fmt: str
) -> None:
    path = f"s3a://{bucket}/rows"
    before = spark.conf.get(PROTOCOL_CONF)
    loader = S3Loader(lake(endpoint), path, fmt)
    assert "committer" not in loader.describe()  # nothing planned before the first write

    first = loader.load(frame(spark, FIRST), "append")
    second = loader.load(frame(spark, SECOND), "append")
    committer = expected_committer(spark, "append", False)
    assert committer == "magic"
    assert first.details == second.details == {"committer": committer}
    assert loader.describe() == {
        "system": "s3",
        "connection": "lake",
        "path": path,
        "format": fmt,
        "committer": "magic",
    }
    assert manifest(s3, bucket, "rows")["committer"] == "magic"
    assert read_back(spark, endpoint, path, fmt) == parsed(FIRST + SECOND, fmt)
    appended = data_files(s3, bucket, "rows/")

    result = loader.load(frame(spark, SECOND), "overwrite")
    assert result.details == {"committer": expected_committer(spark, "overwrite", False)}
    written = manifest(s3, bucket, "rows")
    assert written["committer"] == "magic"
    assert read_back(spark, endpoint, path, fmt) == parsed(SECOND, fmt)
    # Only the overwrite's own files are left, and its manifest lists exactly those.
    remaining = data_files(s3, bucket, "rows/")
    assert not set(appended) & set(remaining)
    assert sorted(f.removeprefix("/") for f in written["filenames"]) == remaining
    assert pending_uploads(s3, bucket) == []
    assert spark.conf.get(PROTOCOL_CONF) == before  # the write's session conf is undone


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_a_partitioned_overwrite_replaces_only_the_partitions_it_writes(
    spark: Any, endpoint: str, s3: Any, bucket: str, fmt: str
) -> None:
    stray = (ROOT / "tmp").exists()
    path = f"s3a://{bucket}/by_region"
    loader = S3Loader(lake(endpoint), path, fmt, partition_by=("region",))
    appended = loader.load(frame(spark, FIRST), "append")
    assert appended.details == {"committer": "magic"}
    assert {k.split("/")[1] for k in data_files(s3, bucket, "by_region/")} == {
        "region=eu",
        "region=us",
    }

    result = loader.load(frame(spark, SECOND), "overwrite")
    assert result.details == {"committer": expected_committer(spark, "overwrite", True)}
    assert result.details == {"committer": "partitioned"}
    assert loader.describe()["partition_by"] == ["region"]
    assert manifest(s3, bucket, "by_region")["committer"] == "partitioned"
    # eu is replaced by the second batch's eu rows, ap is new, us is not touched.
    kept_us = [r for r in FIRST if r[2] == "us"]
    assert read_back(spark, endpoint, path, fmt) == parsed(kept_us + SECOND, fmt)
    assert pending_uploads(s3, bucket) == []
    # The staging committer's commit data went to the temporary directory, not the cwd.
    assert (ROOT / "tmp").exists() == stray


def test_a_single_file_csv_write_with_a_header_reads_back_with_its_header_checked(
    spark: Any, endpoint: str, s3: Any, bucket: str
) -> None:
    path = f"s3a://{bucket}/export"
    options = {"header": "true"}
    loader = S3Loader(lake(endpoint), path, "csv", options=options, single_file=True)
    loader.load(frame(spark, FIRST + SECOND), "overwrite")
    files = data_files(s3, bucket, "export/")
    assert len(files) == 1 and files[0].endswith(".csv")
    body = s3.get_object(Bucket=bucket, Key=files[0])["Body"].read().decode("utf-8")
    assert body.splitlines()[0] == "id,name,region"
    df = S3Extractor(lake(endpoint), path, "csv", SCHEMA, options).extract(spark)
    assert sorted(tuple(r) for r in df.collect()) == sorted((*r, None) for r in FIRST + SECOND)


def test_a_csv_header_problem_is_explained_even_when_the_file_is_gone(
    spark: Any, endpoint: str, s3: Any, bucket: str
) -> None:
    """Explaining re-reads the offending file's header; when that fails, Spark's text is used."""
    path = f"s3a://{bucket}/in"
    extractor = S3Extractor(lake(endpoint), path, "csv", SCHEMA, {"header": "true"})
    assert extractor.describe() == {
        "system": "s3",
        "connection": "lake",
        "path": path,
        "format": "csv",
    }
    s3.put_object(Bucket=bucket, Key="in/ok.csv", Body=b"id,name,region\n1,ann,eu\n")
    # Reading configures the bucket, which the explanation's own read of a header relies on.
    assert [tuple(r) for r in extractor.extract(spark).collect()] == [(1, "ann", "eu", None)]
    failure = RuntimeError(
        "CSV header does not conform to the schema.\n Header: ident, name\n Schema: id, name\n"
        f"Expected: id but found: ident\nCSV file: {path}/gone.csv"
    )
    explained = extractor.explain(failure)
    assert isinstance(explained, SchemaIncompatibleError)
    assert str(explained) == (
        f"source {path}: the CSV header of {path}/gone.csv does not match its Avro schema "
        "(Header: ident, name Schema: id, name Expected: id but found: ident); update the "
        ".avsc (schema evolution) or the source"
    )


# --- delta ----------------------------------------------------------------------------------


@pytest.fixture
def small_delta_snapshots(spark: Any) -> Iterator[None]:
    """Delta replays its log in 50 tasks by default: on a small table, 50 S3 round trips each."""
    key = "spark.databricks.delta.snapshotPartitions"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "2")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


@pytest.mark.usefixtures("small_delta_snapshots")
def test_a_delta_upsert_on_s3_keeps_the_latest_row_per_key(
    spark: Any, endpoint: str, s3: Any, bucket: str
) -> None:
    path = f"s3a://{bucket}/table"
    loader = S3Loader(
        lake(endpoint),
        path,
        "delta",
        partition_by=("region",),
        keys=("id",),
        sequence_by="version",
    )
    rows = spark.createDataFrame(
        [(1, 1, "ann", "eu"), (1, 2, "ann2", "eu"), (2, 1, "bob", "us")],
        "id bigint, version bigint, name string, region string",
    )
    created = loader.load(rows, "upsert")  # creates the partitioned table
    assert (created.superseded, created.details) == (1, {})
    later = spark.createDataFrame(
        [(1, 3, "ann3", "eu"), (2, 0, "stale", "us"), (3, 1, "cid", "ap")],
        "id bigint, version bigint, name string, region string",
    )
    merged = loader.load(later, "upsert")
    assert merged.superseded == 0
    assert loader.describe().get("committer") is None  # Delta commits through its own log
    table = S3Extractor(lake(endpoint), path, "delta", VERSIONED).extract(spark)
    assert sorted(tuple(r) for r in table.collect()) == [
        (1, 3, "ann3", "eu"),
        (2, 1, "bob", "us"),  # the older version 0 never replaces version 1
        (3, 1, "cid", "ap"),
    ]
    assert any(k.startswith("table/_delta_log/") for k in keys(s3, bucket, "table/"))
    assert {k.split("/")[1] for k in data_files(s3, bucket, "table/")} == {
        "region=eu",
        "region=us",
        "region=ap",
    }


def test_a_delta_upsert_refuses_a_path_with_a_backtick_unchanged_by_translation(
    spark: Any, endpoint: str, bucket: str
) -> None:
    loader = S3Loader(lake(endpoint), f"s3a://{bucket}/odd`name", "delta", keys=("id",))
    with pytest.raises(ConfigurationError, match="cannot hold a backtick"):
        loader.load(frame(spark, FIRST), "upsert")


def test_a_merge_refuses_a_key_column_with_a_backtick() -> None:
    """The MERGE statement quotes columns with backticks; one inside a name would break out."""
    with pytest.raises(ConfigurationError, match="cannot be used in a MERGE"):
        delta._column("id` = 1 OR `x")


# --- streaming sink -------------------------------------------------------------------------


def test_a_stream_written_through_the_sink_lands_its_batch_in_the_bucket(
    spark: Any, endpoint: str, s3: Any, bucket: str, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "batch-0.json").write_text(
        "".join(json.dumps({"id": i, "name": n, "region": r}) + "\n" for i, n, r in FIRST)
    )
    source = spark.readStream.schema("id bigint, name string, region string").json(str(incoming))
    path = f"s3a://{bucket}/stream"
    loader = S3Loader(lake(endpoint), path, "parquet", partition_by=("region",))
    writer = loader.sink(spark, source.writeStream)
    query = (
        writer.option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    try:
        assert query.awaitTermination(120)
        assert query.exception() is None
    finally:
        query.stop()
    # The file sink's own log commits the batch: exactly one entry, naming the data files.
    log = [k for k in keys(s3, bucket, "stream/_spark_metadata/") if not k.endswith("/")]
    assert log == ["stream/_spark_metadata/0"]
    assert {k.split("/")[1] for k in data_files(s3, bucket, "stream/")} == {
        "region=eu",
        "region=us",
    }
    assert read_back(spark, endpoint, path, "parquet") == sorted(FIRST)


# --- errors against the server --------------------------------------------------------------


def test_a_missing_bucket_is_terminal_and_names_the_path(spark: Any, endpoint: str) -> None:
    missing = unique("missing")
    path = f"s3a://{missing}/in/*.parquet"
    with pytest.raises(TerminalError) as err:
        S3Extractor(lake(endpoint), path, "parquet", SCHEMA).extract(spark)
    assert type(err.value) is TerminalError
    assert str(err.value) == f"s3 connection `lake`: the bucket of {path} does not exist"
    out = f"s3a://{missing}/out"
    with pytest.raises(TerminalError) as err:
        S3Loader(lake(endpoint), out, "parquet").load(frame(spark, FIRST), "append")
    assert str(err.value) == f"s3 connection `lake`: the bucket of {out} does not exist"


def test_a_missing_path_in_a_bucket_is_terminal_and_names_it(
    spark: Any, endpoint: str, bucket: str
) -> None:
    path = f"s3a://{bucket}/nothing/here"
    with pytest.raises(TerminalError) as err:
        S3Extractor(lake(endpoint), path, "parquet", SCHEMA).extract(spark)
    assert str(err.value) == f"s3 connection `lake`: {path} does not exist"


@pytest.fixture
def iam_user(endpoint: str) -> Iterator[tuple[str, str]]:
    """An IAM user with full access and its key pair, then moto checking every signature.

    moto's switch is process-wide and so is this server; it is turned off again afterwards.
    """
    import boto3
    from moto.core.authorization import enable_iam_authentication

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    user = unique("user")
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    with enable_iam_authentication():
        yield key["AccessKeyId"], key["SecretAccessKey"]


def test_a_wrong_secret_key_is_an_authentication_error_that_names_no_credential(
    spark: Any, endpoint: str, iam_user: tuple[str, str]
) -> None:
    access, secret = iam_user
    s3 = client(endpoint, access, secret)
    good, bad = unique("auth-ok"), unique("auth-bad")
    for name in (good, bad):
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="in/rows.json", Body=b'{"id": 1, "name": "a"}\n')
    wrong = "wrong/Secret+Key=CANARY"
    try:
        # The right key pair reads through S3A: the refusal below is the signature's doing.
        rows = S3Extractor(
            lake(endpoint, secret, access), f"s3a://{good}/in", "json", SCHEMA
        ).extract(spark)
        assert [tuple(r) for r in rows.collect()] == [(1, "a", None, None)]
        path = f"s3a://{bad}/in"
        with pytest.raises(AuthenticationError) as err:
            S3Extractor(lake(endpoint, wrong, access), path, "json", SCHEMA).extract(spark)
    finally:
        for name in (good, bad):
            drop_bucket(s3, name)
    text = str(err.value)
    assert text.startswith(f"s3 connection `lake`: access to {path} denied (HTTP 401/403)")
    assert wrong not in text and access not in text and secret not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__


# The connector's own bounds (BOUNDED) give up after about 16 s here; a profile may tighten
# them per bucket, which also keeps this test short.
FAIL_FAST = {"attempts.maximum": "1", "retry.limit": "1", "retry.interval": "50ms"}


def test_an_endpoint_with_nothing_listening_fails_quickly_as_transient(spark: Any) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    path = f"s3a://{unique('down')}/in"
    with pytest.raises(TransientError) as err:
        S3Extractor(lake(endpoint, **FAIL_FAST), path, "parquet", SCHEMA).extract(spark)
    assert str(err.value) == (
        f"s3 connection `lake`: {path}: the endpoint is unreachable or failing (ConnectException)"
    )


def test_an_endpoint_that_stops_between_writes_fails_the_next_one_as_transient(
    spark: Any,
) -> None:
    """The bucket's S3A client outlives the server it was built for."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    name = unique("stops")
    client(endpoint).create_bucket(Bucket=name)
    loader = S3Loader(lake(endpoint, **FAIL_FAST), f"s3a://{name}/rows", "json")
    try:
        loader.load(frame(spark, FIRST), "append")
        assert len(data_files(client(endpoint), name, "rows/")) >= 1
    finally:
        drop_bucket(client(endpoint), name)
        server.stop()
    with pytest.raises(TransientError, match="unreachable or failing") as err:
        loader.load(frame(spark, SECOND), "append")
    assert f"s3a://{name}/rows" in str(err.value)


# --- classification details -----------------------------------------------------------------


class UnreadableConditionError(Exception):
    """A PySpark error whose condition cannot be read (the gateway died while asking)."""

    def getCondition(self) -> str:  # noqa: N802 - mirrors PySparkException
        raise ConnectionError("gateway gone")


def test_an_unreadable_error_condition_leaves_the_failure_to_the_pipeline(
    endpoint: str,
) -> None:
    assert classify_error(UnreadableConditionError("x"), lake(endpoint), "s3a://b/x") is None


def test_a_plain_files_extractor_describes_its_path_and_format(spark: Any) -> None:
    """S3's extractor adds the connection; the plain one names only what it reads."""
    assert FilesExtractor("/data/in", "parquet", SCHEMA).describe() == {
        "system": "files",
        "path": "/data/in",
        "format": "parquet",
    }
