"""Fetch the JVM jars drivers need from Maven, pinned and cached, into a local folder.

Coordinates come from the plugin table (exact versions, no ranges). One Maven run fetches
every jar the folder lacks: a pom written to a temporary folder lists them as dependencies
without their own, and ``dependency:copy-dependencies`` copies them into a staging folder
there. Maven's local repository (``~/.m2``) caches them for every project on the machine.
A jar enters the folder only once its sha256 matches its pin (``jvm/jars.sha256``, which the
wheel carries), so a changed artifact is caught instead of run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import etlc
from etlc.dsl.steps import plugin_table
from etlc.plugins import MavenArtifact, NotOnTargetError, SparkTarget, core_jars

Progress = Callable[[str], None]

# The plugin's own version, not the Maven release's default (2.8 on Maven 3.8, other elsewhere).
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
CHECKSUMS_LIMIT = 1 << 20  # bytes: a pin file is a few kB
# Group, artifact and version as Maven writes them; no ranges (`[`, `(`, `,`), no XML.
_COORDINATE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_PIN = re.compile(r"([0-9a-f]{64}) +(\S+)")
_DOWNLOADED = re.compile(r"Downloaded from [^:]+: (\S+) \(([^)]*?)(?: at [^)]*)?\)")


class JarResolutionError(RuntimeError):
    """Jars could not be had or did not match their pins; the message is one line."""


def _silent(line: str) -> None:
    pass


def all_artifacts(target: SparkTarget) -> list[MavenArtifact]:
    """Every jar a driver compiled for ``target`` may name (what the line cannot run, none)."""
    found = set(core_jars(target))
    for role in ("extract", "transform", "load"):
        for type_ in plugin_table().types(role):
            spec = plugin_table().get(role, type_)
            if spec is None:
                continue
            for fmt in ("", *spec.format_artifacts):
                with contextlib.suppress(NotOnTargetError):
                    found.update(spec.jars(target, fmt))
    return sorted(found)


def read_checksums(path: Path) -> dict[str, str]:
    """The pins in ``path``: ``<sha256>  <jar name>`` per line, ``#`` starts a comment.

    A missing file pins nothing; a malformed line is an error naming ``path:line``.
    """
    if not path.is_file():
        return {}
    if path.stat().st_size > CHECKSUMS_LIMIT:
        raise JarResolutionError(f"{path}: over {CHECKSUMS_LIMIT} bytes; not a checksums file")
    out: dict[str, str] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        pin = _PIN.fullmatch(line.strip())
        if pin is None:
            raise JarResolutionError(
                f"{path}:{number}: expected `<sha256 in lowercase hex>  <jar file name>`"
            )
        out[pin.group(2)] = pin.group(1)
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Tally:
    """Numbered progress lines, and what went wrong, for one run."""

    total: int
    progress: Progress
    problems: list[str] = field(default_factory=list)
    done: int = 0
    present: int = 0  # found in the folder and matching their pins: counted, not listed

    def report(self, artifact: MavenArtifact, outcome: str, problem: str | None = None) -> None:
        self.done += 1
        self.progress(f"[{self.done}/{self.total}] {artifact.coordinate} {outcome}")
        if problem:
            self.problems.append(problem)

    def checked(self) -> None:
        self.done += 1
        self.present += 1

    def raise_problems(self) -> None:
        if self.problems:
            shown = "; ".join(self.problems[:3])
            more = len(self.problems) - 3
            raise JarResolutionError(shown + (f"; and {more} more (see above)" if more > 0 else ""))


def _unpinned(name: str, digest: str) -> str:
    return f"{name} has no pinned sha256; pin `{digest}  {name}` after checking it"


def resolve(
    artifacts: Iterable[MavenArtifact],
    dest: Path,
    checksums: Mapping[str, str],
    mvn: str = "mvn",
    progress: Progress = _silent,
) -> list[Path]:
    """Every artifact's jar in ``dest``, checked: those already there, then one Maven run.

    A jar in ``dest`` that does not match its pin is removed; a fetched one that does not
    never enters ``dest``. Either way the run fails after reporting every jar.
    """
    wanted = list(dict.fromkeys(artifacts))
    for artifact in wanted:
        _check_coordinate(artifact)
    dest.mkdir(parents=True, exist_ok=True)
    tally = _Tally(len(wanted), progress)
    missing = [a for a in wanted if not _check_present(a, dest, checksums, tally)]
    if missing:
        if tally.present:
            progress(f"{tally.present} of {tally.total} jars already in {dest}, checked")
        progress(f"fetching {len(missing)} jar(s) with Maven (cached in ~/.m2)")
        with tempfile.TemporaryDirectory(prefix="etlc-jars-") as scratch:
            staging = Path(scratch) / "jars"
            _maven_copy(missing, Path(scratch), staging, mvn, progress)
            for artifact in missing:
                _install_fetched(artifact, staging / artifact.jar_name, dest, checksums, tally)
    tally.raise_problems()
    return [dest / a.jar_name for a in wanted]


def _check_coordinate(artifact: MavenArtifact) -> None:
    for part in (artifact.group, artifact.artifact, artifact.version):
        if not _COORDINATE_PART.fullmatch(part):
            raise JarResolutionError(
                f"{artifact.coordinate!r} is not an exact Maven coordinate (group:artifact:version)"
            )


def _check_present(
    artifact: MavenArtifact, dest: Path, checksums: Mapping[str, str], tally: _Tally
) -> bool:
    """Whether the jar is in ``dest`` already (checked and reported, good or bad)."""
    target = dest / artifact.jar_name
    if not target.is_file():
        return False
    digest, expected = sha256(target), checksums.get(artifact.jar_name)
    if expected is None:
        tally.report(artifact, "has no pinned sha256", _unpinned(artifact.jar_name, digest))
    elif digest != expected:
        target.unlink()
        tally.report(
            artifact,
            "sha256 mismatch: removed",
            f"{artifact.jar_name}: sha256 mismatch; removed it",
        )
    else:
        tally.checked()
    return True


def _install_fetched(
    artifact: MavenArtifact,
    staged: Path,
    dest: Path,
    checksums: Mapping[str, str],
    tally: _Tally,
) -> None:
    name = artifact.jar_name
    if not staged.is_file():
        tally.report(artifact, "not fetched", f"Maven did not copy {name}")
        return
    digest, expected = sha256(staged), checksums.get(name)
    if expected is None:
        tally.report(artifact, "has no pinned sha256: not copied", _unpinned(name, digest))
    elif digest != expected:
        problem = (
            f"{name}: sha256 mismatch (Maven's copy in ~/.m2 differs from the pin); not copied"
        )
        tally.report(artifact, "sha256 mismatch: not copied", problem)
    else:
        _copy_checked(staged, dest / name, digest)
        tally.report(artifact, "ok")


def _pom(artifacts: Sequence[MavenArtifact]) -> str:
    # Each jar alone: its own dependencies are other pins' business (or pyspark's).
    dependencies = "".join(
        f"    <dependency><groupId>{a.group}</groupId><artifactId>{a.artifact}</artifactId>"
        f"<version>{a.version}</version><type>jar</type><exclusions><exclusion>"
        "<groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>\n"
        for a in artifacts
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>etlc.jars</groupId><artifactId>fetch</artifactId><version>0</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{dependencies}  </dependencies>\n"
        "</project>\n"
    )


def _maven_copy(
    artifacts: Sequence[MavenArtifact], scratch: Path, staging: Path, mvn: str, progress: Progress
) -> None:
    """One Maven run copying ``artifacts`` into ``staging``; a line per jar downloaded."""
    if shutil.which(mvn) is None:
        raise JarResolutionError(f"`{mvn}` is not on PATH; install Maven (and a JDK) to fetch jars")
    pom = scratch / "pom.xml"
    pom.write_text(_pom(artifacts), encoding="utf-8")
    # The mvn script takes the nearest folder above the pom holding `.mvn` as the project's
    # base and applies its jvm.config (JVM options: -javaagent runs code) and maven.config;
    # the scratch folder lies in /tmp, where anyone may plant /tmp/.mvn. An empty one here
    # ends that search, and MAVEN_BASEDIR skips it where the script honours it.
    (scratch / ".mvn").mkdir(exist_ok=True)
    environ = dict(os.environ, MAVEN_BASEDIR=str(scratch))
    cmd = [
        *(mvn, "-B", "-Dstyle.color=never", "-f", str(pom)),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-Dmdep.prependGroupId=true",  # <group>.<artifact>-<version>.jar, MavenArtifact.jar_name
        "-DexcludeTransitive=true",
    ]
    errors: list[str] = []
    last = ""
    with subprocess.Popen(
        cmd,
        cwd=scratch,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as maven:
        assert maven.stdout is not None
        for raw in maven.stdout:
            line = raw.strip()
            last = line or last
            if line.startswith("[ERROR]"):
                errors.append(line.removeprefix("[ERROR]").strip())
            elif downloaded := _downloaded(line, artifacts):
                progress(f"  downloaded {downloaded}")
    if maven.returncode != 0:
        why = next((e for e in errors if e), last).removesuffix("-> [Help 1]").strip()
        raise JarResolutionError(f"Maven could not fetch the jars (exit {maven.returncode}): {why}")


def _downloaded(line: str, artifacts: Sequence[MavenArtifact]) -> str | None:
    """``<coordinate> (<size>)`` when Maven's line says it downloaded one of the jars."""
    found = _DOWNLOADED.search(line)
    if found is None:
        return None
    url, size = found.groups()
    for a in artifacts:
        path = f"/{a.group.replace('.', '/')}/{a.artifact}/{a.version}/{a.artifact}-{a.version}.jar"
        if url.endswith(path):
            return f"{a.coordinate} ({size})"
    return None


