"""Render a typed plan into a standalone PySpark driver and its submit command.

Lowering happens here in Python (which import, which constructor, which literal); the jinja
templates only lay the pieces out. Output is deterministic: the same plan gives byte-identical
files, and the driver is already in ``ruff format`` style.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

import etlc
from etlc.codegen.literals import INDENT, LINE_LENGTH, literal, string
from etlc.dsl.plan import EnvConnection, EnvString, Plan, PlannedStep
from etlc.vault.redaction import SPARK_REDACTION_CONF

_RUNTIME_IMPORTS = {
    "etlc.runtime.driver": ["run_driver"],
    "etlc.runtime.environment": ["Environment"],
    "etlc.runtime.graph": [
        "DatasetSchema",
        "ExtractStep",
        "LoadStep",
        "PipelineGraph",
        "TransformStep",
    ],
}
# What generated drivers import: shipped to the cluster with --py-files.
_RUNTIME_PACKAGES = ("etlc/runtime", "etlc/connectors", "etlc/transforms", "etlc/vault")
_RUNTIME_MODULES = ("etlc/__init__.py", "etlc/plugins.py")
_NOT_RUNTIME = ("etlc/vault/cli.py",)  # the `etlc vault` command, not needed by drivers
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# etlc's JVM module (jvm/etlc-jvm): one JSON line per completed Spark stage, beside the
# driver's own lines. Built by `make setup`, not published, so always shipped with --jars.
STAGE_LISTENER = "etlc.jvm.metrics.StageMetricsListener"

# Spark settings every driver is submitted with (the environment file adds its own).
BASE_CONF = (
    "spark.sql.session.timeZone=UTC",
    "spark.ui.showConsoleProgress=false",
    f"spark.extraListeners={STAGE_LISTENER}",
    # Spark's own logs, UI and plans hide credentials too (Spark's defaults, extended).
    *(f"{key}={value}" for key, value in SPARK_REDACTION_CONF),
)


@dataclass(frozen=True)
class Output:
    path: Path
    content: bytes
    executable: bool = False


@functools.cache  # one environment: Jinja compiles each template once per process, not per plan
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("etlc.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def runtime_zip_name() -> str:
    return f"etlc-runtime-{etlc.__version__}.zip"


def jvm_jar_name() -> str:
    """etlc's JVM module, as `make setup` leaves it in the jars folder."""
    return f"etlc-jvm-{etlc.__version__}.jar"


def render(plan: Plan, out_dir: Path) -> list[Output]:
    """Every file ``etlc compile`` writes for one plan, under ``out_dir``."""
    driver = render_driver(plan, out_dir)
    submit = render_submit(plan)
    return [
        Output(out_dir / f"{plan.name}.py", driver.encode()),
        Output(out_dir / f"{plan.name}.submit.sh", submit.encode(), executable=True),
        Output(out_dir / runtime_zip_name(), runtime_zip()),
    ]


def _source(plan: Plan) -> str:
    """The definition as ``<config module>/<file>``, the same wherever compile was run from."""
    path = Path(plan.source).resolve()
    return path.relative_to(path.parent.parent).as_posix()


def render_driver(plan: Plan, out_dir: Path) -> str:
    imports: dict[str, set[str]] = defaultdict(set)
    for module, names in _RUNTIME_IMPORTS.items():
        imports[module].update(names)
    for step in plan.steps:
        module, attr = step.impl.split(":", 1)
        imports[module].add(attr)
    context = {
        "name": plan.name,
        "version": etlc.__version__,
        "source": _source(plan),
        "submit": (out_dir / f"{plan.name}.submit.sh").as_posix(),
        "datasets": ", ".join(s.id for s in plan.steps if s.role != "load"),
        "imports": [_import_line(m, n) for m, n in sorted(imports.items())],
        "schemas": [_schema_entry(s) for s in plan.steps if s.role != "load"],
        "extracts": [_step_call(s) for s in plan.by_role("extract")],
        "transforms": [_step_call(s) for s in plan.by_role("transform")],
        "loads": [_step_call(s) for s in plan.by_role("load")],
        "mode": plan.mode,
        "max_retries": plan.max_retries,
        "delay_seconds": repr(float(plan.delay_seconds)),
    }
    return _env().get_template("driver.py.j2").render(context)


