"""A step's ``expect`` block, checked and lowered.

Each rule's condition is typed against the step's output (the dataset it makes, as loads and
later steps see it), its name must be unique in the step, and its policy is the rule's own,
else the block's, else ``fail``. A record for which the condition is null meets the rule, as
with a SQL ``CHECK`` constraint and the rules an Avro schema declares: the lowered predicate is
``(condition) IS NOT FALSE``, re-checked before it is emitted like every rule etlc builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from etlc.dsl import ast
from etlc.dsl.expressions import Context, Scope
from etlc.dsl.plan import PlannedExpectation
from etlc.dsl.steps.contract import CheckContext
from etlc.dsl.types import DataType, RecordSchema, derived_record
from etlc.dsl.validation_rules import lowered_rule
from etlc.quarantine_columns import ADDED, RAW_TEXT, RESERVED_PREFIX, load_columns

DEFAULT_POLICY = "fail"
# The schema's rule for a record the reader could not parse; counted under this name when an
# extract's `on_invalid` is not fail, so no expectation may take it.
PARSE_RULE = "parse"


def on_invalid(step: ast.Step) -> str:
    """An extract's policy for records that break its schema."""
    return DEFAULT_POLICY if step.on_invalid is None else step.on_invalid.value


def policy_of(block: ast.Expectations, rule: ast.Expectation) -> ast.Name | None:
    """Where a rule's policy is written: its own, else its block's (None: the default)."""
    return rule.policy or block.policy


def expectations(
    ctx: CheckContext, step: ast.Step, schema: RecordSchema
) -> tuple[PlannedExpectation, ...]:
    """The rules of ``step``'s ``expect`` block over its output ``schema``, lowered."""
    block = step.expect
    if block is None:
        return ()
    scope = Scope(schema.columns())
    seen: set[str] = set()
    lowered: list[PlannedExpectation] = []
    for rule in block.rules:
        if rule.name.value == PARSE_RULE:
            ctx.error(
                "E217",
                f"`{PARSE_RULE}` names the schema's rule for records that cannot be parsed",
                rule.name.span,
                "give the rule another name",
                rule=rule.name.value,
            )
            continue
        if rule.name.value in seen:
            ctx.error(
                "E217",
                f"{step.role} `{step.id.value}` has two expectations named `{rule.name.value}`",
                rule.name.span,
                "give each rule of an `expect` block its own name",
                rule=rule.name.value,
            )
            continue
        seen.add(rule.name.value)
        checked = ctx.expr(rule.check, scope, Context.PREDICATE)
        if checked is None:
            continue
        predicate = lowered_rule(f"({checked.sql}) IS NOT FALSE", scope, checked.columns)
        written = policy_of(block, rule)
        policy = written.value if written is not None else DEFAULT_POLICY
        if policy == "quarantine" and ctx.is_stream(step.id.value) and _reads_clock(checked.sql):
            ctx.error(
                "E410",
                f"expectation `{rule.name.value}` reads the clock (current_date, "
                "current_timestamp): each query of a stream has its own batch time, so the "
                "loads' queries and the one setting records aside could each decide a record "
                "its own way",
                rule.check.span,
                'compare with a column of the record (its event time), or use "drop"',
                rule=rule.name.value,
            )
            continue
        columns = tuple(sorted(checked.columns))
        lowered.append(PlannedExpectation(rule.name.value, predicate, policy, columns))
    return tuple(lowered)


def sets_aside(lowered: tuple[PlannedExpectation, ...], invalid: str) -> bool:
    """Whether a step's rules (its expectations, an extract's ``on_invalid``) quarantine."""
    return invalid == "quarantine" or any(e.policy == "quarantine" for e in lowered)


def reserved_column(ctx: CheckContext, step: ast.Step, schema: RecordSchema) -> bool:
    """E218 for a column of a step that sets records aside named as etlc names its own
    (``_etlc_...``): quarantine adds such columns to each record, and marks them with one."""
    clash = next((f.name for f in schema.fields if f.name.startswith(RESERVED_PREFIX)), None)
    if clash is None:
        return False
    where = step.expect.span if step.expect is not None else step.span
    ctx.error(
        "E218",
        f"{step.role} `{step.id.value}` sets records aside, and has a column `{clash}`: names "
        f"starting with `{RESERVED_PREFIX}` are those quarantine adds to each record",
        where,
        f"rename `{clash}` in `{step.id.value}`",
        step=step.id.value,
        column=clash,
    )
    return True


@dataclass(frozen=True)
class SetAside:
    """A step whose quarantine rules set records aside: its output, and whether they keep the
    raw text of records the reader could not parse (an extract under ``on_invalid``)."""

    schema: RecordSchema
    raw_text: bool


def quarantined_input(
    ctx: CheckContext, load: ast.Step, held: Mapping[str, SetAside], namespace: str
) -> RecordSchema | None:
    """What a load marked ``quarantined`` reads: its input's records set aside, with the
    columns :func:`etlc.quarantine_columns.load_columns` adds (E218 when the input sets none
    aside). Every column may be null: a record its schema does not admit may lack any value."""
    flag = load.quarantined
    assert flag is not None
    ref = load.inputs()[0]
    if load.type.value == "kafka":
        # A Kafka load serializes its records with its input's Avro schema, which lacks what
        # quarantine adds.
        ctx.error(
            "E218",
            f"load `{load.id.value}`: a Kafka load cannot take the records set aside yet",
            flag.span,
            "load them into a PostgreSQL or MySQL table, files or S3",
            step=load.id.value,
        )
        return None
    aside = held.get(ref.value)
    if aside is None:
        ctx.error(
            "E218",
            f"load `{load.id.value}` writes the records `{ref.value}` sets aside in quarantine, "
            f"but `{ref.value}` has no quarantine rule",
            flag.span,
            f'give `{ref.value}` an expectation with "policy": "quarantine" (on an extract, '
            '"on_invalid": "quarantine" also sets records aside), or remove "quarantined"',
            step=load.id.value,
        )
        return None
    if ctx.streaming and not ctx.is_stream(ref.value):
        ctx.error(
            "E218",
            f"load `{load.id.value}` writes the records `{ref.value}` sets aside, but "
            f"`{ref.value}` is a static side of the stream, read as a snapshot: its records "
            "set aside go to the quarantine folder (etlc.quarantine_dir)",
            flag.span,
            'remove "quarantined", or quarantine the stream\'s records after the join',
            step=load.id.value,
        )
        return None
    own = tuple(f.name for f in aside.schema.fields)
    types = {f.name: f.type.with_nullable(True) for f in aside.schema.fields}
    types[RAW_TEXT] = DataType("string")
    types.update((c, DataType("string", nullable=False)) for c in ADDED)
    columns = {c: types[c] for c in load_columns(own, aside.raw_text)}
    return derived_record(f"{ref.value}_quarantined", columns, namespace)


def _reads_clock(sql: str) -> bool:
    """Whether a checked condition reads the time of the query evaluating it."""
    parsed = sqlglot.parse_one(sql, read="spark")
    return any(isinstance(n, (exp.CurrentDate, exp.CurrentTimestamp)) for n in parsed.walk())