def _copy_checked(source: Path, target: Path, digest: str) -> None:
    """Copy ``source`` to ``target`` through a new file beside it, replaced only when whole
    and equal to ``digest``: a reader never sees half a jar, and a link at ``target`` is
    replaced, not followed."""
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as stream:
            shutil.copyfileobj(stream, out)
        if sha256(Path(part)) != digest:
            raise JarResolutionError(f"{target.name}: changed while it was copied; not copied")
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise


def install_jvm_jar(
    source: Path | None,
    dest: Path,
    checksums: Mapping[str, str],
    progress: Progress = _silent,
    name: str | None = None,
) -> Path:
    """etlc's own JVM module (``source``, from etlc.dsl.resources.jvm_jar_path) into ``dest``.

    A wheel pins the jar it carries, and a copy that does not match is refused; a checkout's
    build has no pin (it changes with every source edit) and is copied as built.
    """
    name = name or (source.name if source else f"etlc-jvm-{etlc.__version__}.jar")
    if source is None:
        raise JarResolutionError(
            f"{name} is missing: an installed etlc carries it; in etlc's checkout, `make jvm` "
            "builds it"
        )
    expected = checksums.get(name)
    digest = sha256(source)
    if expected is not None and digest != expected:
        raise JarResolutionError(f"{source}: sha256 mismatch with its pin; reinstall etlc")
    target = dest / name
    dest.mkdir(parents=True, exist_ok=True)
    how = "pinned" if expected else f"not pinned: built in this checkout, {source.parent}"
    if not (target.is_file() and (target.samefile(source) or sha256(target) == digest)):
        _copy_checked(source, target, digest)
        progress(f"{name} ok ({how})")
    return target
