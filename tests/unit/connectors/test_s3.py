"""The S3 connector without a server: paths, per-bucket S3A settings, committers, errors."""

from __future__ import annotations

from typing import Any

import pytest

from etlc.connectors import s3
from etlc.connectors.s3 import (
    BOUNDED,
    PATH_OUTPUT_COMMIT_PROTOCOL,
    S3Extractor,
    S3Loader,
    bucket_of,
    bucket_options,
    classify_error,
    commit_plan,
    configure_bucket,
    java_types,
    translate_errors,
)
from etlc.profiles import S3Profile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    TerminalError,
    TransientError,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.session import session_conf
from etlc.vault import Secret

ACCESS = "AKIA_CANARY_ACCESS"
SECRET = "canary/secret+key=="
DDL = "`id` BIGINT, `name` STRING"
SCHEMA = DatasetSchema(
    {
        "type": "record",
        "name": "row",
        "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
    },
    DDL,
)


def lake(**overrides: Any) -> S3Profile:
    profile: dict[str, Any] = {
        "system": "s3",
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "path_style_access": True,
        "access_key": "vault://services/s3#access_key",
        "secret_key": "vault://services/s3#secret_key",
        **overrides,
    }
    profile = {k: v for k, v in profile.items() if v is not None}
    values = {
        "vault://services/s3#access_key": ACCESS,
        "vault://services/s3#secret_key": SECRET,
        "vault://services/s3#token": "canary-token",
    }
    return open_profile("lake", profile, "dev.json", lambda ref: Secret(values[ref]), S3Profile)


class FakeConf:
    """A Hadoop Configuration: get/set of strings."""

    def __init__(self, **values: str) -> None:
        self.values: dict[str, str] = dict(values)

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("s3a://raw/orders/*.csv", "raw"),
        ("s3a://curated/", "curated"),
        ("s3a://my.bucket-01/a/b=1/c", "my.bucket-01"),
        ("s3a://raw", "raw"),
    ],
)
def test_the_bucket_comes_from_the_path(path: str, bucket: str) -> None:
    assert bucket_of(path) == bucket


@pytest.mark.parametrize(
    "path", ["s3://raw/x", "s3n://raw/x", "/data/x", "s3a://Raw/x", "s3a://a/x", "s3a:///x", ""]
)
def test_other_paths_are_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="s3a://<bucket>"):
        bucket_of(path)


# --- per-bucket configuration --------------------------------------------------------------


def test_each_bucket_is_configured_on_its_own_keys_and_secrets_only_there() -> None:
    conf = FakeConf()
    configure_bucket(conf, lake(), "raw")
    p = "fs.s3a.bucket.raw."
    assert conf.values[p + "endpoint"] == "http://127.0.0.1:9000"
    assert conf.values[p + "endpoint.region"] == "us-east-1"
    assert conf.values[p + "path.style.access"] == "true"
    assert conf.values[p + "aws.credentials.provider"] == s3.SIMPLE_CREDENTIALS
    assert conf.values[p + "access.key"] == ACCESS
    assert conf.values[p + "secret.key"] == SECRET
    for key, value in BOUNDED.items():
        assert conf.values[p + key] == value
    # Nothing global: every S3A key is scoped to the bucket.
    assert all(k.startswith(p) or k == "etlc.s3.bucket.raw.connection" for k in conf.values), (
        sorted(conf.values)
    )
    # The non-secret view never holds a key.
    shown = bucket_options(lake(), "raw")
    assert ACCESS not in repr(shown) and SECRET not in repr(shown)


def test_bounded_retries_and_timeouts_keep_a_dead_endpoint_short() -> None:
    assert int(BOUNDED["attempts.maximum"]) <= 3
    assert int(BOUNDED["retry.limit"]) <= 3
    assert int(BOUNDED["retry.throttle.limit"]) <= 5
    assert BOUNDED["connection.establish.timeout"] == "5000"


def test_profile_properties_override_per_bucket_but_never_carry_credentials() -> None:
    conn = lake(properties={"connection.timeout": "120s", "fs.s3a.retry.limit": 1})
    options = bucket_options(conn, "raw")
    assert options["fs.s3a.bucket.raw.connection.timeout"] == "120s"
    assert options["fs.s3a.bucket.raw.retry.limit"] == "1"
    with pytest.raises(ConfigurationError, match="credential"):
        bucket_options(lake(properties={"secret.key": "oops"}), "raw")


