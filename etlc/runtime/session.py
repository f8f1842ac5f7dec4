"""The SparkSession a driver runs on: whatever spark-submit set up, plus the environment's conf."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from etlc.runtime.environment import Environment
from etlc.runtime.logs import RunContext
from etlc.runtime.submit_args import widened
from etlc.vault.redaction import SPARK_REDACTION_CONF

# Read by the JVM stage metrics listener (etlc.jvm.metrics.StageMetricsListener) when Spark
# constructs it, so its lines carry the same pipeline and run id as the Python side's.
PIPELINE_CONF = "spark.etlc.pipeline"
RUN_ID_CONF = "spark.etlc.runId"
# The JVM stage lines' destinations (etlc.jvm.metrics.StageSink).
METRICS_FILE_CONF = "spark.etlc.metrics.file"
METRICS_STDOUT_CONF = "spark.etlc.metrics.stdout"
# A job property rather than conf: the attempt changes within one session when a run retries.
ATTEMPT_PROPERTY = "etlc.attempt"
# Spark substitutes `${env:NAME}`, `${system:name}` and `${spark.conf.key}` in SQL text before
# parsing it, string literals included: `'${env:PGPASSWORD}'` in a definition's expression
# would write a secret of the driver's environment into the data. The compiler checks the SQL
# it emits as written, so nothing may rewrite it at run time.
SQL_SUBSTITUTION_CONF = ("spark.sql.variable.substitute", "false")


def create_session(app_name: str, env: Environment, context: RunContext) -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
    # Also set by the generated submit command; here for drivers started without it.
    for key, value in SPARK_REDACTION_CONF:
        builder = builder.config(key, value)
    launched = launch_conf_keys()
    ours = dict(SPARK_REDACTION_CONF)
    for key, value in sorted(env.spark_conf.items()):
        # The submit command passes the file's settings as --conf, where a user's own --conf
        # after them wins: setting them again here would undo that.
        if key not in launched:
            builder = builder.config(key, widened(key, value, ours))
    # Last, so an environment file cannot tag the run with another's identity, or point the
    # stage lines at a file of its choosing.
    builder = builder.config(PIPELINE_CONF, context.pipeline).config(RUN_ID_CONF, context.run_id)
    builder = builder.config(METRICS_FILE_CONF, context.run_file or "")
    builder = builder.config(METRICS_STDOUT_CONF, str(context.stdout_json).lower())
    spark = builder.getOrCreate()
    # After the environment's conf, which may not switch it back on.
    spark.conf.set(*SQL_SUBSTITUTION_CONF)
    spark.sparkContext.setLogLevel(env.settings.spark_log_level)
    quiet_repeated_logs(spark)
    return spark


# Spark's own lines that repeat what etlc's JSON lines say better, with the level each keeps.
QUIET_LOGGERS = (
    # "Query ... terminated with error": etlc logs the failure itself (attempt_failed, then
    # run_finished), classified and named; Spark's line adds the JVM stack and, when a load's
    # batch function raised, that function's Python traceback. Both names: Spark 4.1 moved it.
    ("org.apache.spark.sql.execution.streaming.runtime.MicroBatchExecution", "OFF"),
    ("org.apache.spark.sql.execution.streaming.MicroBatchExecution", "OFF"),
    # Once per Avro boundary and micro-batch: a required field of the schema written from a
    # nullable column. The boundary checks every record and names the one that breaks it.
    ("org.apache.spark.sql.avro.AvroSerializer", "ERROR"),
)


def quiet_repeated_logs(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # Spark classic: the driver runs beside its JVM
    log4j = jvm.org.apache.logging.log4j
    for name, level in QUIET_LOGGERS:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.getLevel(level))


def launch_conf_keys() -> set[str]:
    """The Spark settings the driver's JVM was started with (spark-submit's --conf)."""
    SparkContext._ensure_initialized()  # the gateway only: no context yet
    return {key for key, _ in SparkConf().getAll()}


@contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """``conf`` set on the session while a write is planned and run, then as it was."""
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def tag_attempt(spark: SparkSession, context: RunContext) -> None:
    """Mark the Spark jobs this thread starts from now on (and the threads it starts, such as
    streaming queries) with the run's current attempt."""
    spark.sparkContext.setLocalProperty(ATTEMPT_PROPERTY, str(context.attempt))
