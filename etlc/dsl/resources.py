"""Where the grammar and schema files live, in a source checkout and in an installed wheel.

The wheel force-includes them under ``etlc/_data`` (see pyproject.toml); a checkout keeps
them at the repository root, next to the package.
"""

from __future__ import annotations

from pathlib import Path

import etlc

_PACKAGE = Path(etlc.__file__).parent
_CHECKOUT = _PACKAGE.parent


def _find(packaged: Path, checkout: Path) -> Path:
    # Package data first: installed, the package's parent is site-packages, whose `grammar/`
    # or `schemas/` (if any) belongs to someone else.
    return packaged if packaged.exists() else checkout


def grammar_path(name: str) -> Path:
    """A lark grammar, e.g. ``grammar_path("json.lark")``."""
    return _find(_PACKAGE / "_data" / "grammar" / name, _CHECKOUT / "grammar" / name)


def schema_path(name: str = "pipeline.schema.json") -> Path:
    """A JSON Schema shipped with etlc; by default the pipeline definition schema."""
    return _find(_PACKAGE / "_data" / "schemas" / name, _CHECKOUT / "schemas" / name)


def jvm_steps_path() -> Path:
    """The options schemas of etlc's own JVM step classes (``schemas/jvm/<class>.json``)."""
    return _find(_PACKAGE / "_data" / "schemas" / "jvm", _CHECKOUT / "schemas" / "jvm")
