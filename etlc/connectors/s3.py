"""S3 through Hadoop's S3A connector: files with a connection profile, committed without renames.

Configuration
    Each step configures S3A for its own bucket only (``fs.s3a.bucket.<bucket>.*`` on the
    session's Hadoop configuration), right before it reads or writes: endpoint, region,
    path-style access, ``SimpleAWSCredentialsProvider`` with the profile's ``access_key`` and
    ``secret_key`` (revealed in that one call, never logged, never in a URL or in ``describe()``),
    and bounded retries and timeouts (:data:`BOUNDED`), so an endpoint that is down fails the step
    in seconds, not minutes. A profile's ``properties`` override those per bucket. A profile
    without keys uses S3A's default credential chain (environment, instance profile).

    S3A keeps one client per bucket per JVM, built with the configuration of first use; so a
    bucket is bound to one connection profile per run and a second profile for it is refused.

Committing (the issue asks for a safe S3A committer, not rename-based commits)
    S3 has no rename: Spark's default ``FileOutputCommitter`` "renames" by copying and deleting
    each object, slowly and non-atomically. Hadoop's S3A committers upload each task's files as
    incomplete multipart uploads and complete them in job commit, so nothing is visible before the
    job commits and nothing is copied. Spark binds them only through
    ``org.apache.spark.internal.io.cloud.PathOutputCommitProtocol`` (module
    ``spark-hadoop-cloud``): its default protocol writes straight into the destination whenever
    the committer is not a ``FileOutputCommitter``, which every S3A committer is not. Hadoop's
    ``BindingPathOutputCommitter`` cannot stand in (Spark instantiates a non-FileOutputCommitter
    ``outputCommitterClass`` with a no-argument constructor it does not have), and binding only
    ``mapreduce.outputcommitter.factory.scheme.s3a`` makes CSV, JSON and Avro writes go straight
    to the destination while a ``_SUCCESS`` manifest still names the magic committer, with an
    empty file list (checked against moto).

    ``spark-hadoop-cloud_2.13`` has no 4.2.0 release on Maven Central; 4.1.2 is the newest, and its
    three classes link against Spark 4.2.0 and commit CSV, JSON, Avro and Parquet through the
    S3A committers (checked against moto). When ``PathOutputCommitProtocol`` can be loaded, each
    write sets, for that write only (session conf restored after it, committer options passed as
    write options, which Spark copies into the job's Hadoop configuration):

    ========================  ===============================  ======================
    mode                      S3A committer                    Spark save mode
    ========================  ===============================  ======================
    append                    ``magic``                        append
    overwrite                 ``magic``                        overwrite (path replaced)
    overwrite + partition_by  ``partitioned``, conflict-mode   append (the committer replaces
                              ``replace``                      only the partitions written)
    ========================  ===============================  ======================

    ``PathOutputCommitProtocol`` refuses Spark's dynamic partition overwrite with S3A committers,
    hence the partitioned staging committer for partition overwrites. It buffers task output on
    local disk and passes commit data through ``fs.s3a.committer.staging.tmp.path``, which must be
    a filesystem the driver and every executor share: on a local master it defaults to a local
    temporary directory; on a cluster whose default filesystem is HDFS, Hadoop's default works;
    on a cluster without one the load is refused until the environment sets
    ``spark.hadoop.fs.s3a.committer.staging.tmp.path`` (files would otherwise be lost silently).

    Fallback, when ``spark-hadoop-cloud`` is not on the classpath: Spark's own protocol with the
    v1 ``FileOutputCommitter`` (the S3A factory binding is pinned off so no write goes straight
    to the destination) and Spark's dynamic partition overwrite. That is rename-based (copies) but
    correct; ``describe()["committer"]`` reports ``file`` so the logs show it. The plugin
    table's S3A artifacts include ``org.apache.spark:spark-hadoop-cloud_2.13:4.1.2`` (resolved
    without its transitive dependencies, which pin Hadoop 3.4.2 and the AWS SDK bundle), so the
    generated submit commands ship it and the fallback only applies to hand-made classpaths.

Errors are classified by Java exception type along the cause chain (superclasses included):
401/403 (``java.nio.file.AccessDeniedException``) is an :class:`AuthenticationError`; a missing
bucket (``UnknownStoreException``) or path (Spark's ``PATH_NOT_FOUND``, ``FileNotFoundException``)
is a :class:`TerminalError` naming the path; an unreachable endpoint, 5xx, throttling and timeouts
are a :class:`TransientError`. Messages are etlc's own and name the connection and path only.

Upsert is refused at compile time: plain files have no MERGE.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql.streaming.readwriter import DataStreamWriter

from etlc.connectors import delta, magic_jobs
from etlc.connectors.failures import translated
from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.profiles import S3Profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    EtlcError,
    TerminalError,
    TransientError,
    error_condition,
    java_chain,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.session import session_conf
from etlc.runtime.strategies import LoadResult, Position

T = TypeVar("T")

SYSTEM = "s3"
_PATH = re.compile(
    r"^s3a://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?\Z", re.DOTALL
)

SIMPLE_CREDENTIALS = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
TEMPORARY_CREDENTIALS = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"

# Per bucket, so a down endpoint fails in seconds: the AWS SDK tries each request twice, S3A
# retries idempotent calls three times (0.5 s, 1 s, 2 s apart); the pipeline's own retry
# policy decides what happens next.
BOUNDED: Mapping[str, str] = {
    "attempts.maximum": "2",
    "retry.limit": "3",
    "retry.interval": "500ms",
    "retry.throttle.limit": "5",
    "retry.throttle.interval": "1s",
    # Plain milliseconds: Hadoop 3.3 (Spark 3.5) reads these two as integers, 3.4 on as
    # durations whose bare number is milliseconds.
    "connection.establish.timeout": "5000",
    "connection.timeout": "60000",
}
_BINDING = "etlc.s3.bucket.{bucket}.connection"  # which profile configured a bucket in this JVM

# --- committers ---------------------------------------------------------------------------

PATH_OUTPUT_COMMIT_PROTOCOL = "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol"
BINDING_PARQUET_COMMITTER = "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter"
S3A_COMMITTER_FACTORY = "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory"
FILE_COMMITTER_FACTORY = "org.apache.hadoop.mapreduce.lib.output.FileOutputCommitterFactory"
STAGING_TMP_PATH = "fs.s3a.committer.staging.tmp.path"
# Hadoop's default, relative to the default filesystem's working directory: the current
# directory on file://, the user's home on HDFS.
DEFAULT_STAGING_TMP_PATH = "tmp/staging"
_FACTORY_S3A = "mapreduce.outputcommitter.factory.scheme.s3a"


@dataclass(frozen=True)
class CommitPlan:
    """How one write commits: the committer, Spark's save mode and what is set for it."""

    committer: str  # magic | partitioned | file
    save_mode: str
    write_options: Mapping[str, str] = field(default_factory=dict)
    session_conf: Mapping[str, str] = field(default_factory=dict)


