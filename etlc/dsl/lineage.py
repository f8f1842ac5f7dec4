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


def filtered(lineage: StepLineage, columns: Iterable[str]) -> StepLineage:
    """``lineage`` where ``columns`` of the step's output also decide its rows (a rule that
    leaves records out): their sources join the row sources, as a filter's."""
    rows = [ColumnSource(s.dataset, s.column, FILTER) for c in columns for s in lineage.sources(c)]
    if not rows:
        return lineage
    return StepLineage(lineage.columns, tuple(sorted({*lineage.rows, *rows})), lineage.known)


# --- tracing through a plan --------------------------------------------------------------


class LineageError(ValueError):
    """A step or column the plan does not have."""


@dataclass(frozen=True)
class Hop:
    """One step a value passed through: the step, its kind, the column there and how the
    step made it."""

    step: str
    kind: str
    column: str
    how: str


@dataclass(frozen=True)
class Origin:
    """Where a column's values come from: an extract's column (or, when ``known`` is False,
    the column of the step the trace could not see through), with the steps in between,
    latest first (one route, when several lead from the same origin)."""

    dataset: str
    column: str
    path: tuple[Hop, ...]
    known: bool = True


@dataclass(frozen=True)
class RowSource:
    """A column that decided which rows reach the traced column: at ``step``, used ``how``,
    its values from ``origin`` (an extract's column, or where the trace could not see)."""

    step: str
    how: str
    origin: Origin


@dataclass(frozen=True)
class Traced:
    """A column's origins and every column that decided its rows, upstream included."""

    origins: tuple[Origin, ...]
    rows: tuple[RowSource, ...] = field(default=())


