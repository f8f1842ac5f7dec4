"""Datasets named as OpenLineage names them: a namespace for where they live, a name within it.

A connector says which dataset it reads or writes (``Extractor.dataset`` and the like) with
these helpers, so that the lineage events of every run, whichever system, follow the same
conventions: ``postgres://host:port`` with ``database.schema.table``, ``mysql://host:port``
with ``database.table``, ``kafka://host:port`` with the topic, ``s3://bucket`` with the key,
``hdfs://host:port`` or ``file`` with the path. A name never carries credentials: a URI's
user information is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pyspark.sql import SparkSession

# A glob's first segment and everything after it: a dataset is the folder the glob is in.
_GLOB = re.compile(r"[*?\[{]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


@dataclass(frozen=True, order=True)
class DatasetName:
    namespace: str
    name: str


def table(system: str, host: str, port: str, database: str, table_name: str) -> DatasetName:
    """A PostgreSQL (``database.schema.table``, schema ``public`` unless named) or MySQL
    (``database.table``, where a qualified name's first part is the database) table."""
    namespace = f"{system}://{_host(host)}:{port}"
    if system == "postgres":
        schema, _, name = table_name.rpartition(".")
        return DatasetName(namespace, f"{database}.{schema or 'public'}.{name}")
    owner, _, name = table_name.rpartition(".")
    return DatasetName(namespace, f"{owner or database}.{name}")


def topic(bootstrap_servers: str, topic_name: str) -> DatasetName:
    """A Kafka topic, named by the first bootstrap server the connection lists."""
    first = bootstrap_servers.split(",", maxsplit=1)[0].strip()
    return DatasetName(f"kafka://{first.rpartition('//')[2].rpartition('@')[2]}", topic_name)


def path(spark: SparkSession, location: str) -> DatasetName:
    """A file dataset: a path with a scheme as it says, one without as Hadoop resolves it on
    the driver (the default file system, relative to its working folder); a glob names the
    folder it matches in."""
    parts = urlsplit(location)
    where = parts.path
    if not _SCHEME.match(location) or len(parts.scheme) == 1:  # C:\\ is a path
        parts = urlsplit(_qualified(spark, location))
        where = unquote(parts.path)  # Hadoop's URI escapes what a path may hold
    where = _folder(where)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return DatasetName("file", where)
    if scheme in ("s3", "s3a", "s3n"):
        return DatasetName(f"s3://{parts.hostname or ''}", where.lstrip("/"))
    authority = _host(parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return DatasetName(f"{scheme}://{authority}", where)


def _qualified(spark: SparkSession, location: str) -> str:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop = jvm.org.apache.hadoop.fs.Path(location)
    fs = hadoop.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return str(fs.makeQualified(hadoop).toUri().toString())


def _folder(location: str) -> str:
    glob = _GLOB.search(location)
    if glob is None:
        return location.rstrip("/") or "/"
    return location[: glob.start()].rpartition("/")[0] or "/"


def _host(host: str) -> str:
    """A host as a URI writes it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