def commit_plan(
    mode: str, partitioned: bool, *, s3a_committers: bool, staging_path: str | None = None
) -> CommitPlan:
    """The commit for a write mode; ``s3a_committers``: PathOutputCommitProtocol is loadable."""
    if not s3a_committers:
        options = {
            _FACTORY_S3A: FILE_COMMITTER_FACTORY,
            "mapreduce.fileoutputcommitter.algorithm.version": "1",
        }
        if partitioned and mode == "overwrite":
            options["partitionOverwriteMode"] = "dynamic"
        return CommitPlan("file", mode, options)
    session = {
        "spark.sql.sources.commitProtocolClass": PATH_OUTPUT_COMMIT_PROTOCOL,
        "spark.sql.parquet.output.committer.class": BINDING_PARQUET_COMMITTER,
    }
    options = {
        _FACTORY_S3A: S3A_COMMITTER_FACTORY,
        "mapreduce.fileoutputcommitter.marksuccessfuljobs": "true",
        "partitionOverwriteMode": "static",
    }
    if partitioned and mode == "overwrite":
        options["fs.s3a.committer.name"] = "partitioned"
        options["fs.s3a.committer.staging.conflict-mode"] = "replace"
        if staging_path is not None:
            options[STAGING_TMP_PATH] = staging_path
        return CommitPlan("partitioned", "append", options, session)
    options["fs.s3a.committer.name"] = "magic"
    return CommitPlan("magic", mode, options, session)


