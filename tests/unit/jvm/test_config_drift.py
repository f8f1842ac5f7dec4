"""The JVM side's configuration classes (jvm/etlc-jvm, etlc.jvm.config) cannot drift from the
Python side: every example definition and environment file in pipelines/ loads on both sides
to the same values, and every key of schemas/pipeline.schema.json has its field in the Scala
classes (and, where the schema closes an object, every field its key).

The Scala side answers through ``etlc.jvm.config.ConfigDump``, run once with the jar that
`make setup` builds and Spark's own jars (Scala, Jackson) from pyspark.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import etlc
from etlc.codegen.render import jvm_jar_name
from etlc.dsl import ast
from etlc.dsl.checker import definition_ast
from etlc.dsl.parse import parse_file
from etlc.dsl.steps.jdbc import MARIADB_JDBC, POSTGRES_JDBC
from etlc.dsl.tree import to_python
from etlc.profiles import KafkaProfile, S3Profile
from etlc.runtime import environment_file
from etlc.runtime.environment import Environment, Settings
from etlc.vault.backends import EnvVault, FileVault, backend_options

ROOT = Path(__file__).resolve().parents[3]
DEFINITIONS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pipelines").glob("*.json"))
ENVIRONMENTS = sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "pipelines" / "env").glob("*.json")
)
SCHEMA = json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text(encoding="utf-8"))
ENV_SCHEMA = json.loads((ROOT / "schemas" / "environment.schema.json").read_text(encoding="utf-8"))
SETTINGS = ENV_SCHEMA["$defs"]["settings"]["properties"]


@pytest.fixture(scope="module")
def jvm() -> dict[str, Any]:
    """What the Scala side makes of every file, and the fields of its classes."""
    jar = ROOT / "jars" / jvm_jar_name()
    if not jar.is_file():
        pytest.fail(f"{jar} is missing: run `make setup` (it builds jvm/etlc-jvm)")
    java = shutil.which("java")
    spec = importlib.util.find_spec("pyspark")
    assert java, "no `java` on PATH"
    assert spec and spec.submodule_search_locations
    spark_jars = Path(spec.submodule_search_locations[0]) / "jars"
    args = [a for f in DEFINITIONS for a in ("--definition", f)]
    args += [a for f in ENVIRONMENTS for a in ("--environment", f)]
    done = subprocess.run(
        [java, "-cp", f"{jar}:{spark_jars}/*", "etlc.jvm.config.ConfigDump", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dump: dict[str, Any] = json.loads(done.stdout)
    return dump


def normalized(value: Any) -> Any:
    """Absent, null and empty are one thing on both sides (`group_by: []` is no grouping)."""
    if isinstance(value, Mapping):
        pairs = ((k, normalized(v)) for k, v in value.items())
        return {k: v for k, v in pairs if v not in (None, [], {})}
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    return value


def ast_values(node: Any) -> Any:
    """The Python side's AST as plain values, under the definition's own keys."""
    if isinstance(node, ast.Name | ast.Number | ast.Flag):
        return node.value
    if isinstance(node, ast.Expr):
        return node.text
    if isinstance(node, ast.JsonValue):  # a JVM step's options, kept as written
        return node.value
    if isinstance(node, tuple):
        return [ast_values(v) for v in node]
    if isinstance(node, Mapping):
        return {k: ast_values(v) for k, v in node.items()}
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return {
            ast.json_key(f.name): ast_values(getattr(node, f.name))
            for f in dataclasses.fields(node)
            if f.name not in ("span", "file")
        }
    return node


def resolved(node: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref`` chain merged in, the referring side winning."""
    merged = dict(node)
    while "$ref" in merged:
        name = merged.pop("$ref").removeprefix("#/$defs/")
        merged = {**schema["$defs"][name], **merged}
    return merged


