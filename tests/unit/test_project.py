"""The project file: discovery, hostile project files, the folders checking and codegen use."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from etlc.codegen.render import render
from etlc.dsl.checker import check_file, default_options
from etlc.project import (
    FOLDERS,
    KEYS,
    RUNTIME_DIRS,
    Project,
    ProjectError,
    find_project,
    init_project,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder above the test's folders, so no project file of the machine's is found."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def project_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "etlc.toml"
    path.write_text(text)
    return path


def refused(start: Path) -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        find_project(start)
    return caught.value


# --- discovery --------------------------------------------------------------------------------


def test_the_project_is_found_from_a_subfolder(home: Path) -> None:
    root = home / "repo"
    file = project_file(root, 'definitions = "flows"\nstage_dir = ".state/stage"\n')
    sub = root / "flows" / "sales"
    sub.mkdir(parents=True)
    project = find_project(sub)
    assert (project.root, project.file) == (root, file)
    assert project.definitions == root / "flows"
    assert project.environments == root / "pipelines" / "env"  # not named: the default
    assert (project.stage_dir, project.checkpoint_dir) == (".state/stage", ".etlc/checkpoints")


def test_the_working_directory_is_the_default_start(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_file(home / "repo", 'generated = "build/drivers"\n')
    (home / "repo" / "pipelines").mkdir()
    monkeypatch.chdir(home / "repo" / "pipelines")
    assert find_project().generated == home / "repo" / "build" / "drivers"


def test_pyproject_with_a_tool_etlc_table_is_a_project(home: Path) -> None:
    root = home / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.etlc]\njars = "lib/jars"\n'
    )
    project = find_project(root)
    assert project.file == root / "pyproject.toml"
    assert project.jars == root / "lib" / "jars"


def test_a_pyproject_without_tool_etlc_is_not_a_marker(home: Path) -> None:
    outer = home / "repo"
    project_file(outer, "")
    inner = outer / "tools"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "etlc-helpers"\n[tool.ruff]\n')
    assert find_project(inner).root == outer


@pytest.mark.parametrize("kind", ["dangling link", "folder", "not utf-8"])
def test_a_pyproject_that_cannot_be_read_is_not_a_marker(home: Path, kind: str) -> None:
    outer = home / "repo"
    project_file(outer, "")
    inner = outer / "tools"
    inner.mkdir()
    pyproject = inner / "pyproject.toml"
    if kind == "dangling link":
        pyproject.symlink_to(home / "nowhere.toml")
    elif kind == "folder":
        pyproject.mkdir()
    else:
        pyproject.write_bytes(b"[tool.etlc]\n# \xff\n")
    assert find_project(inner).root == outer


def test_no_project_file_makes_an_implicit_project_with_todays_layout(home: Path) -> None:
    start = home / "somewhere"
    start.mkdir()
    project = find_project(start)
    assert project == Project.at(start)
    assert project.file is None
    assert {k: project.relative(getattr(project, k)) for k in FOLDERS} == dict(FOLDERS)


def test_the_walk_stops_at_the_home_folder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A project file above your home folder (someone else's, or a shared one) is not yours.
    project_file(home, 'definitions = "flows"\n')
    monkeypatch.setenv("HOME", str(home / "me"))
    start = home / "me" / "work"
    start.mkdir(parents=True)
    assert find_project(start).file is None
    project_file(home / "me", "")
    assert find_project(start).file == home / "me" / "etlc.toml"


def test_both_an_etlc_toml_and_a_tool_etlc_table_are_refused(home: Path) -> None:
    project_file(home / "repo", "")
    (home / "repo" / "pyproject.toml").write_text("[tool.etlc]\n")
    assert "keep the project's settings in one" in str(refused(home / "repo"))


def test_the_defaults_of_the_project_are_the_runtimes() -> None:
    # Codegen leaves out run_driver arguments equal to the defaults; they must agree.
    from etlc.runtime.driver import ENV_DIR
    from etlc.runtime.environment import Settings

    assert FOLDERS["environments"] == ENV_DIR
    defaults = Settings()
    assert dict(RUNTIME_DIRS) == {
        "stage_dir": defaults.stage_dir,
        "checkpoint_dir": defaults.checkpoint_dir,
    }


def test_this_repository_is_a_project_with_todays_layout() -> None:
    project = find_project(ROOT / "pipelines")
    assert project.file == ROOT / "etlc.toml"
    assert project == Project.at(ROOT, file=ROOT / "etlc.toml")


def test_the_init_template_project_file_lists_every_key_with_its_default(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    text = (root / "etlc.toml").read_text()
    written = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert written == [f'{key} = "{value}"' for key, value in KEYS.items()]
    assert find_project(root) == Project.at(root, file=root / "etlc.toml")


# --- hostile project files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("..", "`..`"),
        ("../elsewhere", "`..`"),
        ("flows/../../x", "`..`"),
        ("/etc", "absolute"),
        ("flows\\\\x", "backslash"),
        ("flows\\u0007", "control character"),
        ("", "empty"),
        ("flows//x", "empty"),
        ("$(touch x)", "plain"),
    ],
)
def test_a_folder_that_is_not_a_plain_relative_path_is_refused(
    home: Path, value: str, why: str
) -> None:
    file = project_file(home / "repo", f'# the folders\n\n  definitions = "{value}"\n')
    error = refused(home / "repo")
    assert str(error).startswith(f"{file}:3:3: `definitions` = ")
    assert why in error.message
    assert "\x07" not in str(error)


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("generated", ".git/hooks", "belongs to another tool"),
        ("jars", ".git", "belongs to another tool"),
        ("jars", ".GIT.", "belongs to another tool"),  # `.git` on macOS and Windows
        ("definitions", "x/.Hg", "belongs to another tool"),
        ("stage_dir", ".git/stage", "belongs to another tool"),
        ("checkpoint_dir", ".mvn/c", "belongs to another tool"),
        ("generated", ".venv/lib/python3.11/site-packages", "belongs to another tool"),
        ("generated", "venv/lib/python3.11/site-packages", "belongs to another tool"),
        ("generated", ".generated", "hidden folder"),
        ("environments", "pipelines/.env", "hidden folder"),
    ],
)
def test_a_folder_of_another_tool_or_hidden_is_refused(
    home: Path, key: str, value: str, why: str
) -> None:
    # `generated = ".git/hooks"` had compile write into git's hooks folder, and a pipeline
    # named `sitecustomize` compiled into site-packages would run at every Python start.
    file = project_file(home / "repo", f'{key} = "{value}"\n')
    error = refused(home / "repo")
    assert str(error).startswith(f'{file}:1:1: `{key}` = "{value}" lies in')
    assert why in error.message


@pytest.mark.parametrize("value", [".etlc/stage", ".state/stage", "state/.cache"])
def test_runtime_folders_may_lie_in_a_hidden_folder(home: Path, value: str) -> None:
    project_file(home / "repo", f'stage_dir = "{value}"\n')
    assert find_project(home / "repo").stage_dir == value


def test_a_leaving_jars_link_of_an_implicit_project_is_seen(home: Path) -> None:
    (home / "outside").mkdir()
    (home / "repo").mkdir()
    (home / "repo" / "jars").symlink_to(home / "outside")
    project = find_project(home / "repo")
    assert project.leaves(project.jars)
    assert not project.leaves(project.generated)


def test_a_folder_that_is_a_symlink_out_of_the_project_is_refused(home: Path) -> None:
    outside = home / "outside"
    outside.mkdir()
    root = home / "repo"
    file = project_file(root, 'jars = "lib"\n')
    (root / "lib").symlink_to(outside)
    error = refused(root)
    assert str(error).startswith(f'{file}:1:1: `jars` = "lib" is, or lies in, a symbolic link')


def test_a_default_folder_that_is_a_symlink_out_of_the_project_is_refused(home: Path) -> None:
    outside = home / "outside"
    outside.mkdir()
    root = home / "repo"
    file = project_file(root, "")
    (root / "schemas").symlink_to(outside)  # schemas/avro and schemas/jvm lie in it
    error = refused(root)
    assert str(error).startswith(f'{file}: `avro_schemas` (by default "schemas/avro") is')


def test_a_symlink_inside_the_project_is_allowed(home: Path) -> None:
    root = home / "repo"
    project_file(root, 'definitions = "current"\n')
    (root / "flows-v2").mkdir()
    (root / "current").symlink_to(root / "flows-v2")
    assert find_project(root).definitions == root / "current"  # as written


def test_an_unknown_key_is_refused_with_a_hint(home: Path) -> None:
    file = project_file(home / "repo", 'definitions = "pipelines"\ngenerate = "out"\n')
    error = refused(home / "repo")
    assert str(error) == f"{file}:2:1: unknown key `generate`; did you mean `generated`?"


def test_an_unknown_table_is_refused_at_its_header(home: Path) -> None:
    file = project_file(home / "repo", '\n[paths]\ndefinitions = "x"\n')
    assert str(refused(home / "repo")).startswith(f"{file}:2:1: unknown key `paths`; expected")


def test_an_unknown_key_in_tool_etlc_is_refused_with_a_hint(home: Path) -> None:
    root = home / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.ruff]\njar = 1\n\n[tool.etlc]\njar = "x"\n')
    error = refused(root)
    assert str(error) == f"{root / 'pyproject.toml'}:5:1: unknown key `jar`; did you mean `jars`?"


@pytest.mark.parametrize("value", ["3", "true", '["pipelines"]', '{ dir = "x" }', "2026-01-01"])
def test_a_value_that_is_not_a_string_is_refused(home: Path, value: str) -> None:
    file = project_file(home / "repo", f"jars = {value}\n")
    error = refused(home / "repo")
    assert str(error) == (f"{file}:1:1: `jars` must be a string (a folder relative to the project)")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('definitions = "pipelines"\njars = \n', "2:8"),
        ('definitions = "pipe\nlines"\n', "1:20"),
        ('jars = "a"\njars = "b"\n', "2:11"),
        ('jars = "unterminated', "1:21"),
    ],
)
def test_malformed_toml_is_reported_at_its_line_and_column(
    home: Path, text: str, where: str
) -> None:
    file = project_file(home / "repo", text)
    error = refused(home / "repo")
    assert str(error).startswith(f"{file}:{where}: malformed TOML: ")
    assert "(at " not in str(error)


def test_deeply_nested_toml_is_refused_without_a_traceback(home: Path) -> None:
    project_file(home / "repo", "x = " + "[" * 100_000)
    assert "malformed TOML" in refused(home / "repo").message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a" + ".a" * 300_000 + " = 1\n", 1),  # took minutes and 20 GB in tomllib
        ("[a" + ".a" * 300_000 + "]\n", 1),
        ("x = { a" + ".a" * 300_000 + " = 1 }\n", 1),
        ('x = """\n.\n"""\n"a"' + '."a"' * 40 + " = 1\n", 4),
    ],
)
def test_a_key_of_very_many_parts_is_refused_before_tomllib(
    home: Path, text: str, line: int
) -> None:
    file = project_file(home / "repo", text)
    error = refused(home / "repo")
    assert str(error).startswith(f"{file}:{line}:1: more than 32 `.` outside strings")


def test_many_dots_in_strings_and_comments_are_allowed(home: Path) -> None:
    dots = "." * 200
    text = (
        f'# {dots}\ndefinitions = "flows" # {dots}\n'
        f'[tool]\nx = "{dots}\\"{dots}"\ny = \'{dots}\'\nz = """\n{dots}\n{dots}"""\n'
    )
    # Not an etlc.toml key: read through a pyproject that has other tools' tables.
    root = home / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text(text.replace("definitions", "[tool.etlc]\ndefinitions"))
    assert find_project(root).definitions == root / "flows"


def test_a_project_file_over_one_mib_is_refused(home: Path) -> None:
    file = project_file(home / "repo", "# " + "x" * (1 << 20) + "\n")
    assert str(refused(home / "repo")) == f"{file}: is larger than the 1 MiB limit"


def test_a_project_file_that_is_not_utf8_is_refused(home: Path) -> None:
    root = home / "repo"
    root.mkdir()
    (root / "etlc.toml").write_bytes(b'jars = "x"\n# caf\xe9\n')
    assert str(refused(root)) == f"{root / 'etlc.toml'}:2:1: is not UTF-8 text"


def test_a_project_file_that_is_a_symlink_is_refused(home: Path) -> None:
    elsewhere = project_file(home / "elsewhere", "")
    root = home / "repo"
    root.mkdir()
    (root / "etlc.toml").symlink_to(elsewhere)
    assert "is a symbolic link, not a regular file" in str(refused(root))


def test_another_users_project_file_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = project_file(home / "shared", 'jars = "evil"\n')
    (home / "shared" / "mine").mkdir()
    if os.geteuid() == 0:  # root's own files are trusted: give it to someone else
        os.chown(file, 4243, -1)
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    assert "is owned by another user" in str(refused(home / "shared" / "mine"))


# --- the options a definition is checked with -----------------------------------------------


def test_a_definition_in_a_subfolder_uses_the_projects_folders(home: Path) -> None:
    root = home / "repo"
    project_file(root, 'environments = "config/env"\navro_schemas = "avro"\n')
    definition = root / "pipelines" / "sales" / "x.json"
    definition.parent.mkdir(parents=True)
    (root / "config" / "env").mkdir(parents=True)
    options = default_options(definition, find_project(root))
    assert options.env_dir == root / "config" / "env"
    assert options.schema_dirs == (definition.parent, root / "avro")
    assert options.jvm_schema_dirs == (root / "schemas" / "jvm",)
    assert options.project_roots == (root,)


def test_a_definition_outside_the_definitions_folder_keeps_todays_inference(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = home / "repo"
    project_file(root, "")
    other = home / "elsewhere" / "flows" / "x.json"
    (other.parent / "env").mkdir(parents=True)
    monkeypatch.chdir(root)
    options = default_options(other, find_project())
    assert options.env_dir == other.parent / "env"
    assert options.schema_dirs[:2] == (other.parent, other.parent.parent / "schemas" / "avro")


def test_check_file_finds_the_project_from_the_working_directory(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = home / "repo"
    init_project(root)
    sales = root / "pipelines" / "sales"
    sales.mkdir()
    (sales / "x.json").write_text((root / "pipelines" / "example.json").read_text())
    (sales / "sale.avsc").write_text((root / "schemas" / "avro" / "sale.avsc").read_text())
    monkeypatch.chdir(root)
    assert check_file(sales / "x.json").ok  # ${data_dir} is defined in pipelines/env/local.json
    monkeypatch.chdir(home)  # no project here: pipelines/sales/env would be looked in
    assert [d.code for d in check_file(sales / "x.json").diagnostics] == ["E207"]


# --- what the generated files say about the project -------------------------------------------


def custom_project(home: Path) -> Project:
    root = home / "repo"
    init_project(root)
    (root / "etlc.toml").write_text(
        'environments = "config/env"\njars = "lib/jars"\ngenerated = "build/gen"\n'
        'stage_dir = "tmp/stage"\n'
    )
    (root / "config").mkdir()
    (root / "pipelines" / "env").rename(root / "config" / "env")
    return find_project(root)


def test_generated_files_find_jars_and_environments_through_the_project(home: Path) -> None:
    project = custom_project(home)
    result = check_file(
        project.definitions / "example.json",
        default_options(project.definitions / "example.json", project),
    )
    assert result.plan is not None, result.diagnostics
    driver, submit, *_ = render(result.plan, project.generated, project)
    text = submit.content.decode()
    assert 'jars_dir="$here"/../../lib/jars' in text
    assert "environment file config/env/<ETLC_ENV>.json" in text
    assert "(default: <project>/lib/jars)" in text
    code = driver.content.decode()
    assert (
        'env_dir="config/env",\n        stage_dir="tmp/stage",\n        definition=DEFINITION,'
        in code
    )
    assert 'definition_file="pipelines/example.json",' in code
    assert "checkpoint_dir" not in code  # the default: left to the runtime
    assert "from pipelines/example.json" in code
    assert "submit with `build/gen/example.submit.sh`" in code


def test_no_generated_file_names_the_project_or_the_checkout(home: Path) -> None:
    project = custom_project(home)
    path = project.definitions / "example.json"
    result = check_file(path, default_options(path, project))
    assert result.plan is not None
    for output in render(result.plan, project.generated, project):
        for folder in {str(project.root), str(ROOT), str(home)}:
            assert folder.encode() not in output.content, (output.path.name, folder)


def test_the_driver_reads_the_projects_environment_folder_and_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlc.runtime import driver
    from etlc.runtime.environment import Environment

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config" / "env").mkdir(parents=True)
    (tmp_path / "config" / "env" / "dev.json").write_text(
        json.dumps({"etlc": {"checkpoint_dir": "mine"}})
    )
    seen: list[Environment] = []

    def session(name: str, env: Environment, context: object) -> object:
        seen.append(env)
        raise RuntimeError("stop before Spark")

    code = driver.run_driver(
        lambda env: None,  # type: ignore[arg-type,return-value]
        pipeline="p",
        mode="batch",
        max_retries=0,
        delay_seconds=0.0,
        env_dir="config/env",
        stage_dir="tmp/stage",
        checkpoint_dir="tmp/checkpoints",
        argv=["--env", "dev"],
        session_factory=session,  # type: ignore[arg-type]
        # Python's reading alone: this test starts no JVM.
        load_environment=lambda path, defaults: Environment.load(path, defaults=defaults),
    )
    assert code == 1
    assert seen[0].path == "config/env/dev.json"
    # The project's folders are defaults; the environment file's own settings win.
    assert (seen[0].settings.stage_dir, seen[0].settings.checkpoint_dir) == ("tmp/stage", "mine")