# --- configuration ------------------------------------------------------------------------


class HadoopConf(Protocol):
    """The part of ``org.apache.hadoop.conf.Configuration`` used here (a Py4J proxy at run time)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...


def bucket_of(path: str) -> str:
    match = _PATH.match(path)
    if match is None:
        raise ConfigurationError(
            f"`{path}` is not an S3 path; write s3a://<bucket>/<key> (the S3A connector)"
        )
    return match.group("bucket")


def bucket_options(connection: S3Profile, bucket: str) -> dict[str, str]:
    """The non-secret S3A settings for ``bucket``, as full Hadoop keys."""
    prefix = f"fs.s3a.bucket.{bucket}."
    out = {prefix + k: v for k, v in BOUNDED.items()}
    if connection.endpoint:
        out[prefix + "endpoint"] = connection.endpoint
    if connection.region:
        out[prefix + "endpoint.region"] = connection.region
    if connection.path_style_access:
        out[prefix + "path.style.access"] = connection.path_style_access
    if connection.access_key is not None:
        temporary = connection.session_token is not None
        out[prefix + "aws.credentials.provider"] = (
            TEMPORARY_CREDENTIALS if temporary else SIMPLE_CREDENTIALS
        )
    # The profile refused properties that look like credentials.
    for key, value in sorted(connection.properties.items()):
        out[prefix + key.removeprefix("fs.s3a.")] = value
    return out


def configure_bucket(conf: HadoopConf, connection: S3Profile, bucket: str) -> None:
    """Point S3A at ``bucket`` with ``connection``; the only place the keys are revealed."""
    options = bucket_options(connection, bucket)
    binding = _BINDING.format(bucket=bucket)
    bound = conf.get(binding)
    if bound is not None and bound != connection.name:
        raise ConfigurationError(
            f"bucket `{bucket}` is used with connections `{bound}` and `{connection.name}` in "
            "one run; S3A keeps one client per bucket, so use one connection profile per bucket"
        )
    for key, value in options.items():
        conf.set(key, value)
    prefix = f"fs.s3a.bucket.{bucket}."
    if connection.access_key is not None and connection.secret_key is not None:
        conf.set(prefix + "access.key", connection.access_key.reveal())
        conf.set(prefix + "secret.key", connection.secret_key.reveal())
        if connection.session_token is not None:
            conf.set(prefix + "session.token", connection.session_token.reveal())
    conf.set(binding, connection.name)


def _hadoop_conf(spark: SparkSession) -> Any:
    jsc = spark.sparkContext._jsc
    assert jsc is not None
    return jsc.hadoopConfiguration()


def s3a_committers_available(spark: SparkSession) -> bool:
    """Whether the driver can load Spark's PathOutputCommitProtocol (spark-hadoop-cloud)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(PATH_OUTPUT_COMMIT_PROTOCOL))


def staging_path(spark: SparkSession, conf: HadoopConf) -> str | None:
    """Where the partitioned committer passes commit data; None keeps the configured one."""
    if (conf.get(STAGING_TMP_PATH) or DEFAULT_STAGING_TMP_PATH) != DEFAULT_STAGING_TMP_PATH:
        return None
    if (spark.sparkContext.master or "").startswith("local"):
        return (Path(tempfile.gettempdir()) / "etlc-s3a-staging").as_uri()
    if not (conf.get("fs.defaultFS") or "file:///").startswith("file:"):
        return None  # Hadoop's default, tmp/staging on the cluster filesystem
    raise ConfigurationError(
        "a partitioned overwrite on S3 commits through S3A's partitioned staging committer, "
        "which passes commit data through a filesystem the driver and all executors share; this "
        "cluster has none by default: set `spark.hadoop.fs.s3a.committer.staging.tmp.path` "
        "(e.g. hdfs://...) in the environment's `spark` settings"
    )


# --- errors -------------------------------------------------------------------------------

