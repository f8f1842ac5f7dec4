"""Resolve the JVM jars drivers need from Maven, pinned and cached, into a local folder.

Coordinates come from the plugin table (exact versions, no ranges). Maven fetches each jar once
into its local repository and copies it here; every jar is then checked against the sha256 in
``jvm/jars.sha256``, so a changed artifact is caught instead of run.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from etlc.plugins import CORE_ARTIFACTS, MavenArtifact, plugin_table


class JarResolutionError(RuntimeError):
    pass


def all_artifacts() -> list[MavenArtifact]:
    found = set(CORE_ARTIFACTS)
    for role in ("extract", "transform", "load"):
        for type_ in plugin_table().types(role):
            spec = plugin_table().get(role, type_)
            if spec:
                found.update(spec.artifacts)
                for extra in spec.format_artifacts.values():
                    found.update(extra)
    return sorted(found)


def read_checksums(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            out[name] = digest
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve(
    artifacts: Iterable[MavenArtifact],
    dest: Path,
    checksums: dict[str, str],
    mvn: str = "mvn",
) -> list[Path]:
    """Copy each artifact's jar into ``dest`` (skipping those present) and verify it."""
    dest.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for artifact in artifacts:
        target = dest / artifact.jar_name
        if not target.is_file():
            if shutil.which(mvn) is None:
                raise JarResolutionError(f"`{mvn}` is not on PATH; install Maven to resolve jars")
            cmd = [
                mvn,
                "-q",
                "-B",
                "dependency:copy",
                f"-Dartifact={artifact.coordinate}",
                f"-DoutputDirectory={dest}",
                "-Dtransitive=false",
                "-Dmdep.prependGroupId=true",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not target.is_file():
                tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
                raise JarResolutionError(
                    f"Maven could not resolve {artifact.coordinate}:\n" + "\n".join(tail)
                )
        expected = checksums.get(artifact.jar_name)
        if expected is None:
            raise JarResolutionError(
                f"{artifact.jar_name} has no pinned sha256; add `{sha256(target)}  "
                f"{artifact.jar_name}` to jvm/jars.sha256 after checking it"
            )
        if sha256(target) != expected:
            target.unlink()
            raise JarResolutionError(f"{artifact.jar_name}: sha256 mismatch; removed it")
        paths.append(target)
    return paths
