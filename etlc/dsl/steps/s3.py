"""The S3 extract and load: the files kinds on an object store, through a named connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etlc.dsl import ast
from etlc.dsl.steps import files
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema


@dataclass(frozen=True, kw_only=True)
class S3Extract(files.FilesExtract):
    connection: ast.Name


@dataclass(frozen=True, kw_only=True)
class S3Load(files.FilesLoad):
    connection: ast.Name


def check_extract(
    ctx: CheckContext, step: S3Extract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    lowered = files.check_extract(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, "s3"), **lowered.args}
    return lowered


def check_load(ctx: CheckContext, step: S3Load, inputs: Sequence[RecordSchema]) -> Lowered | None:
    lowered = files.check_load(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, "s3"), **lowered.args}
    return lowered


# Keyed by exact class: S3Extract and S3Load subclass the files nodes, so each has its row.
KINDS = (
    StepKind(S3Extract, check_extract, files.refresh_rule, types=("s3",)),
    StepKind(S3Load, check_load, types=("s3",)),
)