def render_submit(plan: Plan) -> str:
    context = {
        "name": plan.name,
        "version": etlc.__version__,
        "source": _source(plan),
        "driver": f"{plan.name}.py",
        "packages": ",".join(a.coordinate for a in plan.artifacts),
        "jars": ",".join(f"$jars_dir/{a.jar_name}" for a in plan.artifacts),
        "jvm_jar": jvm_jar_name(),
        "runtime_zip": runtime_zip_name(),
        "conf": (*BASE_CONF, *plan.spark_conf),
        # JVM steps may name classes from jars of the user's own: ETLC_EXTRA_JARS ships them.
        "extra_jars": any(s.type == "jvm" for s in plan.steps),
    }
    return _env().get_template("submit.sh.j2").render(context)


@functools.cache  # the same bytes for every plan of one `etlc compile`
def runtime_zip() -> bytes:
    """The runtime side of etlc as a deterministic zip (sorted, fixed timestamps)."""
    root = Path(etlc.__file__).parent.parent
    files = [root / m for m in _RUNTIME_MODULES]
    for pkg in _RUNTIME_PACKAGES:
        files.extend(sorted((root / pkg).rglob("*.py")))
    files = [f for f in files if f.relative_to(root).as_posix() not in _NOT_RUNTIME]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(set(files)):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


# --- pieces ---------------------------------------------------------------------------


def _name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type, as ruff applies it: CONSTANTS, Classes, functions."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _import_line(module: str, names: set[str]) -> str:
    ordered = sorted(names, key=_name_order)
    line = f"from {module} import {', '.join(ordered)}"
    if len(line) <= LINE_LENGTH:
        return line
    body = "".join(f"{INDENT}{n},\n" for n in ordered)
    return f"from {module} import (\n{body})"


def _custom(value: Any) -> str | None:
    if isinstance(value, EnvString):
        return f"env.interpolate({string(value.text)})"
    if isinstance(value, EnvConnection):
        return f"env.connection({string(value.name)})"
    return None


def _call(func: str, kwargs: list[tuple[str, str]], level: int) -> str:
    inner = INDENT * (level + 1)
    body = "".join(f"{inner}{k}={v},\n" for k, v in kwargs)
    return f"{func}(\n{body}{INDENT * level})"


def _kwargs(args: tuple[tuple[str, Any], ...], level: int) -> list[tuple[str, str]]:
    return [(k, literal(v, level + 1, _custom, len(k) + 1)) for k, v in args]


def _schema_entry(step: PlannedStep) -> str:
    avro = json.dumps(step.schema.to_avro(), ensure_ascii=False)
    body = _call(
        "DatasetSchema",
        [("avro", string(avro)), ("ddl", string(step.schema.spark_ddl()))],
        1,
    )
    return f"{INDENT}{string(step.id)}: {body},"


def _step_call(step: PlannedStep) -> str:
    level = 3
    impl = step.impl.split(":", 1)[1]
    strategy = _call(impl, _kwargs(step.args, level + 1), level + 1)
    schema_ref = f"SCHEMAS[{string(step.inputs[0] if step.role == 'load' else step.id)}]"
    fields: list[tuple[str, str]] = [("id", string(step.id))]
    if step.role == "extract":
        fields += [("extractor", strategy), ("schema", schema_ref)]
        fields.append(("rules", literal(step.rules, level + 1, prefix=len("rules="))))
        if step.refresh is not None:
            fields.append(("refresh", string(step.refresh)))
    elif step.role == "transform":
        fields += [
            ("inputs", literal(step.inputs, level + 1, prefix=len("inputs="))),
            ("fn", strategy),
            ("schema", schema_ref),
        ]
        if step.recheck is not None:
            fields.append(("recheck", literal(step.recheck, level + 1, prefix=len("recheck="))))
    else:
        fields += [
            ("input", string(step.inputs[0])),
            ("loader", strategy),
            ("mode", string(step.mode)),
        ]
    cls = {"extract": "ExtractStep", "transform": "TransformStep", "load": "LoadStep"}[step.role]
    return INDENT * level + _call(cls, fields, level) + ","


def write(outputs: list[Output]) -> list[Path]:
    """Write outputs, replacing each file atomically; returns the paths that changed."""
    changed: list[Path] = []
    for out in outputs:
        out.path.parent.mkdir(parents=True, exist_ok=True)
        if out.path.exists() and out.path.read_bytes() == out.content:
            continue
        tmp = out.path.with_name(out.path.name + ".tmp")
        tmp.write_bytes(out.content)
        tmp.chmod(0o755 if out.executable else 0o644)
        tmp.replace(out.path)
        changed.append(out.path)
    return changed
