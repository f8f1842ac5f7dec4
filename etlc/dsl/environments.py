"""Environment files (``pipelines/env/<env>.json``) checked by lint, before any driver reads one.

An environment file arrives in a pull request like a definition, so it is read the same way:
through ``project_files`` (bounded, regular file, no symlink out of its folder), parsed into the
positioned tree (every diagnostic at the file's own line:col), and validated against
``schemas/environment.schema.json`` with etlc's bounded validator. The schema's findings get
the environment codes (E601 unknown key, E602 wrong type, E603 missing key, E604 value not
allowed, E605 not validated completely); on top of it come what a schema cannot say or must
not say in its own words:

- credentials: a credential-named value (``etlc.vault.reference.CREDENTIAL_NAME``) or a field
  the schema types as a vault reference must be a well-formed ``vault://<path>#<key>`` (E501,
  E502), and a reference where nothing resolves it is refused (E604). These messages never show
  the value, and the schema's own finding at the same place (which would) is dropped;
- numbers the driver takes by their written form: JSON Schema equates 20 and 20.0, the driver
  (``type(value) is int``, a port pasted into a URL) does not;
- ``${name}`` in a variable or a profile: the driver interpolates definitions only, so it stays
  as written (W601);
- a Spark setting whose value decides what runs (JVM options, class paths, files and jars to
  load, the Python to start, process environments, discovery scripts, classes to instantiate,
  container images, pod templates): allowed, since tuning needs them, but flagged (W602) so that
  a pull request that adds one is reviewed as code, not as configuration. The submit command
  hands them to spark-submit, and the driver runs with production credentials.

The checker reads the same files through :func:`check_environment` for its ``${var}`` and
connection checks; a file is read and analysed once per version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from etlc.dsl.diagnostics import Diagnostic, Severity, Span, diag, masked, sort_key
from etlc.dsl.parse import parse_text
from etlc.dsl.project_files import ProjectFileError, decode_json, find, read_project_file
from etlc.dsl.resources import schema_path
from etlc.dsl.schema_validation import json_path, validate
from etlc.dsl.tree import JObject, JScalar, JValue
from etlc.vault.reference import CREDENTIAL_NAME, is_reference, is_well_formed

SCHEMA_FILE = "environment.schema.json"
_VAULT_REFERENCE = "#/$defs/vault_reference"
# The validator's codes for definitions, as environment codes. A validation that stopped
# (E106 with `incomplete`) becomes E605.
_CODES = {"E101": "E601", "E102": "E602", "E103": "E603", "E104": "E604", "E105": "E604"}
# What the driver would interpolate in a definition (etlc.runtime.environment._VAR).
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STORE_HINT = "store it with `etlc vault put <path>#<key>` and write `vault://<path>#<key>`"
_REFERENCE_HINT = (
    "write `vault://<path>#<key>` (letters, digits, `_.-/` in the path; "
    "letters, digits, `_.-` in the key)"
)

# Hadoop's credentials as Spark conf names them, `.`-separated or in the middle, which
# CREDENTIAL_NAME (a name's ending) misses: fs.s3a.secret.key, fs.s3a.encryption.key,
# fs.azure.account.key.<account>.dfs.core.windows.net, fs.gs.auth.service.account.private.key.
_SPARK_SECRET = re.compile(
    r"(?:^|\.)(?:(?:secret|access|private|encryption|sas)\.key$|account\.key(?:\.|$))",
    re.IGNORECASE,
)
# Where values are plain text, never read from the vault: what to do with a credential.
_SPARK = "set secret Spark conf where the cluster keeps its secrets, not in this file"
_PROPERTIES = (
    "give credentials in the profile's own fields (password, access_key, ...), "
    "which take vault references"
)

# Spark settings whose value is code that the driver, the executors or the cluster run, or that
# picks it: -javaagent or -XX:OnOutOfMemoryError=<command> in JVM options, class and library
# paths, jars and files to load, the interpreter to start, variables of the processes
# (LD_PRELOAD, PYTHONPATH), resource discovery scripts, classes to instantiate, container images
# and pod templates.
_CODE_SETTING = re.compile(
    r"spark\.(?:"
    r"(?:driver|executor|yarn\.am)\.(?:extraJavaOptions|extraClassPath|extraLibraryPath)"
    r"|(?:driver|executor)\.defaultJavaOptions"
    r"|jars(?:\..+)?|submit\.pyFiles|files|archives|yarn\.(?:dist\..+|jars|archive)"
    r"|pyspark\.(?:driver\.)?python|python\.(?:daemon|worker)\.module"
    r"|executorEnv\..+|yarn\.(?:appMasterEnv|executorEnv)\..+|kubernetes\.driverEnv\..+"
    r"|(?:driver|executor)\.resource\..+\.discoveryScript"
    r"|plugins|extraListeners|driver\.userClassPathFirst|executor\.userClassPathFirst"
    r"|sql\.(?:extensions|queryExecutionListeners|streaming\.streamingQueryListeners)"
    r"|sql\.hive\.metastore\.jars(?:\.path)?|sql\.catalog\..+"
    r"|serializer|kryo\.(?:registrator|classesToRegister)"
    r"|shuffle\.manager|shuffle\.sort\.io\.plugin\.class|resources\.discoveryPlugin"
    r"|ui\.filters|metrics\.conf\..+"
    r"|kubernetes\.(?:(?:driver|executor)\.)?(?:container\.image|podTemplateFile)"
    r"|kubernetes\.(?:driver|executor)\.pod\.featureSteps"
    r"|kubernetes\.(?:driver|executor)\.volumes\.hostPath\..+"
    # Hadoop's pluggable classes: a file system, a credential or token provider, and so on.
    r"|hadoop\..+(?:\.impl|\.class|\.classes|[Pp]rovider|[Pp]roviders|[Pp]lugins?)"
    r")",
    re.IGNORECASE,
)

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class EnvironmentCheck:
    file: str
    source: str | None  # the text, for rendering carets (None if unreadable)
    diagnostics: list[Diagnostic]
    doc: Any  # the value as the driver's json.loads reads it; None if the file is unusable
    # Why ``doc`` is None, worded as for any project file (the checker reports it on a
    # definition that needs the file, as it always has).
    refused: ProjectFileError | None = None

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


@cache
def environment_schema() -> dict[str, Any]:
    """The JSON Schema of environment files."""
    schema: dict[str, Any] = json.loads(schema_path(SCHEMA_FILE).read_text(encoding="utf-8"))
    return schema


def check_environments(env_dir: Path | None, roots: tuple[Path, ...]) -> list[EnvironmentCheck]:
    """Every ``*.json`` of ``env_dir``, sorted by name (none without a folder)."""
    files = sorted(env_dir.glob("*.json")) if env_dir is not None else []
    return [check_environment(f, roots) for f in files]


def check_environment(path: Path, roots: tuple[Path, ...]) -> EnvironmentCheck:
    """``path`` read as a project file confined to its folder (and ``roots``), then linted."""
    file = str(path)
    shown = f"environment file {path}"
    try:
        # Confined to its folder like any project file: a symlink to ~/.aws/... is refused.
        found = find(path.name, (path.parent,), roots=roots)
        if found is None:
            raise ProjectFileError(None, f"{shown} does not exist")
        data = read_project_file(found, shown)
    except ProjectFileError as exc:
        refusal = diag(exc.code or "E001", exc.message, Span.point(file), exc.hint, file=file)
        return EnvironmentCheck(file, None, [refusal], None, exc)
    checked = _checked(data, file)
    # The cached result is shared: each caller gets a list of its own.
    return replace(checked, diagnostics=list(checked.diagnostics))


@lru_cache(maxsize=32)
def _checked(data: bytes, file: str) -> EnvironmentCheck:
    # By the bytes object read_project_file keeps per version of the file: the checker asks
    # once per definition, lint once per run, and the work is done once.
    doc: Any = None
    refused: ProjectFileError | None = None
    try:
        doc = decode_json(data, f"environment file {file}")
    except ProjectFileError as exc:
        refused = exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        why = f"{file} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        unreadable = diag("E001", why, Span.point(file), "save the file as UTF-8", file=file)
        return EnvironmentCheck(file, None, [unreadable], doc, refused)
    tree, diagnostics = parse_text(text, file, "json")
    if tree is not None:
        diagnostics = [*diagnostics, *lint_tree(tree, file)]
    found = sorted(diagnostics, key=sort_key)
    return EnvironmentCheck(file, masked(text, found), found, doc, refused)


def lint_tree(tree: JValue, file: str) -> list[Diagnostic]:
    """Every problem of an environment file's tree: its shape, credentials, number forms."""
    schema = environment_schema()
    own = list(_credential_problems(tree))
    # The schema's finding where a credential was reported could show the value.
    covered = {d.span for d in own}
    shape = [_renumbered(d) for d in validate(tree, schema, file) if d.span not in covered]
    return [
        *shape,
        *own,
        *_number_forms(tree, schema),
        *_uninterpolated(tree),
        *_code_settings(tree),
    ]


