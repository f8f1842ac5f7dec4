"""etlc as a user gets it: a wheel installed into a fresh environment outside this checkout.

Built from this checkout (`pip wheel`), installed into a new virtual environment in a temporary
folder, then driven only through its console script: `etlc init`, `etlc jars`, `etlc lint`,
`etlc compile`, and the generated submit command on `local[2]`. The third-party dependencies
come from this checkout's environment (a path line in the new environment), not from an index,
to keep the test offline and fast; etlc itself comes only from the wheel.
"""

from __future__ import annotations

import csv
import os
import random
import site
import subprocess
import sys
import venv
import zipfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

import etlc

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 600


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run(
        [str(BIN / "pip"), "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        ROOT,
        dict(os.environ),
    )
    (found,) = dist.glob("etlc-*.whl")
    return found


def test_the_wheel_carries_what_a_run_needs_and_nothing_of_the_checkout(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert f"etlc/_data/jars/etlc-jvm-{etlc.__version__}.jar" in names
    assert "etlc/_data/jars.sha256" in names
    for data in ("grammar/", "schemas/pipeline.schema.json", "schemas/environment.schema.json"):
        assert any(n.startswith(f"etlc/_data/{data}") for n in names), data
    assert any(n.startswith("etlc/codegen/templates/") for n in names)
    assert not [n for n in names if n.startswith(("bench/", "tests/"))]


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, dict[str, str]]:
    """A fresh environment with only the wheel's etlc, and the environment to run it in."""
    home = tmp_path_factory.mktemp("user")
    env_dir = home / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    (purelib,) = (env_dir / "lib").glob("python3*/site-packages")
    # Dependencies from this checkout's environment; its .pth files (the editable etlc) are
    # not read from a path line, so `import etlc` can only find the wheel's.
    (purelib / "_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("ETLC_", "PYTHON", "VIRTUAL_ENV"))
    }
    environ.update(
        PATH=f"{env_dir / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
        SPARK_SUBMIT=str(BIN / "spark-submit"),
        PYSPARK_PYTHON=str(env_dir / "bin" / "python"),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    _run(
        # pip of this checkout's environment, installing into the new one (its scripts run
        # the new interpreter).
        [
            str(BIN / "pip"),
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        home,
        environ,
    )
    where = _run(
        [str(env_dir / "bin" / "python"), "-c", "import etlc; print(etlc.__file__)"], home, environ
    )
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout
    return home, environ


def _sales(
    count: int, seed: int = 14
) -> tuple[list[list[str]], dict[str, tuple[int, int, Decimal]]]:
    """Sales rows as the example's CSV holds them, and the expected result per region."""
    rng = random.Random(seed)
    rows = []
    totals: dict[str, list[object]] = defaultdict(lambda: [0, 0, Decimal("0.00")])
    for sale_id in range(1, count + 1):
        region = rng.choice(["NORTH", "SOUTH", "EAST", "WEST"])
        quantity = rng.randint(1, 9)
        price = Decimal(rng.randint(0, 99_999)) / 100
        status = rng.choice(["COMPLETED", "COMPLETED", "COMPLETED", "REFUNDED"])
        sold = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"
        rows.append([str(sale_id), region, "kettle", str(quantity), str(price), status, sold])
        if status == "COMPLETED":
            t = totals[region]
            t[0] = int(str(t[0])) + 1
            t[1] = int(str(t[1])) + quantity
            t[2] = Decimal(str(t[2])) + quantity * price
    expected = {r: (int(str(t[0])), int(str(t[1])), Decimal(str(t[2]))) for r, t in totals.items()}
    return rows, expected


def test_a_user_project_from_init_to_a_run_on_local_spark(
    user: tuple[Path, dict[str, str]],
) -> None:
    home, environ = user
    etlc_cmd = str(home / "venv" / "bin" / "etlc")
    version = _run([etlc_cmd, "--version"], home, environ)
    assert version.stdout.strip() == f"etlc {etlc.__version__}"
    _run([etlc_cmd, "init", "shop"], home, environ)
    project = home / "shop"
    jars = _run([etlc_cmd, "jars"], project, environ)
    assert (project / "jars" / f"etlc-jvm-{etlc.__version__}.jar").is_file(), jars.stdout
    lint = _run([etlc_cmd, "lint"], project, environ)
    assert "0 error(s), 0 warning(s)" in lint.stderr
    _run([etlc_cmd, "compile"], project, environ)
    # The template's pipeline test, from the installed wheel's runner (a failing one is
    # tests/integration/test_pipeline_tests.py's).
    tested = _run([etlc_cmd, "test", "--junit-xml", "report.xml"], project, environ)
    assert "1 test(s) in 1 file(s): 1 passed, 0 failed" in tested.stdout + tested.stderr
    assert 'failures="0"' in (project / "report.xml").read_text(encoding="utf-8")

    rows, expected = _sales(2_000)
    with (project / "data" / "sales.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["sale_id", "region", "product", "quantity", "unit_price", "status", "sold_at"]
        )
        writer.writerows(rows)
    # The submit command as a scheduler would run it: from the project, nothing else set.
    _run(["bash", "generated/example.submit.sh"], project, environ)

    actual = {}
    for part in sorted((project / "out" / "example").glob("part-*.csv")):
        with part.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                actual[row["region"]] = (
                    int(row["sales"]),
                    int(row["units"]),
                    Decimal(row["revenue"]),
                )
    assert actual == expected

    checkout = str(ROOT).encode()
    for path in (project / "generated").rglob("*"):
        if path.is_file():
            assert checkout not in path.read_bytes(), f"{path.name} names the etlc checkout"
