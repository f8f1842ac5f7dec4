"""Column lineage: which input columns each column of a step comes from, and how.

Each step kind says it for its own step when it checks it (its home knows its expressions):
a column's *direct* sources (copied as is, computed by an expression, aggregated) and the
step's *row* sources, columns that decide which rows there are without giving a value (a
filter's condition, join keys, group keys, a window's order). These are OpenLineage's
DIRECT and INDIRECT transformations; :func:`trace` follows them through the whole plan to
the extracts the values came from.

A step whose dependencies the compiler cannot see (a JVM step, a plugin's kind) says so:
its lineage is ``known=False`` and a trace through it ends there, marked unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# How an output column depends on an input column (OpenLineage's subtypes).
IDENTITY = "identity"  # the value as it was
TRANSFORMATION = "transformation"  # computed from it by an expression
AGGREGATION = "aggregation"  # an aggregate over rows of it
# How an input column decides a step's rows.
FILTER = "filter"
JOIN = "join"
GROUP_BY = "group_by"
WINDOW = "window"
DIRECT = (IDENTITY, TRANSFORMATION, AGGREGATION)


@dataclass(frozen=True, order=True)
class ColumnSource:
    """A column of one of the step's inputs (a dataset id), and how it is used."""

    dataset: str
    column: str
    how: str


@dataclass(frozen=True)
class StepLineage:
    """What a step's columns come from: ``columns`` (each output column's direct sources,
    in output order) and ``rows`` (the sources that decide its rows)."""

    columns: tuple[tuple[str, tuple[ColumnSource, ...]], ...] = ()
    rows: tuple[ColumnSource, ...] = ()
    known: bool = True

    def sources(self, column: str) -> tuple[ColumnSource, ...]:
        return next((s for c, s in self.columns if c == column), ())

    @classmethod
    def of(
        cls,
        columns: Mapping[str, Iterable[ColumnSource]],
        rows: Iterable[ColumnSource] = (),
        known: bool = True,
    ) -> StepLineage:
        return cls(
            tuple((c, tuple(sorted(set(s)))) for c, s in columns.items()),
            tuple(sorted(set(rows))),
            known,
        )


def unknown(columns: Iterable[str]) -> StepLineage:
    """The lineage of a step the compiler cannot see into: its columns, their sources unknown."""
    return StepLineage(tuple((c, ()) for c in columns), (), known=False)


def identity(dataset: str, columns: Iterable[str]) -> dict[str, list[ColumnSource]]:
    """Each column copied from the same-named column of ``dataset``."""
    return {c: [ColumnSource(dataset, c, IDENTITY)] for c in columns}


def used(dataset: str, columns: Iterable[str], how: str) -> list[ColumnSource]:
    return [ColumnSource(dataset, c, how) for c in columns]


# --- tracing through a plan --------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One step a value passed through: the step, its kind and how it used the column."""

    step: str
    kind: str
    how: str


@dataclass(frozen=True)
class Origin:
    """Where a column's values come from: an extract's column (or, when ``known`` is False,
    the step the trace could not see through), with the steps in between, latest first."""

    dataset: str
    column: str
    path: tuple[Hop, ...]
    known: bool = True


@dataclass(frozen=True)
class Traced:
    """A column's origins and every column that decided its rows along the way."""

    origins: tuple[Origin, ...]
    rows: tuple[tuple[str, ColumnSource], ...] = field(default=())  # (step, source)


class Traceable(Protocol):
    """What tracing needs of a planned step (etlc.dsl.plan.PlannedStep has it)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def lineage(self) -> StepLineage | None: ...


def trace(steps: Sequence[Traceable], dataset: str, column: str) -> Traced:
    """Follow ``column`` of ``dataset`` (a step id) back to the extracts it comes from."""
    by_id = {s.id: s for s in steps}
    origins: list[Origin] = []
    rows: list[tuple[str, ColumnSource]] = []
    todo: list[tuple[str, str, tuple[Hop, ...]]] = [(dataset, column, ())]
    seen: set[tuple[str, str, tuple[Hop, ...]]] = set()
    while todo:
        at, col, path = todo.pop()
        if (at, col, path) in seen:
            continue
        seen.add((at, col, path))
        step = by_id[at]
        lineage = step.lineage
        if step.role == "extract" or lineage is None or not lineage.known:
            known = step.role == "extract"
            origins.append(Origin(at, col, path, known))
            continue
        rows.extend((at, s) for s in lineage.rows if (at, s) not in rows)
        for source in lineage.sources(col):
            hop = Hop(step.id, step.type, source.how)
            todo.append((source.dataset, source.column, (*path, hop)))
    return Traced(tuple(sorted(origins, key=lambda o: (o.dataset, o.column))), tuple(rows))