def _renumbered(d: Diagnostic) -> Diagnostic:
    code = "E605" if d.param("incomplete") else _CODES.get(d.code, "E604")
    return replace(d, code=code)


# --- credentials --------------------------------------------------------------------------


@cache
def _field_kinds() -> dict[str, dict[str, str]]:
    """Per system, each profile field's kind from the schema: "secret" (a vault reference),
    "either" (text or a reference) or "text"."""
    defs = environment_schema()["$defs"]
    kinds: dict[str, dict[str, str]] = {}
    for branch in defs["connection"]["allOf"]:
        system = branch["if"]["properties"]["system"]["const"]
        profile = defs[branch["then"]["$ref"].rsplit("/", 1)[1]]
        fields = kinds.setdefault(system, {})
        for key, sub in profile["properties"].items():
            if sub.get("$ref") == _VAULT_REFERENCE:
                fields[key] = "secret"
            elif any(b.get("$ref") == _VAULT_REFERENCE for b in sub.get("anyOf", ())):
                fields[key] = "either"
            else:
                fields[key] = "text"
    return kinds


def _credential_problems(root: JValue) -> Iterator[Diagnostic]:
    if not isinstance(root, JObject):
        return
    variables = root.get("variables")
    if isinstance(variables, JObject):
        for m in variables.members:
            secret = bool(CREDENTIAL_NAME.search(m.key))
            yield from _value_problems(("variables", m.key), m.value, secret=secret)
    spark = root.get("spark")
    if isinstance(spark, JObject):
        for m in spark.members:
            secret = bool(CREDENTIAL_NAME.search(m.key) or _SPARK_SECRET.search(m.key))
            yield from _value_problems(("spark", m.key), m.value, secret=secret, plain=_SPARK)
    connections = root.get("connections")
    if isinstance(connections, JObject):
        for c in connections.members:
            if isinstance(c.value, JObject):
                yield from _profile_problems(c.key, c.value)