def with_defaults(value: Any, node: Mapping[str, Any], schema: Mapping[str, Any]) -> Any:
    """``value`` with the schema's ``default`` wherever it leaves a key out (or null): the
    Scala classes hold the default, the Python side applies it where it uses the key."""
    node = resolved(node, schema)
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [with_defaults(v, node["items"], schema) for v in value]
    if not isinstance(value, dict):
        return value
    for clause in node.get("allOf", []):  # a family: its kind's object, by the chosen key
        then = clause.get("then", {})
        for key, test in clause.get("if", {}).get("properties", {}).items():
            chosen = value.get(key, node["properties"][key].get("default"))
            if "$ref" in then and chosen == test.get("const"):
                node = {**node, **resolved(then, schema)}
    out = dict(value)
    for key, prop in node.get("properties", {}).items():
        sub = resolved(prop, schema)
        if out.get(key) is None and "default" in sub:
            out[key] = sub["default"]
        elif out.get(key) is not None:
            out[key] = with_defaults(out[key], sub, schema)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and not node.get("properties"):
        out = {k: with_defaults(v, extra, schema) for k, v in out.items()}
    return out


def python_definition(path: str) -> dict[str, Any]:
    pipeline = definition_ast(ROOT / path)
    assert pipeline is not None, f"{path} does not parse on the Python side"
    values = ast_values(pipeline)
    for plural, section in (
        ("extracts", "extract"),
        ("transforms", "transform"),
        ("loads", "load"),
    ):
        values[section] = values.pop(plural)
    # The AST keeps no editor-only keys; they are the document's own.
    tree, _, _ = parse_file(ROOT / path)
    assert tree is not None
    raw = to_python(tree)
    values.update({k: raw.get(k) for k in ("$schema", "description")})
    return dict(normalized(with_defaults(values, SCHEMA, SCHEMA)))


def python_environment(path: str) -> dict[str, Any]:
    env = Environment.load(ROOT / path, environ={})
    raw = json.loads((ROOT / path).read_text(encoding="utf-8"))
    vault: dict[str, Any] = {"backend": env.vault.kind}
    if isinstance(env.vault, FileVault) and "path" in raw.get("vault", {}):
        vault["path"] = str(env.vault.path)
    if isinstance(env.vault, EnvVault) and "prefix" in raw.get("vault", {}):
        vault["prefix"] = env.vault.prefix
    connections = {}
    for name, profile in env.profiles.items():
        # A profile's `properties` reach clients as text, as etlc.profiles makes them.
        props = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in profile.get("properties", {}).items()
        }
        connections[name] = {**profile, "properties": props}
    values = {
        "$schema": raw.get("$schema"),
        "description": raw.get("description"),
        "variables": dict(env.variables),
        "spark": dict(env.spark_conf),
        # The stage and checkpoint folders' default is the project's: the schema has none.
        "etlc": {
            k: v
            for k, v in dataclasses.asdict(env.settings).items()
            if k in raw.get("etlc", {}) or "default" in SETTINGS[k]
        },
        "vault": vault,
        "connections": connections,
    }
    return dict(normalized(with_defaults(values, ENV_SCHEMA, ENV_SCHEMA)))


@pytest.mark.parametrize("path", DEFINITIONS)
def test_every_example_definition_loads_alike_on_both_sides(jvm: dict[str, Any], path: str) -> None:
    scala = jvm["definitions"][path]
    assert "error" not in scala, scala.get("error")
    assert normalized(scala) == python_definition(path)


@pytest.mark.parametrize("path", ENVIRONMENTS)
def test_every_environment_file_loads_alike_on_both_sides(jvm: dict[str, Any], path: str) -> None:
    scala = jvm["environments"][path]
    assert "error" not in scala, scala.get("error")
    assert normalized(scala) == python_environment(path)


