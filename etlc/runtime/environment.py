"""Environment configuration: ``pipelines/env/<env>.json``, read by the driver at run time.

The same driver runs in dev and prod; only this file changes. It holds the values of the
``${var}`` references in the definition, Spark settings, and etlc's own settings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etlc.runtime.errors import ConfigurationError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KNOWN_KEYS = {"$schema", "description", "variables", "spark", "etlc"}


@dataclass(frozen=True)
class Settings:
    stage_dir: str = ".etlc/stage"  # where extract outputs land as validated Avro files
    avro_boundary: bool = True  # serialize every transform output through its Avro schema
    sample_size: int = 20  # offending records logged when validation fails
    keep_stage: bool = False  # keep the stage files after a successful run (debugging)
    spark_log_level: str = "WARN"  # Spark's own log level; etlc's JSON lines are separate


@dataclass(frozen=True)
class Environment:
    name: str
    path: str
    variables: Mapping[str, str] = field(default_factory=dict)
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    settings: Settings = Settings()

    def interpolate(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in self.variables:
                raise ConfigurationError(
                    f"variable `{var}` is not defined in {self.path} (add it under `variables`)"
                )
            return self.variables[var]

        return _VAR.sub(value, text)

    @classmethod
    def load(cls, path: str | Path) -> Environment:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"environment file {p} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read environment file {p}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{p}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}"
            ) from None
        if not isinstance(doc, dict):
            raise ConfigurationError(f"{p}: the environment file must be a JSON object")
        unknown = sorted(set(doc) - _KNOWN_KEYS)
        if unknown:
            raise ConfigurationError(f"{p}: unknown keys {unknown}; known: {sorted(_KNOWN_KEYS)}")
        return cls(
            name=p.stem,
            path=str(p),
            variables=_strings(doc.get("variables", {}), p, "variables"),
            spark_conf=_strings(doc.get("spark", {}), p, "spark"),
            settings=_settings(doc.get("etlc", {}), p),
        )


def _strings(obj: Any, path: Path, key: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise ConfigurationError(f"{path}: `{key}` must be an object")
    out: dict[str, str] = {}
    for k, v in obj.items():
        if isinstance(v, bool):
            out[k] = str(v).lower()
        elif isinstance(v, str | int | float):
            out[k] = str(v)
        else:
            raise ConfigurationError(f"{path}: `{key}.{k}` must be a string, number or boolean")
    return out


def _settings(obj: Any, path: Path) -> Settings:
    if not isinstance(obj, dict):
        raise ConfigurationError(f"{path}: `etlc` must be an object")
    defaults = Settings()
    unknown = sorted(set(obj) - set(defaults.__dataclass_fields__))
    if unknown:
        raise ConfigurationError(f"{path}: unknown `etlc` settings {unknown}")
    values: dict[str, Any] = {}
    for key, value in obj.items():
        expected = type(getattr(defaults, key))
        if type(value) is not expected:
            raise ConfigurationError(f"{path}: `etlc.{key}` must be a {expected.__name__}")
        values[key] = value
    return Settings(**values)
