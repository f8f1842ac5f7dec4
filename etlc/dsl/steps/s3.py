"""The S3 extract and load: the files kinds on an object store, through a named connection."""

from __future__ import annotations

from collections.abc import Sequence

from etlc.dsl import ast
from etlc.dsl.steps import files
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema


def check_extract(
    ctx: CheckContext, step: ast.S3Extract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    lowered = files.check_extract(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, "s3"), **lowered.args}
    return lowered


def check_load(
    ctx: CheckContext, step: ast.S3Load, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    lowered = files.check_load(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, "s3"), **lowered.args}
    return lowered


# Keyed by exact class: S3Extract and S3Load subclass the files nodes, so each has its row.
KINDS = (
    StepKind(ast.S3Extract, check_extract, files.refresh_rule),
    StepKind(ast.S3Load, check_load),
)