def object_schemas(schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every object the schema describes (one with `properties`), by JSON pointer. `if`
    clauses are skipped: they test a value, they describe no object of their own."""
    found: dict[str, Mapping[str, Any]] = {}

    def walk(node: Any, pointer: str) -> None:
        if not isinstance(node, Mapping):
            return
        if isinstance(node.get("properties"), Mapping):
            found[pointer] = node
            for key, sub in node["properties"].items():
                walk(sub, f"{pointer}/properties/{key}")
        for name, sub in node.get("$defs", {}).items():
            walk(sub, f"{pointer}/$defs/{name}")
        for key in ("items", "additionalProperties", "then", "else", "not"):
            walk(node.get(key), f"{pointer}/{key}")
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for i, sub in enumerate(node.get(key, [])):
                walk(sub, f"{pointer}/{key}/{i}")

    walk(schema, "#")
    return found


def test_every_object_of_the_schema_has_its_scala_class(jvm: dict[str, Any]) -> None:
    schema_objects = set(object_schemas(SCHEMA))
    bound = set(jvm["schema_bindings"])
    assert schema_objects - bound == set(), "bind these to a class in SchemaBindings.scala"
    assert bound - schema_objects == set(), "SchemaBindings.scala names places the schema lacks"


def test_every_key_of_the_schema_has_its_field_in_the_scala_classes(jvm: dict[str, Any]) -> None:
    problems = []
    for pointer, obj in sorted(object_schemas(SCHEMA).items()):
        keys = set(obj["properties"])
        for cls in jvm["schema_bindings"].get(pointer, []):
            fields = set(cls["fields"])
            if missing := sorted(keys - fields):
                problems.append(f"{pointer}: {cls['class']} has no field for {missing}")
            if obj.get("additionalProperties") is False and (extra := sorted(fields - keys)):
                problems.append(f"{pointer}: {cls['class']} has fields the schema lacks: {extra}")
    assert problems == []


def test_the_environment_classes_have_the_python_sides_keys(jvm: dict[str, Any]) -> None:
    classes = {name: set(c["fields"]) for name, c in jvm["environment_classes"].items()}
    assert classes["environment"] == environment_file.KNOWN_KEYS
    assert classes["etlc"] == {f.name for f in dataclasses.fields(Settings)}
    for backend, options in backend_options().items():
        assert classes[f"vault.{backend}"] == {"backend", *options}
    assert classes["kafka"] == KafkaProfile.document_keys()
    assert classes["s3"] == S3Profile.document_keys()


def test_the_jar_is_versioned_with_etlc() -> None:
    pom = (ROOT / "jvm" / "etlc-jvm" / "pom.xml").read_text(encoding="utf-8")
    version = re.search(r"<artifactId>etlc-jvm</artifactId>\s*<version>([^<]+)</version>", pom)
    assert version and version.group(1) == etlc.__version__


def test_every_object_of_the_environment_schema_has_its_scala_class(jvm: dict[str, Any]) -> None:
    schema_objects = set(object_schemas(ENV_SCHEMA))
    bound = set(jvm["environment_schema_bindings"])
    assert schema_objects - bound == set(), "bind these in SchemaBindings.environmentSchema"
    assert bound - schema_objects == set(), (
        "SchemaBindings.environmentSchema names places the schema lacks"
    )


def test_every_key_of_the_environment_schema_has_its_field_and_no_field_lacks_its_key(
    jvm: dict[str, Any],
) -> None:
    """A class bound to several objects (VaultSettings to every backend's) has a field for each
    key of each, and no field that none of them has."""
    objects = object_schemas(ENV_SCHEMA)
    keys: dict[str, set[str]] = {}
    fields: dict[str, set[str]] = {}
    problems = []
    for pointer, classes in sorted(jvm["environment_schema_bindings"].items()):
        for cls in classes:
            keys.setdefault(cls["class"], set()).update(objects[pointer]["properties"])
            fields[cls["class"]] = set(cls["fields"])
            if missing := sorted(set(objects[pointer]["properties"]) - set(cls["fields"])):
                problems.append(f"{pointer}: {cls['class']} has no field for {missing}")
    for name, own in sorted(fields.items()):
        if extra := sorted(own - keys[name]):
            problems.append(f"{name} has fields the environment schema lacks: {extra}")
    assert problems == []


def test_the_jar_compiles_against_the_jdbc_drivers_the_steps_ship() -> None:
    # etlc.jvm.load calls the drivers' copy APIs: a driver bumped in the plugin table alone
    # would ship a jar built against another release.
    pom = (ROOT / "jvm" / "etlc-jvm" / "pom.xml").read_text(encoding="utf-8")
    pinned = dict(re.findall(r"<(postgresql|mariadb)\.version>([^<]+)<", pom))
    assert pinned == {"postgresql": POSTGRES_JDBC.version, "mariadb": MARIADB_JDBC.version}
