"""Test access to the local S3 endpoint (moto) started by `scripts/services.sh up`.

boto3 creates buckets, uploads generated data and lists what the drivers committed; Spark (the
test session, pointed at moto per bucket) reads Parquet and Avro back. A second, private moto
with IAM authentication switched on proves that a wrong secret key is refused (the shared one
accepts any key).
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests.integration.databases import START_HINT

SUCCESS = "_SUCCESS"


def client(endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def connect(creds: dict[str, Any]) -> Any:
    """A client for the shared moto; fails the test (never skips) when it does not answer."""
    s3 = creds["s3"]
    c = client(s3["endpoint"], s3["access_key"], s3["secret_key"], s3["region"])
    try:
        c.list_buckets()
    except Exception as exc:
        pytest.fail(f"S3 (moto) at {s3['endpoint']} does not answer ({exc}): {START_HINT}")
    return c


def ensure_buckets(s3: Any, *names: str) -> None:
    have = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name in names:
        if name not in have:
            s3.create_bucket(Bucket=name)


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(out)


def clear(s3: Any, bucket: str, prefix: str) -> None:
    found = keys(s3, bucket, prefix)
    for start in range(0, len(found), 1000):
        batch = [{"Key": k} for k in found[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch})


def data_files(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Committed data objects: no `_SUCCESS`, directory markers or hidden files."""
    return [
        k
        for k in keys(s3, bucket, prefix)
        if not k.endswith("/") and not k.rsplit("/", 1)[-1].startswith(("_", "."))
    ]


def success(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The `_SUCCESS` manifest; {} when it is the empty marker of FileOutputCommitter."""
    body = s3.get_object(Bucket=bucket, Key=prefix.rstrip("/") + "/" + SUCCESS)["Body"].read()
    return dict(json.loads(body)) if body.strip() else {}


def committed(manifest: dict[str, Any]) -> list[str]:
    """The object keys a manifest says its job committed."""
    return sorted(f.removeprefix("/") for f in manifest.get("filenames", []))


def pending_uploads(s3: Any, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [u["Key"] for u in listed.get("Uploads", [])]


def put_orders(s3: Any, bucket: str, prefix: str, orders: list[demo.Order], files: int = 3) -> None:
    """Orders as CSV files with a header, exactly as the demo writes them."""
    clear(s3, bucket, prefix)
    for part in range(files):
        key = f"{prefix.rstrip('/')}/part-{part:03d}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=orders_csv(orders[part::files]))


def orders_csv(orders: list[demo.Order]) -> bytes:
    """One CSV file of ``orders``, with a header, as the demo writes it."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf)
    out.writerow(demo.ORDER_HEADER)
    for o in orders:
        out.writerow(
            (
                o.order_id,
                o.customer_id,
                f"{o.amount:.2f}",
                o.status,
                o.ordered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                o.coupon or "",
            )
        )
    return buf.getvalue().encode("utf-8")


def json_lines(s3: Any, bucket: str, keys_: Iterable[str]) -> Iterator[dict[str, Any]]:
    for key in keys_:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        for line in body.splitlines():
            if line.strip():
                yield json.loads(line, parse_float=Decimal)


def point_spark_at(spark: Any, creds: dict[str, Any], *buckets: str) -> None:
    """Configure the test session's S3A for moto, per bucket (independently of etlc)."""
    s3 = creds["s3"]
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for bucket in buckets:
        p = f"fs.s3a.bucket.{bucket}."
        conf.set(p + "endpoint", s3["endpoint"])
        conf.set(p + "endpoint.region", s3["region"])
        conf.set(p + "path.style.access", "true")
        conf.set(p + "access.key", s3["access_key"])
        conf.set(p + "secret.key", s3["secret_key"])
        conf.set(
            p + "aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class AuthMoto:
    endpoint: str
    access_key: str
    secret_key: str


@contextmanager
def moto_with_iam(log: Path) -> Iterator[AuthMoto]:
    """A private moto that checks signatures: three unauthenticated calls make a user and key."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"private moto did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="etl")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="etl", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="etl")["AccessKey"]
        yield AuthMoto(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
