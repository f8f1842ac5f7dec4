"""The SparkSession a driver runs on: whatever spark-submit set up, plus the environment's conf."""

from __future__ import annotations

from pyspark.sql import SparkSession

from etlc.runtime.environment import Environment
from etlc.vault.redaction import SPARK_REDACTION_CONF


def create_session(app_name: str, env: Environment) -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
    # Also set by the generated submit command; here for drivers started without it.
    for key, value in SPARK_REDACTION_CONF:
        builder = builder.config(key, value)
    for key, value in sorted(env.spark_conf.items()):
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(env.settings.spark_log_level)
    return spark
