"""What the plugin table says a step can do: run in a streaming pipeline, and write with the
mode its load asks for. Independent of the health of the step's inputs."""

from __future__ import annotations

from collections.abc import Sequence

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag
from etlc.plugins import NotOnTargetError, PluginSpec
from etlc.spark_targets import TARGETS, SparkTarget


def capability_problems(
    step: ast.Step, spec: PluginSpec, streaming: bool, target: SparkTarget
) -> list[Diagnostic]:
    """E402 for a step that cannot stream in a streaming pipeline; E409/E401/E403 for a write
    mode the sink (or the stream) cannot take; E412 for a step the target Spark line cannot
    run."""
    found: list[Diagnostic] = []
    line_problem = _target_problem(step, spec, target)
    if line_problem is not None:
        found.append(line_problem)
    if streaming and not spec.streaming:
        found.append(
            diag(
                "E402",
                f"`{step.type.value}` {step.role} steps cannot run in a streaming pipeline",
                step.type.span,
                spec.streaming_note
                or 'use a streaming source such as Kafka, or set "mode": "batch"',
                type=step.type.value,
            )
        )
    write_mode = getattr(step, "mode", None)
    if isinstance(write_mode, ast.Name):
        problem = _write_mode_problem(step, spec, write_mode, getattr(step, "keys", ()), streaming)
        found.extend([problem] if problem else [])
    return found


def _target_problem(step: ast.Step, spec: PluginSpec, target: SparkTarget) -> Diagnostic | None:
    fmt = getattr(step, "format", None)
    try:
        spec.jars(target, format_of(step))
    except NotOnTargetError as exc:
        others = [
            t for t in TARGETS.values() if t.line != target.line and _runs(spec, t, format_of(step))
        ]
        return diag(
            "E412",
            f"{step.role} `{step.id.value}`: {exc}",
            fmt.span if isinstance(fmt, ast.Name) else step.type.span,
            "compile for a Spark line that has it ("
            + (", ".join(t.line for t in others) or "none has it")
            + '): `spark_version = "..."` in etlc.toml, or `--spark-version`',
            line=target.line,
            type=spec.type,
        )
    return None


def _runs(spec: PluginSpec, target: SparkTarget, fmt: str) -> bool:
    try:
        spec.jars(target, fmt)
    except NotOnTargetError:
        return False
    return True


def format_of(step: ast.Step) -> str:
    """A files/s3 step's format (which can add write modes, jars and conf); else empty."""
    fmt = getattr(step, "format", None)
    return fmt.value if isinstance(fmt, ast.Name) else ""


def _write_mode_problem(
    step: ast.Step, spec: PluginSpec, mode: ast.Name, keys: Sequence[ast.Name], streaming: bool
) -> Diagnostic | None:
    if streaming and spec.streaming and mode.value == "overwrite":
        # Before the sink's own modes: whatever the sink, the stream is the real reason.
        return diag(
            "E409",
            f"load `{step.id.value}` cannot overwrite in a streaming pipeline: a stream only "
            "appends or upserts (each micro-batch would replace the one before)",
            mode.span,
            'use "mode": "append"'
            + (', or "upsert" with `keys`' if "upsert" in spec.write_modes else ""),
            sink=spec.type,
            mode=mode.value,
        )
    if mode.value not in spec.write_modes | spec.format_write_modes.get(
        format_of(step), frozenset()
    ):
        return diag(
            "E401",
            f"a `{spec.type}` sink does not support write mode `{mode.value}`",
            mode.span,
            spec.write_mode_notes.get(mode.value)
            or "supported: " + ", ".join(sorted(spec.write_modes)),
            sink=spec.type,
            mode=mode.value,
        )
    if mode.value == "upsert" and not keys:
        return diag(
            "E403",
            "upsert needs the key columns it matches on",
            mode.span,
            'add "keys": ["<column>", ...]',
        )
    return None