AUTH_JAVA = frozenset(
    {
        "java.nio.file.AccessDeniedException",
        "org.apache.hadoop.fs.s3a.auth.NoAuthWithAWSException",
        "org.apache.hadoop.fs.s3a.CredentialInitializationException",
    }
)
MISSING_BUCKET_JAVA = frozenset({"org.apache.hadoop.fs.s3a.UnknownStoreException"})
MISSING_PATH_JAVA = frozenset({"java.io.FileNotFoundException"})
TRANSIENT_S3_JAVA = frozenset(
    {
        "java.net.ConnectException",
        "java.net.SocketTimeoutException",
        "java.net.NoRouteToHostException",
        "java.net.UnknownHostException",
        "org.apache.hadoop.fs.s3a.AWSStatus500Exception",
        "org.apache.hadoop.fs.s3a.AWSServiceThrottledException",
        "org.apache.hadoop.fs.s3a.AWSApiCallTimeoutException",
        "org.apache.hadoop.fs.s3a.AWSNoResponseException",
        "software.amazon.awssdk.core.exception.ApiCallTimeoutException",
        "software.amazon.awssdk.core.exception.ApiCallAttemptTimeoutException",
        "org.apache.http.conn.ConnectTimeoutException",
        "org.apache.http.NoHttpResponseException",
    }
)
_MAX_SUPERCLASSES = 8


def java_types(exc: BaseException) -> list[str]:
    """Class names along a JVM error's cause chain, each followed by its superclasses."""
    names: list[str] = []
    for origin in java_chain(exc):
        try:
            cls = origin.getClass()
            for _ in range(_MAX_SUPERCLASSES):
                if cls is None:
                    break
                names.append(str(cls.getName()))
                cls = cls.getSuperclass()
        except Exception:  # a dead gateway cannot tell us more
            break
    return names


def classify_error(exc: BaseException, connection: S3Profile, path: str) -> EtlcError | None:
    """An S3 failure as the framework's error, or None when it is not one S3 explains."""
    where = f"{SYSTEM} connection `{connection.name}`"
    names = java_types(exc)
    if AUTH_JAVA.intersection(names):
        return AuthenticationError(
            f"{where}: access to {path} denied (HTTP 401/403); check the access key and secret "
            "key the profile takes from the vault, and the bucket policy"
        )
    if MISSING_BUCKET_JAVA.intersection(names):
        return TerminalError(f"{where}: the bucket of {path} does not exist")
    if error_condition(exc) == "PATH_NOT_FOUND" or MISSING_PATH_JAVA.intersection(names):
        return TerminalError(f"{where}: {path} does not exist")
    transient = next((n for n in names if n in TRANSIENT_S3_JAVA), None)
    if transient is not None:
        return TransientError(
            f"{where}: {path}: the endpoint is unreachable or failing "
            f"({transient.rsplit('.', 1)[-1]})"
        )
    return None


def translate_errors(call: Callable[[], T], connection: S3Profile, path: str) -> T:
    """Run an S3A call; failures S3 explains become typed errors, with etlc's own text."""
    return translated(call, lambda exc: classify_error(exc, connection, path))


# --- the connectors -----------------------------------------------------------------------