def test_real_aws_needs_no_endpoint_and_no_keys_uses_the_default_chain() -> None:
    conn = lake(
        endpoint=None, region=None, path_style_access=None, access_key=None, secret_key=None
    )
    conf = FakeConf()
    configure_bucket(conf, conn, "prod-lake")
    p = "fs.s3a.bucket.prod-lake."
    assert p + "endpoint" not in conf.values
    assert p + "aws.credentials.provider" not in conf.values
    assert p + "access.key" not in conf.values


def test_a_session_token_selects_temporary_credentials() -> None:
    conf = FakeConf()
    configure_bucket(conf, lake(session_token="vault://services/s3#token"), "raw")
    p = "fs.s3a.bucket.raw."
    assert conf.values[p + "aws.credentials.provider"] == s3.TEMPORARY_CREDENTIALS
    assert conf.values[p + "session.token"] == "canary-token"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"secret_key": None}, "both `access_key` and `secret_key`"),
        ({"acess_key": "x"}, "unknown fields: acess_key"),
        ({"path_style_access": "yes"}, "true or false"),
        ({"system": "mysql"}, "not `s3`"),
    ],
)
def test_bad_profiles_are_refused_when_the_step_is_built(
    spark: Any, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        S3Extractor(lake(**overrides), "s3a://raw/x/*.csv", "csv", SCHEMA)


def test_a_bucket_is_bound_to_one_profile_per_run() -> None:
    conf = FakeConf()
    configure_bucket(conf, lake(), "raw")
    configure_bucket(conf, lake(), "raw")  # the same profile again is fine
    other = open_profile(
        "archive",
        {"system": "s3", "access_key": "vault://a#k", "secret_key": "vault://a#s"},
        "dev.json",
        lambda ref: Secret("other-" + ref),
        S3Profile,
    )
    with pytest.raises(ConfigurationError, match="one connection profile per bucket"):
        configure_bucket(conf, other, "raw")
    configure_bucket(conf, other, "archive-bucket")


def test_describe_and_repr_never_show_credentials(spark: Any) -> None:
    ex = S3Extractor(lake(), "s3a://raw/orders/*.csv", "csv", SCHEMA, {"header": "true"})
    ld = S3Loader(lake(), "s3a://curated/x/", "parquet", partition_by=("country",))
    texts = [repr(ex.describe()), repr(ld.describe()), repr(ex.connection), repr(vars(ld))]
    for text in texts:
        assert ACCESS not in text and SECRET not in text
    assert ex.describe() == {
        "system": "s3",
        "connection": "lake",
        "path": "s3a://raw/orders/*.csv",
        "format": "csv",
    }
    assert ld.describe()["partition_by"] == ["country"]


def test_loader_refuses_upsert_before_touching_spark() -> None:
    ld = S3Loader(lake(), "s3a://curated/x/", "csv")
    with pytest.raises(ConfigurationError, match="append"):
        ld.load(None, "upsert")  # type: ignore[arg-type]


# --- committers ----------------------------------------------------------------------------


def test_append_and_overwrite_commit_through_the_magic_committer() -> None:
    for mode in ("append", "overwrite"):
        plan = commit_plan(mode, False, s3a_committers=True)
        assert (plan.committer, plan.save_mode) == ("magic", mode)
        assert plan.write_options["fs.s3a.committer.name"] == "magic"
        assert (
            plan.write_options["mapreduce.outputcommitter.factory.scheme.s3a"]
            == s3.S3A_COMMITTER_FACTORY
        )
        assert plan.session_conf == {
            "spark.sql.sources.commitProtocolClass": PATH_OUTPUT_COMMIT_PROTOCOL,
            "spark.sql.parquet.output.committer.class": s3.BINDING_PARQUET_COMMITTER,
        }
    # Partitioned appends add files to their partitions: magic too.
    assert commit_plan("append", True, s3a_committers=True).committer == "magic"


def test_partition_overwrite_replaces_only_written_partitions_without_spark_deleting() -> None:
    plan = commit_plan("overwrite", True, s3a_committers=True, staging_path="file:///tmp/st")
    assert plan.committer == "partitioned"
    # Spark must not delete the table first: the committer replaces partitions at commit.
    assert plan.save_mode == "append"
    assert plan.write_options["fs.s3a.committer.staging.conflict-mode"] == "replace"
    assert plan.write_options[s3.STAGING_TMP_PATH] == "file:///tmp/st"
    # PathOutputCommitProtocol refuses Spark's dynamic overwrite with S3A committers.
    assert plan.write_options["partitionOverwriteMode"] == "static"
    assert (
        s3.STAGING_TMP_PATH not in commit_plan("overwrite", True, s3a_committers=True).write_options
    )


def test_without_spark_hadoop_cloud_the_fallback_never_writes_in_place() -> None:
    for mode, partitioned in [("append", False), ("overwrite", False), ("overwrite", True)]:
        plan = commit_plan(mode, partitioned, s3a_committers=False)
        assert plan.committer == "file" and plan.save_mode == mode
        assert plan.session_conf == {}
        # Pinned to FileOutputCommitter: an S3A factory bound globally would make Spark's
        # default protocol write text formats straight into the destination.
        assert (
            plan.write_options["mapreduce.outputcommitter.factory.scheme.s3a"]
            == s3.FILE_COMMITTER_FACTORY
        )
        assert plan.write_options["mapreduce.fileoutputcommitter.algorithm.version"] == "1"
    assert (
        commit_plan("overwrite", True, s3a_committers=False).write_options["partitionOverwriteMode"]
        == "dynamic"
    )


def test_committer_option_keys_survive_spark_lower_casing_write_options() -> None:
    for plan in (
        commit_plan("overwrite", True, s3a_committers=True, staging_path="file:///x"),
        commit_plan("append", False, s3a_committers=True),
    ):
        hadoop_keys = [k for k in plan.write_options if k != "partitionOverwriteMode"]
        assert all(k == k.lower() for k in hadoop_keys)


class FakeContext:
    def __init__(self, master: str) -> None:
        self.master = master


class FakeSession:
    def __init__(self, master: str) -> None:
        self.sparkContext = FakeContext(master)


def test_staging_path_local_default_cluster_hdfs_and_refusal() -> None:
    local: Any = FakeSession("local[2]")
    cluster: Any = FakeSession("spark://10.0.0.1:7077")
    path = s3.staging_path(local, FakeConf())
    assert path is not None and path.startswith("file:///") and path.endswith("etlc-s3a-staging")
    assert s3.staging_path(local, FakeConf(**{s3.STAGING_TMP_PATH: "hdfs://nn/st"})) is None
    # core-default.xml's relative default would land under the current directory: replaced.
    assert s3.staging_path(local, FakeConf(**{s3.STAGING_TMP_PATH: "tmp/staging"})) == path
    assert s3.staging_path(cluster, FakeConf(**{"fs.defaultFS": "hdfs://nn:8020"})) is None
    with pytest.raises(ConfigurationError, match=r"staging\.tmp\.path"):
        s3.staging_path(cluster, FakeConf())


class FakeConfStore:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def unset(self, key: str) -> None:
        self.values.pop(key, None)


def test_session_conf_is_set_for_the_write_and_restored_even_on_failure() -> None:
    spark: Any = type("S", (), {})()
    spark.conf = FakeConfStore({"spark.sql.parquet.output.committer.class": "old"})
    conf = {
        "spark.sql.parquet.output.committer.class": "new",
        "spark.sql.sources.commitProtocolClass": "proto",
    }
    with pytest.raises(RuntimeError), session_conf(spark, conf):
        assert spark.conf.values["spark.sql.sources.commitProtocolClass"] == "proto"
        raise RuntimeError("write failed")
    assert spark.conf.values == {"spark.sql.parquet.output.committer.class": "old"}


# --- errors --------------------------------------------------------------------------------


class FakeClass:
    def __init__(self, name: str, parent: FakeClass | None = None) -> None:
        self.name, self.parent = name, parent

    def getName(self) -> str:  # noqa: N802 - mirrors java.lang.Class
        return self.name

    def getSuperclass(self) -> FakeClass | None:  # noqa: N802
        return self.parent


THROWABLE = FakeClass("java.lang.Throwable")
IO = FakeClass("java.io.IOException", FakeClass("java.lang.Exception", THROWABLE))
CONNECT = FakeClass("java.net.ConnectException", FakeClass("java.net.SocketException", IO))


class FakeJava:
    def __init__(self, cls: FakeClass, cause: FakeJava | None = None) -> None:
        self.cls, self.cause = cls, cause

    def getClass(self) -> FakeClass:  # noqa: N802
        return self.cls

    def getCause(self) -> FakeJava | None:  # noqa: N802
        return self.cause


class CapturedError(Exception):
    def __init__(self, origin: FakeJava, condition: str | None = None) -> None:
        super().__init__(f"listObjects() on s3a://raw: secret.key={SECRET} in the JVM's text")
        self._origin = origin
        self.condition = condition

    def getCondition(self) -> str | None:  # noqa: N802 - mirrors PySparkException
        return self.condition


def java(name: str, parent: FakeClass = IO, cause: FakeJava | None = None) -> FakeJava:
    return FakeJava(FakeClass(name, parent), cause)


PATH = "s3a://raw/orders/*.csv"


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (
            CapturedError(
                java(
                    "org.apache.spark.SparkException",
                    cause=java("java.nio.file.AccessDeniedException"),
                )
            ),
            AuthenticationError,
            ["denied", PATH],
        ),
        (
            CapturedError(java("org.apache.hadoop.fs.s3a.auth.NoAuthWithAWSException")),
            AuthenticationError,
            ["denied"],
        ),
        (
            CapturedError(java("org.apache.hadoop.fs.s3a.UnknownStoreException")),
            TerminalError,
            ["bucket", PATH],
        ),
        (
            CapturedError(java("org.apache.spark.sql.AnalysisException"), "PATH_NOT_FOUND"),
            TerminalError,
            [f"{PATH} does not exist"],
        ),
        (
            CapturedError(java("java.io.FileNotFoundException")),
            TerminalError,
            ["does not exist"],
        ),
        (
            # The AWS SDK's Apache client raises a subclass of ConnectException: superclasses count.
            CapturedError(
                java(
                    "java.net.ConnectException",
                    CONNECT.parent or IO,
                    java(
                        "software.amazon.awssdk.core.exception.SdkClientException",
                        cause=java("org.apache.http.conn.HttpHostConnectException", CONNECT),
                    ),
                )
            ),
            TransientError,
            ["unreachable", "ConnectException"],
        ),
        (
            CapturedError(java("org.apache.hadoop.fs.s3a.AWSStatus500Exception")),
            TransientError,
            ["AWSStatus500Exception"],
        ),
        (
            CapturedError(java("org.apache.hadoop.fs.s3a.AWSServiceThrottledException")),
            TransientError,
            ["AWSServiceThrottledException"],
        ),
    ],
)
def test_errors_are_classified_by_java_type_with_etlc_text(
    error: Exception, expected: type, words: list[str]
) -> None:
    mapped = classify_error(error, lake(), PATH)
    assert type(mapped) is expected
    text = str(mapped)
    assert "lake" in text and SECRET not in text and "secret.key" not in text
    for word in words:
        assert word in text


