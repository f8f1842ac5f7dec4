"""Secrets from Hadoop credential providers: the ``hadoop`` vault backend.

Use it on YARN and other Hadoop clusters, above all in cluster mode: there the driver runs in
a container, and whatever reaches it by ``--conf``, ``spark.yarn.appMasterEnv.*`` or a shipped
file is stored in plain text in the NodeManager's local directories, so neither a vault master
key nor ``ETLC_SECRET_*`` variables can travel safely. Hadoop's own answer is a credential
provider: a JCEKS keystore on HDFS, owned by the submitting user with mode 0600, made with
``hadoop credential create <alias> -provider jceks://hdfs/user/etl/etlc.jceks`` and read on
the driver through ``Configuration.getPassword``, with the HDFS delegation token YARN already
gives the application. An environment file selects it::

    "vault": {"backend": "hadoop", "provider_path": "jceks://hdfs/user/etl/etlc.jceks"}

``provider_path`` is a list as ``hadoop.security.credential.provider.path`` takes it
(comma-separated URIs: ``jceks://hdfs@nn:8020/...``, ``localjceks://file/...``). The keystore's
own password is Hadoop's default, ``none``, unless ``HADOOP_CREDSTORE_PASSWORD`` or
``hadoop.security.credstore.java-keystore-provider.password-file`` says otherwise: it is the
HDFS permissions that protect the secrets, so keep the file at 0600.

``vault://db/crm#password`` reads the alias ``etlc.db.crm.password`` (``alias_prefix``, then
the path with ``/`` as ``.``, then the key), lower-cased: Java keystores lower-case the aliases
they store, so ``vault://DB/Crm#Password`` and ``vault://db/crm#password`` are one entry (and
so are ``db/crm#password`` and ``db.crm#password``).

Secrets are resolved on the driver once Spark has started, through the active session's JVM;
this module imports pyspark only then, so reading an environment file stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from etlc.runtime.errors import java_chain
from etlc.vault import Reference, Secret, SecretBackend, VaultError
from etlc.vault.errors import Problem

PROVIDER_PATH_CONF = "hadoop.security.credential.provider.path"
CLEAR_TEXT_FALLBACK_CONF = "hadoop.security.credential.clear-text-fallback"
DEFAULT_ALIAS_PREFIX = "etlc."
# Providers backed by a keystore file, whose absence Hadoop treats as an empty keystore.
_KEYSTORE_SCHEMES = frozenset({"jceks", "localjceks", "bcfks", "localbcfks"})
_PROVIDER = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^\s,]*\Z")
_ALIAS_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]*\Z")
_WHITESPACE = re.compile(r"\s+")


class HadoopCredentialVault(SecretBackend):
    """Secrets from the Hadoop credential providers of ``provider_path``, by alias."""

    kind = "hadoop"
    options = frozenset({"provider_path", "alias_prefix"})

    def __init__(self, provider_path: str, alias_prefix: str = DEFAULT_ALIAS_PREFIX) -> None:
        if not provider_path:
            raise VaultError(
                Problem.BAD_CONFIG,
                self.kind,
                "`provider_path` is required: the credential provider URI of the keystore, "
                "e.g. jceks://hdfs/user/etl/etlc.jceks",
            )
        providers = provider_path.split(",")
        if not all(_PROVIDER.match(p) for p in providers):
            raise VaultError(
                Problem.BAD_CONFIG,
                self.kind,
                "`provider_path` must be provider URIs, comma-separated without spaces, such as "
                "jceks://hdfs/user/etl/etlc.jceks or localjceks://file/home/etl/etlc.jceks",
            )
        if not _ALIAS_PREFIX.match(alias_prefix):
            raise VaultError(
                Problem.BAD_CONFIG, self.kind, "`alias_prefix` may hold letters, digits, `_.-`"
            )
        self.providers = tuple(providers)
        self.provider_path = provider_path
        self.alias_prefix = alias_prefix.lower()
        self._secrets: dict[str, Secret] = {}

    @classmethod
    def configure(
        cls, options: Mapping[str, str], environ: Mapping[str, str]
    ) -> HadoopCredentialVault:
        return cls(
            options.get("provider_path", ""), options.get("alias_prefix", DEFAULT_ALIAS_PREFIX)
        )

    @property
    def location(self) -> str:
        return self.provider_path

    def alias(self, path: str, key: str) -> str:
        """The keystore alias of ``vault://<path>#<key>``."""
        return f"{self.alias_prefix}{path.replace('/', '.')}.{key}".lower()

    def get(self, path: str, key: str) -> Secret:
        ref = Reference(path, key)
        cached = self._secrets.get(ref.name)
        if cached is not None:
            return cached
        try:
            secret = Secret(self._read(self.alias(path, key)))
        except VaultError as exc:
            raise VaultError(exc.problem, exc.vault, exc.detail, str(ref)) from None
        self._secrets[ref.name] = secret
        return secret

    def _read(self, alias: str) -> str:
        from py4j.protocol import Py4JError, Py4JJavaError
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise VaultError(
                Problem.UNREADABLE,
                self.location,
                "no active SparkSession: the hadoop backend resolves secrets on the driver "
                "once Spark has started",
            )
        jvm: Any = spark.sparkContext._jvm
        # A copy: the session's own configuration must not start reading these providers.
        conf = jvm.org.apache.hadoop.conf.Configuration(
            spark.sparkContext._jsc.hadoopConfiguration()
        )
        conf.set(PROVIDER_PATH_CONF, self.provider_path)
        # Otherwise a plain configuration key named like the alias (a --conf anyone can set,
        # stored in plain text) would be taken as the secret when the keystore lacks it.
        conf.set(CLEAR_TEXT_FALLBACK_CONF, "false")
        try:
            chars = conf.getPassword(alias)
            if chars is None:
                raise self._not_found(jvm, conf, alias)
            try:
                # py4j hands back a char[] as a reference to the JVM's array; String.valueOf
                # brings it over as one str, not one round trip per character.
                value = jvm.java.lang.String.valueOf(chars)
            finally:
                jvm.java.util.Arrays.fill(chars, "\0")
        except Py4JJavaError as exc:
            raise VaultError(Problem.UNREADABLE, self.location, java_error(exc)) from None
        except Py4JError as exc:
            # py4j's own failure (a gateway gone, a call it could not make): its first line
            # says what; the rest is a Java stack trace.
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise VaultError(Problem.UNREADABLE, self.location, first) from None
        if not isinstance(value, str) or not value:
            raise VaultError(Problem.BAD_VALUE, self.location, f"the alias `{alias}` is empty")
        return value

    def _not_found(self, jvm: Any, conf: Any, alias: str) -> VaultError:
        absent = [uri for uri in self.providers if _keystore_absent(jvm, conf, uri)]
        if absent:
            return VaultError(
                Problem.UNREADABLE,
                self.location,
                f"no keystore at {', '.join(absent)} (create it with "
                f"`hadoop credential create {alias} -provider {absent[0]}`)",
            )
        return VaultError(
            Problem.MISSING_ENTRY,
            self.location,
            f"no alias `{alias}` in the credential provider {self.provider_path} (add it "
            f"with `hadoop credential create {alias} -provider {self.providers[0]}`)",
        )


def _keystore_absent(jvm: Any, conf: Any, uri: str) -> bool:
    if uri.split("://", 1)[0].lower() not in _KEYSTORE_SCHEMES:
        return False
    # jceks://hdfs@nn:8020/user/etl/etlc.jceks is the file hdfs://nn:8020/user/etl/etlc.jceks.
    path = jvm.org.apache.hadoop.security.ProviderUtils.unnestUri(jvm.java.net.URI(uri))
    return not path.getFileSystem(conf).exists(path)


def java_error(exc: Any) -> str:
    """A Java exception on one line: class and message, and its root cause's when it has one
    (Hadoop wraps every keystore failure in "Configuration problem with provider path.").
    Never the stack trace, which would bury the message in a driver's log."""
    chain = list(java_chain(exc))  # bounded: a cause chain may loop
    parts = [_described(chain[0])]
    if len(chain) > 1:
        parts.append(f"caused by {_described(chain[-1])}")
    return "; ".join(parts)


def _described(error: Any) -> str:
    message = error.getMessage()
    text = _WHITESPACE.sub(" ", str(message)).strip() if message is not None else ""
    return f"{error.getClass().getSimpleName()}: {text or 'no message'}"
