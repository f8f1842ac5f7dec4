"""What the wheel holds, read from its configuration and its build hook (hatch_build.py),
without building one; the end-to-end test builds and installs the real thing."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from hatchling.builders.wheel import WheelBuilder

import etlc
from etlc.jars import read_checksums

ROOT = Path(__file__).resolve().parents[2]
VERSION = etlc.__version__
JAR = f"etlc-jvm-{VERSION}.jar"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hatch_build", ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


def test_the_wheel_holds_the_package_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["etlc"]
    assert wheel["hooks"]["custom"]["path"] == "hatch_build.py"
    files = [f.distribution_path for f in WheelBuilder(str(ROOT)).recurse_included_files()]
    assert {f.split("/")[0] for f in files} == {"etlc"}  # no bench/, no tests/
    assert "etlc/codegen/templates/driver.py.j2" in files
    assert "etlc/codegen/templates/submit.sh.j2" in files
    assert "etlc/jars.py" in files and "etlc/dsl/resources.py" in files


def test_the_hook_adds_grammar_and_every_schema_under_data() -> None:
    mapped = hook.data_files(ROOT)
    schemas = sorted((ROOT / "schemas").glob("*.json"))
    assert {
        ROOT / "schemas" / "pipeline.schema.json",
        ROOT / "schemas" / "environment.schema.json",
    } <= set(schemas)
    for schema in schemas:
        assert mapped[str(schema)] == f"etlc/_data/schemas/{schema.name}"
    assert mapped[str(ROOT / "grammar")] == "etlc/_data/grammar"
    assert mapped[str(ROOT / "schemas" / "jvm")] == "etlc/_data/schemas/jvm"
    assert all(target.startswith("etlc/_data/") for target in mapped.values())
    assert not any("avro" in source for source in mapped)  # this repository's examples


# --- the etlc-jvm jar: reused when fresh, else built with Maven ---------------------------


def jvm_tree(root: Path, version: str = VERSION) -> Path:
    """The files the jar is built from, all dated one hour ago."""
    module = root / "jvm" / "etlc-jvm"
    (module / "src" / "main").mkdir(parents=True)
    (root / "schemas" / "jvm").mkdir(parents=True)
    (module / "pom.xml").write_text(
        f"<project><artifactId>etlc-jvm</artifactId>\n  <version>{version}</version></project>"
    )
    (module / "src" / "main" / "A.scala").write_text("object A")
    (root / "schemas" / "jvm" / "x.json").write_text("{}")
    (root / "jvm" / "jars.sha256").write_text(f"# pins\n{'a' * 64}  x.jar")
    for path in hook.jar_sources(root):
        os.utime(path, (0, time.time() - 3600))
    return module


def built(path: Path, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"jar bytes")
    os.utime(path, (0, time.time() - age))
    return path


class Maven:
    """Records the commands it is given; ``package`` leaves a jar, unless told to fail."""

    def __init__(self, root: Path, code: int = 0) -> None:
        self.root, self.code = root, code
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> int:
        self.calls.append(list(cmd))
        if self.code == 0:
            built(self.root / "jvm" / "etlc-jvm" / "target" / JAR)
        return self.code


def test_a_jar_newer_than_its_sources_is_reused(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    older = built(tmp_path / "jvm" / "etlc-jvm" / "target" / JAR, age=60)
    newer = built(tmp_path / "jars" / JAR, age=10)
    maven = Maven(tmp_path)
    assert hook.jvm_jar(tmp_path, VERSION, run=maven, mvn=sys.executable) == newer
    assert older.is_file() and maven.calls == []


def test_a_jar_older_than_a_source_is_built_again(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    built(tmp_path / "jars" / JAR, age=7200)
    maven = Maven(tmp_path)
    jar = hook.jvm_jar(tmp_path, VERSION, run=maven, mvn=sys.executable)
    assert jar == tmp_path / "jvm" / "etlc-jvm" / "target" / JAR
    assert maven.calls == [
        [sys.executable, "-q", "-B", "-f", str(tmp_path / "jvm/etlc-jvm/pom.xml"), "package"]
    ]


def test_without_maven_the_build_says_what_to_install(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    with pytest.raises(hook.JarBuildError, match="install Maven and a JDK 17"):
        hook.jvm_jar(tmp_path, VERSION, run=Maven(tmp_path), mvn=str(tmp_path / "no-mvn"))


def test_a_failed_maven_build_fails_the_wheel(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    with pytest.raises(hook.JarBuildError, match=r"failed \(exit 1\)"):
        hook.jvm_jar(tmp_path, VERSION, run=Maven(tmp_path, code=1), mvn=sys.executable)


def test_a_pom_of_another_version_is_refused(tmp_path: Path) -> None:
    jvm_tree(tmp_path, version="9.9.9")
    with pytest.raises(hook.JarBuildError, match=r"etlc-jvm 9\.9\.9 but etlc is"):
        hook.jvm_jar(tmp_path, VERSION, run=Maven(tmp_path), mvn=sys.executable)


def test_the_pom_version_is_etlcs() -> None:
    assert hook.pom_version(ROOT) == VERSION


def test_the_packaged_pins_add_the_jar_and_read_back(tmp_path: Path) -> None:
    jar = built(tmp_path / JAR)
    sums = tmp_path / "jars.sha256"
    other = built(tmp_path / "2.12" / JAR)
    scala_212 = f"etlc-jvm_2.12-{VERSION}.jar"
    sums.write_text(hook.packaged_checksums(ROOT, {JAR: jar, scala_212: other}))
    pins = read_checksums(sums)
    own = {JAR: _sha(b"jar bytes"), scala_212: _sha(b"jar bytes")}
    assert pins == {**read_checksums(ROOT / "jvm" / "jars.sha256"), **own}


def test_the_scala_2_12_jar_is_built_with_its_profile_into_its_own_folder(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    calls: list[list[str]] = []

    def maven(cmd: Sequence[str]) -> int:
        calls.append(list(cmd))
        built(tmp_path / "jvm" / "etlc-jvm" / "target-2.12" / JAR)
        return 0

    jar = hook.jvm_jar(tmp_path, VERSION, run=maven, mvn=sys.executable, scala="2.12")
    assert jar == tmp_path / "jvm" / "etlc-jvm" / "target-2.12" / JAR
    assert calls[0][-3:] == ["-P", "spark-3.5", "package"]
    assert hook.jar_name(VERSION, "2.12") == f"etlc-jvm_2.12-{VERSION}.jar"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_hook(root: Path, version: str) -> tuple[Any, dict[str, Any]]:
    build_hook = hook.EtlcDataHook(
        str(root), {}, None, SimpleNamespace(version=VERSION), str(root / "dist"), "wheel"
    )
    build_data: dict[str, Any] = {"force_include": {}}
    build_hook.initialize(version, build_data)
    return build_hook, build_data


def test_the_hook_puts_the_jar_and_its_pins_in_the_wheel(tmp_path: Path) -> None:
    jvm_tree(tmp_path)
    shutil.copytree(ROOT / "grammar", tmp_path / "grammar")
    (tmp_path / "schemas" / "pipeline.schema.json").write_text("{}")
    jar = built(tmp_path / "jars" / JAR)
    scala_212 = f"etlc-jvm_2.12-{VERSION}.jar"
    jar_212 = built(tmp_path / "jars" / scala_212)
    build_hook, build_data = run_hook(tmp_path, "standard")
    force = build_data["force_include"]
    assert force[str(jar)] == f"etlc/_data/jars/{JAR}"
    assert force[str(jar_212)] == f"etlc/_data/jars/{scala_212}"
    (pins,) = [Path(source) for source, target in force.items() if target.endswith("jars.sha256")]
    assert read_checksums(pins)[JAR] == read_checksums(pins)[scala_212] == _sha(b"jar bytes")
    assert force[str(tmp_path / "schemas" / "pipeline.schema.json")].startswith("etlc/_data/")
    build_hook.finalize("standard", build_data, str(tmp_path / "dist" / "x.whl"))
    assert not pins.exists()  # the scratch copy goes with the build


def test_an_editable_install_gets_nothing_and_builds_nothing(tmp_path: Path) -> None:
    jvm_tree(tmp_path)  # no jar: building one would need Maven
    _, build_data = run_hook(tmp_path, "editable")
    assert build_data == {"force_include": {}}