def _profile_problems(name: str, profile: JObject) -> Iterator[Diagnostic]:
    system = profile.get("system")
    named = system.value if isinstance(system, JScalar) and isinstance(system.value, str) else ""
    kinds = _field_kinds().get(named, {})
    for m in profile.members:
        path: JsonPath = ("connections", name, m.key)
        if m.key == "properties" and isinstance(m.value, JObject):
            for p in m.value.members:
                secret = bool(CREDENTIAL_NAME.search(p.key))
                where = (*path, p.key)
                yield from _value_problems(where, p.value, secret=secret, plain=_PROPERTIES)
            continue
        kind = kinds.get(m.key)
        secret = kind == "secret" or bool(CREDENTIAL_NAME.search(m.key))
        plain = "write the value itself" if kind == "text" else None
        yield from _value_problems(path, m.value, secret=secret, plain=plain)


def _value_problems(
    path: JsonPath, node: JValue, *, secret: bool, plain: str | None = None
) -> Iterator[Diagnostic]:
    """E502 for a malformed reference, E604 for one nothing resolves, E501 for a credential
    that is not a reference. ``plain``: the hint where values are plain text, never resolved
    from the vault (None where a reference is resolved)."""
    where = json_path(path)
    value = node.value if isinstance(node, JScalar) else None
    if isinstance(value, str) and is_reference(value):
        if plain is not None:
            message = f"`{where}` is read as plain text: a vault reference is not resolved here"
            yield diag("E604", message, node.span, plain, path=where)
        elif not is_well_formed(value):
            # Never the text: a malformed reference may well be the password itself.
            message = f"malformed vault reference in `{where}`"
            yield diag("E502", message, node.span, _REFERENCE_HINT, path=where)
    elif secret:
        message = f"literal credential in `{where}`" + ("" if plain is None else ", plain text")
        hint = _STORE_HINT if plain is None else plain
        yield diag("E501", message, node.span, hint, path=where)