class Traceable(Protocol):
    """What tracing needs of a planned step (etlc.dsl.plan.PlannedStep has it)."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def lineage(self) -> StepLineage | None: ...


class _Tracer:
    """Origins per (step, column), each worked out once: a plan's routes may fan out and
    meet again (a derive of two columns, a self-join) without the work doubling."""

    def __init__(self, steps: Sequence[Traceable]) -> None:
        self.by_id = {s.id: s for s in steps}
        self.memo: dict[tuple[str, str], tuple[Origin, ...]] = {}

    def step(self, step_id: str) -> Traceable:
        if step_id not in self.by_id:
            raise LineageError(f"no step `{step_id}`")
        return self.by_id[step_id]

    def origins(self, at: str, column: str) -> tuple[Origin, ...]:
        # Depth first without recursion: a plan may chain more steps than Python's stack.
        stack, active = [(at, column)], set[tuple[str, str]]()
        while stack:
            key = stack[-1]
            if key in self.memo:
                stack.pop()
                continue
            active.add(key)
            sources = self._sources(*key)
            pending = [d for d in sources if d not in self.memo and d not in active]
            if pending:
                stack.extend(pending)
                continue
            self.memo[key] = self._combine(*key)  # a cycle (no checked plan has one) ends here
            active.discard(key)
            stack.pop()
        return self.memo[(at, column)]

    def _terminal(self, step: Traceable) -> bool:
        lineage = step.lineage
        return step.role == "extract" or lineage is None or not lineage.known

    def _sources(self, at: str, column: str) -> list[tuple[str, str]]:
        step = self.step(at)
        if self._terminal(step):
            return []
        assert step.lineage is not None
        if column not in dict(step.lineage.columns):
            raise LineageError(f"step `{step.id}` has no column `{column}`")
        return [(s.dataset, s.column) for s in step.lineage.sources(column)]

    def _combine(self, at: str, column: str) -> tuple[Origin, ...]:
        step = self.step(at)
        if self._terminal(step):
            return (Origin(step.id, column, (), known=step.role == "extract"),)
        assert step.lineage is not None
        found: dict[tuple[str, str, bool], Origin] = {}
        for source in step.lineage.sources(column):
            hop = Hop(step.id, step.type, column, source.how)
            for o in self.memo.get((source.dataset, source.column), ()):
                found.setdefault(
                    (o.dataset, o.column, o.known),
                    Origin(o.dataset, o.column, (hop, *o.path), o.known),
                )
        return tuple(sorted(found.values(), key=lambda o: (o.dataset, o.column)))

    def upstream(self, at: str) -> list[Traceable]:
        """``at`` and every step it reads from, each once, nearest first."""
        order: dict[str, Traceable] = {}
        todo = [at]
        while todo:
            step = self.step(todo.pop(0))
            if step.id not in order:
                order[step.id] = step
                todo.extend(step.inputs)
        return list(order.values())

    def rows(self, at: str) -> tuple[RowSource, ...]:
        found: list[RowSource] = []
        for step in self.upstream(at):
            for source in step.lineage.rows if step.lineage is not None else ():
                for origin in self.origins(source.dataset, source.column):
                    row = RowSource(
                        step.id, source.how, Origin(origin.dataset, origin.column, (), origin.known)
                    )
                    if row not in found:
                        found.append(row)
        return tuple(found)


def trace(steps: Sequence[Traceable], dataset: str, column: str) -> Traced:
    """Follow ``column`` of ``dataset`` (a step id) back to the extracts it comes from, and
    find every extract column that decided its rows on the way there."""
    tracer = _Tracer(steps)
    return Traced(tracer.origins(dataset, column), tracer.rows(dataset))


# --- a load's lineage as OpenLineage's column-lineage facet says it ------------------------

# A source as the facet names it: (extract id, column, subtype), the subtype in upper case
# as OpenLineage writes it (IDENTITY, TRANSFORMATION, AGGREGATION; FILTER, JOIN, GROUP_BY,
# WINDOW).
FacetSource = tuple[str, str, str]
# A value that passed through several steps was made the strongest way any of them made it.
_STRENGTH = {IDENTITY: 0, TRANSFORMATION: 1, AGGREGATION: 2}


@dataclass(frozen=True)
class OutputLineage:
    """What a load writes, as extracts' columns: each column's DIRECT sources (columns with
    none the compiler can see are left out: a constant, a count, a JVM step's column) and
    the INDIRECT ones that decide its rows."""

    fields: tuple[tuple[str, tuple[FacetSource, ...]], ...]
    dataset: tuple[FacetSource, ...]


def output_lineage(steps: Sequence[Traceable], load: str) -> OutputLineage:
    """The facet's view of ``load``: every route through the plan at once, each extract
    column named once per output column with the strongest subtype along any route.
    ``steps`` are in run order (a plan's), so each step's inputs are worked out first."""
    return output_lineages(steps, [load])[load]


def output_lineages(steps: Sequence[Traceable], loads: Iterable[str]) -> dict[str, OutputLineage]:
    """:func:`output_lineage` of each of ``loads``, the plan's routes worked out once."""
    by_id = {s.id: s for s in steps}
    made: _Made = {}
    for step in steps:
        made[step.id] = _made(step, by_id, made)
    out = {}
    for load in loads:
        fields = tuple(
            (column, tuple(sorted((d, c, how.upper()) for (d, c), how in sources.items())))
            for column, sources in made.get(load, {}).items()
            if sources
        )
        decided = {
            (d, c, row.how.upper())
            for step in _feeding(by_id, load)
            for row in (step.lineage.rows if step.lineage is not None else ())
            for d, c in _values(row.dataset, row.column, by_id, made)
        }
        out[load] = OutputLineage(fields, tuple(sorted(decided)))
    return out


# Per step, per column: the extract columns its values are made of, and how.
_Made = dict[str, dict[str, dict[tuple[str, str], str]]]


def _feeding(by_id: Mapping[str, Traceable], at: str) -> list[Traceable]:
    """``at`` and every step upstream of it: its inputs and the steps its lineage names."""
    seen: dict[str, Traceable] = {}
    todo = [at]
    while todo:
        step = by_id.get(todo.pop())
        if step is None or step.id in seen:
            continue
        seen[step.id] = step
        todo.extend(step.inputs)
        if step.lineage is not None:
            todo.extend(s.dataset for _, sources in step.lineage.columns for s in sources)
            todo.extend(s.dataset for s in step.lineage.rows)
    return list(seen.values())


def _values(
    dataset: str, column: str, by_id: Mapping[str, Traceable], made: _Made
) -> dict[tuple[str, str], str]:
    step = by_id.get(dataset)
    if step is not None and step.role == "extract":
        return {(dataset, column): IDENTITY}
    return made.get(dataset, {}).get(column, {})


def _made(
    step: Traceable, by_id: Mapping[str, Traceable], made: _Made
) -> dict[str, dict[tuple[str, str], str]]:
    lineage = step.lineage
    if step.role == "extract" or lineage is None:
        return {}  # an extract's columns are looked up by name (_values)
    out: dict[str, dict[tuple[str, str], str]] = {}
    for column, sources in lineage.columns:
        found: dict[tuple[str, str], str] = {}
        for source in sources if lineage.known else ():
            for origin, how in _values(source.dataset, source.column, by_id, made).items():
                found[origin] = max(
                    how, source.how, found.get(origin, IDENTITY), key=_STRENGTH.__getitem__
                )
        out[column] = found
    return out
