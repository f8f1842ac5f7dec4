"""The wheel's build hook: everything a pipeline run needs goes into the package.

Under ``etlc/_data`` the wheel gets

    grammar/               the lark grammars
    schemas/*.json         the definition and environment file schemas (not schemas/avro:
                           those are this repository's example records)
    schemas/jvm/           the options schemas of etlc's own JVM steps
    jars/etlc-jvm-<v>.jar  etlc's JVM module, which every submit command ships (Scala 2.13:
                           Spark 4.x)
    jars/etlc-jvm_2.12-<v>.jar  the same for Scala 2.12 (Spark 3.5)
    jars.sha256            jvm/jars.sha256 plus the sha256 of those jars, taken here

A jar is built with Maven (``package`` runs its munit tests), unless a jar of this version
in ``jvm/etlc-jvm/target/`` (``target-2.12/``) or ``jars/`` is newer than every file it is
built from: right
after ``make setup`` a wheel takes seconds. Building needs Maven and a JDK; installing the
wheel needs neither. An editable install gets none of this: etlc.dsl.resources finds the
checkout's own files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DATA = "etlc/_data"
JVM_MODULE = "jvm/etlc-jvm"
CHECKSUMS = "jvm/jars.sha256"

Runner = Callable[[Sequence[str]], int]


class JarBuildError(RuntimeError):
    """The etlc-jvm jar could not be had: the message says what to install or run."""


def data_files(root: Path) -> dict[str, str]:
    """Source file or folder -> its place in the wheel, for the files copied as they are."""
    out = {
        str(root / "grammar"): f"{DATA}/grammar",
        str(root / "schemas/jvm"): f"{DATA}/schemas/jvm",
    }
    for schema in sorted((root / "schemas").glob("*.json")):
        out[str(schema)] = f"{DATA}/schemas/{schema.name}"
    return out


# The Scala lines the jar is built for, with the Maven profile that builds each (its Spark:
# etlc/spark_targets.py) and the folder it builds into.
SCALA_BUILDS: dict[str, tuple[tuple[str, ...], str]] = {
    "2.13": ((), "target"),
    "2.12": (("-P", "spark-3.5"), "target-2.12"),
}


def jar_name(version: str, scala: str = "2.13") -> str:
    """The jar's name in the jars folder (SparkTarget.jvm_jar's rule)."""
    return f"etlc-jvm-{version}.jar" if scala == "2.13" else f"etlc-jvm_{scala}-{version}.jar"


def _built(root: Path, version: str, scala: str) -> Path:
    return root / JVM_MODULE / SCALA_BUILDS[scala][1] / jar_name(version)


def jar_sources(root: Path) -> list[Path]:
    """What the jar is built from: its pom, its sources and the JVM step schemas it embeds."""
    found = [root / JVM_MODULE / "pom.xml"]
    for folder in (root / JVM_MODULE / "src", root / "schemas" / "jvm"):
        found.extend(p for p in folder.rglob("*") if p.is_file())
    return found


def fresh_jar(root: Path, version: str, scala: str = "2.13") -> Path | None:
    """A built jar of ``version`` newer than every source, the newest of them, if any."""
    newest_source = max(p.stat().st_mtime for p in jar_sources(root))
    built = [_built(root, version, scala), root / "jars" / jar_name(version, scala)]
    fresh = [p for p in built if p.is_file() and p.stat().st_mtime > newest_source]
    return max(fresh, key=lambda p: p.stat().st_mtime, default=None)


def pom_version(root: Path) -> str:
    pom = (root / JVM_MODULE / "pom.xml").read_text(encoding="utf-8")
    found = re.search(r"<artifactId>etlc-jvm</artifactId>\s*<version>([^<]+)</version>", pom)
    if not found:
        raise JarBuildError(f"{JVM_MODULE}/pom.xml names no version for etlc-jvm")
    return found.group(1).strip()


def _maven(cmd: Sequence[str]) -> int:
    return subprocess.run(list(cmd), check=False).returncode


def jvm_jar(
    root: Path, version: str, run: Runner = _maven, mvn: str = "mvn", scala: str = "2.13"
) -> Path:
    """The etlc-jvm jar of ``version`` for ``scala``: reused when fresh, else built."""
    if pom_version(root) != version:
        raise JarBuildError(
            f"{JVM_MODULE}/pom.xml says etlc-jvm {pom_version(root)} but etlc is {version}: "
            "the submit commands name the jar by etlc's version; make them equal"
        )
    reused = fresh_jar(root, version, scala)
    if reused is not None:
        return reused
    if shutil.which(mvn) is None:
        raise JarBuildError(
            f"building the etlc wheel builds {jar_name(version, scala)} from {JVM_MODULE} with "
            f"Maven, and `{mvn}` is not on PATH: install Maven and a JDK 17 (they are not needed "
            "to install the wheel)"
        )
    profile = SCALA_BUILDS[scala][0]
    cmd = [mvn, "-q", "-B", "-f", str(root / JVM_MODULE / "pom.xml"), *profile, "package"]
    code = run(cmd)
    built = _built(root, version, scala)
    if code != 0 or not built.is_file():
        raise JarBuildError(
            f"`{' '.join(cmd)}` failed (exit {code}); it needs a JDK 17, and its output above "
            "says what else"
        )
    return built


def packaged_checksums(root: Path, jars: dict[str, Path]) -> str:
    """jvm/jars.sha256 with a line per JVM jar (its name in the wheel: the path): `etlc jars`
    checks the copy it makes."""
    pins = (root / CHECKSUMS).read_text(encoding="utf-8")
    if not pins.endswith("\n"):
        pins += "\n"
    own = "".join(
        f"{hashlib.sha256(jar.read_bytes()).hexdigest()}  {name}\n" for name, jar in jars.items()
    )
    return f"{pins}# etlc's JVM module, as built into this wheel\n{own}"


class EtlcDataHook(BuildHookInterface[BuilderConfig]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        version = self.metadata.version
        jars = {
            jar_name(version, scala): jvm_jar(root, version, scala=scala) for scala in SCALA_BUILDS
        }
        self._scratch = tempfile.mkdtemp(prefix="etlc-wheel-")
        checksums = Path(self._scratch) / "jars.sha256"
        checksums.write_text(packaged_checksums(root, jars), encoding="utf-8")
        force_include: dict[str, str] = build_data["force_include"]
        force_include.update(data_files(root))
        force_include[str(checksums)] = f"{DATA}/jars.sha256"
        for name, jar in jars.items():
            force_include[str(jar)] = f"{DATA}/jars/{name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