# --- numbers by their written form ----------------------------------------------------------


def _number_forms(root: JValue, schema: Mapping[str, Any]) -> Iterator[Diagnostic]:
    """JSON Schema takes 20.0 for an integer and 1 for a number; the driver takes neither:
    ``etlc`` settings must have their default's exact type, and a port is pasted into a JDBC
    URL as written."""
    if not isinstance(root, JObject):
        return
    settings = root.get("etlc")
    if isinstance(settings, JObject):
        types = schema["$defs"]["settings"]["properties"]
        yield from _forms(("etlc",), settings, types)
    connections = root.get("connections")
    if isinstance(connections, JObject):
        defs = schema["$defs"]
        for c in connections.members:
            system = c.value.get("system") if isinstance(c.value, JObject) else None
            if isinstance(c.value, JObject) and isinstance(system, JScalar):
                branch = _profile_schema(defs, system.value)
                if branch is not None:
                    yield from _forms(("connections", c.key), c.value, branch["properties"])


def _profile_schema(defs: Mapping[str, Any], system: Any) -> Mapping[str, Any] | None:
    for branch in defs["connection"]["allOf"]:
        if branch["if"]["properties"]["system"]["const"] == system:
            found: Mapping[str, Any] = defs[branch["then"]["$ref"].rsplit("/", 1)[1]]
            return found
    return None


def _forms(path: JsonPath, obj: JObject, properties: Mapping[str, Any]) -> Iterator[Diagnostic]:
    for m in obj.members:
        declared = properties.get(m.key, {}).get("type")
        types = [declared] if isinstance(declared, str) else list(declared or ())
        value = m.value.value if isinstance(m.value, JScalar) else None
        where = json_path((*path, m.key))
        if isinstance(value, float) and value.is_integer() and "integer" in types:
            yield diag(
                "E602",
                f"`{where}` must be an integer, got `{value!r}`",
                m.value.span,
                f"write {int(value)}, without a decimal point",
                path=where,
            )
        elif isinstance(value, int) and not isinstance(value, bool) and types == ["number"]:
            yield diag(
                "E602",
                f"`{where}` must be written with a decimal point, got `{value}`",
                m.value.span,
                f"write {value}.0: the driver takes only a fractional number here",
                path=where,
            )


# --- ${...} stays as written ----------------------------------------------------------------


def _uninterpolated(root: JValue) -> Iterator[Diagnostic]:
    if not isinstance(root, JObject):
        return
    values: list[tuple[JsonPath, JValue]] = []
    variables = root.get("variables")
    if isinstance(variables, JObject):
        values += [(("variables", m.key), m.value) for m in variables.members]
    connections = root.get("connections")
    if isinstance(connections, JObject):
        for c in connections.members:
            if isinstance(c.value, JObject):
                values += [
                    (("connections", c.key, m.key), m.value)
                    for m in c.value.members
                    if m.key != "description"
                ]
    for path, node in values:
        text = node.value if isinstance(node, JScalar) else None
        if not isinstance(text, str) or is_reference(text):
            continue
        match = _VARIABLE.search(text)
        if match is not None:
            yield diag(
                "W601",
                f"`{match.group()}` in `{json_path(path)}` stays as written: "
                "the driver replaces ${...} in definitions only",
                node.span,
                "write the value itself",
                Severity.WARNING,
                path=json_path(path),
                variable=match.group(1),
            )


# --- Spark settings that run code ---------------------------------------------------------


def _code_settings(root: JValue) -> Iterator[Diagnostic]:
    spark = root.get("spark") if isinstance(root, JObject) else None
    if not isinstance(spark, JObject):
        return
    for member in spark.members:
        if _CODE_SETTING.fullmatch(member.key):
            where = json_path(("spark", member.key))
            yield diag(
                "W602",
                f"`{where}` decides what the driver or the executors run, with the run's "
                "credentials: review a change to it as code",
                member.value.span,
                "keep it if this project's reviewers own it; set it on the cluster otherwise",
                Severity.WARNING,
                path=where,
            )
