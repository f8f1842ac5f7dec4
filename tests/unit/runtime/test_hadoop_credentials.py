"""The `hadoop` vault backend: secrets from real JCEKS keystores made through the session's JVM."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from etlc.runtime import hadoop_credentials
from etlc.runtime.environment import Environment
from etlc.runtime.errors import VaultAccessError
from etlc.runtime.hadoop_credentials import (
    CLEAR_TEXT_FALLBACK_CONF,
    PROVIDER_PATH_CONF,
    HadoopCredentialVault,
)
from etlc.vault import Problem, VaultError, open_backend, redaction

# Non-ASCII, spaces and punctuation: the char[] must come over whole, not as its Java
# toString ([C@1b2c3d) nor byte by byte.
VALUE = "pä$s wörd☃ 'x\"y"
OTHER = "other-s3cr3t-41"
ALIAS = "etlc.db.crm.password"


def keystore(spark: Any, path: Path, entries: Mapping[str, str]) -> str:
    """A JCEKS keystore file at ``path`` holding ``entries``, made as `hadoop credential
    create` makes one; its provider URI."""
    uri = f"localjceks://file{path}"
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration()
    conf.set(PROVIDER_PATH_CONF, uri)
    factory = jvm.org.apache.hadoop.security.alias.CredentialProviderFactory
    provider = factory.getProviders(conf).get(0)
    for alias, value in entries.items():
        chars = spark.sparkContext._gateway.new_array(jvm.char, len(value))
        for i, c in enumerate(value):
            chars[i] = c
        provider.createCredentialEntry(alias, chars)
    provider.flush()
    return uri


def aliases(spark: Any, uri: str) -> list[str]:
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration()
    conf.set(PROVIDER_PATH_CONF, uri)
    factory = jvm.org.apache.hadoop.security.alias.CredentialProviderFactory
    return sorted(factory.getProviders(conf).get(0).getAliases())


@pytest.fixture
def session_conf(spark: Any) -> Iterator[Any]:
    """The session's Hadoop configuration, with the keys a test sets on it removed after."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    keys = (PROVIDER_PATH_CONF, CLEAR_TEXT_FALLBACK_CONF, ALIAS)
    before = {k: conf.get(k) for k in keys}
    yield conf
    for key, value in before.items():
        if value is None:
            conf.unset(key)
        else:
            conf.set(key, value)


def failure(vault: HadoopCredentialVault, ref: str) -> VaultError:
    with pytest.raises(VaultError) as caught:
        vault.resolve(ref)
    return caught.value


def test_a_secret_is_read_whole_and_hidden_from_then_on(
    spark: Any, session_conf: Any, tmp_path: Path
) -> None:
    uri = keystore(spark, tmp_path / "etlc.jceks", {ALIAS: VALUE, "etlc.db.dw.password": OTHER})
    # What py4j gives for a char[]: a reference to the JVM's array, not a str.
    raw = _password(spark, uri, ALIAS)
    assert not isinstance(raw, str) and len(raw) == len(VALUE)

    before = [session_conf.get(k) for k in (PROVIDER_PATH_CONF, CLEAR_TEXT_FALLBACK_CONF)]

    secret = HadoopCredentialVault(uri).resolve("vault://db/crm#password")

    assert secret.reveal() == VALUE
    assert type(secret.reveal()) is str
    # Registered for redaction when made, as every backend's secrets are.
    assert redaction.scrub(f"connect with {VALUE}!") == "connect with [hidden]!"
    # The backend reads a copy of the session's configuration and leaves the session's alone.
    assert [session_conf.get(k) for k in (PROVIDER_PATH_CONF, CLEAR_TEXT_FALLBACK_CONF)] == before
    assert before == [None, "true"]  # Hadoop's defaults


def _password(spark: Any, uri: str, alias: str) -> Any:
    conf = spark.sparkContext._jvm.org.apache.hadoop.conf.Configuration()
    conf.set(PROVIDER_PATH_CONF, uri)
    return conf.getPassword(alias)


def test_aliases_are_lower_cased_as_the_keystore_stores_them(spark: Any, tmp_path: Path) -> None:
    uri = keystore(spark, tmp_path / "etlc.jceks", {"Etlc.DB.Crm.PassWord": VALUE})
    assert aliases(spark, uri) == [ALIAS]  # JCEKS lower-cases what it stores
    vault = HadoopCredentialVault(uri, alias_prefix="ETLC.")

    assert vault.alias("DB/Crm", "PassWord") == ALIAS
    assert vault.resolve("vault://DB/Crm#PassWord").reveal() == VALUE
    assert vault.resolve("vault://db/crm#password").reveal() == VALUE
    # The alias a missing reference names is the lower-cased one `hadoop credential` lists.
    missing = failure(vault, "vault://DB/Crm#Token")
    assert "`etlc.db.crm.token`" in str(missing)


def test_a_missing_alias_names_the_alias_and_the_provider(spark: Any, tmp_path: Path) -> None:
    uri = keystore(spark, tmp_path / "etlc.jceks", {"etlc.db.dw.password": OTHER})
    exc = failure(HadoopCredentialVault(uri), "vault://db/crm#password")

    assert exc.problem is Problem.MISSING_ENTRY
    assert exc.reference == "vault://db/crm#password"
    assert f"no alias `{ALIAS}` in the credential provider {uri}" in str(exc)
    assert f"hadoop credential create {ALIAS} -provider {uri}" in str(exc)
    assert OTHER not in str(exc)


