"""The Hadoop file system a path lives on, reached through the session's JVM as Spark reaches
it: a path without a scheme is on the cluster's default file system (HDFS on YARN)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def file_system(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """The JVM's package view (for ``jvm.org.apache.hadoop.fs.Path``) and ``path``'s
    ``FileSystem``, both Py4J proxies."""
    jvm = spark.sparkContext._jvm
    jsc = spark.sparkContext._jsc
    assert jvm is not None and jsc is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return jvm, hpath.getFileSystem(jsc.hadoopConfiguration())
