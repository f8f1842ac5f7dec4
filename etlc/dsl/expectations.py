"""A step's ``expect`` block, checked and lowered.

Each rule's condition is typed against the step's output (the dataset it makes, as loads and
later steps see it), its name must be unique in the step, and its policy is the rule's own,
else the block's, else ``fail``. A record for which the condition is null meets the rule, as
with a SQL ``CHECK`` constraint and the rules an Avro schema declares: the lowered predicate is
``(condition) IS NOT FALSE``, re-checked before it is emitted like every rule etlc builds.
"""

from __future__ import annotations

from etlc.dsl import ast
from etlc.dsl.expressions import Context, Scope
from etlc.dsl.plan import PlannedExpectation
from etlc.dsl.steps.contract import CheckContext
from etlc.dsl.types import RecordSchema
from etlc.dsl.validation_rules import lowered_rule

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
        columns = tuple(sorted(checked.columns))
        lowered.append(PlannedExpectation(rule.name.value, predicate, policy, columns))
    return tuple(lowered)
