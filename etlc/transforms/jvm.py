"""jvm: a transform implemented by a JVM class (``etlc.jvm.transform.Transform``).

Python only hands the input's plan to the class, through Spark's own py4j gateway, and wraps
the plan it returns: every record is processed inside the JVM, no Python runs per record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame

from etlc.runtime.errors import ConfigurationError, EtlcError, classify, java_cause
from etlc.runtime.strategies import Transform

# The entry point of etlc's JVM module (etlc-jvm[_2.12]-<version>.jar, shipped by every submit
# command): loads the class, reads the step's configuration, checks its options, applies it.
ENTRY = "etlc.jvm.transform.JvmSteps"
# What the entry throws for a problem of the step's configuration (class, options): terminal.
STEP_ERROR = "etlc.jvm.transform.JvmStepException"


def jvm_transform(
    class_name: str, step: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> Transform:
    """The transform that ``class_name`` implements, configured by ``step`` (the step as the
    definition wrote it, ``${var}``s resolved) and given the environment's ``variables``."""
    step_json = json.dumps(step, ensure_ascii=False)
    variables_json = json.dumps(dict(variables or {}), ensure_ascii=False)

    def apply(df: DataFrame) -> DataFrame:
        spark = df.sparkSession
        gateway = spark._jvm
        if gateway is None:  # a Spark Connect session has no JVM of its own to call into
            raise ConfigurationError(f"jvm class `{class_name}` needs a classic Spark session")
        try:
            jdf = gateway.etlc.jvm.transform.JvmSteps.apply(
                df._jdf, class_name, step_json, variables_json
            )
        except TypeError as exc:  # py4j found no such class: a JavaPackage is not callable
            raise ConfigurationError(
                f"{ENTRY} is not on the JVM's classpath: ship etlc's JVM module for this Spark "
                "line's Scala, as the generated submit command does (`etlc jars` puts it in "
                "the project's jars folder)"
            ) from exc
        except Exception as exc:
            raise jvm_error(exc, class_name) from exc
        return DataFrame(jdf, spark)

    return apply


def jvm_error(exc: BaseException, class_name: str) -> EtlcError:
    """One etlc error for what the JVM threw: a configuration error for the step's own
    problems (class not found, bad options), else classified like any other failure."""
    cause = java_cause(exc, STEP_ERROR)
    if cause is not None:
        return ConfigurationError(f"jvm class `{class_name}`: {cause.getMessage()}")
    return classify(exc, None)