def test_a_keystore_that_does_not_exist_is_unreadable(spark: Any, tmp_path: Path) -> None:
    uri = f"localjceks://file{tmp_path}/nowhere.jceks"
    exc = failure(HadoopCredentialVault(uri), "vault://db/crm#password")

    assert exc.problem is Problem.UNREADABLE
    assert f"no keystore at {uri}" in str(exc)
    assert "\n" not in str(exc)


def test_a_corrupt_keystore_is_unreadable_on_one_line(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "etlc.jceks").write_bytes(b"not a keystore" * 8)
    uri = f"localjceks://file{tmp_path}/etlc.jceks"
    exc = failure(HadoopCredentialVault(uri), "vault://db/crm#password")

    assert exc.problem is Problem.UNREADABLE
    assert str(exc) == (
        f"vault {uri}, vault://db/crm#password: IOException: Configuration problem with "
        "provider path.; caused by IOException: Invalid keystore format"
    )
    # Neither the Java stack trace nor the Py4JJavaError travels with it.
    assert exc.__cause__ is None and exc.__suppress_context__

    env = Environment.load(_env_file(tmp_path, {"backend": "hadoop", "provider_path": uri}))
    with pytest.raises(VaultAccessError) as caught:
        env.secret("vault://db/crm#password")
    assert "\n" not in str(caught.value)
    assert "Invalid keystore format" in str(caught.value)


def test_a_failed_jvm_call_is_unreadable_on_one_line(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from py4j.protocol import Py4JError

    def broken(*_: object) -> bool:
        raise Py4JError("An error occurred while calling o1.exists. Trace:\nat py4j.Gateway")

    monkeypatch.setattr(hadoop_credentials, "_keystore_absent", broken)
    uri = keystore(spark, tmp_path / "etlc.jceks", {"etlc.db.dw.password": OTHER})
    exc = failure(HadoopCredentialVault(uri), "vault://db/crm#password")

    assert exc.problem is Problem.UNREADABLE
    assert exc.detail == "An error occurred while calling o1.exists. Trace:"
    assert exc.__cause__ is None and exc.__suppress_context__


def test_a_plain_conf_key_named_like_the_alias_is_never_the_secret(
    spark: Any, session_conf: Any, tmp_path: Path
) -> None:
    uri = keystore(spark, tmp_path / "etlc.jceks", {"etlc.db.dw.password": OTHER})
    # Hadoop's default would return this when the keystore lacks the alias: a --conf is
    # plain text anyone with the application's logs or the NodeManager's files can read.
    session_conf.set(ALIAS, "plain-text-fallback")

    exc = failure(HadoopCredentialVault(uri), "vault://db/crm#password")

    assert exc.problem is Problem.MISSING_ENTRY
    assert "plain-text-fallback" not in str(exc)


def test_secrets_are_read_once(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "etlc.jceks"
    vault = HadoopCredentialVault(keystore(spark, path, {ALIAS: VALUE}))
    first = vault.resolve("vault://db/crm#password")
    path.unlink()
    assert vault.resolve("vault://db/crm#password") is first


def test_without_a_session_the_message_says_when_it_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    exc = failure(HadoopCredentialVault("jceks://hdfs/e.jceks"), "vault://db/crm#password")

    assert exc.problem is Problem.UNREADABLE
    assert "no active SparkSession" in str(exc)
    assert "on the driver once Spark has started" in str(exc)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "`provider_path` is required"),
        ({"provider_path": ""}, "`provider_path` is required"),
        ({"provider_path": "/user/etl/etlc.jceks"}, "must be provider URIs"),
        ({"provider_path": "jceks://hdfs/a.jceks, jceks://hdfs/b.jceks"}, "without spaces"),
        ({"provider_path": "jceks://hdfs/a.jceks,"}, "must be provider URIs"),
        ({"provider_path": "jceks://hdfs/e.jceks", "alias_prefix": "etlc/"}, "`alias_prefix`"),
        ({"provider_path": "jceks://hdfs/e.jceks", "path": "x"}, "unknown options ['path']"),
    ],
)
def test_bad_options_are_bad_config(options: dict[str, str], message: str) -> None:
    with pytest.raises(VaultError) as caught:
        open_backend({"backend": "hadoop", **options}, {})
    assert caught.value.problem is Problem.BAD_CONFIG
    assert message in caught.value.detail


def test_good_options() -> None:
    options = {"backend": "hadoop", "provider_path": "jceks://hdfs/a.jceks,localjceks://file/b"}
    vault = open_backend(options, {})
    assert isinstance(vault, HadoopCredentialVault)
    assert vault.providers == ("jceks://hdfs/a.jceks", "localjceks://file/b")
    assert vault.alias("db/crm", "password") == ALIAS
    custom = open_backend({**options, "alias_prefix": ""}, {})
    assert isinstance(custom, HadoopCredentialVault)
    assert custom.alias("db/crm", "password") == "db.crm.password"


def _env_file(tmp_path: Path, vault: dict[str, str]) -> Path:
    doc = {"variables": {"crm_password": "vault://db/crm#password"}, "vault": vault}
    path = tmp_path / "prod.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_an_environment_file_names_the_backend(spark: Any, tmp_path: Path) -> None:
    uri = keystore(spark, tmp_path / "etlc.jceks", {ALIAS: VALUE})
    env = Environment.load(_env_file(tmp_path, {"backend": "hadoop", "provider_path": uri}), {})

    assert isinstance(env.vault, HadoopCredentialVault)
    assert env.secret("vault://db/crm#password").reveal() == VALUE
    assert env.secret("crm_password").reveal() == VALUE
