"""The environment file read a second time, by etlc's Scala configuration classes.

``etlc.jvm.config.EnvironmentConfig`` (the JVM module every submit ships) types each value of
an environment file: a port must be an integer, a credential a vault reference, a vault backend
takes its own options only. The driver hands it the file's bytes through the gateway that
spark-submit started, before the SparkSession exists, so a file the Scala classes refuse ends
the run before any Spark job, with the file and the JSON path of the value
(``env/prod.json: $.connections.warehouse.port: expected integer, got string``) and never the
value itself (the classes' messages hold none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from py4j.java_gateway import JavaPackage
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark import SparkContext

from etlc.runtime.errors import ConfigurationError, java_cause, summary

CONFIG_EXCEPTION = "etlc.jvm.config.ConfigException"


def check_environment(path: Path) -> None:
    """Raise :class:`ConfigurationError` unless ``EnvironmentConfig`` reads the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror})") from None
    SparkContext._ensure_initialized()  # the gateway spark-submit started: no context yet
    jvm: Any = SparkContext._jvm
    config = jvm.etlc.jvm.config
    # py4j answers a class it cannot load with a package of that name.
    if isinstance(config.EnvironmentConfig, JavaPackage):
        raise ConfigurationError(
            f"{path}: etlc's JVM module (etlc-jvm) is not on the driver's class path; "
            "submit with the generated submit command, which ships it"
        )
    try:
        config.EnvironmentConfig.read(config.Json.parse(bytearray(data), str(path)))
    except Py4JJavaError as exc:
        refused = java_cause(exc, CONFIG_EXCEPTION)
        if refused is not None:
            raise ConfigurationError(str(refused.getMessage())) from None
        raise ConfigurationError(
            f"{path}: etlc's configuration classes failed to read it ({summary(exc)})"
        ) from None
    except Py4JError as exc:
        raise ConfigurationError(
            f"{path}: the driver's JVM did not answer ({summary(exc)})"
        ) from None
