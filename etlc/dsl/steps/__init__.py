"""The step kinds: the built-in ones, one module each in this package, and those installed
plugins register.

A module of this package declares its kinds in ``KINDS`` (a tuple of
:class:`~etlc.dsl.steps.contract.StepKind`, each with its rows of the plugin table); adding a
kind is adding its module. A plugin's kinds come through the ``etlc.plugins`` entry points.
The checker looks a step's kind up by its AST node's class, typed, never by a method's name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from etlc.dsl import ast
from etlc.dsl.steps.contract import StepKind
from etlc.plugins import PluginSpec, PluginTable, installed


@cache
def plugin_table() -> PluginTable:
    """Every step type's row: the built-in kinds' and what the installed plugins add."""
    specs, kinds = installed()
    return PluginTable(builtin_specs(), specs, kinds)


def builtin_specs() -> tuple[PluginSpec, ...]:
    """The built-in kinds' rows, in the order of their modules."""
    return tuple(spec for kind in _builtin_kinds().values() for spec in kind.specs)


def step_kinds() -> Mapping[type[ast.Step], StepKind[Any]]:
    """Every kind, built-in and installed, by AST node class."""
    return _all_kinds(plugin_table())


def node_class(role: str, type_: str) -> type[ast.Step] | None:
    """The AST node a step of ``role`` and ``type_`` is built as; None for a plugin step
    checked by the generic plugin kind."""
    return _nodes(plugin_table()).get((role, type_))


@cache
def _builtin_kinds() -> Mapping[type[ast.Step], StepKind[Any]]:
    kinds: dict[type[ast.Step], StepKind[Any]] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        _add(kinds, getattr(importlib.import_module(f"{__name__}.{module}"), "KINDS", ()))
    return kinds


@lru_cache(maxsize=4)  # one per plugin table (tests install plugins of their own)
def _all_kinds(table: PluginTable) -> Mapping[type[ast.Step], StepKind[Any]]:
    kinds = dict(_builtin_kinds())
    _add(kinds, [k for k in table.kinds if isinstance(k, StepKind)])
    return kinds


@lru_cache(maxsize=4)
def _nodes(table: PluginTable) -> Mapping[tuple[str, str], type[ast.Step]]:
    return {(s.role, s.type): k.node for k in _all_kinds(table).values() for s in k.specs}


def _add(kinds: dict[type[ast.Step], StepKind[Any]], declared: Any) -> None:
    for kind in declared:
        if kind.node in kinds:
            raise TypeError(f"step node {kind.node.__name__} has two kinds")
        kinds[kind.node] = kind
