"""A key added to the environment schema is readable on both sides with no Scala edit.

The JVM module is built here from a temporary copy of the schemas (into a folder of the test's
own, never jvm/etlc-jvm/target), so the Scala classes the driver would ship are the ones the
generator writes from that copy; the Python side checks files against the same copy.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etlc.codegen.render import jvm_jar_name
from etlc.dsl import environments
from etlc.dsl.parse import parse_text

ROOT = Path(__file__).resolve().parents[2]


def with_new_keys(schema: dict[str, Any]) -> dict[str, Any]:
    """The environment schema and two keys it never had: a setting and a Kafka property."""
    defs = schema["$defs"]
    defs["settings"]["properties"]["sample_rows_max"] = {
        "type": "integer",
        "minimum": 1,
        "default": 7,
        "description": "added by a test",
    }
    defs["kafka_profile"]["properties"]["client_rack"] = {"type": "string", "minLength": 1}
    return schema


def scala_reading(classes: Path, env_file: Path) -> dict[str, Any]:
    spec = importlib.util.find_spec("pyspark")
    assert spec and spec.submodule_search_locations
    spark_jars = Path(spec.submodule_search_locations[0]) / "jars"
    java = shutil.which("java")
    assert java
    command = [java, "-cp", f"{classes}:{spark_jars}/*", "etlc.jvm.config.ConfigDump"]
    done = subprocess.run(
        [*command, "--environment", str(env_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reading: dict[str, Any] = json.loads(done.stdout)["environments"][str(env_file)]
    return reading


def python_findings(schema: dict[str, Any], env_file: Path, monkeypatch: Any) -> list[str]:
    monkeypatch.setattr(environments, "environment_schema", lambda: schema)
    tree, problems = parse_text(env_file.read_text(encoding="utf-8"), str(env_file), "json")
    assert tree is not None and problems == []
    return [d.message for d in environments.lint_tree(tree, str(env_file)) if d.is_error]


def test_a_key_added_to_the_environment_schema_is_read_on_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas", schemas)
    env_schema = schemas / "environment.schema.json"
    schema = with_new_keys(json.loads(env_schema.read_text(encoding="utf-8")))
    env_schema.write_text(json.dumps(schema, indent=2), encoding="utf-8")
    build = tmp_path / "build"
    maven = shutil.which("mvn")
    assert maven, "Maven is needed to build the JVM module"
    pom = ROOT / "jvm" / "etlc-jvm" / "pom.xml"
    properties = [f"-Detlc.schemas={schemas}", f"-Detlc.build.directory={build}"]
    properties.append(f"-Detlc.python={sys.executable}")
    done = subprocess.run(
        [maven, "-q", "-B", "-o", "-f", str(pom), *properties, "compile"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    generated = (build / "generated-sources" / "etlc-config" / "etlc" / "jvm" / "config").glob("*")
    assert sorted(p.name for p in generated) == ["EnvironmentConfig.scala", "PipelineConfig.scala"]

    env = tmp_path / "prod.json"
    doc = {
        "etlc": {"sample_rows_max": 9},
        "connections": {
            "events": {"system": "kafka", "bootstrap_servers": "b:9092", "client_rack": "r1"}
        },
    }
    env.write_text(json.dumps(doc), encoding="utf-8")
    scala = scala_reading(build / "classes", env)
    assert scala["etlc"]["sample_rows_max"] == 9
    assert scala["connections"]["events"]["client_rack"] == "r1"
    assert python_findings(schema, env, monkeypatch) == []

    # Left out, the setting is the schema's default; a value its rules refuse names its path.
    env.write_text(json.dumps({"etlc": {}}), encoding="utf-8")
    assert scala_reading(build / "classes", env)["etlc"]["sample_rows_max"] == 7
    env.write_text(json.dumps({"etlc": {"sample_rows_max": 0}}), encoding="utf-8")
    assert scala_reading(build / "classes", env) == {
        "error": f"{env}: $.etlc.sample_rows_max: must be at least 1"
    }
    assert python_findings(schema, env, monkeypatch) != []

    # The module as built from the project's own schemas knows neither key.
    shipped = ROOT / "jars" / jvm_jar_name()
    env.write_text(json.dumps(doc), encoding="utf-8")
    assert scala_reading(shipped, env)["error"].startswith(
        f'{env}: $.etlc: unknown key "sample_rows_max"'
    )
