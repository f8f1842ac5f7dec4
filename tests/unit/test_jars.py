"""`etlc jars`: one Maven run for the jars a folder lacks, every jar checked against its pin.

Maven is stood in for by a small script that reads the generated pom as Maven would and
copies what it lists, so these tests need neither Maven nor the network; the end-to-end test
runs the real one.
"""

from __future__ import annotations

import hashlib
import json
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import etlc
from etlc.cli import app
from etlc.dsl import resources
from etlc.jars import (
    JarResolutionError,
    all_artifacts,
    install_jvm_jar,
    read_checksums,
    resolve,
)
from etlc.plugins import MavenArtifact
from etlc.spark_targets import spark_target

runner = CliRunner()
POSTGRES = MavenArtifact("org.postgresql", "postgresql", "42.7.14")
AVRO = MavenArtifact("org.apache.spark", "spark-avro_2.13", "4.2.0")
SDK_UTILS = MavenArtifact("software.amazon.awssdk", "utils", "2.35.4")
ARTIFACTS = (POSTGRES, AVRO, SDK_UTILS)

# Reads `-f <pom>` and `-DoutputDirectory=<dir>` as Maven does, logs its call and the pom, and
# copies each listed dependency as `<group>.<artifact>-<version>.jar` (content: the
# coordinate, or what REPOSITORY maps it to); exit code and [ERROR] text on request.
FAKE_MAVEN = """\
import json, os, pathlib, sys, xml.etree.ElementTree as ET
args = sys.argv[1:]
pom = pathlib.Path(args[args.index("-f") + 1])
out = pathlib.Path(next(a.split("=", 1)[1] for a in args if a.startswith("-DoutputDirectory=")))
log = pathlib.Path(os.environ["FAKE_MAVEN_LOG"])
calls = json.loads(log.read_text()) if log.exists() else []
calls.append({
    "args": args, "pom": pom.read_text(), "cwd": os.getcwd(),
    # What the real mvn script takes as the project's base (whose .mvn/jvm.config it applies):
    # MAVEN_BASEDIR, else the nearest folder from the pom's upwards holding `.mvn`.
    "basedir": os.environ.get("MAVEN_BASEDIR")
    or next((str(d) for d in (pom.parent, *pom.parent.parents) if (d / ".mvn").is_dir()), None),
    "nearest_mvn": next(
        (str(d) for d in (pom.parent, *pom.parent.parents) if (d / ".mvn").is_dir()), None
    ),
})
log.write_text(json.dumps(calls))
if os.environ.get("FAKE_MAVEN_FAIL"):
    print("[INFO] Scanning for projects...")
    print("[ERROR] " + os.environ["FAKE_MAVEN_FAIL"] + " -> [Help 1]")
    print("[ERROR] ")
    sys.exit(1)
repository = json.loads(os.environ.get("FAKE_MAVEN_REPOSITORY", "{}"))
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
out.mkdir(parents=True, exist_ok=True)
for dep in ET.parse(pom).getroot().iterfind("m:dependencies/m:dependency", ns):
    g, a, v = (dep.findtext(f"m:{k}", namespaces=ns) for k in ("groupId", "artifactId", "version"))
    coordinate = f"{g}:{a}:{v}"
    url = f"https://repo/{g.replace('.', '/')}/{a}/{v}/{a}-{v}.jar"
    print(f"[INFO] Downloading from central: {url}")
    print(f"[INFO] Downloaded from central: {url} (12 kB at 1.0 MB/s)")
    (out / f"{g}.{a}-{v}.jar").write_text(repository.get(coordinate, coordinate))
"""


def content(artifact: MavenArtifact) -> bytes:
    return artifact.coordinate.encode()


def pins(*artifacts: MavenArtifact) -> dict[str, str]:
    return {a.jar_name: hashlib.sha256(content(a)).hexdigest() for a in artifacts}


@pytest.fixture
def mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "mvn"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{FAKE_MAVEN}", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("FAKE_MAVEN_LOG", str(tmp_path / "maven-calls.json"))
    return script


