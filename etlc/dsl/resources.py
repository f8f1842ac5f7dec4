"""Where etlc's own files live, in a source checkout and in an installed wheel.

The grammar, the schemas, the jar checksums and the etlc-jvm jar: the wheel carries them
under ``etlc/_data`` (see hatch_build.py); a checkout keeps them at the repository root, next
to the package (``grammar/``, ``schemas/``, ``jvm/jars.sha256``, ``jars/`` or Maven's
``jvm/etlc-jvm/target/``).
"""

from __future__ import annotations

from pathlib import Path

import etlc
from etlc.spark_targets import SparkTarget, spark_target

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


def jar_checksums_path() -> Path:
    """The pinned sha256 of every jar `etlc jars` fetches (a wheel's also pins its etlc-jvm)."""
    return _find(_PACKAGE / "_data" / "jars.sha256", _CHECKOUT / "jvm" / "jars.sha256")


def jvm_jar_path(target: SparkTarget | None = None) -> Path | None:
    """etlc's JVM module for this version and the target's Scala: the wheel's, else one built
    in the checkout (Maven builds the Scala 2.12 jar into target-2.12/)."""
    target = target or spark_target()
    name = target.jvm_jar(etlc.__version__)
    found = [_PACKAGE / "_data" / "jars" / name]
    # Only a real checkout: installed, the package's parent is site-packages.
    module = _CHECKOUT / "jvm" / "etlc-jvm"
    if (module / "pom.xml").is_file():
        built = "target" if target.scala == "2.13" else f"target-{target.scala}"
        found += [_CHECKOUT / "jars" / name, module / built / f"etlc-jvm-{etlc.__version__}.jar"]
    return next((path for path in found if path.is_file()), None)
