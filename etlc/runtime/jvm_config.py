"""The environment file and the definition, read by etlc's Scala configuration classes.

``etlc.jvm.config`` (the JVM module every submit ships; its classes are generated from the
schemas) types each value: a port must be an integer within 1..65535 or its text, a credential
a vault reference, a vault backend takes its own options only. The driver hands the classes
the file's bytes through the gateway spark-submit started, before the SparkSession exists, and
builds its :class:`Environment` from what they return, so the run uses the values the classes
accepted, with the schema's defaults they filled in. A file the classes refuse ends the run
before any Spark job, with the file and the JSON path of the value
(``env/prod.json: $.connections.warehouse.port: must be at most 65535``) and never the value
itself (the classes' messages hold none).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from py4j.java_gateway import JavaPackage
from py4j.protocol import Py4JError, Py4JJavaError
from pyspark import SparkContext

from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, java_cause, summary

CONFIG_EXCEPTION = "etlc.jvm.config.ConfigException"


def load_environment(
    path: Path, defaults: Settings, environ: Mapping[str, str] = os.environ
) -> Environment:
    """The environment file as ``EnvironmentConfig`` reads it; ``defaults`` are the settings
    neither the file nor the schema sets (the project's stage and checkpoint folders)."""
    return Environment.from_document(present(read_environment(path)), path, environ, defaults)


def read_environment(path: Path) -> dict[str, Any]:
    """``EnvironmentConfig``'s reading of the file, as JSON (a key left out is null, or the
    schema's default); :class:`ConfigurationError` when the classes refuse it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"environment file {path} not found") from None
    except OSError as exc:
        raise ConfigurationError(f"environment file {path}: cannot read ({exc.strerror})") from None
    return _read("EnvironmentConfig", data, str(path))


def check_definition(definition: Mapping[str, Any], file: str) -> None:
    """Raise :class:`ConfigurationError` unless ``PipelineConfig`` reads the definition a
    driver was compiled from (``file`` names it in messages): a driver edited by hand, or
    compiled by an etlc whose schema the shipped JVM module does not know, stops here."""
    _read("PipelineConfig", json.dumps(definition).encode("utf-8"), file)


def _read(kind: str, data: bytes, file: str) -> dict[str, Any]:
    """The document ``data`` as class ``kind`` of ``etlc.jvm.config`` reads it, as JSON."""
    config = _config_package(file)
    try:
        typed = getattr(config, kind).read(config.Json.parse(bytearray(data), file))
        doc: dict[str, Any] = json.loads(str(config.Canonical.render(typed)))
        return doc
    except Py4JJavaError as exc:
        refused = java_cause(exc, CONFIG_EXCEPTION)
        if refused is not None:
            raise ConfigurationError(str(refused.getMessage())) from None
        raise ConfigurationError(
            f"{file}: etlc's configuration classes failed to read it ({summary(exc)})"
        ) from None
    except Py4JError as exc:
        raise ConfigurationError(
            f"{file}: the driver's JVM did not answer ({summary(exc)})"
        ) from None


def present(doc: Any) -> Any:
    """``doc`` without its null members, at every level: the keys the file left out."""
    if isinstance(doc, Mapping):
        return {k: present(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [present(v) for v in doc]
    return doc


def _config_package(file: str) -> Any:
    SparkContext._ensure_initialized()  # the gateway spark-submit started: no context yet
    jvm: Any = SparkContext._jvm
    config = jvm.etlc.jvm.config
    # py4j answers a class it cannot load with a package of that name.
    if isinstance(config.EnvironmentConfig, JavaPackage):
        raise ConfigurationError(
            f"{file}: etlc's JVM module (etlc-jvm) is not on the driver's class path; "
            "submit with the generated submit command, which ships it"
        )
    return config