def test_an_inherited_class_counts_as_its_superclass() -> None:
    err = CapturedError(java("org.apache.http.conn.HttpHostConnectException", CONNECT))
    assert "java.net.ConnectException" in java_types(err)
    assert isinstance(classify_error(err, lake(), PATH), TransientError)


def test_other_failures_are_left_to_the_pipeline() -> None:
    err = CapturedError(java("org.apache.spark.SparkException"))
    assert classify_error(err, lake(), PATH) is None
    assert classify_error(ValueError("x"), lake(), PATH) is None

    def fail() -> None:
        raise err

    with pytest.raises(CapturedError):
        translate_errors(fail, lake(), PATH)


def test_translate_errors_raises_the_typed_error_without_the_jvm_text() -> None:
    def denied() -> None:
        raise CapturedError(java("java.nio.file.AccessDeniedException"))

    with pytest.raises(AuthenticationError) as info:
        translate_errors(denied, lake(), PATH)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert SECRET not in str(info.value)
    assert translate_errors(lambda: 3, lake(), PATH) == 3


def test_a_dead_gateway_stops_the_walk() -> None:
    class Dead:
        def getClass(self) -> Any:  # noqa: N802
            raise ConnectionError("gateway gone")

    err = CapturedError(Dead())  # type: ignore[arg-type]
    assert java_types(err) == []
    assert classify_error(err, lake(), PATH) is None