class S3Extractor(FilesExtractor):
    def __init__(
        self,
        connection: S3Profile,
        path: str,
        format: str,
        schema: DatasetSchema,
        options: Mapping[str, str] | None = None,
        *,
        incremental: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(path, format, schema, options, incremental=incremental)
        self.bucket = bucket_of(path)
        self.connection = connection

    def describe(self) -> dict[str, Any]:
        return {
            "system": SYSTEM,
            "connection": self.connection.name,
            "path": self.path,
            "format": self.format,
        }

    def extract(self, spark: SparkSession) -> DataFrame:
        configure_bucket(_hadoop_conf(spark), self.connection, self.bucket)
        read = super().extract
        return translate_errors(lambda: read(spark), self.connection, self.path)

    def listing(self, spark: SparkSession, *, must_exist: bool = True) -> dict[str, int]:
        configure_bucket(_hadoop_conf(spark), self.connection, self.bucket)
        listed = super().listing
        return translate_errors(
            lambda: listed(spark, must_exist=must_exist), self.connection, self.path
        )

    def extract_range(
        self, spark: SparkSession, after: Position | None, upto: Position | None
    ) -> DataFrame:
        read = super().extract_range
        return translate_errors(lambda: read(spark, after, upto), self.connection, self.path)


class S3Loader(FilesLoader):
    def __init__(
        self,
        connection: S3Profile,
        path: str,
        format: str,
        *,
        options: Mapping[str, str] | None = None,
        partition_by: Sequence[str] = (),
        single_file: bool = False,
        keys: Sequence[str] = (),
        sequence_by: str | None = None,
    ) -> None:
        super().__init__(
            path,
            format,
            options,
            partition_by,
            single_file,
            keys=keys,
            sequence_by=sequence_by,
        )
        self.bucket = bucket_of(path)
        self.connection = connection
        self.committer: str | None = None  # known once a write has been planned
        # The magic committer's job directories there before a write that failed: any other
        # found on the next attempt is the failed job's (see etlc.connectors.magic_jobs).
        self.jobs_before_failure: set[str] | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "system": SYSTEM,
            "connection": self.connection.name,
            "path": self.path,
            "format": self.format,
        }
        if self.partition_by:
            out["partition_by"] = list(self.partition_by)
        if self.committer is not None:
            out["committer"] = self.committer
        return out

    def gates(self, spark: SparkSession, mode: str) -> bool:
        # An object store copies on rename: held-back files would be written twice.
        return False

    def sink(self, spark: SparkSession, writer: DataStreamWriter) -> DataStreamWriter:
        configure_bucket(_hadoop_conf(spark), self.connection, self.bucket)
        return super().sink(spark, writer)

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        self.supported(mode)
        spark = df.sparkSession
        conf = _hadoop_conf(spark)
        configure_bucket(conf, self.connection, self.bucket)
        if self.format == delta.FORMAT:
            # Delta commits through its own log, not through an output committer.
            return translate_errors(lambda: self.write_delta(df, mode), self.connection, self.path)
        partitioned = bool(self.partition_by)
        available = s3a_committers_available(spark)
        staging = (
            staging_path(spark, conf) if available and partitioned and mode == "overwrite" else None
        )
        plan = commit_plan(mode, partitioned, s3a_committers=available, staging_path=staging)
        self.committer = plan.committer
        out = df.coalesce(1) if self.single_file else df
        writer = (
            out.write.format(self.format)
            .mode(plan.save_mode)
            .options(**self.options)
            .options(**plan.write_options)
        )
        if self.partition_by:
            writer = writer.partitionBy(*self.partition_by)
        removed = self._save(spark, writer, plan, mode)
        details: dict[str, Any] = {"committer": plan.committer}
        if removed:
            details["removed_from_failed_commit"] = removed
        return LoadResult(details=details)

    def _save(
        self, spark: SparkSession, writer: DataFrameWriter, plan: CommitPlan, mode: str
    ) -> int:
        """The write, through the plan's committer; how many files a failed earlier attempt
        had made visible were removed first. Only the magic committer's appends need that
        (an overwrite replaces them anyway): see :mod:`etlc.connectors.magic_jobs`. A failed
        overwrite says the target may be incomplete: files on S3 are replaced one by one."""
        magic = plan.committer == "magic" and plan.save_mode == "append"

        def jobs() -> set[str]:
            return translate_errors(
                lambda: magic_jobs.job_dirs(spark, self.path), self.connection, self.path
            )

        removed = 0
        before = jobs() if magic else set()
        if magic and self.jobs_before_failure is not None:
            for job in sorted(before - self.jobs_before_failure):
                removed += len(magic_jobs.remove(spark, job))
            before &= self.jobs_before_failure  # the failed job's directory is gone now
            self.jobs_before_failure = None
        try:
            with session_conf(spark, plan.session_conf):
                translate_errors(lambda: writer.save(self.path), self.connection, self.path)
        except Exception as exc:
            if magic:
                self.jobs_before_failure = before
            if mode == "overwrite" and isinstance(exc, EtlcError):
                raise type(exc)(
                    f"{exc.message}; the overwrite may have left {self.path} incomplete (S3 "
                    "replaces files one by one): a retry or a new run writes it whole, and "
                    '"format": "delta" replaces a table in one commit',
                    exc.step,
                ) from exc
            raise
        return removed
