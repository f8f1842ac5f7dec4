"""Environment files checked by lint: their schema, the diagnostics at the file's own line:col,
credentials never echoed, hostile files refused with the project-file codes, and the schema held
to what the runtime reads (Settings, the connectors' profile keys, the vault's backends)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from etlc import profiles
from etlc.connectors import jdbc, kafka, s3
from etlc.connectors.postgres import PostgresDialect
from etlc.dsl import environments
from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.diagnostics import Diagnostic, render
from etlc.dsl.environments import (
    EnvironmentCheck,
    check_environment,
    check_environments,
    environment_schema,
)
from etlc.dsl.project_files import MAX_FILE_BYTES
from etlc.dsl.schema_dialect import check_schema, compiled, unresolvable_ref
from etlc.dsl.tree import MAX_DEPTH
from etlc.profiles import (
    PROFILES,
    JdbcProfile,
    KafkaProfile,
    MySqlProfile,
    PostgresProfile,
    S3Profile,
)
from etlc.runtime import environment_file
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.hadoop_credentials import DEFAULT_ALIAS_PREFIX, HadoopCredentialVault
from etlc.vault.backends import EnvVault, FileVault, backend_kinds
from etlc.vault.reference import MAX_NAME_LENGTH, REFERENCE

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-canary-7f1d"
DEFS = environment_schema()["$defs"]


def lint(tmp_path: Path, text: str, name: str = "dev.json") -> EnvironmentCheck:
    env = tmp_path / "env"
    env.mkdir(exist_ok=True)
    (env / name).write_text(text, encoding="utf-8")
    return check_environment(env / name, (tmp_path,))


def lint_doc(tmp_path: Path, doc: Any) -> EnvironmentCheck:
    return lint(tmp_path, json.dumps(doc, indent=2))


def codes(checked: EnvironmentCheck) -> list[str]:
    return [d.code for d in checked.diagnostics]


def only(checked: EnvironmentCheck, code: str) -> Diagnostic:
    found = [d for d in checked.diagnostics if d.code == code]
    assert len(found) == 1, checked.diagnostics
    return found[0]


def at(d: Diagnostic) -> tuple[int, int]:
    return d.span.line, d.span.col


# --- the cases ------------------------------------------------------------------------


def test_a_misspelt_top_level_key_is_e601_at_its_own_position(tmp_path: Path) -> None:
    text = '{\n  "variables": {"a": "b"},\n  "sprak": {}\n}\n'
    checked = lint(tmp_path, text)
    d = only(checked, "E601")
    assert codes(checked) == ["E601"]
    assert at(d) == (3, 3) and d.span.file == str(tmp_path / "env" / "dev.json")
    assert d.hint == "did you mean `spark`?"
    assert d.param("key") == "sprak"
    assert (
        render(d, checked.source)
        .splitlines()[0]
        .endswith("dev.json:3:3: error[E601]: unknown key `sprak` at the top level")
    )


def test_a_kafka_profile_without_bootstrap_servers_fails_at_the_profile(tmp_path: Path) -> None:
    text = '{\n  "connections": {\n    "events": {"system": "kafka"}\n  }\n}\n'
    checked = lint(tmp_path, text)
    d = only(checked, "E603")
    assert codes(checked) == ["E603"]
    assert at(d) == (3, 15)
    assert d.param("key") == "bootstrap_servers"
    assert d.param("path") == "connections.events"


def test_an_unknown_etlc_setting_is_e601_with_did_you_mean(tmp_path: Path) -> None:
    d = only(lint_doc(tmp_path, {"etlc": {"stage_dri": ".etlc/stage"}}), "E601")
    assert d.hint == "did you mean `stage_dir`?"
    assert d.param("path") == "etlc"


def test_the_repository_environment_file_is_clean() -> None:
    checked = check_environment(ROOT / "pipelines" / "env" / "local.json", (ROOT,))
    assert checked.diagnostics == []
    assert checked.doc["$schema"] == "../../schemas/environment.schema.json"
    assert (ROOT / "pipelines" / "env" / checked.doc["$schema"]).resolve() == (
        ROOT / "schemas" / "environment.schema.json"
    )


ENV_FILES = sorted(
    p.relative_to(ROOT).as_posix()
    for pattern in (
        "pipelines/env/*.json",
        "bench/pipelines/env/*.json",
        "tests/**/env/*.json",
        "etlc/init_template/pipelines/env/*.json",  # what `etlc init` writes
    )
    for p in ROOT.glob(pattern)
)


# The corpus case of an environment file that is hostile on purpose.
HOSTILE_ENV_FILES = {
    "tests/unit/security/corpus/files_env_file_with_nul/pipelines/env/local.json": ["E006"]
}


@pytest.mark.parametrize("path", ENV_FILES)
def test_every_environment_file_in_the_repository_passes(path: str) -> None:
    """The stricter lint breaks none of them."""
    checked = check_environment(ROOT / path, (ROOT,))
    assert codes(checked) == HOSTILE_ENV_FILES.get(path, []), checked.diagnostics


def test_environment_files_are_found_in_the_repository() -> None:
    assert "pipelines/env/local.json" in ENV_FILES and len(ENV_FILES) > 50


# --- credentials --------------------------------------------------------------------------------


def test_a_literal_password_is_e501_and_never_shown(tmp_path: Path) -> None:
    doc = {
        "variables": {"crm_password": SECRET},
        "connections": {
            "db": {"system": "postgres", "host": "h", "database": "d", "user": "u",
                   "password": SECRET},
            "lake": {"system": "s3", "access_key": "vault://s3#a", "secret_key": SECRET},
        },
    }  # fmt: skip
    checked = lint_doc(tmp_path, doc)
    assert codes(checked) == ["E501", "E501", "E501"]
    assert [d.param("path") for d in checked.diagnostics] == [
        "variables.crm_password",
        "connections.db.password",
        "connections.lake.secret_key",  # not named like one, but the schema types it so
    ]
    for d in checked.diagnostics:
        assert SECRET not in d.message + d.hint + repr(d.params)


@pytest.mark.parametrize(
    "url", [f"http://user:{SECRET}@marquez/api", f"ftp://{SECRET}@h/x", f"file:///{SECRET}"]
)
def test_an_openlineage_url_lint_refuses_is_never_echoed(tmp_path: Path, url: str) -> None:
    """A URL may carry a user and password by mistake: neither the message nor the excerpt of
    the file under it repeats the value."""
    checked = lint_doc(tmp_path, {"etlc": {"openlineage_url": url}})
    [d] = checked.diagnostics
    assert d.param("path") == "etlc.openlineage_url"
    shown = render(d, checked.source)
    assert SECRET not in shown + repr(d.params) and "***" in shown
    assert lint_doc(tmp_path, {"etlc": {"openlineage_url": "https://m:5000/api/v1/lineage"}}).ok
    wrong_type = lint_doc(tmp_path, {"etlc": {"openlineage_url": [url]}})
    [d] = wrong_type.diagnostics
    assert SECRET not in render(d, wrong_type.source) and d.code == "E602"


@pytest.mark.parametrize("value", [1234, True, None, {"a": SECRET}])
def test_a_credential_that_is_not_text_is_e501_too(tmp_path: Path, value: Any) -> None:
    checked = lint_doc(tmp_path, {"variables": {"api_key": value}})
    assert "E501" in codes(checked)
    assert all(SECRET not in d.message for d in checked.diagnostics)


@pytest.mark.parametrize(
    "reference",
    [f"vault://{SECRET}", f"vault://db/crm#{SECRET}!", "vault://#k", "vault://a#" + "k" * 300],
)
def test_a_malformed_vault_reference_is_e502_and_never_shown(
    tmp_path: Path, reference: str
) -> None:
    doc = {
        "variables": {"crm": reference},
        "connections": {"db": {"system": "mysql", "host": "h", "database": "d", "user": "u",
                               "password": reference}},
    }  # fmt: skip
    checked = lint_doc(tmp_path, doc)
    assert codes(checked) == ["E502", "E502"]
    for d in checked.diagnostics:
        assert SECRET not in d.message + d.hint + repr(d.params)


def test_references_where_nothing_resolves_them_are_refused(tmp_path: Path) -> None:
    doc = {
        "spark": {"spark.foo": "vault://a#b", "spark.authenticate.secret": SECRET},
        "connections": {
            "db": {"system": "postgres", "host": "h", "database": "d",
                   "user": "vault://db#user", "password": "vault://db#password",
                   "properties": {"sslpassword": SECRET, "ssl": "vault://db#ssl"}},
        },
    }  # fmt: skip
    checked = lint_doc(tmp_path, doc)
    found = {(d.code, d.param("path")) for d in checked.diagnostics}
    assert found == {
        ("E604", 'spark["spark.foo"]'),
        ("E501", 'spark["spark.authenticate.secret"]'),
        ("E604", "connections.db.user"),
        ("E501", "connections.db.properties.sslpassword"),
        ("E604", "connections.db.properties.ssl"),
    }
    assert all(SECRET not in d.message + d.hint for d in checked.diagnostics)


def test_a_kafka_username_may_be_text_or_a_reference(tmp_path: Path) -> None:
    profile = {
        "system": "kafka",
        "bootstrap_servers": "k:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "password": "vault://kafka#password",
    }
    for username in ("etl", "vault://kafka#user"):
        doc = {"connections": {"events": {**profile, "username": username}}}
        assert codes(lint_doc(tmp_path, doc)) == []


# --- shapes and types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "code", "path"),
    [
        ({"variables": {"a": {"b": 1}}}, "E602", "variables.a"),
        ({"variables": {"a": None}}, "E602", "variables.a"),
        ({"variables": []}, "E602", "variables"),
        ({"spark": {"spark.sql.shuffle.partitions": [4]}}, "E602", 'spark["spark.sql.shuffle.partitions"]'),
        ({"etlc": {"sample_size": "20"}}, "E602", "etlc.sample_size"),
        ({"etlc": {"sample_size": 20.0}}, "E602", "etlc.sample_size"),
        ({"etlc": {"memory_warning_fraction": 1}}, "E602", "etlc.memory_warning_fraction"),
        ({"etlc": {"avro_boundary": "true"}}, "E602", "etlc.avro_boundary"),
        ({"etlc": {"spark_log_level": "LOUD"}}, "E604", "etlc.spark_log_level"),
        ({"vault": {"backend": "hashicorp"}}, "E604", "vault.backend"),
        ({"vault": {"backend": "env", "prefix": "lower"}}, "E604", "vault.prefix"),
        ({"vault": {"backend": "hadoop"}}, "E603", "vault"),
        ({"vault": {"backend": "hadoop", "provider_path": "/etlc.jceks"}}, "E604", "vault.provider_path"),
        ({"connections": {"x": 5}}, "E602", "connections.x"),
        ({"connections": {"x": {"system": "postgress"}}}, "E604", "connections.x.system"),
        ({"connections": {"x": {"host": "h"}}}, "E603", "connections.x"),
    ],
)  # fmt: skip
def test_wrong_types_and_values(tmp_path: Path, doc: Any, code: str, path: str) -> None:
    checked = lint_doc(tmp_path, doc)
    assert [(d.code, d.param("path")) for d in checked.diagnostics] == [(code, path)]


def test_the_vault_takes_only_its_backends_own_option(tmp_path: Path) -> None:
    d = only(lint_doc(tmp_path, {"vault": {"backend": "env", "path": "v.json"}}), "E601")
    assert d.param("key") == "path" and "`prefix`" in d.hint
    assert codes(lint_doc(tmp_path, {"vault": {"path": "v.json"}})) == []


def test_an_unknown_system_has_a_did_you_mean(tmp_path: Path) -> None:
    d = only(lint_doc(tmp_path, {"connections": {"db": {"system": "postgress"}}}), "E604")
    assert d.hint == "did you mean `postgres`?"


def db(**fields: Any) -> dict[str, Any]:
    profile = {"system": "postgres", "host": "db.example.com", "database": "d", "user": "u",
               "password": "vault://db#password"}  # fmt: skip
    return {"connections": {"db": {**profile, **fields}}}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"port": 0}, "E604"),
        ({"port": 65536}, "E604"),
        ({"port": "54x"}, "E604"),
        ({"port": 5432.0}, "E602"),
        ({"port": True}, "E602"),
        ({"host": "h/db?socketFactory=x"}, "E604"),
        ({"hots": "h"}, "E601"),
        ({"properties": {"sslmode": {"a": 1}}}, "E602"),
    ],
)
def test_database_profile_fields(tmp_path: Path, fields: dict[str, Any], code: str) -> None:
    assert codes(lint_doc(tmp_path, db(**fields))) == [code]


def test_an_unknown_profile_key_names_the_profiles_own_fields(tmp_path: Path) -> None:
    doc = {"connections": {"events": {"system": "kafka", "bootstrap_server": "k:9092"}}}
    checked = lint_doc(tmp_path, doc)
    unknown = only(checked, "E601")
    assert unknown.hint == "did you mean `bootstrap_servers`?"
    assert only(checked, "E603").param("key") == "bootstrap_servers"


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"security_protocol": "SASL_SSL"}, {("E603", "sasl_mechanism"), ("E603", "username"),
                                             ("E603", "password")}),
        ({"username": "u"}, {("E603", "security_protocol")}),
        ({"security_protocol": "SSL", "sasl_mechanism": "PLAIN"}, {("E604", None)}),
        ({"security_protocol": "TLS"}, {("E604", None)}),
        ({"properties": {"bootstrap.servers": "x:1"}}, {("E604", None)}),
        ({"port": 9092}, {("E601", "port")}),
    ],
)  # fmt: skip
def test_kafka_profile_rules(
    tmp_path: Path, fields: dict[str, Any], wanted: set[tuple[str, str | None]]
) -> None:
    doc = {"connections": {"events": {"system": "kafka", "bootstrap_servers": "k:9092", **fields}}}
    found = {(d.code, d.param("key")) for d in lint_doc(tmp_path, doc).diagnostics}
    assert found == wanted


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"access_key": "vault://s3#a"}, "E603"),
        ({"path_style_access": "yes"}, "E604"),
        ({"description": "lake"}, "E601"),  # the S3 connector refuses it
        ({"properties": {"fs.s3a.secret.key": "x"}}, "E604"),
    ],
)
def test_s3_profile_rules(tmp_path: Path, fields: dict[str, Any], code: str) -> None:
    doc = {"connections": {"lake": {"system": "s3", **fields}}}
    assert codes(lint_doc(tmp_path, doc)) == [code]


def test_temporary_s3_credentials_need_both_keys(tmp_path: Path) -> None:
    doc = {"connections": {"lake": {"system": "s3", "session_token": "vault://s3#t"}}}
    missing = {d.param("key") for d in lint_doc(tmp_path, doc).diagnostics if d.code == "E603"}
    assert missing == {"access_key", "secret_key"}


def test_variables_in_an_environment_file_stay_as_written(tmp_path: Path) -> None:
    doc = {"variables": {"out_dir": "${data_dir}/out"}, **db(database="${db}")}
    checked = lint_doc(tmp_path, doc)
    assert codes(checked) == ["W601", "W601"]
    assert not any(d.is_error for d in checked.diagnostics)
    assert {d.param("variable") for d in checked.diagnostics} == {"data_dir", "db"}
    # Spark substitutes ${...} in its own conf; it is no mistake there.
    assert codes(lint_doc(tmp_path, {"spark": {"spark.x": "${env:HOME}/x"}})) == []


@pytest.mark.parametrize(
    "key",
    [
        "spark.driver.extraJavaOptions",
        "spark.executor.extraClassPath",
        "spark.yarn.am.extraLibraryPath",
        "spark.executor.defaultJavaOptions",
        "spark.jars",
        "spark.jars.packages",
        "spark.submit.pyFiles",
        "spark.yarn.dist.archives",
        "spark.pyspark.python",
        "spark.pyspark.driver.python",
        "spark.python.worker.module",
        "spark.executorEnv.LD_PRELOAD",
        "spark.yarn.appMasterEnv.PYTHONPATH",
        "spark.kubernetes.driverEnv.PATH",
        "spark.executor.resource.gpu.discoveryScript",
        "spark.plugins",
        "spark.sql.extensions",
        "spark.kubernetes.container.image",
        "spark.kubernetes.executor.podTemplateFile",
        "SPARK.DRIVER.EXTRAJAVAOPTIONS",
        "spark.sql.hive.metastore.jars",
        "spark.sql.catalog.lake",
        "spark.serializer",
        "spark.kryo.registrator",
        "spark.shuffle.manager",
        "spark.ui.filters",
        "spark.metrics.conf.*.sink.x.class",
        "spark.kubernetes.driver.pod.featureSteps",
        "spark.kubernetes.executor.volumes.hostPath.data.mount.path",
        "spark.hadoop.fs.hdfs.impl",
        "spark.hadoop.fs.s3a.aws.credentials.provider",
    ],
)
def test_a_spark_setting_that_decides_what_runs_is_flagged_for_review(
    tmp_path: Path, key: str
) -> None:
    checked = lint_doc(tmp_path, {"spark": {key: "-javaagent:/tmp/x.jar"}})
    found = only(checked, "W602")
    assert not found.is_error and found.param("path") == f'spark["{key}"]'
    assert at(found) == (3, len(key) + 9)  # the value, on its own line


@pytest.mark.parametrize(
    "key",
    [
        "spark.driver.memory",
        "spark.executor.instances",
        "spark.sql.shuffle.partitions",
        "spark.yarn.queue",
        "spark.yarn.maxAppAttempts",
        "spark.kubernetes.namespace",
        "spark.driver.extraJavaOptionsX",
        "spark.filesystem",
        "spark.hadoop.fs.s3a.endpoint",
        "spark.sql.catalogImplementation",
    ],
)
def test_tuning_settings_are_not_flagged(tmp_path: Path, key: str) -> None:
    assert codes(lint_doc(tmp_path, {"spark": {key: "1"}})) == []


def test_a_duplicate_key_is_e004_at_the_second(tmp_path: Path) -> None:
    checked = lint(tmp_path, '{"variables": {"a": "1"},\n "variables": {"b": "2"}}')
    assert codes(checked) == ["E004"] and at(checked.diagnostics[0]) == (2, 2)


# --- hostile files ------------------------------------------------------------------------------


def test_hostile_files_get_the_project_file_codes(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "huge.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    (env / "deep.json").write_text("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))
    (env / "nul.json").write_text('{"variables": {"a": "x\\u0000"}}')
    (env / "latin1.json").write_bytes(b'{"description": "caf\xe9"}')
    (env / "broken.json").write_text('{"variables": {"a": "b",}}')
    outside = tmp_path / "creds.json"
    outside.write_text(json.dumps({"variables": {"token": SECRET}}))
    (env / "linked.json").symlink_to(outside)
    os.mkfifo(env / "fifo.json")
    found = {Path(c.file).name: c for c in check_environments(env, (tmp_path,))}
    assert {name: codes(c) for name, c in found.items()} == {
        "broken.json": ["E002"],
        "deep.json": ["E002"],
        "fifo.json": ["E214"],
        "huge.json": ["E005"],
        "latin1.json": ["E001"],
        "linked.json": ["E214"],
        "nul.json": ["E006"],
    }
    assert at(found["broken.json"].diagnostics[0]) == (1, 25)
    assert all(c.doc is None for c in found.values())
    assert all(SECRET not in d.message for c in found.values() for d in c.diagnostics)


def test_a_folder_linked_out_of_the_project_is_e214(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "prod.json").write_text("{}")
    project = tmp_path / "project"
    project.mkdir()
    (project / "env").symlink_to(elsewhere)
    (checked,) = check_environments(project / "env", (project,))
    assert codes(checked) == ["E214"]


def test_no_folder_no_files(tmp_path: Path) -> None:
    assert check_environments(None, ()) == []
    assert check_environments(tmp_path / "missing", ()) == []


# --- one reading for lint and the checker --------------------------------------------------------


def test_the_checker_reads_the_same_files_and_leaves_their_lint_to_them(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "dev.json").write_text(json.dumps({"sprak": {}, "variables": {"out": "/o"}}))
    doc = {
        "name": "p",
        "extract": [{"id": "o", "type": "files", "path": "/d", "format": "csv",
                     "schema": "order.avsc"}],
        "load": [{"input": "o", "type": "files", "path": "${out}/${missing}", "format": "csv",
                  "mode": "append"}],
    }  # fmt: skip
    definition = tmp_path / "p.json"
    definition.write_text(json.dumps(doc))
    avro = tmp_path / "avro"
    avro.mkdir()
    (avro / "order.avsc").write_text(
        json.dumps({"type": "record", "name": "order", "fields": [{"name": "a", "type": "long"}]})
    )
    options = CheckOptions(schema_dirs=(avro,), env_dir=env, project_roots=(tmp_path,))
    result = check_file(definition, options)
    assert [(d.code, d.param("variable")) for d in result.diagnostics] == [("E207", "missing")]
    assert codes(check_environment(env / "dev.json", (tmp_path,))) == ["E601"]


def test_each_caller_gets_its_own_list(tmp_path: Path) -> None:
    first = lint(tmp_path, '{"sprak": {}}')
    first.diagnostics.clear()
    assert codes(check_environment(tmp_path / "env" / "dev.json", (tmp_path,))) == ["E601"]


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    assert codes(lint(tmp_path, '{"sprak": {}}')) == ["E601"]
    assert codes(lint(tmp_path, '{"spark": {}, "description": "now fixed"}')) == []


# --- the schema and what the runtime reads --------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema_that_refers_only_inside() -> None:
    schema = environment_schema()
    check_schema(schema)
    # Without its relative `$id`: unresolvable_ref joins a relative root `$id` onto itself
    # (etlc/etlc/...), so it would find no `$ref` of such a schema.
    assert unresolvable_ref({k: v for k, v in schema.items() if k != "$id"}) is None
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def test_the_etlc_settings_are_exactly_the_runtimes() -> None:
    """Keys, types and defaults of `etlc` cannot drift from `Settings`."""
    declared = DEFS["settings"]["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert set(declared) == set(fields)

    def json_type(prop: dict[str, Any]) -> str:
        if "$ref" in prop:
            return str(DEFS[prop["$ref"].rpartition("/")[2]]["type"])
        return str(prop["type"])

    assert {k: json_type(v) for k, v in declared.items()} == {
        k: _JSON_TYPES[type(v)] for k, v in fields.items()
    }
    # The stage and checkpoint folders' default is the project's (etlc.toml): none here; an
    # API key has none either (the runtime's "" is no key).
    project = {"stage_dir", "checkpoint_dir", "openlineage_api_key"}
    assert fields["openlineage_api_key"] == ""
    assert {k for k, v in declared.items() if "default" not in v} == project
    assert {k: v["default"] for k, v in declared.items() if k not in project} == {
        k: v for k, v in fields.items() if k not in project
    }
    assert DEFS["settings"]["additionalProperties"] is False


def test_the_top_level_keys_are_the_runtimes() -> None:
    assert set(environment_schema()["properties"]) == environment_file.KNOWN_KEYS


def test_the_vault_backends_and_options_are_the_vaults() -> None:
    assert DEFS["vault"]["properties"]["backend"]["enum"] == ["file", "env", "hadoop"]
    assert sorted(DEFS["vault"]["properties"]["backend"]["enum"]) == backend_kinds()
    assert set(DEFS["file_vault"]["properties"]) == {"backend"} | FileVault.options
    assert set(DEFS["env_vault"]["properties"]) == {"backend"} | EnvVault.options
    hadoop = DEFS["hadoop_vault"]
    assert set(hadoop["properties"]) == {"backend"} | HadoopCredentialVault.options
    assert hadoop["required"] == ["provider_path"]
    assert hadoop["properties"]["alias_prefix"]["default"] == DEFAULT_ALIAS_PREFIX


# The `hadoop` vault objects lint accepts are the ones the driver opens, and the other way round.
HADOOP_VAULTS = [
    {"provider_path": "jceks://hdfs/user/etl/etlc.jceks"},
    {"provider_path": "jceks://hdfs@nn:8020/user/etl/etlc.jceks,localjceks://file/tmp/e.jceks"},
    {"provider_path": "jceks://hdfs/e.jceks", "alias_prefix": "Etl-c_1."},
    {"provider_path": "jceks://hdfs/e.jceks", "alias_prefix": ""},
    {},
    {"provider_path": ""},
    {"provider_path": "/user/etl/etlc.jceks"},
    {"provider_path": "jceks://hdfs/a.jceks, jceks://hdfs/b.jceks"},
    {"provider_path": "jceks://hdfs/a.jceks,"},
    {"provider_path": "jceks://hdfs/e.jceks", "alias_prefix": "etlc/"},
    {"provider_path": "jceks://hdfs/e.jceks", "prefix": "ETLC_"},
]  # fmt: skip


@pytest.mark.parametrize("vault", HADOOP_VAULTS, ids=lambda v: re.sub(r"\W+", "-", json.dumps(v)))
def test_lint_and_the_runtime_agree_on_the_hadoop_vault(
    tmp_path: Path, vault: dict[str, str]
) -> None:
    checked = lint_doc(tmp_path, {"vault": {"backend": "hadoop", **vault}})
    try:
        Environment.load(tmp_path / "env" / "dev.json", {})
        opened = True
    except ConfigurationError:
        opened = False
    assert checked.ok == opened, checked.diagnostics


def test_the_profiles_are_the_connectors() -> None:
    assert set(DEFS["kafka_profile"]["properties"]) == KafkaProfile.document_keys()
    assert set(DEFS["s3_profile"]["properties"]) == S3Profile.document_keys()
    for kind in (PostgresProfile, MySqlProfile):
        assert set(DEFS["jdbc_profile"]["properties"]) == kind.document_keys()
    kafka_protocols = {p.upper() for p in DEFS["kafka_profile"]["properties"]
                       ["security_protocol"]["enum"]}  # fmt: skip
    assert kafka_protocols == profiles.PROTOCOLS
    mechanisms = {m.upper() for m in DEFS["kafka_profile"]["properties"]["sasl_mechanism"]["enum"]}
    assert mechanisms == set(profiles.SASL_MECHANISMS) == set(kafka.SASL_LOGIN_MODULES)
    owned = DEFS["kafka_profile"]["properties"]["properties"]["propertyNames"]["not"]["enum"]
    assert set(owned) == profiles.KAFKA_OWNED_SETTINGS


def test_lint_and_the_profile_types_read_each_field_from_the_same_place() -> None:
    # A field the schema takes only as a vault reference is a Secret in its profile type, one
    # it takes as either is either, and plain text stays text: lint's E501/E604 and the
    # driver's refusals are about the same fields.
    for system, kind in PROFILES.items():
        declared = {
            f.name: f.metadata.get("value", profiles.TEXT)
            for f in dataclasses.fields(kind)
            if f.name not in ("name", "properties")
        }
        by_schema = environments._field_kinds()[system]
        expected = {k: v for k, v in by_schema.items() if k not in ("system", "properties")}
        assert declared == expected, system


@pytest.mark.parametrize(
    "text",
    ["vault://db/crm#password", "vault://a#b", "vault://a/b.c-d_e#k.e-y_", "vault://a#b\n",
     "vault://a b#c", "vault://a#b#c", "vault://#k", "vault://a#", "vault://a/#k!",
     "vault://" + "a" * 240 + "#k", "vault://" + "a" * 250 + "#k", "vault://\u00e9#k"],
)  # fmt: skip
def test_the_reference_pattern_is_the_vaults(text: str) -> None:
    vault = REFERENCE.match(text) is not None and len(text) <= MAX_NAME_LENGTH
    schema = DEFS["vault_reference"]
    by_schema = compiled(schema["pattern"]).search(text) is not None
    assert (by_schema and len(text) <= schema["maxLength"]) == vault


@pytest.mark.parametrize(
    "host",
    ["db", "db.example.com", "127.0.0.1", "[::1]", "[fe80::1%25eth0]", "h/db?x=1", "-h",
     "h:5432", "[::1", "", "a" * 253, "a" * 254, "h\n", "d\u00e9"],
)  # fmt: skip
def test_the_host_pattern_is_the_jdbc_connectors(host: str) -> None:
    by_schema = compiled(DEFS["jdbc_profile"]["properties"]["host"]["pattern"]).search(host)
    assert (by_schema is not None) == (profiles._HOST.fullmatch(host) is not None)


# Profiles the lint accepts must open at run time, and the other way round: the driver with
# an `env` vault, each profile handed to its connector's own check.
AGREEMENT = [
    {"system": "postgres", "host": "h", "database": "d", "user": "u", "password": "vault://p#w"},
    {"system": "postgres", "host": "h", "port": "5433", "database": "d", "user": "u",
     "password": "vault://p#w", "properties": {"sslmode": "require"}},
    {"system": "postgres", "host": "h", "port": 0, "database": "d", "user": "u",
     "password": "vault://p#w"},
    {"system": "postgres", "host": "h", "port": 5432.0, "database": "d", "user": "u",
     "password": "vault://p#w"},
    {"system": "postgres", "host": "h x", "database": "d", "user": "u", "password": "vault://p#w"},
    {"system": "postgres", "host": "h", "database": "d", "password": "vault://p#w"},
    {"system": "postgres", "host": "h", "database": "d", "user": "vault://p#u",
     "password": "vault://p#w"},
    {"system": "kafka", "bootstrap_servers": "k:9092"},
    {"system": "kafka", "bootstrap_servers": "k:9092", "security_protocol": "sasl_ssl",
     "sasl_mechanism": "plain", "username": "u", "password": "vault://k#w"},
    {"system": "kafka", "bootstrap_servers": "k:9092", "security_protocol": "SASL_SSL"},
    {"system": "kafka", "bootstrap_servers": "k:9092", "username": "u"},
    {"system": "kafka", "bootstrap_servers": "k:9092", "security_protocol": "TLS"},
    {"system": "kafka", "bootstrap_servers": "k:9092", "properties": {"security.protocol": "SSL"}},
    {"system": "kafka", "bootstrap_servers": "k:9092", "properties": {"ssl.key.password": "x"}},
    {"system": "kafka", "bootstrap_servers": "k:9092", "port": 1},
    {"system": "kafka"},
    {"system": "s3"},
    {"system": "s3", "endpoint": "http://h:9000", "region": "r", "path_style_access": "true",
     "access_key": "vault://s#a", "secret_key": "vault://s#b", "session_token": "vault://s#t"},
    {"system": "s3", "access_key": "vault://s#a"},
    {"system": "s3", "path_style_access": "yes"},
    {"system": "s3", "properties": {"fs.s3a.secret.key": "x"}},
    {"system": "s3", "description": "x"},
]  # fmt: skip


def _runtime_accepts(path: Path) -> bool:
    environ = {"ETLC_SECRET_" + k: "x" for k in ("P_W", "P_U", "K_W", "S_A", "S_B", "S_T")}
    try:
        env = Environment.load(path, environ)
        kind = PROFILES[json.loads(path.read_text())["connections"]["c"]["system"]]
        conn = env.connection("c", kind)
        if isinstance(conn, KafkaProfile):
            kafka.client_config(conn, {})
        elif isinstance(conn, S3Profile):
            s3.bucket_options(conn, "bucket")
        else:
            assert isinstance(conn, JdbcProfile)
            jdbc._jdbc_options(PostgresDialect(), conn)
    except ConfigurationError:
        return False
    return True


@pytest.mark.parametrize("profile", AGREEMENT, ids=lambda p: re.sub(r"\W+", "-", json.dumps(p)))
def test_lint_and_the_runtime_agree_on_profiles(tmp_path: Path, profile: dict[str, Any]) -> None:
    doc = {"vault": {"backend": "env"}, "connections": {"c": profile}}
    checked = lint_doc(tmp_path, doc)
    assert checked.ok == _runtime_accepts(tmp_path / "env" / "dev.json"), checked.diagnostics


@pytest.mark.parametrize(
    "key",
    [
        "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.s3a.access.key",
        "spark.hadoop.fs.s3a.bucket.b.secret.key",
        "spark.hadoop.fs.s3a.encryption.key",
        "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
        "spark.hadoop.fs.gs.auth.service.account.private.key",
    ],
)
def test_a_hadoop_credential_in_spark_conf_is_e501_and_never_shown(
    tmp_path: Path, key: str
) -> None:
    # Dotted Hadoop names passed lint in plain text: CREDENTIAL_NAME reads a name's ending.
    d = only(lint_doc(tmp_path, {"spark": {key: SECRET}}), "E501")
    assert d.param("path") == f'spark["{key}"]'
    assert SECRET not in d.message + d.hint


@pytest.mark.parametrize(
    "key", ["spark.hadoop.fs.s3a.access.key.file", "spark.sql.keyed.x", "spark.key.count"]
)
def test_spark_conf_that_only_mentions_a_key_is_not_a_credential(tmp_path: Path, key: str) -> None:
    assert "E501" not in codes(lint_doc(tmp_path, {"spark": {key: "x"}}))
