"""An environment file's JSON as the driver and the submit command both read it.

The standard library only: the submit command runs it on the submitting machine, from the
runtime zip, with whatever Python is there (an import-linter contract holds it to that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KNOWN_KEYS = frozenset(
    {"$schema", "description", "variables", "spark", "etlc", "vault", "connections"}
)


class EnvironmentFileError(ValueError):
    """A message naming the file (and line, for malformed JSON); never a value's content."""


def read(path: str | Path) -> dict[str, Any]:
    """The file's top-level object, its keys checked."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnvironmentFileError(f"environment file {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentFileError(f"cannot read environment file {p}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise EnvironmentFileError(
            f"{p}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise EnvironmentFileError(f"{p}: the environment file must be a JSON object")
    unknown = sorted(set(doc) - KNOWN_KEYS)
    if unknown:
        raise EnvironmentFileError(f"{p}: unknown keys {unknown}; known: {sorted(KNOWN_KEYS)}")
    return doc


def strings(obj: Any, path: str | Path, key: str) -> dict[str, str]:
    """The object at ``key`` as text values (booleans as Spark writes them: true/false)."""
    if not isinstance(obj, dict):
        raise EnvironmentFileError(f"{path}: `{key}` must be an object")
    out: dict[str, str] = {}
    for k, v in obj.items():
        if isinstance(v, bool):
            out[k] = str(v).lower()
        elif isinstance(v, (str, int, float)):
            out[k] = str(v)
        else:
            raise EnvironmentFileError(f"{path}: `{key}.{k}` must be a string, number or boolean")
    return out


def spark_settings(path: str | Path) -> dict[str, str]:
    """The file's ``spark`` settings."""
    return strings(read(path).get("spark", {}), path, "spark")
