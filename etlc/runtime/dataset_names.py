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

# A glob's first wildcard (Hadoop's glob syntax): a dataset is the folder the glob is in.
GLOB = re.compile(r"[*?\[{]")


@dataclass(frozen=True, order=True)
class DatasetName:
    namespace: str
    name: str


def table(system: str, host: str, port: str, database: str, table_name: str) -> DatasetName:
    """A PostgreSQL (``database.schema.table``, schema ``public`` unless named) or MySQL
    (``database.table``, where a qualified name's first part is the database) table."""
    namespace = f"{system}://{_host(host)}:{port}"
    parts = table_name.split(".")
    if system == "postgres":
        # Filled up to database.schema.table; a three-part name already says all three.
        filled = {1: [database, "public"], 2: [database]}.get(len(parts), [])
        return DatasetName(namespace, ".".join([*filled, *parts]))
    return DatasetName(namespace, ".".join(parts if len(parts) > 1 else [database, *parts]))


def topic(bootstrap_servers: str, topic_name: str) -> DatasetName:
    """A Kafka topic, named by the first bootstrap server the connection lists (port 9092
    when it names none)."""
    first = bootstrap_servers.split(",", maxsplit=1)[0].strip()
    address = first.rpartition("//")[2].rpartition("@")[2]
    if not re.search(r":[0-9]+$", address):
        address += ":9092"
    return DatasetName(f"kafka://{address}", topic_name)


# A location's scheme and authority as Hadoop reads them; the rest is the path (a path may
# hold `#` and `?`, which a URL parser would take for a fragment or a query).
_LOCATION = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(?://([^/]*))?(.*)", re.DOTALL)
# Schemes whose user part names a container, not a user (Azure): kept in the namespace.
_CONTAINER_SCHEMES = frozenset({"abfs", "abfss", "wasb", "wasbs"})
_DEFAULT_PORTS = {"hdfs": 8020}


def path(spark: SparkSession, location: str) -> DatasetName:
    """A file dataset: a path with a scheme and a host as it says; any other (no scheme, or
    no host: ``hdfs:///x``) as Hadoop resolves it on the driver, against the default file
    system and its working folder. A glob names the folder it matches in."""
    found = _LOCATION.fullmatch(location)
    if found is None or (not found.group(2) and found.group(1).lower() != "file"):
        found = _LOCATION.fullmatch(_qualified(spark, location))
        assert found is not None  # Hadoop's qualified paths always have a scheme
        where = unquote(found.group(3))  # Hadoop's URI escapes what a path may hold
    else:
        where = found.group(3)
    scheme, authority = found.group(1).lower(), found.group(2) or ""
    where = _folder(where)
    if scheme == "file":
        return DatasetName("file", where)
    user, _, hostport = authority.rpartition("@")
    parts = urlsplit(f"//{hostport}")
    host = _host(parts.hostname or "")
    if scheme in ("s3", "s3a", "s3n"):
        return DatasetName(f"s3://{host}", where.lstrip("/"))
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    container = f"{user}@" if scheme in _CONTAINER_SCHEMES and user and ":" not in user else ""
    return DatasetName(f"{scheme}://{container}{host}" + (f":{port}" if port else ""), where)


def _qualified(spark: SparkSession, location: str) -> str:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop = jvm.org.apache.hadoop.fs.Path(location)
    fs = hadoop.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return str(fs.makeQualified(hadoop).toUri().toString())


def _folder(location: str) -> str:
    glob = GLOB.search(location)
    if glob is None:
        return location.rstrip("/") or "/"
    return location[: glob.start()].rpartition("/")[0] or "/"


def _host(host: str) -> str:
    """A host as a URI writes it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
