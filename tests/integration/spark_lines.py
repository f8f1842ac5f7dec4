"""The other Spark lines etlc compiles for, each in a virtual environment of its own.

A line's environment holds the pyspark release its connector jars come from, on the lowest
Python etlc supports there (etlc.spark_targets), and the runtime's one other dependency. It is
made once per machine and kept, with the line's jars, under ``ETLC_TEST_CACHE`` (default
``~/.cache/etlc-test``): CI on the same machine reuses them, a new machine makes them
(a minute or two per line, from the package index and Maven).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from etlc.spark_targets import SparkTarget, spark_target

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ETLC_TEST_CACHE", Path.home() / ".cache" / "etlc-test"))
# The runtime's own dependencies besides pyspark (pyproject.toml's range).
RUNTIME_REQUIREMENTS = ("cryptography>=50.0.2,<51",)
_READY = ".etlc-ready"


@dataclass(frozen=True)
class LineRuntime:
    target: SparkTarget
    venv: Path
    jars: Path

    @property
    def spark_home(self) -> Path:
        found = sorted(self.venv.glob("lib/python*/site-packages/pyspark"))
        assert found, f"{self.venv} holds no pyspark"
        return found[0]

    def environ(self) -> dict[str, str]:
        """What a submit script runs with: this line's spark-submit, Python and jars."""
        bin_dir = self.venv / "bin"
        return {
            "SPARK_SUBMIT": str(bin_dir / "spark-submit"),
            "SPARK_HOME": str(self.spark_home),
            "PYSPARK_PYTHON": str(bin_dir / "python"),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "ETLC_JARS_DIR": str(self.jars),
            # The session's class data archive is of another Spark's classes.
            "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1",
        }


def python_of(version: str) -> Path:
    """An interpreter of Python ``version`` (``3.9``) that runs: pyenv's newest patch, else
    one on PATH (a pyenv shim there may name a version it does not run)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    patch = re.compile(rf"{re.escape(version)}\.\d+")
    found = sorted(
        (p for p in root.glob("versions/*") if patch.fullmatch(p.name)),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
        reverse=True,
    )
    on_path = shutil.which(f"python{version}")
    for candidate in [f / "bin" / f"python{version}" for f in found] + [Path(on_path or "-")]:
        if candidate.is_file() and _runs(candidate, version):
            return candidate
    raise AssertionError(
        f"no Python {version} here (pyenv's {root}/versions, or python{version} on PATH): the "
        "Spark line tests run the runtime on the lowest Python it supports"
    )


def _runs(python: Path, version: str) -> bool:
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.returncode == 0 and done.stdout.strip() == version


def line_runtime(line: str) -> LineRuntime:
    """The line's environment and jars, made when missing."""
    target = spark_target(line)
    venv = CACHE / f"pyspark-{target.release}-py{target.python}"
    if not (venv / _READY).is_file():
        shutil.rmtree(venv, ignore_errors=True)
        _run([str(python_of(target.python)), "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, "--upgrade", "pip"])
        _run([*pip, f"pyspark=={target.release}", *RUNTIME_REQUIREMENTS])
        (venv / _READY).write_text("", encoding="utf-8")
    jars = CACHE / f"jars-{line}"
    etlc = Path(sys.executable).parent / "etlc"
    _run([str(etlc), "jars", "--spark-version", line, "--dest", str(jars)], cwd=ROOT)
    return LineRuntime(target, venv, jars)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr[-2000:] or done.stdout[-2000:]}"