def maven_calls(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "maven-calls.json"
    return json.loads(log.read_text()) if log.exists() else []


def test_one_maven_run_fetches_only_the_missing_jars(tmp_path: Path, mvn: Path) -> None:
    dest = tmp_path / "jars"
    dest.mkdir()
    (dest / AVRO.jar_name).write_bytes(content(AVRO))
    lines: list[str] = []
    paths = resolve(ARTIFACTS, dest, pins(*ARTIFACTS), mvn=str(mvn), progress=lines.append)

    assert paths == [dest / a.jar_name for a in ARTIFACTS]
    for artifact in ARTIFACTS:
        assert (dest / artifact.jar_name).read_bytes() == content(artifact)
    calls = maven_calls(tmp_path)
    assert len(calls) == 1
    call = calls[0]
    assert isinstance(call["args"], list) and isinstance(call["pom"], str)
    assert "-Dmdep.prependGroupId=true" in call["args"]
    assert "-DexcludeTransitive=true" in call["args"]
    assert any(str(a).endswith(":copy-dependencies") for a in call["args"])
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    deps = ET.fromstring(call["pom"]).findall("m:dependencies/m:dependency", ns)
    listed = {
        ":".join(
            d.findtext(f"m:{k}", namespaces=ns) or "" for k in ("groupId", "artifactId", "version")
        )
        for d in deps
    }
    assert listed == {POSTGRES.coordinate, SDK_UTILS.coordinate}  # the present jar is not fetched
    for dep in deps:
        assert dep.findtext("m:type", namespaces=ns) == "jar"
        exclusion = dep.find("m:exclusions/m:exclusion", ns)
        assert exclusion is not None and exclusion.findtext("m:groupId", namespaces=ns) == "*"
    # Maven's pom and staging folder live in a temporary folder, never in the user's.
    assert not Path(str(call["cwd"])).exists()
    assert sorted(p.name for p in dest.iterdir()) == sorted(a.jar_name for a in ARTIFACTS)
    assert lines == [
        f"1 of 3 jars already in {dest}, checked",
        "fetching 2 jar(s) with Maven (cached in ~/.m2)",
        f"  downloaded {POSTGRES.coordinate} (12 kB)",
        f"  downloaded {SDK_UTILS.coordinate} (12 kB)",
        f"[2/3] {POSTGRES.coordinate} ok",
        f"[3/3] {SDK_UTILS.coordinate} ok",
    ]


def test_with_every_jar_present_maven_is_not_needed(tmp_path: Path) -> None:
    dest = tmp_path / "jars"
    dest.mkdir()
    for artifact in ARTIFACTS:
        (dest / artifact.jar_name).write_bytes(content(artifact))
    lines: list[str] = []
    mvn = str(tmp_path / "no-maven-here")
    resolve(ARTIFACTS, dest, pins(*ARTIFACTS), mvn=mvn, progress=lines.append)
    assert lines == []  # each checked; the caller's summary says so, not a line per jar


def test_a_fetched_jar_that_does_not_match_its_pin_never_enters_the_folder(
    tmp_path: Path, mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MAVEN_REPOSITORY", json.dumps({POSTGRES.coordinate: "tampered"}))
    dest = tmp_path / "jars"
    lines: list[str] = []
    with pytest.raises(JarResolutionError, match="sha256 mismatch") as caught:
        resolve(ARTIFACTS, dest, pins(*ARTIFACTS), mvn=str(mvn), progress=lines.append)
    assert "\n" not in str(caught.value) and POSTGRES.jar_name in str(caught.value)
    assert not (dest / POSTGRES.jar_name).exists()
    assert (dest / AVRO.jar_name).read_bytes() == content(AVRO)  # the others are checked in
    assert f"[1/3] {POSTGRES.coordinate} sha256 mismatch: not copied" in lines
    assert not list(dest.glob(".*"))  # no half-copied file left behind


def test_a_fetched_jar_without_a_pin_is_refused_with_its_sha256(tmp_path: Path, mvn: Path) -> None:
    dest = tmp_path / "jars"
    with pytest.raises(JarResolutionError, match="no pinned sha256") as caught:
        resolve([POSTGRES], dest, {}, mvn=str(mvn))
    assert hashlib.sha256(content(POSTGRES)).hexdigest() in str(caught.value)
    assert not (dest / POSTGRES.jar_name).exists()


def test_every_failure_is_reported_in_one_line(tmp_path: Path) -> None:
    dest = tmp_path / "jars"
    dest.mkdir()
    many = [MavenArtifact("org.example", f"lib{i}", "1.0") for i in range(5)]
    for artifact in many:
        (dest / artifact.jar_name).write_bytes(b"changed")
    lines: list[str] = []
    with pytest.raises(JarResolutionError) as caught:
        resolve(many, dest, pins(*many), mvn=str(tmp_path / "none"), progress=lines.append)
    message = str(caught.value)
    assert "\n" not in message and message.endswith("and 2 more (see above)")
    assert [line.split()[-1] for line in lines] == ["removed"] * 5
    assert not list(dest.iterdir())


def test_maven_failing_is_one_line_with_its_first_error(
    tmp_path: Path, mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MAVEN_FAIL", "Could not resolve dependencies for project x")
    with pytest.raises(JarResolutionError) as caught:
        resolve([POSTGRES], tmp_path / "jars", pins(POSTGRES), mvn=str(mvn))
    assert str(caught.value) == (
        "Maven could not fetch the jars (exit 1): Could not resolve dependencies for project x"
    )


def test_without_maven_the_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(JarResolutionError, match="not on PATH; install Maven"):
        resolve([POSTGRES], tmp_path / "jars", pins(POSTGRES), mvn=str(tmp_path / "no-mvn"))


@pytest.mark.parametrize(
    "artifact",
    [
        MavenArtifact("org.example", "lib", "[1.0,2.0)"),  # a range, not a pin
        MavenArtifact("org.example", "lib</artifactId><x>", "1.0"),
        MavenArtifact("", "lib", "1.0"),
    ],
)
def test_a_coordinate_that_is_not_exact_is_refused_before_maven(
    tmp_path: Path, mvn: Path, artifact: MavenArtifact
) -> None:
    with pytest.raises(JarResolutionError, match="not an exact Maven coordinate"):
        resolve([artifact], tmp_path / "jars", {}, mvn=str(mvn))
    assert maven_calls(tmp_path) == []


def test_jar_names_match_mavens_prepend_group_id() -> None:
    # copy-dependencies with prependGroupId writes `<groupId>.<artifactId>-<version>.jar`
    # (checked against Maven 3.8.7 and maven-dependency-plugin 3.8.1).
    assert SDK_UTILS.jar_name == "software.amazon.awssdk.utils-2.35.4.jar"
    assert {a.jar_name for a in all_artifacts(spark_target())} <= set(
        read_checksums(resources.jar_checksums_path())
    )


# --- the pins file ------------------------------------------------------------------------


def test_read_checksums_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    sums = tmp_path / "sums"
    sums.write_text(f"# header\n\n{'a' * 64}  x.jar\n{'b' * 64} y.jar\n")
    assert read_checksums(sums) == {"x.jar": "a" * 64, "y.jar": "b" * 64}


@pytest.mark.parametrize("line", ["abc  x.jar", f"{'a' * 64}", f"{'A' * 64}  x.jar", "x y z"])
def test_a_malformed_pin_names_file_and_line(tmp_path: Path, line: str) -> None:
    sums = tmp_path / "sums"
    sums.write_text(f"# header\n{'a' * 64}  ok.jar\n{line}\n")
    with pytest.raises(JarResolutionError, match=r"sums:3: expected"):
        read_checksums(sums)


# --- etlc's own JVM module ----------------------------------------------------------------


def jvm_jar(folder: Path, data: bytes = b"etlc-jvm") -> Path:
    jar = folder / f"etlc-jvm-{etlc.__version__}.jar"
    jar.parent.mkdir(parents=True, exist_ok=True)
    jar.write_bytes(data)
    return jar


def test_the_jvm_jar_is_copied_and_checked_against_its_pin(tmp_path: Path) -> None:
    source = jvm_jar(tmp_path / "wheel")
    sums = {source.name: hashlib.sha256(b"etlc-jvm").hexdigest()}
    lines: list[str] = []
    target = install_jvm_jar(source, tmp_path / "jars", sums, progress=lines.append)
    assert target.read_bytes() == b"etlc-jvm"
    assert lines == [f"{source.name} ok (pinned)"]
    install_jvm_jar(source, tmp_path / "jars", sums, progress=lines.append)
    assert len(lines) == 1  # present and matching: nothing to say


def test_an_older_jvm_jar_in_the_folder_is_replaced(tmp_path: Path) -> None:
    source = jvm_jar(tmp_path / "checkout", b"new build")
    stale = jvm_jar(tmp_path / "jars", b"old build")
    lines: list[str] = []
    install_jvm_jar(source, tmp_path / "jars", {}, progress=lines.append)
    assert stale.read_bytes() == b"new build"
    assert lines[0].startswith(f"{source.name} ok (not pinned: built in this checkout")


def test_a_jvm_jar_that_does_not_match_its_pin_is_not_copied(tmp_path: Path) -> None:
    source = jvm_jar(tmp_path / "wheel")
    with pytest.raises(JarResolutionError, match="sha256 mismatch"):
        install_jvm_jar(source, tmp_path / "jars", {source.name: "0" * 64})
    assert not (tmp_path / "jars" / source.name).exists()


def test_the_jvm_jar_copied_onto_itself_is_left_alone(tmp_path: Path) -> None:
    source = jvm_jar(tmp_path / "jars")
    assert install_jvm_jar(source, tmp_path / "jars", {}) == source
    assert source.read_bytes() == b"etlc-jvm"


def test_a_missing_jvm_jar_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(JarResolutionError, match="make jvm"):
        install_jvm_jar(None, tmp_path / "jars", {})


# --- where etlc finds its own files -------------------------------------------------------


def fake_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed etlc: the package with its _data, and no checkout around it."""
    package = tmp_path / "site-packages" / "etlc"
    jar = jvm_jar(package / "_data" / "jars", b"packaged")
    pinned = {
        **pins(*all_artifacts(spark_target())),
        jar.name: hashlib.sha256(b"packaged").hexdigest(),
    }
    (package / "_data" / "jars.sha256").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in pinned.items())
    )
    monkeypatch.setattr(resources, "_PACKAGE", package)
    monkeypatch.setattr(resources, "_CHECKOUT", package.parent)
    return package


def test_an_installed_etlc_uses_its_packaged_pins_and_jar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = fake_install(tmp_path, monkeypatch)
    assert resources.jar_checksums_path() == package / "_data" / "jars.sha256"
    assert (
        resources.jvm_jar_path() == package / "_data" / "jars" / f"etlc-jvm-{etlc.__version__}.jar"
    )


def test_a_checkout_uses_its_own_pins_and_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "jvm" / "etlc-jvm").mkdir(parents=True)
    (checkout / "jvm" / "etlc-jvm" / "pom.xml").write_text("<project/>")
    monkeypatch.setattr(resources, "_PACKAGE", checkout / "etlc")
    monkeypatch.setattr(resources, "_CHECKOUT", checkout)
    assert resources.jar_checksums_path() == checkout / "jvm" / "jars.sha256"
    assert resources.jvm_jar_path() is None
    built = jvm_jar(checkout / "jvm" / "etlc-jvm" / "target")
    assert resources.jvm_jar_path() == built
    copied = jvm_jar(checkout / "jars")
    assert resources.jvm_jar_path() == copied


def test_site_packages_is_never_taken_for_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"
    jvm_jar(site / "jars")  # someone else's folder next to the package
    monkeypatch.setattr(resources, "_PACKAGE", site / "etlc")
    monkeypatch.setattr(resources, "_CHECKOUT", site)
    assert resources.jvm_jar_path() is None


# --- the command --------------------------------------------------------------------------


def test_etlc_jars_in_a_project_uses_the_pins_etlc_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mvn: Path
) -> None:
    fake_install(tmp_path, monkeypatch)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("PATH", str(mvn.parent), prepend=":")
    result = runner.invoke(app, ["jars"])
    assert result.exit_code == 0, result.output
    artifacts = all_artifacts(spark_target())
    jar = f"etlc-jvm-{etlc.__version__}.jar"
    assert sorted(p.name for p in (project / "jars").iterdir()) == sorted(
        [a.jar_name for a in artifacts] + [jar]
    )
    assert (project / "jars" / jar).read_bytes() == b"packaged"
    lines = result.output.splitlines()
    assert lines[0] == f"fetching {len(artifacts)} jar(s) with Maven (cached in ~/.m2)"
    for number, artifact in enumerate(artifacts, start=1):
        assert f"[{number}/{len(artifacts)}] {artifact.coordinate} ok" in lines
    assert lines[-2:] == [
        f"{jar} ok (pinned)",
        f"{len(artifacts) + 1} jars for Spark 4.2 (Scala 2.13) in jars, each checked against "
        f"{resources.jar_checksums_path()}",
    ]
    assert sorted(p.name for p in project.iterdir()) == ["jars"]  # no pom, no staging
    assert len(maven_calls(tmp_path)) == 1


def test_etlc_jars_with_a_missing_pins_file_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["jars", "--dest", str(tmp_path / "j"), "--checksums", str(tmp_path / "nope")]
    )
    assert result.exit_code == 1
    assert result.output == f"error: {tmp_path / 'nope'}: no such checksums file\n"


def test_etlc_jars_into_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    result = runner.invoke(app, ["jars", "--dest", str(tmp_path / "a-file" / "jars")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_mvn_folder_planted_above_the_scratch_folder_is_not_maven_s(
    tmp_path: Path, mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /tmp is shared: another user's /tmp/.mvn/jvm.config (`-javaagent:...`) would be applied
    # by the mvn script to the run in /tmp/etlc-jars-*, running their code as ours.
    shared = tmp_path / "shared-tmp"
    (shared / ".mvn").mkdir(parents=True)
    (shared / ".mvn" / "jvm.config").write_text("-javaagent:/somewhere/evil.jar\n")
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    resolve([POSTGRES], tmp_path / "jars", pins(POSTGRES), mvn=str(mvn))

    (call,) = maven_calls(tmp_path)
    pom_dir = str(Path(str(call["cwd"])))
    assert pom_dir.startswith(str(shared))  # the scratch folder did lie below the plant
    assert call["basedir"] == pom_dir
    assert call["nearest_mvn"] == pom_dir
