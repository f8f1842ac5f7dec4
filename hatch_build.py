"""The wheel's build hook: everything a pipeline run needs goes into the package.

Under ``etlc/_data`` the wheel gets

    grammar/               the lark grammars
    schemas/*.json         the definition and environment file schemas (not schemas/avro:
                           those are this repository's example records)
    schemas/jvm/           the options schemas of etlc's own JVM steps
    jars/etlc-jvm-<v>.jar  etlc's JVM module, which every submit command ships
    jars.sha256            jvm/jars.sha256 plus the sha256 of that jar, taken here

The jar is built with Maven (``package`` runs its munit tests), unless a jar of this version
in ``jvm/etlc-jvm/target/`` or ``jars/`` is newer than every file it is built from: right
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


def jar_name(version: str) -> str:
    return f"etlc-jvm-{version}.jar"


def jar_sources(root: Path) -> list[Path]:
    """What the jar is built from: its pom, its sources and the JVM step schemas it embeds."""
    found = [root / JVM_MODULE / "pom.xml"]
    for folder in (root / JVM_MODULE / "src", root / "schemas" / "jvm"):
        found.extend(p for p in folder.rglob("*") if p.is_file())
    return found


def fresh_jar(root: Path, version: str) -> Path | None:
    """A built jar of ``version`` newer than every source, the newest of them, if any."""
    newest_source = max(p.stat().st_mtime for p in jar_sources(root))
    built = [root / JVM_MODULE / "target" / jar_name(version), root / "jars" / jar_name(version)]
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


def jvm_jar(root: Path, version: str, run: Runner = _maven, mvn: str = "mvn") -> Path:
    """The etlc-jvm jar of ``version``: reused when fresh, else built with Maven."""
    if pom_version(root) != version:
        raise JarBuildError(
            f"{JVM_MODULE}/pom.xml says etlc-jvm {pom_version(root)} but etlc is {version}: "
            "the submit commands name the jar by etlc's version; make them equal"
        )
    reused = fresh_jar(root, version)
    if reused is not None:
        return reused
    if shutil.which(mvn) is None:
        raise JarBuildError(
            f"building the etlc wheel builds {jar_name(version)} from {JVM_MODULE} with Maven, "
            f"and `{mvn}` is not on PATH: install Maven and a JDK 17 (they are not needed to "
            "install the wheel)"
        )
    cmd = [mvn, "-q", "-B", "-f", str(root / JVM_MODULE / "pom.xml"), "package"]
    code = run(cmd)
    built = root / JVM_MODULE / "target" / jar_name(version)
    if code != 0 or not built.is_file():
        raise JarBuildError(
            f"`{' '.join(cmd)}` failed (exit {code}); it needs a JDK 17, and its output above "
            "says what else"
        )
    return built


def packaged_checksums(root: Path, jar: Path) -> str:
    """jvm/jars.sha256 with the jar's own line: `etlc jars` checks the copy it makes."""
    digest = hashlib.sha256(jar.read_bytes()).hexdigest()
    pins = (root / CHECKSUMS).read_text(encoding="utf-8")
    if not pins.endswith("\n"):
        pins += "\n"
    return f"{pins}# etlc's JVM module, as built into this wheel\n{digest}  {jar.name}\n"


class EtlcDataHook(BuildHookInterface[BuilderConfig]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        jar = jvm_jar(root, self.metadata.version)
        self._scratch = tempfile.mkdtemp(prefix="etlc-wheel-")
        checksums = Path(self._scratch) / "jars.sha256"
        checksums.write_text(packaged_checksums(root, jar), encoding="utf-8")
        force_include: dict[str, str] = build_data["force_include"]
        force_include.update(data_files(root))
        force_include[str(checksums)] = f"{DATA}/jars.sha256"
        force_include[str(jar)] = f"{DATA}/jars/{jar.name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
