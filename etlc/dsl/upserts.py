"""Upserts' order: which row a load keeps when its input repeats a key (``sequence_by``).

Shared by every sink that upserts (files and S3, Kafka, the databases).
"""

from __future__ import annotations

from typing import Any, Protocol

from etlc.dsl import ast
from etlc.dsl.diagnostics import Severity, diag
from etlc.dsl.steps.contract import CheckContext
from etlc.dsl.types import RecordSchema


class UpsertLoad(Protocol):
    """A load that can upsert: the fields the sequence check reads."""

    @property
    def input(self) -> ast.Name: ...
    @property
    def mode(self) -> ast.Name: ...
    @property
    def keys(self) -> tuple[ast.Name, ...]: ...
    @property
    def sequence_by(self) -> ast.Name | None: ...


def check_sequence(
    ctx: CheckContext,
    step: UpsertLoad,
    schema: RecordSchema,
    args: dict[str, Any],
) -> bool:
    """Which row an upsert keeps when its input repeats a key; False if that is wrong."""
    seq = step.sequence_by
    if seq is None:
        unique = ctx.unique_by(step.input.value)
        keys = {k.value for k in step.keys}
        if step.mode.value == "upsert" and not (unique is not None and unique <= keys):
            ctx.report(
                [
                    diag(
                        "W202",
                        "upsert without `sequence_by`: if the input repeats a key, which of "
                        "its rows is written is not defined (joins and shuffles reorder rows)",
                        step.mode.span,
                        'add "sequence_by": "<column>" (e.g. an update timestamp); the row '
                        "with the greatest value wins",
                        Severity.WARNING,
                    )
                ]
            )
        return True
    if step.mode.value != "upsert":
        ctx.error(
            "E404",
            "`sequence_by` only applies to upsert",
            seq.span,
            'remove it, or use "mode": "upsert"',
        )
        return False
    if not ctx.columns_exist([seq], schema, "sequence_by"):
        return False
    ctype = schema.columns()[seq.value]
    if not (ctype.is_numeric or ctype.is_temporal or ctype.kind == "string"):
        ctx.error(
            "E404",
            f"`sequence_by` column `{seq.value}` is {ctype.describe()}; "
            "it must be a number, date, timestamp or string",
            seq.span,
            "order updates by a version number or an update timestamp",
        )
        return False
    args["sequence_by"] = seq.value
    return True
