"""The built-in step kinds, one module each, found by the registry below.

A module of this package declares its kinds in ``KINDS`` (a tuple of
:class:`~etlc.dsl.steps.contract.StepKind`); adding a kind is adding its module. The
checker looks a step's kind up by its AST node's class, typed, never by a method's name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from functools import cache
from typing import Any

from etlc.dsl import ast
from etlc.dsl.steps.contract import StepKind


@cache
def step_kinds() -> Mapping[type[ast.Step], StepKind[Any]]:
    """Every kind the modules of this package declare, by AST node class."""
    kinds: dict[type[ast.Step], StepKind[Any]] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        declared = getattr(importlib.import_module(f"{__name__}.{module}"), "KINDS", ())
        for kind in declared:
            if kind.node in kinds:
                raise TypeError(f"step node {kind.node.__name__} is declared twice ({module})")
            kinds[kind.node] = kind
    return kinds
