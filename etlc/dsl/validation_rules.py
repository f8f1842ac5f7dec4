"""Record validation an extract applies, lowered from its Avro schema: nullability, enum
symbols and the rules the schema declares (``etlc.rules``).

Names and symbols reach the SQL only through sql_identifier/sql_string, and every rule is
re-checked as an expression before it is emitted (see lowered_rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Span, diag
from etlc.dsl.expressions import Context, Scope, check_expression
from etlc.dsl.sql_text import sql_identifier, sql_string
from etlc.dsl.types import RecordSchema

Rules = tuple[tuple[str, str], ...]  # (rule name, SQL predicate) in check order


def validation_rules(schema: RecordSchema, ref: ast.Name) -> tuple[Rules, list[Diagnostic]]:
    """The schema's record checks, and what is wrong with the rules it declares (at ``ref``,
    the step's reference to the schema file)."""
    scope = Scope(schema.columns())
    rules = list(_field_rules(schema))
    problems: list[Diagnostic] = []
    for name, text in schema.rules:
        checked, found = check_expression(text, scope, ref.span, Context.PREDICATE)
        problems.extend(
            diag(
                d.code, f"in rule `{name}` of {ref.value}: {d.message}", ref.span, d.hint, rule=name
            )
            for d in found
        )
        if checked is not None:
            rule = lowered_rule(f"({checked.sql}) IS NOT FALSE", scope, checked.columns)
            rules.append((f"rule:{name}", rule))
    return tuple(rules), problems


@lru_cache(maxsize=64)
def _field_rules(schema: RecordSchema) -> tuple[tuple[str, str], ...]:
    """The nullability and enum checks of a schema's fields (once per schema, however many
    extracts read it)."""
    scope = Scope(schema.columns())
    rules: list[tuple[str, str]] = []
    for f in schema:
        col = sql_identifier(f.name)
        if not f.type.nullable:
            rule = lowered_rule(f"{col} IS NOT NULL", scope, (f.name,))
            rules.append((f"not_null:{f.name}", rule))
        if f.type.symbols:
            symbols = ", ".join(sql_string(s) for s in f.type.symbols)
            text = f"{col} IS NULL OR {col} IN ({symbols})"
            rules.append((f"enum:{f.name}", lowered_rule(text, scope, (f.name,))))
    return tuple(rules)


def lowered_rule(text: str, scope: Scope, columns: Iterable[str] | None = None) -> str:
    """A rule the compiler built, as the expression checker renders it after checking it.

    The compiler's own SQL goes through the same checker as the user's, so a lowering bug can
    never emit text the checker would refuse, nor one that reads other columns than the rule
    was built from; either is a bug in etlc (E000), not a diagnostic.
    """
    where = Span.point("<lowered rule>")
    checked, found = check_expression(text, scope, where, Context.PREDICATE, bounded=False)
    if checked is None or found:
        raise AssertionError(f"a lowered rule does not check: {text!r}: {found}")
    if columns is not None and checked.columns != frozenset(columns):
        raise AssertionError(f"a lowered rule reads {sorted(checked.columns)}: {text!r}")
    return checked.sql
